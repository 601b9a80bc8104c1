// process.terminal: the pty is made inside the container and its master sent
// over --console-socket (SCM_RIGHTS, as runc does); `run` without a console
// socket relays the pty itself.
import t from 'tap';
import net from 'node:net';
import tty from 'node:tty';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle.js';
import { cli, needsRoot } from '../helpers/cli.js';
import { recvFd } from '../../src/linux/native.js';
import { pollReadable } from '../../src/linux/libc.js';

/** A console socket like runc's recvtty: accepts one connection and returns the fd it carries. */
function consoleSocket(path: string): { master: Promise<{ fd: number; name: string }>; close(): void } {
  let resolveFd: (v: { fd: number; name: string }) => void = () => {};
  let rejectFd: (e: unknown) => void = () => {};
  const master = new Promise<{ fd: number; name: string }>((res, rej) => {
    resolveFd = res;
    rejectFd = rej;
  });
  // pauseOnConnect: libuv must not read the message (and drop its fd) before we do.
  const server = net.createServer({ pauseOnConnect: true }, (sock) => {
    const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
    try {
      pollReadable([fd], 10_000);
      resolveFd(recvFd(fd));
    } catch (e) {
      rejectFd(e);
    } finally {
      sock.destroy();
    }
  });
  server.listen(path);
  return { master, close: () => server.close() };
}

function readAll(fd: number): Promise<string> {
  return new Promise((resolve) => {
    const s = new tty.ReadStream(fd);
    let text = '';
    s.on('data', (d) => (text += d.toString()));
    const done = () => resolve(text);
    s.on('error', done); // EIO once the container side is closed
    s.on('end', done);
    s.on('close', done);
  });
}

t.test('terminal', { skip: needsRoot }, async (t) => {
  const tsrunc = cli();

  t.test('create --console-socket gets the pty master', async (t) => {
    const b = makeBundle(['sh', '-c', 'tty; stty size; test -t 0 && test -t 1 && test -t 2 && echo all-ttys; echo bye'], (s) => {
      s.process!.terminal = true;
      s.process!.consoleSize = { height: 33, width: 111 };
    });
    const sockPath = join(b.dir, 'console.sock');
    const cs = consoleSocket(sockPath);
    const c = await tsrunc.detached(['create', '--console-socket', sockPath, '-b', b.dir, 'tt1']);
    t.equal(c.exitCode, 0, c.stderr);
    const { fd, name } = await cs.master;
    cs.close();
    t.match(name, /^\/dev\/pts\/\d+$/, 'the pty name comes with the fd');
    const output = readAll(fd);
    t.equal((await tsrunc(['start', 'tt1'])).exitCode, 0);
    const text = (await output).replace(/\r/g, '');
    t.match(text, /^\/dev\/pts\/0\n33 111\nall-ttys\nbye\n$/);
    t.equal((await tsrunc(['delete', '-f', 'tt1'])).exitCode, 0);
  });

  t.test('run relays the pty when there is no console socket', async (t) => {
    const b = makeBundle(['sh', '-c', 'tty; read x; echo "got $x"; exit 4'], (s) => (s.process!.terminal = true));
    const r = await tsrunc(['run', '-b', b.dir, 'tt2'], { input: 'typed\n' });
    t.equal(r.exitCode, 4, r.stderr);
    // The pty echoes what we type, so "typed" may come before or after tty's line.
    const lines = r.stdout.replace(/\r/g, '').split('\n');
    t.ok(lines.includes('/dev/pts/0'), 'the container sees a pty');
    t.ok(lines.includes('got typed'), 'stdin reached the container through the pty');
  });

  t.test('a terminal without a console socket cannot be detached', async (t) => {
    const b = makeBundle(['true'], (s) => (s.process!.terminal = true));
    for (const args of [['create', '-b', b.dir, 'tt3'], ['run', '-d', '-b', b.dir, 'tt4']]) {
      const r = await tsrunc.detached(args);
      t.equal(r.exitCode, 1);
      t.match(r.stderr, /process\.terminal is true: --console-socket is required/);
    }
    t.same((await tsrunc(['list', '-q'])).stdout, '', 'nothing left behind');
  });

  t.test('a console socket without a terminal is refused', async (t) => {
    const b = makeBundle(['true']);
    const r = await tsrunc.detached(['create', '--console-socket', join(b.dir, 'nope.sock'), '-b', b.dir, 'tt5']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /--console-socket needs process.terminal set to true/);
  });

  t.test('an unreachable console socket is a clear error', async (t) => {
    const b = makeBundle(['true'], (s) => (s.process!.terminal = true));
    const r = await tsrunc.detached(['create', '--console-socket', join(b.dir, 'missing.sock'), '-b', b.dir, 'tt6']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /connect .*missing\.sock: ENOENT/);
    t.same((await tsrunc(['list', '-q'])).stdout, '', 'nothing left behind');
  });
});
