// The task manager under tsrund's Tasks service, driven directly: create,
// start, I/O through FIFOs, exec, kill, pause, wait, delete, a daemon
// restart, a shim killed with SIGKILL, and bad input leaving nothing behind.
import t, { type Test } from 'tap';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle.js';
import { needsRoot } from '../helpers/cli.js';
import { removeCgroupEverywhere } from '../helpers/leftovers.js';

const CGROUP_PARENT = `tsrund-test-${process.pid}`;
import { mkfifo, pollReadable, setChildSubreaper, waitpidNoHang } from '../../src/linux/libc.js';
import { O_NONBLOCK, O_RDONLY, O_RDWR } from '../../src/linux/constants.js';
import { TaskManager, type TaskEvent } from '../../src/tasks/manager.js';
import { ErrdefsError } from '../../src/errdefs.js';
import type { Spec } from '../../src/oci/spec.js';

/** A matcher for an ErrDef of that kind. */
const kind = (k: string) => ({ name: 'ErrdefsError', errClass: k }) as unknown as Error;

const silent = { debug() {}, info() {}, warn() {}, error() {} };

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(dir));
}

function shimsFor(dir: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('tsrunc-shim') && argv.some((a) => a.startsWith(dir))) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

function zombiesOf(ppid: number): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (rest[0] === 'Z' && Number(rest[1]) === ppid) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Reads a FIFO (opened non-blocking) until it has `text` or the time is up. */
function readUntil(fd: number, text: string, timeoutMs = 5000): string {
  const buf = Buffer.alloc(65536);
  let out = '';
  const deadline = Date.now() + timeoutMs;
  while (!out.includes(text) && Date.now() < deadline) {
    if (pollReadable([fd], 100).length === 0) continue;
    try {
      const n = readSync(fd, buf);
      if (n > 0) out += buf.toString('utf8', 0, n);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
    }
  }
  return out;
}

interface Env {
  state: string;
  events: { ns: string; e: TaskEvent }[];
  tm: TaskManager;
  spec(args: string[], mutate?: (s: Spec) => void): { spec: Spec; rootfs: string };
  fifo(name: string): { path: string; fd: number };
}

function env(t: Test): Env {
  const state = mkdtempSync(join(tmpdir(), 'tsrund-state-'));
  const events: Env['events'] = [];
  const e: Env = {
    state,
    events,
    tm: new TaskManager({ stateDir: state, publish: (ns, ev) => events.push({ ns, e: ev }), log: silent }),
    spec(args, mutate) {
      const b = makeBundle(args, (s) => {
        s.linux!.cgroupsPath = `/${CGROUP_PARENT}/${Math.random().toString(36).slice(2)}`;
        mutate?.(s);
      });
      return { spec: b.spec, rootfs: b.rootfs };
    },
    fifo(name) {
      const path = join(state, name);
      mkfifo(path, 0o600);
      return { path, fd: openSync(path, O_RDONLY | O_NONBLOCK) };
    },
  };
  t.teardown(() => {
    for (const v of e.tm.list('test')) {
      try {
        e.tm.kill('test', v.containerId, '', 9, true);
      } catch {
        /* stopped */
      }
    }
    for (const v of e.tm.list('test')) {
      for (let i = 0; i < 50 && e.tm.getProcess('test', v.containerId).status !== 'stopped'; i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      try {
        e.tm.delete('test', v.containerId);
      } catch {
        /* gone */
      }
    }
    // Shims of a "crashed" daemon are still this process's children (a real
    // restart leaves them to init): collect them.
    for (const pid of zombiesOf(process.pid)) waitpidNoHang(pid);
    rmSync(state, { recursive: true, force: true });
    removeCgroupEverywhere(CGROUP_PARENT);
  });
  return e;
}

const topics = (evs: Env['events'], id: string) =>
  evs.filter((x) => (x.e as { containerId: string }).containerId === id).map((x) => x.e.topic);

t.test('tasks', { skip: needsRoot }, async (t) => {
  setChildSubreaper(); // as tsrund is

  t.test('create, start, output, wait, delete: events in order, nothing left', async (t) => {
    const e = env(t);
    const { spec, rootfs } = e.spec(['sh', '-c', 'echo out; echo err >&2; exit 5']);
    spec.root = { path: 'rootfs', readonly: false };
    const out = e.fifo('out');
    const err = e.fifo('err');
    const created = e.tm.create({
      namespace: 'test',
      id: 't1',
      spec,
      rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'rw'] }],
      io: { stdin: '', stdout: out.path, stderr: err.path, terminal: false },
    });
    t.equal(created.status, 'created');
    t.ok(created.pid > 0);
    t.equal(mountsUnder(e.state).length, 1, 'the rootfs is mounted in the bundle');
    const pid = e.tm.start('test', 't1');
    t.equal(pid, created.pid);
    t.equal(readUntil(out.fd, 'out\n'), 'out\n', 'stdout FIFO');
    t.equal(readUntil(err.fd, 'err\n'), 'err\n', 'stderr FIFO');
    const exit = await e.tm.wait('test', 't1');
    t.equal(exit.status, 5, 'exit status through Wait');
    t.equal(e.tm.getProcess('test', 't1').status, 'stopped');
    const del = e.tm.delete('test', 't1');
    t.equal(del.exit.status, 5);
    t.same(topics(e.events, 't1'), ['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete'], 'create, start, exit, delete');
    t.same(mountsUnder(e.state), [], 'rootfs unmounted');
    t.notOk(existsSync(join(e.state, 'tasks', 'test', 't1')), 'task directory removed');
    t.same(readdirSync(join(e.state, 'runtime', 'test')), [], 'runtime state removed');
    t.same(shimsFor(e.state), [], 'no shim left');
    t.throws(() => e.tm.getProcess('test', 't1'), kind('not found'));
    closeSync(out.fd);
    closeSync(err.fd);
  });

  t.test('exec, kill, pause, pids; stdin through the shim', async (t) => {
    const e = env(t);
    const { spec } = e.spec(['sleep', '1000']);
    spec.root = { path: (e.spec(['true']).rootfs), readonly: false };
    const created = e.tm.create({ namespace: 'test', id: 't2', spec, rootfs: [], io: { stdin: '', stdout: '', stderr: '', terminal: false } });
    e.tm.start('test', 't2');
    t.equal(e.tm.getProcess('test', 't2').status, 'running');

    const inFifo = join(e.state, 'in');
    mkfifo(inFifo, 0o600);
    const writer = openSync(inFifo, O_RDWR);
    const out = e.fifo('eout');
    e.tm.exec('test', 't2', 'e1', { ...spec.process!, args: ['sh', '-c', 'read line; echo "got $line"; exit 4'] }, { stdin: inFifo, stdout: out.path, stderr: out.path, terminal: false });
    t.equal(e.tm.getProcess('test', 't2', 'e1').status, 'created');
    t.throws(() => e.tm.exec('test', 't2', 'e1', spec.process!, { stdin: '', stdout: '', stderr: '', terminal: false }), kind('already exists'), 'exec id reused');
    const epid = e.tm.start('test', 't2', 'e1');
    t.ok(epid > 0);
    t.same(
      e.tm.pids('test', 't2').map((p) => p.execId ?? '').sort(),
      ['', 'e1'],
      'pids, the exec one marked with its id',
    );
    writeSync(writer, 'hello\n');
    t.equal(readUntil(out.fd, 'got hello\n'), 'got hello\n', 'stdin reached the exec through the shim');
    t.equal((await e.tm.wait('test', 't2', 'e1')).status, 4, 'exec exit status');
    t.throws(() => e.tm.kill('test', 't2', 'e1', 9, false), kind('not found'), 'killing a finished exec');
    const gone = e.tm.deleteProcess('test', 't2', 'e1');
    t.equal(gone.exit.status, 4);
    t.throws(() => e.tm.getProcess('test', 't2', 'e1'), kind('not found'));

    e.tm.pause('test', 't2');
    t.equal(e.tm.getProcess('test', 't2').status, 'paused');
    t.throws(() => e.tm.delete('test', 't2'), kind('failed precondition'), 'no delete while paused');
    e.tm.resume('test', 't2');
    t.equal(e.tm.getProcess('test', 't2').status, 'running');
    t.throws(() => e.tm.delete('test', 't2'), kind('failed precondition'), 'no delete while running');
    e.tm.kill('test', 't2', '', 9, false);
    t.equal((await e.tm.wait('test', 't2')).status, 137, 'killed with SIGKILL: 137');
    e.tm.delete('test', 't2');
    t.same(
      topics(e.events, 't2'),
      ['/tasks/create', '/tasks/start', '/tasks/exec-added', '/tasks/exec-started', '/tasks/exit', '/tasks/paused', '/tasks/resumed', '/tasks/exit', '/tasks/delete'],
    );
    t.equal(created.containerId, 't2');
    closeSync(writer);
    closeSync(out.fd);
  });

  t.test('a restarted daemon finds its tasks and the exits it missed', async (t) => {
    const e = env(t);
    for (const id of ['r1', 'r2', 'r3']) {
      const { spec } = e.spec(['sleep', '1000']);
      spec.root = { path: e.spec(['true']).rootfs, readonly: false };
      e.tm.create({ namespace: 'test', id, spec, rootfs: [], io: { stdin: '', stdout: '', stderr: '', terminal: false } });
      e.tm.start('test', id);
    }
    const r2pid = e.tm.getProcess('test', 'r2').pid;
    // The daemon dies: its sockets close, the shims and containers run on.
    e.tm.detachAll();
    process.kill(r2pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    const events: { ns: string; e: TaskEvent }[] = [];
    const tm2 = new TaskManager({ stateDir: e.state, publish: (ns, ev) => events.push({ ns, e: ev }), log: silent });
    e.tm = tm2;
    tm2.restore();
    t.same(events, [], 'nothing is published before releaseRestored');
    tm2.releaseRestored();
    t.same(
      tm2
        .list('test')
        .map((p) => [p.containerId, p.status])
        .sort(),
      [
        ['r1', 'running'],
        ['r2', 'stopped'],
        ['r3', 'running'],
      ],
      'every task, with its status',
    );
    t.same(
      events.map((x) => [x.e.topic, (x.e as { containerId: string }).containerId, (x.e as { exitStatus?: number }).exitStatus]),
      [['/tasks/exit', 'r2', 137]],
      'the exit that happened while down is published',
    );
    t.equal((await tm2.wait('test', 'r2')).status, 137, 'and Wait returns it');
    tm2.kill('test', 'r1', '', 9, false);
    t.equal((await tm2.wait('test', 'r1')).status, 137, 'a reconnected task is controllable');
    for (const id of ['r1', 'r2']) tm2.delete('test', id);
    t.equal(shimsFor(e.state).length, 1, 'only r3 keeps a shim');
  });

  t.test('shims that died after their init: the restarted daemon reports the recorded exits', async (t) => {
    const e = env(t);
    for (const [id, code] of [['x1', 5], ['x2', 4]] as const) {
      const { spec } = e.spec(['sh', '-c', `exit ${code}`]);
      spec.root = { path: e.spec(['true']).rootfs, readonly: false };
      e.tm.create({ namespace: 'test', id, spec, rootfs: [], io: { stdin: '', stdout: '', stderr: '', terminal: false } });
      e.tm.start('test', id);
      t.equal((await e.tm.wait('test', id)).status, code);
    }
    const dirOf = (id: string) => join(e.state, 'tasks', 'test', id);
    const x1 = readFileSync(join(dirOf('x1'), 'exit'), 'utf8');
    t.match(x1, new RegExp(`^${e.tm.getProcess('test', 'x1').pid} ${5 << 8} \\d+\n$`), 'the init\'s exit record: pid, raw status, time');
    t.notOk(existsSync(join(dirOf('x1'), 'exit.tmp')), 'no temp file left');
    const x1At = new Date(Number(BigInt(x1.trim().split(' ')[2]!) / 1_000_000n));
    // x2's shim stands for one that an older build started: it wrote JSON.
    const x2pid = e.tm.getProcess('test', 'x2').pid;
    writeFileSync(join(dirOf('x2'), 'exit'), `{"pid":${x2pid},"status":${4 << 8},"exited_ns":1700000000123456789}\n`);
    e.tm.detachAll();
    for (const pid of shimsFor(e.state)) process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && shimsFor(e.state).length; i++) await new Promise((r) => setTimeout(r, 20));
    const events: { ns: string; e: TaskEvent }[] = [];
    const tm2 = new TaskManager({ stateDir: e.state, publish: (ns, ev) => events.push({ ns, e: ev }), log: silent });
    e.tm = tm2;
    tm2.restore();
    tm2.releaseRestored();
    const seen = events.map((x) => x.e as { topic: string; containerId: string; exitStatus: number; exitedAt: Date });
    t.same(
      seen.map((x) => [x.topic, x.containerId, x.exitStatus]).sort(),
      [
        ['/tasks/delete', 'x1', 5],
        ['/tasks/delete', 'x2', 4],
        ['/tasks/exit', 'x1', 5],
        ['/tasks/exit', 'x2', 4],
      ],
      'each task\'s recorded exit, in either format',
    );
    t.same(seen.find((x) => x.containerId === 'x1')!.exitedAt, x1At, 'at the recorded time');
    t.same(seen.find((x) => x.containerId === 'x2')!.exitedAt, new Date(1700000000123), 'the older format\'s time');
    t.same(tm2.list('test'), [], 'both cleaned up');
    t.notOk(existsSync(dirOf('x1')) || existsSync(dirOf('x2')), 'task directories removed');
  });

  t.test('a shim killed with SIGKILL: the task is reported dead, no zombie', async (t) => {
    const e = env(t);
    const { spec } = e.spec(['sleep', '1000']);
    spec.root = { path: e.spec(['true']).rootfs, readonly: false };
    const c = e.tm.create({ namespace: 'test', id: 'k1', spec, rootfs: [], io: { stdin: '', stdout: '', stderr: '', terminal: false } });
    e.tm.start('test', 'k1');
    const waiting = e.tm.wait('test', 'k1');
    const [shimPid] = shimsFor(e.state);
    process.kill(shimPid!, 'SIGKILL');
    t.equal((await waiting).status, 137, 'Wait returns 137');
    t.same(topics(e.events, 'k1').slice(-2), ['/tasks/exit', '/tasks/delete'], 'exit and delete published');
    t.notOk(e.tm.has('test', 'k1'), 'the task is gone');
    t.notOk(existsSync(`/proc/${c.pid}`) && !zombiesOf(process.pid).includes(c.pid), 'the container init is dead');
    t.same(zombiesOf(process.pid).filter((p) => p === c.pid || p === shimPid), [], 'neither the shim nor the container init is left a zombie');
    t.same(readdirSync(join(e.state, 'runtime', 'test')), [], 'runtime state removed');
  });

  t.test('bad input leaves nothing behind', async (t) => {
    const e = env(t);
    const { spec } = e.spec(['true']);
    spec.root = { path: e.spec(['true']).rootfs, readonly: false };
    const io = { stdin: '', stdout: join(e.state, 'missing-fifo'), stderr: '', terminal: false };
    t.throws(() => e.tm.create({ namespace: 'test', id: 'b1', spec, rootfs: [], io }), { ...kind('not found'), message: /stdout: open FIFO .*missing-fifo/ });
    t.notOk(existsSync(join(e.state, 'tasks', 'test', 'b1')), 'no task directory');
    t.same(shimsFor(e.state), [], 'no shim');
    t.notOk(existsSync(join(e.state, 'runtime', 'test', 'b1')), 'no runtime state');

    const bad = structuredClone(spec);
    bad.process!.args = ['/no/such/binary'];
    t.throws(() => e.tm.create({ namespace: 'test', id: 'b2', spec: bad, rootfs: [], io: { ...io, stdout: '' } }), ErrdefsError);
    t.same(shimsFor(e.state), [], 'no shim after a failed launch');
    t.throws(() => e.tm.create({ namespace: 'test', id: 'b3', spec, rootfs: [{ type: 'bind', source: '/nonexistent', options: ['rbind'] }], io: { ...io, stdout: '' } }), /nonexistent|ENOENT/);
    t.same(mountsUnder(e.state), [], 'no mount left');

    e.tm.create({ namespace: 'test', id: 'b4', spec, rootfs: [], io: { ...io, stdout: '' } });
    t.throws(() => e.tm.create({ namespace: 'test', id: 'b4', spec, rootfs: [], io: { ...io, stdout: '' } }), kind('already exists'), 'create twice');
    t.throws(() => e.tm.start('test', 'nope'), kind('not found'), 'unknown task');
    t.throws(() => e.tm.start('test', 'b4', 'nope'), kind('not found'), 'unknown exec');
    e.tm.delete('test', 'b4');
    t.same(shimsFor(e.state), [], 'deleting a created task kills it and its shim');
  });
});
