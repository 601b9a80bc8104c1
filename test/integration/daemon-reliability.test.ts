// tsrund when things go wrong: kill -9 of the daemon with 10 containers
// running (they run on; the restarted daemon lists them, controls them and
// reports the exits it missed), kill -9 of a shim (the task is reported dead,
// nothing left a zombie), and 500 run/delete cycles leaving no mount,
// cgroup, fd, process or directory behind. Ids start with "dr-".
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Tasks } from '../../src/gen/containerd/services/tasks/v1/tasks_pb.js';
import { Containers } from '../../src/gen/containerd/services/containers/v1/containers_pb.js';
import { Events, type Envelope } from '../../src/gen/containerd/services/events/v1/events_pb.js';
import { Status } from '../../src/gen/containerd/types/task/task_pb.js';
import { TaskExitSchema } from '../../src/gen/containerd/events/task_pb.js';
import { connect, type Connection } from '../../src/client/index.js';
import { packJson, unpackAny, SPEC_TYPE_URL, PROCESS_TYPE_URL } from '../../src/typeurl.js';
import { makeBundle } from '../helpers/bundle.js';
import { needsRoot, REPO } from '../helpers/cli.js';
import { removeCgroupEverywhere } from '../helpers/leftovers.js';
import { startTsrund, tempDir, type RunningDaemon } from '../helpers/daemon.js';
import type { Spec } from '../../src/oci/spec.js';

const SHIM = join(REPO, 'native-shims', 'build', 'tsrunc-shim');
const CGROUP_PARENT = `dr-test-${process.pid}`;

interface ProcInfo {
  pid: number;
  ppid: number;
  zombie: boolean;
  argv: string;
}

function processes(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push({ pid: Number(p), ppid: Number(rest[1]), zombie: rest[0] === 'Z', argv: readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ') });
    } catch {
      /* gone */
    }
  }
  return out;
}

const liveShims = (state: string) => processes().filter((p) => !p.zombie && p.argv.startsWith(SHIM) && p.argv.includes(state));
const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
// Only ours: other test files mount under their own dirs at the same time.
const mountsUnder = (dir: string) => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4]?.startsWith(dir)).length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Code = keyof typeof grpc.status;
const code = (p: Promise<unknown>): Promise<Code | 'OK'> =>
  p.then(
    () => 'OK' as const,
    (e: grpc.ServiceError) => grpc.status[e.code] as Code,
  );

// 500 cycles take a minute or more on a loaded 2-core machine.
t.setTimeout(360_000);

t.test('tsrund reliability', { skip: needsRoot }, async (t) => {
  const dir = tempDir('tsrund-rel-');
  const rootfs = makeBundle(['true']).rootfs;
  let d: RunningDaemon;
  let conn: Connection;
  const start = async () => {
    d = await startTsrund({ dir });
    conn = connect(d.address, { namespace: 'dr' });
    await conn.ready();
  };
  const tasks = () => conn.service(Tasks);
  const spec = (args: string[], id: string): Spec => {
    const s = makeBundle(args).spec;
    s.root = { path: rootfs, readonly: false };
    s.linux!.cgroupsPath = `/${CGROUP_PARENT}/${id}`;
    return s;
  };
  const run = async (id: string, args: string[]) => {
    await conn.service(Containers).create({ container: { id, runtime: { name: 'io.containerd.runc.v2' }, spec: packJson(SPEC_TYPE_URL, spec(args, id)) } });
    const { pid } = await tasks().create({ containerId: id });
    await tasks().start({ containerId: id });
    return pid;
  };
  const remove = async (id: string) => {
    await tasks().kill({ containerId: id, signal: 9, all: true }).catch(() => undefined);
    await tasks().wait({ containerId: id }).catch(() => undefined);
    await tasks().delete({ containerId: id }).catch(() => undefined);
    await conn.service(Containers).delete({ id }).catch(() => undefined);
  };
  t.before(start);
  t.teardown(async () => {
    for (const p of (await tasks().list({}).catch(() => ({ tasks: [] }))).tasks) await remove(p.containerId);
    conn?.close();
    await d?.stop();
    removeCgroupEverywhere(CGROUP_PARENT);
  });

  t.test('kill -9 of tsrund with 10 containers running', async (t) => {
    const pids: Record<string, number> = {};
    for (let i = 0; i < 10; i++) pids[`dr-${i}`] = await run(`dr-${i}`, ['sleep', '1000']);
    await tasks().exec({ containerId: 'dr-0', execId: 'x0', spec: packJson(PROCESS_TYPE_URL, { args: ['sleep', '1000'], cwd: '/', user: { uid: 0, gid: 0 }, env: ['PATH=/bin'] }) });
    const x0 = (await tasks().start({ containerId: 'dr-0', execId: 'x0' })).pid;

    conn.close();
    d.child.kill('SIGKILL');
    await d.stop();
    t.equal(liveShims(d.state).length, 10, 'every shim outlives the daemon');
    for (const id of ['dr-1', 'dr-2', 'dr-3']) process.kill(pids[id]!, 'SIGKILL');
    process.kill(x0, 'SIGKILL');
    await sleep(200);

    await start();
    const envelopes: Envelope[] = [];
    const sub = conn.service(Events).subscribe({ filters: ['topic=="/tasks/exit"'] });
    void (async () => {
      try {
        for await (const e of sub) envelopes.push(e);
      } catch {
        /* cancelled */
      }
    })();
    const list = (await tasks().list({})).tasks.map((p) => [p.containerId, p.status, p.exitStatus] as const).sort();
    t.same(
      list,
      Array.from({ length: 10 }, (_, i) => [`dr-${i}`, i >= 1 && i <= 3 ? Status.STOPPED : Status.RUNNING, i >= 1 && i <= 3 ? 137 : 0]).sort(),
      'all 10 listed, with the right status',
    );
    for (let i = 0; i < 60 && envelopes.length < 4; i++) await sleep(50);
    sub.cancel();
    t.same(
      envelopes
        .map((e) => unpackAny(e.event!, TaskExitSchema)!)
        .map((x) => `${x.containerId}/${x.id}:${x.exitStatus}`)
        .sort(),
      ['dr-0/x0:137', 'dr-1/dr-1:137', 'dr-2/dr-2:137', 'dr-3/dr-3:137'],
      'the exits that happened while it was down are published',
    );
    t.equal((await tasks().wait({ containerId: 'dr-1' })).exitStatus, 137, 'and Wait returns them');
    t.equal((await tasks().wait({ containerId: 'dr-0', execId: 'x0' })).exitStatus, 137, 'execs too');

    await tasks().kill({ containerId: 'dr-4', signal: 9 });
    t.equal((await tasks().wait({ containerId: 'dr-4' })).exitStatus, 137, 'a task from before is controllable');
    await tasks().exec({ containerId: 'dr-5', execId: 'after', spec: packJson(PROCESS_TYPE_URL, { args: ['sh', '-c', 'exit 6'], cwd: '/', user: { uid: 0, gid: 0 }, env: ['PATH=/bin'] }) });
    await tasks().start({ containerId: 'dr-5', execId: 'after' });
    t.equal((await tasks().wait({ containerId: 'dr-5', execId: 'after' })).exitStatus, 6, 'exec into a task from before');

    // A second restart must not report the same exits again.
    conn.close();
    d.child.kill('SIGKILL');
    await d.stop();
    await start();
    const again: Envelope[] = [];
    const sub2 = conn.service(Events).subscribe({ filters: ['topic=="/tasks/exit"'] });
    void (async () => {
      try {
        for await (const e of sub2) again.push(e);
      } catch {
        /* cancelled */
      }
    })();
    await sleep(1500);
    sub2.cancel();
    t.same(again, [], 'exits already published are not published twice');

    for (let i = 0; i < 10; i++) await remove(`dr-${i}`);
    t.same(liveShims(d.state), [], 'no shim outlives its task');
  });

  t.test('kill -9 of a shim', async (t) => {
    const pid = await run('dr-shim', ['sleep', '1000']);
    const waiting = tasks().wait({ containerId: 'dr-shim' });
    waiting.catch(() => undefined);
    await sleep(200); // the Wait reaches the daemon before the shim dies (after, the task is gone: NotFound)
    const shims = liveShims(d.state);
    t.equal(shims.length, 1, 'one shim: the task\'s');
    const [shim] = shims;
    if (!shim) t.comment(processes().filter((p) => p.argv.includes('shim')).map((p) => `${p.pid} ${p.ppid} ${p.zombie} ${p.argv}`).join('\n'));
    process.kill(shim!.pid, 'SIGKILL');
    t.equal((await waiting).exitStatus, 137, 'Wait ends with 137, as containerd reports a dead shim');
    t.equal(await code(tasks().get({ containerId: 'dr-shim' })), 'NOT_FOUND', 'the task is gone');
    await sleep(100);
    t.notOk(
      processes().some((p) => p.pid === pid),
      'the container init is dead and collected (not a zombie)',
    );
    t.notOk(
      processes().some((p) => p.pid === shim!.pid),
      'the shim is collected too',
    );
    t.same(readdirSync(join(d.state, 'tasks', 'dr')), [], 'task directory removed');
    await conn.service(Containers).delete({ id: 'dr-shim' });
  });

  t.test('500 run/delete cycles leave nothing behind', async (t) => {
    const daemonPid = d.child.pid!;
    const cycle = async (i: number) => {
      const id = `dr-cy${i}`;
      await run(id, ['true']);
      await tasks().wait({ containerId: id });
      await tasks().delete({ containerId: id });
      await conn.service(Containers).delete({ id });
    };
    for (let i = 0; i < 20; i++) await cycle(i);
    const fds = fdCount(daemonPid);
    const mounts = () => mountsUnder(dir) + mountsUnder(rootfs);
    const mountCount = mounts();
    const began = Date.now();
    for (let i = 20; i < 500; i += 4) await Promise.all([cycle(i), cycle(i + 1), cycle(i + 2), cycle(i + 3)]);
    t.comment(`480 cycles in ${Date.now() - began} ms, 4 at a time`);
    await sleep(200);
    t.ok(fdCount(daemonPid) <= fds, `tsrund's fds: ${fdCount(daemonPid)} (after 20 cycles: ${fds})`);
    t.equal(mounts(), mountCount, 'no mount left');
    t.same(readdirSync(join(d.state, 'tasks', 'dr')), [], 'no task directory');
    t.same(readdirSync(join(d.state, 'runtime', 'dr')), [], 'no runtime state');
    t.same(liveShims(d.state), [], 'no shim');
    t.same(
      processes().filter((p) => p.ppid === daemonPid),
      [],
      'no child of tsrund, zombie or not',
    );
    const cg = `/sys/fs/cgroup/unified/${CGROUP_PARENT}`;
    t.same(existsSync(cg) ? readdirSync(cg).filter((n) => !n.includes('.')) : [], [], 'no cgroup left');
  });
});
