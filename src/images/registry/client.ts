// A client of one registry host (OCI distribution spec v1.0 / Docker
// registry API v2): ping, manifests (resolve by tag or digest, put), blobs
// (get with Range for resume, head, cross-repository mount, monolithic and
// chunked upload). Authentication through the Authorizer (Basic, Bearer
// tokens from the challenge's realm); idempotent requests retried with
// backoff on network errors, 5xx and 429. Plain HTTP is used only for this
// machine (localhost, 127.0.0.0/8, ::1) and hosts named insecure, and then
// only when HTTPS does not answer.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrdefsError, invalidArgument, notFound } from '../../errdefs.js';
import { apiHost, isLocalHost } from '../reference.js';
import { MANIFEST_ACCEPT, documentMediaType, parseJson, type OciDescriptor } from '../media.js';
import { AuthError, Authorizer, errorText, type Credentials } from './auth.js';
import { NetworkError, drain, httpRequest, readBody, type HttpResponse } from './http.js';

export interface RegistryClientOptions {
  credentials?: (host: string) => Credentials | undefined;
  /** hosts (host[:port]) that may be reached over plain HTTP or unverified TLS */
  insecure?: readonly string[];
  /** tries of an idempotent request (default 4) */
  attempts?: number;
  /** first backoff delay in ms (doubles each try; default 250) */
  backoffMs?: number;
  signal?: AbortSignal | undefined;
}

/** gRPC-style status error (the adapter maps code/details). */
export function statusError(code: number, details: string): Error & { code: number; details: string } {
  return Object.assign(new Error(details), { code, details });
}

/** The registry refused the credentials (or anonymous access). */
export const unauthenticated = (details: string) => statusError(16, details);

const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

interface SendOptions {
  method?: string;
  /** repository path, for the token scope */
  repo: string;
  push?: boolean;
  /** more scopes (a mount's source repository) */
  scopes?: string[];
  headers?: Record<string, string>;
  /** a Buffer is replayed on retries; a stream factory is called per try */
  body?: Buffer | (() => Readable);
  /** statuses returned to the caller instead of thrown */
  ok: number[];
  /** what this request is, for errors ("manifest latest") */
  what: string;
  /** the request may be repeated (default: GET and HEAD) */
  idempotent?: boolean;
  /** follow redirects (blobs) */
  follow?: boolean;
}

export class RegistryClient {
  readonly host: string;
  private base: URL | undefined;
  private readonly auth: Authorizer;
  private readonly insecure: boolean;
  private readonly attempts: number;
  private readonly backoffMs: number;

  constructor(
    readonly domain: string,
    private readonly opts: RegistryClientOptions = {},
  ) {
    this.host = apiHost(domain);
    const insecureHosts = new Set(opts.insecure ?? []);
    this.insecure = isLocalHost(this.host) || insecureHosts.has(this.host) || insecureHosts.has(domain);
    this.auth = new Authorizer((h) => opts.credentials?.(h === this.host ? domain : h), (h) => insecureHosts.has(h) || isLocalHost(h));
    this.attempts = opts.attempts ?? 4;
    this.backoffMs = opts.backoffMs ?? 250;
  }

  /** GET /v2/: finds the scheme (HTTPS; plain HTTP only where allowed) and the auth challenge. */
  async ping(): Promise<URL> {
    if (this.base) return this.base;
    const tryBase = async (scheme: 'https' | 'http'): Promise<URL> => {
      const base = new URL(`${scheme}://${this.host}/`);
      const get = () => httpRequest(new URL('/v2/', base), { signal: this.opts.signal, insecureTls: this.insecure, idleTimeoutMs: 20_000 });
      // HTTPS to a host that may speak plain HTTP: one try, then HTTP
      const res = scheme === 'https' && this.insecure ? await get() : await this.retrying(get);
      if (res.status === 401) this.auth.learn(this.host, res);
      await drain(res);
      if (res.status !== 200 && res.status !== 401) throw new Error(`${this.host}: GET /v2/ answered ${res.status}: not a registry (OCI distribution API)`);
      return base;
    };
    try {
      this.base = await tryBase('https');
    } catch (e) {
      if (!this.insecure || !(e instanceof NetworkError)) throw this.unreachable(e);
      try {
        this.base = await tryBase('http');
      } catch (e2) {
        throw this.unreachable(e2);
      }
    }
    return this.base;
  }

  private unreachable(e: unknown): Error {
    if (e instanceof NetworkError) {
      return new ErrdefsError('unavailable', `registry ${this.host} cannot be reached: ${e.message}${this.insecure ? '' : ' (plain HTTP is used only for localhost and registries named insecure)'}`);
    }
    return e as Error;
  }

  /** Resolves a tag or digest to the manifest or index it names, with its bytes. */
  async resolve(repo: string, reference: string, display: string): Promise<{ desc: OciDescriptor; data: Buffer }> {
    const res = await this.send(`/v2/${repo}/manifests/${reference}`, { repo, headers: { accept: MANIFEST_ACCEPT }, ok: [200, 404], what: `manifest ${reference}` });
    if (res.status === 404) {
      // the registry's own words (manifest unknown, name unknown) add nothing for a user
      await drain(res);
      // worded as docker users see it ("not found: <ref>"), still of class not found
      throw Object.assign(notFound(display), { message: `not found: ${display}` });
    }
    const data = await readBody(res);
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    if (reference.includes(':') && reference !== digest) {
      throw new ErrdefsError('failed precondition', `manifest ${reference} of ${display}: the registry sent content with digest ${digest}`);
    }
    const header = String(res.headers['content-type'] ?? '').split(';')[0]!.trim();
    const doc = parseJson<{ mediaType?: string; manifests?: unknown; config?: unknown; schemaVersion?: number }>(data, `manifest of ${display}`);
    if (doc.schemaVersion === 1) throw invalidArgument(`${display}: Docker schema 1 manifests are not supported (push the image again with a current client)`);
    const mediaType = documentMediaType(doc, header);
    if (!mediaType) throw invalidArgument(`${display}: the registry sent a manifest of unknown media type`);
    return { desc: { mediaType, digest, size: data.length }, data };
  }

  /** A manifest or index by digest (its bytes checked against the digest). */
  async fetchManifest(repo: string, desc: OciDescriptor): Promise<Buffer> {
    const res = await this.send(`/v2/${repo}/manifests/${desc.digest}`, { repo, headers: { accept: `${desc.mediaType}, ${MANIFEST_ACCEPT}` }, ok: [200], what: `manifest ${desc.digest}` });
    const data = await readBody(res);
    const got = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    if (got !== desc.digest) throw new ErrdefsError('failed precondition', `manifest ${desc.digest} from ${this.host}/${repo}: content has digest ${got}`);
    return data;
  }

  /** Opens a blob from offset (206 with Range honoured; 200: from the start). */
  async openBlob(repo: string, digest: string, offset = 0): Promise<HttpResponse> {
    const headers: Record<string, string> = {};
    if (offset > 0) headers['range'] = `bytes=${offset}-`;
    const res = await this.send(`/v2/${repo}/blobs/${digest}`, { repo, headers, ok: [200, 206, 404, 416], what: `blob ${digest}`, follow: true });
    if (res.status === 404) {
      await drain(res);
      throw notFound(`blob ${digest} in ${this.domain}/${repo}`);
    }
    if (res.status === 416) {
      await drain(res);
      throw statusError(11, `blob ${digest} in ${this.domain}/${repo}: the registry refused to resume at byte ${offset}`);
    }
    return res;
  }

  /** The blob's size if the repository has it (HEAD), else undefined. */
  async blobSize(repo: string, digest: string, push = false): Promise<number | undefined> {
    const res = await this.send(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD', repo, push, ok: [200, 404], what: `blob ${digest}`, follow: true });
    await drain(res);
    return res.status === 200 ? Number(res.headers['content-length'] ?? 0) : undefined;
  }

  /** Asks the registry to mount a blob from another repository of it; true when it did. */
  async mountBlob(repo: string, digest: string, from: string): Promise<{ mounted: boolean; location?: string }> {
    const path = `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
    const res = await this.send(path, { method: 'POST', repo, push: true, scopes: [`repository:${from}:pull`], ok: [201, 202], what: `mount of ${digest} from ${from}`, body: Buffer.alloc(0) });
    await drain(res);
    if (res.status === 201) return { mounted: true };
    const location = res.headers['location'];
    return location ? { mounted: false, location: String(location) } : { mounted: false };
  }

  /**
   * Uploads a blob: one PUT when it is at most chunkSize bytes, else PATCHes
   * of chunkSize with Content-Range and a closing PUT. open(start, end)
   * gives the bytes [start, end). A chunk that fails is sent again from
   * where the registry says it got to.
   */
  async uploadBlob(repo: string, desc: { digest: string; size: number }, open: (start: number, end: number) => Readable, opts: { location?: string | undefined; chunkSize?: number; onProgress?: (n: number) => void } = {}): Promise<void> {
    const chunkSize = opts.chunkSize ?? 32 << 20;
    let location = opts.location ?? (await this.startUpload(repo));
    const put = (loc: string, body: (() => Readable) | Buffer, len: number): Promise<HttpResponse> =>
      this.send(withQuery(loc, { digest: desc.digest }), {
        method: 'PUT',
        repo,
        push: true,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(len) },
        body,
        ok: [201, 204],
        what: `upload of blob ${desc.digest}`,
        idempotent: false,
      });
    if (desc.size <= chunkSize) {
      const res = await put(location, () => open(0, desc.size), desc.size);
      await drain(res);
      opts.onProgress?.(desc.size);
      return;
    }
    let offset = 0;
    let failures = 0;
    while (offset < desc.size) {
      const end = Math.min(desc.size, offset + chunkSize);
      try {
        const res = await this.send(location, {
          method: 'PATCH',
          repo,
          push: true,
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - offset), 'content-range': `${offset}-${end - 1}` },
          body: () => open(offset, end),
          ok: [202],
          what: `upload of blob ${desc.digest} (bytes ${offset}-${end - 1})`,
          idempotent: false,
        });
        await drain(res);
        location = String(res.headers['location'] ?? location);
        offset = end;
        opts.onProgress?.(offset);
      } catch (e) {
        if (++failures >= this.attempts || !(e instanceof NetworkError || isStatus5xx(e))) throw e;
        await sleep(this.backoffMs * 2 ** (failures - 1));
        // where did the registry get to?
        const st = await this.send(location, { repo, push: true, ok: [204, 200], what: `upload status of blob ${desc.digest}` });
        await drain(st);
        location = String(st.headers['location'] ?? location);
        const range = /^(?:bytes=)?0-(\d+)$/.exec(String(st.headers['range'] ?? ''));
        offset = range ? Number(range[1]) + 1 : 0;
      }
    }
    const res = await put(location, Buffer.alloc(0), 0);
    await drain(res);
  }

  private async startUpload(repo: string): Promise<string> {
    const res = await this.send(`/v2/${repo}/blobs/uploads/`, { method: 'POST', repo, push: true, ok: [202], what: 'start of a blob upload', body: Buffer.alloc(0) });
    await drain(res);
    const location = res.headers['location'];
    if (!location) throw new Error(`${this.host}/${repo}: the registry started an upload without a Location`);
    return String(location);
  }

  /** PUT a manifest under a tag or digest; returns the digest the registry reports. */
  async putManifest(repo: string, reference: string, mediaType: string, data: Buffer): Promise<string> {
    const res = await this.send(`/v2/${repo}/manifests/${reference}`, {
      method: 'PUT',
      repo,
      push: true,
      headers: { 'content-type': mediaType },
      body: data,
      ok: [201, 200, 202],
      what: `manifest ${reference}`,
      idempotent: true,
    });
    await drain(res);
    return String(res.headers['docker-content-digest'] ?? `sha256:${createHash('sha256').update(data).digest('hex')}`);
  }

  /** One request with auth, retries and (for blobs) redirects. */
  private async send(pathOrUrl: string, o: SendOptions): Promise<HttpResponse> {
    const base = await this.ping();
    const url = new URL(pathOrUrl, base);
    const scopes = [`repository:${o.repo}:${o.push ? 'pull,push' : 'pull'}`, ...(o.scopes ?? [])];
    const method = o.method ?? 'GET';
    const idempotent = o.idempotent ?? (method === 'GET' || method === 'HEAD');
    let authTries = 0;
    for (;;) {
      if (o.scopes?.length) await this.auth.ensureToken(this.host, scopes, this.opts.signal).catch(() => {});
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      const authz = this.auth.header(this.host, scopes);
      if (authz) headers['authorization'] = authz;
      const attempt = () => httpRequest(url, { method, headers, body: typeof o.body === 'function' ? o.body() : o.body, signal: this.opts.signal, insecureTls: this.insecure });
      let res = idempotent ? await this.retrying(attempt) : await attempt();
      if (res.status === 401 && authTries++ < 2) {
        await drain(res);
        let again: boolean;
        try {
          again = await this.auth.challenged(this.host, res, scopes, this.opts.signal, authz);
        } catch (e) {
          if (e instanceof AuthError) throw unauthenticated(e.message);
          throw e;
        }
        if (again) continue;
        throw this.refused(o);
      }
      if (o.follow) res = await this.followRedirects(res, method, headers);
      if (o.ok.includes(res.status)) return res;
      const body = await readBody(res, 1 << 20).catch(() => Buffer.alloc(0));
      const text = `${this.host}: ${o.what} of ${o.repo}: ${res.status} ${res.body.statusMessage ?? ''}${errorText(body)}`.trim();
      if (res.status === 401) throw this.refused(o);
      if (res.status === 403) throw statusError(7, `${text} (access denied)`);
      if (res.status === 404) throw notFound(text);
      throw Object.assign(new Error(text), { httpStatus: res.status });
    }
  }

  /** The registry said 401 to what we could send: whose access it refused. */
  private refused(o: SendOptions): Error {
    const user = this.opts.credentials?.(this.domain)?.username;
    const who = user ? `the configured credentials (user ${JSON.stringify(user)})` : 'anonymous access (no credentials configured for it)';
    return unauthenticated(`${this.host}: ${o.what} of ${o.repo}: unauthorized: the registry refused ${who}${o.push ? ' to push' : ''}`);
  }

  private async followRedirects(res: HttpResponse, method: string, headers: Record<string, string>): Promise<HttpResponse> {
    for (let i = 0; i < 5 && [301, 302, 303, 307, 308].includes(res.status); i++) {
      const to = new URL(String(res.headers['location'] ?? ''), res.url);
      await drain(res);
      const h = { ...headers };
      if (to.host !== res.url.host) delete h['authorization'];
      res = await this.retrying(() => httpRequest(to, { method, headers: h, signal: this.opts.signal, insecureTls: this.insecure }));
    }
    return res;
  }

  /** Runs a request, again after a backoff on network errors and retryable statuses. */
  private async retrying(fn: () => Promise<HttpResponse>): Promise<HttpResponse> {
    for (let i = 1; ; i++) {
      try {
        const res = await fn();
        if (!RETRYABLE_STATUS.has(res.status) || i >= this.attempts) return res;
        await drain(res);
      } catch (e) {
        if (!(e instanceof NetworkError) || i >= this.attempts || this.opts.signal?.aborted) throw e;
      }
      await sleep(this.backoffMs * 2 ** (i - 1) * (0.75 + Math.random() / 2), undefined, { signal: this.opts.signal });
    }
  }
}

function isStatus5xx(e: unknown): boolean {
  const s = (e as { httpStatus?: number }).httpStatus;
  return typeof s === 'number' && s >= 500;
}

function withQuery(location: string, q: Record<string, string>): string {
  const sep = location.includes('?') ? '&' : '?';
  return `${location}${sep}${new URLSearchParams(q).toString()}`;
}
