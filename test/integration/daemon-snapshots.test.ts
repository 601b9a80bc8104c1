// tsrund's Snapshots and Diff services through the TS client: every
// Snapshots method with containerd's codes, Apply of layer blobs from the
// content store onto a bind and an overlay upper dir (as ctr's unpack does),
// Diff back into the content store and a round trip through Apply, and the
// garbage collector removing snapshots nothing references.
// Namespaces start with "ds".
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { Content, WriteAction } from '../../src/gen/containerd/services/content/v1/content_pb.js';
import { Diff } from '../../src/gen/containerd/services/diff/v1/diff_pb.js';
import { Kind, Snapshots } from '../../src/gen/containerd/services/snapshots/v1/snapshots_pb.js';
import { Leases } from '../../src/gen/containerd/services/leases/v1/leases_pb.js';
import { Events } from '../../src/gen/containerd/services/events/v1/events_pb.js';
import { SnapshotCommitSchema, SnapshotPrepareSchema, SnapshotRemoveSchema } from '../../src/gen/containerd/events/snapshot_pb.js';
import { fromBinary } from '@bufbuild/protobuf';
import { connect, type Connection } from '../../src/client/index.js';
import { tarArchive } from '../../src/archive/tar-writer.js';
import { TarReader, type TarHeader } from '../../src/archive/tar.js';
import { getxattr, lsetxattrRaw } from '../../src/linux/fsat.js';
import { needsRoot } from '../helpers/cli.js';
import { startTsrund, type RunningDaemon } from '../helpers/daemon.js';

const SN = 'overlayfs';
const GZ = 'application/vnd.oci.image.layer.v1.tar+gzip';
const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const status = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'OK',
    (e: grpc.ServiceError) => `${grpc.status[e.code]}: ${e.details}`,
  );

t.test('Snapshots and Diff over gRPC', { skip: needsRoot }, async (t) => {
  let d: RunningDaemon;
  let conn: Connection;
  const mounted: string[] = [];
  t.before(async () => {
    d = await startTsrund();
    conn = connect(d.address, { namespace: 'ds' });
    await conn.ready();
  });
  t.teardown(async () => {
    for (const m of mounted) execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    conn?.close();
    await d?.stop();
  });
  const snapshots = () => conn.service(Snapshots);
  const diff = () => conn.service(Diff);
  const snapDirs = () => readdirSync(join(d.root, 'snapshots', SN, 'snapshots')).sort();

  /** A blob into the content store in one Write session. */
  async function put(b: Buffer): Promise<string> {
    const digest = sha(b);
    const call = conn.service(Content).write();
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', () => {});
      call.on('error', reject);
      call.on('end', resolve);
    });
    call.write({ action: WriteAction.COMMIT, ref: `put-${digest}`, data: b, total: BigInt(b.length), expected: digest, offset: 0n, labels: {} });
    call.end();
    await done;
    return digest;
  }
  async function read(digest: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const m of conn.service(Content).read({ digest })) chunks.push(Buffer.from(m.data));
    return Buffer.concat(chunks);
  }
  async function names(filters: string[] = []): Promise<string[]> {
    const out: string[] = [];
    for await (const m of snapshots().list({ snapshotter: SN, filters })) out.push(...m.info.map((i) => i.name));
    return out.sort();
  }

  const layer1 = tarArchive([
    { name: 'bin/', type: 'dir', mode: 0o755 },
    { name: 'bin/tool', type: 'file', mode: 0o4755, data: 'tool' },
    { name: 'etc/old/', type: 'dir', mode: 0o755 },
    { name: 'etc/old/a', type: 'file', mode: 0o644, data: 'a' },
    { name: 'gone', type: 'file', mode: 0o644, data: 'g' },
  ]);
  const layer2 = tarArchive([
    { name: '.wh.gone', type: 'file', mode: 0 },
    { name: 'etc/old/', type: 'dir', mode: 0o755 },
    { name: 'etc/old/.wh..wh..opq', type: 'file', mode: 0 },
    { name: 'etc/old/b', type: 'file', mode: 0o644, data: 'b' },
  ]);

  t.test('Apply layers as ctr unpacks them: a bind for the first, an overlay upper dir for the next', async (t) => {
    const b1 = await put(gzipSync(layer1));
    const b2 = await put(gzipSync(layer2));
    const m1 = (await snapshots().prepare({ snapshotter: SN, key: 'extract-1', parent: '' })).mounts;
    t.same(
      m1.map((m) => [m.type, m.options]),
      [['bind', ['rw', 'rbind']]],
    );
    const a1 = await diff().apply({ diff: { mediaType: GZ, digest: b1, size: 0n }, mounts: m1 });
    t.same([a1.applied?.mediaType, a1.applied?.digest, Number(a1.applied?.size)], ['application/vnd.oci.image.layer.v1.tar', sha(layer1), layer1.length], 'applied: the uncompressed descriptor');
    await snapshots().commit({ snapshotter: SN, name: 'l1', key: 'extract-1' });
    const m2 = (await snapshots().prepare({ snapshotter: SN, key: 'extract-2', parent: 'l1' })).mounts;
    t.equal(m2[0]?.type, 'overlay');
    const a2 = await diff().apply({ diff: { mediaType: GZ, digest: b2, size: 0n }, mounts: m2 });
    t.equal(a2.applied?.digest, sha(layer2));
    const upper = m2[0]!.options.find((o) => o.startsWith('upperdir='))!.slice('upperdir='.length);
    t.ok(lstatSync(join(upper, 'gone')).isCharacterDevice(), 'overlay whiteout in the upper dir');
    t.equal(getxattr(join(upper, 'etc/old'), 'trusted.overlay.opaque')?.toString(), 'y');
    await snapshots().commit({ snapshotter: SN, name: 'l2', key: 'extract-2' });

    const view = (await snapshots().view({ snapshotter: SN, key: 'view-l2', parent: 'l2' })).mounts;
    const target = join(d.dir, 'view-l2');
    mkdirSync(target);
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', view[0]!.options.join(','), target]);
    mounted.push(target);
    t.same(readdirSync(target).sort(), ['bin', 'etc']);
    t.same(readdirSync(join(target, 'etc/old')), ['b']);
    t.equal(lstatSync(join(target, 'bin/tool')).mode & 0o7777, 0o4755);
    execFileSync('umount', [target]);
    mounted.pop();

    t.match(await status(diff().apply({ diff: { mediaType: GZ, digest: b1, size: 0n }, mounts: view })), /^INVALID_ARGUMENT: .*read-only/, 'a view is not a target');
    t.match(await status(diff().apply({ diff: { mediaType: GZ, digest: sha(Buffer.from('nope')), size: 0n }, mounts: m2 })), /^NOT_FOUND/);
    t.match(
      await status(diff().apply({ diff: { mediaType: 'application/vnd.oci.image.layer.v1.tar+lz4', digest: b1, size: 0n }, mounts: m2 })),
      /^UNIMPLEMENTED: unsupported layer media type/,
    );
    // written on tsrund's layer thread: the error comes back whole
    const notTar = await put(gzipSync(Buffer.alloc(1024, 0x41)));
    t.match(await status(diff().apply({ diff: { mediaType: GZ, digest: notTar, size: 0n }, mounts: m2 })), /invalid tar archive: checksum field is not an octal number: "AAAAAAAA" \(at byte 0\)/, "a layer that is not a tar: what is wrong, where");
    t.match(await status(diff().apply({ diff: { mediaType: GZ, digest: b1, size: 0n }, mounts: [{ type: 'tmpfs', source: 'x', options: [] }] })), /^UNIMPLEMENTED: mount type "tmpfs"/);
  });

  t.test('Diff writes the upper dir as a layer into content; Apply of it gives the same tree', async (t) => {
    const work = (await snapshots().prepare({ snapshotter: SN, key: 'work', parent: 'l2' })).mounts;
    const target = join(d.dir, 'work');
    mkdirSync(target);
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', work[0]!.options.join(','), target]);
    mounted.push(target);
    writeFileSync(join(target, 'new'), 'new file');
    execFileSync('rm', ['-rf', join(target, 'bin')]);
    execFileSync('umount', [target]);
    mounted.pop();
    const left = (await snapshots().view({ snapshotter: SN, key: 'left', parent: 'l2' })).mounts;
    const r = await diff().diff({ left, right: work, mediaType: GZ, ref: 'ds-diff-1', labels: { made: 'by-test' } });
    const desc = r.diff!;
    t.equal(desc.mediaType, GZ);
    const blob = await read(desc.digest);
    t.equal(sha(blob), desc.digest);
    const tar = gunzipSync(blob);
    const info = await conn.service(Content).info({ digest: desc.digest });
    t.same(info.info?.labels, { made: 'by-test', 'containerd.io/uncompressed': sha(tar) }, 'labels with the uncompressed digest');
    const entries: TarHeader[] = [];
    const reader = new TarReader({ entry: (h) => void entries.push(h), data: () => {}, endEntry: () => {} });
    reader.write(tar);
    reader.end();
    t.same(
      entries.map((e) => `${e.type} ${e.name}`),
      ['file .wh.bin', 'file new'],
      'a removed directory becomes a whiteout, a new file itself',
    );

    const again = (await snapshots().prepare({ snapshotter: SN, key: 'again', parent: 'l2' })).mounts;
    const applied = await diff().apply({ diff: desc, mounts: again });
    t.equal(applied.applied?.digest, sha(tar));
    const upper = again[0]!.options.find((o) => o.startsWith('upperdir='))!.slice('upperdir='.length);
    t.same(readdirSync(upper).sort(), ['bin', 'new']);
    t.ok(lstatSync(join(upper, 'bin')).isCharacterDevice());
    t.equal(readFileSync(join(upper, 'new'), 'utf8'), 'new file');
    for (const k of ['again', 'left', 'work', 'view-l2']) await snapshots().remove({ snapshotter: SN, key: k });
  });

  t.test('Diff of a first layer (a bind against no mounts) keeps every file type and attribute through Apply', async (t) => {
    const solo = (await snapshots().prepare({ snapshotter: SN, key: 'solo', parent: '' })).mounts;
    const fs = solo[0]!.source;
    mkdirSync(join(fs, 'bin'));
    writeFileSync(join(fs, 'bin/tool'), 'tool');
    execFileSync('chown', ['12:34', join(fs, 'bin/tool')]);
    execFileSync('chmod', ['4750', join(fs, 'bin/tool')]);
    execFileSync('ln', [join(fs, 'bin/tool'), join(fs, 'bin/hard')]);
    execFileSync('ln', ['-s', '/bin/tool', join(fs, 'bin/abs')]);
    execFileSync('mknod', [join(fs, 'null'), 'c', '1', '3']);
    execFileSync('mkfifo', [join(fs, 'fifo')]);
    const cap = Buffer.from('0100000200040000000000000000000000000000', 'hex');
    t.equal(lsetxattrRaw(join(fs, 'bin/tool'), 'security.capability', cap), 0);
    const r = await diff().diff({ left: [], right: solo, mediaType: 'application/vnd.oci.image.layer.v1.tar' });
    const tar = await read(r.diff!.digest);
    t.equal(r.diff?.mediaType, 'application/vnd.oci.image.layer.v1.tar');
    const entries: TarHeader[] = [];
    const reader = new TarReader({ entry: (h) => void entries.push(h), data: () => {}, endEntry: () => {} });
    reader.write(tar);
    reader.end();
    t.same(
      entries.map((e) => `${e.type} ${e.name}${e.linkname ? ` -> ${e.linkname}` : ''}`),
      ['dir bin/', 'symlink bin/abs -> /bin/tool', 'file bin/hard', 'link bin/tool -> bin/hard', 'fifo fifo', 'char null'],
    );
    const dest = (await snapshots().prepare({ snapshotter: SN, key: 'solo-copy', parent: '' })).mounts;
    const blob = await put(gzipSync(tar));
    await diff().apply({ diff: { mediaType: GZ, digest: blob, size: 0n }, mounts: dest });
    const out = dest[0]!.source;
    const st = lstatSync(join(out, 'bin/tool'));
    t.same([st.mode & 0o7777, st.uid, st.gid, st.nlink], [0o4750, 12, 34, 2], 'mode with setuid, owner, hard link');
    t.ok(getxattr(join(out, 'bin/tool'), 'security.capability')?.equals(cap), 'file capability');
    t.ok(lstatSync(join(out, 'null')).isCharacterDevice() && lstatSync(join(out, 'null')).rdev === 0x103);
    t.ok(lstatSync(join(out, 'fifo')).isFIFO());
    for (const k of ['solo', 'solo-copy']) await snapshots().remove({ snapshotter: SN, key: k });
  });

  t.test('every Snapshots method with containerd codes', async (t) => {
    const st = await snapshots().stat({ snapshotter: SN, key: 'l2' });
    t.same([st.info?.name, st.info?.parent, st.info?.kind], ['l2', 'l1', Kind.COMMITTED]);
    const up = await snapshots().update({ snapshotter: SN, info: { name: 'l2', labels: { a: '1', b: '2' } }, updateMask: { paths: ['labels.a'] } });
    t.same(up.info?.labels, { a: '1' }, 'only the masked label');
    t.same(await names(), ['l1', 'l2']);
    t.same(await names(['labels.a==1']), ['l2']);
    t.match(await status(snapshots().mounts({ snapshotter: SN, key: 'l2' })), /^FAILED_PRECONDITION: requested snapshot l2 not active or view/, 'no mounts of a committed snapshot');
    const u = await snapshots().usage({ snapshotter: SN, key: 'l1' });
    t.ok(u.size > 0n && u.inodes >= 5n, `usage ${u.size} bytes, ${u.inodes} inodes`);
    t.match(await status(snapshots().prepare({ snapshotter: 'btrfs', key: 'x' })), /^INVALID_ARGUMENT: snapshotter not loaded: btrfs/);
    t.match(await status(snapshots().prepare({ snapshotter: '', key: 'x' })), /^INVALID_ARGUMENT: snapshotter argument missing/);
    t.match(await status(snapshots().prepare({ snapshotter: SN, key: 'l1' })), /^ALREADY_EXISTS/);
    t.match(await status(snapshots().stat({ snapshotter: SN, key: 'nope' })), /^NOT_FOUND/);
    t.match(await status(snapshots().remove({ snapshotter: SN, key: 'l1' })), /^FAILED_PRECONDITION: cannot remove snapshot with child/);
    t.match(await status(snapshots().commit({ snapshotter: SN, name: 'x', key: 'l1' })), /^FAILED_PRECONDITION/);
    t.match(await status(snapshots().prepare({ snapshotter: SN, key: 'x' }, { namespace: '' })), /^FAILED_PRECONDITION: namespace is required/);
    writeFileSync(join(d.root, 'snapshots', SN, 'snapshots', 'orphan'), '');
    t.equal(await status(snapshots().cleanup({ snapshotter: SN })), 'OK');
    t.notOk(existsSync(join(d.root, 'snapshots', SN, 'snapshots', 'orphan')), 'Cleanup removes what no record names');
  });

  t.test('Prepare, Commit and Remove publish /snapshot/ events', async (t) => {
    const seen: string[] = [];
    const sub = conn.service(Events).subscribe({ filters: ['topic~="^/snapshot/"'] });
    const reading = (async () => {
      try {
        for await (const e of sub) {
          const body = e.event ? fromBinary(e.topic === '/snapshot/prepare' ? SnapshotPrepareSchema : e.topic === '/snapshot/commit' ? SnapshotCommitSchema : SnapshotRemoveSchema, e.event.value) : undefined;
          seen.push(`${e.namespace} ${e.topic} ${JSON.stringify(body ? { ...body, $typeName: undefined } : {})}`);
        }
      } catch {
        /* cancelled */
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    await snapshots().prepare({ snapshotter: SN, key: 'ev', parent: 'l2' });
    await snapshots().commit({ snapshotter: SN, name: 'ev-c', key: 'ev' });
    await snapshots().remove({ snapshotter: SN, key: 'ev-c' });
    await new Promise((r) => setTimeout(r, 200));
    sub.cancel();
    await reading;
    t.same(seen, [
      'ds /snapshot/prepare {"key":"ev","parent":"l2"}',
      'ds /snapshot/commit {"key":"ev","name":"ev-c"}',
      'ds /snapshot/remove {"key":"ev-c"}',
    ]);
  });

  t.test('the garbage collector removes snapshots nothing references', async (t) => {
    const leases = conn.service(Leases);
    await leases.create({ id: 'ds-l' });
    await snapshots().prepare({ snapshotter: SN, key: 'leased', parent: 'l2' }, { lease: 'ds-l' });
    await snapshots().prepare({ snapshotter: SN, key: 'rooted', parent: '', labels: { 'containerd.io/gc.root': 'x' } });
    const before = snapDirs().length;
    await leases.delete({ id: 'ds-l', sync: true });
    t.same(await names(), ['rooted'], 'the leased one and the unreferenced layers went, gc.root stays');
    t.equal(snapDirs().length, 1, `their directories went too (${before} -> 1)`);
    await snapshots().remove({ snapshotter: SN, key: 'rooted' });
    t.same(snapDirs(), []);
  });
});
