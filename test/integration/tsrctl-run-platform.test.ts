// tsrctl run --platform: a real registry (docker-registry on 127.0.0.1)
// holding an index of two images built here, busybox-static for amd64 and a
// "linux/arm64" one (the same busybox layer, so that it runs here, plus a
// small layer that tells them apart: /platform). A run pulls and unpacks
// the asked platform's manifest only and runs it; a platform pulled later
// is fetched then; a platform the index lacks (from the registry, or from
// an index already local) fails with containerd's "no match for platform"
// and leaves no container, snapshot, lease, image or blob. Namespace "rp".
import t, { type Test } from 'tap';
import { execa } from 'execa';
import { Containers } from '../../src/gen/containerd/services/containers/v1/containers_pb.js';
import { Content } from '../../src/gen/containerd/services/content/v1/content_pb.js';
import { Images } from '../../src/gen/containerd/services/images/v1/images_pb.js';
import { Leases } from '../../src/gen/containerd/services/leases/v1/leases_pb.js';
import { Snapshots } from '../../src/gen/containerd/services/snapshots/v1/snapshots_pb.js';
import { connect, type Connection } from '../../src/client/index.js';
import { hasBlob } from '../../src/cli/tsrctl/images.js';
import { needsRoot } from '../helpers/cli.js';
import { cleanEnv, startTsrund, tempDir, TSRCTL, type RunningDaemon } from '../helpers/daemon.js';
import { busyboxLayer, fileLayer, ociLayout, registryMissing, skopeoPush, startRegistry, type Registry } from '../helpers/registry.js';

// the amd64 image runs busybox-static of this machine
const skip = needsRoot || registryMissing() || (process.arch === 'x64' ? false : `the amd64 image's busybox runs only on x64 (this is ${process.arch})`);

t.test('tsrctl run --platform', { skip }, async (t: Test) => {
  const base = busyboxLayer();
  const amd64Mark = fileLayer('platform', 'amd64\n');
  const arm64Mark = fileLayer('platform', 'arm64\n');
  const armMark = fileLayer('platform', 'arm/v7\n');
  const cmd = ['/bin/busybox', 'cat', '/platform'];
  const multi = ociLayout([
    { layers: [base, amd64Mark], cmd, architecture: 'amd64' },
    { layers: [base, arm64Mark], cmd, architecture: 'arm64' },
  ]);
  // an index without linux/arm64
  const noArm64 = ociLayout([
    { layers: [base, amd64Mark], cmd, architecture: 'amd64' },
    { layers: [base, armMark], cmd, architecture: 'arm', variant: 'v7' },
  ]);
  const reg: Registry = await startRegistry();
  t.teardown(() => reg.stop());
  await skopeoPush(reg, multi, 'library/multi:latest');
  await skopeoPush(reg, noArm64, 'library/noarm64:latest');
  const d: RunningDaemon = await startTsrund();
  t.teardown(() => d.stop());
  const conn: Connection = connect(d.address, { namespace: 'rp' });
  await conn.ready();
  t.teardown(() => conn.close());
  const ctl = (args: string[]) =>
    execa(process.execPath, [TSRCTL, '--address', d.address, '--namespace', 'rp', ...args], {
      reject: false,
      timeout: 60_000,
      stdin: 'ignore',
      env: { ...cleanEnv(), DOCKER_CONFIG: tempDir('tsrunc-docker-config-') },
    });
  const ref = `${reg.host}/library/multi:latest`;
  const noArmRef = `${reg.host}/library/noarm64:latest`;
  const [amd64, arm64] = JSON.parse(multi.index!.data.toString()).manifests.map((m: { digest: string }) => m.digest) as [string, string];

  const has = (digest: string): Promise<boolean> => hasBlob(conn, digest);
  const state = async () => {
    const snapshots: string[] = [];
    for await (const r of conn.service(Snapshots).list({ snapshotter: 'overlayfs' })) snapshots.push(...r.info.map((i) => i.name));
    const blobs: string[] = [];
    for await (const r of conn.service(Content).list({})) blobs.push(...r.info.map((i) => i.digest));
    return {
      snapshots: snapshots.sort(),
      blobs: blobs.sort(),
      images: (await conn.service(Images).list({})).images.map((i) => i.name).sort(),
      leases: (await conn.service(Leases).list({})).leases.map((l) => l.id).sort(),
      containers: (await conn.service(Containers).list({})).containers.map((c) => c.id).sort(),
      ingests: (await conn.service(Content).listStatuses({})).statuses.map((s) => s.ref),
    };
  };

  type State = Awaited<ReturnType<typeof state>>;
  // what a failed run left: new entries only (a collection after a failed pull may remove unreferenced ones)
  const added = (before: State, after: State): Record<string, string[]> =>
    Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v.filter((x) => !before[k as keyof State].includes(x))]));
  const NOTHING = { snapshots: [], blobs: [], images: [], leases: [], containers: [], ingests: [] };

  await t.test("--platform linux/arm64 pulls and runs that platform's manifest only", async (t) => {
    const r = await ctl(['run', '--rm', '--platform', 'linux/arm64', '--name', 'rp-arm', ref]);
    t.equal(r.exitCode, 0, r.stderr);
    t.equal(r.stdout, 'arm64', "the arm64 image's layers are the root");
    const lines = r.stderr.split('\n');
    t.equal(lines[0], `Unable to find image '${ref}' locally`);
    t.ok(lines.includes(`Digest: ${multi.index!.digest}`), 'the index was pulled');
    t.ok(await has(arm64), 'the arm64 manifest is in content');
    t.notOk(await has(amd64), 'the amd64 manifest was not fetched');
    t.notOk(await has(amd64Mark.digest), "nor the amd64 image's own layer");
    const s = await state();
    t.same(s.containers, [], '--rm: no container');
    t.equal(s.snapshots.length, 2, `the arm64 image's two layer snapshots only: ${s.snapshots.join(' ')}`);
    t.ok(s.snapshots.includes(base.diffId));

    const again = await ctl(['run', '--rm', '--platform', 'linux/arm64', '--name', 'rp-arm', ref]);
    t.equal(again.exitCode, 0, again.stderr);
    t.equal(again.stdout, 'arm64');
    t.equal(again.stderr, '', 'the second run pulls nothing');
  });

  await t.test("the host's platform, not in content yet, is pulled then; --platform linux/amd64 is the same", async (t) => {
    const r = await ctl(['run', '--rm', '--name', 'rp-host', ref]);
    t.equal(r.exitCode, 0, r.stderr);
    t.equal(r.stdout, 'amd64');
    t.equal(r.stderr.split('\n')[0], `Unable to find image '${ref}' locally`, 'the record was there, its amd64 manifest was not');
    t.ok(await has(amd64));
    const x = await ctl(['run', '--rm', '--platform', 'linux/amd64', '--name', 'rp-host', ref]);
    t.equal(x.exitCode, 0, x.stderr);
    t.equal(x.stdout, 'amd64');
    t.equal(x.stderr, '');
    const arm = await ctl(['run', '--rm', '--platform', 'linux/arm64', '--name', 'rp-arm', ref]);
    t.equal(arm.stdout, 'arm64', 'both platforms stay usable');
    t.equal(arm.stderr, '', 'and it needs no pull again');
    const { info } = await conn.service(Content).info({ digest: multi.index!.digest });
    const refs = Object.entries(info!.labels).filter(([k]) => k.startsWith('containerd.io/gc.ref.content.m.')).map(([, v]) => v).sort();
    t.same(refs, [amd64, arm64].sort(), "the index's GC labels hold both pulled manifests (else the next collection takes the first one)");
  });

  await t.test('a platform the registry index lacks: no match, exit 1, nothing left', async (t) => {
    const before = await state();
    const r = await ctl(['run', '--rm', '--platform', 'linux/arm64', '--name', 'rp-none', noArmRef]);
    t.equal(r.exitCode, 1);
    t.equal(r.stdout, '');
    t.match(r.stderr.trim().split('\n').at(-1), `no match for platform linux/arm64 in manifest ${noArm64.index!.digest}`);
    t.same(added(before, await state()), NOTHING, 'no container, snapshot, lease, image, blob or ingest');
  });

  await t.test('a platform a local index lacks: no match without a pull, nothing left', async (t) => {
    const p = await ctl(['pull', '--quiet', noArmRef]);
    t.equal(p.exitCode, 0, p.stderr);
    const before = await state();
    const r = await ctl(['run', '--rm', '--platform', 'linux/arm64', '--name', 'rp-none', noArmRef]);
    t.equal(r.exitCode, 1);
    t.equal(r.stdout, '');
    t.equal(r.stderr, `tsrctl: no match for platform linux/arm64 in manifest ${noArm64.index!.digest}`, 'no pull was tried');
    t.same(added(before, await state()), NOTHING, 'no container, snapshot, lease, image, blob or ingest');
    const v7 = await ctl(['run', '--rm', '--platform', 'linux/arm/v7', '--name', 'rp-v7', noArmRef]);
    t.equal(v7.exitCode, 0, v7.stderr);
    t.equal(v7.stdout, 'arm/v7', 'a variant selects its manifest');
  });

  await t.test('a malformed --platform fails before any pull', async (t) => {
    const before = await state();
    const r = await ctl(['run', '--rm', '--platform', 'linux//arm64', `${reg.host}/library/other:latest`]);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, 'expected os/arch[/variant]');
    t.notMatch(r.stderr, 'Unable to find image');
    t.same(added(before, await state()), NOTHING);
  });
});
