// The content store's API as the puller and the services use it, in a temp
// dir: writer, write, truncate, digest, commit, close and resume; the ref
// lock; AlreadyExists with the lease still taking the blob; sharing across
// namespaces; link; a commit holding its blob from the collector; nothing
// left by a failed commit.
import t from 'tap';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openMetadata } from '../../src/metadata/index.js';
import { ContentStore } from '../../src/content/store.js';
import { sha256 } from '../../src/content/digest.js';
import { ErrdefsError } from '../../src/errdefs.js';

const dirs: string[] = [];
t.teardown(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function setup() {
  const d = mkdtempSync(join(tmpdir(), 'tsrund-content-'));
  dirs.push(d);
  const metadata = openMetadata(join(d, 'root'));
  const cs = new ContentStore(join(d, 'root', 'content'), metadata);
  t.teardown(() => metadata.close());
  return { d, metadata, cs, ingestDirs: () => readdirSync(join(d, 'root', 'content', 'ingest')) };
}

async function rejects(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ErrdefsError) return e.message;
    throw e;
  }
  throw new Error('did not fail');
}

t.test('write, truncate, close, resume, commit', async (t) => {
  const { cs } = setup();
  const w = await cs.writer('ns', 'r', { total: 6, expected: sha256('abcdef') });
  await w.write(Buffer.from('xx'));
  await w.truncate(0);
  t.equal(w.offset, 0);
  await w.write(Buffer.from('abc'));
  t.equal(w.digest(), sha256('abc'));
  t.match(await rejects(cs.writer('ns', 'r')), /^ref r locked \(since .*\): unavailable$/);
  await w.close();
  t.notOk(cs.isLocked('ns', 'r'));
  const again = await cs.writer('ns', 'r');
  t.match({ offset: again.offset, total: again.total, expected: again.expected }, { offset: 3, total: 6, expected: sha256('abcdef') }, 'resumed with what the ingest knew');
  t.equal(again.digest(), sha256('abc'), 'the running digest recomputed');
  await again.write(Buffer.from('def'));
  t.equal(await again.commit(6, ''), sha256('abcdef'), 'the expected digest of the ingest is checked');
  t.same(await cs.readAll('ns', sha256('abcdef')), Buffer.from('abcdef'));
  t.same(await cs.listStatuses('ns'), []);
  t.equal(await rejects(again.write(Buffer.from('z'))), 'ingest r: writer is closed: failed precondition');
});

t.test('AlreadyExists, the lease, sharing, link', async (t) => {
  const { cs, metadata } = setup();
  metadata.leases.create('ns', 'l');
  const w = await cs.writer('ns', 'a');
  await w.write(Buffer.from('data'));
  const dg = await w.commit(4, sha256('data'));
  t.equal(await rejects(cs.writer('ns', 'b', { expected: dg, lease: 'l' })), `content ${dg}: already exists`);
  t.same(metadata.leases.listResources('ns', 'l'), [{ type: 'content', id: dg }], 'the lease takes what exists');
  const other = await cs.writer('other', 'b', { expected: dg, total: 5 });
  t.equal(other.offset, 0, 'another size: no sharing, a write starts');
  await other.close();
  t.equal(await rejects(cs.writer('other', 'c', { expected: dg, total: 4 })), `content ${dg}: already exists`, 'the same size: shared');
  t.equal(cs.info('other', dg).size, 4);
  t.equal(cs.link('third', dg, 4, { a: 'b' }), true);
  t.equal(cs.link('third', dg, 4), false, 'linked already');
  t.same(cs.info('third', dg).labels, { a: 'b' });
  t.equal(await rejects(cs.writer('ns', 'x', { lease: 'nope' })), 'lease does not exist: not found');
  t.equal(await rejects(cs.writer('ns', '')), 'ref must not be empty: invalid argument');
});

t.test('a failed commit leaves nothing; a commit holds its blob', async (t) => {
  const { cs, ingestDirs } = setup();
  const w = await cs.writer('ns', 'bad');
  await w.write(Buffer.from('abc'));
  t.equal(await rejects(w.commit(3, sha256('xyz'))), `unexpected commit digest ${sha256('abc')}, expected ${sha256('xyz')}: failed precondition`);
  t.notOk(existsSync(cs.blobPath(sha256('abc'))));
  t.same(ingestDirs(), []);
  t.notOk(cs.isLocked('ns', 'bad'), 'the ref is free again');

  const release = cs.holdBlob(sha256('q'));
  const release2 = cs.holdBlob(sha256('q'));
  t.ok(cs.isHeld(sha256('q')));
  release();
  release();
  t.ok(cs.isHeld(sha256('q')), 'held while any commit holds it');
  release2();
  t.notOk(cs.isHeld(sha256('q')));
});

t.test('a writer being opened: its directory is no orphan for the collector', async (t) => {
  const { cs } = setup();
  // While the directory exists and the record does not yet (the moment a
  // collection ran into during a pull), the locked ref's directory stays.
  let opened = false;
  const opening = cs.writer('ns', 'busy').finally(() => (opened = true));
  t.ok(cs.isLocked('ns', 'busy'));
  const listed = new Set<string>();
  while (!opened) {
    for (const d of cs.orphanIngestDirs()) listed.add(d);
    await new Promise((r) => setImmediate(r));
  }
  t.same([...listed], [], 'never listed while the writer opens');
  const w = await opening;
  await w.write(Buffer.from('data'));
  t.same(cs.orphanIngestDirs(), [], 'nor once recorded');
  await w.close();
  cs.ingests.removeSync(['ns', 'busy']); // the record gone: now it is an orphan
  t.equal(cs.orphanIngestDirs().length, 1);
});
