// Run by the build (TSRUNC_BUILD_CODE_CACHE=1) instead of a command: walks
// the code a `run` goes through, without root or side effects, so that V8's
// code cache holds it compiled.
import { defaultSpec } from '../../oci/default-spec.js';
import { parseSpec } from '../../oci/validate.js';
import { buildInitPlan } from '../../runtime/plan/init.js';
import { encodePlan } from '../../runtime/plan/encode.js';
import { parseMountInfo } from '../../linux/mountinfo.js';
import { goStyleLongFlags } from '../argv.js';
import { formatTable } from './list.js';

export function warmup(): void {
  for (const user of [false, true]) {
    const spec = parseSpec(JSON.stringify(defaultSpec()));
    if (user) {
      spec.linux!.namespaces!.push({ type: 'user' });
      spec.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      spec.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    }
    spec.process!.terminal = user;
    const plan = buildInitPlan({
      id: 'warmup',
      spec,
      rootfs: '/nonexistent/rootfs',
      bundle: '/nonexistent',
      host: {
        capLastCap: 40,
        mounts: parseMountInfo('22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n23 22 0:5 / /proc rw - proc proc rw\n'),
        procKcore: false,
        cgroupMode: user ? 'unified' : 'hybrid',
        euid: 0,
      },
      cgroupDir: '/', // any directory that exists: bind sources are checked
      fds: { sync: 10, parentSync: 11, cgroup: 12, fifo: 13, console: user ? 14 : -1 },
      noPivot: false,
      noNewKeyring: false,
      preserveFds: 0,
      env: ['HOME=/root'],
    });
    encodePlan(plan);
  }
  goStyleLongFlags(['-root', '/x', 'run', '-bundle', '/b', 'id'], new Set(['root', 'bundle']));
  formatTable([['ID', 'PID'], ['a', '1']]);
}
