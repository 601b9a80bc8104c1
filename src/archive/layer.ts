// Applying one layer blob: media type checked, compression found from the
// first bytes (containerd's DecompressStream: gzip, zstd or plain tar, so a
// mislabelled docker layer still works), decompressed (zlib for gzip, the
// system's libzstd for zstd), hashed into the diff ID (sha256 of the whole
// uncompressed stream, trailing bytes included) and written by LayerWriter
// as it streams. A failure names the stage: the decompressor, the tar
// reader (with the archive offset) or the member being written.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ErrdefsError } from '../errdefs.js';
import { LayerWriter, type ApplyStats, type ApplyTarget } from './apply.js';
import { TarReader } from './tar.js';
import { ZstdDecompress, zstdUnavailable } from './zstd.js';

export const MEDIA_TYPE_LAYER = 'application/vnd.oci.image.layer.v1.tar';
export const MEDIA_TYPE_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const MEDIA_TYPE_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
export const MEDIA_TYPE_DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar';
export const MEDIA_TYPE_DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

export type Compression = 'none' | 'gzip' | 'zstd';

/**
 * The compression a layer media type declares (containerd's
 * images.DiffCompression); 'unknown' for docker's plain tar type, which may
 * be compressed anyway. NotImplemented for anything that is not a layer.
 */
export function layerCompression(mediaType: string): Compression | 'unknown' {
  const [base = '', ...ext] = mediaType.split('+');
  switch (base) {
    case MEDIA_TYPE_DOCKER_LAYER:
    case 'application/vnd.docker.image.rootfs.foreign.diff.tar':
      if (ext.length === 0) return 'unknown';
      break;
    case MEDIA_TYPE_DOCKER_LAYER_GZIP:
    case 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip':
      if (ext.length === 0) return 'gzip';
      break;
    case MEDIA_TYPE_LAYER:
    case 'application/vnd.oci.image.layer.nondistributable.v1.tar':
      if (ext.length === 0) return 'none';
      if (ext.length === 1 && ext[0] === 'gzip') return 'gzip';
      if (ext.length === 1 && ext[0] === 'zstd') return 'zstd';
      break;
  }
  throw new ErrdefsError('not implemented', `unsupported layer media type ${JSON.stringify(mediaType)}`);
}

/** The compression of a stream from its first bytes. */
export function sniffCompression(head: Buffer): Compression {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

export interface LayerResult {
  /** sha256 of the uncompressed tar */
  diffId: string;
  /** bytes of the uncompressed tar */
  size: number;
  stats: ApplyStats;
}

export interface ApplyLayerOptions {
  /** the diff ID the layer must have (checked once it is all read) */
  expectedDiffId?: string | undefined;
  signal?: AbortSignal | undefined;
}

const GUNZIP_CHUNK = 256 * 1024;

/** Unpacks a (compressed) layer stream onto target.root; the caller removes what was written if this throws. */
export async function applyLayer(blob: Readable, mediaType: string, target: ApplyTarget, opts: ApplyLayerOptions = {}): Promise<LayerResult> {
  const declared = layerCompression(mediaType);
  if (declared === 'zstd') {
    const why = zstdUnavailable();
    if (why) throw new ErrdefsError('not implemented', `layer media type ${mediaType}: ${why}`);
  }
  const source = blob[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let first: IteratorResult<Buffer>;
  try {
    first = await source.next();
  } catch (e) {
    throw new Error(`read layer: ${(e as Error).message}`, { cause: e });
  }
  const head = first.done ? Buffer.alloc(0) : first.value;
  const compression = sniffCompression(head);
  let decompressor: NodeJS.ReadWriteStream | undefined;
  if (compression === 'gzip') decompressor = createGunzip({ chunkSize: GUNZIP_CHUNK });
  else if (compression === 'zstd') {
    const why = zstdUnavailable();
    if (why) throw new ErrdefsError('not implemented', `layer is zstd-compressed: ${why}`);
    decompressor = new ZstdDecompress();
  }

  const writer = new LayerWriter(target);
  const reader = new TarReader(writer);
  const hash = createHash('sha256');
  let size = 0;
  const consume = (chunk: Buffer): void => {
    hash.update(chunk);
    size += chunk.length;
    reader.write(chunk);
  };
  try {
    if (!decompressor) {
      if (!first.done) consume(head);
      for (;;) {
        opts.signal?.throwIfAborted();
        const r = await source.next();
        if (r.done) break;
        consume(r.value);
      }
    } else {
      const d = decompressor;
      const feed = (async () => {
        if (!first.done) await writeTo(d, head);
        for (;;) {
          const r = await source.next();
          if (r.done) break;
          await writeTo(d, r.value);
        }
        d.end();
      })();
      feed.catch((e: Error) => (d as unknown as Readable).destroy(new Error(`read layer: ${e.message}`, { cause: e })));
      try {
        for await (const chunk of d as AsyncIterable<Buffer>) {
          opts.signal?.throwIfAborted();
          consume(chunk);
        }
      } catch (e) {
        if (e instanceof Error && (e as NodeJS.ErrnoException).code?.startsWith('Z_')) throw new Error(`decompress ${compression} layer: ${e.message}`, { cause: e });
        throw e;
      }
      await feed;
    }
    reader.end();
    writer.finish();
  } catch (e) {
    writer.close();
    (decompressor as unknown as Readable | undefined)?.destroy();
    blob.destroy();
    throw e;
  }
  const diffId = `sha256:${hash.digest('hex')}`;
  if (opts.expectedDiffId && opts.expectedDiffId !== diffId) {
    throw new ErrdefsError('failed precondition', `layer diff ID ${diffId} does not match the expected ${opts.expectedDiffId}`);
  }
  return { diffId, size, stats: writer.stats };
}

function writeTo(w: NodeJS.WritableStream, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (w.write(chunk)) return resolve();
    const onDrain = (): void => {
      cleanup();
      resolve();
    };
    const onError = (e: Error): void => {
      cleanup();
      reject(e);
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error('decompressor closed'));
    };
    const cleanup = (): void => {
      w.removeListener('drain', onDrain);
      w.removeListener('error', onError);
      w.removeListener('close', onClose);
    };
    w.once('drain', onDrain);
    w.once('error', onError);
    w.once('close', onClose);
  });
}
