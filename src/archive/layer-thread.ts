// Applying a layer blob on a worker thread (tsrund's own pulls): the tar
// parsing, hashing and file system calls of one layer then run beside the
// main thread, which keeps downloading and verifying the next blobs and
// serving the API. The worker is dist/apply-worker.cjs, next to the daemon's
// bundle; where it is not (the sources run directly, as in unit tests) the
// layer is applied on the calling thread, with the same result.
import { existsSync, createReadStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ErrdefsError, type ErrClass } from '../errdefs.js';
import type { ApplyTarget } from './apply.js';
import { applyLayer, type ApplyLayerOptions, type LayerResult } from './layer.js';

export interface ApplyJob {
  blobPath: string;
  mediaType: string;
  target: ApplyTarget;
  expectedDiffId?: string | undefined;
}

/** What crosses from the worker: an Error's fields that the daemon's errors and their gRPC codes use. */
export interface WireError {
  message: string;
  errClass?: ErrClass;
  detail?: string;
  code?: string;
  syscall?: string;
  errno?: number;
  path?: string;
}

export type ApplyReply = { ok: LayerResult } | { error: WireError };

export function encodeError(e: unknown): WireError {
  if (!(e instanceof Error)) return { message: String(e) };
  const f = e as Error & Partial<Record<'code' | 'syscall' | 'path', string>> & { errno?: number };
  const w: WireError = { message: e.message };
  if (e instanceof ErrdefsError) {
    w.errClass = e.errClass;
    w.detail = e.detail;
  }
  if (typeof f.code === 'string') w.code = f.code;
  if (typeof f.syscall === 'string') w.syscall = f.syscall;
  if (typeof f.errno === 'number') w.errno = f.errno;
  if (typeof f.path === 'string') w.path = f.path;
  return w;
}

export function decodeError(w: WireError): Error {
  const e = w.errClass !== undefined ? new ErrdefsError(w.errClass, w.detail ?? '') : new Error(w.message);
  const { code, syscall, errno, path } = w;
  return Object.assign(e, code !== undefined ? { code } : {}, syscall !== undefined ? { syscall } : {}, errno !== undefined ? { errno } : {}, path !== undefined ? { path } : {});
}

const WORKER_FILE = fileURLToPath(new URL('./apply-worker.cjs', import.meta.url));
// workers kept for the next layers of a pull, not for long: each holds its own heap
const MAX_IDLE = 2;
const IDLE_MS = 5_000;
const idle: Array<{ w: Worker; timer: NodeJS.Timeout }> = [];

let available: boolean | undefined;

/** Whether layers go to a worker thread here (the daemon's build has its script); looked up once. */
export function layerThreadAvailable(): boolean {
  available ??= existsSync(WORKER_FILE);
  return available;
}

/** Applies the blob at job.blobPath (a file of the content store) onto job.target, on a worker thread when there is one. */
export async function applyLayerFile(job: ApplyJob, opts: Pick<ApplyLayerOptions, 'signal'> = {}): Promise<LayerResult> {
  const { signal } = opts;
  signal?.throwIfAborted();
  if (!layerThreadAvailable()) {
    const blob = createReadStream(job.blobPath, { highWaterMark: 1 << 20 });
    return applyLayer(blob, job.mediaType, job.target, { expectedDiffId: job.expectedDiffId, signal });
  }
  const kept = idle.pop();
  if (kept) clearTimeout(kept.timer);
  const w = kept?.w ?? new Worker(WORKER_FILE);
  w.ref();
  return new Promise<LayerResult>((resolve, reject) => {
    const cleanup = (): void => {
      w.off('message', onMessage);
      w.off('error', onError);
      w.off('exit', onExit);
      signal?.removeEventListener('abort', onAbort);
    };
    // the caller removes what was written: only once the thread has stopped writing
    const fail = (e: unknown): void => {
      cleanup();
      void w.terminate().finally(() => reject(e));
    };
    const onMessage = (r: ApplyReply): void => {
      cleanup();
      park(w);
      if ('ok' in r) resolve(r.ok);
      else reject(decodeError(r.error));
    };
    const onError = (e: Error): void => fail(new Error(`layer applier thread: ${e.message}`, { cause: e }));
    const onExit = (code: number): void => {
      cleanup();
      reject(new Error(`layer applier thread exited with status ${code}`));
    };
    const onAbort = (): void => fail(signal?.reason);
    w.on('message', onMessage);
    w.on('error', onError);
    w.on('exit', onExit);
    signal?.addEventListener('abort', onAbort, { once: true });
    w.postMessage(job);
  });
}

/** Starts up to n workers now (a pull, before its blobs are in): a thread takes tens of ms to boot. */
export function prewarmLayerThreads(n: number): void {
  if (!layerThreadAvailable()) return;
  while (idle.length < Math.min(n, MAX_IDLE)) park(new Worker(WORKER_FILE));
}

function park(w: Worker): void {
  if (idle.length >= MAX_IDLE) {
    void w.terminate();
    return;
  }
  w.unref(); // an idle worker must not keep the daemon alive
  const entry = {
    w,
    timer: setTimeout(() => {
      idle.splice(idle.indexOf(entry), 1);
      void w.terminate();
    }, IDLE_MS).unref(),
  };
  idle.push(entry);
}
