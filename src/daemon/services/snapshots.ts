// containerd.services.snapshots.v1 over the daemon's snapshotters (overlayfs).
// As containerd's service: the snapshotter is named in every request (an
// unknown or missing one is InvalidArgument), the call's containerd-lease
// holds what Prepare, View and Commit make, and /snapshot/prepare, commit
// and remove events are published.
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Snapshots, type Info } from '../../gen/containerd/services/snapshots/v1/snapshots_pb.js';
import { SnapshotCommitSchema, SnapshotPrepareSchema, SnapshotRemoveSchema } from '../../gen/containerd/events/snapshot_pb.js';
import { TOPICS } from '../../events/topics.js';
import { invalidArgument } from '../../errdefs.js';
import { kindNumber, type OverlaySnapshotter, type SnapshotInfo, type SnapshotMount } from '../../snapshots/overlay.js';
import { defineService, GRPC_PLUGIN } from '../service.js';

/** How many Info messages one List response carries (containerd sends batches of 100). */
const LIST_BATCH = 100;

export const mountMessage = (m: SnapshotMount) => ({ type: m.type, source: m.source, target: m.target ?? '', options: [...m.options] });

const infoMessage = (i: SnapshotInfo) => ({
  name: i.name,
  parent: i.parent,
  kind: kindNumber(i.kind),
  createdAt: timestampFromDate(i.createdAt),
  updatedAt: timestampFromDate(i.updatedAt),
  labels: i.labels,
});

/** The named snapshotter, as containerd's getSnapshotter refuses a missing or unknown name. */
export function snapshotterNamed(all: ReadonlyMap<string, OverlaySnapshotter>, name: string): OverlaySnapshotter {
  if (!name) throw invalidArgument('snapshotter argument missing');
  const sn = all.get(name);
  if (!sn) throw invalidArgument(`snapshotter not loaded: ${name}`);
  return sn;
}

export default defineService({
  service: Snapshots,
  plugin: { type: GRPC_PLUGIN, id: 'snapshots', requires: ['io.containerd.snapshotter.v1', 'io.containerd.metadata.v1'] },
  create({ snapshotters, events }) {
    const get = (name: string) => snapshotterNamed(snapshotters, name);
    return {
      prepare(req, ctx) {
        const ns = ctx.requireNamespace();
        const mounts = get(req.snapshotter).prepare(ns, req.key, req.parent, { labels: req.labels, lease: ctx.lease });
        events.publishMessage(ns, TOPICS.snapshotPrepare, SnapshotPrepareSchema, { key: req.key, parent: req.parent });
        return { mounts: mounts.map(mountMessage) };
      },
      view(req, ctx) {
        const ns = ctx.requireNamespace();
        return { mounts: get(req.snapshotter).view(ns, req.key, req.parent, { labels: req.labels, lease: ctx.lease }).map(mountMessage) };
      },
      mounts(req, ctx) {
        return { mounts: get(req.snapshotter).mounts(ctx.requireNamespace(), req.key).map(mountMessage) };
      },
      commit(req, ctx) {
        const ns = ctx.requireNamespace();
        get(req.snapshotter).commit(ns, req.name, req.key, { labels: req.labels, lease: ctx.lease });
        events.publishMessage(ns, TOPICS.snapshotCommit, SnapshotCommitSchema, { key: req.key, name: req.name });
        return {};
      },
      async remove(req, ctx) {
        const ns = ctx.requireNamespace();
        await get(req.snapshotter).remove(ns, req.key, ctx.lease);
        events.publishMessage(ns, TOPICS.snapshotRemove, SnapshotRemoveSchema, { key: req.key });
        return {};
      },
      stat(req, ctx) {
        return { info: infoMessage(get(req.snapshotter).stat(ctx.requireNamespace(), req.key)) };
      },
      update(req, ctx) {
        if (!req.info) throw invalidArgument('info must be set');
        const info: Info = req.info;
        return { info: infoMessage(get(req.snapshotter).update(ctx.requireNamespace(), info.name, info.labels, req.updateMask?.paths ?? [])) };
      },
      async *list(req, ctx) {
        const all = await get(req.snapshotter).list(ctx.requireNamespace(), req.filters);
        for (let i = 0; i < all.length; i += LIST_BATCH) yield { info: all.slice(i, i + LIST_BATCH).map(infoMessage) };
      },
      usage(req, ctx) {
        const u = get(req.snapshotter).usage(ctx.requireNamespace(), req.key);
        return { size: BigInt(u.size), inodes: BigInt(u.inodes) };
      },
      cleanup(req) {
        get(req.snapshotter).cleanup();
        return {};
      },
    };
  },
});
