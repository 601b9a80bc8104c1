// Layers to snapshots: for an image in content (pulled or imported), the
// platform's manifest and config, then each layer unpacked on its parent
// (chain IDs as keys; an existing chain ID is reused, not unpacked again),
// the layer labelled with its uncompressed digest and the config with the
// top snapshot (containerd.io/gc.ref.snapshot.<snapshotter>), as
// containerd's unpacker labels them.
import { availableParallelism } from 'node:os';
import { ErrdefsError, invalidArgument, notFound, wrap } from '../errdefs.js';
import { limiter } from './limit.js';
import { sha256 } from '../content/digest.js';
import type { ImageRecord } from '../metadata/index.js';
import { mergeLabels, type BlobTarget } from './fetch.js';
import { chainIds, formatPlatform, hostPlatform, isIndex, isManifest, parseJson, selectManifest, type ImageConfig, type ImageIndex, type ImageManifest, type OciDescriptor, type Platform } from './media.js';
import { LABEL_SNAPSHOT_REF, LABEL_UNCOMPRESSED, shortId, withLease, type ImageDeps, type PullEvent, type Unpacker } from './pull.js';

export interface ResolvedImage {
  manifestDesc: OciDescriptor;
  manifest: ImageManifest;
  config: ImageConfig;
  diffIds: string[];
  chain: string[];
}

/** The platform's manifest and config of an image target in content. */
export async function readImage(deps: ImageDeps, namespace: string, target: OciDescriptor, platform: Platform = hostPlatform(), display = target.digest): Promise<ResolvedImage> {
  let desc = target;
  if (isIndex(desc.mediaType)) {
    const index = parseJson<ImageIndex>(await deps.content.readAll(namespace, desc.digest), `index ${desc.digest} of ${display}`);
    const m = selectManifest(index, platform);
    if (!m) throw notFound(`no match for platform ${formatPlatform(platform)} in manifest ${desc.digest} of ${display}`);
    desc = m;
  }
  if (!isManifest(desc.mediaType)) throw invalidArgument(`${display}: ${desc.mediaType} is not an image manifest`);
  const manifest = parseJson<ImageManifest>(await deps.content.readAll(namespace, desc.digest), `manifest ${desc.digest} of ${display}`);
  const config = parseJson<ImageConfig>(await deps.content.readAll(namespace, manifest.config.digest), `config ${manifest.config.digest} of ${display}`);
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) {
    throw invalidArgument(`${display}: the config lists ${diffIds.length} layer diff IDs, the manifest ${manifest.layers.length} layers`);
  }
  return { manifestDesc: desc, manifest, config, diffIds, chain: chainIds(diffIds, sha256) };
}

export interface UnpackLayersOptions {
  target: BlobTarget;
  layers: OciDescriptor[];
  diffIds: string[];
  chain: string[];
  unpacker: Unpacker;
  configDigest: string;
  display: string;
  emit: (e: PullEvent) => void;
  /** per layer: resolves (true: it was downloaded now) once the blob is in content */
  ready?: Array<Promise<boolean>>;
}

/** Unpacks the layers, each once its blob is ready (side by side where the unpacker can); labels as containerd does. */
export async function unpackLayers(o: UnpackLayersOptions): Promise<void> {
  const { target: t, unpacker } = o;
  const todo: boolean[] = [];
  for (const c of o.chain) todo.push(!(await unpacker.exists(t.namespace, c)));
  const { extractStaged, commitStaged, discardStaged } = unpacker;
  if (extractStaged && commitStaged && discardStaged && todo.filter(Boolean).length > 1) {
    await unpackSideBySide(o, todo, {
      prewarm: unpacker.prewarmStaged?.bind(unpacker),
      extract: extractStaged.bind(unpacker),
      commit: commitStaged.bind(unpacker),
      discard: discardStaged.bind(unpacker),
    });
  } else {
    await unpackInOrder(o, todo);
  }
  const top = o.chain[o.chain.length - 1];
  if (top) mergeLabels(t, o.configDigest, { [`${LABEL_SNAPSHOT_REF}${unpacker.snapshotter}`]: top });
}

/** A layer whose chain ID is a snapshot already: labelled, reported. */
async function alreadyUnpacked(o: UnpackLayersOptions, i: number): Promise<void> {
  const l = o.layers[i]!;
  const fresh = o.ready ? await o.ready[i]! : true;
  mergeLabels(o.target, l.digest, { [LABEL_UNCOMPRESSED]: o.diffIds[i]! });
  o.emit({ kind: 'layer', id: shortId(l.digest), status: fresh && o.ready ? 'Pull complete' : 'Already exists' });
}

/** The diff ID a layer unpacked to must be the config's. */
function checkDiffId(o: UnpackLayersOptions, i: number, diffId: string): void {
  if (diffId !== o.diffIds[i]) {
    throw new ErrdefsError('failed precondition', `layer ${o.layers[i]!.digest} of ${o.display}: unpacked to diff ID ${diffId}, the config says ${o.diffIds[i]}`);
  }
}

/** A layer now a snapshot: labelled with its diff ID, reported. */
function unpacked(o: UnpackLayersOptions, i: number, diffId: string): void {
  const l = o.layers[i]!;
  mergeLabels(o.target, l.digest, { [LABEL_UNCOMPRESSED]: diffId });
  o.emit({ kind: 'layer', id: shortId(l.digest), status: 'Pull complete' });
}

// Layers written at the same time: more would only compete for the same cores and disk.
const MAX_SIDE_BY_SIDE = 4;

interface StagedOps {
  prewarm?: (n: number) => void;
  extract: NonNullable<Unpacker['extractStaged']>;
  commit: NonNullable<Unpacker['commitStaged']>;
  discard: NonNullable<Unpacker['discardStaged']>;
}

/**
 * Overlay layers do not read each other's files, so each is written into a
 * staged directory as soon as its blob is there (on worker threads, a few
 * at a time), and they become snapshots in order, each on its committed
 * parent. The first failure stops the others and removes what they staged.
 */
async function unpackSideBySide(o: UnpackLayersOptions, todo: boolean[], ops: StagedOps): Promise<void> {
  const { target: t } = o;
  const stop = new AbortController();
  const signal = t.signal ? AbortSignal.any([t.signal, stop.signal]) : stop.signal;
  const parallel = Math.max(1, Math.min(availableParallelism(), MAX_SIDE_BY_SIDE));
  const slots = limiter(parallel);
  ops.prewarm?.(Math.min(parallel, todo.filter(Boolean).length));
  const staged = o.layers.map((l, i) => {
    if (!todo[i]) return undefined;
    const p = (async () => {
      if (o.ready) await o.ready[i];
      return slots(async () => {
        signal.throwIfAborted();
        o.emit({ kind: 'layer', id: shortId(l.digest), status: 'Extracting', current: 0, total: l.size });
        try {
          return await ops.extract({ blobPath: t.content.blobPath(l.digest), mediaType: l.mediaType, expectedDiffId: o.diffIds[i], signal });
        } catch (e) {
          throw wrap(e, `unpack layer ${o.chain[i]}`);
        }
      });
    })();
    p.catch(() => {}); // awaited in order below; one that fails while an earlier one is awaited must not go unhandled
    return p;
  });
  const usedUp = new Set<number>();
  try {
    for (let i = 0; i < o.layers.length; i++) {
      if (!todo[i]) {
        await alreadyUnpacked(o, i);
        continue;
      }
      const s = await staged[i]!;
      usedUp.add(i);
      try {
        checkDiffId(o, i, s.diffId);
      } catch (e) {
        ops.discard(s);
        throw e;
      }
      const r = await ops.commit({ namespace: t.namespace, parentChainId: i === 0 ? undefined : o.chain[i - 1], chainId: o.chain[i]!, lease: t.lease, staged: s });
      unpacked(o, i, r.diffId);
    }
  } catch (e) {
    stop.abort(e);
    const left = await Promise.allSettled(staged.map((p, i) => (usedUp.has(i) ? undefined : p)));
    for (const r of left) if (r.status === 'fulfilled' && r.value) ops.discard(r.value);
    throw e;
  }
}

/** One layer after another, each on its committed parent. */
async function unpackInOrder(o: UnpackLayersOptions, todo: boolean[]): Promise<void> {
  const { target: t, unpacker } = o;
  for (let i = 0; i < o.layers.length; i++) {
    const l = o.layers[i]!;
    if (!todo[i]) {
      await alreadyUnpacked(o, i);
      continue;
    }
    if (o.ready) await o.ready[i];
    o.emit({ kind: 'layer', id: shortId(l.digest), status: 'Extracting', current: 0, total: l.size });
    const r = await unpacker.unpackLayer({
      namespace: t.namespace,
      parentChainId: i === 0 ? undefined : o.chain[i - 1],
      chainId: o.chain[i]!,
      blobPath: t.content.blobPath(l.digest),
      mediaType: l.mediaType,
      lease: t.lease,
      // checked before the snapshot is committed: a wrong layer leaves nothing
      expectedDiffId: o.diffIds[i],
      signal: t.signal,
    });
    checkDiffId(o, i, r.diffId);
    unpacked(o, i, r.diffId);
  }
}

export interface UnpackImageOptions {
  namespace: string;
  name: string;
  /** unpack this content instead of the named image's target (name is then for messages only) */
  target?: OciDescriptor | undefined;
  platform?: Platform | undefined;
  unpacker: Unpacker;
  lease?: string | undefined;
  progress?: (e: PullEvent) => void;
}

/** Unpacks an image record's layers, or a target's (an import, before its records exist); returns the record (if named) and the top chain ID. */
export async function unpackImage(deps: ImageDeps, o: UnpackImageOptions): Promise<{ image: ImageRecord | undefined; chainId: string | undefined; target: OciDescriptor }> {
  const image = o.target ? undefined : deps.metadata.images.get(o.namespace, o.name);
  const target = o.target ?? image!.target;
  const emit = o.progress ?? (() => {});
  const r = await readImage(deps, o.namespace, target, o.platform, o.name || target.digest);
  await withLease(deps.metadata, o.namespace, o.lease, (lease) =>
    unpackLayers({
      target: { content: deps.content, namespace: o.namespace, lease },
      layers: r.manifest.layers,
      diffIds: r.diffIds,
      chain: r.chain,
      unpacker: o.unpacker,
      configDigest: r.manifest.config.digest,
      display: o.name,
      emit,
    }),
  );
  return { image, chainId: r.chain[r.chain.length - 1], target };
}
