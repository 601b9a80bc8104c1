// tsrunc-shim on its own, driven the way tsrund drives it: containers cloned
// by the shim through the launch pipeline, their stdio held by it, their
// exits pushed, recorded where asked, and kept across a reconnect.
import t, { type Test } from 'tap';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle.js';
import { needsRoot } from '../helpers/cli.js';
import { createContainer, destroyContainer, releaseInit } from '../../src/runtime/container.js';
import { loadRecord as loadContainer } from '../../src/runtime/state.js';
import { execInContainer } from '../../src/runtime/exec.js';
import { mkfifo, pipe, pollReadable, socketpair } from '../../src/linux/libc.js';
import { O_NONBLOCK, O_RDONLY, O_RDWR, SOCK_SEQPACKET, SOCK_STREAM } from '../../src/linux/constants.js';
import { recvMsg, sendFds, unixSocket } from '../../src/linux/native.js';
import { Shim, EXIT_FILE, SHIM_LOG, SHIM_SOCKET, ShimError } from '../../src/tasks/shim.js';
import { decodeResponse, encodeRequest, exitCode, EXIT_PATH_MAX, parseExitRecord, REQ, type ShimProcess } from '../../src/tasks/shim-protocol.js';

/** Everything readable on fd until it has been quiet or closed. */
function drain(fd: number, untilText?: string, timeoutMs = 5000): string {
  const buf = Buffer.alloc(65536);
  let out = '';
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (pollReadable([fd], 100).length === 0) {
      if (untilText === undefined || out.includes(untilText)) break;
      continue;
    }
    let n = 0;
    try {
      n = readSync(fd, buf);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      if ((e as NodeJS.ErrnoException).code === 'EIO') break;
      throw e;
    }
    if (n === 0) break;
    out += buf.toString('utf8', 0, n);
  }
  return out;
}


interface Harness {
  shim: Shim;
  dir: string;
  root: string;
  exits: ShimProcess[];
  gone: boolean;
  nextExit(name: string, timeoutMs?: number): Promise<ShimProcess>;
}

function harness(t: Test): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'tsrunc-shim-'));
  const root = mkdtempSync(join(tmpdir(), 'tsrunc-shim-root-'));
  const shim = Shim.start({ dir, namespace: 'test', id: 'shim' });
  const h: Harness = {
    shim,
    dir,
    root,
    exits: [],
    gone: false,
    async nextExit(name, timeoutMs = 10000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const e = h.exits.find((x) => x.name === name);
        if (e) return e;
        if (Date.now() > deadline) throw new Error(`no exit for ${name}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
  shim.subscribe(
    (p) => h.exits.push(p),
    () => (h.gone = true),
  );
  t.teardown(() => {
    try {
      shim.shutdown(true);
    } catch {
      /* shut down by the test */
    }
    shim.close();
    shim.reap(2000);
    rmSync(dir, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
  });
  return h;
}

t.test('shim', { skip: needsRoot }, async (t) => {
  t.test('runs an init, passes its output through, reports and records its exit', async (t) => {
    const h = harness(t);
    const b = makeBundle(['sh', '-c', 'echo hello from $$; exit 3']);
    const [r, w] = pipe();
    const created = createContainer({ root: h.root, id: 'sh1', bundle: b.dir, stdio: { stdin: -1, stdout: w, stderr: w }, spawner: h.shim.spawner('init') });
    closeSync(w);
    // Any path the daemon names: the shim has no name of its own for it.
    const record = join(h.dir, 'sh1.exit');
    h.shim.watch('init', created.pid, record);
    t.same(
      h.shim.state().map((p) => [p.name, p.pid, p.exited]),
      [['init', created.pid, false]],
      'the shim holds the init, by its pid, running (blocked on the exec fifo)',
    );
    t.equal(readFileSync(`/proc/${created.pid}/stat`, 'utf8').split(' ')[3], String(h.shim.pid), 'the shim is its parent');
    releaseInit(h.root, created.record);
    t.equal(drain(r, 'hello'), 'hello from 1\n', 'stdout reaches the pipe, from pid 1 of its namespace');
    const exit = await h.nextExit('init');
    t.equal(exitCode(exit.status), 3, 'exit status pushed');
    t.ok(exit.exitedNs > 0n, 'with the time');
    const file = parseExitRecord(readFileSync(record, 'utf8'));
    t.same([file.pid, exitCode(file.status), file.exitedNs], [created.pid, 3, exit.exitedNs], 'exit recorded where asked, as pushed');
    t.notOk(existsSync(`${record}.tmp`), 'no temp file left');
    t.notOk(existsSync(join(h.dir, EXIT_FILE)), 'nothing written that was not asked for');
    t.same(h.shim.state().map((p) => [p.exited, p.acked]), [[true, false]]);
    h.shim.ack('init');
    t.same(h.shim.state().map((p) => p.acked), [true], 'ack is recorded');
    closeSync(r);
    destroyContainer(h.root, loadContainer(h.root, 'sh1'));
    h.shim.shutdown();
    t.notOk(existsSync(join(h.dir, SHIM_SOCKET)), 'shutdown removes the socket');
    t.notOk(existsSync(`/proc/${h.shim.pid}`), 'the shim is gone and reaped');
  });

  t.test('stdin is copied from a FIFO into a pipe, and ends on close-stdin', async (t) => {
    const h = harness(t);
    const b = makeBundle(['cat']);
    const fifo = join(h.dir, 'stdin');
    mkfifo(fifo, 0o600);
    const src = openSync(fifo, O_RDONLY | O_NONBLOCK);
    const writer = openSync(fifo, O_RDWR);
    const [inR, inW] = pipe();
    const [outR, outW] = pipe();
    const spawner = h.shim.spawner('init', { stdinSrc: src, stdinDst: inW });
    const created = createContainer({ root: h.root, id: 'cat1', bundle: b.dir, stdio: { stdin: inR, stdout: outW, stderr: outW }, spawner });
    for (const fd of [src, inR, inW, outW]) closeSync(fd);
    h.shim.watch('init', created.pid);
    releaseInit(h.root, created.record);
    writeSync(writer, 'line one\n');
    t.equal(drain(outR, 'line one\n'), 'line one\n', 'what the client writes reaches the process');
    writeSync(writer, 'line two\n');
    h.shim.closeStdin('init');
    const exit = await h.nextExit('init');
    t.equal(exitCode(exit.status), 0, 'cat ends at end of file');
    t.equal(drain(outR), 'line two\n', 'buffered input is delivered before the end');
    closeSync(writer);
    closeSync(outR);
    destroyContainer(h.root, loadContainer(h.root, 'cat1'));
  });

  t.test('a terminal: the shim holds the pty master, copies it, resizes it', async (t) => {
    const h = harness(t);
    const b = makeBundle(['sh', '-c', 'read x; tty; stty size; echo got $x'], (s) => {
      s.process!.terminal = true;
      s.process!.consoleSize = { height: 30, width: 100 };
    });
    const fifo = join(h.dir, 'stdin');
    mkfifo(fifo, 0o600);
    const src = openSync(fifo, O_RDONLY | O_NONBLOCK);
    const writer = openSync(fifo, O_RDWR);
    const [outR, outW] = pipe();
    const [recv, send] = socketpair(SOCK_STREAM);
    const spawner = h.shim.spawner('init', { stdinSrc: src, console: recv, termOut: outW });
    const created = createContainer({ root: h.root, id: 'tty1', bundle: b.dir, consoleFd: send, spawner });
    for (const fd of [src, outW, recv, send]) closeSync(fd);
    h.shim.watch('init', created.pid);
    releaseInit(h.root, created.record);
    await new Promise((r) => setTimeout(r, 200));
    h.shim.resize('init', 40, 120);
    writeSync(writer, 'typed\n');
    const out = drain(outR, 'got typed');
    t.match(out, /\/dev\/pts\/\d+/, 'stdio is a pty');
    t.match(out, /40 120/, 'resized through the shim');
    t.match(out, /got typed/, 'input reached it through the pty');
    const exit = await h.nextExit('init');
    t.equal(exitCode(exit.status), 0);
    t.throws(() => h.shim.resize('nope', 1, 1), ShimError, 'unknown process');
    closeSync(writer);
    closeSync(outR);
    destroyContainer(h.root, loadContainer(h.root, 'tty1'));
  });

  t.test('kill, exec, and what a reconnecting daemon learns', async (t) => {
    const h = harness(t);
    const b = makeBundle(['sleep', '1000']);
    const created = createContainer({ root: h.root, id: 'sl1', bundle: b.dir, spawner: h.shim.spawner('init') });
    h.shim.watch('init', created.pid);
    releaseInit(h.root, created.record);
    const [outR, outW] = pipe();
    const ex = execInContainer({
      root: h.root,
      id: 'sl1',
      process: { ...b.spec.process!, args: ['sh', '-c', 'echo exec $$; exit 7'] },
      stdio: { stdin: -1, stdout: outW, stderr: outW },
      spawner: h.shim.spawner('exec/e1'),
    });
    closeSync(outW);
    h.shim.watch('exec/e1', ex.pid);
    t.match(drain(outR, 'exec'), /^exec \d+\n$/, 'exec output');
    t.equal(exitCode((await h.nextExit('exec/e1')).status), 7, 'exec exit status');
    t.same(readdirSync(h.dir).sort(), [SHIM_LOG, SHIM_SOCKET].sort(), 'no exit record unless asked for');
    closeSync(outR);
    h.shim.forget('exec/e1');
    t.same(h.shim.state().map((p) => p.name), ['init'], 'forgotten');
    t.throws(() => h.shim.shutdown(), { code: 'EBUSY' }, 'no shutdown while the init runs');

    // The daemon goes away; the init dies meanwhile; a new daemon connects.
    h.shim.close();
    process.kill(created.pid, 'SIGKILL'); // a pid namespace's init ignores what it has no handler for
    const again = Shim.connect(h.dir);
    t.teardown(() => again.close());
    let st: ShimProcess[] = [];
    for (let i = 0; i < 100; i++) {
      st = again.state();
      if (st[0]?.exited) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    t.same(st.map((p) => [p.name, p.exited, exitCode(p.status), p.acked]), [['init', true, 128 + 9, false]], 'the exit that happened while no one listened');
    t.throws(() => again.kill('init', 9), { code: 'ESRCH' }, 'a reaped process is not signalled');
    destroyContainer(h.root, loadContainer(h.root, 'sl1'));
    again.shutdown();
    t.ok(h.shim.reap(2000), 'the shim exited');
  });

  t.test('WATCH refuses an exit record path that is not absolute or has a NUL', async (t) => {
    const h = harness(t);
    const b = makeBundle(['sleep', '1000']);
    const created = createContainer({ root: h.root, id: 'wp1', bundle: b.dir, spawner: h.shim.spawner('init') });
    t.teardown(() => destroyContainer(h.root, loadContainer(h.root, 'wp1')));
    // Past the TypeScript encoder's checks, as another client could send it.
    const raw = unixSocket(join(h.dir, SHIM_SOCKET), SOCK_SEQPACKET, false);
    t.teardown(() => closeSync(raw));
    const answer = Buffer.alloc(4096);
    const watch = (payload: Buffer) => {
      sendFds(raw, [], encodeRequest({ type: REQ.WATCH, name: 'init', pid: created.pid, payload }));
      return decodeResponse(answer, recvMsg(raw, answer).bytes).err;
    };
    t.equal(watch(Buffer.from('relative/exit')), 22, 'relative: EINVAL');
    t.equal(watch(Buffer.from('/tmp/a\0b')), 22, 'a NUL: EINVAL');
    t.equal(watch(Buffer.from('/' + 'x'.repeat(EXIT_PATH_MAX))), 22, 'too long: EINVAL');
    t.same(h.shim.state().map((p) => p.pid), [0], 'not watched');
    t.throws(() => h.shim.watch('init', created.pid, 'a\0b'), RangeError, 'the encoder refuses it too');
    h.shim.watch('init', created.pid);
    process.kill(created.pid, 'SIGKILL');
    await h.nextExit('init');
  });

  t.test('a failed launch leaves the shim clean', async (t) => {
    const h = harness(t);
    const b = makeBundle(['/no/such/binary']);
    t.throws(() => createContainer({ root: h.root, id: 'bad1', bundle: b.dir, spawner: h.shim.spawner('init') }), /no\/such\/binary/);
    h.shim.forget('init', true);
    t.same(h.shim.state(), [], 'nothing held');
    t.notOk(existsSync(join(h.root, 'bad1')), 'no state dir');
    h.shim.shutdown();
  });
});
