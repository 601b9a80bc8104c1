// Runs a LaunchPlan: clone3 the child through libtsrunc, then serve its sync
// messages (user maps, time offsets, ready) until it is ready or fails.
// A failure names the op: `op 12 mount proc on /proc: EPERM (...)`.
import { writeSync, closeSync } from 'node:fs';
import { spawnPlan, recvMsg } from '../linux/native.js';
import { pidfdOpen, pollReadable, waitpidNoHang, type WaitResult } from '../linux/libc.js';
import { errnoName, SyscallError } from '../linux/syscall-error.js';
import { signalName } from '../linux/signals.js';
import { closeQuietly } from '../linux/close.js';
import { encodePlan } from './plan/encode.js';
import { SYNC_TAG, type LaunchPlan } from './plan/ops.js';
import type { StdioFds } from './plan/context.js';

const MSG_SYNC = 1;
const MSG_PID = 2;
const MSG_ERROR = 3;
const MSG_FD = 4;
/** What an fd sent with MSG_FD is (plan.h TSR_FD_*). */
export const FD_SECCOMP_NOTIFY = 1;
const MSG_SIZE = 16;

const DETAILS: Record<number, string> = {
  1: 'the path resolves where this mount is not allowed (into /proc, onto the container root, or outside it)',
  2: 'not the real /dev/null (character device 1:3)',
  3: 'the working directory is outside the container root',
  4: 'an existing node there has another type or device number',
  5: 'executable file not found in $PATH',
  6: 'stopped by the runtime',
  7: 'not on procfs',
  8: "the container's /dev/ptmx is not on a devpts filesystem",
};

/** A plan op failed in the child. */
export class LaunchError extends Error {
  readonly op: number;
  readonly errno: number;
  constructor(op: number, description: string, errno: number, detail: number, hint?: string) {
    const why = DETAILS[detail] ?? new SyscallError('', errno).message.replace(/^: /, '');
    const code = detail === 5 ? '' : `${errnoName(errno)}: `;
    const advice = hint && (errno === 13 || errno === 1) ? ` (${hint})` : '';
    super(`op ${op} ${description}: ${detail ? `${code}${why}` : why}${advice}`);
    this.name = 'LaunchError';
    this.op = op;
    this.errno = errno;
  }
}

export interface LaunchHooks {
  /** the child exists and sets itself up meanwhile: slow work that may start early (best effort) */
  spawned?(pid: number): void;
  /** write the uid/gid maps of `pid`'s new user namespace */
  userMap?(pid: number): void;
  /** write /proc/pid/timens_offsets */
  timeOffsets?(pid: number): void;
  /** the mounts are done and pivot_root is next: run the create-time hooks */
  hooks?(pid: number): void;
  /** the child is ready (all but the exec fifo and exec); record the container */
  ready?(pid: number): void;
  /** the child sent an fd (kind: FD_*); the hook owns it (closes it) */
  fd?(pid: number, kind: number, fd: number): void;
}

/**
 * Who clones the child: this process (tsrunc), or a shim that is to be the
 * child's parent (tsrund). A remote spawner's children are not ours to reap,
 * and the fds a plan names are the spawner's numbers (see place()).
 */
export interface Spawner {
  /** the fd number the plan uses for one of our fds (the spawner puts it there) */
  place(fd: number): number;
  /** clones the child; closes our copy of the child's end of the sync socket */
  spawn(plan: Buffer, syncFd: number): { pid: number; pidfd: number };
  /** the child is another process's child: it reaps, we only signal */
  readonly remote: boolean;
}

/** clone3 from this process: fds keep their numbers. */
export const localSpawner: Spawner = {
  place: (fd) => fd,
  spawn(plan, syncFd) {
    try {
      return spawnPlan(plan);
    } finally {
      closeSync(syncFd); // the child's end: ours to close whether or not it was born
    }
  },
  remote: false,
};

/** The stdio fds as the spawner numbers them. */
export function placeStdio(spawner: Spawner, stdio: StdioFds | undefined): StdioFds | undefined {
  if (!stdio) return undefined;
  return { stdin: spawner.place(stdio.stdin), stdout: spawner.place(stdio.stdout), stderr: spawner.place(stdio.stderr) };
}

export interface Launched {
  /** the container's init, as the host sees it */
  pid: number;
  /** the process clone3 made (differs from pid when the plan forks) */
  clonePid: number;
  /** -1 from a remote spawner */
  clonePidfd: number;
}

function reply(fd: number, ok: boolean): void {
  const m = Buffer.alloc(MSG_SIZE);
  m.writeUInt32LE(MSG_SYNC, 0);
  m.writeInt32LE(ok ? 0 : 1, 8);
  writeSync(fd, m);
}

/** Waits (bounded) for a child we spawned to exit, and reaps it. */
export function reapChild(pid: number, pidfd: number, timeoutMs = 5000): WaitResult | undefined {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = waitpidNoHang(pid);
    if (r) return r;
    const left = deadline - Date.now();
    if (left <= 0) return undefined;
    pollReadable([pidfd], Math.min(left, 100));
  }
}

function reapQuietly(pid: number): void {
  try {
    const fd = pidfdOpen(pid);
    try {
      reapChild(pid, fd, 2000);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* gone, or not ours */
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/**
 * Spawns the plan and serves the child until it reports READY. The caller
 * made the socketpair: plan.syncFd goes to the child, parentFd stays here.
 * On failure the child (and any fork of it) is killed and reaped.
 */
export function launch(plan: LaunchPlan, parentFd: number, hooks: LaunchHooks, spawner: Spawner = localSpawner): Launched {
  const buf = encodePlan(plan);
  const spawned = spawner.spawn(buf, plan.syncFd);
  const local = !spawner.remote;
  let pid = spawned.pid;
  const msg = Buffer.alloc(MSG_SIZE);
  try {
    hooks.spawned?.(pid);
    for (;;) {
      const { bytes: n, fd } = recvMsg(parentFd, msg);
      if (fd >= 0) {
        // Only MSG_FD carries an fd; anything else would leak it.
        if (msg.readUInt32LE(0) !== MSG_FD || !hooks.fd) closeSync(fd);
        else hooks.fd(pid, msg.readInt32LE(12), fd);
        continue;
      }
      if (n === 0) {
        const st = local ? reapChild(spawned.pid, spawned.pidfd, 1000) : undefined;
        const how = st?.signal ? `was killed by ${signalName(st.signal)}` : st ? `exited with status ${st.code}` : 'closed its sync socket';
        throw new Error(`the container's init ${how} before it was ready`);
      }
      const type = msg.readUInt32LE(0);
      const opIndex = msg.readInt32LE(4);
      const err = msg.readInt32LE(8);
      const value = msg.readInt32LE(12);
      if (type === MSG_ERROR) {
        const o = plan.ops[opIndex];
        throw new LaunchError(opIndex, o ? o.describe : 'end of plan', err, value, o?.hint);
      }
      if (type === MSG_PID) {
        pid = value;
        continue;
      }
      if (type !== MSG_SYNC) throw new Error(`unexpected message ${type} from the container's init`);
      try {
        if (value === SYNC_TAG.USERMAP) hooks.userMap?.(pid);
        else if (value === SYNC_TAG.TIMENS) hooks.timeOffsets?.(pid);
        else if (value === SYNC_TAG.HOOKS) hooks.hooks?.(pid);
        else if (value === SYNC_TAG.READY) hooks.ready?.(pid);
      } catch (e) {
        reply(parentFd, false);
        throw e;
      }
      reply(parentFd, true);
      if (value === SYNC_TAG.READY) break;
    }
  } catch (e) {
    killQuietly(pid);
    if (pid !== spawned.pid) killQuietly(spawned.pid);
    if (local) {
      // The fork is our child too (CLONE_PARENT). Unreaped, it would keep a
      // pid namespace's dying init waiting for it.
      if (pid !== spawned.pid) reapQuietly(pid);
      try {
        reapChild(spawned.pid, spawned.pidfd);
      } catch {
        /* reaped already (the end-of-file path above): keep the real error */
      }
      closeSync(spawned.pidfd);
    }
    throw e;
  }
  // A forking plan leaves an intermediate that exits at once: reap it.
  if (pid !== spawned.pid && local) reapChild(spawned.pid, spawned.pidfd);
  return { pid, clonePid: spawned.pid, clonePidfd: spawned.pidfd };
}

/**
 * After `start`: reads the sync socket until the init's execve closes it
 * (success) or it reports the op that failed after READY.
 */
export function awaitExec(plan: LaunchPlan, parentFd: number): void {
  const msg = Buffer.alloc(MSG_SIZE);
  for (;;) {
    const { bytes: n, fd } = recvMsg(parentFd, msg);
    if (fd >= 0) closeSync(fd);
    if (n === 0) return;
    if (msg.readUInt32LE(0) === MSG_ERROR) {
      const opIndex = msg.readInt32LE(4);
      const o = plan.ops[opIndex];
      throw new LaunchError(opIndex, o ? o.describe : 'end of plan', msg.readInt32LE(8), msg.readInt32LE(12), o?.hint);
    }
  }
}

/**
 * What follows READY for a caller: with `watch`, a confirm() that waits for
 * the init's execve (awaitExec) and then closes the sync socket; without,
 * the socket is closed now.
 */
export function execConfirmation(plan: LaunchPlan, parentFd: number, watch: boolean | undefined): (() => void) | undefined {
  if (!watch) {
    closeQuietly(parentFd);
    return undefined;
  }
  return () => {
    try {
      awaitExec(plan, parentFd);
    } finally {
      closeQuietly(parentFd);
    }
  };
}
