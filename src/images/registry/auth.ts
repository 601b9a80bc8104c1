// Registry authentication (distribution's token spec and RFC 7235):
// WWW-Authenticate challenges, Basic auth, and Bearer tokens fetched from
// the challenge's realm (GET with Basic credentials or anonymous; POST with
// an OAuth2 refresh token), cached per host and scope until they expire.
import { httpRequest, readBody, type HttpResponse } from './http.js';

export interface Credentials {
  username?: string | undefined;
  secret?: string | undefined;
  /** OAuth2 refresh token (docker config.json "identitytoken") */
  identityToken?: string | undefined;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses WWW-Authenticate values: `Bearer realm="...",service="...",scope="..."`
 * or `Basic realm="..."` (one challenge per value, as registries send them).
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const out: Challenge[] = [];
  for (const value of Array.isArray(header) ? header : header ? [header] : []) {
    const m = /^\s*([A-Za-z][\w-]*)(?:\s+(.*))?$/s.exec(value);
    if (!m) continue;
    const c: Challenge = { scheme: m[1]!.toLowerCase(), params: {} };
    for (const p of (m[2] ?? '').matchAll(/([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
      c.params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
    }
    out.push(c);
  }
  return out;
}

/** An authentication failure at a registry or its token server. */
export class AuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthError';
  }
}

interface Token {
  value: string;
  expiresAt: number;
}

export class Authorizer {
  /** the last challenge each host sent */
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens = new Map<string, Token>();
  private readonly refresh = new Map<string, string>();

  constructor(
    private readonly credentials: (host: string) => Credentials | undefined,
    private readonly insecureTls: (host: string) => boolean = () => false,
  ) {}

  /** The Authorization header for a request to host needing scopes, if one is known. */
  header(host: string, scopes: readonly string[]): string | undefined {
    const c = this.challenges.get(host);
    if (!c) return undefined;
    if (c.scheme === 'basic') return this.basic(host);
    if (c.scheme === 'bearer') {
      const t = this.tokens.get(tokenKey(host, scopes));
      if (t && t.expiresAt > Date.now()) return `Bearer ${t.value}`;
    }
    return undefined;
  }

  /**
   * Handles a 401 from host: learns its challenge and gets what it asks for.
   * Returns false when nothing new can be tried (no usable challenge).
   */
  async challenged(host: string, res: HttpResponse, scopes: readonly string[], signal?: AbortSignal, sent?: string): Promise<boolean> {
    const challenges = parseChallenges(res.headers['www-authenticate']);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer) {
      this.challenges.set(host, bearer);
      const key = tokenKey(host, scopes);
      const known = this.tokens.get(key);
      if (known && known.expiresAt > Date.now()) {
        // a parallel request got a token meanwhile: try that one
        if (sent !== `Bearer ${known.value}`) return true;
        // a fresh token was refused: the account lacks the access
        if (!bearer.params['error']) return false;
      }
      await this.fetchTokenOnce(host, bearer, scopes, signal);
      return true;
    }
    if (basic) {
      const had = this.challenges.get(host);
      this.challenges.set(host, basic);
      if (!this.basic(host)) throw new AuthError(`${host} requires a user name and password (basic auth) and none is configured: log in first (credentials come from ~/.docker/config.json)`);
      return had?.scheme !== 'basic'; // sent already: the credentials were refused
    }
    return false;
  }

  /** Remembers a challenge seen at ping time (GET /v2/). */
  learn(host: string, res: HttpResponse): void {
    const c = parseChallenges(res.headers['www-authenticate']);
    const pick = c.find((x) => x.scheme === 'bearer') ?? c.find((x) => x.scheme === 'basic');
    if (pick) this.challenges.set(host, pick);
  }

  /** Gets a token for scopes from the challenge's realm (for pushes with a mount, more scopes). */
  async ensureToken(host: string, scopes: readonly string[], signal?: AbortSignal): Promise<void> {
    const c = this.challenges.get(host);
    if (c?.scheme !== 'bearer') return;
    const t = this.tokens.get(tokenKey(host, scopes));
    if (t && t.expiresAt > Date.now()) return;
    await this.fetchTokenOnce(host, c, scopes, signal);
  }

  private basic(host: string): string | undefined {
    const cr = this.credentials(host);
    if (!cr?.username) return undefined;
    return `Basic ${Buffer.from(`${cr.username}:${cr.secret ?? ''}`).toString('base64')}`;
  }

  /** Parallel requests that need the same token share one fetch. */
  private readonly fetching = new Map<string, Promise<void>>();

  private fetchTokenOnce(host: string, c: Challenge, scopes: readonly string[], signal?: AbortSignal): Promise<void> {
    const key = tokenKey(host, scopes);
    let p = this.fetching.get(key);
    if (!p) {
      p = this.fetchToken(host, c, scopes, signal).finally(() => this.fetching.delete(key));
      this.fetching.set(key, p);
    }
    return p;
  }

  private async fetchToken(host: string, c: Challenge, scopes: readonly string[], signal?: AbortSignal): Promise<void> {
    const realm = c.params['realm'];
    if (!realm) throw new AuthError(`${host}: Bearer challenge without a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new AuthError(`${host}: Bearer challenge with a bad realm ${JSON.stringify(realm)}`);
    }
    const service = c.params['service'];
    const wanted = scopes.length ? scopes : c.params['scope'] ? [c.params['scope']] : [];
    const cr = this.credentials(host);
    const insecureTls = this.insecureTls(url.host);
    const refresh = cr?.identityToken ?? this.refresh.get(host);
    let res: HttpResponse;
    if (refresh) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refresh, client_id: 'tsrund', access_type: 'offline' });
      if (service) form.set('service', service);
      if (wanted.length) form.set('scope', wanted.join(' '));
      res = await httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: Buffer.from(form.toString()), signal, insecureTls });
    } else {
      if (service) url.searchParams.set('service', service);
      for (const s of wanted) url.searchParams.append('scope', s);
      const headers: Record<string, string> = {};
      const b = this.basic(host);
      if (b) {
        headers['authorization'] = b;
        url.searchParams.set('account', cr!.username!);
      }
      res = await httpRequest(url, { headers, signal, insecureTls });
    }
    const body = await readBody(res, 1 << 20);
    if (res.status === 401 || res.status === 403) {
      throw new AuthError(`${host}: the token server ${url.origin}${url.pathname} refused ${cr?.username ? `the credentials of user ${JSON.stringify(cr.username)}` : 'anonymous access'} (${res.status}${errorText(body)})`);
    }
    if (res.status !== 200) throw new AuthError(`${host}: token server ${url.origin}${url.pathname} answered ${res.status}${errorText(body)}`);
    let j: { token?: string; access_token?: string; expires_in?: number; refresh_token?: string };
    try {
      j = JSON.parse(body.toString('utf8')) as typeof j;
    } catch {
      throw new AuthError(`${host}: token server ${url.origin}${url.pathname} answered with something that is not JSON`);
    }
    const value = j.access_token || j.token;
    if (!value) throw new AuthError(`${host}: token server ${url.origin}${url.pathname} answered without a token`);
    if (j.refresh_token) this.refresh.set(host, j.refresh_token);
    const ttl = Math.max(10, j.expires_in ?? 60) * 1000;
    this.tokens.set(tokenKey(host, scopes), { value, expiresAt: Date.now() + ttl - 5000 });
  }
}

function tokenKey(host: string, scopes: readonly string[]): string {
  return `${host} ${[...scopes].sort().join(' ')}`;
}

/** ": <message>" from a registry or token server JSON error body, or "". */
export function errorText(body: Buffer): string {
  const text = body.toString('utf8').trim();
  if (!text) return '';
  try {
    const j = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }>; details?: string; error?: string; message?: string };
    if (j.errors?.length) return `: ${j.errors.map((e) => [e.code?.toLowerCase().replace(/_/g, ' '), e.message].filter(Boolean).join(': ')).join('; ')}`;
    const m = j.details ?? j.error ?? j.message;
    if (m) return `: ${m}`;
  } catch {
    /* not JSON */
  }
  return `: ${text.slice(0, 200)}`;
}
