// tsrund: the containerd-compatible supervisor. This release ships the
// runtime (tsrunc) only; the daemon's gRPC services are the next milestone.
import { VERSION, COMMIT } from '../../version.js';

const args = process.argv.slice(2);
if (args.includes('-v') || args.includes('--version')) {
  process.stdout.write(`tsrund ${VERSION} (commit ${COMMIT})\n`);
} else {
  process.stderr.write('tsrund: the supervisor daemon is not part of this release yet; use tsrunc (see README, "Status")\n');
  process.exitCode = 1;
}
