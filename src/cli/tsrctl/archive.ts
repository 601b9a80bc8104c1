// Image archives of both kinds that `docker load` and `ctr images import`
// read: an OCI image layout in a tar (oci-layout, index.json,
// blobs/sha256/<hex>) and the tar `docker save` writes (manifest.json naming
// each image's config and layer tars, with its RepoTags).
//
// Reading scans the archive once and hashes every member, so that a corrupt
// tar, a missing blob or a blob whose bytes do not match its name is found
// before anything reaches the daemon; members are read back later by their
// offset. Writing makes what containerd 1.6's export makes: the OCI layout
// plus a docker manifest.json, so that either loader takes it.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { TarReader } from '../../archive/tar.js';
import { END_OF_ARCHIVE, padding, tarHeader } from '../../archive/tar-writer.js';
import { invalidArgument } from '../../errdefs.js';
import { MT, isIndex, isManifest, parseJson, type ImageConfig, type ImageIndex, type ImageManifest, type OciDescriptor } from '../../images/media.js';
import { familiarName, normalizeReference, parseReference } from '../../images/reference.js';

export const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name';
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
const GC_REF = 'containerd.io/gc.ref.content';

/** A regular file of the archive. */
export interface Member {
  name: string;
  size: number;
  /** where its contents start in the archive file */
  offset: number;
  digest: string;
  /** its first bytes (to tell compressed layers from plain tars) */
  head: Buffer;
}

/** "./a//b" -> "a/b", as both loaders see member names. */
function cleanName(name: string): string {
  return posix.normalize(`/${name}`).slice(1).replace(/\/$/, '');
}

export class Archive {
  private constructor(
    readonly file: string,
    private readonly members: Map<string, Member>,
    /** symlinks and hard links (docker save links a layer tar that two images share) */
    private readonly links: Map<string, string>,
  ) {}

  /** Reads the whole archive once: its members, their digests; throws on a corrupt tar. */
  static async scan(file: string): Promise<Archive> {
    const members = new Map<string, Member>();
    const links = new Map<string, string>();
    let cur: { m: Member; hash: ReturnType<typeof createHash>; head: Buffer[]; headLen: number } | undefined;
    const reader = new TarReader({
      entry(h) {
        const name = cleanName(h.name);
        if (h.type === 'file') {
          const m: Member = { name, size: h.size, offset: reader.offset, digest: '', head: Buffer.alloc(0) };
          cur = { m, hash: createHash('sha256'), head: [], headLen: 0 };
          members.set(name, m);
          links.delete(name);
        } else if (h.type === 'symlink') {
          links.set(name, cleanName(h.linkname.startsWith('/') ? h.linkname : posix.join(posix.dirname(name), h.linkname)));
        } else if (h.type === 'link') {
          links.set(name, cleanName(h.linkname));
        }
      },
      data(chunk) {
        if (!cur) return;
        cur.hash.update(chunk);
        if (cur.headLen < 8) {
          cur.head.push(Buffer.from(chunk.subarray(0, 8 - cur.headLen)));
          cur.headLen += Math.min(chunk.length, 8 - cur.headLen);
        }
      },
      endEntry() {
        if (!cur) return;
        cur.m.digest = `sha256:${cur.hash.digest('hex')}`;
        cur.m.head = Buffer.concat(cur.head);
        cur = undefined;
      },
    });
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (e) {
      throw invalidArgument(`${file}: ${(e as Error).message}`);
    }
    try {
      const buf = Buffer.alloc(1 << 20);
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        reader.write(buf.subarray(0, bytesRead));
        if (reader.done) break;
      }
      reader.end();
    } catch (e) {
      throw invalidArgument(`${file}: ${(e as Error).message}`);
    } finally {
      await fh.close();
    }
    if (members.size === 0) throw invalidArgument(`${file}: not an image archive (no files in it)`);
    return new Archive(file, members, links);
  }

  /** The member at a path, following links. */
  member(name: string): Member | undefined {
    let n = cleanName(name);
    for (let hops = 0; hops < 16; hops++) {
      const m = this.members.get(n);
      if (m) return m;
      const next = this.links.get(n);
      if (next === undefined) return undefined;
      n = next;
    }
    return undefined;
  }

  async read(m: Member): Promise<Buffer> {
    if (m.size > 64 << 20) throw invalidArgument(`${this.file}: ${m.name} is ${m.size} bytes, too large for a JSON document`);
    const fh = await open(this.file, 'r');
    try {
      const b = Buffer.alloc(m.size);
      const { bytesRead } = await fh.read(b, 0, m.size, m.offset);
      if (bytesRead !== m.size) throw invalidArgument(`${this.file}: ${m.name} ends early (the archive changed while being read?)`);
      return b;
    } finally {
      await fh.close();
    }
  }

  /** The member's contents as a stream of chunks. */
  stream(m: Member): Readable | AsyncIterable<Buffer> {
    if (m.size === 0) return (async function* () {})();
    return createReadStream(this.file, { start: m.offset, end: m.offset + m.size - 1, highWaterMark: 1 << 20 });
  }
}

/** A blob to put into the content store: from the archive, or made here (docker save's manifests). */
export interface PlannedBlob {
  desc: OciDescriptor;
  member?: Member;
  data?: Buffer;
  /** containerd's gc references to its children */
  labels: Record<string, string>;
}

export interface PlannedImage {
  /** full names (docker.io/library/busybox:latest) */
  names: string[];
  target: OciDescriptor;
}

export interface ImportPlan {
  format: 'oci' | 'docker';
  /** every blob once, children before parents */
  blobs: PlannedBlob[];
  images: PlannedImage[];
}

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const isGzip = (head: Buffer): boolean => head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
const isZstd = (head: Buffer): boolean => head.subarray(0, 4).equals(ZSTD_MAGIC);

/** What an import of the archive puts in the daemon; throws, before anything is written, when the archive is incomplete or wrong. */
export async function planImport(a: Archive, o: { name?: string | undefined } = {}): Promise<ImportPlan> {
  const blobs = new Map<string, PlannedBlob>();
  const add = (b: PlannedBlob): void => {
    if (!blobs.has(b.desc.digest)) blobs.set(b.desc.digest, b);
  };
  const index = a.member('index.json');
  const manifestJson = a.member('manifest.json');
  let images: Array<{ names: string[]; target: OciDescriptor; unnamed: string }>;
  let format: ImportPlan['format'];
  if (index) {
    format = 'oci';
    images = await planOci(a, index, add);
  } else if (manifestJson) {
    format = 'docker';
    images = await planDocker(a, manifestJson, add);
  } else {
    throw invalidArgument(`${a.file}: not an image archive: it has neither index.json (OCI layout) nor manifest.json (docker save)`);
  }
  const unnamed = images.filter((i) => i.names.length === 0);
  if (unnamed.length > 0) {
    if (!o.name) throw invalidArgument(`${a.file}: image ${unnamed[0]!.target.digest} has no name${unnamed[0]!.unnamed}: give it one with --name`);
    if (unnamed.length > 1) throw invalidArgument(`${a.file}: ${unnamed.length} images have no name; --name can name only one`);
    unnamed[0]!.names.push(normalizeReference(o.name));
  }
  // one record per name; the same target under several names merges
  const byTarget = new Map<string, PlannedImage>();
  for (const i of images) {
    const p = byTarget.get(i.target.digest) ?? { names: [], target: i.target };
    for (const n of i.names) if (!p.names.includes(n)) p.names.push(n);
    byTarget.set(i.target.digest, p);
  }
  return { format, blobs: [...blobs.values()], images: [...byTarget.values()] };
}

function blobPath(digest: string): string {
  const [alg, hex] = digest.split(':');
  if (!alg || !hex || !/^[a-z0-9]+$/.test(alg) || !/^[a-f0-9]+$/.test(hex)) throw invalidArgument(`invalid digest ${JSON.stringify(digest)}`);
  return `blobs/${alg}/${hex}`;
}

/** The member holding a descriptor's blob, checked against its size and digest; undefined when absent. */
function blobMember(a: Archive, d: OciDescriptor, what: string): Member | undefined {
  const m = a.member(blobPath(d.digest));
  if (!m) return undefined;
  if (m.digest !== d.digest) throw invalidArgument(`${a.file}: ${what} ${m.name}: its contents have digest ${m.digest}, not the ${d.digest} its name says`);
  if (d.size !== undefined && m.size !== Number(d.size)) throw invalidArgument(`${a.file}: ${what} ${d.digest}: ${m.size} bytes in the archive, ${d.size} in its descriptor`);
  return m;
}

function need(a: Archive, d: OciDescriptor, what: string): Member {
  const m = blobMember(a, d, what);
  if (!m) throw invalidArgument(`${a.file}: ${what} ${d.digest} is missing from the archive (no ${blobPath(d.digest)})`);
  return m;
}

async function planOci(a: Archive, indexMember: Member, add: (b: PlannedBlob) => void): Promise<Array<{ names: string[]; target: OciDescriptor; unnamed: string }>> {
  const layout = a.member('oci-layout');
  if (layout) {
    const v = parseJson<{ imageLayoutVersion?: string }>(await a.read(layout), `${a.file}: oci-layout`).imageLayoutVersion;
    if (v !== '1.0.0') throw invalidArgument(`${a.file}: OCI layout version ${JSON.stringify(v)} is not supported (1.0.0 is)`);
  }
  const index = parseJson<ImageIndex>(await a.read(indexMember), `${a.file}: index.json`);
  if (!Array.isArray(index.manifests) || index.manifests.length === 0) throw invalidArgument(`${a.file}: index.json lists no manifests`);

  const walk = async (d: OciDescriptor, what: string): Promise<void> => {
    const m = need(a, d, what);
    if (isIndex(d.mediaType)) {
      const idx = parseJson<ImageIndex>(await a.read(m), `${a.file}: index ${d.digest}`);
      const labels: Record<string, string> = {};
      let present = 0;
      for (const [i, c] of (idx.manifests ?? []).entries()) {
        // an export of one platform keeps the index but not the others' manifests
        if (!blobMember(a, c, 'manifest')) continue;
        await walk(c, isIndex(c.mediaType) ? 'index' : 'manifest');
        labels[`${GC_REF}.m.${i}`] = c.digest;
        present++;
      }
      if (present === 0) throw invalidArgument(`${a.file}: none of the manifests of index ${d.digest} is in the archive`);
      add({ desc: d, member: m, labels });
    } else if (isManifest(d.mediaType)) {
      const man = parseJson<ImageManifest>(await a.read(m), `${a.file}: manifest ${d.digest}`);
      if (!man.config?.digest || !Array.isArray(man.layers)) throw invalidArgument(`${a.file}: manifest ${d.digest} has no config or layers`);
      const cfg = need(a, man.config, `config of manifest ${d.digest}:`);
      const config = parseJson<ImageConfig>(await a.read(cfg), `${a.file}: config ${man.config.digest}`);
      const diffIds = config.rootfs?.diff_ids ?? [];
      if (diffIds.length !== man.layers.length) throw invalidArgument(`${a.file}: config ${man.config.digest} lists ${diffIds.length} layer diff IDs, manifest ${d.digest} ${man.layers.length} layers`);
      const labels: Record<string, string> = { [`${GC_REF}.config`]: man.config.digest };
      add({ desc: man.config, member: cfg, labels: {} });
      man.layers.forEach((l, i) => {
        add({ desc: l, member: need(a, l, `layer ${i} of manifest ${d.digest}:`), labels: {} });
        labels[`${GC_REF}.l.${i}`] = l.digest;
      });
      add({ desc: d, member: m, labels });
    } else {
      throw invalidArgument(`${a.file}: ${d.digest} in ${what} is ${JSON.stringify(d.mediaType)}, neither an image index nor a manifest`);
    }
  };

  const out: Array<{ names: string[]; target: OciDescriptor; unnamed: string }> = [];
  for (const d of index.manifests) {
    const desc: OciDescriptor = { mediaType: d.mediaType, digest: d.digest, size: Number(d.size) };
    if (!desc.mediaType) throw invalidArgument(`${a.file}: index.json: ${d.digest} has no media type`);
    await walk(desc, 'index.json:');
    const ann = d.annotations ?? {};
    const names: string[] = [];
    let unnamed = '';
    const full = ann[ANNOTATION_IMAGE_NAME];
    const ref = ann[ANNOTATION_REF_NAME];
    // a ref.name is a full reference only with a "/", ":" or "@" (containerd's rule); else a bare tag
    const given = full || (ref && /[/:@]/.test(ref) ? ref : undefined);
    if (given) names.push(normalizeReference(given));
    else if (ref) unnamed = ` (index.json gives only the tag ${JSON.stringify(ref)})`;
    out.push({ names, target: desc, unnamed });
  }
  return out;
}

interface DockerSaveEntry {
  Config?: string;
  RepoTags?: string[] | null;
  Layers?: string[];
}

async function planDocker(a: Archive, manifestMember: Member, add: (b: PlannedBlob) => void): Promise<Array<{ names: string[]; target: OciDescriptor; unnamed: string }>> {
  const entries = parseJson<DockerSaveEntry[]>(await a.read(manifestMember), `${a.file}: manifest.json`);
  if (!Array.isArray(entries) || entries.length === 0) throw invalidArgument(`${a.file}: manifest.json lists no images`);
  const out: Array<{ names: string[]; target: OciDescriptor; unnamed: string }> = [];
  for (const [n, e] of entries.entries()) {
    const where = `${a.file}: manifest.json image ${n}`;
    if (!e.Config || !Array.isArray(e.Layers)) throw invalidArgument(`${where}: no Config or Layers`);
    const cfg = a.member(e.Config);
    if (!cfg) throw invalidArgument(`${where}: config ${e.Config} is missing from the archive`);
    // docker names the config by its digest (the image ID)
    const named = /([a-f0-9]{64})(?:\.json)?$/.exec(e.Config)?.[1];
    if (named && `sha256:${named}` !== cfg.digest) throw invalidArgument(`${where}: config ${e.Config}: its contents have digest ${cfg.digest}`);
    const config = parseJson<ImageConfig>(await a.read(cfg), `${where}: config ${e.Config}`);
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== e.Layers.length) throw invalidArgument(`${where}: config lists ${diffIds.length} layer diff IDs, manifest.json ${e.Layers.length} layers`);
    const configDesc: OciDescriptor = { mediaType: MT.dockerConfig, digest: cfg.digest, size: cfg.size };
    add({ desc: configDesc, member: cfg, labels: {} });
    const layers: OciDescriptor[] = e.Layers.map((path, i) => {
      const m = a.member(path);
      if (!m) throw invalidArgument(`${where}: layer ${path} is missing from the archive`);
      const mediaType = isGzip(m.head) ? MT.dockerLayerGzip : isZstd(m.head) ? 'application/vnd.docker.image.rootfs.diff.tar.zstd' : MT.dockerLayer;
      if (mediaType === MT.dockerLayer && m.digest !== diffIds[i]) throw invalidArgument(`${where}: layer ${path} has digest ${m.digest}, the config's diff ID ${i} is ${diffIds[i]}`);
      const desc = { mediaType, digest: m.digest, size: m.size };
      add({ desc, member: m, labels: {} });
      return desc;
    });
    // a docker schema2 manifest over the same blobs, as containerd's importer makes it
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.dockerManifest,
        config: configDesc,
        layers,
      }),
    );
    const target: OciDescriptor = { mediaType: MT.dockerManifest, digest: `sha256:${createHash('sha256').update(manifest).digest('hex')}`, size: manifest.length };
    const labels: Record<string, string> = { [`${GC_REF}.config`]: configDesc.digest };
    layers.forEach((l, i) => (labels[`${GC_REF}.l.${i}`] = l.digest));
    add({ desc: target, data: manifest, labels });
    const names = (e.RepoTags ?? []).map((t) => {
      try {
        return normalizeReference(t);
      } catch (err) {
        throw invalidArgument(`${where}: RepoTags ${JSON.stringify(t)}: ${(err as Error).message}`);
      }
    });
    out.push({ names, target, unnamed: ' (no RepoTags in manifest.json)' });
  }
  return out;
}

/** The tag of a full name, or the name itself (containerd's ociReferenceName). */
export function refName(name: string): string {
  try {
    const r = parseReference(name);
    return r.tag && !r.digest ? r.tag : name;
  } catch {
    return name;
  }
}

/** The RepoTags docker load reads: the familiar name when it has a tag. */
export function repoTags(name: string): string[] {
  try {
    const r = parseReference(name);
    return r.tag && !r.digest ? [familiarName(r)] : [];
  } catch {
    return [];
  }
}

/**
 * Writes a tar as containerd's exporter does: directories 0755, blobs
 * 0444, mtime 0, root-owned; each blob's bytes checked against its digest
 * as they pass.
 */
export class ArchiveWriter {
  private pos = 0;

  constructor(private readonly fh: FileHandle) {}

  private async put(b: Uint8Array): Promise<void> {
    let off = 0;
    while (off < b.length) {
      const { bytesWritten } = await this.fh.write(b, off, b.length - off, this.pos);
      off += bytesWritten;
      this.pos += bytesWritten;
    }
  }

  async dir(name: string): Promise<void> {
    await this.put(tarHeader({ name: `${name}/`, type: 'dir', mode: 0o755 }));
  }

  async file(name: string, data: Buffer | string): Promise<void> {
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    await this.put(tarHeader({ name, type: 'file', mode: 0o444, size: b.length }));
    await this.put(b);
    await this.put(padding(b.length));
  }

  async blob(desc: OciDescriptor, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const size = Number(desc.size);
    await this.put(tarHeader({ name: blobPath(desc.digest), type: 'file', mode: 0o444, size }));
    const hash = createHash('sha256');
    let got = 0;
    for await (const c of chunks) {
      got += c.length;
      if (got > size) break;
      hash.update(c);
      await this.put(c);
    }
    const digest = `sha256:${hash.digest('hex')}`;
    if (got !== size || digest !== desc.digest) throw invalidArgument(`blob ${desc.digest}: the content store gave ${got} bytes with digest ${digest} (expected ${size} bytes)`);
    await this.put(padding(size));
  }

  async end(): Promise<void> {
    await this.put(END_OF_ARCHIVE);
  }
}
