// containerd.services.namespaces.v1 over the metadata store. As containerd:
// Get of a namespace never created answers it with no labels (dockerd and
// ctr ask for theirs before using it); Update creates a missing one; Delete
// refuses one that still has containers (FailedPrecondition).
import { Namespaces } from '../../gen/containerd/services/namespaces/v1/namespace_pb.js';
import { NamespaceCreateSchema, NamespaceDeleteSchema, NamespaceUpdateSchema } from '../../gen/containerd/events/namespace_pb.js';
import { invalidArgument, wrap } from '../../errdefs.js';
import { validateIdentifier } from '../../identifiers.js';
import { TOPICS } from '../../events/topics.js';
import { isValidIdentifier } from '../../identifiers.js';
import { defineService, GRPC_PLUGIN } from '../service.js';

function checkName(name: string): string {
  try {
    validateIdentifier(name);
  } catch (e) {
    throw wrap(e, 'namespace');
  }
  return name;
}

export default defineService({
  service: Namespaces,
  plugin: { type: GRPC_PLUGIN, id: 'namespaces', requires: ['io.containerd.metadata.v1', 'io.containerd.event.v1'] },
  create({ metadata, events }) {
    const store = metadata.namespaces;
    // namespace events go out in the caller's namespace (the named one when the caller has none)
    const eventNs = (callerNs: string | undefined, name: string): string => (callerNs && isValidIdentifier(callerNs) ? callerNs : name);
    return {
      get(req) {
        const name = checkName(req.name);
        return { namespace: { name, labels: store.labels(name) } };
      },
      list(req) {
        return { namespaces: store.list(req.filter ? [req.filter] : []) };
      },
      create(req, ctx) {
        if (!req.namespace) throw invalidArgument('namespace must be set');
        const ns = store.create(req.namespace.name, req.namespace.labels);
        events.publishMessage(eventNs(ctx.namespace, ns.name), TOPICS.namespaceCreate, NamespaceCreateSchema, ns);
        return { namespace: ns };
      },
      update(req, ctx) {
        if (!req.namespace) throw invalidArgument('namespace must be set');
        const ns = store.update(checkName(req.namespace.name), req.namespace.labels, req.updateMask?.paths ?? []);
        events.publishMessage(eventNs(ctx.namespace, ns.name), TOPICS.namespaceUpdate, NamespaceUpdateSchema, ns);
        return { namespace: ns };
      },
      delete(req) {
        const name = checkName(req.name);
        store.delete(name);
        events.publishMessage(name, TOPICS.namespaceDelete, NamespaceDeleteSchema, { name });
        return {};
      },
    };
  },
});
