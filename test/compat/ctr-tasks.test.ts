// ctr 1.6 (Debian's containerd package, the client only) runs containers on
// tsrund: run --rm --rootfs, run -d, tasks ls/ps/exec/pause/resume/kill/rm,
// containers ls/rm, events, a terminal — each container under its shim.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { makeBundle } from '../helpers/bundle.js';
import { needsRoot } from '../helpers/cli.js';
import { cleanEnv, startTsrund, type RunningDaemon } from '../helpers/daemon.js';

const CTR = '/usr/bin/ctr';
const why = needsRoot || (!existsSync(CTR) ? `${CTR} is not installed (Debian package containerd)` : undefined);

function liveShims(state: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue;
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('tsrunc-shim') && argv.some((a) => a.startsWith(state))) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

t.test('ctr runs containers on tsrund', { skip: why }, async (t) => {
  let d: RunningDaemon;
  const rootfs = makeBundle(['true']).rootfs;
  t.before(async () => {
    d = await startTsrund();
  });
  t.teardown(async () => {
    await ctr(['tasks', 'rm', '-f', 'ct-d']);
    await ctr(['containers', 'rm', 'ct-d']);
    await d?.stop();
  });
  const ctr = (args: string[], input?: string) =>
    execa(CTR, ['--address', d.address, '-n', 'ctt', ...args], { reject: false, timeout: 30_000, env: cleanEnv(), ...(input !== undefined ? { input } : { stdin: 'ignore' }) });

  t.test('run --rm: output and exit code', async (t) => {
    const r = await ctr(['run', '--rm', '--rootfs', rootfs, 'ct-echo', '/bin/echo', 'hi']);
    t.equal(r.exitCode, 0, r.stderr);
    t.equal(r.stdout, 'hi');
    const bad = await ctr(['run', '--rm', '--rootfs', rootfs, 'ct-exit', '/bin/sh', '-c', 'echo to-stderr >&2; exit 7']);
    t.equal(bad.exitCode, 7, 'the container exit code is ctr run exit code');
    t.match(bad.stderr, /to-stderr/);
    t.equal((await ctr(['containers', 'ls', '-q'])).stdout, '', '--rm removed the containers');
    t.same(liveShims(d.state), [], 'and their shims');
  });

  t.test('stdin reaches the container', async (t) => {
    const r = await ctr(['run', '--rm', '--rootfs', rootfs, 'ct-cat', '/bin/sh', '-c', 'cat; echo done'], 'from ctr\n');
    t.equal(r.exitCode, 0, r.stderr);
    t.equal(r.stdout, 'from ctr\ndone', 'stdin ends when ctr closes it (CloseIO)');
  });

  t.test('run -d, tasks ls, ps, exec, pause, resume, kill, rm; containers ls, rm', async (t) => {
    const r = await ctr(['run', '-d', '--rootfs', rootfs, 'ct-d', '/bin/sleep', '1000']);
    t.equal(r.exitCode, 0, r.stderr);
    const ls = await ctr(['tasks', 'ls']);
    t.match(ls.stdout, /^TASK\s+PID\s+STATUS\s*\n/);
    const pid = /^ct-d\s+(\d+)\s+RUNNING\s*$/m.exec(ls.stdout)?.[1];
    t.ok(pid, `ct-d is RUNNING in tasks ls:\n${ls.stdout}`);

    const ex = await ctr(['tasks', 'exec', '--exec-id', 'e1', 'ct-d', '/bin/ls', '/']);
    t.equal(ex.exitCode, 0, ex.stderr);
    t.match(ex.stdout, /^bin$/m, 'exec output');
    const ex2 = await ctr(['tasks', 'exec', '--exec-id', 'e2', 'ct-d', '/bin/sh', '-c', 'exit 9']);
    t.equal(ex2.exitCode, 9, 'exec exit code');

    const bg = execa(CTR, ['--address', d.address, '-n', 'ctt', 'tasks', 'exec', '--exec-id', 'e3', 'ct-d', '/bin/sleep', '30'], { reject: false, env: cleanEnv(), stdin: 'ignore' });
    let ps = '';
    for (let i = 0; i < 50 && (ps.match(/\n\d+/g) ?? []).length < 2; i++) {
      ps = (await ctr(['tasks', 'ps', 'ct-d'])).stdout;
      await new Promise((r) => setTimeout(r, 100));
    }
    t.match(ps, /^PID\s+INFO\s*\n/);
    t.match(ps, new RegExp(`^${pid}\\s+-\\s*$`, 'm'), 'the init in tasks ps');
    t.match(ps, /^\d+\s+&ProcessDetails\{ExecID:e3,/m, 'the exec with its exec id (ProcessDetails decoded by ctr)');
    await ctr(['tasks', 'kill', '--exec-id', 'e3', '-s', 'SIGKILL', 'ct-d']);
    t.equal((await bg).exitCode, 137, 'an exec killed through tasks kill --exec-id');

    t.equal((await ctr(['tasks', 'pause', 'ct-d'])).exitCode, 0);
    t.match((await ctr(['tasks', 'ls'])).stdout, /^ct-d\s+\d+\s+PAUSED\s*$/m);
    t.equal((await ctr(['tasks', 'resume', 'ct-d'])).exitCode, 0);
    t.match((await ctr(['tasks', 'ls'])).stdout, /^ct-d\s+\d+\s+RUNNING\s*$/m);

    const rmRunning = await ctr(['tasks', 'rm', 'ct-d']);
    t.not(rmRunning.exitCode, 0, 'a running task is not removed without -f');
    t.match(rmRunning.stderr, /must be stopped/);

    t.equal((await ctr(['tasks', 'kill', '-s', 'SIGKILL', 'ct-d'])).exitCode, 0);
    let st = '';
    for (let i = 0; i < 50 && !/STOPPED/.test(st); i++) {
      st = (await ctr(['tasks', 'ls'])).stdout;
      await new Promise((r) => setTimeout(r, 50));
    }
    t.match(st, /^ct-d\s+\d+\s+STOPPED\s*$/m, 'stopped after SIGKILL');
    t.match((await ctr(['containers', 'ls'])).stdout, /^ct-d\s+-\s+io\.containerd\.runc\.v2\s*$/m);
    t.equal((await ctr(['tasks', 'rm', 'ct-d'])).exitCode, 0);
    t.equal((await ctr(['containers', 'rm', 'ct-d'])).exitCode, 0);
    t.equal((await ctr(['tasks', 'ls', '-q'])).stdout, '');
    t.same(liveShims(d.state), [], 'no shim outlives its task');
    t.same(readdirSync(join(d.state, 'tasks', 'ctt')), [], 'no task directory left');
  });

  t.test('ctr events sees a run: create, start, exit, delete', async (t) => {
    const child = spawn(CTR, ['--address', d.address, 'events'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    t.teardown(() => child.kill('SIGKILL'));
    await new Promise((r) => setTimeout(r, 500));
    await ctr(['run', '--rm', '--rootfs', rootfs, 'ct-ev', '/bin/sh', '-c', 'exit 4']);
    for (let i = 0; i < 50 && !out.includes('/containers/delete'); i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    await exited;
    const topics = out
      .split('\n')
      .filter((l) => l.includes(' ctt /'))
      .map((l) => /ctt (\/\S+)/.exec(l)![1]);
    t.same(topics, ['/containers/create', '/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete', '/containers/delete']);
    const exit = out.split('\n').find((l) => l.includes('/tasks/exit'))!;
    t.match(JSON.parse(exit.slice(exit.indexOf('{'))), { container_id: 'ct-ev', id: 'ct-ev', exit_status: 4 }, 'TaskExit as ctr decodes it');
  });

  t.test('run -t: a terminal through the shim', async (t) => {
    const cmd = `${CTR} --address ${d.address} -n ctt run --rm -t --rootfs ${rootfs} ct-tty /bin/sh -c 'tty; echo on-tty; exit 3'`;
    const r = await execa('script', ['-eqc', cmd, '/dev/null'], { reject: false, timeout: 30_000, env: cleanEnv(), stdin: 'ignore' });
    t.equal(r.exitCode, 3, r.stderr);
    t.match(r.stdout, /\/dev\/pts\/\d+/, 'stdio is a pty');
    t.match(r.stdout, /on-tty/);
  });
});
