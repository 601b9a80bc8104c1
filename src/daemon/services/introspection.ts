// containerd.services.introspection.v1: Server (uuid kept under --root, pid,
// pid namespace inode) and Plugins (what tsrund provides, with containerd's
// plugin type names; filters on type and id).
import { statSync } from 'node:fs';
import { Introspection } from '../../gen/containerd/services/introspection/v1/introspection_pb.js';
import { parseFilters, stringField } from '../../events/filters.js';
import { defineService, GRPC_PLUGIN } from '../service.js';

function pidnsInode(): bigint {
  try {
    return BigInt(statSync('/proc/self/ns/pid', { bigint: true }).ino);
  } catch {
    return 0n;
  }
}

export default defineService({
  service: Introspection,
  plugin: { type: GRPC_PLUGIN, id: 'introspection' },
  create(deps) {
    const pidns = pidnsInode();
    return {
      server: () => ({ uuid: deps.uuid, pid: BigInt(process.pid), pidns, deprecations: [] }),
      plugins(req) {
        const filter = parseFilters(req.filters);
        const plugins = deps.plugins().filter((p) =>
          filter.match((path) => {
            if (path.length !== 1) return undefined;
            if (path[0] === 'type') return stringField(p.type);
            if (path[0] === 'id') return stringField(p.id);
            return undefined;
          }),
        );
        return {
          plugins: plugins.map((p) => ({
            type: p.type,
            id: p.id,
            requires: p.requires ?? [],
            exports: p.exports ?? {},
            capabilities: p.capabilities ?? [],
          })),
        };
      },
    };
  },
});

