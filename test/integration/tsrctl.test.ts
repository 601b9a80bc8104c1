// tsrctl against a tsrund of its own (temp socket): version, namespaces,
// containers, events; tables and --format json; errors as the last line.
// Needs no root. Ids here start with "tc-".
import t from 'tap';
import { spawn } from 'node:child_process';
import { execa } from 'execa';
import { Containers } from '../../src/gen/containerd/services/containers/v1/containers_pb.js';
import { connect } from '../../src/client/index.js';
import { packJson, SPEC_TYPE_URL } from '../../src/typeurl.js';
import { cleanEnv, startTsrund, TSRCTL, type RunningDaemon } from '../helpers/daemon.js';

let d: RunningDaemon;
t.before(async () => {
  d = await startTsrund();
});
t.teardown(() => d?.stop());
const ctl = (args: string[]) => execa(process.execPath, [TSRCTL, '--address', d.address, ...args], { reject: false, timeout: 30_000, env: cleanEnv() });

t.test('version', async (t) => {
  const r = await ctl(['version']);
  t.equal(r.exitCode, 0, r.stderr);
  t.match(r.stdout, /^Client:\n Version: +\S+\n Git commit: +\S+\n Node\.js: +v\d+/);
  t.match(r.stdout, /\nServer:\n Version: +\S+\n Git commit: +\S+\n UUID: +[0-9a-f-]{36}\n PID: +\d+\n/);
  const j = JSON.parse((await ctl(['version', '--format', 'json'])).stdout) as { client: { version: string }; server: { uuid: string; pid: number } };
  t.equal(j.server.pid, d.child.pid);
  const down = await execa(process.execPath, [TSRCTL, '--address', `${d.dir}/nobody.sock`, 'version'], { reject: false, env: cleanEnv() });
  t.equal(down.exitCode, 1);
  t.match(down.stdout, /^Client:/, 'the client part still prints');
  t.match(down.stderr, /^tsrctl: cannot connect to tsrund at .*nobody\.sock/);
});

t.test('namespaces', async (t) => {
  t.equal((await ctl(['namespaces', 'create', 'tc-a', 'team=x', 'env=dev'])).exitCode, 0);
  t.match((await ctl(['ns', 'ls'])).stdout, /^NAME +LABELS\ntc-a +env=dev,team=x$/);
  t.equal((await ctl(['ns', 'label', 'tc-a', 'env='])).exitCode, 0);
  t.same(JSON.parse((await ctl(['ns', 'ls', '--format', 'json'])).stdout), [{ name: 'tc-a', labels: { team: 'x' } }]);
  const dup = await ctl(['ns', 'create', 'tc-a']);
  t.equal(dup.exitCode, 1);
  t.equal(dup.stderr, 'tsrctl: namespace "tc-a": already exists');
  const rm = await ctl(['ns', 'rm', 'tc-a', 'tc-none']);
  t.equal(rm.exitCode, 1, 'one of two failed');
  t.equal(rm.stdout, 'tc-a');
  t.equal(rm.stderr, 'tsrctl: namespace "tc-none": not found');
  t.equal((await ctl(['ns', 'ls', '-q'])).stdout, '');
});

t.test('containers', async (t) => {
  const conn = connect(d.address, { namespace: 'tc' });
  t.teardown(() => conn.close());
  await conn.service(Containers).create({ container: { id: 'tc-web', image: 'busybox', labels: { app: 'web' }, runtime: { name: 'io.containerd.runc.v2' }, spec: packJson(SPEC_TYPE_URL, { hostname: 'h' }) } });
  const ls = await ctl(['-n', 'tc', 'containers', 'ls']);
  t.match(ls.stdout, /^CONTAINER +IMAGE +RUNTIME +CREATED\ntc-web +busybox +io\.containerd\.runc\.v2 +(Less than a second|\d+ seconds?) ago$/);
  t.equal((await ctl(['-n', 'tc', 'c', 'ls', 'labels.app==other'])).stdout, 'CONTAINER   IMAGE   RUNTIME   CREATED');
  const info = JSON.parse((await ctl(['-n', 'tc', 'c', 'info', 'tc-web'])).stdout) as { ID: string; Spec: unknown; Labels: unknown };
  t.same([info.ID, info.Spec, info.Labels], ['tc-web', { hostname: 'h' }, { app: 'web' }]);
  const json = JSON.parse((await ctl(['-n', 'tc', 'c', 'ls', '--format', 'json'])).stdout) as Array<{ ID: string }>;
  t.same(json.map((c) => c.ID), ['tc-web']);
  t.equal((await ctl(['-n', 'tc', 'c', 'rm', 'tc-web'])).exitCode, 0);
  const gone = await ctl(['-n', 'tc', 'c', 'info', 'tc-web']);
  t.equal(gone.exitCode, 1);
  t.equal(gone.stderr, 'tsrctl: container "tc-web" in namespace "tc": not found');
});

t.test('events', async (t) => {
  const child = spawn(process.execPath, [TSRCTL, '--address', d.address, 'events', 'topic~=^/namespaces/'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  for (let i = 0; i < 50 && !out.includes('tc-ev'); i++) {
    await ctl(['ns', 'create', `tc-ev${i}`]);
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGINT');
  t.equal(await exited, 0, 'SIGINT ends it cleanly');
  const line = out.split('\n').find((l) => l.includes('/namespaces/create'));
  t.match(line, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC default \/namespaces\/create \{"name":"tc-ev\d+"\}$/, 'printed as ctr prints it');
});
