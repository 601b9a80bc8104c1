// The calls that container engines make, with the exact flags they pass, and
// what they read back (traced from containerd's shim, conmon and dockerd:
// test/compat has the engines themselves): runc's answers, down to exit
// codes and the JSON log lines the shim turns into its error.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle.js';
import { cli, needsRoot } from '../helpers/cli.js';

t.test('what clients call', { skip: needsRoot }, async (t) => {
  const tsrunc = cli();

  t.test('delete --force of a container that is not there succeeds (the shim and podman clean up with it)', async (t) => {
    const r = await tsrunc(['delete', '--force', 'never-was']);
    t.equal(r.exitCode, 0, r.stderr);
    t.equal(r.stderr, '');
    const plain = await tsrunc(['delete', 'never-was']);
    t.equal(plain.exitCode, 1, 'without --force it is still an error');
    t.match(plain.stderr, /container "never-was" does not exist/);
    // a create that died before state.json: the directory goes, with a warning
    mkdirSync(join(tsrunc.root, 'half-made'));
    const half = await tsrunc(['delete', '--force', 'half-made']);
    t.equal(half.exitCode, 0);
    t.match(half.stderr, /removing the incomplete container directory/);
  });

  t.test("the containerd shim's create: --log FILE --log-format json, errors as JSON lines", async (t) => {
    const b = makeBundle(['/no/such/binary']);
    const log = join(b.dir, 'log.json');
    const r = await tsrunc.detached(['--log', log, '--log-format', 'json', 'create', '--bundle', b.dir, '--pid-file', join(b.dir, 'init.pid'), 'shim1']);
    t.equal(r.exitCode, 1);
    const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const last = lines.at(-1)!;
    t.same(Object.keys(last).sort(), ['level', 'msg', 'time'], 'the fields containerd reads');
    t.equal(last['level'], 'error');
    t.match(last['msg'], /^create shim1: op \d+ look up \/no\/such\/binary: ENOENT \(no such file or directory\)$/);
    t.ok(!Number.isNaN(Date.parse(String(last['time']))), 'time is RFC 3339');
    t.equal((await tsrunc(['delete', '--force', 'shim1'])).exitCode, 0);
  });

  t.test('exec --detach --pid-file names the process itself, also on a busy machine', async (t) => {
    // The shim and conmon wait on the pid in the pid file for the exit status.
    // The exec'd process comes from a fork inside the container's pid
    // namespace; its READY once raced its parent's message with its pid, and
    // under load the file named the parent (which exits 0 at once).
    const b = makeBundle(['sleep', '100']);
    t.equal((await tsrunc.detached(['run', '-d', '-b', b.dir, 'pidf1'])).exitCode, 0);
    const burners = [0, 1, 2].map(() => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
    t.teardown(() => burners.forEach((p) => p.kill('SIGKILL')));
    const wrong: string[] = [];
    const one = async (i: number) => {
      const pidFile = join(b.dir, `e${i}.pid`);
      const e = await tsrunc.detached(['exec', '--detach', '--pid-file', pidFile, 'pidf1', 'sleep', '50']);
      if (e.exitCode !== 0) return wrong.push(`exec ${i}: ${e.stderr}`);
      const pid = readFileSync(pidFile, 'utf8');
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        /* gone */
      }
      if (!cmd.startsWith('sleep\0')) wrong.push(`exec ${i}: pid ${pid} is ${JSON.stringify(cmd)}`);
    };
    // four at a time, on top of the burners
    for (let round = 0; round < 10; round++) await Promise.all([0, 1, 2, 3].map((k) => one(round * 4 + k)));
    burners.forEach((p) => p.kill('SIGKILL'));
    t.same(wrong, [], 'every pid file names its sleep');
    t.equal((await tsrunc(['delete', '--force', 'pidf1'])).exitCode, 0);
  });

  t.test('the shim\'s exec: --process F --detach --pid-file P, then ps --format json', async (t) => {
    const b = makeBundle(['sleep', '100']);
    t.equal((await tsrunc.detached(['create', '--bundle', b.dir, 'shim2'])).exitCode, 0);
    t.equal((await tsrunc(['start', 'shim2'])).exitCode, 0);
    const proc = join(b.dir, 'process.json');
    writeFileSync(proc, JSON.stringify({ ...b.spec.process, args: ['sleep', '50'], terminal: false }));
    const pidFile = join(b.dir, 'e1.pid');
    const e = await tsrunc.detached(['exec', '--process', proc, '--detach', '--pid-file', pidFile, 'shim2']);
    t.equal(e.exitCode, 0, e.stderr);
    const execPid = Number(readFileSync(pidFile, 'utf8'));
    const ps = await tsrunc(['ps', '--format', 'json', 'shim2']);
    t.equal(ps.exitCode, 0);
    const pids = JSON.parse(ps.stdout) as number[];
    t.ok(pids.includes(execPid), 'the exec shows in ps');
    t.equal(pids.length, 2);
    t.equal((await tsrunc(['kill', 'shim2', '9'])).exitCode, 0, 'kill ID 9');
    t.equal((await tsrunc(['delete', '--force', 'shim2'])).exitCode, 0);
  });
});
