// diff.v1 over the snapshotter's mounts (containerd's walking differ):
// Apply writes a layer blob from the content store into the upper dir of an
// overlay mount (overlay whiteouts, parents from lowerdir) or into the source
// of a read-write bind (whiteouts delete). Diff writes the changes from left
// to right as a layer blob (tar, tar+gzip or tar+zstd) into the content
// store: when right is left plus one layer (the snapshotter's own mounts of
// a snapshot and its parent) that layer's directory is archived as it is,
// without mounting; any other pair is mounted read-only in a temp dir and
// the two trees are compared.
import { randomBytes, createHash } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { createGzip } from 'node:zlib';
import { invalidArgument, isAlreadyExists, notImplemented } from '../errdefs.js';
import { applyLayer, MEDIA_TYPE_LAYER, MEDIA_TYPE_LAYER_GZIP, layerCompression } from '../archive/layer.js';
import { applyLayerFile } from '../archive/layer-thread.js';
import type { ApplyTarget } from '../archive/apply.js';
import { tarChanges } from '../archive/changes.js';
import { tarDirectory } from '../archive/diff.js';
import { ZstdCompress, zstdUnavailable } from '../archive/zstd.js';
import type { SnapshotMount } from './overlay.js';
import { mountOption } from './mount-options.js';
import { readonlyMounts, withTempMounts } from './temp-mount.js';

export const LABEL_UNCOMPRESSED = 'containerd.io/uncompressed';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** What the differ needs of the content store. */
export interface DiffContent {
  readStream(namespace: string, digest: string): Readable;
  /** the blob's file, for the layer thread (optional) */
  pathOf?(namespace: string, digest: string): string;
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

/** The layer directories a mount list stands for. */
export function layersOf(mounts: readonly SnapshotMount[]): Layers {
  if (mounts.length === 0) return { upper: undefined, lowers: [] };
  if (mounts.length > 1) throw notImplemented(`${mounts.length} mounts: only one overlay or bind mount is supported`);
  const m = mounts[0]!;
  if (m.type === 'overlay') {
    const lower = mountOption(m, 'lowerdir');
    return { upper: mountOption(m, 'upperdir'), lowers: lower ? lower.split(':') : [] };
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

export interface DifferOptions {
  /** where Diff mounts trees it compares (containerd's <root>/tmpmounts) */
  tmpRoot?: string;
}

export class Differ {
  private readonly tmpRoot: string;

  constructor(
    private readonly content: DiffContent,
    opts: DifferOptions = {},
  ) {
    this.tmpRoot = opts.tmpRoot ?? join(tmpdir(), 'tsrund-tmpmounts');
  }

  /** Extracts the blob desc names onto the mounts; returns the uncompressed layer's descriptor. */
  async apply(namespace: string, desc: Descriptor, mounts: readonly SnapshotMount[], signal?: AbortSignal): Promise<Descriptor> {
    if (!desc.digest) throw invalidArgument('diff descriptor must have a digest');
    layerCompression(desc.mediaType);
    const target = applyTarget(mounts);
    const r = this.content.pathOf
      ? await applyLayerFile({ blobPath: this.content.pathOf(namespace, desc.digest), mediaType: desc.mediaType, target }, { signal })
      : await applyLayer(this.content.readStream(namespace, desc.digest), desc.mediaType, target, { signal });
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
    const compress = compressor(mediaType);
    if (right.length === 0) throw invalidArgument('diff: no right mounts');
    const roLeft = readonlyMounts(left);
    const roRight = readonlyMounts(right);
    const layer = topLayer(left, right);
    const tar = layer
      ? tarDirectory(layer.dir, right[0]!.type === 'overlay' ? 'overlay' : 'plain')
      : withTempMounts(this.tmpRoot, [roLeft, roRight], ([l, r]) => tarChanges(l!, r!));
    const ref = o.ref || `diff-${Date.now()}-${randomBytes(6).toString('hex')}`;
    let w: Awaited<ReturnType<DiffContent['writer']>> | undefined;
    const uncompressed = createHash('sha256');
    const compressed = createHash('sha256');
    const out = compress?.();
    const stop = new AbortController();
    let committed = false;
    try {
      const writer = (w = await this.content.writer(namespace, ref, { lease: o.lease }));
      let size = 0;
      const sink = async (chunk: Buffer): Promise<void> => {
        compressed.update(chunk);
        await writer.write(chunk);
        size += chunk.length;
      };
      if (!out) {
        for await (const chunk of tar) {
          uncompressed.update(chunk);
          await sink(chunk);
        }
      } else {
        const feed = (async () => {
          for await (const chunk of tar) {
            uncompressed.update(chunk);
            if (!out.write(chunk)) await once(out, 'drain', { signal: stop.signal });
          }
          out.end();
        })();
        feed.catch((e: Error) => out.destroy(e));
        for await (const chunk of out) await sink(chunk as Buffer);
        await feed;
      }
      const labels = { ...(o.labels ?? {}), [LABEL_UNCOMPRESSED]: `sha256:${uncompressed.digest('hex')}` };
      let digest: string;
      try {
        digest = await writer.commit(size, '', labels);
      } catch (e) {
        // the same layer is there already (the store took it into the lease): as containerd's differ, that is the answer
        if (!isAlreadyExists(e)) throw e;
        digest = `sha256:${compressed.digest('hex')}`;
      }
      committed = true;
      return { mediaType, digest, size };
    } finally {
      stop.abort();
      out?.destroy();
      // ends the walk (its temp mounts with it) before the caller hears of the outcome
      await tar.return(undefined);
      if (!committed && w) {
        await w.close().catch(() => {});
        await this.content.abort(namespace, ref).catch(() => {});
      }
    }
  }
}

/** A factory of the compressor mediaType asks for (undefined: plain tar); not implemented for what cannot be written. */
function compressor(mediaType: string): (() => Transform) | undefined {
  const compression = layerCompression(mediaType);
  switch (compression) {
    case 'none':
      return undefined;
    case 'gzip':
      return () => createGzip();
    case 'zstd': {
      const why = zstdUnavailable();
      if (why) throw notImplemented(`diff: cannot write ${mediaType} layers: ${why}`);
      return () => new ZstdCompress();
    }
    case 'unknown':
      throw notImplemented(`diff: cannot write ${mediaType} layers (an OCI tar, tar+gzip or tar+zstd layer type is needed)`);
  }
}

/**
 * The directory that is the whole diff when right is left plus one layer
 * on top (an overlay's upper dir, or the top lowerdir of a view), or,
 * against empty left mounts, a single bind; undefined for any other pair.
 * A layer of an overlay mount is an upper dir: its whiteouts are overlay
 * whiteouts.
 */
function topLayer(left: readonly SnapshotMount[], right: readonly SnapshotMount[]): { dir: string } | undefined {
  if (left.length > 1 || right.length !== 1) return undefined;
  const l = layersOf(left);
  const r = layersOf(right);
  const below = l.upper ? [l.upper, ...l.lowers] : l.lowers;
  const [top, ...rest] = r.upper ? [r.upper, ...r.lowers] : r.lowers;
  if (!top) return undefined;
  // an empty layer changes nothing: a view of "no parent" (what containerd's
  // CreateDiff takes as left for a first layer) is an empty directory
  try {
    const nonEmpty = (dirs: string[]) => dirs.filter((d) => readdirSync(d).length > 0);
    return nonEmpty(rest).join(':') === nonEmpty(below).join(':') ? { dir: top } : undefined;
  } catch {
    // a layer that cannot be read: mounting says why
    return undefined;
  }
}
