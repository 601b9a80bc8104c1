// tsrctl run and tsrctl tasks against a tsrund of its own, with real
// containers on a busybox rootfs: output and exit codes streamed back, stdin,
// a terminal (under script(1)), detached runs, exec, ps, pause/resume, kill,
// wait, rm; errors as the last line with docker's exit codes; nothing left
// behind (FIFO dirs, tasks, containers). Ids start with "tt-".
import t from 'tap';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { makeBundle } from '../helpers/bundle.js';
import { needsRoot } from '../helpers/cli.js';
import { cleanEnv, startTsrund, TSRCTL, type RunningDaemon } from '../helpers/daemon.js';


t.test('tsrctl run and tasks', { skip: needsRoot }, async (t) => {
  const rootfs = makeBundle(['true']).rootfs;
  const d: RunningDaemon = await startTsrund();
  t.teardown(() => d.stop());
  // tsrctl's FIFO dirs go to a TMPDIR of this test's own: other test files run tsrctl at the same time.
  const fifoParent = mkdtempSync(join(tmpdir(), 'tt-tmp-'));
  t.teardown(() => rmSync(fifoParent, { recursive: true, force: true }));
  const env = { ...cleanEnv(), TMPDIR: fifoParent };
  const ctl = (args: string[], input?: string) =>
    execa(process.execPath, [TSRCTL, '--address', d.address, '-n', 'tt', ...args], { reject: false, timeout: 30_000, env, ...(input === undefined ? { stdin: 'ignore' as const } : { input }) });
  const run = (args: string[], input?: string) => ctl(['run', '--rootfs', rootfs, ...args], input);

  t.test('run --rm: output, exit code, stdin', async (t) => {
    const r = await run(['--rm', 'tt-echo', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    t.equal(r.stdout, 'out');
    t.equal(r.stderr, 'err');
    t.equal(r.exitCode, 3, "the container's exit code");
    const i = await run(['--rm', '-i', 'tt-cat', 'sh', '-c', 'cat; echo done'], 'a\nb\n');
    t.equal(i.stdout, 'a\nb\ndone', 'stdin reaches the container and its EOF too');
    const env = await run(['--rm', '-e', 'A=1', '--cwd', '/tmp', '--hostname', 'box', 'tt-env', 'sh', '-c', 'echo $A $(pwd) $(hostname)']);
    t.equal(env.stdout, '1 /tmp box');
    t.equal((await ctl(['containers', 'ls', '-q'])).stdout, '', '--rm removed the container');
  });

  t.test('run -t under a terminal', async (t) => {
    const cmd = `${process.execPath} ${TSRCTL} --address ${d.address} -n tt run --rm -t --rootfs ${rootfs} tt-tty sh -c 'test -t 0 && test -t 1 && echo on-a-tty; exit 4'`;
    const r = await execa('script', ['-eqc', cmd, '/dev/null'], { reject: false, timeout: 30_000, env, stdin: 'ignore' });
    t.match(r.stdout, /on-a-tty/);
    t.equal(r.exitCode, 4);
  });

  t.test('run -d, then tasks ls/ps/exec/pause/resume/kill/wait/rm', async (t) => {
    // pid 1 ignores SIGTERM unless it handles it: this one exits 7 on it.
    const r = await run(['-d', 'tt-bg', 'sh', '-c', "trap 'exit 7' TERM; sleep 1000 & wait"]);
    t.equal(r.exitCode, 0, r.stderr);
    t.equal(r.stdout, 'tt-bg', 'prints the id');
    t.match((await ctl(['tasks', 'ls'])).stdout, /^TASK +PID +STATUS\ntt-bg +\d+ +RUNNING$/);
    const [task] = JSON.parse((await ctl(['tasks', 'ls', '--format', 'json'])).stdout) as Array<{ id: string; pid: number; status: string }>;
    t.equal(task?.status, 'running');

    const x = await ctl(['tasks', 'exec', 'tt-bg', 'sh', '-c', 'echo in-exec; exit 5']);
    t.equal(x.stdout, 'in-exec');
    t.equal(x.exitCode, 5, "the exec's exit code");
    const xi = await ctl(['tasks', 'exec', '-i', 'tt-bg', 'cat'], 'piped\n');
    t.equal(xi.stdout, 'piped', 'exec -i');
    t.equal(xi.exitCode, 0, xi.stderr);
    t.equal((await ctl(['tasks', 'exec', '-d', '--exec-id', 'side', 'tt-bg', 'sleep', '1000'])).exitCode, 0);
    const ps = await ctl(['tasks', 'ps', 'tt-bg']);
    t.match(ps.stdout, new RegExp(`^PID +EXEC ID\\n${task!.pid} +-\\n`), 'ps lists the init');
    t.match(ps.stdout, /\n\d+ +side(\n|$)/, 'and the exec');
    const reused = await ctl(['tasks', 'exec', '--exec-id', 'side', 'tt-bg', 'true']);
    t.equal(reused.exitCode, 1);
    t.match(reused.stderr, /^tsrctl: exec id "side" is already in use in task tt-bg/);
    t.equal((await ctl(['tasks', 'kill', '-s', 'KILL', '--exec-id', 'side', 'tt-bg'])).exitCode, 0);
    t.equal((await ctl(['tasks', 'wait', '--exec-id', 'side', 'tt-bg'])).stdout, '137');
    t.equal((await ctl(['tasks', 'rm', '--exec-id', 'side', 'tt-bg'])).exitCode, 0);

    t.equal((await ctl(['tasks', 'pause', 'tt-bg'])).exitCode, 0);
    t.match((await ctl(['tasks', 'ls'])).stdout, /tt-bg +\d+ +PAUSED/);
    t.equal((await ctl(['tasks', 'resume', 'tt-bg'])).exitCode, 0);
    t.match((await ctl(['tasks', 'ls'])).stdout, /tt-bg +\d+ +RUNNING/);

    const busy = await ctl(['tasks', 'rm', 'tt-bg']);
    t.equal(busy.exitCode, 1);
    t.match(busy.stderr, /must be stopped before deletion.*tsrctl tasks rm -f tt-bg/);
    t.equal((await ctl(['tasks', 'kill', 'tt-bg'])).exitCode, 0, 'SIGTERM by default');
    const w = await ctl(['tasks', 'wait', 'tt-bg']);
    t.equal(w.stdout, '7');
    t.equal(w.exitCode, 7, 'wait exits with the status');
    t.equal((await ctl(['tasks', 'rm', 'tt-bg'])).exitCode, 0);
    t.equal((await ctl(['tasks', 'ls', '-q'])).stdout, '');

    t.equal((await ctl(['tasks', 'start', '-d', 'tt-bg'])).exitCode, 0, 'tasks start makes a new task for the container');
    t.match((await ctl(['tasks', 'ls'])).stdout, /tt-bg +\d+ +RUNNING/);
    t.equal((await ctl(['tasks', 'rm', '-f', 'tt-bg'])).exitCode, 0, 'rm -f kills first');
    t.equal((await ctl(['containers', 'rm', 'tt-bg'])).exitCode, 0);
  });

  t.test('bad input: clear last line, exit codes as docker', async (t) => {
    const missing = await run(['--rm', 'tt-nope', 'nope']);
    t.equal(missing.exitCode, 127, 'command not found: 127');
    t.match(missing.stderr, /^tsrctl: .*nope: executable file not found in \$PATH/);
    const noroot = await ctl(['run', '--rootfs', '/nonexistent-tt', 'tt-x', 'true']);
    t.equal(noroot.exitCode, 1);
    t.equal(noroot.stderr, 'tsrctl: run tt-x: --rootfs /nonexistent-tt: no such directory');
    const both = await run(['--rm', '-d', 'tt-x', 'true']);
    t.match(both.stderr, /--rm and -d cannot be used together/);
    t.match((await ctl(['tasks', 'kill', 'tt-none'])).stderr, /^tsrctl: .*not found/);
    t.match((await ctl(['tasks', 'exec', 'tt-none', 'true'])).stderr, /^tsrctl: .*not found/);
    t.equal((await run(['--rm', 'tt-x'])).exitCode, 1, 'no command');
    t.equal((await ctl(['containers', 'ls', '-q'])).stdout, '', 'failed runs leave no container');
    t.equal((await ctl(['tasks', 'ls', '-q'])).stdout, '', 'nor a task');
  });

  t.test('nothing left behind', async (t) => {
    t.same(readdirSync(fifoParent).filter((n) => n.startsWith('tsrctl-')), [], 'no FIFO directory of ours');
    t.same(readdirSync(`${d.state}/tasks/tt`), [], 'no task directory');
  });
});
