// Media types and platform selection in an index / manifest list (as
// containerd's platforms.Only matcher ranks them): exact variant first, a
// lower compatible one next (arm v6 on v7, amd64 v2 on v3), none asked:
// any variant; docker schema2 and OCI types; chain IDs.
import t from 'tap';
import { createHash } from 'node:crypto';
import { chainIds, documentMediaType, hostPlatform, isIndex, isLayer, isManifest, MT, parsePlatform, platformScore, selectManifest, type ImageIndex, type OciDescriptor, type Platform } from '../../src/images/media.js';

const entry = (digest: string, p: Platform, mediaType: string = MT.ociManifest) => ({ mediaType, digest, size: 1, platform: p });
const index = (...m: OciDescriptor[]): ImageIndex => ({ schemaVersion: 2, manifests: m });

t.test('linux/amd64 from a docker manifest list and an OCI index', async (t) => {
  const list = index(
    entry('arm64', { os: 'linux', architecture: 'arm64', variant: 'v8' }, MT.dockerManifest),
    entry('win', { os: 'windows', architecture: 'amd64' }, MT.dockerManifest),
    entry('amd64', { os: 'linux', architecture: 'amd64' }, MT.dockerManifest),
    entry('s390x', { os: 'linux', architecture: 's390x' }, MT.dockerManifest),
  );
  t.equal(selectManifest(list, { os: 'linux', architecture: 'amd64' })?.digest, 'amd64');
  t.equal(selectManifest(list, { os: 'windows', architecture: 'amd64' })?.digest, 'win');
  t.equal(selectManifest(list, { os: 'linux', architecture: 'arm64' })?.digest, 'arm64', 'arm64 means arm64/v8');
  t.equal(selectManifest(list, { os: 'linux', architecture: 'ppc64le' }), undefined);
});

t.test('variants', async (t) => {
  const arm = index(
    entry('v5', { os: 'linux', architecture: 'arm', variant: 'v5' }),
    entry('v6', { os: 'linux', architecture: 'arm', variant: 'v6' }),
    entry('v7', { os: 'linux', architecture: 'arm', variant: 'v7' }),
  );
  t.equal(selectManifest(arm, parsePlatform('linux/arm/v7'))?.digest, 'v7', 'exact');
  t.equal(selectManifest(arm, parsePlatform('linux/arm/v8'))?.digest, 'v7', 'the highest lower variant');
  t.equal(selectManifest(index(arm.manifests[0]!, arm.manifests[1]!), parsePlatform('linux/arm/v7'))?.digest, 'v6');
  t.equal(selectManifest(index(arm.manifests[2]!), parsePlatform('linux/arm/v6')), undefined, 'a higher variant does not run');
  const amd = index(entry('v3', { os: 'linux', architecture: 'amd64', variant: 'v3' }), entry('base', { os: 'linux', architecture: 'amd64' }));
  t.equal(selectManifest(amd, { os: 'linux', architecture: 'amd64' })?.digest, 'base', 'amd64 asked: v1, not v3');
  t.equal(selectManifest(amd, { os: 'linux', architecture: 'amd64', variant: 'v3' })?.digest, 'v3');
  t.equal(selectManifest(index(amd.manifests[0]!), { os: 'linux', architecture: 'amd64', variant: 'v2' }), undefined, 'v3 does not run on v2');
  t.equal(platformScore({ os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'arm64' }), 100, 'arm64 = arm64/v8');
  t.equal(platformScore({ os: 'linux', architecture: 'amd64' }, undefined), -1, 'no platform: no match');
});

t.test('entries that are not manifests are skipped', async (t) => {
  const i = index(entry('att', { os: 'unknown', architecture: 'unknown' }), { mediaType: 'application/vnd.in-toto+json', digest: 'x', size: 1, platform: { os: 'linux', architecture: 'amd64' } }, entry('ok', { os: 'linux', architecture: 'amd64' }));
  t.equal(selectManifest(i, { os: 'linux', architecture: 'amd64' })?.digest, 'ok');
});

t.test('platform strings', async (t) => {
  t.same(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  t.same(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64', variant: undefined });
  t.equal(parsePlatform('arm64').architecture, 'arm64');
  t.throws(() => parsePlatform('linux//v7'), /expected os\/arch\[\/variant\]/);
  t.throws(() => parsePlatform('a/b/c/d'), /expected os\/arch\[\/variant\]/);
  if (process.arch === 'x64') t.same(hostPlatform(), { os: 'linux', architecture: 'amd64' });
});

t.test('media types', async (t) => {
  for (const m of [MT.ociIndex, MT.dockerManifestList]) t.ok(isIndex(m), m);
  for (const m of [MT.ociManifest, MT.dockerManifest]) t.ok(isManifest(m), m);
  for (const m of [MT.ociLayer, MT.ociLayerGzip, MT.ociLayerZstd, MT.dockerLayerGzip, MT.dockerForeignLayerGzip]) t.ok(isLayer(m), m);
  t.notOk(isLayer(MT.ociConfig));
  t.equal(documentMediaType({ manifests: [] }), MT.ociIndex, 'an OCI index without mediaType');
  t.equal(documentMediaType({ config: {} }), MT.ociManifest);
  t.equal(documentMediaType({ mediaType: MT.dockerManifest, config: {} }), MT.dockerManifest);
  t.equal(documentMediaType({}, MT.dockerManifest), MT.dockerManifest, 'the Content-Type when the body does not say');
});

t.test('chain IDs (image-spec: ChainID(L0|L1) = sha256(ChainID(L0) + " " + DiffID(L1)))', async (t) => {
  const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
  const d = ['sha256:' + '1'.repeat(64), 'sha256:' + '2'.repeat(64), 'sha256:' + '3'.repeat(64)];
  const c = chainIds(d, sha);
  t.equal(c[0], d[0]);
  t.equal(c[1], sha(`${d[0]} ${d[1]}`));
  t.equal(c[2], sha(`${c[1]} ${d[2]}`));
  t.same(chainIds([], sha), []);
});
