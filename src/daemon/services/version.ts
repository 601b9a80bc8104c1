// containerd.services.version.v1: the package version and the commit.
import { Version } from '../../gen/containerd/services/version/v1/version_pb.js';
import { VERSION, COMMIT } from '../../version.js';
import { defineService, GRPC_PLUGIN } from '../service.js';

export default defineService({
  service: Version,
  plugin: { type: GRPC_PLUGIN, id: 'version' },
  create: () => ({
    version: () => ({ version: VERSION, revision: COMMIT }),
  }),
});
