// A pull inside the daemon: resolve the reference, fetch the index (the
// platform's manifest), the manifest, the config and the layers into the
// content store under a lease, with containerd's labels (gc.ref.content.*
// from parents to children, distribution.source.<host>), create or update
// the image record, and unpack the layers into snapshots keyed by chain ID,
// layer i as soon as it is downloaded and layer i-1 is unpacked, while the
// later layers still download. Progress goes out as docker prints it.
import { randomBytes } from 'node:crypto';
import { ErrdefsError, invalidArgument, isNotFound, notFound } from '../errdefs.js';
import type { ContentStore } from '../content/store.js';
import { sha256 } from '../content/digest.js';
import type { ImageRecord, Metadata } from '../metadata/index.js';
import { LABEL_GC_EXPIRE } from '../metadata/gc.js';
import { fetchBlob, mergeLabels, putBlob, refKey, ResumableError, type BlobTarget } from './fetch.js';
import { limiter } from './limit.js';
import { unpackLayers } from './unpack.js';
import { chainIds, formatPlatform, hostPlatform, isIndex, isManifest, parseJson, selectManifest, type ImageConfig, type ImageIndex, type ImageManifest, type OciDescriptor, type Platform } from './media.js';
import { familiarRepository, formatReference, parseReference, type Reference } from './reference.js';
import { RegistryClient, type RegistryClientOptions } from './registry/client.js';

export const LABEL_DISTRIBUTION_SOURCE = 'containerd.io/distribution.source.';
export const LABEL_UNCOMPRESSED = 'containerd.io/uncompressed';
export const LABEL_SNAPSHOT_REF = 'containerd.io/gc.ref.snapshot.';

export type PullEvent = { kind: 'message'; text: string } | { kind: 'layer'; id: string; status: string; current?: number; total?: number };

/** How layers become snapshots (the snapshotter helper's unpackLayer, bound to a snapshotter). */
export interface Unpacker {
  /** the snapshotter's name (for the gc.ref.snapshot label) */
  snapshotter: string;
  /** whether a committed snapshot with this key exists in the namespace */
  exists(namespace: string, key: string): Promise<boolean>;
  unpackLayer(opts: { namespace: string; parentChainId: string | undefined; chainId: string; blobPath: string; mediaType: string; lease: string | undefined; expectedDiffId?: string | undefined; signal?: AbortSignal | undefined }): Promise<{ diffId: string; reused: boolean }>;
  /** Layers side by side (optional): get ready to write n layers at once ... */
  prewarmStaged?(n: number): void;
  /** ... one written before its parent is a snapshot ... */
  extractStaged?(opts: { blobPath: string; mediaType: string; expectedDiffId?: string | undefined; signal?: AbortSignal | undefined }): Promise<StagedLayerRef>;
  /** ... committed in order once its parent is ... */
  commitStaged?(opts: { namespace: string; parentChainId: string | undefined; chainId: string; lease: string | undefined; staged: StagedLayerRef }): Promise<{ diffId: string; reused: boolean }>;
  /** ... or dropped. */
  discardStaged?(staged: StagedLayerRef): void;
}

/** What the pull needs to know of a staged layer (the unpacker keeps the rest). */
export interface StagedLayerRef {
  diffId: string;
}

export interface PullOptions {
  namespace: string;
  ref: string;
  platform?: Platform | undefined;
  registry?: RegistryClientOptions;
  /** a lease to work under (the caller's); else a temporary one */
  lease?: string | undefined;
  unpacker?: Unpacker | undefined;
  labels?: Record<string, string>;
  maxConcurrentDownloads?: number;
  signal?: AbortSignal | undefined;
  progress?: (e: PullEvent) => void;
}

export interface PullResult {
  image: ImageRecord;
  /** the digest of what the reference names (index or manifest) */
  digest: string;
  /** the record was created or its target changed */
  updated: boolean;
  /** the record was created */
  created: boolean;
  /** the top layer's chain ID (the snapshot a container's rootfs is prepared from) */
  chainId: string | undefined;
}

export interface ImageDeps {
  metadata: Metadata;
  content: ContentStore;
}

/** The 12 hex digits docker shows for a layer. */
export const shortId = (digest: string): string => digest.slice(digest.indexOf(':') + 1, digest.indexOf(':') + 13);

/** Marks the temporary lease of a pull, so that the lease a failed pull kept goes when a later pull of the same name succeeds. */
export const LABEL_PULL = 'tsrund.io/pull';

/**
 * Runs fn under the caller's lease, or under a temporary one, deleted after.
 * A temporary lease is kept (24 h) when a download can resume, and removed
 * with the others of the same `key` once a later run succeeds.
 */
export async function withLease<T>(metadata: Metadata, namespace: string, lease: string | undefined, fn: (lease: string) => Promise<T>, key?: string): Promise<T> {
  if (lease) return fn(lease);
  const id = `tsrund-${Date.now()}-${randomBytes(4).toString('hex')}`;
  const labels: Record<string, string> = { [LABEL_GC_EXPIRE]: new Date(Date.now() + 24 * 3600 * 1000).toISOString() };
  if (key) labels[LABEL_PULL] = key;
  metadata.leases.create(namespace, id, labels);
  let ok = false;
  let keep = false;
  try {
    const r = await fn(id);
    ok = true;
    return r;
  } catch (e) {
    keep = e instanceof ResumableError;
    throw e;
  } finally {
    const stale = ok && key ? metadata.leases.list(namespace).filter((l) => l.labels[LABEL_PULL] === key).map((l) => l.id) : [];
    for (const l of new Set(keep ? [] : [id, ...stale])) {
      try {
        metadata.leases.delete(namespace, l);
      } catch {
        /* gone already */
      }
    }
  }
}

export async function pullImage(deps: ImageDeps, o: PullOptions): Promise<PullResult> {
  const ref = parseReference(o.ref);
  const name = formatReference(ref);
  const display = name;
  const emit = o.progress ?? (() => {});
  const platform = o.platform ?? hostPlatform();
  const client = new RegistryClient(ref.domain, { ...o.registry, signal: o.signal });
  emit({ kind: 'message', text: `${ref.digest ?? ref.tag}: Pulling from ${familiarRepository(ref)}` });
  return withLease(deps.metadata, o.namespace, o.lease, async (lease) => {
    const t: BlobTarget = { content: deps.content, namespace: o.namespace, lease, signal: o.signal };
    const source = { [`${LABEL_DISTRIBUTION_SOURCE}${ref.domain}`]: ref.path };
    const { desc: root, data: rootData } = await client.resolve(ref.path, ref.digest ?? ref.tag!, display);

    // index -> the platform's manifest
    let manifestDesc = root;
    let manifestData = rootData;
    if (isIndex(root.mediaType)) {
      const index = parseJson<ImageIndex>(rootData, `index ${root.digest} of ${display}`);
      const m = selectManifest(index, platform);
      if (!m) throw notFound(`no match for platform ${formatPlatform(platform)} in manifest ${root.digest} of ${display} (it has ${index.manifests.map((x) => (x.platform ? formatPlatform(x.platform) : '?')).join(', ') || 'none'})`);
      if (isIndex(m.mediaType)) throw invalidArgument(`${display}: nested indexes are not supported`);
      // labelled by its position: a second platform's pull must not take the first one's reference
      await putBlob(t, refKey('index', root.digest), root, rootData, { ...source, [`containerd.io/gc.ref.content.m.${index.manifests.indexOf(m)}`]: m.digest });
      manifestDesc = { mediaType: m.mediaType, digest: m.digest, size: m.size };
      manifestData = await client.fetchManifest(ref.path, manifestDesc);
    } else if (!isManifest(root.mediaType)) {
      throw invalidArgument(`${display}: ${root.mediaType} is neither an image manifest nor an index`);
    }
    const manifest = parseJson<ImageManifest>(manifestData, `manifest ${manifestDesc.digest} of ${display}`);
    if (!manifest.config?.digest || !Array.isArray(manifest.layers)) throw invalidArgument(`manifest ${manifestDesc.digest} of ${display}: no config or layers`);
    const manifestLabels: Record<string, string> = { ...source, 'containerd.io/gc.ref.content.config': manifest.config.digest };
    manifest.layers.forEach((l, i) => (manifestLabels[`containerd.io/gc.ref.content.l.${i}`] = l.digest));

    // the config first: its diff_ids name the snapshots
    await fetchBlob(t, client, ref.path, manifest.config, refKey('config', manifest.config.digest), source, { display });
    const config = parseJson<ImageConfig>(await deps.content.readAll(o.namespace, manifest.config.digest), `config ${manifest.config.digest} of ${display}`);
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== manifest.layers.length) {
      throw invalidArgument(`${display}: the config lists ${diffIds.length} layer diff IDs, the manifest ${manifest.layers.length} layers`);
    }
    const chain = chainIds(diffIds, sha256);

    const layers = manifest.layers;
    for (const l of layers) emit({ kind: 'layer', id: shortId(l.digest), status: 'Pulling fs layer' });
    const downloads = downloadAll(t, client, ref, layers, source, o.maxConcurrentDownloads ?? 3, emit, display);

    // unpack in order, each as soon as its download is done
    let unpackError: unknown;
    if (o.unpacker) {
      await unpackLayers({ target: t, layers, diffIds, chain, unpacker: o.unpacker, configDigest: manifest.config.digest, display, emit, ready: downloads }).catch((e: unknown) => {
        unpackError = e;
      });
    }
    // every download settles before the lease can go
    const settled = await Promise.allSettled(downloads);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    if (unpackError) throw unpackError;
    if (!o.unpacker) settled.forEach((s, i) => emit({ kind: 'layer', id: shortId(layers[i]!.digest), status: (s as PromiseFulfilledResult<boolean>).value ? 'Download complete' : 'Already exists' }));
    mergeLabels(t, manifest.config.digest, source);
    await putBlob(t, refKey('manifest', manifestDesc.digest), manifestDesc, manifestData, manifestLabels);

    const { image, updated, created } = saveImage(deps.metadata, o.namespace, name, root, o.labels ?? {});
    return { image, digest: root.digest, updated, created, chainId: chain[chain.length - 1] };
  }, name);
}

/** Creates the image record, or points it at the new target; updated: it changed. */
export function saveImage(metadata: Metadata, namespace: string, name: string, target: OciDescriptor, labels: Record<string, string>): { image: ImageRecord; updated: boolean; created: boolean } {
  const input = { name, labels, target: { mediaType: target.mediaType, digest: target.digest, size: target.size, annotations: target.annotations ?? {} } };
  try {
    const old = metadata.images.get(namespace, name);
    if (old.target.digest === target.digest && old.target.mediaType === target.mediaType) return { image: old, updated: false, created: false };
    return { image: metadata.images.update(namespace, { ...input, labels: { ...old.labels, ...labels } }, ['target', 'labels']), updated: true, created: false };
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  return { image: metadata.images.create(namespace, input), updated: true, created: true };
}

/** Starts the layer downloads, at most `limit` at once, in order; each promise: true when downloaded, false when already there. */
function downloadAll(
  t: BlobTarget,
  client: RegistryClient,
  ref: Reference,
  layers: OciDescriptor[],
  source: Record<string, string>,
  limit: number,
  emit: (e: PullEvent) => void,
  display: string,
): Promise<boolean>[] {
  const slots = limiter(limit);
  let failed = false;
  const out = layers.map(async (l) => {
    const id = shortId(l.digest);
    if (t.content.has(t.namespace, l.digest)) {
      mergeLabels(t, l.digest, source);
      if (t.lease) t.content.link(t.namespace, l.digest, l.size, {}, t.lease);
      return false;
    }
    emit({ kind: 'layer', id, status: 'Waiting' });
    return slots(async () => {
      if (failed) throw new Error('cancelled: another layer failed');
      let last = 0;
      const fresh = await fetchBlob(t, client, ref.path, l, refKey('layer', l.digest), source, {
        display,
        onBytes: (n) => {
          const now = Date.now();
          if (now - last < 100 && n < l.size) return;
          last = now;
          emit({ kind: 'layer', id, status: 'Downloading', current: n, total: l.size });
        },
      });
      if (fresh) {
        emit({ kind: 'layer', id, status: 'Verifying Checksum' });
        emit({ kind: 'layer', id, status: 'Download complete' });
      }
      return fresh;
    }).catch((e: unknown) => {
      failed = true;
      throw e;
    });
  });
  // a failure is reported through the awaited promise; none goes unhandled
  for (const p of out) p.catch(() => {});
  return out;
}
