// containerd's own client against tsrund: ctr 1.6 (Debian's containerd
// package) with --address on the test's socket. ctr never starts a daemon.
// Containers are made with the TS client (ctr's create needs snapshots).
// Ids here start with "ctrt-".
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import { Containers } from '../../src/gen/containerd/services/containers/v1/containers_pb.js';
import { Events } from '../../src/gen/containerd/services/events/v1/events_pb.js';
import { Introspection } from '../../src/gen/containerd/services/introspection/v1/introspection_pb.js';
import { TaskExitSchema } from '../../src/gen/containerd/events/task_pb.js';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { connect, type Connection } from '../../src/client/index.js';
import { packAny, packJson, SPEC_TYPE_URL } from '../../src/typeurl.js';
import { cleanEnv, startTsrund, type RunningDaemon } from '../helpers/daemon.js';

const CTR = '/usr/bin/ctr';
if (!existsSync(CTR)) {
  t.test('ctr against tsrund', { skip: `${CTR} is not installed (Debian package containerd)` }, () => {});
} else {
  let d: RunningDaemon;
  let conn: Connection;
  t.before(async () => {
    d = await startTsrund();
    conn = connect(d.address, { namespace: 'ctrt' });
    await conn.ready();
  });
  t.teardown(async () => {
    conn?.close();
    await d?.stop();
  });
  const ctr = (args: string[]) => execa(CTR, ['--address', d.address, ...args], { reject: false, timeout: 30_000, env: cleanEnv() });

  t.test('ctr version', async (t) => {
    const r = await ctr(['version']);
    t.equal(r.exitCode, 0, r.stderr);
    const uuid = (await conn.service(Introspection).server()).uuid;
    t.match(r.stdout, /Server:\n\s+Version:\s+\S+\n\s+Revision:\s+\S+\n\s+UUID: /);
    t.match(r.stdout, `UUID: ${uuid}`, 'Version and Introspection.Server answered');
  });

  t.test('ctr namespaces ls, create, label, rm', async (t) => {
    t.equal((await ctr(['namespaces', 'create', 'ctrt-a', 'team=x'])).exitCode, 0);
    const ls = await ctr(['namespaces', 'ls']);
    t.equal(ls.exitCode, 0, ls.stderr);
    t.match(ls.stdout, /^NAME\s+LABELS\s*\n/);
    t.match(ls.stdout, /^ctrt-a\s+team=x\s*$/m);
    t.equal((await ctr(['namespaces', 'label', 'ctrt-a', 'env=prod'])).exitCode, 0);
    t.match((await ctr(['namespaces', 'ls'])).stdout, /^ctrt-a\s+(env=prod,team=x|team=x,env=prod)\s*$/m);
    t.same((await ctr(['namespaces', 'ls', '-q'])).stdout.split('\n'), ['ctrt-a']);
    const dup = await ctr(['namespaces', 'create', 'ctrt-a']);
    t.not(dup.exitCode, 0);
    t.match(dup.stderr, /already exists/);
    await conn.service(Containers).create({ container: { id: 'ctrt-busy', runtime: { name: 'io.containerd.runc.v2' }, spec: packJson(SPEC_TYPE_URL, {}) } }, { namespace: 'ctrt-a' });
    const busy = await ctr(['namespaces', 'rm', 'ctrt-a']);
    t.not(busy.exitCode, 0);
    t.match(busy.stderr, /namespace "ctrt-a" must be empty, but it still has containers/);
    await conn.service(Containers).delete({ id: 'ctrt-busy' }, { namespace: 'ctrt-a' });
    const rm = await ctr(['namespaces', 'rm', 'ctrt-a']);
    t.equal(rm.exitCode, 0, rm.stderr);
    t.equal(rm.stdout.trim(), 'ctrt-a');
    t.notMatch((await ctr(['namespaces', 'ls'])).stdout, /ctrt-a/);
  });

  t.test('ctr containers ls, info, rm', async (t) => {
    const spec = { ociVersion: '1.1.0', process: { args: ['sleep', '1'], cwd: '/' }, root: { path: 'rootfs' }, hostname: 'ctrt' };
    await conn.service(Containers).create({
      container: { id: 'ctrt-web', image: 'docker.io/library/busybox:latest', labels: { app: 'web' }, runtime: { name: 'io.containerd.runc.v2' }, spec: packJson(SPEC_TYPE_URL, spec) },
    });
    await conn.service(Containers).create({ container: { id: 'ctrt-db', runtime: { name: 'io.containerd.runc.v2' }, spec: packJson(SPEC_TYPE_URL, spec) } });
    const ls = await ctr(['-n', 'ctrt', 'containers', 'ls']);
    t.equal(ls.exitCode, 0, ls.stderr);
    t.match(ls.stdout, /^CONTAINER\s+IMAGE\s+RUNTIME\s*\n/);
    t.match(ls.stdout, /^ctrt-web\s+docker.io\/library\/busybox:latest\s+io.containerd.runc.v2\s*$/m);
    t.match(ls.stdout, /^ctrt-db\s+-\s+io.containerd.runc.v2\s*$/m);
    const filtered = await ctr(['-n', 'ctrt', 'containers', 'ls', 'labels.app==web']);
    t.same(filtered.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)[0]), ['ctrt-web'], 'filters reach ListStream');
    t.same((await ctr(['-n', 'ctrt', 'containers', 'ls', '-q'])).stdout.split('\n'), ['ctrt-db', 'ctrt-web']);

    const info = await ctr(['-n', 'ctrt', 'containers', 'info', 'ctrt-web']);
    t.equal(info.exitCode, 0, info.stderr);
    const j = JSON.parse(info.stdout) as { ID: string; Labels: Record<string, string>; Image: string; Runtime: { Name: string }; Spec: { hostname: string } };
    t.same([j.ID, j.Labels, j.Image, j.Runtime.Name, j.Spec.hostname], ['ctrt-web', { app: 'web' }, 'docker.io/library/busybox:latest', 'io.containerd.runc.v2', 'ctrt'], 'the spec Any decodes in ctr');
    const spec2 = await ctr(['-n', 'ctrt', 'containers', 'info', '--spec', 'ctrt-web']);
    t.has(JSON.parse(spec2.stdout), spec, 'ctr re-encodes the spec (adding zero values)');
    const missing = await ctr(['-n', 'ctrt', 'containers', 'info', 'ctrt-nope']);
    t.not(missing.exitCode, 0);
    t.match(missing.stderr, /container "ctrt-nope" in namespace "ctrt": not found/);

    const rm = await ctr(['-n', 'ctrt', 'containers', 'rm', 'ctrt-web', 'ctrt-db']);
    t.equal(rm.exitCode, 0, rm.stderr);
    t.equal((await ctr(['-n', 'ctrt', 'containers', 'ls', '-q'])).stdout, '');
  });

  t.test('ctr events receives what is published', async (t) => {
    const child = spawn(CTR, ['--address', d.address, 'events'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errText = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (errText += b.toString()));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    t.teardown(() => child.kill('SIGKILL'));
    const at = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678));
    const ev = conn.service(Events);
    // publish until the subscription (made at ctr's start) sees one
    for (let i = 0; i < 100 && !out.includes('/tasks/exit'); i++) {
      await ev.publish({ topic: '/tasks/exit', event: packAny(TaskExitSchema, { containerId: 'ctrt-x', id: 'ctrt-x', pid: 42, exitStatus: 3, exitedAt: timestampFromDate(at) }) });
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGINT');
    await exited;
    const line = out.split('\n').find((l) => l.includes('/tasks/exit'));
    t.ok(line, `ctr printed the event (stderr: ${errText})`);
    t.match(line, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC ctrt \/tasks\/exit \{/);
    const json = JSON.parse(line!.slice(line!.indexOf('{'))) as Record<string, unknown>;
    t.same(json, { container_id: 'ctrt-x', id: 'ctrt-x', pid: 42, exit_status: 3, exited_at: '2024-01-02T03:04:05.678Z' }, 'ctr decoded containerd.events.TaskExit');
  });

  t.test('ctr plugins ls', async (t) => {
    const r = await ctr(['plugins', 'ls']);
    t.equal(r.exitCode, 0, r.stderr);
    t.match(r.stdout, /^io\.containerd\.grpc\.v1\s+containers\s+-\s+ok\s*$/m);
  });
}
