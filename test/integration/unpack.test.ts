// Layers written into directories and snapshots by the fd-relative applier:
// every file type and attribute, OCI whiteouts as overlay whiteouts (checked
// through a real overlay mount), gzip and zstd, a hostile layer per trick
// (nothing lands outside the snapshot), corrupt archives and a full disk
// (the snapshot is removed, the error says why).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { needsRoot } from '../helpers/cli.js';
import { applyLayer, MEDIA_TYPE_LAYER, MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_LAYER_ZSTD } from '../../src/archive/layer.js';
import { tarArchive, type TarEntry } from '../../src/archive/tar-writer.js';
import { getxattr } from '../../src/linux/fsat.js';
import { openMetadata } from '../../src/metadata/index.js';
import { OverlaySnapshotter } from '../../src/snapshots/overlay.js';
import { LayerUnpacker } from '../../src/snapshots/unpacker.js';
import { zstdUnavailable } from '../../src/archive/zstd.js';

type E = TarEntry & { data?: string | Uint8Array };

const CAP = Buffer.from('01000002000400000000000000000000000000000000', 'hex').subarray(0, 20); // vfs cap v2: cap_net_bind_service, permitted+effective
CAP.writeUInt32LE(0x02000001, 0); // VFS_CAP_REVISION_2 | effective
CAP.writeUInt32LE(1 << 10, 4); // CAP_NET_BIND_SERVICE permitted

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const mounted: string[] = [];

t.test('unpack', { skip: needsRoot }, async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'tsrunc-unpack-'));
  t.teardown(() => {
    for (const m of mounted.reverse()) {
      try {
        execFileSync('umount', ['-l', m], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
    }
    rmSync(base, { recursive: true, force: true });
  });
  let n = 0;
  const fresh = (): string => {
    const d = join(base, `d${n++}`);
    mkdirSync(d);
    return d;
  };
  const apply = (entries: E[], root: string, whiteouts: 'overlay' | 'remove' = 'overlay') =>
    applyLayer(Readable.from([tarArchive(entries)]), MEDIA_TYPE_LAYER, { root, whiteouts });

  t.test('every file type and attribute', async (t) => {
    const root = fresh();
    const tar = tarArchive([
      { name: 'etc/', type: 'dir', mode: 0o750, uid: 10, gid: 20, mtime: { sec: 1_500_000_000, nsec: 0 } },
      { name: 'etc/conf', type: 'file', mode: 0o640, uid: 1000, gid: 1001, data: 'conf\n', mtime: { sec: 1_600_000_000, nsec: 123_456_789 } },
      { name: 'bin/su', type: 'file', mode: 0o4755, uid: 0, gid: 0, data: 'suid' },
      { name: 'bin/sg', type: 'file', mode: 0o2755, gid: 50, data: 'sgid' },
      { name: 'bin/ping', type: 'file', mode: 0o755, data: 'ping', xattrs: new Map([['security.capability', CAP]]) },
      { name: 'bin/user', type: 'file', mode: 0o644, data: 'u', xattrs: new Map([['user.bin', Buffer.from([0xff, 0, 0x80])]]) },
      { name: 'bin/abs', type: 'symlink', mode: 0o777, linkname: '/bin/su', uid: 7, gid: 8 },
      { name: 'bin/rel', type: 'symlink', mode: 0o777, linkname: '../etc/conf' },
      // a hard link's header carries its inode's attributes (they are applied to it again, as containerd does)
      { name: 'bin/hard', type: 'link', mode: 0o640, uid: 1000, gid: 1001, linkname: 'etc/conf', mtime: { sec: 1_600_000_000, nsec: 123_456_789 } },
      { name: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 },
      { name: 'dev/loop9', type: 'block', mode: 0o660, devmajor: 7, devminor: 9, gid: 6 },
      { name: 'run/fifo', type: 'fifo', mode: 0o620 },
      { name: 'tmp/', type: 'dir', mode: 0o1777 },
    ] as E[]);
    const r = await applyLayer(Readable.from([gzipSync(tar)]), MEDIA_TYPE_LAYER_GZIP, { root, whiteouts: 'overlay' });
    t.equal(r.diffId, sha(tar), 'diff ID is the sha256 of the uncompressed tar');
    t.equal(r.size, tar.length);
    const st = (p: string) => lstatSync(join(root, p));
    t.equal(st('etc').mode & 0o7777, 0o750);
    t.same([st('etc').uid, st('etc').gid], [10, 20]);
    t.equal(st('etc').mtimeMs, 1_500_000_000_000, 'directory mtime set after its contents');
    t.equal(readFileSync(join(root, 'etc/conf'), 'utf8'), 'conf\n');
    t.same([st('etc/conf').uid, st('etc/conf').gid, st('etc/conf').mode & 0o7777], [1000, 1001, 0o640]);
    t.equal(lstatSync(join(root, 'etc/conf'), { bigint: true }).mtimeNs, 1_600_000_000_123_456_789n, 'nanosecond mtime');
    t.equal(st('bin/su').mode & 0o7777, 0o4755, 'setuid kept');
    t.equal(st('bin/sg').mode & 0o7777, 0o2755, 'setgid kept (mode set after chown)');
    const cap = getxattr(join(root, 'bin/ping'), 'security.capability');
    t.ok(cap?.equals(CAP), 'file capability bytes exact');
    t.ok(getxattr(join(root, 'bin/user'), 'user.bin')?.equals(Buffer.from([0xff, 0, 0x80])), 'binary user xattr');
    t.equal(readlinkSync(join(root, 'bin/abs')), '/bin/su', 'absolute symlink kept as is');
    t.same([st('bin/abs').uid, st('bin/abs').gid], [7, 8], 'symlink owner');
    t.equal(readlinkSync(join(root, 'bin/rel')), '../etc/conf');
    t.equal(st('bin/hard').ino, st('etc/conf').ino, 'hard link shares the inode');
    t.ok(st('dev/null').isCharacterDevice());
    t.equal(st('dev/null').rdev, 0x103);
    t.ok(st('dev/loop9').isBlockDevice());
    t.equal(st('dev/loop9').rdev, (7 << 8) | 9);
    t.ok(st('run/fifo').isFIFO());
    t.equal(st('run/fifo').mode & 0o7777, 0o620);
    t.equal(st('tmp').mode & 0o7777, 0o1777, 'sticky bit');
    t.equal(st('bin').mode & 0o7777, 0o755, 'implicit parent 0755');
  });

  t.test('whiteouts: overlay form in an upper dir, seen through a real overlay mount', async (t) => {
    const meta = openMetadata(join(base, 'meta-wh'));
    t.teardown(() => meta.close());
    const sn = OverlaySnapshotter.open(join(base, 'root-wh'), meta);
    const up = new LayerUnpacker(sn);
    const l1 = tarArchive([
      { name: 'keep', type: 'file', mode: 0o644, data: 'k' },
      { name: 'gone', type: 'file', mode: 0o644, data: 'g' },
      { name: 'gonedir/x', type: 'file', mode: 0o644, data: 'x' },
      { name: 'opq/old', type: 'file', mode: 0o644, data: 'old' },
      { name: 'opq/', type: 'dir', mode: 0o711 },
    ]);
    const l2 = tarArchive([
      { name: '.wh.gone', type: 'file', mode: 0o644 },
      { name: '.wh.gonedir', type: 'file', mode: 0o644 },
      { name: 'opq/', type: 'dir', mode: 0o755 },
      { name: 'opq/.wh..wh..opq', type: 'file', mode: 0o644 },
      { name: 'opq/new', type: 'file', mode: 0o644, data: 'new' },
      { name: 'deep/a/.wh.nothing', type: 'file', mode: 0o644 },
    ]);
    const r1 = await up.unpackLayer({ namespace: 'default', parentChainId: undefined, chainId: 'sha256:l1', blob: Readable.from([l1]), mediaType: MEDIA_TYPE_LAYER, lease: undefined });
    t.equal(r1.diffId, sha(l1));
    const r2 = await up.unpackLayer({ namespace: 'default', parentChainId: 'sha256:l1', chainId: 'sha256:l2', blob: Readable.from([l2]), mediaType: MEDIA_TYPE_LAYER, lease: undefined });
    t.equal(r2.diffId, sha(l2));
    const upper = sn.resolveDirs('default', 'sha256:l2').upper;
    const wh = lstatSync(join(upper, 'gone'));
    t.ok(wh.isCharacterDevice() && wh.rdev === 0, 'whiteout is a 0:0 character device');
    t.ok(lstatSync(join(upper, 'gonedir')).isCharacterDevice(), 'directory whiteout');
    t.equal(getxattr(join(upper, 'opq'), 'trusted.overlay.opaque')?.toString(), 'y', 'opaque xattr');
    t.equal(lstatSync(join(upper, 'deep')).mode & 0o7777, 0o755, 'implicit parent of a whiteout');

    const mounts = sn.view('default', 'v-wh', 'sha256:l2');
    t.equal(mounts[0]!.type, 'overlay');
    const target = fresh();
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', mounts[0]!.options.join(','), target]);
    mounted.push(target);
    t.same(readdirSync(target).sort(), ['deep', 'keep', 'opq']);
    t.same(readdirSync(join(target, 'opq')), ['new'], 'opaque dir hides the lower contents');
    execFileSync('umount', [target]);
    mounted.pop();
    await sn.remove('default', 'v-wh');
  });

  t.test('staged layers: implicit parents listed, then given the attributes of the layers below', async (t) => {
    const meta = openMetadata(join(base, 'meta-staged'));
    t.teardown(() => meta.close());
    const sn = OverlaySnapshotter.open(join(base, 'root-staged'), meta);
    const up = new LayerUnpacker(sn);
    const blobDir = fresh();
    const blobOf = (name: string, entries: Array<TarEntry & { data?: string }>): string => {
      const p = join(blobDir, name);
      writeFileSync(p, tarArchive(entries));
      return p;
    };
    const lower = blobOf('lower', [
      { name: 'a/', type: 'dir', mode: 0o750, uid: 7, gid: 8 },
      { name: 'a/b/', type: 'dir', mode: 0o700, uid: 9, gid: 9 },
    ]);
    const upper = blobOf('upper', [
      { name: 'a/b/c', type: 'file', mode: 0o644, data: 'c' },
      { name: 'x/y', type: 'file', mode: 0o644, data: 'y' },
      { name: 'x/', type: 'dir', mode: 0o711 },
    ]);
    // the upper one is written first: the lower one is not there yet
    const s2 = await up.extractStaged({ blobPath: upper, mediaType: MEDIA_TYPE_LAYER });
    t.same(s2.implicitParents, ['a', 'a/b'], 'implicit parents, parents first; x has an entry of its own later');
    t.equal(lstatSync(join(s2.fs, 'a', 'b')).mode & 0o7777, 0o755, 'made 0755 for now');
    const s1 = await up.extractStaged({ blobPath: lower, mediaType: MEDIA_TYPE_LAYER });
    await up.commitStaged({ namespace: 'default', parentChainId: undefined, chainId: 'sha256:s1', lease: undefined, staged: s1 });
    await up.commitStaged({ namespace: 'default', parentChainId: 'sha256:s1', chainId: 'sha256:s2', lease: undefined, staged: s2 });
    const dir = join(sn.root, 'snapshots', String(sn.store.get('default', 'sha256:s2').id), 'fs');
    const st = (p: string) => lstatSync(join(dir, p));
    t.same([st('a').mode & 0o7777, st('a').uid, st('a').gid], [0o750, 7, 8], 'a from the layer below');
    t.same([st('a/b').mode & 0o7777, st('a/b').uid], [0o700, 9], 'a/b from the layer below');
    t.equal(st('x').mode & 0o7777, 0o711, "x keeps its own entry's mode");
    t.same(readdirSync(sn.root).filter((e) => e.startsWith('new-')), [], 'no staged directory left');
    const s3 = await up.extractStaged({ blobPath: upper, mediaType: MEDIA_TYPE_LAYER });
    up.discardStaged(s3);
    t.notOk(existsSync(s3.dir), 'a discarded staged layer is removed');
    await t.rejects(up.extractStaged({ blobPath: blobOf('bad', []).replace(/bad$/, 'missing'), mediaType: MEDIA_TYPE_LAYER }), /ENOENT/, 'a failure ...');
    t.same(readdirSync(sn.root).filter((e) => e.startsWith('new-')), [], '... leaves no staged directory');
  });

  t.test('whiteouts in remove mode (a plain directory) delete', async (t) => {
    const root = fresh();
    await apply([{ name: 'a/x', type: 'file', mode: 0o644 }, { name: 'a/y', type: 'file', mode: 0o644 }, { name: 'b', type: 'file', mode: 0o644 }], root, 'remove');
    await apply([{ name: '.wh.b', type: 'file', mode: 0o644 }, { name: 'a/.wh..wh..opq', type: 'file', mode: 0o644 }, { name: 'a/z', type: 'file', mode: 0o644 }], root, 'remove');
    t.same(readdirSync(root).sort(), ['a']);
    t.same(readdirSync(join(root, 'a')), ['z']);
  });

  t.test('what is in the way is replaced: a symlink by a directory, a directory by a file', async (t) => {
    const root = fresh();
    await apply(
      [
        { name: 'sub/', type: 'dir', mode: 0o755 },
        { name: 'lnk', type: 'symlink', mode: 0o777, linkname: 'sub' },
        { name: 'lnk/through', type: 'file', mode: 0o644, data: '1' },
        { name: 'lnk/', type: 'dir', mode: 0o700 },
        { name: 'lnk/own', type: 'file', mode: 0o644, data: '2' },
        { name: 'd/x/y', type: 'file', mode: 0o644 },
        { name: 'd', type: 'file', mode: 0o600, data: 'now a file' },
      ],
      root,
    );
    t.same(readdirSync(join(root, 'sub')), ['through'], 'written through the in-root symlink while it was one');
    t.ok(lstatSync(join(root, 'lnk')).isDirectory());
    t.same(readdirSync(join(root, 'lnk')), ['own'], 'after the symlink became a directory, members go into it');
    t.equal(readFileSync(join(root, 'd'), 'utf8'), 'now a file');
  });

  const zstdSkip = zstdUnavailable() ?? (existsSync('/usr/bin/zstd') ? false : 'the zstd command (Debian package zstd) makes the fixture and is not installed');
  t.test('zstd layers through the system libzstd', { skip: zstdSkip }, async (t) => {
    const tar = tarArchive([{ name: 'z', type: 'file', mode: 0o644, data: 'zstd!'.repeat(1000) }]);
    const z = execFileSync('zstd', ['-q', '-c'], { input: tar });
    const root = fresh();
    const r = await applyLayer(Readable.from([z.subarray(0, 7), z.subarray(7)]), MEDIA_TYPE_LAYER_ZSTD, { root, whiteouts: 'overlay' });
    t.equal(r.diffId, sha(tar));
    t.equal(readFileSync(join(root, 'z'), 'utf8'), 'zstd!'.repeat(1000));
    await t.rejects(
      applyLayer(Readable.from([z.subarray(0, z.length - 5)]), MEDIA_TYPE_LAYER_ZSTD, { root: fresh(), whiteouts: 'overlay' }),
      /zstd stream is truncated|unexpected end/,
    );
  });

  t.test('hostile layers write nothing outside the root', async (t) => {
    const host = fresh();
    const hostFile = join(host, 'secret');
    writeFileSync(hostFile, 'host data');
    const hostBefore = (): string => JSON.stringify(readdirSync(host).sort()) + readFileSync(hostFile, 'utf8') + statSync(hostFile).nlink;
    const before = hostBefore();
    const cases: Array<[string, E[]]> = [
      ['../ in a member name', [{ name: `../../../../../../..${host}/dotdot`, type: 'file', mode: 0o644, data: 'x' }]],
      ['absolute member name', [{ name: `${host}/absolute`, type: 'file', mode: 0o644, data: 'x' }]],
      [
        'absolute symlink, then a write through it',
        [
          { name: 'evil', type: 'symlink', mode: 0o777, linkname: host },
          { name: 'evil/through-abs', type: 'file', mode: 0o644, data: 'x' },
        ],
      ],
      [
        'climbing relative symlink, then a write through it',
        [
          { name: 'a/b/evil', type: 'symlink', mode: 0o777, linkname: `../../../../../../../../..${host}` },
          { name: 'a/b/evil/through-rel', type: 'file', mode: 0o644, data: 'x' },
        ],
      ],
      [
        'symlink to a host file, then the same name as a file',
        [
          { name: 'over', type: 'symlink', mode: 0o777, linkname: hostFile },
          { name: 'over', type: 'file', mode: 0o644, data: 'overwrite' },
        ],
      ],
      ['hard link to a host file (absolute)', [{ name: 'hl', type: 'link', mode: 0o644, linkname: hostFile }]],
      ['hard link to a host file (climbing)', [{ name: 'hl2', type: 'link', mode: 0o644, linkname: `../../../../../../..${hostFile}` }]],
      [
        'hard link through a symlinked directory',
        [
          { name: 'sd', type: 'symlink', mode: 0o777, linkname: host },
          { name: 'hl3', type: 'link', mode: 0o644, linkname: 'sd/secret' },
        ],
      ],
      [
        'symlink to a host file, then a hard link to the symlink, then a write to the link',
        [
          { name: 's', type: 'symlink', mode: 0o777, linkname: hostFile },
          { name: 'h', type: 'link', mode: 0o644, linkname: 's' },
          { name: 'h', type: 'file', mode: 0o644, data: 'overwrite' },
        ],
      ],
      [
        'whiteout through a symlink',
        [
          { name: 'wd', type: 'symlink', mode: 0o777, linkname: host },
          { name: 'wd/.wh.secret', type: 'file', mode: 0o644 },
        ],
      ],
      [
        'opaque dir through a symlink',
        [
          { name: 'od', type: 'symlink', mode: 0o777, linkname: host },
          { name: 'od/.wh..wh..opq', type: 'file', mode: 0o644 },
        ],
      ],
      [
        'overlay attributes in the layer (redirect to a host path, opaque)',
        [{ name: 'redir/', type: 'dir', mode: 0o755, xattrs: new Map([['trusted.overlay.redirect', Buffer.from(host)], ['trusted.overlay.opaque', Buffer.from('y')]]) }],
      ],
      ['device node with a climbing name', [{ name: `../../..${host}/dev`, type: 'char', mode: 0o666, devmajor: 1, devminor: 3 }]],
    ];
    for (const [what, entries] of cases) {
      for (const mode of ['overlay', 'remove'] as const) {
        const root = fresh();
        let error = '';
        try {
          await apply(entries, root, mode);
        } catch (e) {
          error = (e as Error).message;
        }
        t.equal(hostBefore(), before, `${what} (${mode}): host dir and file unchanged${error ? ` (refused: ${error})` : ' (contained)'}`);
        if (!error && what.includes('name')) {
          // contained, not refused: the member landed inside the root
          const inside = execFileSync('find', [root, '-mindepth', '1'], { encoding: 'utf8' });
          t.match(inside, new RegExp(`${root}/`), `${what}: written inside the root`);
        }
      }
    }
    t.equal(readFileSync(hostFile, 'utf8'), 'host data');
    const root = fresh();
    const r = await apply([{ name: 'redir/', type: 'dir', mode: 0o755, xattrs: new Map([['trusted.overlay.redirect', Buffer.from(host)], ['user.ok', Buffer.from('1')]]) }], root);
    t.same(r.stats.skippedXattrs, ['redir/: trusted.overlay.redirect'], "the overlay's own attributes are not taken from a layer");
    t.equal(getxattr(join(root, 'redir'), 'trusted.overlay.redirect'), undefined);
    t.equal(getxattr(join(root, 'redir'), 'user.ok')?.toString(), '1');
  });

  t.test('corrupt layers: the snapshot is removed, the error says where', async (t) => {
    const meta = openMetadata(join(base, 'meta-bad'));
    t.teardown(() => meta.close());
    const sn = OverlaySnapshotter.open(join(base, 'root-bad'), meta);
    const up = new LayerUnpacker(sn);
    // fixed bytes: with random ones, zlib's complaint about the corrupt stream below varied from run to run
    let seed = 7;
    const noise = Buffer.alloc(100_000, 0).map(() => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
    const good = tarArchive([{ name: 'a', type: 'file', mode: 0o644, data: noise }]);
    const gz = gzipSync(good);
    const badGzip = Buffer.from(gz);
    badGzip.fill(0x55, 200, 400);
    const badTar = Buffer.from(good);
    badTar[3] = badTar[3]! ^ 0x7;
    const cases: Array<[string, Buffer, string, RegExp]> = [
      ['corrupt gzip', badGzip, MEDIA_TYPE_LAYER_GZIP, /unpack layer sha256:bad: decompress gzip layer: .*(invalid|incorrect)/],
      ['truncated gzip', gz.subarray(0, gz.length / 2), MEDIA_TYPE_LAYER_GZIP, /unpack layer sha256:bad: .*(unexpected end|truncated)/],
      ['corrupt tar header', badTar, MEDIA_TYPE_LAYER, /unpack layer sha256:bad: invalid tar archive: header checksum .* \(at byte 0\)/],
      ['truncated tar', good.subarray(0, 5000), MEDIA_TYPE_LAYER, /unexpected end of archive/],
    ];
    for (const [what, blob, mt, re] of cases) {
      await t.rejects(up.unpackLayer({ namespace: 'default', parentChainId: undefined, chainId: 'sha256:bad', blob: Readable.from([blob]), mediaType: mt, lease: undefined }), re, what);
      t.same(await sn.list('default'), [], `${what}: no snapshot record left`);
      t.same(readdirSync(join(sn.root, 'snapshots')), [], `${what}: no snapshot directory left`);
    }
    await t.rejects(
      up.unpackLayer({ namespace: 'default', parentChainId: undefined, chainId: 'sha256:x', blob: Readable.from([good]), mediaType: 'application/vnd.oci.image.layer.v1.tar+lz4', lease: undefined }),
      /unsupported layer media type.*not implemented/,
    );
    t.same(readdirSync(join(sn.root, 'snapshots')), []);
  });

  t.test('a disk that fills: clear error, no partial snapshot', async (t) => {
    const mnt = fresh();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tsrunc-unpack-full', mnt]);
    mounted.push(mnt);
    const meta = openMetadata(join(base, 'meta-full'));
    t.teardown(() => meta.close());
    const sn = OverlaySnapshotter.open(join(mnt, 'overlayfs'), meta);
    const up = new LayerUnpacker(sn);
    const big = tarArchive([
      { name: 'small', type: 'file', mode: 0o644, data: 'ok' },
      { name: 'big', type: 'file', mode: 0o644, data: Buffer.alloc(4 << 20, 1) },
    ]);
    await t.rejects(
      up.unpackLayer({ namespace: 'default', parentChainId: undefined, chainId: 'sha256:big', blob: Readable.from([gzipSync(big)]), mediaType: MEDIA_TYPE_LAYER_GZIP, lease: undefined }),
      /unpack layer sha256:big: layer member "big": ENOSPC: no space left on device/,
    );
    t.same(await sn.list('default'), []);
    t.same(readdirSync(join(sn.root, 'snapshots')), []);
    t.same(readdirSync(sn.root).sort(), ['snapshots'], 'no staging or removal dirs left');
    execFileSync('umount', [mnt]);
    mounted.pop();
  });

  t.test('the same chain ID unpacked twice at once: one snapshot, the other reused', async (t) => {
    const meta = openMetadata(join(base, 'meta-race'));
    t.teardown(() => meta.close());
    const sn = OverlaySnapshotter.open(join(base, 'root-race'), meta);
    const up = new LayerUnpacker(sn);
    const layer = tarArchive([{ name: 'f', type: 'file', mode: 0o644, data: 'same' }]);
    const both = await Promise.all(
      [0, 1].map(() => up.unpackLayer({ namespace: 'default', parentChainId: undefined, chainId: 'sha256:same', blob: Readable.from([layer]), mediaType: MEDIA_TYPE_LAYER, lease: undefined })),
    );
    t.same(both.map((r) => r.reused).sort(), [false, true]);
    t.same((await sn.list('default')).map((s) => s.name), ['sha256:same']);
    t.equal(readdirSync(join(sn.root, 'snapshots')).length, 1);
    t.ok(existsSync(join(sn.resolveDirs('default', 'sha256:same').upper, 'f')));
  });
});
