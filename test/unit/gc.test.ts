// The garbage collector over a real metadata store and content store in a
// temp dir, with an in-memory snapshotter behind the CollectableSnapshotter
// interface: what each root keeps (images, containers, leases, gc.root,
// unexpired ingests), the references it follows (gc.ref.content*,
// gc.ref.snapshot.<snapshotter>*, parents, an ingest's expected digest),
// gc.flat and gc.expire, children removed before parents, and what is left
// on disk by nobody. Also the label parsing and digests on their own.
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openMetadata, type Metadata } from '../../src/metadata/index.js';
import { ContentStore } from '../../src/content/store.js';
import { GarbageCollector, labelRefs, type CollectableSnapshotter } from '../../src/metadata/gc.js';
import { isDigest, parseDigest, sha256 } from '../../src/content/digest.js';
import { SPEC_TYPE_URL } from '../../src/typeurl.js';

const dirs: string[] = [];
t.teardown(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Snapshots in memory; remove() refuses a snapshot that still has children, as a snapshotter does. */
class FakeSnapshotter implements CollectableSnapshotter {
  readonly snaps = new Map<string, { parent?: string; labels: Record<string, string> }>();
  readonly removed: string[] = [];
  add(ns: string, name: string, parent?: string, labels: Record<string, string> = {}): void {
    this.snaps.set(`${ns}/${name}`, { ...(parent ? { parent } : {}), labels });
  }
  has(ns: string, name: string): boolean {
    return this.snaps.has(`${ns}/${name}`);
  }
  async list(ns: string) {
    return [...this.snaps].filter(([k]) => k.startsWith(`${ns}/`)).map(([k, v]) => ({ name: k.slice(ns.length + 1), parent: v.parent, labels: v.labels }));
  }
  async remove(ns: string, key: string): Promise<void> {
    for (const [k, v] of this.snaps) if (k.startsWith(`${ns}/`) && v.parent === key) throw new Error(`snapshot ${key} has children (${k})`);
    if (!this.snaps.delete(`${ns}/${key}`)) throw new Error(`snapshot ${key} does not exist`);
    this.removed.push(key);
  }
}

function setup() {
  const d = mkdtempSync(join(tmpdir(), 'tsrund-gc-'));
  dirs.push(d);
  const metadata: Metadata = openMetadata(join(d, 'root'));
  const content = new ContentStore(join(d, 'root', 'content'), metadata);
  const fake = new FakeSnapshotter();
  const gc = new GarbageCollector({ metadata, content, snapshotters: () => new Map([['fake', fake]]) });
  const put = async (ns: string, data: string, labels: Record<string, string> = {}, lease?: string): Promise<string> => {
    const w = await content.writer(ns, `ref-${data}`, { lease });
    await w.write(Buffer.from(data));
    return w.commit(0, '', labels);
  };
  const present = (digest: string) => existsSync(content.blobPath(digest));
  return { d, metadata, content, fake, gc, put, present };
}

t.test('labelRefs: containerd reference labels', async (t) => {
  const refs = labelRefs('ns', {
    'containerd.io/gc.ref.content': 'sha256:a',
    'containerd.io/gc.ref.content.l.0': 'sha256:b',
    'containerd.io/gc.ref.content/x': 'sha256:c',
    'containerd.io/gc.ref.contentx': 'sha256:no',
    'containerd.io/gc.ref.snapshot.overlayfs': 'k1',
    'containerd.io/gc.ref.snapshot.overlayfs/2': 'k2',
    'containerd.io/gc.ref.snapshot.': 'no',
    other: 'sha256:no',
  });
  t.same(
    refs.map((r) => r.split('\0')),
    [
      ['c', 'ns', 'sha256:a'],
      ['c', 'ns', 'sha256:b'],
      ['c', 'ns', 'sha256:c'],
      ['s', 'ns', 'overlayfs', 'k1'],
      ['s', 'ns', 'overlayfs', 'k2'],
    ],
  );
});

t.test('digests as go-digest parses them', async (t) => {
  t.same(parseDigest(sha256('x')), { algorithm: 'sha256', hex: sha256('x').slice(7) });
  t.ok(isDigest(`sha512:${'a'.repeat(128)}`));
  t.throws(() => parseDigest('sha256:abc'), /invalid checksum digest length/);
  t.throws(() => parseDigest(`md5:${'a'.repeat(32)}`), /unsupported digest algorithm/);
  t.throws(() => parseDigest(`sha256:${'A'.repeat(64)}`), /invalid checksum digest length/);
  t.throws(() => parseDigest('nope'), /invalid checksum digest format/);
  t.throws(() => parseDigest('sha256:../../etc'), /invalid checksum digest format/, 'never a path');
});

t.test('roots and references, content and snapshots', async (t) => {
  const { metadata, fake, gc, put, present } = setup();
  // an image whose manifest references a config and, by label, a snapshot chain
  const config = await put('ns', 'config');
  const manifest = await put('ns', 'manifest', { 'containerd.io/gc.ref.content.config': config, 'containerd.io/gc.ref.snapshot.fake': 'top' });
  metadata.images.create('ns', { name: 'img', labels: {}, target: { mediaType: 'm', digest: manifest, size: 8, annotations: {} } });
  fake.add('ns', 'base');
  fake.add('ns', 'top', 'base');
  // a container's snapshot (and its label refs)
  const fromContainer = await put('ns', 'container-ref');
  fake.add('ns', 'ctr-snap', 'base');
  metadata.containers.create('ns', {
    id: 'c1',
    labels: { 'containerd.io/gc.ref.content.x': fromContainer },
    image: '',
    runtime: { name: 'io.containerd.runc.v2' },
    spec: { typeUrl: SPEC_TYPE_URL, value: new TextEncoder().encode('{}') },
    snapshotter: 'fake',
    snapshotKey: 'ctr-snap',
    extensions: {},
  });
  // a snapshot labelled gc.root that references content
  const fromSnap = await put('ns', 'snapshot-ref');
  fake.add('ns', 'rooted', undefined, { 'containerd.io/gc.root': '', 'containerd.io/gc.ref.content': fromSnap });
  // a lease holding a snapshot
  metadata.leases.create('ns', 'l1');
  metadata.leases.addResource('ns', 'l1', { type: 'snapshots/fake', id: 'leased' });
  fake.add('ns', 'leased');
  // garbage: a chain nobody holds (removed leaf first), a blob, a blob of another namespace
  fake.add('ns', 'g1');
  fake.add('ns', 'g2', 'g1');
  fake.add('ns', 'g3', 'g2');
  const loose = await put('ns', 'loose');
  const otherNs = await put('other', 'other-ns');

  const r = await gc.collect();
  t.match(r, { contentRecords: 2, blobs: 2, snapshots: 3 });
  for (const dg of [config, manifest, fromContainer, fromSnap]) t.ok(present(dg), 'kept');
  t.notOk(present(loose));
  t.notOk(present(otherNs));
  for (const k of ['base', 'top', 'ctr-snap', 'rooted', 'leased']) t.ok(fake.has('ns', k), `kept snapshot ${k}`);
  t.same(fake.removed, ['g3', 'g2', 'g1'], 'children before parents');

  // dropping the image frees its chain but not the container's parent
  metadata.images.delete('ns', 'img');
  await gc.collect();
  t.notOk(present(manifest));
  t.notOk(present(config));
  t.notOk(fake.has('ns', 'top'));
  t.ok(fake.has('ns', 'base'), "the container's snapshot keeps its parent");
  metadata.containers.delete('ns', 'c1');
  await gc.collect();
  t.notOk(fake.has('ns', 'ctr-snap'));
  t.notOk(fake.has('ns', 'base'));
  t.notOk(present(fromContainer));
  t.ok(fake.has('ns', 'leased'));
  t.ok(present(fromSnap));
  await metadata.close();
});

t.test('leases: expiry, flat; ingests: expiry, expected digest; orphans on disk', async (t) => {
  const { d, metadata, content, gc, put, present } = setup();
  metadata.leases.create('ns', 'expired', { 'containerd.io/gc.expire': new Date(Date.now() - 1000).toISOString() });
  metadata.leases.create('ns', 'live', { 'containerd.io/gc.expire': new Date(Date.now() + 3600_000).toISOString() });
  metadata.leases.create('ns', 'flat', { 'containerd.io/gc.flat': '' });
  const a = await put('ns', 'under expired', {}, 'expired');
  const child = await put('ns', 'child');
  const b = await put('ns', 'under live', { 'containerd.io/gc.ref.content': child }, 'live');
  const flatChild = await put('ns', 'flat child');
  const c = await put('ns', 'under flat', { 'containerd.io/gc.ref.content': flatChild }, 'flat');

  // an ingest whose expiry passed, one still fresh, one leased; the fresh one expects a blob
  const shared = await put('ns', 'expected by an ingest');
  const stale = await content.writer('ns', 'stale');
  await stale.write(Buffer.from('x'));
  await stale.close();
  metadata.db.update(() => content.ingests.putSync(['ns', 'stale'], { ...content.ingests.get(['ns', 'stale'])!, expireAt: new Date(Date.now() - 1) }));
  const fresh = await content.writer('ns', 'fresh', { expected: sha256('anything') });
  await fresh.close();
  metadata.db.update(() => content.ingests.putSync(['ns', 'fresh'], { ...content.ingests.get(['ns', 'fresh'])!, expected: shared }));

  // left on disk by a crash: a blob with no record, an ingest dir with no record
  const orphan = sha256('orphan');
  writeFileSync(content.blobPath(orphan), 'orphan');
  mkdirSync(join(d, 'root', 'content', 'ingest', 'deadbeef'));

  const r = await gc.collect();
  t.equal(r.leases, 1, 'the expired lease is removed');
  t.same(
    metadata.leases.list('ns').map((l) => l.id),
    ['flat', 'live'],
  );
  t.notOk(present(a), 'an expired lease holds nothing');
  t.ok(present(b));
  t.ok(present(child), 'a lease holds what its resources reference');
  t.ok(present(c));
  t.notOk(present(flatChild), 'unless it is flat');
  t.ok(present(shared), 'an ingest holds the blob it expects');
  t.notOk(present(orphan), 'a blob nobody records');
  t.same(
    (await content.listStatuses('ns')).map((s) => s.ref),
    ['fresh'],
    'the expired ingest is gone',
  );
  t.notOk(readdirSync(join(d, 'root', 'content', 'ingest')).includes('deadbeef'), 'an ingest directory nobody records');
  await metadata.close();
});

t.test('collect() while one runs: runs again after it; stop() waits', async (t) => {
  const { metadata, gc, put, present } = setup();
  const dg = await put('ns', 'x');
  const first = gc.collect();
  const second = gc.collect();
  await Promise.all([first, second]);
  t.notOk(present(dg));
  gc.schedule(10);
  await gc.stop();
  await metadata.close();
});
