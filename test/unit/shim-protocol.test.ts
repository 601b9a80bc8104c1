// The shim protocol's records: the TypeScript layout matches the C one, and
// the codecs round-trip.
import t from 'tap';
import { shimLayout } from '../../src/linux/native.js';
import {
  decodeProcess,
  decodeResponse,
  encodeRequest,
  EventReader,
  EVENT_SIZE,
  exitCode,
  exitRecordPayload,
  EXIT_PATH_MAX,
  LAYOUT,
  parseExitRecord,
  PROC_SIZE,
  REQ,
  REQ_SIZE,
  RESP_SIZE,
} from '../../src/tasks/shim-protocol.js';

t.test('record layout matches native-shims/shim-proto.h', async (t) => {
  LAYOUT.forEach((v, i) => t.equal(v, shimLayout(i), `layout item ${i}`));
});

t.test('requests', async (t) => {
  const b = encodeRequest({ type: REQ.SPAWN, name: 'exec/e1', nslots: 3, roles: { console: 0, termOut: 1 }, payload: Buffer.from('PLAN') });
  t.equal(b.length, REQ_SIZE + 4);
  t.equal(b.readUInt32LE(0), REQ.SPAWN);
  t.equal(b.readUInt32LE(20), 3, 'nslots');
  t.same([0, 1, 2, 3].map((i) => b.readInt32LE(24 + 4 * i)), [-1, -1, 0, 1], 'roles in the C enum order, -1 when absent');
  t.equal(b.toString('utf8', 40, 47), 'exec/e1');
  t.equal(b[47], 0, 'NUL-terminated');
  t.equal(b.toString('utf8', REQ_SIZE), 'PLAN', 'payload after the header');
  t.throws(() => encodeRequest({ type: REQ.KILL, name: 'x'.repeat(128) }), RangeError, 'a name that does not fit');
});

function procRecord(name: string, pid: number, status: number, exitedNs: bigint): Buffer {
  const r = Buffer.alloc(PROC_SIZE);
  r.writeInt32LE(pid, 0);
  r.writeUInt32LE(1, 4);
  r.writeInt32LE(status, 8);
  r.writeUInt32LE(1, 12);
  r.writeBigInt64LE(exitedNs, 16);
  r.write(name, 24);
  return r;
}

t.test('responses and events', async (t) => {
  const head = Buffer.alloc(RESP_SIZE);
  head.writeUInt32LE(REQ.STATE, 0);
  head.writeUInt32LE(2, 12);
  const buf = Buffer.concat([head, procRecord('init', 42, 0x0300, 5n), procRecord('exec/a', 43, 9, 6n)]);
  const r = decodeResponse(buf, buf.length);
  t.same(
    r.procs.map((p) => [p.name, p.pid, p.exited, exitCode(p.status), p.acked, p.exitedNs]),
    [
      ['init', 42, true, 3, true, 5n],
      ['exec/a', 43, true, 137, true, 6n],
    ],
  );
  t.throws(() => decodeResponse(buf, RESP_SIZE + PROC_SIZE), /truncated/);
  t.throws(() => decodeResponse(buf, 4), /short/);

  const ev = Buffer.alloc(EVENT_SIZE);
  ev.writeUInt32LE(1, 0);
  procRecord('init', 7, 0, 1n).copy(ev, 8);
  const reader = new EventReader();
  const two = Buffer.concat([ev, ev]);
  t.same(reader.push(two.subarray(0, 100)), [], 'a partial record waits');
  t.same(reader.push(two.subarray(100, 250)).map((p) => p.pid), [7], 'completed by the next chunk');
  t.same(reader.push(two.subarray(250)).map((p) => p.pid), [7]);
  t.same(decodeProcess(ev, 8).name, 'init');
});

t.test('exit records', async (t) => {
  t.same(parseExitRecord('42 768 1700000000123456789\n'), { pid: 42, status: 768, exitedNs: 1700000000123456789n }, 'the line the shim writes, ns kept exact');
  t.same(
    parseExitRecord('{"pid":42,"status":9,"exited_ns":1700000000123456789}\n'),
    { pid: 42, status: 9, exitedNs: 1700000000123456789n },
    'the JSON of shims from before',
  );
  for (const bad of ['', '42 768\n', '42 768 5', '42 768 5\nmore\n', 'a b c\n', '{"pid":42}\n']) {
    t.throws(() => parseExitRecord(bad), /not an exit record/, JSON.stringify(bad));
  }
  t.same(exitRecordPayload('/run/t/exit'), Buffer.from('/run/t/exit'));
  t.throws(() => exitRecordPayload('t/exit'), RangeError, 'relative');
  t.throws(() => exitRecordPayload('/a\0b'), RangeError, 'NUL');
  t.throws(() => exitRecordPayload('/' + 'x'.repeat(EXIT_PATH_MAX)), RangeError, 'too long');
  t.equal(exitRecordPayload('/' + 'x'.repeat(EXIT_PATH_MAX - 1)).length, EXIT_PATH_MAX, 'the longest');
});
