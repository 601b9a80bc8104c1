// tsrctl images ls | inspect | rm | tag, over containerd's images.v1 and
// content.v1 (the manifest and config are read from the daemon's content
// store to show the image ID, the size and the platform, as docker does).
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { Images, type Image } from '../../gen/containerd/services/images/v1/images_pb.js';
import { Content } from '../../gen/containerd/services/content/v1/content_pb.js';
import { statusName, type Connection } from '../../client/index.js';
import { formatPlatform, hostPlatform, isIndex, isManifest, parseJson, platformScore, selectManifest, type ImageConfig, type ImageIndex, type ImageManifest, type Platform } from '../../images/media.js';
import { familiarName, normalizeReference, parseReference } from '../../images/reference.js';
import { out, err } from '../output.js';
import { ago, table, withConn } from './common.js';
import type { Globals } from './main.js';
import { humanSize } from './progress.js';

export async function readBlob(conn: Connection, digest: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const m of conn.service(Content).read({ digest })) parts.push(Buffer.from(m.data));
  return Buffer.concat(parts);
}

/** Whether the daemon's content store holds the blob. */
export async function hasBlob(conn: Connection, digest: string): Promise<boolean> {
  try {
    await conn.service(Content).info({ digest });
    return true;
  } catch (e) {
    if (statusName(e) === 'NOT_FOUND') return false;
    throw e;
  }
}

export interface Resolved {
  manifestDigest: string;
  manifest: ImageManifest;
  config: ImageConfig;
  configDigest: string;
  /** manifest + config + layers (compressed), for this machine's platform */
  size: number;
}

/**
 * The manifest and config of an image for a platform (this machine's by
 * default), or why they cannot be read: a blob missing from the content
 * store is gRPC NOT_FOUND, a platform the image lacks a plain Error.
 */
export async function resolveImage(conn: Connection, img: Image, platform?: Platform): Promise<Resolved> {
  const want = platform ?? hostPlatform();
  let desc = { mediaType: img.target!.mediaType, digest: img.target!.digest, size: Number(img.target!.size) };
  const noMatch = (): Error => new Error(`no match for platform ${formatPlatform(want)} in manifest ${img.target!.digest}`);
  if (isIndex(desc.mediaType)) {
    const index = parseJson<ImageIndex>(await readBlob(conn, desc.digest), `index ${desc.digest}`);
    const m = selectManifest(index, want);
    if (!m) throw noMatch();
    desc = m;
  }
  if (!isManifest(desc.mediaType)) throw new Error(`${desc.mediaType} is not an image manifest`);
  const manifest = parseJson<ImageManifest>(await readBlob(conn, desc.digest), `manifest ${desc.digest}`);
  const config = parseJson<ImageConfig>(await readBlob(conn, manifest.config.digest), `config ${manifest.config.digest}`);
  // a lone manifest says its platform in the config: checked only when one was asked for (ls shows any image)
  if (platform && !isIndex(img.target!.mediaType) && platformScore(platform, { os: config.os ?? '', architecture: config.architecture ?? '', variant: config.variant }) < 0) throw noMatch();
  const size = desc.size + manifest.config.size + manifest.layers.reduce((n, l) => n + l.size, 0);
  return { manifestDigest: desc.digest, manifest, config, configDigest: manifest.config.digest, size };
}

/** docker's REPOSITORY and TAG columns: the familiar name split at the tag (or digest). */
function repoTag(name: string): [string, string] {
  let f: string;
  try {
    f = familiarName(name);
  } catch {
    return [name, '<none>'];
  }
  const at = f.indexOf('@');
  if (at >= 0) return [f.slice(0, at), '<none>'];
  const colon = f.lastIndexOf(':');
  return colon > f.lastIndexOf('/') ? [f.slice(0, colon), f.slice(colon + 1)] : [f, '<none>'];
}

export async function list(g: Globals, filters: string[], o: { format: 'table' | 'json'; quiet?: boolean }): Promise<void> {
  await withConn(g, async (conn) => {
    const { images } = await conn.service(Images).list({ filters });
    if (o.quiet) return out(images.map((i) => `${i.name}\n`).join(''));
    const rows = [['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE']];
    const json: unknown[] = [];
    for (const img of images) {
      const r = await resolveImage(conn, img).catch(() => undefined);
      const [repo, tag] = repoTag(img.name);
      const created = r?.config.created ? new Date(r.config.created) : img.createdAt ? timestampDate(img.createdAt) : undefined;
      rows.push([repo, tag, r ? r.configDigest.slice(7, 19) : '<missing>', created && !Number.isNaN(created.getTime()) ? ago(created) : '', r ? humanSize(r.size) : '-']);
      json.push({ name: img.name, target: img.target?.digest, mediaType: img.target?.mediaType, id: r?.configDigest, size: r?.size, labels: img.labels });
    }
    out(o.format === 'json' ? `${JSON.stringify(json, null, 2)}\n` : table(rows));
  });
}

export async function inspect(g: Globals, names: string[]): Promise<number> {
  let code = 0;
  const docs: unknown[] = [];
  await withConn(g, async (conn) => {
    for (const n of names) {
      try {
        const { image } = await conn.service(Images).get({ name: normalizeReference(n) });
        const r = await resolveImage(conn, image!);
        docs.push({
          Name: image!.name,
          Id: r.configDigest,
          Target: { mediaType: image!.target!.mediaType, digest: image!.target!.digest, size: Number(image!.target!.size) },
          Manifest: r.manifestDigest,
          Labels: image!.labels,
          CreatedAt: image!.createdAt ? timestampDate(image!.createdAt).toISOString() : undefined,
          UpdatedAt: image!.updatedAt ? timestampDate(image!.updatedAt).toISOString() : undefined,
          Platform: formatPlatform({ os: r.config.os ?? '', architecture: r.config.architecture ?? '', variant: r.config.variant }),
          Size: r.size,
          Config: r.config.config ?? {},
          RootFS: r.config.rootfs ?? {},
          Layers: r.manifest.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
        });
      } catch (e) {
        err(`tsrctl: ${n}: ${(e as { details?: string }).details ?? (e as Error).message}\n`);
        code = 1;
      }
    }
  });
  out(`${JSON.stringify(docs, null, 4)}\n`);
  return code;
}

/** Removes image records (the content goes with the synchronous collection: what nothing else references). */
export async function remove(g: Globals, names: string[], o: { async?: boolean } = {}): Promise<number> {
  let code = 0;
  await withConn(g, async (conn) => {
    for (const n of names) {
      try {
        const name = normalizeReference(n);
        await conn.service(Images).delete({ name, sync: !o.async });
        out(`Untagged: ${familiarName(name)}\n`);
      } catch (e) {
        err(`tsrctl: ${n}: ${(e as { details?: string }).details ?? (e as Error).message}\n`);
        code = 1;
      }
    }
  });
  return code;
}

/** Names an image's target under more names (replacing what those names pointed at, as docker tag does). */
export async function tag(g: Globals, source: string, targets: string[]): Promise<void> {
  await withConn(g, async (conn) => {
    const images = conn.service(Images);
    const { image } = await images.get({ name: normalizeReference(source) });
    for (const t of targets) {
      const name = normalizeReference(t);
      if (parseReference(t).digest) throw new Error(`${t}: a tag cannot name a digest`);
      const fresh = { name, labels: image!.labels, target: image!.target };
      try {
        await images.create({ image: fresh });
      } catch (e) {
        if ((e as { code?: number }).code !== 6) throw e; // ALREADY_EXISTS: point it here
        await images.update({ image: fresh, updateMask: { paths: ['target'] } });
      }
    }
  });
}
