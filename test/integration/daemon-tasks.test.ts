// tsrund's Tasks and Leases services through the TS client: every method,
// containerd's status codes for bad input, events in order, and what a
// client leaves behind when it goes away mid-call. Ids start with "dk-".
import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, readSync, openSync, closeSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { Tasks } from '../../src/gen/containerd/services/tasks/v1/tasks_pb.js';
import { Containers } from '../../src/gen/containerd/services/containers/v1/containers_pb.js';
import { Leases } from '../../src/gen/containerd/services/leases/v1/leases_pb.js';
import { Events, type Envelope } from '../../src/gen/containerd/services/events/v1/events_pb.js';
import { Status } from '../../src/gen/containerd/types/task/task_pb.js';
import { ProcessDetailsSchema, OptionsSchema } from '../../src/gen/containerd/runc/options/oci_pb.js';
import { MetricsSchema } from '../../src/gen/io/containerd/cgroups/v2/metrics_pb.js';
import { TaskExitSchema } from '../../src/gen/containerd/events/task_pb.js';
import { connect, type Connection } from '../../src/client/index.js';
import { packAny, packJson, unpackAny, SPEC_TYPE_URL, PROCESS_TYPE_URL, LINUX_RESOURCES_TYPE_URL } from '../../src/typeurl.js';
import { mkfifo, pollReadable } from '../../src/linux/libc.js';
import { O_NONBLOCK, O_RDONLY } from '../../src/linux/constants.js';
import { makeBundle } from '../helpers/bundle.js';
import { needsRoot, REPO } from '../helpers/cli.js';
import { removeCgroupEverywhere } from '../helpers/leftovers.js';
import { startTsrund, type RunningDaemon } from '../helpers/daemon.js';
import type { Spec } from '../../src/oci/spec.js';

type Code = keyof typeof grpc.status;
const SHIM_PREFIX = join(REPO, 'native-shims', 'build', 'tsrunc-shim');
async function status(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'OK',
    (e: grpc.ServiceError) => `${grpc.status[e.code]}: ${e.details}`,
  );
}
const code = async (p: Promise<unknown>): Promise<Code | 'OK'> => (await status(p)).split(':')[0] as Code | 'OK';

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

t.test('Tasks and Leases over gRPC', { skip: needsRoot }, async (t) => {
  let d: RunningDaemon;
  let conn: Connection;
  const fifoDir = mkdtempSync(join(tmpdir(), 'dk-fifo-'));
  const rootfs = makeBundle(['true']).rootfs;
  const specOf = (args: string[], mutate?: (s: Spec) => void): Spec => {
    const b = makeBundle(args, mutate);
    b.spec.root = { path: rootfs, readonly: false };
    return b.spec;
  };
  t.before(async () => {
    d = await startTsrund();
    conn = connect(d.address, { namespace: 'dk' });
    await conn.ready();
  });
  t.teardown(async () => {
    // tsrund leaves containers running when it stops: end ours first.
    for (const p of (await tasks().list({}).catch(() => ({ tasks: [] }))).tasks) {
      await tasks().kill({ containerId: p.containerId, signal: 9, all: true }).catch(() => undefined);
      await tasks().wait({ containerId: p.containerId }).catch(() => undefined);
      await tasks().delete({ containerId: p.containerId }).catch(() => undefined);
    }
    conn?.close();
    await d?.stop();
    removeCgroupEverywhere(cgroupParent);
    rmSync(fifoDir, { recursive: true, force: true });
  });
  const tasks = () => conn.service(Tasks);
  const containers = () => conn.service(Containers);
  // Each container in /<parent>/<id> as ctr places them; the parent goes at the end.
  const cgroupParent = `dk-test-${process.pid}`;
  const newContainer = (id: string, spec: Spec, extra: Record<string, unknown> = {}) => {
    const s = structuredClone(spec);
    s.linux = { ...(s.linux ?? {}), cgroupsPath: `/${cgroupParent}/${id}` };
    return containers().create({ container: { id, runtime: { name: 'io.containerd.runc.v2' }, spec: packJson(SPEC_TYPE_URL, s), ...extra } });
  };
  const fifo = (name: string) => {
    const path = join(fifoDir, name);
    mkfifo(path, 0o600);
    return { path, fd: openSync(path, O_RDONLY | O_NONBLOCK) };
  };
  const readAll = (fd: number, until: string) => {
    const buf = Buffer.alloc(4096);
    let out = '';
    const end = Date.now() + 5000;
    while (!out.includes(until) && Date.now() < end) {
      if (pollReadable([fd], 100).length === 0) continue;
      try {
        out += buf.toString('utf8', 0, readSync(fd, buf));
      } catch {
        /* EAGAIN */
      }
    }
    return out;
  };

  t.test('the whole life of a task, every method, events in order', async (t) => {
    const envelopes: Envelope[] = [];
    const sub = conn.service(Events).subscribe({ filters: ['namespace==dk,topic~=|^/tasks/|'] });
    void (async () => {
      try {
        for await (const e of sub) envelopes.push(e);
      } catch {
        /* cancelled */
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    await newContainer('dk-life', specOf(['sleep', '1000']), { runtime: { name: 'io.containerd.runc.v2', options: packAny(OptionsSchema, { noNewKeyring: true }) } });
    const out = fifo('life-out');
    const created = await tasks().create({ containerId: 'dk-life', stdout: out.path, stderr: out.path });
    t.ok(created.pid > 0);
    t.equal(created.containerId, 'dk-life');
    t.equal((await tasks().get({ containerId: 'dk-life' })).process?.status, Status.CREATED);
    t.equal((await tasks().start({ containerId: 'dk-life' })).pid, created.pid);
    const got = (await tasks().get({ containerId: 'dk-life' })).process!;
    t.match({ id: got.id, status: got.status, pid: got.pid, stdout: got.stdout }, { id: 'dk-life', status: Status.RUNNING, pid: created.pid, stdout: out.path });
    t.same((await tasks().list({})).tasks.map((p) => p.id), ['dk-life']);
    t.same((await tasks().list({ filter: 'id==nope' })).tasks, [], 'List filters');

    await tasks().exec({ containerId: 'dk-life', execId: 'e1', stdout: out.path, spec: packJson(PROCESS_TYPE_URL, { args: ['sh', '-c', 'echo from-exec; sleep 30'], cwd: '/', user: { uid: 0, gid: 0 }, env: ['PATH=/bin'] }) });
    t.equal((await tasks().get({ containerId: 'dk-life', execId: 'e1' })).process?.status, Status.CREATED);
    const epid = (await tasks().start({ containerId: 'dk-life', execId: 'e1' })).pid;
    t.equal(readAll(out.fd, 'from-exec'), 'from-exec\n');
    const pids = (await tasks().listPids({ containerId: 'dk-life' })).processes;
    t.same(pids.map((p) => p.pid).sort(), [created.pid, epid].sort());
    const info = pids.find((p) => p.pid === epid)!.info!;
    t.equal(unpackAny(info, ProcessDetailsSchema)?.execId, 'e1', 'ListPids marks the exec (ProcessDetails)');

    await tasks().pause({ containerId: 'dk-life' });
    t.equal((await tasks().get({ containerId: 'dk-life' })).process?.status, Status.PAUSED);
    await tasks().resume({ containerId: 'dk-life' });
    const metrics = (await tasks().metrics({ filters: ['id==dk-life'] })).metrics;
    t.equal(metrics.length, 1);
    t.equal(metrics[0]!.data?.typeUrl, 'io.containerd.cgroups.v2.Metrics');
    t.ok((unpackAny(metrics[0]!.data!, MetricsSchema)?.pids?.current ?? 0n) >= 2n, 'Metrics from the cgroup');
    t.equal(await status(tasks().update({ containerId: 'dk-life', resources: packJson(LINUX_RESOURCES_TYPE_URL, { pids: { limit: 100 } }) })), 'OK', 'Update');
    t.match(await status(tasks().update({ containerId: 'dk-life', resources: packJson(LINUX_RESOURCES_TYPE_URL, { pids: { limit: 'x' } }) })), /^INVALID_ARGUMENT: .*pids\.limit/, 'Update with a bad value');

    await tasks().kill({ containerId: 'dk-life', execId: 'e1', signal: 9 });
    const ew = await tasks().wait({ containerId: 'dk-life', execId: 'e1' });
    t.equal(ew.exitStatus, 137);
    const dp = await tasks().deleteProcess({ containerId: 'dk-life', execId: 'e1' });
    t.same([dp.id, dp.pid, dp.exitStatus], ['e1', epid, 137]);

    const waiting = tasks().wait({ containerId: 'dk-life' });
    await tasks().kill({ containerId: 'dk-life', signal: 9, all: true });
    t.equal((await waiting).exitStatus, 137);
    const del = await tasks().delete({ containerId: 'dk-life' });
    t.same([del.id, del.pid, del.exitStatus], ['dk-life', created.pid, 137]);
    t.ok(del.exitedAt && del.exitedAt.seconds > 0n);
    await containers().delete({ id: 'dk-life' });
    closeSync(out.fd);
    await new Promise((r) => setTimeout(r, 200));
    sub.cancel();
    t.same(
      envelopes.map((e) => e.topic),
      ['/tasks/create', '/tasks/start', '/tasks/exec-added', '/tasks/exec-started', '/tasks/paused', '/tasks/resumed', '/tasks/exit', '/tasks/exit', '/tasks/delete'],
      'events in order',
    );
    const exits = envelopes.filter((e) => e.topic === '/tasks/exit').map((e) => unpackAny(e.event!, TaskExitSchema)!);
    t.same(
      exits.map((x) => [x.containerId, x.id, x.exitStatus]),
      [
        ['dk-life', 'e1', 137],
        ['dk-life', 'dk-life', 137],
      ],
    );
  });

  t.test('bad input: the codes containerd gives, with clear messages', async (t) => {
    await newContainer('dk-bad', specOf(['sleep', '1000']));
    t.match(await status(tasks().create({ containerId: 'dk-bad' }, { namespace: '' })), /^FAILED_PRECONDITION: namespace is required/, 'missing namespace header');
    t.match(await status(tasks().create({ containerId: 'dk-none' })), /^NOT_FOUND: container "dk-none" in namespace "dk"/, 'unknown container');
    t.match(await status(tasks().get({ containerId: 'dk-none' })), /^NOT_FOUND/, 'unknown task');
    t.match(await status(tasks().create({ containerId: 'dk-bad', stdout: join(fifoDir, 'missing') })), /^NOT_FOUND: stdout: open FIFO .*missing/, 'FIFO path missing');
    t.match(await status(tasks().create({ containerId: 'dk-bad', checkpoint: { digest: 'sha256:00', mediaType: 'x' } })), /^UNIMPLEMENTED: checkpoint/, 'checkpoint refused');
    t.match(await status(tasks().create({ containerId: 'dk-bad', options: { typeUrl: 'example.com/Nope', value: new Uint8Array() } })), /^INVALID_ARGUMENT: runtime options/, 'unknown options type');
    t.equal(await code(tasks().create({ containerId: 'dk-bad' })), 'OK');
    t.match(await status(tasks().create({ containerId: 'dk-bad' })), /^ALREADY_EXISTS/, 'task create twice');
    await tasks().start({ containerId: 'dk-bad' });
    const proc = { args: ['true'], cwd: '/', user: { uid: 0, gid: 0 } };
    t.equal(await code(tasks().exec({ containerId: 'dk-bad', execId: 'x', spec: packJson(PROCESS_TYPE_URL, proc) })), 'OK');
    t.match(await status(tasks().exec({ containerId: 'dk-bad', execId: 'x', spec: packJson(PROCESS_TYPE_URL, proc) })), /^ALREADY_EXISTS: id x/, 'exec id reused');
    t.match(await status(tasks().exec({ containerId: 'dk-bad', execId: 'y', spec: { typeUrl: SPEC_TYPE_URL, value: new TextEncoder().encode('{}') } })), /^INVALID_ARGUMENT: exec process spec: type URL/, 'wrong type URL');
    t.match(await status(tasks().exec({ containerId: 'dk-bad', execId: 'y', spec: { typeUrl: PROCESS_TYPE_URL, value: new TextEncoder().encode('{not json') } })), /^INVALID_ARGUMENT: exec process spec: value is not valid JSON/, 'malformed Any');
    t.match(await status(tasks().exec({ containerId: 'dk-bad', execId: 'y', spec: packJson(PROCESS_TYPE_URL, { cwd: '/', user: { uid: 0, gid: 0 } }) })), /^INVALID_ARGUMENT: .*args/, 'invalid process spec');
    t.match(await status(tasks().exec({ containerId: 'dk-bad', execId: 'bad id!', spec: packJson(PROCESS_TYPE_URL, proc) })), /^INVALID_ARGUMENT: identifier/, 'bad exec id');
    t.match(await status(tasks().start({ containerId: 'dk-bad', execId: 'nope' })), /^NOT_FOUND/, 'unknown exec');
    t.match(await status(tasks().delete({ containerId: 'dk-bad' })), /^FAILED_PRECONDITION: task dk-bad must be stopped/, 'delete of a running task');
    t.match(await status(tasks().resizePty({ containerId: 'dk-bad', width: 80, height: 24 })), /^FAILED_PRECONDITION: .*no terminal/, 'resize without a terminal');
    t.match(await status(tasks().checkpoint({ containerId: 'dk-bad' })), /^UNIMPLEMENTED/);
    t.match(await status(tasks().kill({ containerId: 'dk-bad', signal: 99 })), /^INVALID_ARGUMENT: invalid signal/);
    t.match(await status(tasks().start({ containerId: 'dk-bad' })), /^FAILED_PRECONDITION: task dk-bad: cannot start a task that is running/, 'start twice');
    await tasks().kill({ containerId: 'dk-bad', signal: 9 });
    await tasks().wait({ containerId: 'dk-bad' });
    t.match(await status(tasks().kill({ containerId: 'dk-bad', signal: 9 })), /^NOT_FOUND: process already finished/);
    await tasks().delete({ containerId: 'dk-bad' });

    // A spec the runtime refuses: nothing is left behind.
    await newContainer('dk-badspec', { ...specOf(['true']), process: { ...specOf(['true']).process!, args: [] } });
    t.match(await status(tasks().create({ containerId: 'dk-badspec' })), /^INVALID_ARGUMENT: .*process\.args/, 'invalid spec JSON for the runtime');
    t.same(readdirSync(join(d.state, 'tasks', 'dk')), [], 'no task directory left');
    t.same(readdirSync(join(d.state, 'runtime', 'dk')), [], 'no runtime state left');
  });

  t.test('Leases', async (t) => {
    const leases = conn.service(Leases);
    const l = (await leases.create({ id: 'dk-l1', labels: { a: 'b' } })).lease!;
    t.equal(l.id, 'dk-l1');
    t.match(await status(leases.create({ id: 'dk-l1' })), /^ALREADY_EXISTS: lease "dk-l1"/);
    t.match(await status(leases.create({ id: '' })), /^INVALID_ARGUMENT: lease id must be provided/);
    await leases.addResource({ id: 'dk-l1', resource: { id: 'sha256:' + 'a'.repeat(64), type: 'content' } });
    await leases.addResource({ id: 'dk-l1', resource: { id: 'snap-1', type: 'snapshots/overlayfs' } });
    t.match(await status(leases.addResource({ id: 'dk-l1', resource: { id: 'x', type: 'bogus' } })), /^UNIMPLEMENTED: resource type bogus not supported yet/);
    t.match(await status(leases.addResource({ id: 'dk-nope', resource: { id: 'snap', type: 'snapshots/overlayfs' } })), /^NOT_FOUND/);
    t.same(
      (await leases.listResources({ id: 'dk-l1' })).resources.map((r) => `${r.type}:${r.id}`),
      [`content:sha256:${'a'.repeat(64)}`, 'snapshots/overlayfs:snap-1'],
    );
    await leases.deleteResource({ id: 'dk-l1', resource: { id: 'snap-1', type: 'snapshots/overlayfs' } });
    t.equal((await leases.listResources({ id: 'dk-l1' })).resources.length, 1);
    t.same((await leases.list({ filters: ['labels.a==b'] })).leases.map((x) => x.id), ['dk-l1']);
    await leases.delete({ id: 'dk-l1' });
    t.match(await status(leases.delete({ id: 'dk-l1' })), /^NOT_FOUND/);
  });

  t.test('clients that go away mid-call leave nothing behind', async (t) => {
    await newContainer('dk-wait', specOf(['sleep', '1000']));
    await tasks().create({ containerId: 'dk-wait' });
    await tasks().start({ containerId: 'dk-wait' });
    const pid = d.child.pid!;
    // warm up: one of each, so lazily opened things are open
    for (const run of [0, 1]) {
      const before = fdCount(pid);
      for (let i = 0; i < 30; i++) {
        const ac = new AbortController();
        const w = tasks().wait({ containerId: 'dk-wait' }, { signal: ac.signal });
        const s = conn.service(Events).subscribe({ filters: ['topic~=|^/tasks/|'] }) as unknown as NodeJS.EventEmitter & { cancel(): void };
        s.on('error', () => undefined); // CANCELLED, ours
        await new Promise((r) => setTimeout(r, 5));
        ac.abort();
        s.cancel();
        await w.catch(() => undefined);
      }
      await new Promise((r) => setTimeout(r, 300));
      if (run === 1) t.ok(fdCount(pid) <= before, `fds of tsrund after 30 cancelled Waits and Subscribes: ${fdCount(pid)} (before ${before})`);
    }
    await tasks().kill({ containerId: 'dk-wait', signal: 9 });
    t.equal((await tasks().wait({ containerId: 'dk-wait' })).exitStatus, 137, 'a Wait after cancelled ones still works');
    await tasks().delete({ containerId: 'dk-wait' });
    t.notMatch(d.log(), /MaxListenersExceeded/, 'no listener pile-up warning from Node');
  });

  t.test('100 concurrent creates of different ids, 10 of one id', async (t) => {
    const spec = specOf(['true']);
    await Promise.all(Array.from({ length: 100 }, (_, i) => newContainer(`dk-c${i}`, spec)));
    const many = await Promise.all(Array.from({ length: 100 }, (_, i) => code(tasks().create({ containerId: `dk-c${i}` }))));
    t.same(many.filter((c) => c !== 'OK'), [], 'all 100 created');
    t.equal((await tasks().list({})).tasks.length, 100);
    const same = await Promise.all(Array.from({ length: 10 }, () => status(tasks().create({ containerId: 'dk-c0' }))));
    t.equal(same.filter((s) => s.startsWith('ALREADY_EXISTS')).length, 10, 'the existing one wins against 10 more');
    await newContainer('dk-one', spec);
    const race = await Promise.all(Array.from({ length: 10 }, () => code(tasks().create({ containerId: 'dk-one' }))));
    t.same(
      [race.filter((c) => c === 'OK').length, race.filter((c) => c === 'ALREADY_EXISTS').length],
      [1, 9],
      'exactly one of 10 concurrent creates of one id wins',
    );
    await Promise.all(
      [...Array.from({ length: 100 }, (_, i) => `dk-c${i}`), 'dk-one'].map(async (id) => {
        await tasks().delete({ containerId: id });
        await containers().delete({ id });
      }),
    );
    t.same(readdirSync(join(d.state, 'tasks', 'dk')), []);
    t.same(
      readdirSync('/proc').filter((p) => {
        try {
          const argv = /^\d+$/.test(p) ? readFileSync(`/proc/${p}/cmdline`, 'utf8') : '';
          return argv.startsWith(SHIM_PREFIX) && argv.includes(d.state) && readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]![0] !== 'Z';
        } catch {
          return false;
        }
      }),
      [],
      'no shim left',
    );
  });
});
