// A push from the daemon's content store to a registry: for each blob of
// the image (layers and config of each manifest), HEAD to skip what the
// repository has, a cross-repository mount when the blob came from another
// repository of the same registry (containerd.io/distribution.source.*),
// else an upload (one PUT, or chunked PATCHes for big blobs); then the
// manifests, children before the index, the root one under the tag.
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { notFound, invalidArgument } from '../errdefs.js';
import type { ImageRecord } from '../metadata/index.js';
import { LABEL_DISTRIBUTION_SOURCE, shortId, type ImageDeps, type PullEvent } from './pull.js';
import { mergeLabels } from './fetch.js';
import { isIndex, isManifest, parseJson, platformScore, type ImageIndex, type ImageManifest, type OciDescriptor, type Platform } from './media.js';
import { parseReference, repositoryName } from './reference.js';
import { RegistryClient, type RegistryClientOptions } from './registry/client.js';

export interface PushOptions {
  namespace: string;
  /** the image record to push */
  name: string;
  /** where to (default: the name) */
  ref?: string | undefined;
  /** only this platform's manifest of an index (the index itself is then not pushed) */
  platform?: Platform | undefined;
  registry?: RegistryClientOptions;
  maxConcurrentUploads?: number;
  chunkSize?: number;
  signal?: AbortSignal | undefined;
  progress?: (e: PullEvent) => void;
}

export interface PushResult {
  image: ImageRecord;
  digest: string;
  size: number;
  mediaType: string;
}

export async function pushImage(deps: ImageDeps, o: PushOptions): Promise<PushResult> {
  const image = deps.metadata.images.get(o.namespace, o.name);
  const to = parseReference(o.ref || o.name);
  const emit = o.progress ?? (() => {});
  const client = new RegistryClient(to.domain, { ...o.registry, signal: o.signal });
  const read = async (d: OciDescriptor): Promise<Buffer> => {
    try {
      return await deps.content.readAll(o.namespace, d.digest);
    } catch (e) {
      throw notFound(`${d.mediaType} ${d.digest} of image ${o.name} is not in the content store (was the image pulled for another platform only?): ${(e as Error).message}`);
    }
  };
  emit({ kind: 'message', text: `The push refers to repository [${repositoryName(to)}]` });

  let root: OciDescriptor = { ...image.target };
  let rootData = await read(root);
  const manifests: Array<{ desc: OciDescriptor; data: Buffer }> = [];
  if (isIndex(root.mediaType)) {
    const index = parseJson<ImageIndex>(rootData, `index ${root.digest}`);
    const children = o.platform ? index.manifests.filter((m) => platformScore(o.platform!, m.platform) >= 0) : index.manifests;
    if (o.platform && children.length === 0) throw notFound(`image ${o.name} has no manifest for the platform asked`);
    for (const m of children) manifests.push({ desc: m, data: await read(m) });
    if (o.platform) {
      root = children[0]!;
      rootData = manifests[0]!.data;
      manifests.splice(1);
    }
  } else if (isManifest(root.mediaType)) {
    manifests.push({ desc: root, data: rootData });
  } else {
    throw invalidArgument(`image ${o.name}: target ${root.mediaType} is neither a manifest nor an index`);
  }

  // every blob of every manifest, once
  const blobs = new Map<string, OciDescriptor>();
  for (const m of manifests) {
    const man = parseJson<ImageManifest>(m.data, `manifest ${m.desc.digest}`);
    for (const l of man.layers) blobs.set(l.digest, l);
    blobs.set(man.config.digest, man.config);
  }
  const layerIds = [...blobs.values()];
  for (const b of layerIds) emit({ kind: 'layer', id: shortId(b.digest), status: 'Preparing' });

  const limit = o.maxConcurrentUploads ?? 3;
  const queue = [...layerIds];
  let failed = false;
  const worker = async (): Promise<void> => {
    try {
      for (let b = queue.shift(); b && !failed; b = queue.shift()) await pushBlob(deps, client, o, to.domain, to.path, b, emit);
    } catch (e) {
      failed = true; // the other workers take nothing more
      throw e;
    }
  };
  // every upload has stopped before the push fails: none goes on behind the error
  const settled = await Promise.allSettled(Array.from({ length: Math.min(limit, queue.length) }, worker));
  const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;

  // children manifests by digest, then the root under the tag
  for (const m of manifests) {
    if (m.desc.digest === root.digest) continue;
    await client.putManifest(to.path, m.desc.digest, m.desc.mediaType, m.data);
  }
  const digest = await client.putManifest(to.path, to.tag ?? to.digest!, root.mediaType, rootData);
  for (const d of [root, ...manifests.map((m) => m.desc), ...layerIds]) {
    try {
      mergeLabels({ content: deps.content, namespace: o.namespace }, d.digest, { [`${LABEL_DISTRIBUTION_SOURCE}${to.domain}`]: to.path });
    } catch {
      /* a blob without a record here: nothing to label */
    }
  }
  emit({ kind: 'message', text: `${to.tag ?? to.digest}: digest: ${digest} size: ${rootData.length}` });
  return { image, digest, size: rootData.length, mediaType: root.mediaType };
}

async function pushBlob(deps: ImageDeps, client: RegistryClient, o: PushOptions, domain: string, repo: string, b: OciDescriptor, emit: (e: PullEvent) => void): Promise<void> {
  const id = shortId(b.digest);
  if ((await client.blobSize(repo, b.digest, true)) !== undefined) {
    emit({ kind: 'layer', id, status: 'Layer already exists' });
    return;
  }
  const info = deps.content.info(o.namespace, b.digest);
  const from = info.labels[`${LABEL_DISTRIBUTION_SOURCE}${domain}`]?.split(',').find((r) => r !== repo);
  let location: string | undefined;
  if (from) {
    const m = await client.mountBlob(repo, b.digest, from);
    if (m.mounted) {
      emit({ kind: 'layer', id, status: `Mounted from ${from}` });
      return;
    }
    location = m.location;
  }
  const path = deps.content.blobPath(b.digest);
  emit({ kind: 'layer', id, status: 'Pushing', current: 0, total: b.size });
  await client.uploadBlob(repo, { digest: b.digest, size: info.size }, (start, end) => (end > start ? createReadStream(path, { start, end: end - 1, highWaterMark: 1 << 20 }) : Readable.from([])), {
    location,
    chunkSize: o.chunkSize,
    onProgress: (n) => emit({ kind: 'layer', id, status: 'Pushing', current: n, total: b.size }),
  });
  emit({ kind: 'layer', id, status: 'Pushed' });
}
