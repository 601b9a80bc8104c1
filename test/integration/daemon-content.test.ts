// tsrund's Content, Images and Leases services and its garbage collector
// through the TS client: every method, resumable writes, bad digests and
// sizes refused with nothing committed, containerd's codes and messages, and
// what the collector keeps (referenced, leased, gc.root) and removes.
// Namespaces start with "dc".
import t from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { Content, WriteAction, type WriteContentResponse } from '../../src/gen/containerd/services/content/v1/content_pb.js';
import { Images } from '../../src/gen/containerd/services/images/v1/images_pb.js';
import { Leases } from '../../src/gen/containerd/services/leases/v1/leases_pb.js';
import { Events, type Envelope } from '../../src/gen/containerd/services/events/v1/events_pb.js';
import { connect, type CallOptions, type Connection } from '../../src/client/index.js';
import { needsRoot } from '../helpers/cli.js';
import { startTsrund, type RunningDaemon } from '../helpers/daemon.js';

type Code = keyof typeof grpc.status;
async function status(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'OK',
    (e: grpc.ServiceError) => `${grpc.status[e.code]}: ${e.details}`,
  );
}
const code = async (p: Promise<unknown>): Promise<Code | 'OK'> => (await status(p)).split(':')[0] as Code | 'OK';
const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const MEDIA_INDEX = 'application/vnd.oci.image.index.v1+json';
const MEDIA_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

interface WriteStep {
  action: WriteAction;
  data?: Buffer;
  offset?: number;
  total?: number;
  expected?: string;
  labels?: Record<string, string>;
}

t.test('Content, Images, Leases and GC over gRPC', { skip: needsRoot }, async (t) => {
  let d: RunningDaemon;
  let conn: Connection;
  t.before(async () => {
    d = await startTsrund();
    conn = connect(d.address, { namespace: 'dc' });
    await conn.ready();
  });
  t.teardown(async () => {
    conn?.close();
    await d?.stop();
  });
  const content = () => conn.service(Content);
  const images = () => conn.service(Images);
  const leases = () => conn.service(Leases);
  const blobFile = (digest: string) => join(d.root, 'content', 'blobs', 'sha256', digest.slice('sha256:'.length));
  const ingestDirs = () => readdirSync(join(d.root, 'content', 'ingest'));

  /** One Write session: the first step carries the ref; resolves with every response. */
  async function write(ref: string, steps: WriteStep[], opts: CallOptions = {}): Promise<WriteContentResponse[]> {
    const call = content().write(opts);
    const out: WriteContentResponse[] = [];
    const done = new Promise<WriteContentResponse[]>((resolve, reject) => {
      call.on('data', (m: WriteContentResponse) => out.push(m));
      call.on('error', reject);
      call.on('end', () => resolve(out));
    });
    for (const s of steps) {
      call.write({
        action: s.action,
        ref,
        data: s.data ?? new Uint8Array(),
        offset: BigInt(s.offset ?? 0),
        total: BigInt(s.total ?? 0),
        expected: s.expected ?? '',
        labels: s.labels ?? {},
      });
    }
    call.end();
    return done;
  }
  /** Writes a whole blob in one session (stat, write, commit). */
  async function put(data: Buffer | string, labels: Record<string, string> = {}, opts: CallOptions = {}): Promise<string> {
    const b = Buffer.from(data);
    const digest = sha(b);
    await write(
      `put-${digest}`,
      [
        { action: WriteAction.STAT, total: b.length, expected: digest },
        { action: WriteAction.WRITE, data: b },
        { action: WriteAction.COMMIT, offset: b.length, total: b.length, expected: digest, labels },
      ],
      opts,
    );
    return digest;
  }
  async function read(digest: string, offset = 0, size = 0): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const m of content().read({ digest, offset: BigInt(offset), size: BigInt(size) })) chunks.push(Buffer.from(m.data));
    return Buffer.concat(chunks);
  }
  async function list(filters: string[] = [], namespace?: string): Promise<string[]> {
    const out: string[] = [];
    for await (const m of content().list({ filters }, namespace === undefined ? {} : { namespace })) out.push(...m.info.map((i) => i.digest));
    return out.sort();
  }

  t.test('Write (stat, write, commit), Info, Read, List, Update, Delete', async (t) => {
    const data = Buffer.from('hello content store\n');
    const digest = sha(data);
    const res = await write('dc-w1', [
      { action: WriteAction.STAT, total: data.length, expected: digest },
      { action: WriteAction.WRITE, data: data.subarray(0, 5) },
      { action: WriteAction.WRITE, data: data.subarray(5), offset: 5 },
      { action: WriteAction.COMMIT, offset: data.length, total: data.length, expected: digest, labels: { a: 'b' } },
    ]);
    t.same(
      res.map((r) => [r.action, Number(r.offset)]),
      [
        [WriteAction.STAT, 0],
        [WriteAction.WRITE, 5],
        [WriteAction.WRITE, data.length],
        [WriteAction.COMMIT, data.length],
      ],
    );
    t.equal(Number(res[0]!.total), data.length, 'STAT answers the total');
    t.equal(res[0]!.digest, sha(''), 'STAT answers the digest of what is there');
    t.equal(res[3]!.digest, digest, 'COMMIT answers the digest');
    t.ok(existsSync(blobFile(digest)), 'the blob is in blobs/sha256');
    t.same(await content().listStatuses({}).then((r) => r.statuses), [], 'no ingest left');

    const info = (await content().info({ digest })).info!;
    t.match({ digest: info.digest, size: Number(info.size), labels: info.labels }, { digest, size: data.length, labels: { a: 'b' } });
    t.ok(info.createdAt && info.createdAt.seconds > 0n);
    t.same(await read(digest), data, 'Read: all');
    t.same(await read(digest, 6, 7), data.subarray(6, 13), 'Read: offset and size');
    t.same(await read(digest, 6, 1000), data.subarray(6), 'Read: a size past the end reads to the end');
    t.same(await read(digest, -3, 5), data.subarray(0, 5), 'Read: a negative offset reads from 0 (as containerd)');
    t.equal(await status(read(digest, data.length + 1)), `OUT_OF_RANGE: read past object length ${data.length} bytes`);

    t.ok((await list()).includes(digest));
    t.same(await list([`digest==${digest}`]), [digest], 'List filter on digest');
    t.same(await list(['labels.a==b']), [digest], 'List filter on a label');
    t.same(await list([`size==${data.length}`]), [digest], 'List filter on size');
    t.same(await list(['labels.a==c']), []);
    t.same(await list([], 'dc-other'), [], 'another namespace does not see the blob');

    let u = (await content().update({ info: { digest, labels: { c: 'd' } }, updateMask: { paths: ['labels.c'] } })).info!;
    t.same(u.labels, { a: 'b', c: 'd' }, 'Update labels.<key> adds one');
    u = (await content().update({ info: { digest, labels: {} }, updateMask: { paths: ['labels.a'] } })).info!;
    t.same(u.labels, { c: 'd' }, 'an empty value removes it');
    u = (await content().update({ info: { digest, labels: { x: 'y' } } })).info!;
    t.same(u.labels, { x: 'y' }, 'no mask: all labels replaced');
    t.equal(await status(content().update({ info: { digest, labels: {} }, updateMask: { paths: ['size'] } })), `INVALID_ARGUMENT: cannot update "size" field on content info "${digest}": invalid argument`);
    t.equal(await code(content().update({ info: { digest: sha('nope'), labels: {} } })), 'NOT_FOUND');
    t.equal(await status(content().update({ info: { digest: 'bad', labels: {} } })), 'INVALID_ARGUMENT: "bad" failed validation');

    const events: Envelope[] = [];
    const sub = conn.service(Events).subscribe({ filters: ['topic=="/content/delete"'] });
    void (async () => {
      try {
        for await (const e of sub) events.push(e);
      } catch {
        /* cancelled */
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    await content().delete({ digest });
    t.notOk(existsSync(blobFile(digest)), 'Delete removes the blob no namespace records');
    t.equal(await status(content().info({ digest })), `NOT_FOUND: content digest ${digest}: not found`);
    t.equal(await status(content().delete({ digest })), `NOT_FOUND: content digest ${digest}: not found`);
    t.equal(await code(content().delete({ digest: 'sha256:xyz' })), 'INVALID_ARGUMENT');
    t.equal(await status(content().info({ digest: 'md5:abc' })), 'INVALID_ARGUMENT: "md5:abc" failed validation');
    await new Promise((r) => setTimeout(r, 200));
    sub.cancel();
    t.same(
      events.map((e) => [e.namespace, e.topic]),
      [['dc', '/content/delete']],
      'a /content/delete event',
    );
  });

  t.test('resumable writes, Status, ListStatuses, Abort, the ref lock', async (t) => {
    const data = Buffer.alloc(300_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 251;
    const digest = sha(data);
    await write('dc-resume', [
      { action: WriteAction.STAT, total: data.length, expected: digest },
      { action: WriteAction.WRITE, data: data.subarray(0, 100_000) },
    ]);
    const st = (await content().status({ ref: 'dc-resume' })).status!;
    t.match({ ref: st.ref, offset: Number(st.offset), total: Number(st.total), expected: st.expected }, { ref: 'dc-resume', offset: 100_000, total: data.length, expected: digest });
    t.same(
      (await content().listStatuses({ filters: ['ref==dc-resume'] })).statuses.map((s) => s.ref),
      ['dc-resume'],
    );
    t.same((await content().listStatuses({ filters: ['ref==nope'] })).statuses, []);
    t.same((await content().listStatuses({}, { namespace: 'dc-other' })).statuses, [], 'ingests are per namespace');

    // a second session resumes at the offset the first left
    const res = await write('dc-resume', [
      { action: WriteAction.STAT },
      { action: WriteAction.WRITE, data: data.subarray(100_000, 200_000), offset: 100_000 },
      { action: WriteAction.COMMIT, data: data.subarray(200_000), offset: 200_000, total: data.length, expected: digest },
    ]);
    t.equal(Number(res[0]!.offset), 100_000, 'STAT of the resumed ingest: its offset');
    t.equal(res[0]!.digest, sha(data.subarray(0, 100_000)), 'and the digest of its bytes');
    t.equal(res.at(-1)!.digest, digest);
    t.same(await read(digest), data, 'the resumed blob reads back whole');

    // a write at the wrong offset
    await write('dc-off', [{ action: WriteAction.WRITE, data: Buffer.from('abc') }]);
    t.equal(await status(write('dc-off', [{ action: WriteAction.WRITE, data: Buffer.from('x'), offset: 7 }])), 'OUT_OF_RANGE: write @7 must occur at current offset 3');
    // offset 0 on a non-empty ingest starts over
    const again = await write('dc-off', [{ action: WriteAction.WRITE, data: Buffer.from('zz') }]);
    t.equal(Number(again[0]!.offset), 2, 'a write at offset 0 truncates first');

    // the ref is locked while a session has it open
    const call = content().write();
    const first = new Promise<void>((resolve, reject) => {
      call.once('data', () => resolve());
      call.once('error', reject);
    });
    call.write({ action: WriteAction.STAT, ref: 'dc-off' });
    await first;
    t.match(await status(write('dc-off', [{ action: WriteAction.STAT }])), /^UNAVAILABLE: ref dc-off locked/);
    call.end();
    await new Promise((r) => call.on('end', r).on('error', r).resume());
    await new Promise((r) => setTimeout(r, 100));

    const before = ingestDirs().length;
    await content().abort({ ref: 'dc-off' });
    t.equal(ingestDirs().length, before - 1, 'Abort removes the ingest directory');
    t.equal(await status(content().status({ ref: 'dc-off' })), 'NOT_FOUND: reference dc-off: not found');
    t.equal(await status(content().abort({ ref: 'dc-off' })), 'NOT_FOUND: reference dc-off: not found');
    t.equal(await status(write('', [{ action: WriteAction.STAT }])), 'INVALID_ARGUMENT: first message must have a reference');
    t.equal(await code(content().status({ ref: 'x' }, { namespace: '' })), 'FAILED_PRECONDITION', 'namespace is required');
  });

  t.test('a bad digest or size commits nothing', async (t) => {
    const data = Buffer.from('the real bytes');
    const wrong = sha('other bytes');
    const before = ingestDirs().length;
    t.equal(
      await status(
        write('dc-bad', [
          { action: WriteAction.WRITE, data },
          { action: WriteAction.COMMIT, offset: data.length, total: data.length, expected: wrong },
        ]),
      ),
      `FAILED_PRECONDITION: unexpected commit digest ${sha(data)}, expected ${wrong}: failed precondition`,
    );
    t.notOk(existsSync(blobFile(sha(data))), 'no blob under its real digest');
    t.notOk(existsSync(blobFile(wrong)), 'nor under the expected one');
    t.equal(await code(content().info({ digest: sha(data) })), 'NOT_FOUND');
    t.equal(await code(content().status({ ref: 'dc-bad' })), 'NOT_FOUND', 'the ingest of wrong bytes is gone');
    t.equal(ingestDirs().length, before, 'and its directory');

    t.equal(
      await status(
        write('dc-long', [
          { action: WriteAction.WRITE, data },
          { action: WriteAction.COMMIT, offset: data.length, total: data.length - 1 },
        ]),
      ),
      `FAILED_PRECONDITION: "dc-long" failed size validation: ${data.length} != ${data.length - 1}: failed precondition`,
    );
    t.equal(await code(content().status({ ref: 'dc-long' })), 'NOT_FOUND', 'more bytes than the size: the ingest is gone');
    t.equal(
      await status(
        write('dc-short', [
          { action: WriteAction.WRITE, data },
          { action: WriteAction.COMMIT, offset: data.length, total: data.length + 5, expected: sha(Buffer.concat([data, Buffer.from('12345')])) },
        ]),
      ),
      `FAILED_PRECONDITION: "dc-short" failed size validation: ${data.length} != ${data.length + 5}: failed precondition`,
    );
    t.equal(Number((await content().status({ ref: 'dc-short' })).status!.offset), data.length, 'fewer bytes: the ingest stays, to be resumed');
    await write('dc-short', [{ action: WriteAction.COMMIT, data: Buffer.from('12345'), offset: data.length, total: data.length + 5 }]);
    t.ok(existsSync(blobFile(sha(Buffer.concat([data, Buffer.from('12345')])))), 'and then commits');
    t.match(await status(write('dc-lbl', [{ action: WriteAction.COMMIT, data, labels: { big: 'x'.repeat(5000) } }])), /^INVALID_ARGUMENT: info.Labels: label key and value greater than maximum size/, 'bad labels');
    t.notOk(existsSync(blobFile(sha(data))), 'bad labels: nothing committed');
  });

  t.test('content shared between namespaces; AlreadyExists', async (t) => {
    const digest = await put('shared blob');
    t.equal(await status(put('shared blob')), `ALREADY_EXISTS: content ${digest}: already exists`, 'the namespace has it');
    t.equal(await code(content().info({ digest }, { namespace: 'dc-other' })), 'NOT_FOUND');
    t.equal(await code(put('shared blob', {}, { namespace: 'dc-other' })), 'ALREADY_EXISTS', 'another namespace: the blob on disk is linked');
    t.equal(Number((await content().info({ digest }, { namespace: 'dc-other' })).info!.size), 11);
    await content().delete({ digest }, { namespace: 'dc-other' });
    t.ok(existsSync(blobFile(digest)), 'one namespace deleting keeps what another records');
    await content().delete({ digest });
    t.notOk(existsSync(blobFile(digest)), 'the last one removes it');
  });

  t.test('Images: Create, Get, List with filters, Update, Delete', async (t) => {
    const digest = await put('{"image":1}');
    const target = { mediaType: MEDIA_MANIFEST, digest, size: 11n, annotations: { an: 'v' } };
    const img = (await images().create({ image: { name: 'docker.io/library/dc:1', labels: { l: '1' }, target } })).image!;
    t.equal(img.name, 'docker.io/library/dc:1');
    t.ok(img.createdAt && img.createdAt.seconds > 0n);
    await images().create({ image: { name: 'dc:2', target: { ...target, mediaType: MEDIA_INDEX } } });
    t.equal(await status(images().create({ image: { name: 'dc:2', target } })), 'ALREADY_EXISTS: image "dc:2": already exists');
    t.equal((await images().get({ name: 'dc:2' })).image?.target?.mediaType, MEDIA_INDEX);
    t.equal(await status(images().get({ name: 'nope' })), 'NOT_FOUND: image "nope": not found');
    const names = async (filters: string[]) => (await images().list({ filters })).images.map((i) => i.name);
    t.same(await names([]), ['dc:2', 'docker.io/library/dc:1']);
    t.same(await names(['name==dc:2']), ['dc:2']);
    t.same(await names([`target.mediatype==${MEDIA_MANIFEST}`]), ['docker.io/library/dc:1']);
    t.same(await names(['labels.l==1']), ['docker.io/library/dc:1']);
    t.same(await names(['annotations.an==v']), ['dc:2', 'docker.io/library/dc:1']);
    t.same(await names(['name~=^docker']), ['docker.io/library/dc:1']);
    t.same(await names(['name==dc:2', 'labels.l==1']), ['dc:2', 'docker.io/library/dc:1'], 'several filters: any matches');

    t.equal(await status(images().create({ image: { name: '', target } })), 'INVALID_ARGUMENT: image name must not be empty: invalid argument');
    t.match(await status(images().create({ image: { name: 'x', target: { ...target, digest: 'nope' } } })), /^INVALID_ARGUMENT: Target.Digest "nope" invalid/);
    t.equal(await status(images().create({ image: { name: 'x', target: { ...target, size: 0n } } })), 'INVALID_ARGUMENT: Target.Size must be greater than zero: invalid argument');
    t.equal(await status(images().create({ image: { name: 'x', target: { ...target, mediaType: '' } } })), 'INVALID_ARGUMENT: Target.MediaType must be set: invalid argument');
    t.equal(await code(images().get({ name: 'x' })), 'NOT_FOUND', 'nothing created by bad input');

    let u = (await images().update({ image: { name: 'dc:2', labels: { k: 'v' } }, updateMask: { paths: ['labels.k'] } })).image!;
    t.same(u.labels, { k: 'v' });
    t.equal(u.target?.mediaType, MEDIA_INDEX, 'labels.<k> leaves the target');
    u = (await images().update({ image: { name: 'dc:2', target: { ...target, annotations: { b: 'c' } } }, updateMask: { paths: ['annotations'] } })).image!;
    t.same(u.target?.annotations, { b: 'c' });
    u = (await images().update({ image: { name: 'dc:2', target }, updateMask: { paths: ['target'] } })).image!;
    t.equal(u.target?.mediaType, MEDIA_MANIFEST);
    t.same(u.labels, { k: 'v' });
    t.equal(await status(images().update({ image: { name: 'dc:2', target }, updateMask: { paths: ['name'] } })), 'INVALID_ARGUMENT: cannot update "name" field on image "dc:2": invalid argument');
    t.equal(await status(images().update({ image: { name: 'nope', target } })), 'NOT_FOUND: image "nope": not found');
    t.equal(await status(images().update({ image: { name: '', target } })), 'INVALID_ARGUMENT: image name is required for update: invalid argument');

    await images().delete({ name: 'dc:2', sync: true });
    t.equal(await status(images().delete({ name: 'dc:2' })), 'NOT_FOUND: image "dc:2": not found');
    t.ok(existsSync(blobFile(digest)), 'the other image still holds the blob');
    await images().delete({ name: 'docker.io/library/dc:1', sync: true });
    t.notOk(existsSync(blobFile(digest)), 'Delete with sync: the blob no image holds is gone when it answers');
    t.equal(await code(content().info({ digest })), 'NOT_FOUND');
  });

  t.test('GC follows gc.ref.content labels; gc.root; nothing referenced removed', async (t) => {
    // an image -> index -> manifest -> config and two layers, as a pull labels them
    const layer1 = await put('layer one');
    const layer2 = await put('layer two');
    const config = await put('{"config":true}');
    const manifest = await put('{"manifest":1}', { 'containerd.io/gc.ref.content.config': config, 'containerd.io/gc.ref.content.l.0': layer1, 'containerd.io/gc.ref.content.l.1': layer2 });
    const index = await put('{"index":1}', { 'containerd.io/gc.ref.content.m.0': manifest });
    const rooted = await put('kept by gc.root', { 'containerd.io/gc.root': 'true' });
    const slashRef = await put('referenced with a slash name');
    const holder = await put('holder', { 'containerd.io/gc.ref.content/extra': slashRef, 'containerd.io/gc.root': '1' });
    const loose = await put('nobody holds this');
    const kept = [layer1, layer2, config, manifest, index, rooted, slashRef, holder];
    await images().create({ image: { name: 'dc-gc:1', target: { mediaType: MEDIA_INDEX, digest: index, size: 11n } } });
    await images().create({ image: { name: 'dc-gc:tmp', target: { mediaType: MEDIA_INDEX, digest: loose, size: 17n } } });
    await images().delete({ name: 'dc-gc:tmp', sync: true });
    for (const dg of kept) t.ok(existsSync(blobFile(dg)), `kept: ${dg}`);
    t.notOk(existsSync(blobFile(loose)), 'the unreferenced blob is gone');
    t.same(await list(), [...kept].sort(), 'the namespace records exactly what is held');

    // dropping a reference label makes its target collectable
    await content().update({ info: { digest: manifest, labels: {} }, updateMask: { paths: ['labels.containerd.io/gc.ref.content.l.1'] } });
    await images().create({ image: { name: 'dc-gc:tmp', target: { mediaType: MEDIA_INDEX, digest: index, size: 11n } } });
    await images().delete({ name: 'dc-gc:tmp', sync: true });
    t.notOk(existsSync(blobFile(layer2)), 'a layer no label references is collected');
    t.ok(existsSync(blobFile(layer1)));
    await images().delete({ name: 'dc-gc:1', sync: true });
    for (const dg of [layer1, config, manifest, index]) t.notOk(existsSync(blobFile(dg)), `collected with its image: ${dg}`);
    for (const dg of [rooted, slashRef, holder]) t.ok(existsSync(blobFile(dg)), `gc.root and what it references stay: ${dg}`);
  });

  t.test('Leases hold content and ingests; Delete with sync collects; expiry; flat', async (t) => {
    const l = (await leases().create({ id: 'dc-lease', labels: { 'containerd.io/gc.expire': new Date(Date.now() + 3600_000).toISOString() } })).lease!;
    t.equal(l.id, 'dc-lease');
    const child = await put('child of leased', {}, { lease: 'dc-lease' });
    const parent = await put('leased parent', { 'containerd.io/gc.ref.content': child }, { lease: 'dc-lease' });
    await write('dc-leased-ingest', [{ action: WriteAction.WRITE, data: Buffer.from('partial') }], { lease: 'dc-lease' });
    const res = (await leases().listResources({ id: 'dc-lease' })).resources.map((r) => `${r.type} ${r.id}`).sort();
    t.same(res, [`content ${child}`, `content ${parent}`, 'ingests dc-leased-ingest'], 'writes under the lease header are in the lease');
    t.equal(await status(put('x', {}, { lease: 'dc-nope' })), 'NOT_FOUND: lease does not exist: not found', 'an unknown lease (containerd\'s words)');

    // a blob added by AddResource, and removed by DeleteResource
    const added = await put('added to the lease');
    await leases().addResource({ id: 'dc-lease', resource: { id: added, type: 'content' } });
    const dropped = await put('dropped from the lease');
    await leases().addResource({ id: 'dc-lease', resource: { id: dropped, type: 'content' } });
    await leases().deleteResource({ id: 'dc-lease', resource: { id: dropped, type: 'content' } });
    t.equal(await status(leases().addResource({ id: 'dc-lease', resource: { id: 'x', type: 'nope' } })), 'UNIMPLEMENTED: resource type nope not supported yet: not implemented');
    t.equal(await status(leases().addResource({ id: 'dc-lease', resource: { id: 'x', type: 'content' } })), 'INVALID_ARGUMENT: invalid content resource id x: invalid checksum digest format: invalid argument');
    t.equal(await status(leases().addResource({ id: 'dc-lease', resource: { id: 'x', type: 'content/y' } })), 'INVALID_ARGUMENT: invalid resource type content/y: invalid argument');
    t.equal(await status(leases().addResource({ id: 'dc-lease', resource: { id: 'x', type: 'snapshots' } })), 'INVALID_ARGUMENT: invalid snapshot resource type snapshots: invalid argument');

    // another lease's deletion with sync runs the collector: what dc-lease holds stays
    await leases().create({ id: 'dc-tmp' });
    await leases().delete({ id: 'dc-tmp', sync: true });
    for (const dg of [child, parent, added]) t.ok(existsSync(blobFile(dg)), `held by the lease: ${dg}`);
    t.notOk(existsSync(blobFile(dropped)), 'DeleteResource lets it go');
    t.equal(Number((await content().status({ ref: 'dc-leased-ingest' })).status!.offset), 7, 'the leased ingest stays');

    await leases().delete({ id: 'dc-lease', sync: true });
    for (const dg of [child, parent, added]) t.notOk(existsSync(blobFile(dg)), `collected after the lease: ${dg}`);
    t.equal(await code(content().status({ ref: 'dc-leased-ingest' })), 'NOT_FOUND', 'the ingest too');

    // an expired lease protects nothing and is removed by the collector
    await leases().create({ id: 'dc-expired', labels: { 'containerd.io/gc.expire': new Date(Date.now() - 1000).toISOString() } });
    const stale = await put('under an expired lease', {}, { lease: 'dc-expired' });
    // a flat lease holds its resources but not what they reference
    await leases().create({ id: 'dc-flat', labels: { 'containerd.io/gc.flat': '' } });
    const flatChild = await put('flat child', {}, { lease: 'dc-flat' });
    const flatParent = await put('flat parent', { 'containerd.io/gc.ref.content': flatChild }, { lease: 'dc-flat' });
    await leases().deleteResource({ id: 'dc-flat', resource: { id: flatChild, type: 'content' } });
    await leases().create({ id: 'dc-tmp' });
    await leases().delete({ id: 'dc-tmp', sync: true });
    t.notOk(existsSync(blobFile(stale)), 'content of an expired lease is collected');
    t.same((await leases().list({ filters: ['id==dc-expired'] })).leases, [], 'and the expired lease removed');
    t.ok(existsSync(blobFile(flatParent)), 'a flat lease holds its resource');
    t.notOk(existsSync(blobFile(flatChild)), 'but not what it references');
    await leases().delete({ id: 'dc-flat', sync: true });
  });

  t.test('unleased ingests are kept (24 h) and survive the collector', async (t) => {
    await write('dc-unleased', [{ action: WriteAction.WRITE, data: Buffer.from('abc') }]);
    await leases().create({ id: 'dc-tmp2' });
    await leases().delete({ id: 'dc-tmp2', sync: true });
    t.equal(Number((await content().status({ ref: 'dc-unleased' })).status!.offset), 3);
    await content().abort({ ref: 'dc-unleased' });
  });

  t.test('across a restart: an ingest resumes; a lease that expired meanwhile is collected at startup', async (t) => {
    const data = Buffer.from('written before and after a restart');
    await write('dc-restart', [{ action: WriteAction.WRITE, data: data.subarray(0, 10), total: data.length, expected: sha(data) }]);
    await leases().create({ id: 'dc-short', labels: { 'containerd.io/gc.expire': new Date(Date.now() + 1000).toISOString() } });
    const held = await put('held until the lease expires', {}, { lease: 'dc-short' });
    const rooted = await put('kept across restarts', { 'containerd.io/gc.root': '1' });
    conn.close();
    t.equal(await d.stop(), 0);
    await new Promise((r) => setTimeout(r, 1200));
    d = await startTsrund({ dir: d.dir });
    conn = connect(d.address, { namespace: 'dc' });
    await conn.ready();
    t.notOk(existsSync(blobFile(held)), 'content of the expired lease is gone before the daemon serves');
    t.same((await leases().list({ filters: ['id==dc-short'] })).leases, [], 'and the lease');
    t.ok(existsSync(blobFile(rooted)));
    t.equal(Number((await content().status({ ref: 'dc-restart' })).status!.offset), 10, 'the ingest is still there');
    const res = await write('dc-restart', [
      { action: WriteAction.STAT },
      { action: WriteAction.COMMIT, data: data.subarray(10), offset: 10, total: data.length, expected: sha(data) },
    ]);
    t.equal(res[0]!.digest, sha(data.subarray(0, 10)), 'the digest of the first part, recomputed');
    t.same(await read(sha(data)), data, 'resumed and committed after the restart');
  });
});
