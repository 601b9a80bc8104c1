// `exec`: start another process in a running container, through the same
// launch pipeline as the init (src/runtime/plan/exec.ts).
import { closeQuietly } from '../linux/close.js';
import { openSync } from 'node:fs';
import { join, posix, resolve } from 'node:path';
import { O_DIRECTORY, SOCK_SEQPACKET, SOCK_STREAM } from '../linux/constants.js';
import { socketpair } from '../linux/libc.js';
import { recvFd, unixConnect } from '../linux/native.js';
import type { Process } from '../oci/spec.js';
import { RuntimeError } from './errors.js';
import { launch, execConfirmation, localSpawner, placeStdio, FD_SECCOMP_NOTIFY, type Spawner } from './launch.js';
import type { StdioFds } from './plan/context.js';
import { planSeccomp, notifySeccompListener } from './seccomp/index.js';
import { buildExecPlan } from './plan/exec.js';
import { joinV1Cgroups } from './cgroups/v1.js';
import { hostFacts } from './host.js';
import { homeOf } from './rootfs-lookup.js';
import { silentLogger, type Logger } from './log.js';
import { containerStatus, loadRecord, ociState, writeFileAtomic, type ContainerRecord } from './state.js';

export interface ExecOptions {
  root: string;
  id: string;
  process: Process;
  consoleSocket?: string | undefined;
  /** with process.terminal and no console socket: keep the pty master (the CLI relays it) */
  relayConsole?: boolean;
  pidFile?: string | undefined;
  preserveFds?: number;
  /** a sub-cgroup of the container's cgroup to run in ("[controller:]path") */
  subCgroup?: string | undefined;
  ignorePaused?: boolean;
  /** keep the sync socket so that a failed execve is reported (foreground use) */
  watchExec?: boolean;
  /** an fd that receives the pty master (instead of a --console-socket path); the caller closes it */
  consoleFd?: number;
  /** fds that become the process's 0, 1 and 2 (-1: keep the parent's) */
  stdio?: StdioFds;
  /** who clones the process: default this process; tsrund passes the container's shim */
  spawner?: Spawner;
  log?: Logger;
}

export interface Execed {
  pid: number;
  record: ContainerRecord;
  consoleMaster?: number;
  /** call after READY to wait for the execve; throws if it failed */
  confirmExec?: () => void;
}

/** The cgroup an exec'd process is born in: the container's, or a sub-cgroup of it that exists. */
function execCgroup(rec: ContainerRecord, sub: string | undefined): string | undefined {
  if (!rec.cgroupDir) return undefined;
  if (!sub) return rec.cgroupDir;
  // "controller:path" is cgroup v1 syntax; on v2 only the path matters.
  const path = sub.includes(':') ? sub.slice(sub.indexOf(':') + 1) : sub;
  const inner = posix.normalize(`/${path}`);
  return join(rec.cgroupDir, inner);
}


export function execInContainer(o: ExecOptions): Execed {
  const log = o.log ?? silentLogger;
  const rec = loadRecord(o.root, o.id);
  const status = containerStatus(o.root, rec);
  if (status === 'stopped') throw new RuntimeError('cannot exec in a stopped container');
  if (status === 'paused' && !o.ignorePaused) throw new RuntimeError('cannot exec in a paused container (use --ignore-paused to override)');
  const proc = o.process;
  const hasConsole = o.consoleSocket !== undefined || o.consoleFd !== undefined;
  const relayed = (proc.terminal ?? false) && !hasConsole && (o.relayConsole ?? false);
  if (proc.terminal && !hasConsole && !relayed) throw new RuntimeError('a terminal (-t) needs --console-socket when the process is detached');
  if (!proc.terminal && hasConsole) throw new RuntimeError('--console-socket needs a terminal (-t, or process.terminal in process.json)');
  const spawner = o.spawner ?? localSpawner;

  const fds: number[] = [];
  try {
    let cgroupFd = -1;
    const cgroupDir = execCgroup(rec, o.subCgroup);
    if (cgroupDir) {
      try {
        cgroupFd = openSync(cgroupDir, O_DIRECTORY);
      } catch (e) {
        throw new RuntimeError(`open the cgroup ${cgroupDir}${o.subCgroup ? ' (--cgroup must name an existing sub-cgroup)' : ''}`, e);
      }
      fds.push(cgroupFd);
    }
    let consoleFd = -1;
    let consoleReceiver = -1;
    if (o.consoleFd !== undefined) {
      consoleFd = o.consoleFd;
    } else if (o.consoleSocket) {
      consoleFd = unixConnect(resolve(o.consoleSocket));
      fds.push(consoleFd);
    } else if (relayed) {
      [consoleReceiver, consoleFd] = socketpair(SOCK_STREAM);
      fds.push(consoleReceiver, consoleFd);
    }
    const [parentEnd, childEnd] = socketpair(SOCK_SEQPACKET);
    fds.push(parentEnd);

    const env = proc.env?.some((e) => e.startsWith('HOME=')) ? [] : [`HOME=${homeOf(rec.rootfs, proc.user.uid) ?? '/'}`];
    const plan = buildExecPlan({
      spec: rec.config,
      process: proc,
      initPid: rec.pid,
      host: hostFacts(),
      fds: {
        sync: spawner.place(childEnd),
        parentSync: spawner.remote ? -1 : parentEnd,
        cgroup: spawner.place(cgroupFd),
        console: spawner.place(consoleFd),
        stdio: placeStdio(spawner, o.stdio),
      },
      preserveFds: o.preserveFds ?? 0,
      env,
      // The container's filter applies to every process in it.
      seccomp: () => {
        const sc = planSeccomp(rec.config, log);
        return sc ? [sc] : [];
      },
    });
    plan.ops.forEach((p, i) => log.debug(`exec plan op ${i}: ${p.describe}`));
    const launched = launch(plan, parentEnd, {
      fd: (pid, kind, fd) => {
        try {
          if (kind === FD_SECCOMP_NOTIFY) notifySeccompListener(rec.config, fd, { ...ociState(o.root, rec), pid });
        } finally {
          closeQuietly(fd);
        }
      },
      ready: (pid) => {
        if (rec.cgroupV1) joinV1Cgroups(rec.cgroupV1, pid);
        if (o.pidFile) writeFileAtomic(resolve(o.pidFile), String(pid));
      },
    }, spawner);
    closeQuietly(launched.clonePidfd);
    const out: Execed = { pid: launched.pid, record: rec };
    if (consoleReceiver >= 0) out.consoleMaster = recvFd(consoleReceiver).fd;
    for (const fd of fds) if (fd !== parentEnd) closeQuietly(fd);
    const confirmExec = execConfirmation(plan, parentEnd, o.watchExec);
    if (confirmExec) out.confirmExec = confirmExec;
    return out;
  } catch (e) {
    for (const fd of fds) closeQuietly(fd);
    throw e;
  }
}
