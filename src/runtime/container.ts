// The container lifecycle as runc has it: create (init blocked on the exec
// fifo), start, kill, delete, state, list. No CLI code here.
import { closeQuietly } from '../linux/close.js';
import { chmodSync, chownSync, closeSync, openSync, readSync, unlinkSync, statSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { O_PATH, O_RDONLY, O_NONBLOCK, SOCK_SEQPACKET, SOCK_STREAM } from '../linux/constants.js';
import { mkfifo, socketpair, pollReadable, pidfdOpen, pidfdSendSignal } from '../linux/libc.js';
import { unixConnect, recvFd } from '../linux/native.js';
import { processStartTime, processAlive } from '../linux/proc.js';
import { loadBundle } from '../oci/bundle.js';
import { ConfigError } from '../oci/validate.js';
import type { IdMapping, State } from '../oci/spec.js';
import { RuntimeError } from './errors.js';
import { launch, execConfirmation, localSpawner, placeStdio, FD_SECCOMP_NOTIFY, type Spawner } from './launch.js';
import type { StdioFds } from './plan/context.js';
import { notifySeccompListener } from './seccomp/index.js';
import { buildInitPlan } from './plan/init.js';
import { hostFacts } from './host.js';
import { writeIdMaps, writeTimeOffsets } from './idmap.js';
import { homeOf } from './rootfs-lookup.js';
import { removeCgroup, cgroupPids } from './cgroups/placement.js';
import { setupContainerCgroup, sharesCgroup } from './cgroups/setup.js';
import { joinV1Cgroups, removeV1Cgroups } from './cgroups/v1.js';
import { killAll, signalCgroup, waitEmpty } from './cgroups/freezer.js';
import { silentLogger, type Logger } from './log.js';
import { hookState, runHostHooks, runHostHooksWarn, runContainerHooks } from './hooks.js';
import {
  claimStateDir,
  containerStatus,
  creatingState,
  FIFO_NAME,
  listIds,
  loadRecord,
  lockContainer,
  ociState,
  readRecord,
  removeStateDir,
  stateDir,
  validateId,
  writeFileAtomic,
  writeRecord,
  type ContainerRecord,
} from './state.js';

export interface CreateOptions {
  root: string;
  id: string;
  bundle: string;
  pidFile?: string | undefined;
  consoleSocket?: string | undefined;
  /** with process.terminal and no console socket: keep the pty master (`run` relays it) */
  relayConsole?: boolean;
  /** keep the sync socket so that errors after `start` (exec) can be reported */
  watchExec?: boolean;
  noPivot?: boolean;
  noNewKeyring?: boolean;
  preserveFds?: number;
  /** an fd that receives the pty master (instead of a --console-socket path) */
  consoleFd?: number;
  /** fds that become the init's 0, 1 and 2 (-1: keep the parent's) */
  stdio?: StdioFds;
  /** who clones the init: default this process; tsrund passes the container's shim */
  spawner?: Spawner;
  log?: Logger;
}

export interface Created {
  pid: number;
  record: ContainerRecord;
  /** the pty master, when relayConsole applied */
  consoleMaster?: number;
  /** with watchExec: call after `start`; throws if the init failed to exec */
  confirmExec?: () => void;
}

/** Undo steps for a create that fails half-way, run newest first. */
class Undo {
  private steps: (() => void)[] = [];
  add(step: () => void): void {
    this.steps.push(step);
  }
  run(log: Logger): void {
    for (const step of this.steps.reverse()) {
      try {
        step();
      } catch (e) {
        log.warn(`cleanup after a failed create: ${(e as Error).message}`);
      }
    }
  }
}

/** The host id that a container id maps to (itself without a mapping). */
function hostIdOf(id: number, maps: IdMapping[] | undefined): number {
  if (!maps?.length) return id;
  const m = maps.find((x) => id >= x.containerID && id < x.containerID + x.size);
  return m ? m.hostID + (id - m.containerID) : id;
}


export function createContainer(o: CreateOptions): Created {
  const log = o.log ?? silentLogger;
  validateId(o.id);
  const bundle = loadBundle(o.bundle);
  const { spec } = bundle;
  const proc = spec.process;
  if (!proc) throw new ConfigError('process', 'is required to create a container');
  const hasConsole = o.consoleSocket !== undefined || o.consoleFd !== undefined;
  const relayed = (proc.terminal ?? false) && !hasConsole && (o.relayConsole ?? false);
  if (proc.terminal && !hasConsole && !relayed) {
    throw new RuntimeError('process.terminal is true: --console-socket is required (or use `run` without --detach)');
  }
  if (!proc.terminal && hasConsole) throw new RuntimeError('--console-socket needs process.terminal set to true in config.json');
  const spawner = o.spawner ?? localSpawner;

  log.debug(`create ${o.id}: bundle ${bundle.dir} loaded`);
  const host = hostFacts();
  const undo = new Undo();
  const dir = claimStateDir(o.root, o.id);
  // No flock here: the child would inherit it until execve. The mkdir above
  // is the claim, and other commands wait for state.json.
  undo.add(() => removeStateDir(o.root, o.id));
  try {
    let cgroupDir: string | undefined;
    let cgroupFd = -1;
    let cgroupOwned = false;
    let cgroupTop: string | undefined;
    // The cgroup with its limits and device filter, before the init is cloned into it.
    const cg = setupContainerCgroup({ id: o.id, spec, mounts: host.mounts, euid: host.euid, log: (m) => log.debug(m) });
    if (cg) {
      cgroupDir = cg.dir;
      cgroupFd = cg.fd;
      cgroupOwned = cg.createdTop !== undefined;
      cgroupTop = cg.createdTop;
      undo.add(() => closeQuietly(cg.fd));
      if (cg.createdTop) undo.add(() => removeCgroup(cg.dir, cg.createdTop));
      if (cg.v1.length) undo.add(() => removeV1Cgroups(cg.v1, (m) => log.warn(m)));
      log.debug(`create ${o.id}: cgroup ${cg.dir} ready (limits, device filter)`);
    }

    const fifoPath = join(dir, FIFO_NAME);
    mkfifo(fifoPath, 0o622);
    // Explicit mode (umask applies to mkfifo), owned by the container's root
    // so that its init can open it from inside a user namespace.
    chmodSync(fifoPath, 0o622);
    chownSync(fifoPath, hostIdOf(0, spec.linux?.uidMappings), hostIdOf(0, spec.linux?.gidMappings));
    const fifoFd = openSync(fifoPath, O_PATH);
    undo.add(() => closeQuietly(fifoFd));

    let consoleFd = -1;
    let consoleReceiver = -1;
    if (o.consoleFd !== undefined) {
      consoleFd = o.consoleFd; // the caller's, and the caller closes it
    } else if (o.consoleSocket) {
      consoleFd = unixConnect(resolve(o.consoleSocket));
    } else if (relayed) {
      [consoleReceiver, consoleFd] = socketpair(SOCK_STREAM);
      const receiver = consoleReceiver;
      undo.add(() => closeQuietly(receiver));
    }
    if (consoleFd >= 0 && o.consoleFd === undefined) {
      const fd = consoleFd;
      undo.add(() => closeQuietly(fd));
    }

    const [parentEnd, childEnd] = socketpair(SOCK_SEQPACKET);
    undo.add(() => closeQuietly(parentEnd));

    const env = proc.env?.some((e) => e.startsWith('HOME=')) ? [] : [`HOME=${homeOf(bundle.rootfs, proc.user.uid) ?? '/'}`];
    const plan = buildInitPlan({
      id: o.id,
      spec,
      rootfs: bundle.rootfs,
      bundle: bundle.dir,
      host,
      cgroupDir,
      fds: {
        sync: spawner.place(childEnd),
        parentSync: spawner.remote ? -1 : parentEnd,
        cgroup: spawner.place(cgroupFd),
        fifo: spawner.place(fifoFd),
        console: spawner.place(consoleFd),
        stdio: placeStdio(spawner, o.stdio),
      },
      noPivot: o.noPivot ?? false,
      noNewKeyring: o.noNewKeyring ?? false,
      preserveFds: o.preserveFds ?? 0,
      env,
      log,
    });
    plan.ops.forEach((p, i) => log.debug(`plan op ${i}: ${p.describe}`));

    let record: ContainerRecord | undefined;
    let v1JoinedPid: number | undefined;
    log.debug(`create ${o.id}: spawning the init`);
    const launched = launch(plan, parentEnd, {
      // Joining a cgroup v1 hierarchy waits for an RCU grace period (10-20 ms
      // here): started while the child sets itself up; at READY only for an
      // init that a fork made since (or if this one failed).
      spawned: (pid) => {
        if (!cg?.v1.length) return;
        try {
          joinV1Cgroups(cg.v1, pid);
          v1JoinedPid = pid;
        } catch {
          /* the READY join reports it */
        }
      },
      userMap: (pid) => writeIdMaps(pid, spec, host.euid),
      timeOffsets: (pid) => writeTimeOffsets(pid, spec),
      hooks: (pid) => {
        const state = hookState(creatingState(o.id, bundle.dir, bundle.rootfs, pid, spec.annotations, spec.ociVersion));
        // A failing hook fails create; the container is then destroyed and poststop runs.
        undo.add(() => runHostHooksWarn('poststop', spec, hookState({ ...JSON.parse(state), status: 'stopped' }), log));
        runHostHooks('prestart', spec, state);
        runHostHooks('createRuntime', spec, state);
        runContainerHooks('createContainer', spec, pid, state);
      },
      fd: (pid, kind, fd) => {
        try {
          if (kind === FD_SECCOMP_NOTIFY) notifySeccompListener(spec, fd, creatingState(o.id, bundle.dir, bundle.rootfs, pid, spec.annotations, spec.ociVersion));
        } finally {
          closeQuietly(fd);
        }
      },
      ready: (pid) => {
        const startTime = processStartTime(pid);
        if (startTime === undefined) throw new RuntimeError(`the container's init (pid ${pid}) vanished before it was ready`);
        if (cg?.v1.length && v1JoinedPid !== pid) joinV1Cgroups(cg.v1, pid);
        record = {
          ociVersion: spec.ociVersion,
          id: o.id,
          pid,
          pidStartTime: startTime,
          bundle: bundle.dir,
          rootfs: bundle.rootfs,
          created: new Date().toISOString(),
          owner: '',
          ...(spec.annotations ? { annotations: spec.annotations } : {}),
          ...(cgroupDir ? { cgroupDir, cgroupOwned } : {}),
          ...(cgroupTop && cgroupTop !== cgroupDir ? { cgroupTop } : {}),
          ...(cg?.v1.length ? { cgroupV1: cg.v1 } : {}),
          config: spec,
        };
        writeRecord(dir, record);
        if (o.pidFile) {
          const pidFile = resolve(o.pidFile);
          writeFileAtomic(pidFile, String(pid));
          undo.add(() => rmSync(pidFile, { force: true }));
        }
      },
    }, spawner);
    log.debug(`create ${o.id}: init ${launched.pid} ready`);
    let consoleMaster: number | undefined;
    if (consoleReceiver >= 0) {
      consoleMaster = recvFd(consoleReceiver).fd;
      closeQuietly(consoleReceiver);
    }
    for (const fd of [fifoFd, launched.clonePidfd, cgroupFd, o.consoleFd === undefined ? consoleFd : -1]) if (fd >= 0) closeQuietly(fd);
    const created: Created = { pid: launched.pid, record: record! };
    if (consoleMaster !== undefined) created.consoleMaster = consoleMaster;
    const confirmExec = execConfirmation(plan, parentEnd, o.watchExec);
    if (confirmExec) created.confirmExec = confirmExec;
    return created;
  } catch (e) {
    undo.run(log);
    throw e;
  }
}

const sleepMs = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Lets a created container's init exec: opens the exec fifo and reads its byte. */
export function startContainer(root: string, id: string, log: Logger = silentLogger): ContainerRecord {
  const rec = loadRecord(root, id);
  const unlock = lockContainer(root, id);
  try {
    const status = containerStatus(root, rec);
    if (status === 'stopped') throw new RuntimeError('cannot start a container that has stopped');
    if (status !== 'created') throw new RuntimeError('cannot start an already running container');
    startCreated(root, rec, log);
    return rec;
  } finally {
    unlock();
  }
}

/**
 * start for a container known to be created: the startContainer hooks in
 * its namespaces, the exec fifo, then the poststart hooks (their failure is
 * a warning). A failing startContainer hook stops the container.
 */
export function startCreated(root: string, rec: ContainerRecord, log: Logger = silentLogger): void {
  const spec = rec.config;
  try {
    runContainerHooks('startContainer', spec, rec.pid, stateForHooks(rec, 'created'));
  } catch (e) {
    signalProcess(rec.pid, rec.pidStartTime, 9);
    throw e;
  }
  releaseInit(root, rec);
  runHostHooksWarn('poststart', spec, stateForHooks(rec, 'running'), log);
}

/**
 * The exec fifo handshake itself, for a caller that knows the container is
 * created and that no one else starts it (`run` right after its create).
 */
export function releaseInit(root: string, rec: ContainerRecord): void {
  const fifoPath = join(stateDir(root, rec.id), FIFO_NAME);
  // Non-blocking open: a blocking one would hang if the init died meanwhile.
  const fd = openSync(fifoPath, O_RDONLY | O_NONBLOCK);
  try {
    const buf = Buffer.alloc(1);
    for (;;) {
      if (pollReadable([fd], 100).length > 0) {
        let n = 0;
        try {
          n = readSync(fd, buf, 0, 1, null);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
          throw e;
        }
        if (n === 1) break;
        throw new RuntimeError('cannot start a container that has stopped');
      }
      if (!processAlive(rec.pid, rec.pidStartTime)) throw new RuntimeError('cannot start a container that has stopped');
    }
  } finally {
    closeSync(fd);
  }
  unlinkSync(fifoPath);
}

/** The state a hook gets; poststop still sees the last pid of the init. */
function stateForHooks(rec: ContainerRecord, status: State['status']): string {
  return hookState({ ociVersion: rec.ociVersion, id: rec.id, status, pid: rec.pid, bundle: rec.bundle, annotations: rec.annotations });
}

/** Signals a process, by pidfd, after checking that the pid is still our init. */
function signalProcess(pid: number, startTime: string | undefined, sig: number): void {
  let pidfd: number;
  try {
    pidfd = pidfdOpen(pid);
  } catch {
    return; // gone
  }
  try {
    if (startTime !== undefined && processStartTime(pid) !== startTime) return;
    pidfdSendSignal(pidfd, sig);
  } catch (e) {
    if ((e as { code?: string }).code !== 'ESRCH') throw e;
  } finally {
    closeSync(pidfd);
  }
}

export function killContainer(root: string, id: string, sig: number, all = false): void {
  const rec = loadRecord(root, id);
  const status = containerStatus(root, rec);
  if (status === 'stopped') throw new RuntimeError('container not running');
  if (all && rec.cgroupDir) {
    signalCgroup(rec.cgroupDir, sig, (pid) => signalProcess(pid, undefined, sig));
    return;
  }
  signalProcess(rec.pid, rec.pidStartTime, sig);
}

/** Waits until the init is gone (bounded). */
function waitGone(rec: ContainerRecord, timeoutMs: number): boolean {
  let pidfd: number;
  try {
    pidfd = pidfdOpen(rec.pid);
  } catch {
    return true;
  }
  try {
    const deadline = Date.now() + timeoutMs;
    while (processAlive(rec.pid, rec.pidStartTime)) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      pollReadable([pidfd], Math.min(left, 50));
    }
    return true;
  } finally {
    closeSync(pidfd);
  }
}

/**
 * Kills whatever is left and removes the cgroup and the state directory.
 * `delete` checks the status first; `run` calls it once its init has exited.
 */
export function destroyContainer(root: string, rec: ContainerRecord, log: Logger = silentLogger): void {
  if (processAlive(rec.pid, rec.pidStartTime)) {
    signalProcess(rec.pid, rec.pidStartTime, 9);
    if (!waitGone(rec, 10000)) throw new RuntimeError(`container ${rec.id}: init ${rec.pid} did not die after SIGKILL`);
  }
  if (rec.cgroupDir && !sharesCgroup(rec.config)) {
    // Without a pid namespace, processes may outlive the init: cgroup.kill
    // takes them all at once (forks in flight included), else one by one.
    if (killAll(rec.cgroupDir)) waitEmpty(rec.cgroupDir, 10000);
    for (let i = 0; i < 100; i++) {
      const pids = cgroupPids(rec.cgroupDir);
      if (pids.length === 0) break;
      for (const pid of pids) signalProcess(pid, undefined, 9);
      sleepMs(10);
    }
  }
  if (rec.cgroupDir && rec.cgroupOwned) removeCgroup(rec.cgroupDir, rec.cgroupTop ?? rec.cgroupDir);
  if (rec.cgroupV1) removeV1Cgroups(rec.cgroupV1, (m) => log.warn(m));
  removeStateDir(root, rec.id);
  runHostHooksWarn('poststop', rec.config, stateForHooks(rec, 'stopped'), log);
}

export function deleteContainer(root: string, id: string, force = false, log: Logger = silentLogger): void {
  validateId(id);
  const rec = readRecord(root, id);
  if (!rec) {
    // A create that died half-way leaves a directory without state.json.
    let exists = false;
    try {
      exists = statSync(stateDir(root, id)).isDirectory();
    } catch {
      /* none */
    }
    if (!force) throw new RuntimeError(`container "${id}" does not exist`);
    // --force of what is not there succeeds, as runc's does: clients (the
    // containerd shim's cleanup, podman after a failed create) call it to be sure.
    if (exists) {
      log.warn(`removing the incomplete container directory ${stateDir(root, id)}`);
      removeStateDir(root, id);
    }
    return;
  }
  const unlock = lockContainer(root, id);
  try {
    const status = containerStatus(root, rec);
    if ((status === 'running' || status === 'paused') && !force) {
      throw new RuntimeError(`cannot delete container ${id} that is not stopped: ${status}`);
    }
    destroyContainer(root, rec, log);
  } finally {
    unlock();
  }
}

/** Host pids of the container's processes (none once it has stopped). */
export function containerPids(root: string, id: string): number[] {
  const rec = loadRecord(root, id);
  if (rec.cgroupDir) return cgroupPids(rec.cgroupDir);
  return processAlive(rec.pid, rec.pidStartTime) ? [rec.pid] : [];
}

export function containerState(root: string, id: string): State {
  return ociState(root, loadRecord(root, id));
}

export interface ListEntry {
  state: State;
  /** the user owning the state directory, by name */
  owner: string;
}

function userName(uid: number): string {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length > 2 && Number(f[2]) === uid && f[2] !== '') return f[0]!;
    }
  } catch {
    /* no passwd */
  }
  return String(uid);
}

export function listContainers(root: string): ListEntry[] {
  const out: ListEntry[] = [];
  for (const id of listIds(root)) {
    const rec = readRecord(root, id);
    let uid = 0;
    try {
      uid = statSync(stateDir(root, id)).uid;
    } catch {
      continue;
    }
    const state: State = rec
      ? ociState(root, rec)
      : { ociVersion: '', id, pid: 0, status: 'creating', bundle: '', rootfs: '', created: '', owner: '' };
    out.push({ state, owner: userName(uid) });
  }
  return out;
}
