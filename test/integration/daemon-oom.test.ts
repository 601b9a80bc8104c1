// /tasks/oom from tsrund: a task whose memory limit makes the kernel kill
// its init gets an OOM event before its exit (dockerd sets OOMKilled from
// it), and a task that stays under its limit gets none. Where the host
// offers no memory controller (neither cgroup v2 nor a v1 hierarchy) the
// test says so and skips. Ids start with "do-".
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { Tasks } from '../../src/gen/containerd/services/tasks/v1/tasks_pb.js';
import { Containers } from '../../src/gen/containerd/services/containers/v1/containers_pb.js';
import { Events, type Envelope } from '../../src/gen/containerd/services/events/v1/events_pb.js';
import { connect, type Connection } from '../../src/client/index.js';
import { packJson, SPEC_TYPE_URL } from '../../src/typeurl.js';
import { makeBundle } from '../helpers/bundle.js';
import { needsRoot } from '../helpers/cli.js';
import { removeCgroupEverywhere } from '../helpers/leftovers.js';
import { startTsrund, type RunningDaemon } from '../helpers/daemon.js';
import { cgroupLayout } from '../../src/runtime/cgroups/mode.js';
import { readMountInfo } from '../../src/linux/mountinfo.js';

function memoryController(): string | false {
  const layout = cgroupLayout(readMountInfo());
  if (layout.mode === 'unified') return /\bmemory\b/.test(safeRead('/sys/fs/cgroup/cgroup.controllers')) ? false : 'no memory controller on the cgroup v2 mount';
  return existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes') ? false : 'no cgroup v1 memory hierarchy';
}
function safeRead(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

const skip = needsRoot || memoryController();

t.test('TaskOOM', { skip }, async (t) => {
  const rootfs = makeBundle(['true']).rootfs;
  const parent = `do-test-${process.pid}`;
  const d: RunningDaemon = await startTsrund();
  const conn: Connection = connect(d.address, { namespace: 'do' });
  await conn.ready();
  const tasks = conn.service(Tasks);
  t.teardown(async () => {
    for (const p of (await tasks.list({}).catch(() => ({ tasks: [] }))).tasks) {
      await tasks.kill({ containerId: p.containerId, signal: 9, all: true }).catch(() => undefined);
      await tasks.wait({ containerId: p.containerId }).catch(() => undefined);
      await tasks.delete({ containerId: p.containerId }).catch(() => undefined);
    }
    conn.close();
    await d.stop();
    removeCgroupEverywhere(parent);
  });

  const events: Envelope[] = [];
  const sub = conn.service(Events).subscribe({ filters: ['topic~="^/tasks/(oom|exit)$"'] });
  void (async () => {
    try {
      for await (const e of sub) events.push(e);
    } catch {
      /* cancelled */
    }
  })();
  t.teardown(() => sub.cancel());
  await new Promise((r) => setTimeout(r, 200));

  const run = async (id: string, script: string) => {
    const spec = makeBundle(['sh', '-c', script]).spec;
    spec.root = { path: rootfs, readonly: false };
    spec.linux = { ...(spec.linux ?? {}), cgroupsPath: `/${parent}/${id}`, resources: { memory: { limit: 16 << 20, swap: 16 << 20 } } };
    await conn.service(Containers).create({ container: { id, runtime: { name: 'io.containerd.runc.v2' }, spec: packJson(SPEC_TYPE_URL, spec) } });
    await tasks.create({ containerId: id });
    const waiting = tasks.wait({ containerId: id });
    await tasks.start({ containerId: id });
    const { exitStatus } = await waiting;
    await new Promise((r) => setTimeout(r, 200));
    await tasks.delete({ containerId: id });
    await conn.service(Containers).delete({ id });
    return exitStatus;
  };
  const topicsFor = (id: string) =>
    events
      .filter((e) => {
        const text = Buffer.from(e.event?.value ?? []).toString('latin1');
        return text.includes(id);
      })
      .map((e) => e.topic);

  // Doubling a string until the limit: the kernel kills it.
  t.equal(await run('do-hog', 'x=0123456789abcdef; while :; do x=$x$x; done'), 137, 'the hog is killed (SIGKILL)');
  t.same(topicsFor('do-hog'), ['/tasks/oom', '/tasks/exit'], 'an OOM event, then the exit');
  t.equal(await run('do-calm', 'x=0123456789abcdef; echo $x >/dev/null'), 0);
  t.same(topicsFor('do-calm'), ['/tasks/exit'], 'no OOM event for a task under its limit');
});
