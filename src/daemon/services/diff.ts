// containerd.services.diff.v1: Apply (what `ctr images pull` and containerd's
// unpacker call for each layer) and Diff, over the content store and the
// directories of the snapshotter's mounts. Payloads (stream processors) are
// not supported, as containerd without processors configured.
import { join } from 'node:path';
import { Diff } from '../../gen/containerd/services/diff/v1/diff_pb.js';
import type { Mount } from '../../gen/containerd/types/mount_pb.js';
import { invalidArgument, notImplemented } from '../../errdefs.js';
import { Differ, type Descriptor } from '../../snapshots/differ.js';
import type { SnapshotMount } from '../../snapshots/overlay.js';
import { defineService, GRPC_PLUGIN } from '../service.js';

const mountIn = (m: Mount): SnapshotMount => ({ type: m.type, source: m.source, target: m.target, options: [...m.options] });
const descriptorOut = (d: Descriptor) => ({ mediaType: d.mediaType, digest: d.digest, size: BigInt(d.size), annotations: {} });

export default defineService({
  service: Diff,
  plugin: { type: GRPC_PLUGIN, id: 'diff', requires: ['io.containerd.differ.v1'] },
  create({ content, config }) {
    const differ = new Differ(content, { tmpRoot: join(config.root, 'tmpmounts') });
    return {
      async apply(req, ctx) {
        const ns = ctx.requireNamespace();
        if (!req.diff) throw invalidArgument('diff descriptor must be set');
        if (Object.keys(req.payloads).length) throw notImplemented(`diff apply: stream processor payloads are not supported (${Object.keys(req.payloads).join(', ')})`);
        const applied = await differ.apply(ns, { mediaType: req.diff.mediaType, digest: req.diff.digest, size: Number(req.diff.size) }, req.mounts.map(mountIn), ctx.signal);
        return { applied: descriptorOut(applied) };
      },
      async diff(req, ctx) {
        const ns = ctx.requireNamespace();
        const d = await differ.diff(ns, req.left.map(mountIn), req.right.map(mountIn), { mediaType: req.mediaType, ref: req.ref, labels: req.labels, lease: ctx.lease });
        return { diff: descriptorOut(d) };
      },
    };
  },
});
