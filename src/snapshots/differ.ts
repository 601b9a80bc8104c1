// diff.v1 on the directories that snapshot mounts name, without mounting
// them (containerd's walking differ, for the mounts our snapshotter returns):
// Apply writes a layer blob from the content store into the upper dir of an
// overlay mount (overlay whiteouts, parents from lowerdir) or into the source
// of a read-write bind (whiteouts delete); Diff writes the upper dir of an
// overlay mount over left's layers (or a whole bind when left is empty) as a
// layer blob into the content store.
import { randomBytes, createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { createGzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { invalidArgument, isAlreadyExists, notImplemented } from '../errdefs.js';
import { applyLayer, MEDIA_TYPE_LAYER, MEDIA_TYPE_LAYER_GZIP, layerCompression } from '../archive/layer.js';
import type { ApplyTarget } from '../archive/apply.js';
import { tarDirectory, type DiffMode } from '../archive/diff.js';
import type { SnapshotMount } from './overlay.js';

export const LABEL_UNCOMPRESSED = 'containerd.io/uncompressed';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** What the differ needs of the content store. */
export interface DiffContent {
  readStream(namespace: string, digest: string): Readable;
  writer(namespace: string, ref: string, opts: { lease?: string | undefined }): Promise<{
    write(data: Uint8Array): Promise<void>;
    commit(size: number, expected: string, labels?: Record<string, string>): Promise<string>;
    close(): Promise<void>;
  }>;
  abort(namespace: string, ref: string): Promise<void>;
}

interface Layers {
  /** the writable layer, if any */
  upper: string | undefined;
  /** read-only layers, top-most first */
  lowers: string[];
}

function option(m: SnapshotMount, key: string): string | undefined {
  const o = m.options.find((x) => x.startsWith(`${key}=`));
  return o?.slice(key.length + 1);
}

/** The layer directories a mount list stands for. */
export function layersOf(mounts: readonly SnapshotMount[]): Layers {
  if (mounts.length === 0) return { upper: undefined, lowers: [] };
  if (mounts.length > 1) throw notImplemented(`${mounts.length} mounts: only one overlay or bind mount is supported`);
  const m = mounts[0]!;
  if (m.type === 'overlay') {
    const lower = option(m, 'lowerdir');
    return { upper: option(m, 'upperdir'), lowers: lower ? lower.split(':') : [] };
  }
  if (m.type === 'bind' || m.type === 'rbind') {
    if (!m.source) throw invalidArgument('bind mount without a source');
    return m.options.includes('ro') ? { upper: undefined, lowers: [m.source] } : { upper: m.source, lowers: [] };
  }
  throw notImplemented(`mount type ${JSON.stringify(m.type)}: only overlay and bind mounts are supported`);
}

/** Where Apply writes for these mounts. */
export function applyTarget(mounts: readonly SnapshotMount[]): ApplyTarget {
  if (mounts.length === 0) throw invalidArgument('no mounts to apply the layer onto');
  const l = layersOf(mounts);
  if (!l.upper) throw invalidArgument('the mounts are read-only: no upper directory or writable bind to apply the layer onto');
  return mounts[0]!.type === 'overlay' ? { root: l.upper, whiteouts: 'overlay', parents: l.lowers } : { root: l.upper, whiteouts: 'remove' };
}

export class Differ {
  constructor(private readonly content: DiffContent) {}

  /** Extracts the blob desc names onto the mounts; returns the uncompressed layer's descriptor. */
  async apply(namespace: string, desc: Descriptor, mounts: readonly SnapshotMount[], signal?: AbortSignal): Promise<Descriptor> {
    if (!desc.digest) throw invalidArgument('diff descriptor must have a digest');
    layerCompression(desc.mediaType);
    const target = applyTarget(mounts);
    const blob = this.content.readStream(namespace, desc.digest);
    const r = await applyLayer(blob, desc.mediaType, target, { signal });
    return { mediaType: MEDIA_TYPE_LAYER, digest: r.diffId, size: r.size };
  }

  /** The changes from left to right as a layer blob in the content store. */
  async diff(
    namespace: string,
    left: readonly SnapshotMount[],
    right: readonly SnapshotMount[],
    o: { mediaType?: string; ref?: string; labels?: Record<string, string>; lease?: string | undefined } = {},
  ): Promise<Descriptor> {
    const mediaType = o.mediaType || MEDIA_TYPE_LAYER_GZIP;
    const compression = layerCompression(mediaType);
    if (compression === 'zstd' || compression === 'unknown') throw notImplemented(`diff: cannot write ${mediaType} layers (tar and tar+gzip only)`);
    const { dir, mode } = diffSource(left, right);
    const ref = o.ref || `diff-${Date.now()}-${randomBytes(6).toString('hex')}`;
    const w = await this.content.writer(namespace, ref, { lease: o.lease });
    const uncompressed = createHash('sha256');
    const compressed = createHash('sha256');
    let committed = false;
    try {
      const tar = Readable.from(
        (async function* () {
          for await (const chunk of tarDirectory(dir, mode)) {
            uncompressed.update(chunk);
            yield chunk;
          }
        })(),
      );
      const out = compression === 'gzip' ? tar.pipe(createGzip()) : tar;
      tar.once('error', (e) => out.destroy(e));
      let size = 0;
      for await (const chunk of out) {
        compressed.update(chunk as Buffer);
        await w.write(chunk as Buffer);
        size += (chunk as Buffer).length;
      }
      const labels = { ...(o.labels ?? {}), [LABEL_UNCOMPRESSED]: `sha256:${uncompressed.digest('hex')}` };
      let digest: string;
      try {
        digest = await w.commit(size, '', labels);
      } catch (e) {
        // the same layer is there already (the store took it into the lease): as containerd's differ, that is the answer
        if (!isAlreadyExists(e)) throw e;
        digest = `sha256:${compressed.digest('hex')}`;
      }
      committed = true;
      return { mediaType, digest, size };
    } finally {
      if (!committed) {
        await w.close().catch(() => {});
        await this.content.abort(namespace, ref).catch(() => {});
      }
    }
  }
}

/**
 * The directory whose walk is the diff: right must be left plus one layer on
 * top (an overlay's upper dir, or the top lowerdir of a view), or, against
 * empty left mounts, a single bind. A layer from an overlay mount is an
 * upper dir, so its whiteouts are overlay whiteouts.
 */
function diffSource(left: readonly SnapshotMount[], right: readonly SnapshotMount[]): { dir: string; mode: DiffMode } {
  const l = layersOf(left);
  const r = layersOf(right);
  const below = l.upper ? [l.upper, ...l.lowers] : l.lowers;
  const layers = r.upper ? [r.upper, ...r.lowers] : r.lowers;
  const [top, ...rest] = layers;
  if (!top) throw invalidArgument('diff: no right mounts');
  // an empty layer changes nothing: a view of "no parent" (what containerd's
  // CreateDiff takes as left for a first layer) is an empty directory
  const nonEmpty = (dirs: string[]) => dirs.filter((d) => readdirSync(d).length > 0);
  if (nonEmpty(rest).join(':') !== nonEmpty(below).join(':')) {
    throw notImplemented("diff: right is not left plus one layer (only the snapshotter's own mounts of a snapshot and its parent are compared)");
  }
  return { dir: top, mode: right[0]!.type === 'overlay' ? 'overlay' : 'plain' };
}
