// tsrctl export REF FILE: an image from tsrund's content store into an
// archive as containerd 1.6's export writes it (OCI layout with the name in
// index.json's annotations, plus a docker manifest.json), which both
// `ctr images import` and `docker load` take. An index keeps the manifests
// the store has (all platforms that were pulled; --platform: that one). The
// archive is written beside FILE and renamed into place once complete.
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import type { Connection } from '../../client/index.js';
import { statusName } from '../../client/index.js';
import { Content } from '../../gen/containerd/services/content/v1/content_pb.js';
import { Images } from '../../gen/containerd/services/images/v1/images_pb.js';
import { hostPlatform, isIndex, isManifest, parseJson, parsePlatform, platformScore, selectManifest, type ImageIndex, type ImageManifest, type OciDescriptor } from '../../images/media.js';
import { normalizeReference } from '../../images/reference.js';
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, ArchiveWriter, refName, repoTags } from './archive.js';
import { withConn } from './common.js';
import { hasBlob, readBlob } from './images.js';
import type { Globals } from './main.js';

async function* readChunks(conn: Connection, digest: string): AsyncGenerator<Uint8Array> {
  for await (const m of conn.service(Content).read({ digest })) yield m.data;
}

interface Collected {
  /** every blob once, in the order written */
  blobs: Map<string, OciDescriptor>;
  /** the image manifests exported, with their platform when an index gave one */
  manifests: Array<{ desc: OciDescriptor; manifest: ImageManifest }>;
}

async function collect(conn: Connection, name: string, target: OciDescriptor, platform: string | undefined): Promise<Collected> {
  const c: Collected = { blobs: new Map(), manifests: [] };
  const want = platform ? parsePlatform(platform) : undefined;
  const walk = async (d: OciDescriptor): Promise<void> => {
    if (isIndex(d.mediaType)) {
      const index = parseJson<ImageIndex>(await readBlob(conn, d.digest), `index ${d.digest} of ${name}`);
      const children = (index.manifests ?? []).filter((m) => !want || isIndex(m.mediaType) || platformScore(want, m.platform) >= 0);
      for (const m of children) if (await hasBlob(conn, m.digest)) await walk(m);
      if (c.manifests.length === 0) throw new Error(`${name}: none of the manifests of index ${d.digest}${platform ? ` for ${platform}` : ''} is in the content store`);
    } else if (isManifest(d.mediaType)) {
      const manifest = parseJson<ImageManifest>(await readBlob(conn, d.digest), `manifest ${d.digest} of ${name}`);
      for (const b of [manifest.config, ...manifest.layers]) {
        if (!(await hasBlob(conn, b.digest))) throw new Error(`${name}: blob ${b.digest} of manifest ${d.digest} is not in the content store (fetched without its layers?)`);
        c.blobs.set(b.digest, { mediaType: b.mediaType, digest: b.digest, size: Number(b.size) });
      }
      c.manifests.push({ desc: d, manifest });
    } else {
      throw new Error(`${name}: ${d.digest} is ${JSON.stringify(d.mediaType)}, neither an image index nor a manifest`);
    }
    c.blobs.set(d.digest, { mediaType: d.mediaType, digest: d.digest, size: Number(d.size) });
  };
  await walk(target);
  return c;
}

export default async function exportImage(g: Globals, ref: string, file: string, o: { platform?: string }): Promise<void> {
  const name = normalizeReference(ref);
  await withConn(g, async (conn) => {
    const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
    try {
      const { image } = await conn.service(Images).get({ name }).catch((e: unknown) => {
        throw statusName(e) === 'NOT_FOUND' ? new Error(`image ${name}: not found`) : e;
      });
      const t = image!.target!;
      const target: OciDescriptor = { mediaType: t.mediaType, digest: t.digest, size: Number(t.size) };
      const c = await collect(conn, name, target, o.platform);

      // docker load reads one manifest per image: this machine's (or --platform's)
      const want = o.platform ? parsePlatform(o.platform) : hostPlatform();
      const chosen = isIndex(target.mediaType) ? selectManifest({ schemaVersion: 2, manifests: c.manifests.map((m) => m.desc) }, want) : c.manifests[0]!.desc;
      const dockerManifest = c.manifests.find((m) => m.desc.digest === chosen?.digest)?.manifest;
      const blobPath = (digest: string): string => `blobs/${digest.replace(':', '/')}`;

      const fh = await open(tmp, 'wx', 0o644);
      try {
        const w = new ArchiveWriter(fh);
        await w.file('oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
        await w.dir('blobs');
        await w.dir('blobs/sha256');
        for (const b of c.blobs.values()) await w.blob(b, readChunks(conn, b.digest));
        const entry = { mediaType: target.mediaType, digest: target.digest, size: target.size, annotations: { [ANNOTATION_IMAGE_NAME]: name, [ANNOTATION_REF_NAME]: refName(name) } };
        await w.file('index.json', JSON.stringify({ schemaVersion: 2, manifests: [entry] }));
        if (dockerManifest) {
          const docker = [{ Config: blobPath(dockerManifest.config.digest), RepoTags: repoTags(name), Layers: dockerManifest.layers.map((l) => blobPath(l.digest)) }];
          await w.file('manifest.json', JSON.stringify(docker));
        }
        await w.end();
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, file);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
  });
}
