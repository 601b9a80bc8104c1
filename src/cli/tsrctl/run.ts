// tsrctl run: a container from flags, as `ctr run` and `docker run` make
// one: a runtime spec (tsrunc's default spec, ctr's cgroupsPath /<ns>/<id>,
// the command, env and terminal), the container record (runtime
// io.containerd.runc.v2), a task with our stdio, started and waited for; with
// --rm everything is removed after the exit. Exits with the container's status.
//
// runContainer() takes a finished spec and the rootfs mounts: `--rootfs DIR`
// names a directory in the spec and has no mounts; an image gives snapshot
// mounts (and a `release` for its snapshot) and uses the same path.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { Containers } from '../../gen/containerd/services/containers/v1/containers_pb.js';
import { Tasks } from '../../gen/containerd/services/tasks/v1/tasks_pb.js';
import type { MountSchema } from '../../gen/containerd/types/mount_pb.js';
import type { Connection } from '../../client/index.js';
import { statusName } from '../../client/index.js';
import { validateIdentifier } from '../../identifiers.js';
import { defaultSpec } from '../../oci/default-spec.js';
import type { Spec } from '../../oci/spec.js';
import { cgroupLayout } from '../../runtime/cgroups/mode.js';
import { readMountInfo } from '../../linux/mountinfo.js';
import { packJson, SPEC_TYPE_URL } from '../../typeurl.js';
import { out, err } from '../output.js';
import { commandFailure, runProcess, type AttachFlags } from './attach.js';
import { parseLabels, withConn } from './common.js';
import { deleteTask } from './tasks.js';
import { DEFAULT_PATH, mergeEnv, parseEnv, resolveUser } from './process-spec.js';
import { messageOf, type Globals } from './main.js';

/** The runtime containerd's clients name for runc-compatible shims. */
export const RUNTIME = 'io.containerd.runc.v2';

export interface RunFlags extends AttachFlags {
  rm?: boolean;
  rootfs?: string;
  env: string[];
  cwd?: string;
  user?: string;
  hostname?: string;
  readOnly?: boolean;
  label: string[];
}

/** What the process of a new container runs, before the flags apply (an image's config gives these). */
export interface ProcessDefaults {
  args?: string[];
  env?: string[];
  cwd?: string;
  user?: string;
}

/** A container ready to run: its spec and how its root is made. */
export interface RunTarget {
  id: string;
  spec: Spec;
  /** rootfs mounts for Tasks.Create (an image's snapshot); none when spec.root.path is a directory */
  rootfs: MessageInitShape<typeof MountSchema>[];
  image?: string;
  snapshotter?: string;
  snapshotKey?: string;
  labels?: Record<string, string>;
  /** after the container is removed (--rm, or a failed run): release what backs the rootfs */
  release?: () => Promise<void>;
}

/**
 * The spec of `run`: tsrunc's default spec (a cgroup namespace where the host
 * is pure cgroup v2, as `tsrunc spec`), cgroupsPath /<ns>/<id> (as ctr), the
 * hostname (default: the id, as docker), the command and its environment.
 * `root` is the rootfs directory, or a bundle-relative path for mounts.
 */
export function runSpec(ns: string, id: string, root: string, args: string[], o: RunFlags, defaults: ProcessDefaults = {}): Spec {
  const spec = defaultSpec({ cgroupNamespace: cgroupLayout(readMountInfo()).mode === 'unified' });
  const proc = spec.process!;
  proc.args = args.length ? args : (defaults.args ?? []);
  if (!proc.args.length) throw new Error(`run ${id}: no command given (tsrctl run [flags] ID COMMAND [ARG...])`);
  proc.terminal = Boolean(o.tty);
  let env = mergeEnv([DEFAULT_PATH], defaults.env ?? []);
  if (o.tty) env = mergeEnv(env, ['TERM=xterm']);
  const extra = parseEnv(o.env);
  const cwd = o.cwd ?? defaults.cwd;
  if (cwd !== undefined) {
    if (!cwd.startsWith('/')) throw new Error(`run ${id}: --cwd ${JSON.stringify(cwd)}: must be an absolute path`);
    proc.cwd = cwd;
  }
  const user = o.user ?? defaults.user;
  if (user !== undefined) {
    const r = resolveUser(user, root.startsWith('/') ? root : undefined);
    proc.user = r.user;
    if (r.home) env = mergeEnv(env, [`HOME=${r.home}`]);
  } else {
    env = mergeEnv(env, ['HOME=/root']);
  }
  proc.env = mergeEnv(env, extra);
  spec.root = { path: root, readonly: Boolean(o.readOnly) };
  spec.hostname = o.hostname ?? id.slice(0, 63);
  spec.linux!.cgroupsPath = `/${ns}/${id}`;
  return spec;
}

/**
 * Creates the container and its task, runs it (attached unless -d) and, with
 * --rm or after a failure, removes them. Resolves with the exit status.
 */
export async function runContainer(g: Globals, conn: Connection, t: RunTarget, o: RunFlags): Promise<number> {
  await conn.service(Containers).create({
    container: {
      id: t.id,
      image: t.image ?? '',
      labels: t.labels ?? {},
      runtime: { name: RUNTIME },
      spec: packJson(SPEC_TYPE_URL, t.spec),
      snapshotter: t.snapshotter ?? '',
      snapshotKey: t.snapshotKey ?? '',
    },
  });
  let code: number;
  try {
    code = await runProcess(conn, { containerId: t.id, execId: '' }, o, async (io) => {
      await conn.service(Tasks).create({ containerId: t.id, rootfs: t.rootfs, ...io });
    });
  } catch (e) {
    await removeContainer(conn, t).catch((e2: unknown) => err(`tsrctl: run ${t.id}: cleaning up: ${messageOf(e2)}\n`));
    throw e;
  }
  if (o.detach) {
    out(`${t.id}\n`);
    return 0;
  }
  if (o.rm) {
    try {
      await removeContainer(conn, t);
    } catch (e) {
      err(`tsrctl: run ${t.id}: --rm: ${messageOf(e)}\n`);
    }
  }
  return code;
}

/** The task (killed first if it runs), the container record, then what backs the rootfs. */
async function removeContainer(conn: Connection, t: RunTarget): Promise<void> {
  try {
    await deleteTask(conn, t.id, true);
  } catch (e) {
    if (statusName(e) !== 'NOT_FOUND') throw e;
  }
  await conn.service(Containers).delete({ id: t.id });
  await t.release?.();
}

export default async function run(g: Globals, id: string, args: string[], o: RunFlags): Promise<number> {
  validateIdentifier(id);
  if (o.rm && o.detach) throw new Error('run: --rm and -d cannot be used together (nothing would be left to remove the container)');
  if (o.rootfs === undefined) throw new Error(`run ${id}: --rootfs DIR is required (images are not supported yet)`);
  const rootfs = resolve(o.rootfs);
  let isDir = false;
  try {
    isDir = statSync(rootfs).isDirectory();
  } catch {
    throw new Error(`run ${id}: --rootfs ${rootfs}: no such directory`);
  }
  if (!isDir) throw new Error(`run ${id}: --rootfs ${rootfs}: not a directory`);
  const labels = parseLabels(o.label);
  const spec = runSpec(g.namespace, id, rootfs, args, o);
  return withConn(g, (conn) => runContainer(g, conn, { id, spec, rootfs: [], labels }, o).catch(commandFailure));
}
