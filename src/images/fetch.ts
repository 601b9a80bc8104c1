// Blobs from a registry into the content store: through an ingest (ref
// "<kind>-<digest>", as containerd names them), digest computed while the
// bytes stream in and checked before the rename that commits, resumed with a
// Range request after a dropped connection (retries with backoff), refused
// and removed when the bytes do not match. Also small blobs from memory, and
// labels merged onto blobs that were already there.
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrdefsError, isAlreadyExists, isFailedPrecondition, errClassOf } from '../errdefs.js';
import type { ContentStore, ContentWriter } from '../content/store.js';
import type { RegistryClient } from './registry/client.js';
import { NetworkError } from './registry/http.js';
import type { OciDescriptor } from './media.js';

export interface BlobTarget {
  content: ContentStore;
  namespace: string;
  lease?: string | undefined;
  signal?: AbortSignal | undefined;
}

/** The ingest ref containerd's fetcher uses: "layer-sha256:...", "manifest-...", "index-...", "config-...". */
export function refKey(kind: 'layer' | 'manifest' | 'index' | 'config' | 'blob', digest: string): string {
  return `${kind}-${digest}`;
}

/** Adds labels to a blob the namespace has (only the keys given). */
export function mergeLabels(t: BlobTarget, digest: string, labels: Record<string, string>): void {
  const keys = Object.keys(labels);
  if (keys.length === 0) return;
  t.content.update(t.namespace, digest, labels, keys.map((k) => `labels.${k}`));
}

/**
 * Opens a writer for the blob, waiting while another pull holds the same
 * ref; undefined when the blob is already there (in this namespace, or
 * linked from another).
 */
export async function openWriter(t: BlobTarget, ref: string, desc: OciDescriptor): Promise<ContentWriter | undefined> {
  for (let wait = 50; ; wait = Math.min(wait * 2, 1000)) {
    try {
      return await t.content.writer(t.namespace, ref, { expected: desc.digest, total: desc.size, lease: t.lease });
    } catch (e) {
      if (isAlreadyExists(e)) {
        if (t.lease) t.content.link(t.namespace, desc.digest, desc.size, {}, t.lease);
        return undefined;
      }
      if (errClassOf(e) !== 'unavailable') throw e;
      await sleep(wait, undefined, { signal: t.signal });
    }
  }
}

/** Stores bytes already in memory (manifests, configs) as a blob with labels. */
export async function putBlob(t: BlobTarget, ref: string, desc: OciDescriptor, data: Buffer, labels: Record<string, string> = {}): Promise<void> {
  const w = await openWriter(t, ref, desc);
  if (!w) return mergeLabels(t, desc.digest, labels);
  try {
    if (w.offset > 0) await w.truncate(0);
    await w.write(data);
    await w.commit(desc.size, desc.digest, labels);
  } catch (e) {
    if (isAlreadyExists(e)) return mergeLabels(t, desc.digest, labels);
    await w.close();
    if (isFailedPrecondition(e)) await t.content.abort(t.namespace, ref).catch(() => {});
    throw e;
  } finally {
    await w.close();
  }
}

export interface FetchOptions {
  /** called with the bytes there so far (resumed bytes included) */
  onBytes?: (current: number) => void;
  /** tries after a failure of the connection (default 5) */
  attempts?: number;
  backoffMs?: number;
  /** where the registry sent it, for messages */
  display: string;
}

/** A download that failed with its ingest kept for a later resume. */
export class ResumableError extends Error {
  constructor(
    message: string,
    readonly ref: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'ResumableError';
  }
}

/**
 * Downloads a blob into content. Returns false when it was already there.
 * Connection failures are retried from the offset reached (Range); after
 * the last try the ingest stays, resumable (ResumableError). A digest or
 * size mismatch removes the ingest: nothing is committed.
 */
export async function fetchBlob(t: BlobTarget, client: RegistryClient, repo: string, desc: OciDescriptor, ref: string, labels: Record<string, string>, o: FetchOptions): Promise<boolean> {
  const w = await openWriter(t, ref, desc);
  if (!w) {
    mergeLabels(t, desc.digest, labels);
    o.onBytes?.(desc.size);
    return false;
  }
  const attempts = o.attempts ?? 5;
  const mismatch = async (why: string): Promise<never> => {
    await w.close();
    await t.content.abort(t.namespace, ref).catch(() => {});
    throw new ErrdefsError('failed precondition', `blob ${desc.digest} of ${o.display}: ${why}; nothing was committed`);
  };
  try {
    for (let attempt = 1; w.offset < desc.size || desc.size === 0; attempt++) {
      if (w.offset > desc.size) await w.truncate(0);
      try {
        const res = await client.openBlob(repo, desc.digest, w.offset);
        if (res.status === 200 && w.offset > 0) await w.truncate(0);
        if (res.status === 206) {
          const start = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''))?.[1];
          if (start !== undefined && Number(start) !== w.offset) {
            res.body.destroy();
            await w.truncate(0);
            continue;
          }
        }
        o.onBytes?.(w.offset);
        for await (const chunk of res.body) {
          const b = chunk as Buffer;
          if (w.offset + b.length > desc.size) {
            res.body.destroy();
            await mismatch(`the registry sent more than the ${desc.size} bytes the manifest gives`);
          }
          await w.write(b);
          o.onBytes?.(w.offset);
        }
        if (w.offset < desc.size) throw new NetworkError(`blob ${desc.digest}: the connection ended at byte ${w.offset} of ${desc.size}`, 'ECONNRESET');
        break;
      } catch (e) {
        if (t.signal?.aborted) throw e;
        const network = e instanceof NetworkError || (e as NodeJS.ErrnoException).code === 'ECONNRESET' || (e as Error).message === 'aborted' || (e as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE';
        if (!network) throw e;
        if (attempt >= attempts) {
          throw new ResumableError(
            `blob ${desc.digest} of ${o.display}: the download failed ${attempts} times (last: ${(e as Error).message}); the ${w.offset} bytes received are kept in ingest ${ref} and the next pull resumes from there`,
            ref,
            w.offset,
          );
        }
        await sleep(250 * 2 ** (attempt - 1), undefined, { signal: t.signal });
      }
      if (desc.size === 0) break;
    }
    if (w.offset !== desc.size) await mismatch(`received ${w.offset} bytes, the manifest gives ${desc.size}`);
    const got = w.digest();
    if (got !== desc.digest) await mismatch(`the registry sent content with digest ${got}`);
    try {
      await w.commit(desc.size, desc.digest, labels);
    } catch (e) {
      if (isAlreadyExists(e)) {
        mergeLabels(t, desc.digest, labels);
        return false;
      }
      throw e;
    }
    return true;
  } finally {
    await w.close();
  }
}
