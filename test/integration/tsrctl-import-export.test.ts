// tsrctl import / export against its own tsrund: OCI archives (made here
// with our tar writer, and by skopeo) and `docker save` tars (made here as
// docker writes them: manifest.json, <id>.json, <layer>/layer.tar) from
// busybox-static. Round trips: what ctr's export of an imported image
// holds is what was imported; our export imports again, into a fresh
// tsrund and through `ctr images import`, with the same manifest digest; a
// docker-save image runs under `ctr run`. Bad archives leave nothing: no
// record, blob, snapshot, lease or ingest. Namespaces start with "ie".
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { tarArchive, type TarEntry } from '../../src/archive/tar-writer.js';
import { Content } from '../../src/gen/containerd/services/content/v1/content_pb.js';
import { Images } from '../../src/gen/containerd/services/images/v1/images_pb.js';
import { Leases } from '../../src/gen/containerd/services/leases/v1/leases_pb.js';
import { Snapshots } from '../../src/gen/containerd/services/snapshots/v1/snapshots_pb.js';
import { connect, type Connection } from '../../src/client/index.js';
import { needsRoot } from '../helpers/cli.js';
import { cleanEnv, startTsrund, tempDir, TSRCTL, type RunningDaemon } from '../helpers/daemon.js';

const CTR = '/usr/bin/ctr';
const BUSYBOX = '/bin/busybox';
const SKOPEO = '/usr/bin/skopeo';
const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

type Entry = TarEntry & { data?: Uint8Array | string };

interface Layer {
  tar: Buffer;
  blob: Buffer;
  mediaType: string;
}

function layer(entries: Entry[], gzip = true): Layer {
  const tar = tarArchive(entries);
  return gzip ? { tar, blob: gzipSync(tar), mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' } : { tar, blob: tar, mediaType: 'application/vnd.oci.image.layer.v1.tar' };
}

const busyboxLayer = (gzip = true): Layer =>
  layer(
    [
      { name: 'bin/', type: 'dir', mode: 0o755 },
      { name: 'bin/busybox', type: 'file', mode: 0o755, data: readFileSync(BUSYBOX) },
      { name: 'bin/sh', type: 'symlink', mode: 0o777, linkname: 'busybox' },
      { name: 'bin/echo', type: 'symlink', mode: 0o777, linkname: 'busybox' },
      { name: 'bin/id', type: 'symlink', mode: 0o777, linkname: 'busybox' },
    ],
    gzip,
  );
const fileLayer = (path: string, text: string, gzip = true): Layer => layer([{ name: path, type: 'file', mode: 0o644, data: text }], gzip);

interface Image {
  config: Buffer;
  manifest: Buffer;
  layers: Layer[];
}

function image(layers: Layer[], diffIds = layers.map((l) => sha(l.tar))): Image {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: diffIds } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: sha(l.blob), size: l.blob.length })),
    }),
  );
  return { config, manifest, layers };
}

/** An OCI layout tar; `blobs` changes what goes in (to drop or spoil one). */
function ociArchive(img: Image, annotations: Record<string, string>, blobs = (b: Array<[string, Buffer]>) => b): Buffer {
  const index = JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: OCI_MANIFEST, digest: sha(img.manifest), size: img.manifest.length, annotations }] });
  const all: Array<[string, Buffer]> = [img.config, img.manifest, ...img.layers.map((l) => l.blob)].map((b) => [`blobs/sha256/${sha(b).slice(7)}`, b]);
  return tarArchive([
    { name: 'oci-layout', type: 'file', mode: 0o644, data: JSON.stringify({ imageLayoutVersion: '1.0.0' }) },
    { name: 'blobs/', type: 'dir', mode: 0o755 },
    { name: 'blobs/sha256/', type: 'dir', mode: 0o755 },
    ...blobs(all).map(([name, data]) => ({ name, type: 'file' as const, mode: 0o444, data })),
    { name: 'index.json', type: 'file', mode: 0o644, data: index },
  ]);
}

/** A tar as `docker save` (before docker 25) writes it: each layer's blob in <id>/layer.tar (docker's are uncompressed), the config as <image id>.json, manifest.json last. */
function dockerSave(layers: Layer[], repoTags: string[]): { archive: Buffer; configDigest: string } {
  const diffIds = layers.map((l) => sha(l.tar));
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: diffIds } }));
  const ids = diffIds.map((d) => createHash('sha256').update(`layer ${d}`).digest('hex'));
  const entries: Entry[] = [];
  layers.forEach((l, i) => {
    entries.push({ name: `${ids[i]}/`, type: 'dir', mode: 0o755 }, { name: `${ids[i]}/VERSION`, type: 'file', mode: 0o644, data: '1.0' }, { name: `${ids[i]}/layer.tar`, type: 'file', mode: 0o644, data: l.blob });
  });
  entries.push({ name: `${sha(config).slice(7)}.json`, type: 'file', mode: 0o644, data: config });
  entries.push({ name: 'manifest.json', type: 'file', mode: 0o644, data: JSON.stringify([{ Config: `${sha(config).slice(7)}.json`, RepoTags: repoTags, Layers: ids.map((id) => `${id}/layer.tar`) }]) });
  entries.push({ name: 'repositories', type: 'file', mode: 0o644, data: '{}' });
  return { archive: tarArchive(entries), configDigest: sha(config) };
}

const missing = !existsSync(BUSYBOX) ? `${BUSYBOX} is missing (apt-get install busybox-static)` : !existsSync(CTR) ? `${CTR} is missing (apt-get install containerd)` : undefined;

t.test('tsrctl import and export', { skip: needsRoot || missing }, async (t: Test) => {
  const d: RunningDaemon = await startTsrund();
  t.teardown(() => d.stop());
  const conn: Connection = connect(d.address);
  await conn.ready();
  t.teardown(() => conn.close());
  const dir = tempDir('tsrunc-ie-');
  const ctl = (ns: string, args: string[], daemon = d) => execa(process.execPath, [TSRCTL, '--address', daemon.address, '-n', ns, ...args], { reject: false, timeout: 120_000, env: cleanEnv() });
  const ctr = (ns: string, args: string[], daemon = d) => execa(CTR, ['--address', daemon.address, '-n', ns, ...args], { reject: false, timeout: 120_000, env: cleanEnv() });
  const file = (name: string, data: Buffer): string => {
    const p = join(dir, name);
    writeFileSync(p, data);
    return p;
  };
  const target = async (ns: string, name: string, c = conn): Promise<string | undefined> => (await c.service(Images).get({ name }, { namespace: ns })).image?.target?.digest;
  const snapshotNames = async (ns: string, c = conn): Promise<string[]> => {
    const out: string[] = [];
    for await (const m of c.service(Snapshots).list({ snapshotter: 'overlayfs' }, { namespace: ns })) out.push(...m.info.map((i) => i.name));
    return out.sort();
  };
  const blobDigests = async (ns: string): Promise<string[]> => {
    const out: string[] = [];
    for await (const m of conn.service(Content).list({}, { namespace: ns })) out.push(...m.info.map((i) => i.digest));
    return out;
  };
  const readBlob = async (ns: string, digest: string): Promise<Buffer> => {
    const parts: Buffer[] = [];
    for await (const m of conn.service(Content).read({ digest }, { namespace: ns })) parts.push(Buffer.from(m.data));
    return Buffer.concat(parts);
  };
  /** Everything a namespace holds: image records, blobs, snapshots, leases, ingests. */
  const holdings = async (ns: string) => ({
    images: (await conn.service(Images).list({}, { namespace: ns })).images.map((i) => i.name),
    blobs: await blobDigests(ns),
    snapshots: await snapshotNames(ns),
    leases: (await conn.service(Leases).list({}, { namespace: ns })).leases.map((l) => l.id),
    ingests: (await conn.service(Content).listStatuses({}, { namespace: ns })).statuses.map((s) => s.ref),
  });
  const nothing = { images: [], blobs: [], snapshots: [], leases: [], ingests: [] };

  const bb = busyboxLayer();
  const motd = fileLayer('etc/motd', 'imported\n');
  const img = image([bb, motd]);
  const chain = [sha(bb.tar), sha(`${sha(bb.tar)} ${sha(motd.tar)}`)];

  await t.test('an OCI archive: blobs in content, snapshots by chain ID, the record; ctr export gives the same blobs', async (t) => {
    const archive = file('oci.tar', ociArchive(img, { 'org.opencontainers.image.ref.name': 'latest' }));
    const unnamed = await ctl('ie1', ['import', archive]);
    t.equal(unnamed.exitCode, 1);
    t.match(unnamed.stderr, /has no name \(index\.json gives only the tag "latest"\): give it one with --name/);
    t.same(await holdings('ie1'), nothing, 'refused before anything was written');

    const r = await ctl('ie1', ['import', '--name', 'tsrtest/oci:v1', archive]);
    t.equal(r.exitCode, 0, r.stderr);
    t.equal(r.stdout, 'Loaded image: tsrtest/oci:v1');
    const name = 'docker.io/tsrtest/oci:v1';
    t.equal(await target('ie1', name), sha(img.manifest));
    t.same(await snapshotNames('ie1'), [...chain].sort(), 'one committed snapshot per chain ID');
    const h = await holdings('ie1');
    t.same(h.blobs.sort(), [img.config, img.manifest, bb.blob, motd.blob].map(sha).sort());
    t.same([h.leases, h.ingests], [[], []], 'the import lease is gone, no ingest left');
    const info = await conn.service(Content).info({ digest: sha(img.manifest) }, { namespace: 'ie1' });
    t.equal(info.info?.labels['containerd.io/gc.ref.content.l.1'], sha(motd.blob), 'gc references as containerd labels them');

    const again = await ctl('ie1', ['import', '--name', 'tsrtest/oci:v1', archive]);
    t.equal(again.exitCode, 0, `a second import of the same archive: ${again.stderr}`);

    const exported = join(dir, 'ctr-export.tar');
    const x = await ctr('ie1', ['images', 'export', exported, name]);
    t.equal(x.exitCode, 0, x.stderr);
    const out = join(dir, 'ctr-export');
    await execa('mkdir', ['-p', out]);
    await execa('tar', ['-C', out, '-xf', exported]);
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    t.equal(index.manifests[0]?.digest, sha(img.manifest), 'ctr exports the manifest imported');
    for (const b of [img.config, img.manifest, bb.blob, motd.blob]) t.ok(readFileSync(join(out, 'blobs/sha256', sha(b).slice(7))).equals(b), `blob ${sha(b).slice(7, 19)}: same bytes`);
  });

  await t.test('tsrctl export, then import into a fresh tsrund and through ctr: the same manifest digest; ctr run works', async (t) => {
    const exported = join(dir, 'tsrctl-export.tar');
    const x = await ctl('ie1', ['export', 'tsrtest/oci:v1', exported]);
    t.equal(x.exitCode, 0, x.stderr);
    const members = (await execa('tar', ['-tf', exported])).stdout.split('\n');
    t.same(members.slice(0, 3), ['oci-layout', 'blobs/', 'blobs/sha256/']);
    t.ok(members.includes('index.json') && members.includes('manifest.json'), 'index.json and a docker manifest.json');
    const docker = JSON.parse((await execa('tar', ['-xOf', exported, 'manifest.json'])).stdout) as Array<{ Config: string; RepoTags: string[]; Layers: string[] }>;
    t.same(docker, [{ Config: `blobs/sha256/${sha(img.config).slice(7)}`, RepoTags: ['tsrtest/oci:v1'], Layers: [bb.blob, motd.blob].map((b) => `blobs/sha256/${sha(b).slice(7)}`) }]);
    t.same(readdirSync(dir).filter((f) => f.includes('.tmp-')), [], 'no temp file left');

    const fresh = await startTsrund();
    t.teardown(() => fresh.stop());
    const c2 = connect(fresh.address);
    await c2.ready();
    t.teardown(() => c2.close());
    const r = await ctl('ie2', ['import', exported], fresh);
    t.equal(r.exitCode, 0, r.stderr);
    t.equal(r.stdout, 'Loaded image: tsrtest/oci:v1', 'the name from index.json');
    t.equal(await target('ie2', 'docker.io/tsrtest/oci:v1', c2), sha(img.manifest), 'same manifest digest after the round trip');
    t.same(await snapshotNames('ie2', c2), [...chain].sort());

    const ci = await ctr('ie3', ['images', 'import', exported], fresh);
    t.equal(ci.exitCode, 0, ci.stderr);
    t.equal(await target('ie3', 'docker.io/tsrtest/oci:v1', c2), sha(img.manifest), 'ctr images import reads our archive: same digest');

    const run = await ctr('ie2', ['run', '--rm', 'docker.io/tsrtest/oci:v1', 'ie-run1', '/bin/sh', '-c', 'cat /etc/motd'], fresh);
    t.equal(run.exitCode, 0, run.stderr);
    t.equal(run.stdout, 'imported');

    const nf = await ctl('ie1', ['export', 'tsrtest/nope', join(dir, 'nope.tar')]);
    t.equal(nf.exitCode, 1);
    t.equal(nf.stderr, 'tsrctl: image docker.io/tsrtest/nope:latest: not found');
    t.notOk(existsSync(join(dir, 'nope.tar')));
  });

  await t.test('a docker save tar: RepoTags normalised, a docker schema2 manifest over its blobs; ctr run of it', async (t) => {
    const { archive, configDigest } = dockerSave([busyboxLayer(false), fileLayer('etc/greeting', 'hi from docker save\n', false)], ['tsrtest/saved:v2', 'localhost:5000/saved:latest']);
    const r = await ctl('ie4', ['import', file('docker-save.tar', archive)]);
    t.equal(r.exitCode, 0, r.stderr);
    t.equal(r.stdout, 'Loaded image: tsrtest/saved:v2\nLoaded image: localhost:5000/saved:latest');
    const m = (await conn.service(Images).get({ name: 'docker.io/tsrtest/saved:v2' }, { namespace: 'ie4' })).image!;
    t.equal(m.target?.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    t.equal(await target('ie4', 'localhost:5000/saved:latest'), m.target?.digest, 'both tags name one manifest');
    const manifest = JSON.parse((await readBlob('ie4', m.target!.digest)).toString()) as {
      config: { digest: string; mediaType: string };
      layers: Array<{ mediaType: string }>;
    };
    t.equal(manifest.config.digest, configDigest);
    t.same(manifest.layers.map((l) => l.mediaType), ['application/vnd.docker.image.rootfs.diff.tar', 'application/vnd.docker.image.rootfs.diff.tar']);
    const run = await ctr('ie4', ['run', '--rm', 'docker.io/tsrtest/saved:v2', 'ie-run2', '/bin/echo', 'hi']);
    t.equal(run.exitCode, 0, run.stderr);
    t.equal(run.stdout, 'hi');
    const id = await ctr('ie4', ['run', '--rm', 'docker.io/tsrtest/saved:v2', 'ie-run3', '/bin/sh', '-c', 'id -u; cat /etc/greeting']);
    t.equal(id.stdout, '0\nhi from docker save');

    // a gzip-compressed layer.tar (as some tools write it): the media type from its first bytes
    const gz = dockerSave([busyboxLayer(true)], ['tsrtest/gz:1']);
    const g = await ctl('ie4', ['import', file('docker-save-gz.tar', gz.archive)]);
    t.equal(g.exitCode, 0, g.stderr);
    const gm = (await conn.service(Images).get({ name: 'docker.io/tsrtest/gz:1' }, { namespace: 'ie4' })).image!;
    const gman = JSON.parse((await readBlob('ie4', gm.target!.digest)).toString()) as { layers: Array<{ mediaType: string }> };
    t.same(gman.layers.map((l) => l.mediaType), ['application/vnd.docker.image.rootfs.diff.tar.gzip']);
    t.ok((await snapshotNames('ie4')).includes(sha(busyboxLayer(true).tar)), 'unpacked under its diff ID');
  });

  await t.test('skopeo oci-archive: the name from its ref.name annotation', { skip: existsSync(SKOPEO) ? false : `${SKOPEO} is missing (apt-get install skopeo)` }, async (t) => {
    const layout = join(dir, 'layout');
    await execa('mkdir', ['-p', layout]);
    await execa('tar', ['-C', layout, '-xf', file('for-skopeo.tar', ociArchive(img, { 'org.opencontainers.image.ref.name': 'latest' }))]);
    const archive = join(dir, 'skopeo.tar');
    await execa(SKOPEO, ['copy', '--quiet', `oci:${layout}:latest`, `oci-archive:${archive}:example.com/team/app:v3`]);
    const r = await ctl('ie5', ['import', archive]);
    t.equal(r.exitCode, 0, r.stderr);
    t.equal(r.stdout, 'Loaded image: example.com/team/app:v3');
    t.equal(await target('ie5', 'example.com/team/app:v3'), sha(img.manifest), 'skopeo kept the manifest as it was');
  });

  await t.test('bad archives: a clear error and nothing left', async (t) => {
    const named = { 'io.containerd.image.name': 'docker.io/tsrtest/bad:1' };
    const good = ociArchive(img, named);
    const cases: Array<[string, Buffer, RegExp]> = [
      ['not a tar', Buffer.from('this is not a tar archive at all, just some text that is long enough'.repeat(20)), /invalid tar archive: checksum field is not an octal number/],
      ['a tar cut in the middle of a blob', good.subarray(0, 4096 + 1000), /invalid tar archive: unexpected end of archive/],
      ['a tar without index.json or manifest.json', tarArchive([{ name: 'hello', type: 'file', mode: 0o644, data: 'x' }]), /not an image archive: it has neither index\.json \(OCI layout\) nor manifest\.json \(docker save\)/],
      ['a missing layer blob', ociArchive(img, named, (b) => b.filter(([n]) => n !== `blobs/sha256/${sha(motd.blob).slice(7)}`)), new RegExp(`layer 1 of manifest ${sha(img.manifest)}: ${sha(motd.blob)} is missing from the archive`)],
      [
        'a blob whose bytes do not match its name',
        ociArchive(img, named, (b) => b.map(([n, data]) => [n, data.equals(bb.blob) ? Buffer.concat([data.subarray(0, data.length - 1), Buffer.from([data[data.length - 1]! ^ 1])]) : data])),
        new RegExp(`blobs/sha256/${sha(bb.blob).slice(7)}: its contents have digest sha256:[0-9a-f]{64}, not the ${sha(bb.blob)} its name says`),
      ],
      ["a docker save tar whose layer is not the config's diff ID", dockerSaveSwapped(busyboxLayer(false), fileLayer('x', 'y', false)), /layer a{64}\/layer\.tar has digest sha256:[0-9a-f]{64}, the config's diff ID 0 is sha256:/],
      [
        'a docker save tar whose config is not its name',
        tarArchive([
          { name: `${'b'.repeat(64)}.json`, type: 'file', mode: 0o644, data: '{}' },
          { name: 'manifest.json', type: 'file', mode: 0o644, data: JSON.stringify([{ Config: `${'b'.repeat(64)}.json`, RepoTags: ['x:1'], Layers: [] }]) },
        ]),
        /config b{64}\.json: its contents have digest sha256:/,
      ],
    ];
    for (const [what, data, want] of cases) {
      const r = await ctl('ie6', ['import', file('bad.tar', data)]);
      t.equal(r.exitCode, 1, `${what}: refused`);
      t.match(r.stderr, want, `${what}: ${r.stderr.trim()}`);
      t.same(await holdings('ie6'), nothing, `${what}: nothing left`);
    }

    // the daemon's own checks: a gzip layer whose contents are not the
    // config's diff ID is found only while unpacking, after the blobs went in
    const wrong = image([bb, motd], [sha(bb.tar), sha('something else')]);
    const r = await ctl('ie6', ['import', file('bad-diff.tar', ociArchive(wrong, named))]);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /unpack layer .*diff ID|diff ID.*sha256:/, r.stderr.trim());
    t.same(await holdings('ie6'), nothing, 'the failed unpack took its blobs and snapshots with the lease');
  });
});

/** A docker save tar whose config names `claimed`'s diff ID while layer.tar holds `actual`. */
function dockerSaveSwapped(claimed: Layer, actual: Layer): Buffer {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(claimed.tar)] } }));
  const id = 'a'.repeat(64);
  return tarArchive([
    { name: `${id}/layer.tar`, type: 'file', mode: 0o644, data: actual.tar },
    { name: `${sha(config).slice(7)}.json`, type: 'file', mode: 0o644, data: config },
    { name: 'manifest.json', type: 'file', mode: 0o644, data: JSON.stringify([{ Config: `${sha(config).slice(7)}.json`, RepoTags: ['tsrtest/bad:2'], Layers: [`${id}/layer.tar`] }]) },
  ]);
}
