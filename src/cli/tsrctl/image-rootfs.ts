// The root of a container run from an image, as `docker run` and `ctr run`
// make it: the image looked up in tsrund (pulled when missing, the progress
// on stderr as docker prints it there), its platform's config read from the
// content store, its layers unpacked when they are not (an import, a pull
// with --no-unpack), and a new active overlayfs snapshot named by the
// container id on the top layer's chain ID. A lease holds the snapshot until
// the container record references it (and, as ctr's run holds its lease,
// for the rest of the run); the record keeps it from the collector after.
import { randomBytes } from 'node:crypto';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { Images, type Image } from '../../gen/containerd/services/images/v1/images_pb.js';
import { Leases } from '../../gen/containerd/services/leases/v1/leases_pb.js';
import { Snapshots } from '../../gen/containerd/services/snapshots/v1/snapshots_pb.js';
import { Transfer } from '../../gen/tsrund/services/transfer/v1/transfer_pb.js';
import type { MountSchema } from '../../gen/containerd/types/mount_pb.js';
import type { Connection } from '../../client/index.js';
import { statusName } from '../../client/index.js';
import { sha256 } from '../../content/digest.js';
import { chainIds, parsePlatform, type ImageConfig } from '../../images/media.js';
import { familiarName, normalizeReference, parseReference } from '../../images/reference.js';
import { err } from '../output.js';
import { resolveImage } from './images.js';
import { overlayLayerDirs } from '../../snapshots/mount-options.js';
import { layerFiles, type RootFiles } from './process-spec.js';
import { platformMessage, pullWithProgress, type RegistryFlags } from './pull.js';

export const SNAPSHOTTER = 'overlayfs';
/** How long the run's lease lives if tsrctl dies before it ends it (containerd's client default). */
const LEASE_TTL_MS = 24 * 3600 * 1000;

/**
 * The image record for a reference, pulled first when tsrund has none, or
 * when the content store lacks the platform's manifest of its index (the
 * record came from a pull for another platform): docker pulls then too.
 * A platform the index does not list is an error here, not a pull.
 */
export async function findImage(conn: Connection, ref: string, flags: RegistryFlags): Promise<Image> {
  const name = normalizeReference(ref);
  try {
    const { image } = await conn.service(Images).get({ name });
    await resolveImage(conn, image!, flags.platform === undefined ? undefined : parsePlatform(flags.platform));
    return image!;
  } catch (e) {
    if (statusName(e) !== 'NOT_FOUND') throw e;
  }
  err(`Unable to find image '${familiarName(parseReference(ref))}' locally\n`);
  const done = await pullWithProgress(conn, ref, { ...flags, toStderr: true, snapshotter: SNAPSHOTTER });
  if (!done.image) throw new Error(`pull ${ref}: the daemon reported no image record`);
  return done.image;
}

export type ImageProcess = NonNullable<ImageConfig['config']>;

export interface ImageRoot {
  /** the image record's name (the container record's image) */
  image: string;
  config: ImageProcess;
  snapshotKey: string;
  mounts: MessageInitShape<typeof MountSchema>[];
  /** the image's files as the container will see them (for --user names) */
  files: RootFiles;
  /** removes the snapshot */
  release(): Promise<void>;
  /** ends the lease that holds the snapshot until a container record does */
  done(): Promise<void>;
}

/** Layer directories of snapshot mounts, topmost first: an overlay's upper then lower dirs, or a bind's source. */
export function mountDirs(mounts: readonly MessageInitShape<typeof MountSchema>[]): string[] {
  const dirs: string[] = [];
  for (const m of mounts) {
    if (m.type === 'overlay') dirs.push(...overlayLayerDirs(m));
    else if (m.source) {
      dirs.push(m.source);
    }
  }
  return dirs;
}

/**
 * A new active snapshot `key` on the top layer of the image for `platform`
 * (os/arch[/variant], default this machine's), under a lease of its own;
 * on any failure here nothing is left (snapshot and lease gone).
 */
export async function prepareImageRoot(conn: Connection, image: Image, key: string, platform?: string): Promise<ImageRoot> {
  const r = await resolveImage(conn, image, platform === undefined ? undefined : parsePlatform(platform));
  const diffIds = r.config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== r.manifest.layers.length) {
    throw new Error(`image ${image.name}: the config lists ${diffIds.length} layer diff IDs, the manifest ${r.manifest.layers.length} layers`);
  }
  const top = chainIds(diffIds, sha256).at(-1) ?? '';
  const snapshots = conn.service(Snapshots);
  if (top) await ensureUnpacked(conn, image.name, top, platform);

  const leases = conn.service(Leases);
  const lease = `tsrctl-run-${key}-${randomBytes(4).toString('hex')}`;
  await leases.create({ id: lease, labels: { 'containerd.io/gc.expire': new Date(Date.now() + LEASE_TTL_MS).toISOString() } });
  const done = async (): Promise<void> => {
    try {
      await leases.delete({ id: lease });
    } catch (e) {
      if (statusName(e) !== 'NOT_FOUND') throw e;
    }
  };
  let mounts: MessageInitShape<typeof MountSchema>[];
  try {
    ({ mounts } = await snapshots.prepare({ snapshotter: SNAPSHOTTER, key, parent: top }, { lease }));
  } catch (e) {
    await done().catch(() => {});
    if (statusName(e) === 'ALREADY_EXISTS') throw new Error(`a snapshot named ${JSON.stringify(key)} already exists (another container's root?): choose another --name`);
    throw e;
  }
  const release = async (): Promise<void> => {
    try {
      await snapshots.remove({ snapshotter: SNAPSHOTTER, key });
    } catch (e) {
      if (statusName(e) !== 'NOT_FOUND') throw e;
    }
  };
  return {
    image: image.name,
    config: r.config.config ?? {},
    snapshotKey: key,
    mounts,
    files: layerFiles(mountDirs(mounts), `image ${familiarName(image.name)}`),
    release,
    done,
  };
}

/** Unpacks the image's layers when its top snapshot is missing (tsrund's Transfer.Unpack). */
async function ensureUnpacked(conn: Connection, name: string, top: string, platform: string | undefined): Promise<void> {
  try {
    await conn.service(Snapshots).stat({ snapshotter: SNAPSHOTTER, key: top });
    return;
  } catch (e) {
    if (statusName(e) !== 'NOT_FOUND') throw e;
  }
  for await (const p of conn.service(Transfer).unpack({ name, snapshotter: SNAPSHOTTER, platform: platformMessage(platform) })) void p;
}

/**
 * The process of docker's rules: ENTRYPOINT then the arguments, or CMD
 * when none are given; --entrypoint replaces ENTRYPOINT and drops CMD.
 */
export function imageArgs(config: ImageProcess, args: readonly string[], entrypoint?: string): string[] {
  const ep = entrypoint !== undefined ? (entrypoint === '' ? [] : [entrypoint]) : (config.Entrypoint ?? []);
  const cmd = args.length ? args : entrypoint !== undefined ? [] : (config.Cmd ?? []);
  return [...ep, ...cmd];
}
