// The LMDB metadata store in a temp dir: namespaces, containers, containerd's
// rules and messages, atomic updates, persistence across a reopen.
import t from 'tap';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openMetadata, type ContainerInput, type Metadata } from '../../src/metadata/index.js';
import { ErrdefsError } from '../../src/errdefs.js';
import { SPEC_TYPE_URL } from '../../src/typeurl.js';

const dirs: string[] = [];
t.teardown(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tempRoot(): string {
  const d = mkdtempSync(join(tmpdir(), 'tsrund-meta-'));
  dirs.push(d);
  return join(d, 'root');
}

const spec = (obj: unknown = { ociVersion: '1.0.2' }) => ({ typeUrl: SPEC_TYPE_URL, value: new TextEncoder().encode(JSON.stringify(obj)) });
const container = (id: string, extra: Partial<ContainerInput> = {}): ContainerInput => ({
  id,
  labels: {},
  image: '',
  runtime: { name: 'io.containerd.runc.v2' },
  spec: spec(),
  snapshotter: '',
  snapshotKey: '',
  extensions: {},
  ...extra,
});

function errOf(fn: () => unknown): ErrdefsError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ErrdefsError) return e;
    throw e;
  }
  throw new Error('did not throw');
}

async function withStore(_t: unknown, fn: (m: Metadata, root: string) => void | Promise<void>): Promise<void> {
  const root = tempRoot();
  const m = openMetadata(root);
  try {
    await fn(m, root);
  } finally {
    await m.close();
  }
}

t.test('namespaces', (t) =>
  withStore(t, (m, root) => {
    t.equal(statSync(root).mode & 0o777, 0o711, 'root is 0711');
    t.same(m.namespaces.list(), []);
    t.same(m.namespaces.labels('never'), {}, 'an unknown namespace reads as no labels');
    t.notOk(m.namespaces.exists('never'));
    t.same(m.namespaces.create('meta-a', { a: '1', empty: '' }), { name: 'meta-a', labels: { a: '1' } }, 'empty labels are not kept');
    const dup = errOf(() => m.namespaces.create('meta-a'));
    t.equal(dup.errClass, 'already exists');
    t.equal(dup.message, 'namespace "meta-a": already exists');
    t.equal(errOf(() => m.namespaces.create('bad name')).errClass, 'invalid argument');
    t.match(errOf(() => m.namespaces.create('')).message, 'identifier must not be empty: invalid argument');
    t.equal(errOf(() => m.namespaces.create('x', { k: 'v'.repeat(5000) })).errClass, 'invalid argument');

    t.same(m.namespaces.update('meta-a', { b: '2', a: '' }, ['labels.b', 'labels.a']).labels, { b: '2' }, 'masked: set b, remove a');
    t.same(m.namespaces.update('meta-a', { c: '3' }).labels, { c: '3' }, 'no mask: replace all');
    t.equal(errOf(() => m.namespaces.update('meta-a', {}, ['name'])).errClass, 'invalid argument');
    t.same(m.namespaces.update('meta-b', { z: '1' }).labels, { z: '1' }, 'update creates a missing namespace (containerd)');
    t.same(
      m.namespaces.list().map((n) => n.name),
      ['meta-a', 'meta-b'],
    );
    t.same(
      m.namespaces.list(['labels.z']).map((n) => n.name),
      ['meta-b'],
      'list filters',
    );

    m.containers.create('meta-a', container('c1'));
    const busy = errOf(() => m.namespaces.delete('meta-a'));
    t.equal(busy.errClass, 'failed precondition');
    t.equal(busy.message, 'namespace "meta-a" must be empty, but it still has containers: failed precondition');
    m.containers.delete('meta-a', 'c1');
    m.namespaces.delete('meta-a');
    t.equal(errOf(() => m.namespaces.delete('meta-a')).errClass, 'not found');
  }),
);

t.test('containers', (t) =>
  withStore(t, (m) => {
    const c = m.containers.create('meta-c', container('web', { labels: { app: 'x' }, image: 'busybox', snapshotter: 'overlayfs', snapshotKey: 'web' }));
    t.ok(m.namespaces.exists('meta-c'), 'creating a container creates its namespace');
    t.equal(c.createdAt.getTime(), c.updatedAt.getTime());
    const got = m.containers.get('meta-c', 'web');
    t.same(got.labels, { app: 'x' });
    t.equal(got.runtime.name, 'io.containerd.runc.v2');
    t.same(JSON.parse(new TextDecoder().decode(got.spec!.value)), { ociVersion: '1.0.2' });
    t.ok(got.spec!.value instanceof Uint8Array);

    const dup = errOf(() => m.containers.create('meta-c', container('web')));
    t.equal(dup.message, 'container "web": already exists');
    const missing = errOf(() => m.containers.get('meta-c', 'nope'));
    t.equal(missing.errClass, 'not found');
    t.equal(missing.message, 'container "nope" in namespace "meta-c": not found');
    t.equal(errOf(() => m.containers.get('other', 'web')).errClass, 'not found', 'containers are per namespace');

    const bad: Array<[ContainerInput, string]> = [
      [container(''), 'create container failed validation: container.ID: identifier must not be empty: invalid argument'],
      [container('a/b'), 'must match'],
      [container('r', { runtime: { name: '' } }), 'container.Runtime.Name must be set'],
      [container('s', { spec: undefined }), 'container.Spec must be set'],
      [container('u', { spec: { typeUrl: 'types.containerd.io/x', value: new Uint8Array() } }), 'container.Spec: type URL "types.containerd.io/x" is not'],
      [container('j', { spec: { typeUrl: SPEC_TYPE_URL, value: new TextEncoder().encode('{nope') } }), 'container.Spec: value is not valid JSON'],
      [container('k', { spec: spec([1]) }), 'not a JSON object'],
      [container('n', { snapshotKey: 'k' }), 'container.Snapshotter must be set if container.SnapshotKey is set'],
      [container('e', { extensions: { '': { typeUrl: 'x', value: new Uint8Array() } } }), 'Extension keys must not be zero-length'],
    ];
    for (const [input, msg] of bad) {
      const e = errOf(() => m.containers.create('meta-c', input));
      t.equal(e.errClass, 'invalid argument', input.id);
      t.match(e.message, msg);
    }

    m.containers.create('meta-c', container('db', { image: 'postgres', labels: { app: 'y', tier: 'back' } }));
    t.same(m.containers.list('meta-c').map((x) => x.id), ['db', 'web']);
    t.same(m.containers.list('meta-c', ['labels.app==x']).map((x) => x.id), ['web']);
    t.same(m.containers.list('meta-c', ['image~=^post', 'id==web']).map((x) => x.id), ['db', 'web']);
    t.same(m.containers.list('meta-c', ['runtime.name==io.containerd.runc.v2,labels.tier']).map((x) => x.id), ['db']);
    t.equal(errOf(() => m.containers.list('meta-c', ['id=='])).errClass, 'invalid argument');

    // update
    const u1 = m.containers.update('meta-c', container('web', { labels: { app: 'z', extra: '1' } }), ['labels.app']);
    t.same(u1.labels, { app: 'z' }, 'labels.<key> touches only that key');
    t.ok(u1.updatedAt.getTime() >= u1.createdAt.getTime());
    t.equal(u1.createdAt.getTime(), c.createdAt.getTime(), 'created_at is kept');
    t.same(m.containers.update('meta-c', container('web', { labels: {} }), ['labels.app']).labels, {}, 'absent value removes the key');
    t.equal(m.containers.update('meta-c', container('web', { image: 'alpine' }), ['image']).image, 'alpine');
    const immutable = errOf(() => m.containers.update('meta-c', container('web', { snapshotter: 'other' })));
    t.equal(immutable.message, 'container.Snapshotter field is immutable: invalid argument', 'no mask: snapshotter must not change');
    const full = m.containers.update('meta-c', container('web', { snapshotter: 'overlayfs', snapshotKey: 'k2', labels: { n: '1' } }));
    t.same([full.snapshotKey, full.labels], ['k2', { n: '1' }]);
    t.equal(errOf(() => m.containers.update('meta-c', container('web'), ['runtime'])).message, 'cannot update "runtime" field on "web": invalid argument');
    t.equal(errOf(() => m.containers.update('meta-c', container('ghost'), ['image'])).errClass, 'not found');
    t.equal(errOf(() => m.containers.update('meta-c', container(''), ['image'])).message, 'must specify a container id: invalid argument');
    const badSpec = errOf(() => m.containers.update('meta-c', container('web', { spec: spec('x') }), ['spec']));
    t.match(badSpec.message, 'update failed validation: container.Spec');
    t.equal(m.containers.get('meta-c', 'web').snapshotKey, 'k2', 'a failed update changes nothing');

    m.containers.delete('meta-c', 'web');
    t.equal(errOf(() => m.containers.delete('meta-c', 'web')).errClass, 'not found');
  }),
);

t.test('records survive a reopen', async (t) => {
  const root = tempRoot();
  const m1 = openMetadata(root);
  m1.namespaces.create('meta-p', { k: 'v' });
  m1.containers.create('meta-p', container('kept', { extensions: { ext: { typeUrl: 'a.B', value: new Uint8Array([1, 2, 3]) } } }));
  await m1.close();
  const m2 = openMetadata(root);
  t.same(m2.namespaces.labels('meta-p'), { k: 'v' });
  const c = m2.containers.get('meta-p', 'kept');
  t.same([...c.extensions['ext']!.value], [1, 2, 3]);
  t.equal(c.extensions['ext']!.typeUrl, 'a.B');
  await m2.close();
});
