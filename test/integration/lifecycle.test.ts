// The runc lifecycle on real busybox containers: create, state, start, kill,
// delete, list, run (exit codes, signals), pid files, logs.
import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeBundle } from '../helpers/bundle.js';
import { cli, needsRoot, TSRUNC, waitFor } from '../helpers/cli.js';
import { execa } from 'execa';

t.test('lifecycle', { skip: needsRoot }, async (t) => {
  const tsrunc = cli();

  t.test('version has three lines', async (t) => {
    const r = await tsrunc(['--version']);
    t.equal(r.exitCode, 0);
    const lines = r.stdout.split('\n');
    t.equal(lines.length, 3);
    t.match(lines[0], /^tsrunc version \d+\.\d+\.\d+/);
    t.match(lines[1], /^commit: \S+/);
    t.match(lines[2], /^spec: 1\.2\.\d+$/);
    t.equal((await tsrunc(['-v'])).stdout, r.stdout, '-v is --version');
  });

  t.test('create, state, start, kill, delete', async (t) => {
    const b = makeBundle(['sleep', '100']);
    const pidFile = join(b.dir, 'init.pid');
    const c = await tsrunc.detached(['create', '--bundle', b.dir, '--pid-file', pidFile, 'lc1']);
    t.equal(c.exitCode, 0, c.stderr);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    t.ok(pid > 1, 'pid file holds the init pid');

    let s = JSON.parse((await tsrunc(['state', 'lc1'])).stdout);
    t.equal(s.status, 'created');
    t.equal(s.id, 'lc1');
    t.equal(s.pid, pid);
    t.equal(s.bundle, b.dir);
    t.equal(s.rootfs, b.rootfs);
    t.equal(s.ociVersion, b.spec.ociVersion);
    t.match(s.created, /^\d{4}-\d\d-\d\dT/);
    t.equal(s.owner, '');
    // The init waits on the exec fifo: it is not sleep yet.
    t.notMatch(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /sleep/);

    t.equal((await tsrunc(['start', 'lc1'])).exitCode, 0);
    s = JSON.parse((await tsrunc(['state', 'lc1'])).stdout);
    t.equal(s.status, 'running');
    t.ok(await waitFor(() => readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep\x00100')), 'the init execs after start');

    const again = await tsrunc(['start', 'lc1']);
    t.equal(again.exitCode, 1);
    t.match(again.stderr, /cannot start an already running container/);
    const del = await tsrunc(['delete', 'lc1']);
    t.equal(del.exitCode, 1);
    t.match(del.stderr, /cannot delete container lc1 that is not stopped: running/);

    t.equal((await tsrunc(['kill', 'lc1', 'KILL'])).exitCode, 0);
    for (let i = 0; i < 50 && existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'); i++) await sleep(20);
    s = JSON.parse((await tsrunc(['state', 'lc1'])).stdout);
    t.equal(s.status, 'stopped');
    t.equal(s.pid, 0);
    const restart = await tsrunc(['start', 'lc1']);
    t.match(restart.stderr, /cannot start a container that has stopped/);
    const k = await tsrunc(['kill', 'lc1']);
    t.equal(k.exitCode, 1);
    t.match(k.stderr, /container not running/);

    t.equal((await tsrunc(['delete', 'lc1'])).exitCode, 0);
    const gone = await tsrunc(['state', 'lc1']);
    t.equal(gone.exitCode, 1);
    t.match(gone.stderr, /container "lc1" does not exist/);
    t.notOk(existsSync(join(tsrunc.root, 'lc1')), 'state dir removed');
  });

  t.test('delete of a created container kills its init', async (t) => {
    const b = makeBundle(['true']);
    t.equal((await tsrunc.detached(['create', '-b', b.dir, 'lc2'])).exitCode, 0);
    const pid = JSON.parse((await tsrunc(['state', 'lc2'])).stdout).pid;
    t.equal((await tsrunc(['delete', 'lc2'])).exitCode, 0);
    t.notOk(existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/cmdline`).length > 0, 'init is gone');
  });

  t.test('delete -f of a running container', async (t) => {
    const b = makeBundle(['sleep', '100']);
    t.equal((await tsrunc.detached(['run', '-d', '-b', b.dir, 'lc3'])).exitCode, 0);
    t.equal(JSON.parse((await tsrunc(['state', 'lc3'])).stdout).status, 'running');
    const d = await tsrunc(['delete', '--force', 'lc3']);
    t.equal(d.exitCode, 0, d.stderr);
    t.equal((await tsrunc(['state', 'lc3'])).exitCode, 1);
  });

  t.test('kill signals by name, SIG name and number; --all', async (t) => {
    const b = makeBundle(['sh', '-c', 'trap "echo got USR1 >> /tmp/log" USR1; trap "echo got HUP >> /tmp/log" HUP; trap "echo got TERM >> /tmp/log; exit 0" TERM; sleep 1000 & while true; do wait; done']);
    b.spec.root!.readonly = false;
    b.save();
    t.equal((await tsrunc.detached(['run', '-d', '-b', b.dir, 'lc4'])).exitCode, 0);
    await sleep(200);
    for (const sig of ['USR1', 'SIGHUP']) t.equal((await tsrunc(['kill', 'lc4', sig])).exitCode, 0, sig);
    await sleep(200);
    t.equal(readFileSync(join(b.rootfs, 'tmp/log'), 'utf8'), 'got USR1\ngot HUP\n');
    const bad = await tsrunc(['kill', 'lc4', 'FOO']);
    t.equal(bad.exitCode, 1);
    t.match(bad.stderr, /unknown signal "FOO"/);
    t.equal((await tsrunc(['kill', '--all', 'lc4', '9'])).exitCode, 0);
    await sleep(300);
    t.equal(JSON.parse((await tsrunc(['state', 'lc4'])).stdout).status, 'stopped');
    t.equal((await tsrunc(['delete', 'lc4'])).exitCode, 0);
  });

  t.test('list: table, json, quiet', async (t) => {
    const r2 = cli();
    const b = makeBundle(['sleep', '100']);
    t.equal((await r2.detached(['create', '-b', b.dir, 'la'])).exitCode, 0);
    t.equal((await r2.detached(['run', '-d', '-b', b.dir, 'lb'])).exitCode, 0);
    const table = (await r2(['list'])).stdout.split('\n');
    t.match(table[0], /^ID {10}PID {9}STATUS {6}BUNDLE +CREATED +OWNER$/);
    t.match(table[1], new RegExp(`^la +\\d+ +created +${b.dir} +\\S+ +root$`));
    t.match(table[2], new RegExp(`^lb +\\d+ +running +${b.dir} +\\S+ +root$`));
    const json = JSON.parse((await r2(['list', '--format', 'json'])).stdout);
    t.same(json.map((s: { id: string; status: string; owner: string }) => [s.id, s.status, s.owner]), [
      ['la', 'created', 'root'],
      ['lb', 'running', 'root'],
    ]);
    t.equal((await r2(['list', '-q'])).stdout, 'la\nlb');
    for (const id of ['la', 'lb']) t.equal((await r2(['delete', '-f', id])).exitCode, 0);
    t.equal((await r2(['list', '-q'])).stdout, '');
  });

  t.test('run exits with the container status', async (t) => {
    const b = makeBundle(['sh', '-c', 'echo out; echo err >&2; exit 7']);
    const r = await tsrunc(['run', '-b', b.dir, 'lr1']);
    t.equal(r.exitCode, 7);
    t.equal(r.stdout, 'out');
    t.equal(r.stderr, 'err');
    t.equal((await tsrunc(['state', 'lr1'])).exitCode, 1, 'deleted after run');
  });

  t.test('run of a container killed by a signal exits 128+N', async (t) => {
    const b = makeBundle(['sh', '-c', 'sleep 100']);
    const p = tsrunc(['run', '-b', b.dir, 'lr2']);
    await sleep(500);
    t.equal((await tsrunc(['kill', 'lr2', 'KILL'])).exitCode, 0);
    const r = await p;
    t.equal(r.exitCode, 137);
  });

  t.test('run forwards signals to the container', async (t) => {
    const b = makeBundle(['sh', '-c', 'trap "echo caught TERM; exit 3" TERM; sleep 100 & wait']);
    const p = tsrunc(['run', '-b', b.dir, 'lr3']);
    await sleep(700);
    p.kill('SIGTERM');
    const r = await p;
    t.equal(r.stdout, 'caught TERM');
    t.equal(r.exitCode, 3);
  });

  t.test('run --keep leaves a stopped container', async (t) => {
    const b = makeBundle(['true']);
    t.equal((await tsrunc(['run', '--keep', '-b', b.dir, 'lr4'])).exitCode, 0);
    t.equal(JSON.parse((await tsrunc(['state', 'lr4'])).stdout).status, 'stopped');
    const ps = await tsrunc(['ps', '-f', 'json', 'lr4']);
    t.equal(ps.stdout, '[]', 'ps of a stopped container: no processes, no error');
    t.match((await tsrunc(['ps', 'lr4'])).stdout, /^UID\s+PID/, 'the table is the header alone');
    t.equal((await tsrunc(['delete', 'lr4'])).exitCode, 0);
  });

  t.test('run DIR/ takes the bundle and its name as the id', async (t) => {
    const b = makeBundle(['sh', '-c', 'echo $HOSTNAME']);
    const r = await tsrunc(['run', `${b.dir}/`]);
    t.equal(r.exitCode, 0, r.stderr);
    const plain = await execa('node', [TSRUNC, '--root', tsrunc.root, 'run', 'lr5'], { cwd: b.dir, reject: false });
    t.equal(plain.exitCode, 0, 'run ID uses the current directory as the bundle');
  });

  t.test('Go-style single-dash long flags', async (t) => {
    const b = makeBundle(['true']);
    const r = await execa('node', [TSRUNC, '-root', tsrunc.root, 'run', '-bundle', b.dir, 'lr6'], { reject: false });
    t.equal(r.exitCode, 0, r.stderr);
  });

  t.test('spec writes a config that runs, and will not overwrite it', async (t) => {
    const b = makeBundle(['true']);
    const { rmSync } = await import('node:fs');
    rmSync(join(b.dir, 'config.json'));
    t.equal((await tsrunc(['spec', '--bundle', b.dir])).exitCode, 0);
    const spec = JSON.parse(readFileSync(join(b.dir, 'config.json'), 'utf8'));
    t.same(spec.process.args, ['sh']);
    t.equal(spec.process.terminal, true);
    const again = await tsrunc(['spec', '-b', b.dir]);
    t.equal(again.exitCode, 1);
    t.match(again.stderr, /config\.json exists; remove it first/);
    spec.process.terminal = false;
    spec.process.args = ['sh', '-c', 'hostname'];
    writeFileSync(join(b.dir, 'config.json'), JSON.stringify(spec));
    t.equal((await tsrunc(['run', '-b', b.dir, 'lsp1'])).stdout, 'tsrunc');
    rmSync(join(b.dir, 'config.json'));
    t.equal((await tsrunc(['spec', '--rootless', '-b', b.dir])).exitCode, 0);
    const rootless = JSON.parse(readFileSync(join(b.dir, 'config.json'), 'utf8'));
    t.ok(rootless.linux.namespaces.some((n: { type: string }) => n.type === 'user'), 'rootless: a user namespace');
    t.same(rootless.linux.uidMappings, [{ containerID: 0, hostID: 0, size: 1 }]);
  });

  t.test('features: the runtime-spec features document', async (t) => {
    const r = await tsrunc(['features']);
    t.equal(r.exitCode, 0, r.stderr);
    const f = JSON.parse(r.stdout);
    t.equal(f.ociVersionMin, '1.0.0');
    t.match(f.ociVersionMax, /^1\.2\./);
    t.same(f.hooks, ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']);
    t.ok(f.mountOptions.includes('rbind') && f.mountOptions.includes('rro') && !f.mountOptions.includes('remount'));
    t.same(f.linux.namespaces, ['cgroup', 'ipc', 'mount', 'network', 'pid', 'time', 'user', 'uts']);
    t.ok(f.linux.capabilities.includes('CAP_SYS_ADMIN'));
    t.equal(f.linux.seccomp.enabled, true);
    t.ok(f.linux.seccomp.actions.includes('SCMP_ACT_NOTIFY'));
    t.ok(f.linux.seccomp.archs.includes('SCMP_ARCH_X86_64'));
    t.match(f.annotations['io.github.tsrunc.cgroup.mode'], /^(unified|hybrid|legacy|none)$/);
    t.type(f.annotations['io.github.tsrunc.cgroup.controllers'], 'string');
  });

  t.test('errors go to --log as JSON lines and as the last stderr line', async (t) => {
    const log = join(tsrunc.root, 'log.json');
    const r = await tsrunc(['--log', log, '--log-format', 'json', 'state', 'nope']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr.split('\n').at(-1), /container "nope" does not exist/);
    const line = JSON.parse(readFileSync(log, 'utf8').trim().split('\n').at(-1)!);
    t.equal(line.level, 'error');
    t.match(line.msg, /container "nope" does not exist/);
    t.match(line.time, /^\d{4}-/);
  });

  t.test('--debug logs the launch plan', async (t) => {
    const b = makeBundle(['true']);
    const log = join(tsrunc.root, 'debug.log');
    writeFileSync(log, '');
    t.equal((await tsrunc(['--debug', '--log', log, 'run', '-b', b.dir, 'lr7'])).exitCode, 0);
    const text = readFileSync(log, 'utf8');
    t.match(text, /level=debug msg="\[[\d.]+ ms\] plan op \d+: mount proc on \/proc/, "debug lines carry the time since start");
    t.match(text, /plan op \d+: pivot_root into /);
    t.match(text, /plan op \d+: exec true/);
  });
});
