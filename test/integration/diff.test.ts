// diff.v1 Diff over gRPC for trees that are not "left plus one layer":
// two binds of unrelated directories and two overlays of unrelated
// snapshots, mounted read-only by tsrund and compared (containerd's walking
// differ). Each layer, applied onto a copy of left, must give right in every
// attribute (owners, modes with setuid, devices, fifos, xattrs incl. a file
// capability, hard links, symlinks, nanosecond mtimes, deletions, replaced
// types); tar+zstd layers are written with libzstd and read by `zstd -t`.
// Bad input leaves no mount, temp dir or ingest behind. Namespace "dfx".
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { Content } from '../../src/gen/containerd/services/content/v1/content_pb.js';
import { Diff } from '../../src/gen/containerd/services/diff/v1/diff_pb.js';
import { Snapshots } from '../../src/gen/containerd/services/snapshots/v1/snapshots_pb.js';
import type { Mount } from '../../src/gen/containerd/types/mount_pb.js';
import { connect, type Connection } from '../../src/client/index.js';
import { lsetxattrRaw } from '../../src/linux/fsat.js';
import { needsRoot } from '../helpers/cli.js';
import { startTsrund, type RunningDaemon } from '../helpers/daemon.js';
import { describeTree } from '../helpers/tree.js';
import { readonlyMounts, withTempMounts } from '../../src/snapshots/temp-mount.js';

const SN = 'overlayfs';
const TAR = 'application/vnd.oci.image.layer.v1.tar';
const GZ = 'application/vnd.oci.image.layer.v1.tar+gzip';
const ZST = 'application/vnd.oci.image.layer.v1.tar+zstd';
const CAP = Buffer.from('0100000200040000000000000000000000000000', 'hex');
const SEC = new Date(1_700_000_000_000);
const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const status = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'OK',
    (e: grpc.ServiceError) => `${grpc.status[e.code]}: ${e.details}`,
  );
const bind = (source: string, ro = true) => ({ type: 'bind', source, target: '', options: [ro ? 'ro' : 'rw', 'rbind'] });
const sh = (cmd: string, ...args: string[]): void => void execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
function setXattr(path: string, name: string, value: Buffer): void {
  const r = lsetxattrRaw(path, name, value);
  if (r !== 0) throw new Error(`lsetxattr ${path} ${name}: errno ${-r}`);
}

/** A tree with every file type and attribute a layer carries. */
function buildLeft(root: string): void {
  const p = (s: string) => join(root, s);
  for (const d of ['bin', 'etc', 'etc/conf.d', 'gonedir', 'gonedir/sub', 'dir2file', 'dev', 'keep']) mkdirSync(p(d), { recursive: true });
  writeFileSync(p('bin/tool'), 'tool v1');
  sh('chown', '12:34', p('bin/tool'));
  chmodSync(p('bin/tool'), 0o4750);
  linkSync(p('bin/tool'), p('bin/tool-hard'));
  setXattr(p('bin/tool'), 'security.capability', CAP);
  symlinkSync('/bin/tool', p('bin/abs'));
  writeFileSync(p('etc/conf.d/a'), 'a');
  writeFileSync(p('etc/owner'), 'o');
  writeFileSync(p('etc/same-size'), 'AAAA');
  utimesSync(p('etc/same-size'), SEC, SEC);
  writeFileSync(p('gonedir/x'), 'x');
  writeFileSync(p('gonedir/sub/y'), 'y');
  writeFileSync(p('dir2file/z'), 'z');
  writeFileSync(p('file2dir'), 'f');
  symlinkSync('target', p('sym2file'));
  sh('mknod', p('dev/null'), 'c', '1', '3');
  sh('mknod', p('dev/loopx'), 'b', '7', '200');
  sh('mkfifo', p('dev/fifo'));
  writeFileSync(p('keep/data'), 'unchanged');
  setXattr(p('keep/data'), 'user.tag', Buffer.from('v1'));
}

/** right: a copy of left with one change of each kind. */
function changeRight(root: string): void {
  const p = (s: string) => join(root, s);
  writeFileSync(p('bin/tool'), 'tool v2, longer');
  chmodSync(p('bin/tool'), 0o4750); // writing as root keeps setuid; stated for clarity
  linkSync(p('bin/tool'), p('bin/tool-third'));
  sh('chown', '1000:1000', p('etc/owner'));
  writeFileSync(p('etc/same-size'), 'BBBB');
  utimesSync(p('etc/same-size'), SEC, SEC);
  rmSync(p('etc/conf.d/a'));
  writeFileSync(p('etc/new'), Buffer.alloc(200_000, 'n'));
  rmSync(p('gonedir'), { recursive: true });
  rmSync(p('dir2file'), { recursive: true });
  writeFileSync(p('dir2file'), 'file now');
  rmSync(p('file2dir'));
  mkdirSync(p('file2dir/deeper'), { recursive: true });
  writeFileSync(p('file2dir/deeper/f'), 'f');
  rmSync(p('sym2file'));
  writeFileSync(p('sym2file'), 'was a symlink');
  rmSync(p('dev/null'));
  sh('mknod', p('dev/null'), 'c', '1', '5');
  sh('mknod', p('dev/tty9'), 'c', '4', '9');
  setXattr(p('keep/data'), 'user.tag', Buffer.from('v2'));
  setXattr(p('keep'), 'user.dir', Buffer.from([0, 1, 0xfe]));
}

t.test('Diff of trees that are not left plus one layer', { skip: needsRoot }, async (t) => {
  let d: RunningDaemon;
  let conn: Connection;
  const mounted: string[] = [];
  t.before(async () => {
    d = await startTsrund();
    conn = connect(d.address, { namespace: 'dfx' });
    await conn.ready();
  });
  t.teardown(async () => {
    for (const m of mounted.reverse()) execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    conn?.close();
    await d?.stop();
  });
  const diff = () => conn.service(Diff);
  const snapshots = () => conn.service(Snapshots);
  async function read(digest: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const m of conn.service(Content).read({ digest })) chunks.push(Buffer.from(m.data));
    return Buffer.concat(chunks);
  }
  /** Nothing of a Diff stays: no temp mount, no temp dir, no ingest. */
  async function nothingLeft(t: Test): Promise<void> {
    const tmp = join(d.root, 'tmpmounts');
    t.same(readdirSync(tmp, { withFileTypes: true }).map((e) => e.name), [], 'no temp dir left in tmpmounts');
    t.notOk(readFileSync('/proc/self/mountinfo', 'utf8').includes(tmp), 'no temp mount left');
    t.same((await conn.service(Content).listStatuses({})).statuses, [], 'no ingest left');
  }
  function mountAt(mounts: Mount[], name: string): string {
    const target = join(d.dir, name);
    mkdirSync(target);
    const m = mounts[0]!;
    if (m.type === 'bind') sh('mount', '--bind', m.source, target);
    else sh('mount', '-t', m.type, m.source, '-o', m.options.join(','), target);
    mounted.push(target);
    return target;
  }

  t.test('two binds of unrelated dirs, each media type: Apply onto a copy of left gives right', async (t) => {
    const left = join(d.dir, 'left');
    const right = join(d.dir, 'right');
    mkdirSync(left);
    buildLeft(left);
    sh('cp', '-a', left, right);
    changeRight(right);
    for (const [mediaType, unpack] of [
      [TAR, (b: Buffer) => b],
      [GZ, gunzipSync],
      [ZST, (b: Buffer) => execFileSync('zstd', ['-q', '-d', '-c'], { input: b, maxBuffer: 64 << 20 })],
    ] as const) {
      const r = await diff().diff({ left: [bind(left)], right: [bind(right)], mediaType, labels: { by: 'diff-test' } });
      const desc = r.diff!;
      t.equal(desc.mediaType, mediaType);
      const blob = await read(desc.digest);
      t.same([sha(blob), blob.length], [desc.digest, Number(desc.size)], `${mediaType}: digest and size of the blob`);
      const info = await conn.service(Content).info({ digest: desc.digest });
      t.same(info.info?.labels, { by: 'diff-test', 'containerd.io/uncompressed': sha(unpack(blob)) }, 'the diff ID label');
      if (mediaType === ZST) {
        execFileSync('zstd', ['-q', '-t'], { input: blob });
        t.pass('zstd -t accepts the blob');
      }
      const copy = join(d.dir, `copy-${mediaType.split('+')[1] ?? 'tar'}`);
      sh('cp', '-a', left, copy);
      const applied = await diff().apply({ diff: desc, mounts: [bind(copy, false)] });
      t.equal(applied.applied?.digest, sha(unpack(blob)), 'Apply reports the same diff ID');
      const want = describeTree(right, { withDirTimes: true });
      t.same(describeTree(copy, { withDirTimes: true }), want, `${mediaType}: left + layer = right (${want.length} entries)`);
    }
    await nothingLeft(t);
  });

  t.test('two overlays of unrelated snapshots (upper dirs with whiteouts and an opaque dir)', async (t) => {
    const base = async (key: string, fill: (fs: string) => void): Promise<void> => {
      const m = (await snapshots().prepare({ snapshotter: SN, key: `${key}-w`, parent: '' })).mounts;
      fill(m[0]!.source);
      await snapshots().commit({ snapshotter: SN, name: key, key: `${key}-w` });
    };
    await base('ov-A', buildLeft);
    await base('ov-B', (fs) => {
      buildLeft(fs);
      changeRight(fs);
    });
    const a = (await snapshots().prepare({ snapshotter: SN, key: 'ov-a', parent: 'ov-A' })).mounts;
    const b = (await snapshots().prepare({ snapshotter: SN, key: 'ov-b', parent: 'ov-B' })).mounts;
    t.same([a[0]?.type, b[0]?.type], ['overlay', 'overlay']);
    // changes in b's upper dir as a container would leave them: a whiteout, an opaque dir, a new file
    const upper = b[0]!.options.find((o) => o.startsWith('upperdir='))!.slice('upperdir='.length);
    sh('mknod', join(upper, 'dir2file'), 'c', '0', '0');
    mkdirSync(join(upper, 'etc'));
    setXattr(join(upper, 'etc'), 'trusted.overlay.opaque', Buffer.from('y'));
    writeFileSync(join(upper, 'etc/only'), 'only this in etc');
    writeFileSync(join(upper, 'added'), 'added in the upper dir');

    const r = await diff().diff({ left: a, right: b, mediaType: ZST });
    const blob = await read(r.diff!.digest);
    execFileSync('zstd', ['-q', '-t'], { input: blob });
    const check = (await snapshots().prepare({ snapshotter: SN, key: 'ov-check', parent: 'ov-A' })).mounts;
    await diff().apply({ diff: r.diff!, mounts: check });
    const got = describeTree(mountAt(check, 'ov-check-mnt'), { withDirTimes: true });
    const want = describeTree(mountAt(b, 'ov-b-mnt'), { withDirTimes: true });
    t.ok(want.some((e) => e.path === 'etc/only') && !want.some((e) => e.path === 'etc/owner' || e.path === 'dir2file'), 'right hides what its upper dir deletes');
    t.same(got, want, `left + layer = right, through overlay mounts (${want.length} entries)`);
    await nothingLeft(t);
  });

  t.test('bad input: clear errors, and nothing left behind', async (t) => {
    const left = join(d.dir, 'left');
    t.match(await status(diff().diff({ left: [bind(left)], right: [] })), /^INVALID_ARGUMENT: diff: no right mounts/);
    t.match(await status(diff().diff({ left: [{ type: 'tmpfs', source: 'x', options: [] }], right: [bind(left)] })), /^UNIMPLEMENTED: mount type "tmpfs"/);
    t.match(await status(diff().diff({ left: [], right: [bind(left)], mediaType: 'application/vnd.oci.image.layer.v1.tar+lz4' })), /^UNIMPLEMENTED: .*tar\+lz4/);
    t.match(await status(diff().diff({ left: [], right: [{ type: 'overlay', source: 'overlay', options: ['index=off'] }] })), /^INVALID_ARGUMENT: overlay mount without upperdir or lowerdir/);
    // left mounts, then right's mount fails: left is taken down again
    const missing = join(d.dir, 'no-such-dir');
    const e = await status(diff().diff({ left: [bind(left)], right: [bind(missing)] }));
    t.match(e, /no-such-dir/);
    // an overlay the kernel refuses (lowerdirs that do not exist)
    t.match(await status(diff().diff({ left: [bind(left)], right: [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${missing}:${missing}2`] }] })), /mount|no-such-dir/);
    await nothingLeft(t);
  });

  t.test('a walk that fails half way or is left early takes its temp mounts down first', async (t) => {
    const tmp = join(d.dir, 'walk-tmp');
    const left = join(d.dir, 'left');
    const sets = [readonlyMounts([{ type: 'bind', source: left, options: ['rw'] }]), []];
    const seen: string[] = [];
    const failing = withTempMounts(tmp, sets, async function* ([l, r]) {
      seen.push(...readdirSync(l!).slice(0, 1), `right:${readdirSync(r!).length}`);
      t.ok(readFileSync('/proc/self/mountinfo', 'utf8').includes(tmp), 'mounted while the walk runs');
      t.throws(() => writeFileSync(join(l!, 'bin/new'), 'x'), { code: 'EROFS' }, 'read-only');
      yield 1;
      throw new Error('walk failed');
    });
    await t.rejects(
      (async () => {
        for await (const _ of failing) void _;
      })(),
      /walk failed/,
    );
    t.same(seen, ['bin', 'right:0'], 'left mounted, an empty set is an empty dir');
    t.same(readdirSync(tmp), [], 'no temp dir after a failure');
    t.notOk(readFileSync('/proc/self/mountinfo', 'utf8').includes(tmp), 'no mount after a failure');
    for await (const _ of withTempMounts(tmp, sets, async function* () {
      yield* [1, 2, 3];
    })) {
      void _;
      break;
    }
    t.same(readdirSync(tmp), [], 'no temp dir after the caller stopped early');
    t.notOk(readFileSync('/proc/self/mountinfo', 'utf8').includes(tmp), 'no mount after the caller stopped early');
  });
});
