// tsrctl: the client of tsrund. This release ships the runtime (tsrunc) only.
import { VERSION, COMMIT } from '../../version.js';
import { out, err } from '../output.js';

const args = process.argv.slice(2);
if (args[0] === 'version' || args.includes('-v') || args.includes('--version')) {
  out(`tsrctl ${VERSION} (commit ${COMMIT})\n`);
} else {
  err('tsrctl: the client needs tsrund, which is not part of this release yet; use tsrunc (see README, "Status")\n');
  process.exitCode = 1;
}
