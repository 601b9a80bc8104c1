// LaunchPlan -> the flat buffer native-shims/spawn.c reads (format in
// native-shims/plan.h), and the C side's own check of that buffer.
import t from 'tap';
import { existsSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k from '../../src/linux/constants.js';
import { parseMountInfo } from '../../src/linux/mountinfo.js';
import { checkPlan, opSchema } from '../../src/linux/native.js';
import { defaultSpec, rootlessSpec } from '../../src/oci/default-spec.js';
import type { Spec } from '../../src/oci/spec.js';
import { encodePlan, PLAN_MAGIC } from '../../src/runtime/plan/encode.js';
import { buildInitPlan } from '../../src/runtime/plan/init.js';
import { IGNORE, OP_TABLE, op, type LaunchPlan, type OpName, type PlanOp } from '../../src/runtime/plan/ops.js';
import type { InitPlanInput } from '../../src/runtime/plan/context.js';

const HEADER = 32;

function planOf(...ops: PlanOp[]): LaunchPlan {
  return { cloneFlags: 0, cgroupFd: -1, syncFd: 10, parentSyncFd: 11, ops };
}

interface OpAt {
  offset: number;
  code: number;
  flags: number;
  len: number;
}

/** The op headers of an encoded plan, by walking the lengths. */
function walk(buf: Buffer): OpAt[] {
  const out: OpAt[] = [];
  let off = HEADER;
  while (off < buf.length) {
    const len = buf.readUInt32LE(off + 4);
    out.push({ offset: off, code: buf.readUInt16LE(off), flags: buf.readUInt16LE(off + 2), len });
    if (len < 8) break;
    off += len;
  }
  return out;
}

/** The bytes of the only op of a one-op plan. */
const onlyOp = (o: PlanOp) => encodePlan(planOf(o)).subarray(HEADER);

t.test('header', (t) => {
  const plan: LaunchPlan = {
    cloneFlags: k.CLONE_NEWPID | k.CLONE_NEWNS | k.CLONE_NEWUSER | k.CLONE_NEWNET,
    cgroupFd: -1,
    syncFd: 10,
    parentSyncFd: 11,
    ops: [op('SETSID', {}, 'a'), op('UMASK', { mask: 0o22 }, 'b'), op('SETHOSTNAME', { name: 'box' }, 'c')],
  };
  const buf = encodePlan(plan);
  t.equal(buf.readUInt32LE(0), PLAN_MAGIC);
  t.equal(PLAN_MAGIC, 0x31505354);
  t.equal(buf.subarray(0, 4).toString('latin1'), 'TSP1', 'the magic reads "TSP1"');
  t.equal(buf.readUInt32LE(4), 3, 'op count');
  t.equal(buf.readBigUInt64LE(8), BigInt(plan.cloneFlags), 'clone flags');
  t.equal(buf.readInt32LE(16), -1, 'cgroup fd');
  t.equal(buf.readInt32LE(20), 10, 'sync fd');
  t.equal(buf.readInt32LE(24), 11, 'parent sync fd');
  t.equal(buf.readUInt32LE(28), buf.length, 'total length');
  t.equal(encodePlan(planOf()).length, HEADER, 'an empty plan is just the header');
  t.equal(encodePlan({ ...plan, cgroupFd: 5 }).readInt32LE(16), 5);
  t.end();
});

t.test('op headers: code, ignore flags, length; everything 8-byte aligned', (t) => {
  const plan = planOf(
    op('SETSID', {}, 'no fields'),
    op('SETHOSTNAME', { name: 'abc' }, 'a string'),
    op('MASK_PATH', { path: '/proc/kcore' }, 'mask', IGNORE.ENOENT | IGNORE.EEXIST),
    op('EXEC', { argv: ['sh', '-c', 'echo hi'], envp: ['PATH=/bin'] }, 'exec'),
    op('SETGROUPS', { gids: [1, 2, 3] }, 'groups'),
  );
  const buf = encodePlan(plan);
  t.equal(buf.length % 8, 0);
  const at = walk(buf);
  t.same(
    at.map((o) => o.code),
    plan.ops.map((o) => OP_TABLE[o.name].code),
  );
  t.same(
    at.map((o) => o.flags),
    [0, 0, IGNORE.ENOENT | IGNORE.EEXIST, 0, 0],
  );
  for (const o of at) {
    t.equal(o.offset % 8, 0, `op at ${o.offset} is aligned`);
    t.equal(o.len % 8, 0, `op at ${o.offset} has a length that is a multiple of 8`);
  }
  t.equal(at.reduce((n, o) => n + o.len, HEADER), buf.length, 'the op lengths add up to the buffer');
  t.equal(at[0]!.len, 8, 'an op without fields is its header');
  t.end();
});

t.test("'s' fields: length, zero, bytes, NUL, zero padding to 8", (t) => {
  const cases: [string, number][] = [
    ['', 8],
    ['abc', 8],
    ['abcdefg', 8],
    ['abcdefgh', 16],
    ['/proc/sys/kernel/hostname-x', 32],
  ];
  for (const [s, size] of cases) {
    const b = onlyOp(op('SETHOSTNAME', { name: s }, ''));
    t.equal(b.readUInt16LE(0), OP_TABLE.SETHOSTNAME.code);
    t.equal(b.readUInt32LE(4), 8 + 8 + size, `"${s}": op length`);
    t.equal(b.readUInt32LE(8), s.length, `"${s}": byte length`);
    t.equal(b.readUInt32LE(12), 0, `"${s}": zero word`);
    t.equal(b.subarray(16, 16 + s.length).toString(), s, `"${s}": bytes`);
    t.ok(b.subarray(16 + s.length, 16 + size).every((x) => x === 0), `"${s}": NUL and zero padding`);
  }
  const utf8 = onlyOp(op('SETHOSTNAME', { name: 'é€' }, ''));
  t.equal(utf8.readUInt32LE(8), 5, 'the length is in UTF-8 bytes');
  t.equal(utf8.subarray(16, 21).toString('utf8'), 'é€');
  t.end();
});

t.test("'u' fields: u64 little-endian, negative numbers as two's complement", (t) => {
  const b = onlyOp(op('SETRLIMIT', { resource: 7, soft: 2n ** 40n, hard: 2n ** 64n - 1n }, ''));
  t.equal(b.readUInt32LE(4), 8 + 3 * 8);
  t.equal(b.readBigUInt64LE(8), 7n);
  t.equal(b.readBigUInt64LE(16), 2n ** 40n);
  t.equal(b.readBigUInt64LE(24), 2n ** 64n - 1n);
  const neg = onlyOp(op('CONSOLE', { socket: -1, rows: 24, cols: 80 }, ''));
  t.equal(neg.readBigUInt64LE(8), 2n ** 64n - 1n, '-1');
  t.equal(neg.readBigInt64LE(8), -1n);
  t.equal(neg.readBigUInt64LE(16), 24n);
  t.equal(neg.readBigUInt64LE(24), 80n);
  t.end();
});

t.test("'v' and 'a' fields: count, zero, then the items", (t) => {
  const b = onlyOp(op('EXEC', { argv: ['sh', '-c'], envp: ['A=1'] }, ''));
  let off = 8;
  t.equal(b.readUInt32LE(off), 2, 'argv count');
  t.equal(b.readUInt32LE(off + 4), 0);
  off += 8;
  for (const s of ['sh', '-c']) {
    t.equal(b.readUInt32LE(off), s.length);
    t.equal(b.subarray(off + 8, off + 8 + s.length).toString(), s);
    t.equal(b[off + 8 + s.length], 0, 'NUL');
    off += 16;
  }
  t.equal(b.readUInt32LE(off), 1, 'envp count');
  off += 8;
  t.equal(b.subarray(off + 8, off + 11).toString(), 'A=1');
  off += 16;
  t.equal(off, b.readUInt32LE(4), 'nothing after envp');

  const empty = onlyOp(op('EXEC', { argv: ['x'], envp: [] }, ''));
  t.equal(empty.readUInt32LE(4), 8 + 8 + 16 + 8, 'an empty list is its count word');

  const g = onlyOp(op('SETGROUPS', { gids: [0, 5, 2n ** 32n] }, ''));
  t.equal(g.readUInt32LE(4), 8 + 8 + 3 * 8);
  t.equal(g.readUInt32LE(8), 3);
  t.same([g.readBigUInt64LE(16), g.readBigUInt64LE(24), g.readBigUInt64LE(32)], [0n, 5n, 2n ** 32n]);
  t.equal(onlyOp(op('SETGROUPS', { gids: [] }, '')).readUInt32LE(4), 16);
  t.end();
});

t.test('a plan larger than the first buffer', (t) => {
  const big = 'x'.repeat(10_000);
  const buf = encodePlan(planOf(op('SETSID', {}, ''), op('EXEC', { argv: [big, big], envp: [big] }, ''), op('UMASK', { mask: 0o77 }, '')));
  t.equal(buf.readUInt32LE(28), buf.length);
  const at = walk(buf);
  t.equal(at.length, 3);
  t.equal(buf.readBigUInt64LE(at[2]!.offset + 8), 0o77n, 'the op after the big one is intact');
  t.equal(buf.subarray(at[1]!.offset + 24, at[1]!.offset + 24 + big.length).toString(), big);
  t.end();
});

t.test('strings with a NUL byte are refused', (t) => {
  t.throws(() => encodePlan(planOf(op('SETHOSTNAME', { name: 'a\0b' }, ''))), { message: /NUL byte/ });
  t.throws(() => encodePlan(planOf(op('EXEC', { argv: ['sh', 'a\0b'], envp: [] }, ''))), { message: /NUL byte/ });
  t.throws(() => encodePlan(planOf(op('EXEC', { argv: ['sh'], envp: ['A=\0'] }, ''))), { message: /NUL byte/ });
  t.end();
});

t.test('a missing field is refused', (t) => {
  const broken = { name: 'MOUNT', args: { source: 'a', target: '/a', flags: 0, fstype: '', data: '', pflags: 0 }, ignore: 0, describe: '' } as unknown as PlanOp;
  t.throws(() => encodePlan(planOf(broken)), { message: 'op MOUNT: missing field guard' });
  t.end();
});

// ---- the C side: libtsrunc.so, loaded through koffi (no root needed) ----

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LIB = join(REPO, 'native-shims', 'build', 'libtsrunc.so');
const skip = existsSync(LIB) || process.env['TSRUNC_LIB'] ? false : `${LIB} is missing: build it with \`node scripts/build.mjs\` (or make -C native-shims)`;

const BUNDLE = mkdtempSync(join(tmpdir(), 'tsrunc-encode-'));
mkdirSync(join(BUNDLE, 'data'));
t.teardown(() => rmSync(BUNDLE, { recursive: true, force: true }));

function realPlan(spec: Spec, over: Partial<InitPlanInput> = {}): LaunchPlan {
  return buildInitPlan({
    id: 'c1',
    spec,
    rootfs: '/var/lib/tsrunc/c1/rootfs',
    bundle: BUNDLE,
    host: {
      capLastCap: 40,
      mounts: parseMountInfo('22 1 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n23 22 0:21 / /proc rw - proc proc rw\n24 22 0:22 / /sys rw - sysfs sysfs rw\n'),
      procKcore: true,
      cgroupMode: 'hybrid',
      euid: 0,
    },
    cgroupDir: '/sys/fs/cgroup/unified/c1',
    fds: { sync: 10, parentSync: 11, cgroup: -1, fifo: 12, console: 9 },
    noPivot: false,
    noNewKeyring: false,
    preserveFds: 0,
    env: ['HOME=/root'],
    ...over,
  });
}

function realPlans(): [string, LaunchPlan][] {
  const joined = defaultSpec();
  joined.linux!.namespaces = [{ type: 'pid' }, { type: 'network', path: '/proc/1/ns/net' }, { type: 'mount' }, { type: 'uts' }, { type: 'user', path: '/proc/1/ns/user' }];
  const binds = defaultSpec();
  binds.mounts!.push({ destination: '/data', type: 'bind', source: 'data', options: ['rbind', 'ro', 'rshared', 'rnoexec'] });
  binds.process!.capabilities!.ambient = ['CAP_KILL'];
  binds.process!.user.additionalGids = [1, 2, 3];
  return [
    ['default', realPlan(defaultSpec())],
    ['rootless', realPlan(rootlessSpec(1000, 1000), { host: { capLastCap: 40, mounts: [], procKcore: false, cgroupMode: 'unified', euid: 1000 }, cgroupDir: undefined })],
    ['joined namespaces', realPlan(joined)],
    ['binds, ambient caps, groups', realPlan(binds)],
    ['--no-pivot', realPlan(defaultSpec(), { noPivot: true, noNewKeyring: true, preserveFds: 3 })],
  ];
}

t.test('the C interpreter accepts real plans', { skip }, (t) => {
  for (const [name, plan] of realPlans()) {
    t.equal(checkPlan(encodePlan(plan)), -1, name);
  }
  t.equal(checkPlan(encodePlan(planOf())), -1, 'an empty plan');
  t.end();
});

t.test('the C interpreter finds the op that is corrupt', { skip }, (t) => {
  const [, plan] = realPlans()[0]!;
  const good = encodePlan(plan);
  const at = walk(good);
  t.equal(at.length, plan.ops.length);
  const mountIdx = plan.ops.findIndex((o) => o.name === 'MOUNT');
  const hostIdx = plan.ops.findIndex((o) => o.name === 'SETHOSTNAME');
  const last = plan.ops.length - 1;

  const corrupt = (i: number, edit: (b: Buffer, o: OpAt) => void): number => {
    const b = Buffer.from(good);
    edit(b, at[i]!);
    return checkPlan(b);
  };
  for (const i of [0, mountIdx, hostIdx, last]) {
    const name = plan.ops[i]!.name;
    t.equal(corrupt(i, (b, o) => b.writeUInt32LE(o.len + 8, o.offset + 4)), i, `op ${i} (${name}): length too long`);
    t.equal(corrupt(i, (b, o) => b.writeUInt32LE(o.len + 4, o.offset + 4)), i, `op ${i} (${name}): length not a multiple of 8`);
    t.equal(corrupt(i, (b, o) => b.writeUInt32LE(4, o.offset + 4)), i, `op ${i} (${name}): length shorter than the header`);
    t.equal(corrupt(i, (b, o) => b.writeUInt16LE(999, o.offset)), i, `op ${i} (${name}): unknown code`);
    t.equal(corrupt(i, (b, o) => b.writeUInt16LE(0, o.offset)), i, `op ${i} (${name}): code 0`);
  }
  t.equal(
    corrupt(mountIdx, (b, o) => b.writeUInt16LE(OP_TABLE.REMOUNT.code, o.offset)),
    mountIdx,
    'a MOUNT relabelled REMOUNT no longer fits its schema',
  );
  t.equal(
    corrupt(hostIdx, (b, o) => b.writeUInt8(0x41, o.offset + 16 + b.readUInt32LE(o.offset + 8))),
    hostIdx,
    'a string without its NUL',
  );
  t.equal(
    corrupt(hostIdx, (b, o) => b.writeUInt32LE(1000, o.offset + 8)),
    hostIdx,
    'a string longer than its op',
  );
  const execIdx = plan.ops.findIndex((o) => o.name === 'EXEC');
  t.equal(
    corrupt(execIdx, (b, o) => b.writeUInt32LE(1000, o.offset + 8)),
    execIdx,
    'a vector count beyond the op',
  );
  t.equal(
    corrupt(hostIdx, (b, o) => b.writeUInt8(0, o.offset + 16)),
    hostIdx,
    'a NUL inside a string',
  );

  const badMagic = Buffer.from(good);
  badMagic.writeUInt32LE(0x12345678, 0);
  t.equal(checkPlan(badMagic), plan.ops.length, 'bad magic: the op count (a bad header)');
  t.equal(checkPlan(good.subarray(0, good.length - 8)), plan.ops.length, 'a truncated buffer: the total length disagrees');
  const extraOp = Buffer.from(good);
  extraOp.writeUInt32LE(plan.ops.length + 1, 4);
  t.equal(checkPlan(extraOp), plan.ops.length, 'one op more than the buffer holds');
  const fewerOps = Buffer.from(good);
  fewerOps.writeUInt32LE(plan.ops.length - 1, 4);
  t.equal(checkPlan(fewerOps), plan.ops.length - 1, 'bytes left after the last op');
  t.equal(checkPlan(good.subarray(0, 16)), 0, 'shorter than a header');
  t.equal(checkPlan(good), -1, 'the original is still good');
  t.end();
});

t.test('the C and TypeScript op tables agree (plan.h TSR_OPS vs ops.ts OP_TABLE)', { skip }, (t) => {
  const codes = new Set<number>();
  for (const [name, def] of Object.entries(OP_TABLE) as [OpName, (typeof OP_TABLE)[OpName]][]) {
    const schema = def.fields.map(([, type]) => type).join('');
    t.equal(opSchema(def.code), schema, `${name} (${def.code}): "${schema}"`);
    t.notOk(codes.has(def.code), `${name}: code ${def.code} is unique`);
    codes.add(def.code);
  }
  t.equal(opSchema(OP_TABLE.MOUNT.code), 'ssussus', 'MOUNT: source, target, flags, fstype, data, pflags, guard');
  const max = Math.max(...codes);
  t.equal(opSchema(0), null, 'code 0 is no op');
  for (let code = 1; code <= max + 8; code++) {
    if (!codes.has(code)) t.equal(opSchema(code), null, `the C side has no op ${code} that TypeScript lacks`);
  }
  t.end();
});
