// `exec`: a new process in a running container, in all its namespaces and
// its cgroup, with runc's flags; and never reachable by the container while
// it is still a copy of the runtime (CVE-2019-5736).
import t from 'tap';
import net from 'node:net';
import tty from 'node:tty';
import { readFileSync, readlinkSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { makeBundle } from '../helpers/bundle.js';
import { cli, needsRoot, waitFor, TSRUNC } from '../helpers/cli.js';
import { NS_PROC_NAME } from '../../src/runtime/plan/namespaces.js';
import { CAPABILITIES } from '../../src/linux/capabilities.js';
import { recvFd } from '../../src/linux/native.js';
import { pollReadable } from '../../src/linux/libc.js';
import type { NamespaceType } from '../../src/oci/spec.js';

t.test('exec', { skip: needsRoot }, async (t) => {
  const tsrunc = cli();
  const b = makeBundle(['sleep', '1000'], (s) => {
    s.hostname = 'exec-box';
    s.mounts!.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['mode=1777'] });
  });
  t.equal((await tsrunc.detached(['run', '-d', '-b', b.dir, 'ex1'])).exitCode, 0);
  const initPid: number = JSON.parse((await tsrunc(['state', 'ex1'])).stdout).pid;
  t.teardown(() => tsrunc(['delete', '-f', 'ex1']).then(() => undefined));

  t.test('runs in every namespace of the container and in its cgroup', async (t) => {
    const types: NamespaceType[] = ['pid', 'network', 'ipc', 'uts', 'mount'];
    const r = await tsrunc(['exec', 'ex1', 'sh', '-c', `echo $$; hostname; cat /proc/self/cgroup | grep ^0::; ${types.map((ty) => `readlink /proc/self/ns/${NS_PROC_NAME[ty]}`).join('; ')}`]);
    t.equal(r.exitCode, 0, r.stderr);
    const [pid, hostname, cgroup, ...links] = r.stdout.split('\n');
    t.not(pid, '1', 'not the init');
    t.ok(Number(pid) < 100, `a pid of the container's pid namespace (${pid})`);
    t.equal(hostname, 'exec-box');
    t.equal(cgroup, '0::/ex1');
    types.forEach((ty, i) => t.equal(links[i], readlinkSync(`/proc/${initPid}/ns/${NS_PROC_NAME[ty]}`), `${ty} namespace of the init`));
  });

  t.test('exit status and signals', async (t) => {
    t.equal((await tsrunc(['exec', 'ex1', 'sh', '-c', 'exit 42'])).exitCode, 42);
    // The trap kills the background sleep too: it would hold our stdout pipe open.
    const p = tsrunc(['exec', 'ex1', 'sh', '-c', 'trap "echo got TERM; kill \\$!; exit 9" TERM; sleep 100 & wait']);
    await new Promise((r) => setTimeout(r, 700));
    p.kill('SIGTERM');
    const r = await p;
    t.equal(r.stdout, 'got TERM', 'the signal we got reached the process');
    t.equal(r.exitCode, 9);
    t.equal((await tsrunc(['exec', 'ex1', 'sh', '-c', 'kill -9 $$'])).exitCode, 137, '128 + SIGKILL');
  });

  t.test('user, groups, cwd, env from the flags', async (t) => {
    const r = await tsrunc(['exec', '--user', '1000:1000', '--additional-gids', '5', '-g', '65534', '--cwd', '/home/tester', '-e', 'FOO=bar', '--env', 'X=1', 'ex1', 'sh', '-c', 'id -u; id -g; id -G; pwd; echo $FOO$X; echo $HOME']);
    t.equal(r.exitCode, 0, r.stderr);
    t.same(r.stdout.split('\n'), ['1000', '1000', '1000 5 65534', '/home/tester', 'bar1', '/home/tester']);
  });

  t.test('the process of config.json by default, stdin passed through', async (t) => {
    const r = await tsrunc(['exec', 'ex1', 'sh', '-c', 'read l; echo "[$l]"; echo $PATH; pwd'], { input: 'typed\n' });
    t.same(r.stdout.split('\n'), ['[typed]', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', '/']);
  });

  t.test('--cap adds to the bounding, effective and permitted sets; --no-new-privs', async (t) => {
    const r = await tsrunc(['exec', '--cap', 'CAP_NET_ADMIN', '--cap', 'sys_time', '--no-new-privs', 'ex1', 'grep', '-E', '^(CapEff|NoNewPrivs):', '/proc/self/status']);
    t.equal(r.exitCode, 0, r.stderr);
    const want = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_NET_ADMIN', 'CAP_SYS_TIME'].reduce((m, n) => m | (1n << BigInt(CAPABILITIES[n]!)), 0n);
    t.match(r.stdout, new RegExp(`CapEff:\\s+${want.toString(16).padStart(16, '0')}`));
    t.match(r.stdout, /NoNewPrivs:\s+1/);
    const bad = await tsrunc(['exec', '--cap', 'CAP_BOGUS', 'ex1', 'true']);
    t.equal(bad.exitCode, 1);
    t.match(bad.stderr, /--cap: unknown capability "CAP_BOGUS"/);
  });

  t.test('-p process.json', async (t) => {
    const pj = join(b.dir, 'process.json');
    writeFileSync(pj, JSON.stringify({ args: ['sh', '-c', 'echo $A; id -u; pwd'], env: ['PATH=/bin', 'A=from-json'], cwd: '/tmp', user: { uid: 65534, gid: 65534 } }));
    const r = await tsrunc(['exec', '-p', pj, 'ex1']);
    t.equal(r.exitCode, 0, r.stderr);
    t.same(r.stdout.split('\n'), ['from-json', '65534', '/tmp']);
    writeFileSync(pj, JSON.stringify({ args: [], cwd: '/', user: { uid: 0, gid: 0 } }));
    const bad = await tsrunc(['exec', '-p', pj, 'ex1']);
    t.equal(bad.exitCode, 1);
    t.match(bad.stderr, new RegExp(`exec ex1: ${pj.replace(/[/.]/g, '\\$&')}: args: must be a non-empty array`));
  });

  t.test('-d with --pid-file, and the process keeps running', async (t) => {
    const pidFile = join(b.dir, 'exec.pid');
    const r = await tsrunc.detached(['exec', '-d', '--pid-file', pidFile, 'ex1', 'sleep', '300']);
    t.equal(r.exitCode, 0, r.stderr);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    t.ok(await waitFor(() => readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep')), 'sleep runs on');
    t.match(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), /^0::\/ex1$/m);
    process.kill(pid, 'SIGKILL');
  });

  t.test('-t relays a pty; --console-socket sends the master', async (t) => {
    const r = await tsrunc(['exec', '-t', 'ex1', 'sh', '-c', 'tty; test -t 0 && echo tty-in'], { input: '' });
    t.equal(r.exitCode, 0, r.stderr);
    t.match(r.stdout.replace(/\r/g, ''), /^\/dev\/pts\/\d+\ntty-in$/);

    const sock = join(b.dir, 'exec-console.sock');
    const got = new Promise<number>((resolve, reject) => {
      const server = net.createServer({ pauseOnConnect: true }, (c) => {
        const fd = (c as unknown as { _handle: { fd: number } })._handle.fd;
        try {
          pollReadable([fd], 10_000);
          resolve(recvFd(fd).fd);
        } catch (e) {
          reject(e);
        } finally {
          c.destroy();
          server.close();
        }
      });
      server.listen(sock);
    });
    const e = await tsrunc.detached(['exec', '-t', '-d', '--console-socket', sock, 'ex1', 'sh', '-c', 'echo via-socket; sleep 0.2']);
    t.equal(e.exitCode, 0, e.stderr);
    const master = await got;
    const text = await new Promise<string>((resolve) => {
      const s = new tty.ReadStream(master);
      let out = '';
      s.on('data', (d) => (out += d.toString()));
      for (const ev of ['error', 'end', 'close']) s.on(ev, () => resolve(out));
    });
    t.match(text, /via-socket/);
  });

  t.test('--preserve-fds', async (t) => {
    const extra = join(b.dir, 'passed-to-exec');
    const fd = openSync(extra, 'w');
    try {
      const r = await execa('node', [TSRUNC, '--root', tsrunc.root, 'exec', '--preserve-fds', '1', 'ex1', 'readlink', '/proc/self/fd/3'], {
        reject: false,
        stdio: ['ignore', 'pipe', 'pipe', fd as unknown as 'inherit'],
      });
      t.equal(String(r.stdout), extra, String(r.stderr));
    } finally {
      closeSync(fd);
    }
  });

  t.test('a failed execve is reported with the op', async (t) => {
    const r = await tsrunc(['exec', 'ex1', 'no-such-command']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /exec ex1: op \d+ look up no-such-command: executable file not found in \$PATH/);
  });

  t.test('the runtime copy is never reachable through /proc/PID/exe (CVE-2019-5736)', async (t) => {
    // A container process watches every process it can see and records any
    // executable that is not busybox. The exec'd process spends its setup as a
    // copy of node; a long PATH makes that window wide.
    const watcher = tsrunc.detached([
      'exec',
      '-d',
      'ex1',
      'sh',
      '-c',
      'while true; do for p in /proc/[0-9]*; do l=$(readlink $p/exe 2>/dev/null) && echo "$l" >> /tmp/seen; done; done',
    ]);
    t.equal((await watcher).exitCode, 0);
    const longPath = Array.from({ length: 3000 }, (_, i) => `/nonexistent/dir${i}`).join(':') + ':/bin';
    for (let i = 0; i < 12; i++) {
      const r = await tsrunc(['exec', '-e', `PATH=${longPath}`, 'ex1', 'true']);
      t.equal(r.exitCode, 0, r.stderr);
    }
    const seen = new Set((await tsrunc(['exec', 'ex1', 'sort', '-u', '/tmp/seen'])).stdout.split('\n').filter(Boolean));
    t.ok(seen.has('/bin/busybox'), 'the watcher does see executables (busybox)');
    t.same([...seen].filter((l) => l !== '/bin/busybox'), [], 'it never saw the runtime binary');
  });

  t.test('ps: the host ps cut down to the container, and its pids as JSON', async (t) => {
    const r = await tsrunc(['ps', 'ex1']);
    t.equal(r.exitCode, 0, r.stderr);
    const lines = r.stdout.split('\n');
    t.match(lines[0], /^UID\s+PID\s+PPID/);
    t.ok(lines.some((l) => new RegExp(`^\\S+\\s+${initPid}\\s.*sleep 1000`).test(l)), 'the init is listed');
    const json = JSON.parse((await tsrunc(['ps', '--format', 'json', 'ex1'])).stdout);
    t.ok(json.includes(initPid), 'json: host pids');
    const cols = await tsrunc(['ps', 'ex1', '-o', 'pid,comm']);
    t.match(cols.stdout, new RegExp(`^\\s*PID COMMAND\\n\\s*${initPid} sleep`), 'ps arguments pass through');
    const missing = await tsrunc(['ps', 'nope']);
    t.equal(missing.exitCode, 1);
    t.match(missing.stderr, /container "nope" does not exist/);
  });

  t.test('exec into a paused container needs --ignore-paused', async (t) => {
    t.equal((await tsrunc(['pause', 'ex1'])).exitCode, 0);
    const r = await tsrunc(['exec', 'ex1', 'true']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /cannot exec in a paused container \(use --ignore-paused to override\)/);
    t.equal((await tsrunc(['resume', 'ex1'])).exitCode, 0);
    t.equal((await tsrunc(['exec', 'ex1', 'true'])).exitCode, 0, 'and works again once resumed');
  });

  t.test('exec into a stopped, a missing container', async (t) => {
    const b2 = makeBundle(['true']);
    t.equal((await tsrunc(['run', '--keep', '-b', b2.dir, 'ex2'])).exitCode, 0);
    const r = await tsrunc(['exec', 'ex2', 'true']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /cannot exec in a stopped container/);
    t.equal((await tsrunc(['delete', 'ex2'])).exitCode, 0);
    const m = await tsrunc(['exec', 'nope', 'true']);
    t.match(m.stderr, /container "nope" does not exist/);
    const none = await tsrunc(['exec', 'ex1']);
    t.match(none.stderr, /a command to run is required/);
  });

  t.test('a terminal needs a console socket when detached; AppArmor is refused clearly', async (t) => {
    const r = await tsrunc.detached(['exec', '-t', '-d', 'ex1', 'true']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /a terminal \(-t\) needs --console-socket when the process is detached/);
    const a = await tsrunc(['exec', '--apparmor', 'myprofile', 'ex1', 'true']);
    t.match(a.stderr, /process.apparmorProfile: AppArmor is not enabled on this host, so profile "myprofile" cannot be applied/);
  });
});
