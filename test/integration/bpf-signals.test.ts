// The device filter's bpf(BPF_PROG_LOAD) while signals arrive: the verifier
// gives up with EAGAIN whenever a signal is pending, and tsrund (a
// subreaper) gets SIGCHLD at any moment. Here tsrund runs under Node's CPU
// profiler, whose SIGPROF made the load fail before it was retried; every
// task must still get its filter. Ids start with "bs-".
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tasks } from '../../src/gen/containerd/services/tasks/v1/tasks_pb.js';
import { Containers } from '../../src/gen/containerd/services/containers/v1/containers_pb.js';
import { connect } from '../../src/client/index.js';
import { packJson, SPEC_TYPE_URL } from '../../src/typeurl.js';
import { makeBundle } from '../helpers/bundle.js';
import { needsRoot } from '../helpers/cli.js';
import { removeCgroupEverywhere } from '../helpers/leftovers.js';
import { startTsrund } from '../helpers/daemon.js';
import { cgroupLayout } from '../../src/runtime/cgroups/mode.js';
import { readMountInfo } from '../../src/linux/mountinfo.js';

const unified = cgroupLayout(readMountInfo()).unifiedMount;
const skip = needsRoot || (unified ? false : 'no cgroup v2 mount: no device filter to load');

t.test('device filters load while signals arrive', { skip }, async (t) => {
  const profiles = mkdtempSync(join(tmpdir(), 'tsrund-bpf-prof-'));
  const d = await startTsrund({ nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profiles}`, '--cpu-prof-interval=100'] });
  const conn = connect(d.address, { namespace: 'bs' });
  const parent = `bs-test-${process.pid}`;
  t.teardown(async () => {
    conn.close();
    await d.stop();
    rmSync(profiles, { recursive: true, force: true });
    removeCgroupEverywhere(parent);
  });
  await conn.ready();
  const rootfs = makeBundle(['true']).rootfs;
  const tasks = conn.service(Tasks);
  let failures = 0;
  for (let i = 0; i < 30; i++) {
    const id = `bs-${i}`;
    const spec = makeBundle(['true']).spec;
    spec.root = { path: rootfs, readonly: false };
    spec.linux = { ...(spec.linux ?? {}), cgroupsPath: `/${parent}/${id}` };
    await conn.service(Containers).create({ container: { id, runtime: { name: 'io.containerd.runc.v2' }, spec: packJson(SPEC_TYPE_URL, spec) } });
    try {
      await tasks.create({ containerId: id });
      const waiting = tasks.wait({ containerId: id });
      await tasks.start({ containerId: id });
      await waiting;
      await tasks.delete({ containerId: id });
    } catch (e) {
      failures++;
      t.comment(`${id}: ${(e as { details?: string }).details ?? (e as Error).message}`);
    }
    await conn.service(Containers).delete({ id });
  }
  t.equal(failures, 0, '30 tasks created, each with its device filter, under SIGPROF every 100 µs');
});
