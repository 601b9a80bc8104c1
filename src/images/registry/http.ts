// HTTP for the registry client on node:http/https (keep-alive agents, no
// dependency): one request, its response with the body as a stream,
// redirects followed by the caller, errors that name the URL.
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
  url: URL;
}

export interface HttpRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | Readable | undefined;
  signal?: AbortSignal | undefined;
  /** skip TLS verification (insecure registries) */
  insecureTls?: boolean;
  /** no byte for this long: the request fails (default 60 s) */
  idleTimeoutMs?: number;
}

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 16 });
const insecureAgent = new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: false });

/** A failure below HTTP (refused, reset, TLS, timeout): worth a retry. */
export class NetworkError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'NetworkError';
  }
}

export function httpRequest(url: URL, req: HttpRequest = {}): Promise<HttpResponse> {
  const method = req.method ?? 'GET';
  const isHttps = url.protocol === 'https:';
  const mod = isHttps ? https : http;
  const agent = isHttps ? (req.insecureTls ? insecureAgent : httpsAgent) : httpAgent;
  return new Promise((resolve, reject) => {
    if (req.signal?.aborted) return reject(req.signal.reason instanceof Error ? req.signal.reason : new Error('aborted'));
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...(req.headers ?? {}) };
    if (Buffer.isBuffer(req.body)) headers['content-length'] = String(req.body.length);
    const r = mod.request(url, { method, headers, agent, signal: req.signal }, (res) => {
      res.setTimeout(req.idleTimeoutMs ?? 60_000, () => res.destroy(new NetworkError(`${method} ${url.href}: no data for ${(req.idleTimeoutMs ?? 60_000) / 1000} s`, 'ETIMEDOUT')));
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url });
    });
    r.setTimeout(req.idleTimeoutMs ?? 60_000, () => r.destroy(new NetworkError(`${method} ${url.href}: no answer for ${(req.idleTimeoutMs ?? 60_000) / 1000} s`, 'ETIMEDOUT')));
    r.on('error', (e: NodeJS.ErrnoException) => {
      if (e.name === 'AbortError') return reject(req.signal?.reason instanceof Error ? req.signal.reason : e);
      reject(e instanceof NetworkError ? e : new NetworkError(`${method} ${url.href}: ${e.message}`, e.code, { cause: e }));
    });
    if (req.body === undefined) r.end();
    else if (Buffer.isBuffer(req.body)) r.end(req.body);
    else {
      req.body.on('error', (e) => r.destroy(e));
      req.body.pipe(r);
    }
  });
}

/** The whole body (small answers: manifests, errors, tokens), at most max bytes. */
export async function readBody(res: HttpResponse, max = 32 << 20): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body) {
    n += (c as Buffer).length;
    if (n > max) {
      res.body.destroy();
      throw new Error(`${res.url.href}: answer larger than ${max} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Reads and drops the body so the connection can be reused. */
export async function drain(res: HttpResponse): Promise<void> {
  try {
    for await (const _ of res.body) {
      /* discard */
    }
  } catch {
    /* the connection went: nothing to reuse */
  }
}

export const USER_AGENT = 'tsrund/0.1 (containerd-compatible; +tsrunc)';
