// tsrctl run: a container from flags, as `ctr run` and `docker run` make
// one: a runtime spec (tsrunc's default spec, ctr's cgroupsPath /<ns>/<id>,
// the command, env and terminal), the container record (runtime
// io.containerd.runc.v2), a task with our stdio, started and waited for; with
// --rm everything is removed after the exit. Exits with the container's status.
//
// Two kinds of root: `--rootfs DIR ID ARGS` names a directory in the spec
// and has no mounts; `REF ARGS` runs an image (pulled when missing) on a
// new overlayfs snapshot whose mounts go to Tasks.Create, the process made
// from the image's config by docker's rules. Both go through runContainer().
import { randomBytes } from 'node:crypto';
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
import { parsePlatform } from '../../images/media.js';
import type { Spec } from '../../oci/spec.js';
import { cgroupLayout } from '../../runtime/cgroups/mode.js';
import { readMountInfo } from '../../linux/mountinfo.js';
import { packJson, SPEC_TYPE_URL } from '../../typeurl.js';
import { out, err } from '../output.js';
import { commandFailure, runProcess, type AttachFlags } from './attach.js';
import { parseLabels, withConn } from './common.js';
import { deleteTask } from './tasks.js';
import { DEFAULT_PATH, mergeEnv, parseEnv, resolveUser, type RootFiles } from './process-spec.js';
import { findImage, imageArgs, prepareImageRoot, SNAPSHOTTER } from './image-rootfs.js';
import { parseMountFlag } from './mount-flag.js';
import type { RegistryFlags } from './pull.js';
import { messageOf, type Globals } from './main.js';

/** The runtime containerd's clients name for runc-compatible shims. */
export const RUNTIME = 'io.containerd.runc.v2';

export interface RunFlags extends AttachFlags, RegistryFlags {
  rm?: boolean;
  rootfs?: string;
  /** the container id of an image run (default: 12 random hex digits, as docker's short ids) */
  name?: string;
  env: string[];
  cwd?: string;
  /** docker's -w: the same as --cwd */
  workdir?: string;
  user?: string;
  hostname?: string;
  readOnly?: boolean;
  label: string[];
  /** docker's --mount type=bind|tmpfs,... */
  mount?: string[];
  /** replaces the image's ENTRYPOINT ("" drops it) and its CMD */
  entrypoint?: string;
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
 * `root` is the rootfs directory, or a bundle-relative path for mounts;
 * `files` reads the root's /etc/passwd and /etc/group for user names when
 * `root` is not a directory (an image's layers).
 */
export function runSpec(ns: string, id: string, root: string, args: string[], o: RunFlags, defaults: ProcessDefaults = {}, files?: RootFiles): Spec {
  const spec = defaultSpec({ cgroupNamespace: cgroupLayout(readMountInfo()).mode === 'unified' });
  const proc = spec.process!;
  proc.args = args.length ? args : (defaults.args ?? []);
  if (!proc.args.length) throw new Error(`run ${id}: no command given (tsrctl run [flags] ID COMMAND [ARG...])`);
  proc.terminal = Boolean(o.tty);
  let env = mergeEnv([DEFAULT_PATH], defaults.env ?? []);
  if (o.tty) env = mergeEnv(env, ['TERM=xterm']);
  const extra = parseEnv(o.env);
  const cwd = o.cwd ?? o.workdir ?? defaults.cwd;
  if (cwd !== undefined) {
    if (!cwd.startsWith('/')) throw new Error(`run ${id}: --cwd ${JSON.stringify(cwd)}: must be an absolute path`);
    proc.cwd = cwd;
  }
  const user = o.user ?? defaults.user;
  if (user !== undefined) {
    const r = resolveUser(user, files ?? (root.startsWith('/') ? root : undefined));
    proc.user = r.user;
    if (r.home && !hasKey(env, 'HOME')) env = mergeEnv(env, [`HOME=${r.home}`]);
  } else if (!hasKey(env, 'HOME')) {
    env = mergeEnv(env, ['HOME=/root']);
  }
  proc.env = mergeEnv(env, extra);
  for (const m of o.mount ?? []) spec.mounts!.push(parseMountFlag(m));
  spec.root = { path: root, readonly: Boolean(o.readOnly) };
  spec.hostname = o.hostname ?? id.slice(0, 63);
  spec.linux!.cgroupsPath = `/${ns}/${id}`;
  return spec;
}

/** docker's (and containerd's) default capabilities: what images are built to expect of root. */
export const DOCKER_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/**
 * An image runs as docker runs it: its root has docker's capabilities, and
 * setuid files and file capabilities take effect (no no_new_privs), where
 * `--rootfs` keeps runc's spec (three capabilities, no_new_privs).
 */
export function withDockerDefaults(spec: Spec): Spec {
  const p = spec.process!;
  p.capabilities = { bounding: [...DOCKER_CAPS], effective: [...DOCKER_CAPS], permitted: [...DOCKER_CAPS] };
  p.noNewPrivileges = false;
  return spec;
}

/** An image's own HOME is kept, as docker keeps it. */
const hasKey = (env: readonly string[], key: string): boolean => env.some((e) => e.startsWith(`${key}=`));

/**
 * Creates the container and its task, runs it (attached unless -d) and, with
 * --rm or after a failure, removes them. Resolves with the exit status.
 */
export async function runContainer(g: Globals, conn: Connection, t: RunTarget, o: RunFlags): Promise<number> {
  try {
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
  } catch (e) {
    await t.release?.().catch((e2: unknown) => err(`tsrctl: run ${t.id}: cleaning up: ${messageOf(e2)}\n`));
    throw e;
  }
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
  } else {
    // As ctr's run: the exited task goes (its rootfs mount with it), the container stays.
    await deleteTask(conn, t.id, false).catch((e: unknown) => {
      if (statusName(e) !== 'NOT_FOUND') err(`tsrctl: run ${t.id}: deleting the exited task: ${messageOf(e)}\n`);
    });
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

export default async function run(g: Globals, first: string, args: string[], o: RunFlags): Promise<number> {
  if (o.rm && o.detach) throw new Error('run: --rm and -d cannot be used together (nothing would be left to remove the container)');
  if (o.rootfs !== undefined) {
    if (o.name !== undefined) throw new Error('run: --name names an image run; with --rootfs DIR the first argument is the id');
    return runRootfs(g, first, args, o);
  }
  return runImage(g, first, args, o);
}

/** `--rootfs DIR ID ARGS`: a directory as the root. */
function runRootfs(g: Globals, id: string, args: string[], o: RunFlags): Promise<number> {
  validateIdentifier(id);
  const rootfs = resolve(o.rootfs!);
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

/** `REF ARGS`: an image, on a snapshot of its own named by the id. */
function runImage(g: Globals, ref: string, args: string[], o: RunFlags): Promise<number> {
  const id = o.name ?? randomBytes(6).toString('hex');
  validateIdentifier(id);
  const labels = parseLabels(o.label);
  for (const m of o.mount ?? []) parseMountFlag(m); // bad flags fail before any pull
  if (o.platform !== undefined) parsePlatform(o.platform);
  return withConn(g, async (conn) => {
    const image = await findImage(conn, ref, o);
    const root = await prepareImageRoot(conn, image, id, o.platform);
    try {
      let spec: Spec;
      try {
        const argv = imageArgs(root.config, args, o.entrypoint);
        if (!argv.length) throw new Error(`run ${ref}: no command specified (the image has no Entrypoint or Cmd: give one)`);
        const c = root.config;
        spec = withDockerDefaults(runSpec(g.namespace, id, 'rootfs', argv, o, { env: c.Env ?? [], cwd: c.WorkingDir || undefined, user: c.User || undefined }, root.files));
      } catch (e) {
        await root.release().catch(() => {});
        throw e;
      }
      const target: RunTarget = { id, spec, rootfs: root.mounts, image: root.image, snapshotter: SNAPSHOTTER, snapshotKey: root.snapshotKey, labels, release: root.release };
      return await runContainer(g, conn, target, o).catch(commandFailure);
    } finally {
      await root.done().catch((e: unknown) => err(`tsrctl: run ${id}: ending the lease: ${messageOf(e)}\n`));
    }
  });
}
