// tsrund.services.transfer.v1 (tsrund's own, see proto/tsrund): Pull, Push
// and Unpack done in the daemon, straight into and out of the content store
// and the snapshotter, with progress streamed to the client as docker
// prints it. The client sends the credentials it has for the registry.
import { Transfer, type RegistryOptions, type TransferProgress } from '../../gen/tsrund/services/transfer/v1/transfer_pb.js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { Platform as PlatformMsg } from '../../gen/containerd/types/platform_pb.js';
import { TransferProgressSchema } from '../../gen/tsrund/services/transfer/v1/transfer_pb.js';
import { ImageCreateSchema, ImageUpdateSchema } from '../../gen/containerd/events/image_pb.js';
import { TOPICS } from '../../events/topics.js';
import { invalidArgument } from '../../errdefs.js';
import { pullImage, type PullEvent, type Unpacker } from '../../images/pull.js';
import { pushImage } from '../../images/push.js';
import { unpackImage } from '../../images/unpack.js';
import type { Platform } from '../../images/media.js';
import type { RegistryClientOptions } from '../../images/registry/client.js';
import { AsyncQueue } from '../queue.js';
import { imageMessage } from './images.js';
import { defineService, type ServiceDeps } from '../service.js';

type Progress = MessageInitShape<typeof TransferProgressSchema>;

function platformOf(p: PlatformMsg | undefined): Platform | undefined {
  if (!p || (!p.os && !p.architecture)) return undefined;
  if (!p.os || !p.architecture) throw invalidArgument('platform needs both os and architecture');
  return p.variant ? { os: p.os, architecture: p.architecture, variant: p.variant } : { os: p.os, architecture: p.architecture };
}

function registryOf(r: RegistryOptions | undefined): RegistryClientOptions {
  const auth = new Map((r?.auth ?? []).map((a) => [a.host, { username: a.username || undefined, secret: a.secret || undefined, identityToken: a.identityToken || undefined }]));
  return { credentials: (host) => auth.get(host), insecure: r?.insecure ?? [] };
}

const toProgress = (e: PullEvent): Progress =>
  e.kind === 'message'
    ? { kind: { case: 'message', value: e.text } }
    : { kind: { case: 'layer', value: { id: e.id, status: e.status, current: BigInt(e.current ?? 0), total: BigInt(e.total ?? 0) } } };

/** Runs work that reports progress, streaming its events and then its result. */
async function* streamed(signal: AbortSignal, work: (emit: (e: PullEvent) => void) => Promise<Progress>): AsyncGenerator<Progress> {
  const queue = new AsyncQueue<Progress>(signal);
  void work((e) => queue.push(toProgress(e))).then(
    (done) => {
      queue.push(done);
      queue.end();
    },
    (err: unknown) => queue.fail(err),
  );
  yield* queue;
}

/** The unpacker of the named snapshotter ("" = overlayfs), or undefined when the daemon has no such snapshotter. */
export function unpackerFor(deps: ServiceDeps, name: string): Unpacker | undefined {
  return deps.unpacker(name || 'overlayfs');
}

export default defineService({
  service: Transfer,
  plugin: { type: 'io.tsrund.transfer.v1', id: 'transfer', requires: ['io.containerd.content.v1', 'io.containerd.snapshotter.v1'] },
  create(deps) {
    const { metadata, content, events } = deps;
    const imageDeps = { metadata, content };
    const published = (ns: string, name: string, labels: Record<string, string>, created: boolean): void => {
      if (created) events.publishMessage(ns, TOPICS.imageCreate, ImageCreateSchema, { name, labels });
      else events.publishMessage(ns, TOPICS.imageUpdate, ImageUpdateSchema, { name, labels });
    };
    return {
      pull(req, ctx) {
        const ns = ctx.requireNamespace();
        if (!req.ref) throw invalidArgument('ref must be set');
        return streamed(ctx.signal, async (emit) => {
          const r = await pullImage(imageDeps, {
            namespace: ns,
            ref: req.ref,
            platform: platformOf(req.platform),
            registry: registryOf(req.registry),
            lease: ctx.lease,
            unpacker: req.skipUnpack ? undefined : unpackerFor(deps, req.snapshotter),
            labels: req.labels,
            maxConcurrentDownloads: req.maxConcurrentDownloads || undefined,
            signal: ctx.signal,
            progress: emit,
          });
          if (r.updated) published(ns, r.image.name, r.image.labels, r.created);
          return { kind: { case: 'done', value: { image: imageMessage(r.image), digest: r.digest, updated: r.updated } } };
        });
      },
      push(req, ctx) {
        const ns = ctx.requireNamespace();
        if (!req.name) throw invalidArgument('name must be set');
        return streamed(ctx.signal, async (emit) => {
          const r = await pushImage(imageDeps, { namespace: ns, name: req.name, ref: req.ref || undefined, platform: platformOf(req.platform), registry: registryOf(req.registry), signal: ctx.signal, progress: emit });
          return { kind: { case: 'done', value: { image: imageMessage(r.image), digest: r.digest, size: BigInt(r.size) } } };
        });
      },
      unpack(req, ctx) {
        const ns = ctx.requireNamespace();
        const t = req.target;
        if (t && (!t.digest || !t.mediaType)) throw invalidArgument('target needs a digest and a media type');
        if (!req.name && !t) throw invalidArgument('name or target must be set');
        const unpacker = unpackerFor(deps, req.snapshotter);
        if (!unpacker) throw invalidArgument(`no snapshotter ${JSON.stringify(req.snapshotter || 'overlayfs')} in this daemon`);
        const target = t ? { mediaType: t.mediaType, digest: t.digest, size: Number(t.size), annotations: t.annotations } : undefined;
        return streamed(ctx.signal, async (emit) => {
          const r = await unpackImage(imageDeps, { namespace: ns, name: req.name, target, platform: platformOf(req.platform), unpacker, lease: ctx.lease, progress: emit });
          return { kind: { case: 'done', value: { image: r.image ? imageMessage(r.image) : undefined, digest: r.target.digest } } };
        });
      },
    };
  },
});

export type { TransferProgress };
