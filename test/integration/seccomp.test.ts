// linux.seccomp in real containers: the filter is installed (Seccomp: 2),
// ERRNO rules with their errno, kills, argument conditions, architectures,
// unknown syscall names skipped, SCMP_ACT_NOTIFY with an agent on
// listenerPath, and bad profiles refused with nothing left behind.
import t from 'tap';
import net from 'node:net';
import { closeSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle.js';
import { cli, needsRoot } from '../helpers/cli.js';
import { snapshot, leftovers } from '../helpers/leftovers.js';
import { recvMsg } from '../../src/linux/native.js';
import { pollReadable } from '../../src/linux/libc.js';
import { library } from '../../src/linux/ffi.js';
import type { Spec } from '../../src/oci/spec.js';

type Seccomp = Record<string, unknown>;

const deny = (names: string[], extra: Record<string, unknown> = {}) => ({ names, action: 'SCMP_ACT_ERRNO', ...extra });

/** A bundle running `args` under `seccomp`; no core files from the kill tests. */
function bundle(args: string[], seccomp: Seccomp, edit?: (s: Spec) => void) {
  return makeBundle(args, (s) => {
    s.linux!.seccomp = seccomp;
    s.process!.rlimits = [{ type: 'RLIMIT_CORE', soft: 0, hard: 0 }];
    edit?.(s);
  });
}

const lastLine = (text: string) => text.trim().split('\n').at(-1) ?? '';

/** A seccomp agent's socket: accepts one connection, returns the fd and the JSON it carries. */
function agent(path: string): { got: Promise<{ fd: number; json: string }>; close(): void } {
  let done: (v: { fd: number; json: string }) => void = () => {};
  let fail: (e: unknown) => void = () => {};
  const got = new Promise<{ fd: number; json: string }>((res, rej) => {
    done = res;
    fail = rej;
  });
  // pauseOnConnect: libuv must not read the message (and drop its fd) before we do.
  const server = net.createServer({ pauseOnConnect: true }, (sock) => {
    const sfd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
    try {
      const buf = Buffer.alloc(65536);
      let fd = -1;
      let json = '';
      // The fd rides with the first message; read the rest until the runtime closes.
      for (;;) {
        pollReadable([sfd], 10_000);
        const m = recvMsg(sfd, buf);
        if (m.fd >= 0) fd = m.fd;
        if (m.bytes === 0) break;
        json += buf.subarray(0, m.bytes).toString();
      }
      done({ fd, json });
    } catch (e) {
      fail(e);
    } finally {
      sock.destroy();
    }
  });
  server.listen(path);
  return { got, close: () => server.close() };
}

// struct seccomp_notif (80 bytes) / seccomp_notif_resp (24 bytes) and their ioctls.
const NOTIF_RECV = 0xc0502100;
const NOTIF_SEND = 0xc0182101;
const EHOSTDOWN = 112;

/**
 * Answers every notification on fd with -EHOSTDOWN until `until` settles;
 * returns the syscall numbers it saw. Polls without blocking the event loop.
 */
async function answer(fd: number, until: Promise<unknown>): Promise<number[]> {
  const ioctl = library('libc.so.6').func('int ioctl(int fd, unsigned long req, uint8_t *buf)');
  let over = false;
  void until.finally(() => (over = true));
  const seen: number[] = [];
  while (!over) {
    if (pollReadable([fd], 0).length === 0) {
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    const req = Buffer.alloc(80);
    if (Number(ioctl(fd, NOTIF_RECV, req)) < 0) break; // the filter's last user is gone
    seen.push(req.readInt32LE(16));
    const resp = Buffer.alloc(24);
    req.copy(resp, 0, 0, 8); // id
    resp.writeInt32LE(-EHOSTDOWN, 16);
    ioctl(fd, NOTIF_SEND, resp);
  }
  return seen;
}

t.test('seccomp', { skip: needsRoot }, async (t) => {
  const tsrunc = cli();

  t.test('a filter is installed: Seccomp: 2 in the container', async (t) => {
    const b = bundle(['sh', '-c', 'grep -E "^Seccomp(_filters)?:" /proc/self/status'], { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [deny(['mkdir'])] });
    const r = await tsrunc(['run', '-b', b.dir, 'sc1']);
    t.equal(r.exitCode, 0, r.stderr);
    t.match(r.stdout, /^Seccomp:\s+2$/m, 'filter mode');
    t.match(r.stdout, /^Seccomp_filters:\s+1$/m, 'one filter');
    const none = makeBundle(['grep', '^Seccomp:', '/proc/self/status']);
    t.match((await tsrunc(['run', '-b', none.dir, 'sc2'])).stdout, /^Seccomp:\s+0$/m, 'none without linux.seccomp');
  });

  t.test('mkdir denied with EPERM (defaultAction ALLOW)', async (t) => {
    const b = bundle(['sh', '-c', 'mkdir /tmp/x; echo "rc=$?"; test -d /tmp/x || echo absent; ls / >/dev/null && echo listed'], {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [deny(['mkdir', 'mkdirat'])],
    });
    const r = await tsrunc(['run', '-b', b.dir, 'sc3']);
    t.equal(r.exitCode, 0, r.stderr);
    t.match(r.stderr, /mkdir: can't create directory '\/tmp\/x': Operation not permitted/);
    t.same(r.stdout.split('\n'), ['rc=1', 'absent', 'listed'], 'other syscalls still work');
  });

  t.test('without noNewPrivileges too (the filter goes in before capabilities drop)', async (t) => {
    const b = bundle(['sh', '-c', 'mkdir /tmp/x; grep -E "^(NoNewPrivs|Seccomp):" /proc/self/status'], { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [deny(['mkdir', 'mkdirat'])] }, (s) => {
      s.process!.noNewPrivileges = false;
      s.process!.user = { uid: 1000, gid: 1000 };
    });
    const r = await tsrunc(['run', '-b', b.dir, 'sc4']);
    t.equal(r.exitCode, 0, r.stderr);
    t.match(r.stderr, /Operation not permitted/);
    t.match(r.stdout, /^NoNewPrivs:\s+0$/m);
    t.match(r.stdout, /^Seccomp:\s+2$/m);
  });

  t.test("a profile older than faccessat2 and close_range still runs the container (runtime-tools' default)", async (t) => {
    // Both syscalls answered EPERM, as a profile that predates them answers:
    // the runtime's own last steps (the executable lookup, making fds
    // close-on-exec) must not depend on them.
    for (const nnp of [true, false]) {
      const b = bundle(['sh', '-c', 'echo ran; ls /proc/self/fd | wc -l'], { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [deny(['faccessat2', 'close_range'])] }, (s) => {
        s.process!.noNewPrivileges = nnp;
      });
      const r = await tsrunc(['run', '-b', b.dir, `sc-old-${nnp}`]);
      t.equal(r.exitCode, 0, r.stderr);
      t.same(r.stdout.split('\n'), ['ran', '4'], `no_new_privs ${nnp}: ran, with only stdio (and ls's own fd) open`);
    }
  });

  t.test('errnoRet: ENOSYS', async (t) => {
    const b = bundle(['mkdir', '/tmp/x'], { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [deny(['mkdir', 'mkdirat'], { errnoRet: 38 })] });
    const r = await tsrunc(['run', '-b', b.dir, 'sc5']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /can't create directory '\/tmp\/x': Function not implemented/);
  });

  t.test('KILL_PROCESS kills the container with SIGSYS', async (t) => {
    // sync(2): busybox's sh itself never calls it (it does call uname at start-up).
    const b = bundle(['sh', '-c', 'echo before; exec sync'], { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['sync'], action: 'SCMP_ACT_KILL_PROCESS' }] });
    const r = await tsrunc(['run', '-b', b.dir, 'sc6']);
    t.equal(r.exitCode, 159, '128 + SIGSYS');
    t.equal(r.stdout, 'before', 'the container ran until the syscall');
    const k = bundle(['sync'], { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['sync'], action: 'SCMP_ACT_KILL' }] });
    t.equal((await tsrunc(['run', '-b', k.dir, 'sc7'])).exitCode, 159, 'SCMP_ACT_KILL (thread) of the only thread: the same');
  });

  t.test('an argument condition: kill(pid, 0) denied, other signals allowed', async (t) => {
    const b = bundle(['sh', '-c', 'kill -0 $$ && echo zero-ok; kill -CONT $$ && echo cont-ok'], {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [deny(['kill'], { args: [{ index: 1, value: 0, op: 'SCMP_CMP_EQ' }] })],
    });
    const r = await tsrunc(['run', '-b', b.dir, 'sc8']);
    t.equal(r.exitCode, 0, r.stderr);
    t.equal(r.stdout, 'cont-ok');
    t.match(r.stderr, /Operation not permitted/);
  });

  t.test('architectures x86_64, x86, x32', async (t) => {
    const b = bundle(['sh', '-c', 'mkdir /tmp/x || echo denied'], {
      defaultAction: 'SCMP_ACT_ALLOW',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      syscalls: [deny(['mkdir', 'mkdirat'])],
    });
    const r = await tsrunc(['run', '-b', b.dir, 'sc9']);
    t.equal(r.exitCode, 0, r.stderr);
    t.equal(r.stdout, 'denied');
  });

  t.test('a deny-by-default profile: allowed syscalls work, others fail', async (t) => {
    // What a busybox shell and the runtime's last steps need, nothing more.
    const allowed = [
      'read', 'write', 'writev', 'close', 'openat', 'open', 'fstat', 'newfstatat', 'stat', 'lseek', 'mmap', 'munmap', 'mprotect', 'brk',
      'rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn', 'ioctl', 'access', 'faccessat', 'faccessat2', 'execve', 'exit', 'exit_group',
      'getpid', 'getppid', 'getuid', 'geteuid', 'getgid', 'getegid', 'uname', 'arch_prctl', 'set_tid_address', 'set_robust_list',
      'prlimit64', 'getrandom', 'rseq', 'fcntl', 'dup2', 'dup3', 'close_range', 'sendto', 'recvfrom', 'getcwd', 'wait4', 'fork',
      'vfork', 'clone', 'readlink', 'readlinkat', 'getdents64', 'futex', 'sched_getaffinity', 'pread64', 'statx', 'sysinfo',
    ];
    const b = bundle(['sh', '-c', 'echo hi; mkdir /tmp/x 2>/dev/null || echo no-mkdir'], { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: allowed, action: 'SCMP_ACT_ALLOW' }] });
    const r = await tsrunc(['run', '-b', b.dir, 'sc10']);
    t.equal(r.exitCode, 0, r.stderr);
    t.equal(r.stdout, 'hi\nno-mkdir');
  });

  t.test('an unknown syscall name is skipped (with a debug line)', async (t) => {
    const b = bundle(['sh', '-c', 'mkdir /tmp/x || echo denied'], { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [deny(['no_such_syscall', 'mkdir', 'mkdirat'])] });
    const r = await tsrunc(['--debug', 'run', '-b', b.dir, 'sc11']);
    t.equal(r.exitCode, 0, r.stderr);
    t.equal(r.stdout, 'denied', 'the rest of the rule applies');
    t.match(r.stderr, /seccomp: unknown syscall "no_such_syscall" skipped \(linux\.seccomp\.syscalls\[0\]\)/);
    t.match(r.stderr, /plan op \d+: install the seccomp filter \(\d+ instructions, flags 0x4\)/);
  });

  t.test('SCMP_ACT_NOTIFY: the agent gets the fd and the process state, and answers', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'tsrunc-agent-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const sockPath = join(dir, 'agent.sock');
    const ag = agent(sockPath);
    t.teardown(() => ag.close());
    const b = bundle(['sh', '-c', 'mkdir /tmp/x; echo "rc=$?"'], {
      defaultAction: 'SCMP_ACT_ALLOW',
      listenerPath: sockPath,
      listenerMetadata: 'MKDIR=/tmp/x',
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_NOTIFY' }],
    }, (s) => (s.annotations = { 'org.example/k': 'v' }));
    const running = tsrunc(['run', '-b', b.dir, 'sc12']);
    const { fd, json } = await ag.got;
    t.ok(fd >= 0, 'an fd came with the message');
    const state = JSON.parse(json);
    t.match(state, {
      ociVersion: /^1\.\d+\.\d+/,
      fds: ['seccompFd'],
      pid: Number,
      metadata: 'MKDIR=/tmp/x',
      state: { ociVersion: /^1\./, id: 'sc12', status: 'creating', bundle: b.dir, annotations: { 'org.example/k': 'v' } },
    });
    t.equal(state.state.pid, state.pid, 'the same pid in both');
    const seen = await answer(fd, running);
    closeSync(fd);
    const r = await running;
    t.equal(r.exitCode, 0, r.stderr);
    t.ok(seen.length >= 1, `the agent answered ${seen.length} notification(s)`);
    t.match(r.stderr, /can't create directory '\/tmp\/x': Host is down/, "the agent's errno reached the container");
    t.equal(r.stdout, 'rc=1');
  });

  t.test('SCMP_ACT_NOTIFY with no agent listening: an error, nothing left behind', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'tsrunc-agent-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const sockPath = join(dir, 'none.sock');
    const b = bundle(['true'], { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: sockPath, syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] });
    const before = snapshot(tsrunc.root);
    const r = await tsrunc(['run', '-b', b.dir, 'sc13']);
    t.equal(r.exitCode, 1);
    t.match(lastLine(r.stderr), new RegExp(`seccomp: cannot reach the agent at linux\\.seccomp\\.listenerPath ${sockPath}: connect .*ENOENT`));
    t.same(leftovers(tsrunc.root, before, 'sc13'), []);
  });

  t.test("a profile that stops the runtime's own last steps: an error, no hang, nothing left behind", async (t) => {
    const cases: [string, Seccomp, RegExp][] = [
      ['killed', { defaultAction: 'SCMP_ACT_KILL_PROCESS' }, /the container's init was killed by SIGSYS before it was ready$/],
      // send() of the READY message fails: the child exits rather than wait forever.
      ['denied', { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['exit_group', 'exit'], action: 'SCMP_ACT_ALLOW' }] }, /the container's init exited with status 1 before it was ready$/],
    ];
    let n = 0;
    for (const [name, seccomp, message] of cases) {
      const id = `scstop${n++}`;
      const b = bundle(['true'], seccomp);
      const before = snapshot(tsrunc.root);
      const r = await tsrunc(['run', '-b', b.dir, id], { timeout: 30_000 });
      t.equal(r.exitCode, 1, `${name}: fails`);
      t.match(lastLine(r.stderr), message, name);
      t.same(leftovers(tsrunc.root, before, id), [], `${name}: nothing left behind`);
    }
  });

  t.test('bad profiles: clear errors, nothing left behind', async (t) => {
    const cases: [string, Seccomp, RegExp][] = [
      [
        'unknown action',
        { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [deny(['mkdir']), deny(['rmdir']), { names: ['chmod'], action: 'SCMP_ACT_FOO' }] },
        /config\.json: linux\.seccomp\.syscalls\[2\]\.action: unknown action "SCMP_ACT_FOO" \(want one of /,
      ],
      ['unknown architecture', { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_VAX'] }, /config\.json: linux\.seccomp\.architectures\[1\]: unknown architecture "SCMP_ARCH_VAX"/],
      ['unknown flag', { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_MAGIC'] }, /config\.json: linux\.seccomp\.flags\[0\]: unknown flag "SECCOMP_FILTER_FLAG_MAGIC"/],
      [
        'NOTIFY without listenerPath',
        { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] },
        /config\.json: linux\.seccomp\.syscalls\[0\]\.action: SCMP_ACT_NOTIFY needs linux\.seccomp\.listenerPath/,
      ],
    ];
    let n = 0;
    for (const [name, seccomp, message] of cases) {
      const b = bundle(['true'], seccomp);
      for (const verb of ['create', 'run'] as const) {
        const id = `scbad${n++}`;
        const before = snapshot(tsrunc.root);
        const r = verb === 'create' ? await tsrunc.detached(['create', '-b', b.dir, id]) : await tsrunc(['run', '-b', b.dir, id]);
        t.equal(r.exitCode, 1, `${name}: ${verb} fails`);
        t.match(lastLine(r.stderr), message, `${name}: ${verb} says what, where and why`);
        t.match(lastLine(r.stderr), new RegExp(`^tsrunc: ${verb} ${id}: `), `${name}: ${verb}: names the command`);
        t.same(leftovers(tsrunc.root, before, id), [], `${name}: ${verb}: nothing left behind`);
      }
    }
  });
});
