// tsrctl import FILE: an OCI archive or a `docker save` tar into tsrund, as
// `ctr images import` and `docker load` do it: the blobs through
// content.v1 Write (each checked by the daemon against its digest before
// it commits), the layers unpacked by the Transfer service, then the image
// records. All of it under one lease: when anything fails the lease goes
// with a synchronous collection, so no blob, snapshot or record is left.
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Connection } from '../../client/index.js';
import { statusName } from '../../client/index.js';
import { Content, WriteAction } from '../../gen/containerd/services/content/v1/content_pb.js';
import { Images } from '../../gen/containerd/services/images/v1/images_pb.js';
import { Leases } from '../../gen/containerd/services/leases/v1/leases_pb.js';
import { Transfer } from '../../gen/tsrund/services/transfer/v1/transfer_pb.js';
import { LABEL_GC_EXPIRE } from '../../metadata/gc.js';
import { familiarName } from '../../images/reference.js';
import { out } from '../output.js';
import { Archive, planImport, type PlannedBlob, type PlannedImage } from './archive.js';
import { withConn } from './common.js';
import type { Globals } from './main.js';
import { platformMessage } from './pull.js';

export interface ImportFlags {
  name?: string;
  /** false: content and records only (--no-unpack) */
  unpack?: boolean;
  platform?: string;
  snapshotter?: string;
  quiet?: boolean;
}

const CHUNK = 1 << 20;

async function* chunksOf(b: Buffer): AsyncGenerator<Buffer> {
  for (let off = 0; off < b.length; off += CHUNK) yield b.subarray(off, off + CHUNK);
}

/** One blob through a content.v1 Write session: WRITE messages, then COMMIT with the expected digest and labels. */
async function writeBlob(conn: Connection, lease: string, b: PlannedBlob, chunks: AsyncIterable<Buffer | Uint8Array>): Promise<void> {
  const { digest } = b.desc;
  const total = BigInt(b.desc.size);
  const call = conn.service(Content).write({ lease });
  const done = new Promise<void>((resolve, reject) => {
    call.on('data', () => {});
    call.on('error', reject);
    call.on('end', resolve);
  });
  done.catch(() => {});
  const send = async (m: Parameters<typeof call.write>[0]): Promise<void> => {
    if (!call.write(m)) await Promise.race([once(call, 'drain'), done]);
  };
  const ref = `import-${digest}`;
  let offset = 0;
  try {
    for await (const c of chunks) {
      await send({ action: WriteAction.WRITE, ref, offset: BigInt(offset), total, expected: digest, data: c });
      offset += c.length;
    }
    await send({ action: WriteAction.COMMIT, ref, offset: BigInt(offset), total, expected: digest, labels: b.labels });
    call.end();
  } catch (e) {
    call.cancel();
    throw e;
  }
  await done;
}

/** Puts a blob into content under the lease; one the namespace has already gets the labels and joins the lease. */
async function putBlob(conn: Connection, lease: string, archive: Archive, b: PlannedBlob): Promise<void> {
  const content = conn.service(Content);
  const exists = await content.info({ digest: b.desc.digest }).then(
    () => true,
    (e: unknown) => {
      if (statusName(e) === 'NOT_FOUND') return false;
      throw e;
    },
  );
  if (!exists) {
    try {
      await writeBlob(conn, lease, b, b.data ? chunksOf(b.data) : archive.stream(b.member!));
      return;
    } catch (e) {
      // another writer committed it meanwhile
      if (statusName(e) !== 'ALREADY_EXISTS') throw e;
    }
  }
  await conn.service(Leases).addResource({ id: lease, resource: { id: b.desc.digest, type: 'content' } });
  const keys = Object.keys(b.labels);
  if (keys.length > 0) await content.update({ info: { digest: b.desc.digest, labels: b.labels }, updateMask: { paths: keys.map((k) => `labels.${k}`) } });
}

async function unpack(conn: Connection, lease: string, img: PlannedImage, o: ImportFlags): Promise<void> {
  const t = img.target;
  const stream = conn.service(Transfer).unpack(
    {
      name: img.names[0] ?? '',
      target: { mediaType: t.mediaType, digest: t.digest, size: BigInt(t.size), annotations: {} },
      platform: platformMessage(o.platform),
      snapshotter: o.snapshotter ?? '',
    },
    { lease },
  );
  for await (const _ of stream) {
    /* layer lines: an import shows only its result */
  }
}

/** Creates the record, or points an existing one at the imported target (its labels stay). */
async function saveImage(conn: Connection, name: string, img: PlannedImage): Promise<void> {
  const images = conn.service(Images);
  const target = { mediaType: img.target.mediaType, digest: img.target.digest, size: BigInt(img.target.size), annotations: {} };
  try {
    await images.create({ image: { name, target, labels: {} } });
  } catch (e) {
    if (statusName(e) !== 'ALREADY_EXISTS') throw e;
    await images.update({ image: { name, target }, updateMask: { paths: ['target'] } });
  }
}

export default async function importArchive(g: Globals, file: string, o: ImportFlags): Promise<void> {
  const archive = await Archive.scan(file);
  const plan = await planImport(archive, { name: o.name });
  await withConn(g, async (conn) => {
    const lease = `tsrctl-import-${Date.now()}-${randomBytes(4).toString('hex')}`;
    let ok = false;
    try {
      await conn.service(Leases).create({ id: lease, labels: { [LABEL_GC_EXPIRE]: new Date(Date.now() + 3600_000).toISOString() } });
      for (const b of plan.blobs) await putBlob(conn, lease, archive, b);
      if (o.unpack !== false) for (const img of plan.images) await unpack(conn, lease, img, o);
      for (const img of plan.images) for (const name of img.names) await saveImage(conn, name, img);
      ok = true;
    } finally {
      // after a failure the collection runs now, so that nothing of the import stays
      await conn.service(Leases).delete({ id: lease, sync: !ok }).catch(() => {});
    }
  });
  if (o.quiet) return;
  for (const img of plan.images) for (const name of img.names) out(`Loaded image: ${familiarName(name)}\n`);
}
