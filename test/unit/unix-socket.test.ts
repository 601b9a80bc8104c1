// unixSocket/unixConnect on paths longer than sun_path (108 bytes): a deep
// --state dir must not make a task's shim socket unbindable.
import t from 'tap';
import { closeSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SOCK_SEQPACKET } from '../../src/linux/constants.js';
import { unixSocket } from '../../src/linux/native.js';

t.test('bind and connect on a socket path of 200 bytes', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'tsrunc-unix-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const dir = join(base, 'd'.repeat(100), 'e'.repeat(60));
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'shim.sock');
  t.ok(Buffer.byteLength(path) > 108, `the path is ${Buffer.byteLength(path)} bytes`);
  const listening = unixSocket(path, SOCK_SEQPACKET, true);
  t.ok(statSync(path).isSocket(), 'the socket is at the long path itself');
  t.equal(statSync(path).mode & 0o777, 0o600);
  const client = unixSocket(path, SOCK_SEQPACKET, false);
  t.ok(client >= 0, 'connected through the same long path');
  closeSync(client);
  closeSync(listening);
  t.throws(() => unixSocket(join(base, 'missing', 'x'.repeat(120)), SOCK_SEQPACKET, false), /ENOENT|no such file/i, 'a missing directory: the error names the path');
});
