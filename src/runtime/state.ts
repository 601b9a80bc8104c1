// The state directory of a container (--root/<id>/): state.json, the exec
// fifo and a lock. Writes go to a temp file and are renamed into place, so a
// reader never sees half a file. No fsync: this state is as volatile as the
// processes it describes (it normally lives on tmpfs under /run), and an fsync
// on a disk-backed --root costs milliseconds per container.
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { flock } from '../linux/libc.js';
import { LOCK_EX } from '../linux/constants.js';
import { processAlive } from '../linux/proc.js';
import { OCI_SPEC_VERSION, type Spec, type State } from '../oci/spec.js';
import { RuntimeError } from './errors.js';
import { cgroupFrozen } from './cgroups/placement.js';
import type { V1Cgroup } from './cgroups/v1.js';

export const DEFAULT_ROOT = '/run/tsrunc';
const STATE_FILE = 'state.json';
export const FIFO_NAME = 'exec.fifo';

/** What tsrunc records about a container (state.json). */
export interface ContainerRecord {
  ociVersion: string;
  id: string;
  pid: number;
  /** /proc/PID/stat start time: tells our init from a process that reused its pid */
  pidStartTime: string;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
  /** host path of the container's cgroup v2 directory */
  cgroupDir?: string;
  /** we made the cgroup directory (and remove it on delete) */
  cgroupOwned?: boolean;
  /** the highest parent directory create made for it (removed on delete too, unless others use it) */
  cgroupTop?: string;
  /** hybrid hosts: its directories in the cgroup v1 hierarchies, where v1 controllers limit it */
  cgroupV1?: V1Cgroup[];
  config: Spec;
}

const ID_RE = /^[\w+\-.]+$/;

/** runc's rules for container ids, with runc's messages. */
export function validateId(id: string): void {
  if (id === '') throw new RuntimeError('container id cannot be empty');
  if (!ID_RE.test(id) || id === '.' || id === '..') throw new RuntimeError(`invalid container id format: "${id}" (letters, digits, _ + - . only)`);
  if (Buffer.byteLength(id) > 1024) throw new RuntimeError('invalid container id format: longer than 1024 bytes');
}

export function stateDir(root: string, id: string): string {
  return join(root, id);
}

export function writeFileAtomic(path: string, data: string | Buffer, mode = 0o644): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function writeRecord(dir: string, rec: ContainerRecord): void {
  writeFileAtomic(join(dir, STATE_FILE), JSON.stringify(rec), 0o600);
}

export function readRecord(root: string, id: string): ContainerRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(stateDir(root, id), STATE_FILE), 'utf8')) as ContainerRecord;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new RuntimeError(`read the state of container ${id}`, e);
  }
}

/** The record of an existing container, or runc's "container does not exist". */
export function loadRecord(root: string, id: string): ContainerRecord {
  validateId(id);
  const rec = readRecord(root, id);
  if (!rec) throw new RuntimeError(`container "${id}" does not exist`);
  return rec;
}

export function containerStatus(root: string, rec: ContainerRecord): State['status'] {
  if (!processAlive(rec.pid, rec.pidStartTime)) return 'stopped';
  if (existsSync(join(stateDir(root, rec.id), FIFO_NAME))) return 'created';
  if (rec.cgroupDir && cgroupFrozen(rec.cgroupDir)) return 'paused';
  return 'running';
}

export function ociState(root: string, rec: ContainerRecord): State {
  const status = containerStatus(root, rec);
  const state: State = {
    ociVersion: rec.ociVersion,
    id: rec.id,
    pid: status === 'stopped' ? 0 : rec.pid,
    status,
    bundle: rec.bundle,
    rootfs: rec.rootfs,
    created: rec.created,
    owner: rec.owner,
  };
  if (rec.annotations && Object.keys(rec.annotations).length) state.annotations = rec.annotations;
  return state;
}

/** The state a hook or a `creating` container sees before state.json exists. */
export function creatingState(id: string, bundle: string, rootfs: string, pid: number, annotations?: Record<string, string>, ociVersion = OCI_SPEC_VERSION): State {
  return { ociVersion, id, status: 'creating', pid, bundle, rootfs, created: new Date().toISOString(), owner: '', ...(annotations ? { annotations } : {}) };
}

/** Creates <root>/<id>; fails if the id is taken (mkdir is the atomic claim). */
export function claimStateDir(root: string, id: string): string {
  mkdirSync(root, { recursive: true, mode: 0o711 });
  const dir = stateDir(root, id);
  try {
    mkdirSync(dir, { mode: 0o711 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new RuntimeError('container with given ID already exists');
    throw new RuntimeError(`create the state directory ${dir}`, e);
  }
  return dir;
}

export function removeStateDir(root: string, id: string): void {
  rmSync(stateDir(root, id), { recursive: true, force: true });
}

/**
 * Holds an exclusive lock on the container for the life of the process (or
 * until release), so that concurrent start/kill/delete run one at a time.
 */
export function lockContainer(root: string, id: string): () => void {
  let fd: number;
  try {
    fd = openSync(stateDir(root, id), 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new RuntimeError(`container "${id}" does not exist`);
    throw new RuntimeError(`lock container ${id}`, e);
  }
  flock(fd, LOCK_EX, stateDir(root, id));
  return () => closeSync(fd);
}

/** Ids of the containers under root (directories with a state.json, or being created). */
export function listIds(root: string): string[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new RuntimeError(`list ${root}`, e);
  }
  return names.filter((n) => {
    try {
      return statSync(join(root, n)).isDirectory();
    } catch {
      return false;
    }
  });
}
