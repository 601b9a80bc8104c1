// ctr 1.6 (Debian's containerd package) against tsrund's Content, Images
// and Leases services: `ctr --address SOCK content ingest/ls/get/label/
// active/rm`, `ctr images ls/label/tag/rm`, `ctr leases create/ls/rm`.
// containerd's daemon is never started. Images are created with the TS
// client (ctr makes them only by pulling or importing). Namespace "ctrc".
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { Content, WriteAction } from '../../src/gen/containerd/services/content/v1/content_pb.js';
import { Images } from '../../src/gen/containerd/services/images/v1/images_pb.js';
import { connect, type Connection } from '../../src/client/index.js';
import { cleanEnv, startTsrund, type RunningDaemon } from '../helpers/daemon.js';

const CTR = '/usr/bin/ctr';
const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const MEDIA_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

if (!existsSync(CTR)) {
  t.test('ctr content, images, leases against tsrund', { skip: `${CTR} is not installed (Debian package containerd)` }, () => {});
} else {
  let d: RunningDaemon;
  let conn: Connection;
  t.before(async () => {
    d = await startTsrund();
    conn = connect(d.address, { namespace: 'ctrc' });
    await conn.ready();
  });
  t.teardown(async () => {
    conn?.close();
    await d?.stop();
  });
  const ctr = (args: string[], input?: Buffer | string) =>
    execa(CTR, ['--address', d.address, '-n', 'ctrc', ...args], { reject: false, timeout: 30_000, env: cleanEnv(), ...(input === undefined ? {} : { input }) });
  const blobFile = (digest: string) => join(d.root, 'content', 'blobs', 'sha256', digest.slice('sha256:'.length));
  const ingest = async (data: Buffer | string, labels: string[] = []) => {
    const digest = sha(data);
    const r = await ctr(['content', 'ingest', '--expected-size', String(Buffer.byteLength(data)), '--expected-digest', digest, `ingest-${digest}`], data);
    if (r.exitCode !== 0) throw new Error(`ctr content ingest: ${r.stderr}`);
    if (labels.length) await ctr(['content', 'label', digest, ...labels]);
    return digest;
  };

  t.test('ctr content ingest, ls, get, label, rm', async (t) => {
    const data = 'hello from ctr\n';
    const digest = sha(data);
    const r = await ctr(['content', 'ingest', '--expected-size', String(data.length), '--expected-digest', digest, 'ctrc-ref'], data);
    t.equal(r.exitCode, 0, r.stderr);
    t.ok(existsSync(blobFile(digest)), 'the blob is committed');
    const ls = await ctr(['content', 'ls']);
    t.equal(ls.exitCode, 0, ls.stderr);
    t.match(ls.stdout, /^DIGEST\s+SIZE\s+AGE\s+LABELS\s*\n/);
    t.match(ls.stdout, new RegExp(`^${digest}\\s+${data.length}B\\s+Less than a second\\s+-\\s*$`, 'm'));
    t.same((await ctr(['content', 'ls', '-q'])).stdout.split('\n'), [digest]);
    const get = await ctr(['content', 'get', digest]);
    t.equal(get.stdout, data.trimEnd(), 'content get: the bytes (Read)');

    const label = await ctr(['content', 'label', digest, 'team=x', 'containerd.io/gc.root=1']);
    t.equal(label.exitCode, 0, label.stderr);
    t.same(label.stdout.trim().split(',').sort(), ['containerd.io/gc.root=1', 'team=x']);
    t.match((await ctr(['content', 'ls'])).stdout, /team=x/);
    t.same((await ctr(['content', 'ls', '-q', 'labels.team==x'])).stdout.split('\n'), [digest], 'filters reach List');
    t.equal((await ctr(['content', 'ls', '-q', 'labels.team==y'])).stdout, '');
    await ctr(['content', 'label', digest, 'team=']);
    t.notMatch((await ctr(['content', 'ls'])).stdout, /team=/, 'an empty value removes the label');

    const again = await ctr(['content', 'ingest', '--expected-size', String(data.length), '--expected-digest', digest, 'ctrc-ref2'], data);
    t.equal(again.exitCode, 0, `ingesting what is there succeeds (AlreadyExists is success to ctr): ${again.stderr}`);

    const rm = await ctr(['content', 'rm', digest]);
    t.equal(rm.exitCode, 0, rm.stderr);
    t.equal(rm.stdout.trim(), digest, 'rm prints what it removed');
    t.notOk(existsSync(blobFile(digest)));
    t.equal((await ctr(['content', 'ls', '-q'])).stdout, '');
    const missing = await ctr(['content', 'rm', digest]);
    t.same([missing.exitCode, missing.stdout], [0, ''], 'rm of a missing blob: nothing, as ctr ignores NotFound');
    const badGet = await ctr(['content', 'get', digest]);
    t.not(badGet.exitCode, 0);
    t.match(badGet.stderr, `content digest ${digest}: not found`);
  });

  t.test('ctr content ingest of wrong bytes commits nothing; active and resume', async (t) => {
    const wrong = sha('other');
    const r = await ctr(['content', 'ingest', '--expected-size', '5', '--expected-digest', wrong, 'ctrc-bad'], 'bytes');
    t.not(r.exitCode, 0);
    t.match(r.stderr, `unexpected commit digest ${sha('bytes')}, expected ${wrong}: failed precondition`);
    t.notOk(existsSync(blobFile(sha('bytes'))));
    t.notOk(existsSync(blobFile(wrong)));
    t.equal((await ctr(['content', 'ls', '-q'])).stdout, '');
    t.notMatch((await ctr(['content', 'active'])).stdout, /ctrc-bad/, 'no ingest left of the wrong bytes');

    // a partial ingest (written through the TS client) shows in `active` and ctr resumes it
    const data = Buffer.from('0123456789abcdef');
    const call = conn.service(Content).write();
    const done = new Promise((resolve, reject) => call.on('error', reject).on('end', resolve).resume());
    call.write({ action: WriteAction.WRITE, ref: 'ctrc-part', data: data.subarray(0, 6), total: BigInt(data.length), expected: sha(data) });
    call.end();
    await done;
    const active = await ctr(['content', 'active']);
    t.match(active.stdout, /^REF\s+SIZE\s+AGE\s*\n/);
    t.match(active.stdout, /^ctrc-part\s+6B\s+/m);
    // ctr seeks its stdin past what the ingest has: a file, as a pipe cannot seek
    const file = join(d.dir, 'ctrc-part.bin');
    writeFileSync(file, data);
    const stdin = openSync(file, 'r');
    const resumed = spawnSync(CTR, ['--address', d.address, '-n', 'ctrc', 'content', 'ingest', '--expected-size', String(data.length), '--expected-digest', sha(data), 'ctrc-part'], {
      env: cleanEnv(),
      stdio: [stdin, 'pipe', 'pipe'],
      encoding: 'utf8',
      timeout: 30_000,
    });
    closeSync(stdin);
    t.equal(resumed.status, 0, resumed.stderr);
    t.equal((await conn.service(Content).info({ digest: sha(data) })).info?.size, BigInt(data.length), 'resumed and committed');
    t.notMatch((await ctr(['content', 'active'])).stdout, /ctrc-part/);
    await ctr(['content', 'rm', sha(data)]);
  });

  t.test('ctr images ls, label, tag, rm --sync', async (t) => {
    const layer = await ingest('not really a tar');
    const config = await ingest(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha('not really a tar')] } }));
    const manifestJson = JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 0 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: 16 }],
    });
    const manifest = await ingest(manifestJson, [`containerd.io/gc.ref.content.config=${config}`, `containerd.io/gc.ref.content.l.0=${layer}`]);
    await conn.service(Images).create({ image: { name: 'example.com/ctrc/img:1', labels: { app: 'a' }, target: { mediaType: MEDIA_MANIFEST, digest: manifest, size: BigInt(manifestJson.length) } } });

    const ls = await ctr(['images', 'ls']);
    t.equal(ls.exitCode, 0, ls.stderr);
    t.match(ls.stdout, /^REF\s+TYPE\s+DIGEST\s+SIZE\s+PLATFORMS\s+LABELS\s*\n/);
    t.match(ls.stdout, new RegExp(`^example.com/ctrc/img:1\\s+${MEDIA_MANIFEST.replaceAll('.', '\\.').replaceAll('+', '\\+')}\\s+${manifest}\\s+\\S+ \\S+\\s+linux/amd64\\s+app=a\\s*$`, 'm'), 'size and platform read from content');
    t.same((await ctr(['images', 'ls', '-q'])).stdout.split('\n'), ['example.com/ctrc/img:1']);
    t.same((await ctr(['images', 'ls', '-q', 'labels.app==b'])).stdout, '', 'filters reach List');

    const label = await ctr(['images', 'label', 'example.com/ctrc/img:1', 'env=prod']);
    t.equal(label.exitCode, 0, label.stderr);
    t.match((await ctr(['images', 'ls'])).stdout, /app=a,env=prod|env=prod,app=a/);
    const tag = await ctr(['images', 'tag', 'example.com/ctrc/img:1', 'example.com/ctrc/img:2']);
    t.equal(tag.exitCode, 0, tag.stderr);
    t.same((await ctr(['images', 'ls', '-q'])).stdout.split('\n'), ['example.com/ctrc/img:1', 'example.com/ctrc/img:2']);
    const dupTag = await ctr(['images', 'tag', 'example.com/ctrc/img:1', 'example.com/ctrc/img:2']);
    t.not(dupTag.exitCode, 0);
    t.match(dupTag.stderr, 'image "example.com/ctrc/img:2": already exists');

    const rm1 = await ctr(['images', 'rm', '--sync', 'example.com/ctrc/img:1']);
    t.equal(rm1.exitCode, 0, rm1.stderr);
    for (const dg of [layer, config, manifest]) t.ok(existsSync(blobFile(dg)), `the other tag keeps ${dg}`);
    const rm2 = await ctr(['images', 'rm', '--sync', 'example.com/ctrc/img:2']);
    t.equal(rm2.exitCode, 0, rm2.stderr);
    for (const dg of [layer, config, manifest]) t.notOk(existsSync(blobFile(dg)), `collected with the last image: ${dg}`);
    t.equal((await ctr(['content', 'ls', '-q'])).stdout, '');
    const missing = await ctr(['images', 'rm', 'example.com/ctrc/img:1']);
    t.match(missing.stderr, 'example.com/ctrc/img:1: image not found', 'ctr warns about an unknown image (NotFound)');
  });

  t.test('ctr leases create, ls, rm --sync', async (t) => {
    const c = await ctr(['leases', 'create', '--id', 'ctrc-l1', '--expires', '1h', 'team=x']);
    t.equal(c.exitCode, 0, c.stderr);
    t.equal(c.stdout.trim(), 'ctrc-l1');
    const ls = await ctr(['leases', 'ls']);
    t.match(ls.stdout, /^ID\s+CREATED AT\s+LABELS\s*\n/);
    const line = ls.stdout.split('\n').find((l) => l.startsWith('ctrc-l1'))!;
    const expire = /containerd\.io\/gc\.expire=(\S+?)(,|\s|$)/.exec(line)?.[1];
    t.ok(expire && Math.abs(Date.parse(expire) - Date.now() - 3600_000) < 60_000, `the expiry label ctr sets: ${line}`);
    t.match(line, /team=x/);
    t.same((await ctr(['leases', 'ls', '-q'])).stdout.split('\n'), ['ctrc-l1']);
    const noId = await ctr(['leases', 'create']);
    t.not(noId.exitCode, 0);
    t.match(noId.stderr, 'lease id must be provided', 'ctr 1.6 sends no id without --id, and containerd refuses it too');

    // content held by the lease survives a collection, and goes with it
    const held = sha('held by a lease');
    const call = conn.service(Content).write({ lease: 'ctrc-l1' });
    const done = new Promise((resolve, reject) => call.on('error', reject).on('end', resolve).resume());
    call.write({ action: WriteAction.COMMIT, ref: 'ctrc-held', data: Buffer.from('held by a lease'), expected: held });
    call.end();
    await done;
    await ctr(['leases', 'create', '--id', 'ctrc-tmp']);
    t.equal((await ctr(['leases', 'rm', '--sync', 'ctrc-tmp'])).exitCode, 0);
    t.ok(existsSync(blobFile(held)), 'held while the lease lives');
    const rm = await ctr(['leases', 'rm', '--sync', 'ctrc-l1']);
    t.equal(rm.exitCode, 0, rm.stderr);
    t.equal(rm.stdout.trim(), 'ctrc-l1');
    t.notOk(existsSync(blobFile(held)), 'collected when the lease is removed with --sync');
    const missing = await ctr(['leases', 'rm', 'ctrc-l1']);
    t.not(missing.exitCode, 0);
    t.match(missing.stderr, 'lease "ctrc-l1": not found');
  });
}
