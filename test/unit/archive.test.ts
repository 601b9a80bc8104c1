// The tar reader and writer without root: every header form (ustar, PAX with
// binary xattrs, GNU long names, base-256 numbers), archives GNU tar wrote,
// bad archives with the offset at fault, member names and whiteouts, and the
// layer media types.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TarReader, TarError, parseNumber, type TarHeader } from '../../src/archive/tar.js';
import { tarArchive, tarHeader, END_OF_ARCHIVE } from '../../src/archive/tar-writer.js';
import { splitMemberPath, whiteoutOf, whiteoutMember, opaqueMember } from '../../src/archive/paths.js';
import { layerCompression, sniffCompression } from '../../src/archive/layer.js';
import { ErrdefsError } from '../../src/errdefs.js';
import { lsetxattrRaw } from '../../src/linux/fsat.js';

interface Read {
  h: TarHeader;
  data: Buffer;
}

/** Feeds buf in pieces of `step` bytes; returns the entries with their contents. */
function read(buf: Buffer, step = buf.length): Read[] {
  const out: Read[] = [];
  let cur: Buffer[] = [];
  const r = new TarReader({
    entry: (h) => {
      out.push({ h, data: Buffer.alloc(0) });
      cur = [];
    },
    data: (c) => cur.push(Buffer.from(c)),
    endEntry: () => (out[out.length - 1]!.data = Buffer.concat(cur)),
  });
  for (let i = 0; i < buf.length; i += step) r.write(buf.subarray(i, i + step));
  r.end();
  return out;
}

const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // cap_net_bind_service+ep, with bytes >= 0x80 elsewhere below
const BINARY = Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0x80, 0xc3, 0x28, 0x00]);

t.test('writer -> reader round trip keeps every field, in any chunking', async (t) => {
  const long = `${'d'.repeat(120)}/${'f'.repeat(90)}`;
  const veryLong = 'x/'.repeat(150) + 'end';
  const archive = tarArchive([
    { name: 'dir/', type: 'dir', mode: 0o1755, uid: 1, gid: 2, mtime: { sec: 1_700_000_000, nsec: 0 } },
    { name: 'dir/file', type: 'file', mode: 0o4755, uid: 1000, gid: 1000, data: 'hello\n', mtime: { sec: 1_600_000_000, nsec: 123_456_789 } },
    { name: 'dir/cap', type: 'file', mode: 0o755, data: 'x', xattrs: new Map([['security.capability', CAP], ['user.bin', BINARY]]) },
    { name: 'dir/sym', type: 'symlink', mode: 0o777, linkname: '/abs/target' },
    { name: 'dir/hard', type: 'link', mode: 0o644, linkname: 'dir/file' },
    { name: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 },
    { name: 'dev/sda', type: 'block', mode: 0o660, devmajor: 8, devminor: 0 },
    { name: 'fifo', type: 'fifo', mode: 0o600 },
    { name: long, type: 'file', mode: 0o644, data: 'split' },
    { name: veryLong, type: 'file', mode: 0o644, data: 'pax path' },
    { name: 'biguid', type: 'file', mode: 0o644, uid: 0o7777777 + 5, gid: 3_000_000, data: '' },
  ]);
  for (const step of [archive.length, 1, 7, 511, 513]) {
    const r = read(archive, step);
    t.equal(r.length, 11, `step ${step}: all entries`);
    t.same(
      r.map((x) => [x.h.name, x.h.type]),
      [
        ['dir/', 'dir'],
        ['dir/file', 'file'],
        ['dir/cap', 'file'],
        ['dir/sym', 'symlink'],
        ['dir/hard', 'link'],
        ['dev/null', 'char'],
        ['dev/sda', 'block'],
        ['fifo', 'fifo'],
        [long, 'file'],
        [veryLong, 'file'],
        ['biguid', 'file'],
      ],
    );
    t.equal(r[0]!.h.mode, 0o1755);
    t.equal(r[1]!.h.mode, 0o4755, 'setuid kept');
    t.equal(r[1]!.data.toString(), 'hello\n');
    t.same(r[1]!.h.mtime, { sec: 1_600_000_000, nsec: 123_456_789 }, 'sub-second mtime through PAX');
    t.ok(r[2]!.h.xattrs!.get('security.capability')!.equals(CAP), 'security.capability bytes exact');
    t.ok(r[2]!.h.xattrs!.get('user.bin')!.equals(BINARY), 'non-UTF-8 xattr bytes exact');
    t.equal(r[3]!.h.linkname, '/abs/target');
    t.equal(r[4]!.h.linkname, 'dir/file');
    t.same([r[5]!.h.devmajor, r[5]!.h.devminor], [1, 3]);
    t.same([r[6]!.h.devmajor, r[6]!.h.devminor], [8, 0]);
    t.equal(r[8]!.data.toString(), 'split');
    t.equal(r[9]!.data.toString(), 'pax path');
    t.same([r[10]!.h.uid, r[10]!.h.gid], [0o7777777 + 5, 3_000_000], 'ids beyond ustar through PAX');
  }
});

t.test('archives written by GNU tar: posix with xattrs, gnu long names', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsrunc-archive-unit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'src');
  const deep = join(src, 'a'.repeat(60), 'b'.repeat(60));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, `${'c'.repeat(80)}.txt`), 'deep');
  symlinkSync(`/${'t'.repeat(150)}`, join(src, 'longlink'));
  // user xattrs may be refused by the file system here (tmpfs before 6.6): that part is skipped below
  const xattrs = lsetxattrRaw(join(deep, `${'c'.repeat(80)}.txt`), 'user.test', Buffer.from([0, 0xff, 0x80, 1])) === 0;
  for (const format of ['posix', 'gnu']) {
    const tar = execFileSync('tar', ['-C', src, `--format=${format}`, '--xattrs', '--xattrs-include=*', '-cf', '-', '.']);
    const r = read(tar, 1000);
    const file = r.find((x) => x.h.name.endsWith('.txt'))!;
    t.ok(file, `${format}: long path found`);
    t.equal(file.h.name, `./${'a'.repeat(60)}/${'b'.repeat(60)}/${'c'.repeat(80)}.txt`);
    t.equal(file.data.toString(), 'deep');
    const link = r.find((x) => x.h.name === './longlink')!;
    t.equal(link.h.linkname, `/${'t'.repeat(150)}`, `${format}: long link name`);
    if (xattrs && format === 'posix') t.ok(file.h.xattrs?.get('user.test')?.equals(Buffer.from([0, 0xff, 0x80, 1])), 'binary xattr from GNU tar');
  }
  if (!xattrs) t.comment('user xattrs refused by the file system of the temp dir: GNU tar xattr check skipped');
});

t.test('base-256 numbers and octal fields', async (t) => {
  const b = Buffer.alloc(12);
  b[0] = 0x80;
  b.writeUIntBE(2 ** 40, 6, 6);
  t.equal(parseNumber(b, 0, 12, 'size', 0), 2 ** 40);
  b[0] = 0xff;
  t.throws(() => parseNumber(b, 0, 12, 'uid', 0), /negative uid/);
  const o = Buffer.from(' 0000755\0');
  t.equal(parseNumber(o, 0, 9, 'mode', 0), 0o755);
  t.throws(() => parseNumber(Buffer.from('12x4567\0'), 0, 8, 'mode', 512), TarError);
});

t.test('bad archives: checksum, truncation, unknown type, sparse; the offset is named', async (t) => {
  const good = tarArchive([
    { name: 'a', type: 'file', mode: 0o644, data: 'aaa' },
    { name: 'b', type: 'file', mode: 0o644, data: 'b'.repeat(2000) },
  ]);
  const bad = Buffer.from(good);
  bad[512 + 512 + 10] = bad[512 + 512 + 10]! ^ 0x41; // second header's name
  t.throws(() => read(bad), { name: 'TarError', message: /header checksum .* \(at byte 1024\)/ });
  t.throws(() => read(good.subarray(0, 1024 + 512 + 100)), { message: /unexpected end of archive/ }, 'cut inside contents');
  t.throws(() => read(good.subarray(0, 1024 + 200)), { message: /unexpected end of archive/ }, 'cut inside a header');
  t.same(
    read(good.subarray(0, 1024)).map((x) => x.h.name),
    ['a'],
    'cut at an entry boundary reads as complete (Go archive/tar)',
  );
  const weird = tarHeader({ name: 'x', type: 'file', mode: 0o644 });
  weird[156] = 0x53; // 'S' GNU sparse
  weird.fill(0x20, 148, 156);
  let sum = 0;
  for (const v of weird) sum += v;
  weird.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  t.throws(() => read(Buffer.concat([weird, END_OF_ARCHIVE])), /GNU sparse files are not supported/);
  t.throws(() => read(Buffer.from('not a tar at all, just some text'.repeat(20))), TarError);
});

t.test('member names are cleaned as containerd cleans them', async (t) => {
  t.same(splitMemberPath('./a/b/c'), { parent: 'a/b', base: 'c', path: 'a/b/c' });
  t.same(splitMemberPath('/etc/passwd'), { parent: 'etc', base: 'passwd', path: 'etc/passwd' });
  t.same(splitMemberPath('../../../etc/shadow'), { parent: 'etc', base: 'shadow', path: 'etc/shadow' });
  t.same(splitMemberPath('a/../../b'), { parent: '', base: 'b', path: 'b' });
  t.equal(splitMemberPath('./'), undefined);
  t.equal(splitMemberPath('..'), undefined);
});

t.test('whiteout names', async (t) => {
  t.same(whiteoutOf('.wh..wh..opq'), { kind: 'opaque' });
  t.same(whiteoutOf('.wh.foo'), { kind: 'whiteout', name: 'foo' });
  t.same(whiteoutOf('.wh..wh.plnk'), { kind: 'meta' });
  t.equal(whiteoutOf('foo'), undefined);
  t.throws(() => whiteoutOf('.wh...'), /invalid whiteout/);
  t.throws(() => whiteoutOf('.wh.'), /invalid whiteout/);
  t.equal(whiteoutMember('a/b'), 'a/.wh.b');
  t.equal(whiteoutMember('b'), '.wh.b');
  t.equal(opaqueMember('a'), 'a/.wh..wh..opq');
  t.equal(opaqueMember(''), '.wh..wh..opq');
});

t.test('layer media types and compression sniffing', async (t) => {
  t.equal(layerCompression('application/vnd.oci.image.layer.v1.tar'), 'none');
  t.equal(layerCompression('application/vnd.oci.image.layer.v1.tar+gzip'), 'gzip');
  t.equal(layerCompression('application/vnd.oci.image.layer.v1.tar+zstd'), 'zstd');
  t.equal(layerCompression('application/vnd.docker.image.rootfs.diff.tar.gzip'), 'gzip');
  t.equal(layerCompression('application/vnd.docker.image.rootfs.diff.tar'), 'unknown');
  t.throws(() => layerCompression('application/vnd.oci.image.layer.v1.tar+bzip2'), ErrdefsError);
  t.throws(() => layerCompression('application/vnd.oci.image.config.v1+json'), /unsupported layer media type/);
  t.equal(sniffCompression(Buffer.from([0x1f, 0x8b, 0x08, 0])), 'gzip');
  t.equal(sniffCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0])), 'zstd');
  t.equal(sniffCompression(Buffer.from('ustar')), 'none');
});
