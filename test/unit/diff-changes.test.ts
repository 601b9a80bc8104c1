// Diff of two plain directory trees (containerd's walking differ) without
// mounting: the layer's members, and the layer applied onto a copy of left
// giving right in every attribute; zstd compression through libzstd, and
// Differ.diff writing tar+zstd (or refusing it without libzstd).
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { tarChanges } from '../../src/archive/changes.js';
import { applyLayer, MEDIA_TYPE_LAYER } from '../../src/archive/layer.js';
import { TarReader, type TarHeader } from '../../src/archive/tar.js';
import { ZstdCompress, ZstdDecompress, zstdUnavailable } from '../../src/archive/zstd.js';
import { lsetxattrRaw } from '../../src/linux/fsat.js';
import { Differ } from '../../src/snapshots/differ.js';
import { describeTree } from '../helpers/tree.js';

const dir = mkdtempSync(join(tmpdir(), 'tsr-diff-changes-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

async function collect(gen: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of gen) parts.push(c);
  return Buffer.concat(parts);
}

function members(tar: Buffer): string[] {
  const out: TarHeader[] = [];
  const r = new TarReader({ entry: (h) => void out.push(h), data: () => {}, endEntry: () => {} });
  r.write(tar);
  r.end();
  return out.map((h) => `${h.type} ${h.name}${h.linkname ? ` -> ${h.linkname}` : ''}`);
}

/** A fresh pair of dirs under the test's temp dir. */
let n = 0;
function pair(): { left: string; right: string } {
  const base = join(dir, String(n++));
  const left = join(base, 'left');
  const right = join(base, 'right');
  mkdirSync(left, { recursive: true });
  mkdirSync(right);
  return { left, right };
}

/** right's tree, built as a copy of left changed by change(). */
function derive(left: string, right: string, change: (p: (s: string) => string) => void): void {
  rmSync(right, { recursive: true });
  execFileSync('cp', ['-a', left, right]);
  change((s) => join(right, s));
}

/** The layer applied onto a copy of left gives right, entry by entry. */
async function roundTrip(t: Test, left: string, right: string): Promise<Buffer> {
  const tar = await collect(tarChanges(left, right));
  const copy = `${left}-copy`;
  execFileSync('cp', ['-a', left, copy]);
  await applyLayer(Readable.from([tar]), MEDIA_TYPE_LAYER, { root: copy, whiteouts: 'remove' });
  t.same(describeTree(copy, { withDirTimes: true }), describeTree(right, { withDirTimes: true }), 'left + layer = right');
  return tar;
}

const SEC = new Date(1_700_000_000_000);
const ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';

t.test('every kind of change, applied onto left, gives right', async (t) => {
  const { left, right } = pair();
  const l = (s: string) => join(left, s);
  for (const d of ['keep', 'keep/deep', 'gonedir', 'gonedir/sub', 'dir2file', 'links']) mkdirSync(l(d));
  writeFileSync(l('keep/same'), 'same');
  writeFileSync(l('keep/deep/edit'), 'before');
  writeFileSync(l('gone'), 'g');
  writeFileSync(l('gonedir/a'), 'a');
  writeFileSync(l('gonedir/sub/b'), 'b');
  writeFileSync(l('dir2file/x'), 'x');
  writeFileSync(l('file2dir'), 'f');
  writeFileSync(l('mode'), 'm');
  writeFileSync(l('xattr'), 'x');
  writeFileSync(l('links/one'), 'linked');
  linkSync(l('links/one'), l('links/two'));
  symlinkSync('old-target', l('sym'));
  writeFileSync(l('truncated'), 'AAAA');
  utimesSync(l('truncated'), SEC, SEC);

  derive(left, right, (r) => {
    writeFileSync(r('keep/deep/edit'), 'after!');
    rmSync(r('gone'));
    rmSync(r('gonedir'), { recursive: true });
    rmSync(r('dir2file'), { recursive: true });
    writeFileSync(r('dir2file'), 'now a file');
    rmSync(r('file2dir'));
    mkdirSync(r('file2dir'));
    writeFileSync(r('file2dir/inside'), 'i');
    chmodSync(r('mode'), 0o4711);
    t.equal(lsetxattrRaw(r('xattr'), 'user.note', Buffer.from([0, 0xff, 1])), 0, 'user xattrs on this file system');
    rmSync(r('sym'));
    symlinkSync('/new/target', r('sym'));
    mkdirSync(r('new'));
    writeFileSync(r('new/file'), 'n');
    linkSync(r('new/file'), r('new/hard'));
    execFileSync('mkfifo', [r('new/fifo')]);
    // same size, same whole-second mtime: only the contents tell
    writeFileSync(r('truncated'), 'BBBB');
    utimesSync(r('truncated'), SEC, SEC);
  });

  const tar = await roundTrip(t, left, right);
  t.same(members(tar), [
    'file dir2file',
    'dir file2dir/',
    'file file2dir/inside',
    'file .wh.gone',
    'file .wh.gonedir',
    'dir keep/',
    'dir keep/deep/',
    'file keep/deep/edit',
    'dir links/',
    'file links/one',
    'link links/two -> links/one',
    'file mode',
    'dir new/',
    'fifo new/fifo',
    'file new/file',
    'link new/hard -> new/file',
    'symlink sym -> /new/target',
    'file truncated',
    'file xattr',
  ], 'changes in lexical order; a removed dir is one whiteout; linked files always with their links; parents of a change first');
});

t.test('an entry that did not change is not in the layer', async (t) => {
  const { left, right } = pair();
  mkdirSync(join(left, 'd'));
  writeFileSync(join(left, 'd/f'), 'f');
  symlinkSync('t', join(left, 'l'));
  derive(left, right, () => {});
  t.same(members(await collect(tarChanges(left, right))), [], 'identical trees: an empty layer');
  // with nanosecond mtimes equal, equal size means unchanged (containerd does not read the contents then)
  const ns = new Date(1_700_000_000_123);
  writeFileSync(join(left, 'd/n'), 'aaaa');
  utimesSync(join(left, 'd/n'), ns, ns);
  utimesSync(join(left, 'd'), SEC, SEC);
  derive(left, right, (r) => {
    writeFileSync(r('d/n'), 'bbbb');
    utimesSync(r('d/n'), ns, ns);
  });
  t.same(members(await collect(tarChanges(left, right))), []);
});

t.test('a whole tree against an empty left, and an empty right', async (t) => {
  const { left, right } = pair();
  mkdirSync(join(right, 'a/b'), { recursive: true });
  writeFileSync(join(right, 'a/b/c'), 'c');
  symlinkSync('a/b/c', join(right, 's'));
  await roundTrip(t, left, right);
  const p = pair();
  writeFileSync(join(p.left, 'x'), 'x');
  mkdirSync(join(p.left, 'y'));
  const tar = await roundTrip(t, p.left, p.right);
  t.same(members(tar), ['file .wh.x', 'file .wh.y']);
});

t.test('zstd: one frame that libzstd and the zstd tool read back', { skip: zstdUnavailable() }, async (t) => {
  const data = Buffer.concat([Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251)), Buffer.alloc(3 << 20, 'a')]);
  const chunks: Buffer[] = [];
  await pipeline(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), new ZstdCompress(), async (src: AsyncIterable<Buffer>) => {
    for await (const c of src) chunks.push(c);
  });
  const z = Buffer.concat(chunks);
  t.ok(z.length < data.length / 5, `compressed ${data.length} -> ${z.length} bytes`);
  t.equal(z.readUInt32LE(0), 0xfd2fb528, 'zstd magic');
  const back = await collect(Readable.from([z]).pipe(new ZstdDecompress()));
  t.ok(back.equals(data), 'decompresses to the input');
  const file = join(dir, 'blob.zst');
  writeFileSync(file, z);
  try {
    execFileSync('zstd', ['-q', '-t', file]);
    t.pass('zstd -t accepts it');
    t.ok(execFileSync('zstd', ['-q', '-d', '-c', file], { maxBuffer: 64 << 20 }).equals(data), 'zstd -d gives the input');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') t.comment('skipped: the zstd tool is not installed (apt package zstd)');
    else throw e;
  }
  const empty = await collect(Readable.from([]).pipe(new ZstdCompress()));
  t.ok((await collect(Readable.from([empty]).pipe(new ZstdDecompress()))).length === 0, 'an empty stream is a valid empty frame');
});

/** A content store in memory: what Differ.diff wrote, committed or aborted. */
function memoryContent() {
  const log: string[] = [];
  const blobs = new Map<string, { data: Buffer; labels: Record<string, string> }>();
  return {
    log,
    blobs,
    readStream: () => Readable.from([]),
    async writer(_ns: string, ref: string) {
      log.push(`open ${ref}`);
      const parts: Buffer[] = [];
      return {
        write: async (d: Uint8Array) => void parts.push(Buffer.from(d)),
        async commit(size: number, _expected: string, labels: Record<string, string> = {}) {
          const data = Buffer.concat(parts);
          if (data.length !== size) throw new Error(`size ${size} != ${data.length}`);
          const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
          blobs.set(digest, { data, labels });
          log.push(`commit ${ref}`);
          return digest;
        },
        close: async () => void log.push(`close ${ref}`),
      };
    },
    abort: async (_ns: string, ref: string) => void log.push(`abort ${ref}`),
  };
}

t.test('Differ.diff: a first layer as tar+zstd, and without libzstd a clear not implemented before anything is written', async (t) => {
  const { right } = pair();
  writeFileSync(join(right, 'f'), 'zstd layer');
  const content = memoryContent();
  const differ = new Differ(content);
  if (zstdUnavailable()) t.comment(`skipped the zstd write: ${zstdUnavailable()}`);
  else {
    const d = await differ.diff('ns', [], [{ type: 'bind', source: right, options: ['rw', 'rbind'] }], { mediaType: ZSTD, ref: 'r1' });
    const blob = content.blobs.get(d.digest)!;
    t.same([d.mediaType, d.size], [ZSTD, blob.data.length]);
    const tar = await collect(Readable.from([blob.data]).pipe(new ZstdDecompress()));
    t.same(members(tar), ['file f']);
    t.equal(blob.labels['containerd.io/uncompressed'], `sha256:${createHash('sha256').update(tar).digest('hex')}`, 'the diff ID label');
  }
  const { Differ: NoZstd } = await t.mockImport<typeof import('../../src/snapshots/differ.js')>('../../src/snapshots/differ.js', {
    '../../src/archive/zstd.js': { ZstdCompress: class {}, zstdUnavailable: () => "zstd needs the system's libzstd.so.1 (Debian: libzstd1): not here" },
  });
  const none = memoryContent();
  await t.rejects(new NoZstd(none).diff('ns', [], [{ type: 'bind', source: right, options: ['rw'] }], { mediaType: ZSTD }), {
    name: 'ErrdefsError',
    errClass: 'not implemented',
    message: /cannot write .*tar\+zstd layers: zstd needs the system's libzstd\.so\.1/,
  });
  t.same(none.log, [], 'no ingest was opened');
});
