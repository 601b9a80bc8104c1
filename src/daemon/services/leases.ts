// containerd.services.leases.v1 over the metadata store. What a lease holds
// is kept from the garbage collector; Delete with sync collects at once.
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Leases } from '../../gen/containerd/services/leases/v1/leases_pb.js';
import { invalidArgument } from '../../errdefs.js';
import type { Lease } from '../../metadata/index.js';
import { defineService, GRPC_PLUGIN } from '../service.js';

const leaseMessage = (l: Lease) => ({ id: l.id, createdAt: timestampFromDate(l.createdAt), labels: l.labels });

export default defineService({
  service: Leases,
  plugin: { type: GRPC_PLUGIN, id: 'leases', requires: ['io.containerd.lease.v1'] },
  create({ metadata, gc }) {
    const store = metadata.leases;
    const resource = (r: { id: string; type: string } | undefined) => {
      if (!r) throw invalidArgument('resource must be set');
      return { id: r.id, type: r.type };
    };
    return {
      create(req, ctx) {
        return { lease: leaseMessage(store.create(ctx.requireNamespace(), req.id, req.labels)) };
      },
      async delete(req, ctx) {
        store.delete(ctx.requireNamespace(), req.id);
        if (req.sync) await gc.collect();
        else gc.schedule();
        return {};
      },
      list(req, ctx) {
        return { leases: store.list(ctx.requireNamespace(), req.filters).map(leaseMessage) };
      },
      addResource(req, ctx) {
        store.addResource(ctx.requireNamespace(), req.id, resource(req.resource));
        return {};
      },
      deleteResource(req, ctx) {
        store.deleteResource(ctx.requireNamespace(), req.id, resource(req.resource));
        return {};
      },
      listResources(req, ctx) {
        return { resources: store.listResources(ctx.requireNamespace(), req.id) };
      },
    };
  },
});
