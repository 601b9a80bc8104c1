// tsrund: the containerd-compatible supervisor. This release ships the
// runtime (tsrunc) only; the daemon's gRPC services are the next milestone.
import { VERSION, COMMIT } from '../../version.js';
import { out, err } from '../output.js';

const args = process.argv.slice(2);
if (args.includes('-v') || args.includes('--version')) {
  out(`tsrund ${VERSION} (commit ${COMMIT})\n`);
} else {
  err('tsrund: the supervisor daemon is not part of this release yet; use tsrunc (see README, "Status")\n');
  process.exitCode = 1;
}
