// containerd.services.containers.v1 over the metadata store; publishes
// /containers/create, /containers/update and /containers/delete.
import { create } from '@bufbuild/protobuf';
import { AnySchema, timestampFromDate, type Any } from '@bufbuild/protobuf/wkt';
import { Containers, ContainerSchema, type Container } from '../../gen/containerd/services/containers/v1/containers_pb.js';
import { ContainerCreateSchema, ContainerDeleteSchema, ContainerUpdateSchema } from '../../gen/containerd/events/container_pb.js';
import { TOPICS } from '../../events/topics.js';
import type { AnyValue, ContainerInput, ContainerRecord } from '../../metadata/index.js';
import { defineService, GRPC_PLUGIN } from '../service.js';

const anyIn = (a: Any | undefined): AnyValue | undefined => (a ? { typeUrl: a.typeUrl, value: a.value } : undefined);
const anyOut = (a: AnyValue | undefined): Any | undefined => (a ? create(AnySchema, { typeUrl: a.typeUrl, value: a.value }) : undefined);

/** A container message (possibly absent) as the store's input. */
export function containerInput(c: Container | undefined): ContainerInput {
  const extensions: Record<string, AnyValue> = {};
  for (const [k, v] of Object.entries(c?.extensions ?? {})) extensions[k] = anyIn(v)!;
  return {
    id: c?.id ?? '',
    labels: { ...(c?.labels ?? {}) },
    image: c?.image ?? '',
    runtime: { name: c?.runtime?.name ?? '', options: anyIn(c?.runtime?.options) },
    spec: anyIn(c?.spec),
    snapshotter: c?.snapshotter ?? '',
    snapshotKey: c?.snapshotKey ?? '',
    extensions,
  };
}

export function containerMessage(r: ContainerRecord): Container {
  const extensions: Record<string, Any> = {};
  for (const [k, v] of Object.entries(r.extensions)) extensions[k] = anyOut(v)!;
  return create(ContainerSchema, {
    id: r.id,
    labels: r.labels,
    image: r.image,
    runtime: { name: r.runtime.name, options: anyOut(r.runtime.options) },
    spec: anyOut(r.spec),
    snapshotter: r.snapshotter,
    snapshotKey: r.snapshotKey,
    createdAt: timestampFromDate(r.createdAt),
    updatedAt: timestampFromDate(r.updatedAt),
    extensions,
  });
}

export default defineService({
  service: Containers,
  plugin: { type: GRPC_PLUGIN, id: 'containers', requires: ['io.containerd.metadata.v1', 'io.containerd.event.v1'] },
  create({ metadata, events }) {
    const store = metadata.containers;
    return {
      get(req, ctx) {
        return { container: containerMessage(store.get(ctx.requireNamespace(), req.id)) };
      },
      list(req, ctx) {
        return { containers: store.list(ctx.requireNamespace(), req.filters).map(containerMessage) };
      },
      async *listStream(req, ctx) {
        for (const c of store.list(ctx.requireNamespace(), req.filters)) yield { container: containerMessage(c) };
      },
      create(req, ctx) {
        const ns = ctx.requireNamespace();
        const c = store.create(ns, containerInput(req.container));
        events.publishMessage(ns, TOPICS.containerCreate, ContainerCreateSchema, {
          id: c.id,
          image: c.image,
          runtime: { name: c.runtime.name, options: anyOut(c.runtime.options) },
        });
        return { container: containerMessage(c) };
      },
      update(req, ctx) {
        const ns = ctx.requireNamespace();
        const c = store.update(ns, containerInput(req.container), req.updateMask?.paths ?? []);
        events.publishMessage(ns, TOPICS.containerUpdate, ContainerUpdateSchema, {
          id: c.id,
          image: c.image,
          labels: c.labels,
          snapshotKey: c.snapshotKey,
        });
        return { container: containerMessage(c) };
      },
      delete(req, ctx) {
        const ns = ctx.requireNamespace();
        store.delete(ns, req.id);
        events.publishMessage(ns, TOPICS.containerDelete, ContainerDeleteSchema, { id: req.id });
        return {};
      },
    };
  },
});
