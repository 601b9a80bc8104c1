// containerd.services.images.v1 over the image store; publishes
// /images/create, /images/update and /images/delete (the messages of
// package containerd.services.images.v1, as containerd 1.6 declares them).
// Delete with sync collects garbage before it answers; without, soon after.
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Images, ImageSchema, type Image } from '../../gen/containerd/services/images/v1/images_pb.js';
import { ImageCreateSchema, ImageDeleteSchema, ImageUpdateSchema } from '../../gen/containerd/events/image_pb.js';
import { TOPICS } from '../../events/topics.js';
import { invalidArgument } from '../../errdefs.js';
import type { ImageInput, ImageRecord } from '../../metadata/index.js';
import { defineService, GRPC_PLUGIN } from '../service.js';

export function imageMessage(r: ImageRecord): Image {
  return create(ImageSchema, {
    name: r.name,
    labels: r.labels,
    target: { mediaType: r.target.mediaType, digest: r.target.digest, size: BigInt(r.target.size), annotations: r.target.annotations },
    createdAt: timestampFromDate(r.createdAt),
    updatedAt: timestampFromDate(r.updatedAt),
  });
}

function imageInput(i: Image | undefined): ImageInput {
  if (!i) throw invalidArgument('image must be set');
  return {
    name: i.name,
    labels: { ...i.labels },
    target: {
      mediaType: i.target?.mediaType ?? '',
      digest: i.target?.digest ?? '',
      size: Number(i.target?.size ?? 0n),
      annotations: { ...(i.target?.annotations ?? {}) },
    },
  };
}

export default defineService({
  service: Images,
  plugin: { type: GRPC_PLUGIN, id: 'images', requires: ['io.containerd.service.v1'] },
  create({ metadata, events, gc }) {
    const store = metadata.images;
    return {
      get(req, ctx) {
        return { image: imageMessage(store.get(ctx.requireNamespace(), req.name)) };
      },
      list(req, ctx) {
        return { images: store.list(ctx.requireNamespace(), req.filters).map(imageMessage) };
      },
      create(req, ctx) {
        const ns = ctx.requireNamespace();
        const img = store.create(ns, imageInput(req.image));
        events.publishMessage(ns, TOPICS.imageCreate, ImageCreateSchema, { name: img.name, labels: img.labels });
        return { image: imageMessage(img) };
      },
      update(req, ctx) {
        const ns = ctx.requireNamespace();
        const img = store.update(ns, imageInput(req.image), req.updateMask?.paths ?? []);
        events.publishMessage(ns, TOPICS.imageUpdate, ImageUpdateSchema, { name: img.name, labels: img.labels });
        return { image: imageMessage(img) };
      },
      async delete(req, ctx) {
        const ns = ctx.requireNamespace();
        store.delete(ns, req.name);
        events.publishMessage(ns, TOPICS.imageDelete, ImageDeleteSchema, { name: req.name });
        if (req.sync) await gc.collect();
        else gc.schedule();
        return {};
      },
    };
  },
});
