// The daemon's side of one tsrunc-shim: start it (through the launch
// pipeline, no shell, no CLI), talk to it over its control socket, and read
// the exits it pushes. Requests are synchronous and answered in microseconds;
// exits arrive on a stream socket read by the event loop.
import { closeQuietly } from '../linux/close.js';
import { existsSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { O_CLOEXEC, O_RDONLY, SOCK_SEQPACKET, SOCK_STREAM } from '../linux/constants.js';
import { pollReadable, socketpair } from '../linux/libc.js';
import { nativeLibraryPath, recvMsg, sendFds, unixSocket } from '../linux/native.js';
import { errnoName, SyscallError } from '../linux/syscall-error.js';
import { launch, awaitExec, reapChild, type Spawner } from '../runtime/launch.js';
import { op, SYNC_TAG, type LaunchPlan } from '../runtime/plan/ops.js';
import {
  decodeResponse,
  encodeRequest,
  EventReader,
  exitRecordPayload,
  F_FORCE,
  MAX_FDS,
  REQ,
  ROLES,
  SLOT_BASE,
  type Request,
  type Role,
  type ShimProcess,
} from './shim-protocol.js';

export const SHIM_SOCKET = 'shim.sock';
export const SHIM_LOG = 'shim.log';
/** In a task's directory: the init's exit record, which tsrund asks its shim for. */
export const EXIT_FILE = 'exit';
const ANSWER_TIMEOUT_MS = 10_000;
// STATE answers carry a record per process.
const ANSWER_BUFFER = Buffer.alloc(1 << 18);

export function shimBinaryPath(): string {
  const fromEnv = process.env['TSRUNC_SHIM'];
  if (fromEnv) return fromEnv;
  const p = join(dirname(nativeLibraryPath()), 'tsrunc-shim');
  if (!existsSync(p)) throw new Error(`tsrunc-shim not found at ${p}: run \`make -C native-shims\` (or \`npm run build\`), or set TSRUNC_SHIM`);
  return p;
}

/** A request the shim refused: the errno it gave, and what we asked. */
export class ShimError extends Error {
  readonly errno: number;
  readonly code: string;
  constructor(what: string, errno: number) {
    super(`${what}: ${errnoName(errno)}: ${new SyscallError('', errno).message.replace(/^: /, '')}`);
    this.name = 'ShimError';
    this.errno = errno;
    this.code = errnoName(errno);
  }
}

export interface StartOptions {
  /** the task's directory: socket, log */
  dir: string;
  namespace: string;
  id: string;
}


export class Shim {
  private ctl: number;
  private events: Socket | undefined;

  private constructor(
    readonly dir: string,
    /** the shim's pid when this daemon started it (after a restart: unknown) */
    readonly pid: number | undefined,
    ctl: number,
    /** a pidfd of the shim when it is our child, else -1 */
    private pidfd = -1,
  ) {
    this.ctl = ctl;
  }

  /**
   * Starts a shim for a task: the daemon binds its socket first (so there
   * is no window where it does not listen) and hands it over as fd 3.
   */
  static start(o: StartOptions): Shim {
    const sockPath = join(o.dir, SHIM_SOCKET);
    const listenFd = unixSocket(sockPath, SOCK_SEQPACKET, true);
    const fds = [listenFd];
    try {
      const devnull = openSync('/dev/null', O_RDONLY | O_CLOEXEC);
      fds.push(devnull);
      const logFd = openSync(join(o.dir, SHIM_LOG), 'a');
      fds.push(logFd);
      const [parentEnd, childEnd] = socketpair(SOCK_SEQPACKET);
      fds.push(parentEnd);
      const bin = shimBinaryPath();
      const plan: LaunchPlan = {
        cloneFlags: 0,
        cgroupFd: -1,
        syncFd: childEnd,
        parentSyncFd: parentEnd,
        ops: [
          // Its own session: a signal to the daemon's process group spares it.
          op('SETSID', {}, 'start a session of its own'),
          op('DUP2', { oldfd: devnull, newfd: 0 }, 'stdin from /dev/null'),
          op('DUP2', { oldfd: logFd, newfd: 1 }, `stdout to ${SHIM_LOG}`),
          op('DUP2', { oldfd: logFd, newfd: 2 }, `stderr to ${SHIM_LOG}`),
          op('DUP2', { oldfd: listenFd, newfd: 3 }, 'the control socket as fd 3'),
          op('CLOSE_FDS', { first: 4 }, 'close every other fd at exec'),
          op('SYNC', { tag: SYNC_TAG.READY }, 'report ready'),
          op('EXEC', { argv: [bin, '-namespace', o.namespace, '-id', o.id, '-dir', o.dir], envp: [] }, `exec ${bin}`),
        ],
      };
      const launched = launch(plan, parentEnd, {});
      try {
        awaitExec(plan, parentEnd);
        return new Shim(o.dir, launched.pid, unixSocket(sockPath, SOCK_SEQPACKET, false), launched.clonePidfd);
      } catch (e) {
        try {
          process.kill(launched.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
        reapChild(launched.pid, launched.clonePidfd);
        closeQuietly(launched.clonePidfd);
        throw e;
      }
    } finally {
      for (const fd of fds) closeQuietly(fd);
    }
  }

  /** Reconnects to a running shim (after a daemon restart). */
  static connect(dir: string): Shim {
    return new Shim(dir, undefined, unixSocket(join(dir, SHIM_SOCKET), SOCK_SEQPACKET, false));
  }

  private request(r: Request, fds: readonly number[] = []): ReturnType<typeof decodeResponse> {
    if (this.ctl < 0) throw new Error(`the shim in ${this.dir} is closed`);
    if (fds.length > MAX_FDS) throw new RangeError(`at most ${MAX_FDS} fds go to the shim`);
    sendFds(this.ctl, fds, encodeRequest(r));
    if (pollReadable([this.ctl], ANSWER_TIMEOUT_MS).length === 0) {
      throw new Error(`the shim in ${this.dir} did not answer within ${ANSWER_TIMEOUT_MS / 1000} s`);
    }
    const { bytes, fd } = recvMsg(this.ctl, ANSWER_BUFFER);
    if (fd >= 0) closeQuietly(fd);
    if (bytes === 0) throw new Error(`the shim in ${this.dir} closed its control socket`);
    return decodeResponse(ANSWER_BUFFER, bytes);
  }

  private expectOk(what: string, r: Request, fds: readonly number[] = []): ReturnType<typeof decodeResponse> {
    const res = this.request(r, fds);
    if (res.err) throw new ShimError(what, res.err);
    return res;
  }

  /**
   * Clones a process from the shim: `slots` become fds SLOT_BASE.. in the
   * shim (the plan names them so), `roles` are fds the shim keeps for its
   * stdio. Returns the cloned pid. Our fds stay ours to close.
   */
  spawn(name: string, plan: Buffer, slots: readonly number[], roles: Partial<Record<Role, number>> = {}): number {
    const extra: number[] = [];
    const index: Partial<Record<Role, number>> = {};
    for (const role of ROLES) {
      const fd = roles[role];
      if (fd === undefined || fd < 0) continue;
      index[role] = extra.length;
      extra.push(fd);
    }
    const res = this.expectOk(`shim: start ${name}`, { type: REQ.SPAWN, name, nslots: slots.length, roles: index, payload: plan }, [
      ...slots,
      ...extra,
    ]);
    return res.pid;
  }

  /**
   * From now on the named process is `pid` (its plan may have forked).
   * recordExitAt: a file where the shim writes the exit when it publishes
   * it (read back with parseExitRecord), for a daemon that finds it dead.
   */
  watch(name: string, pid: number, recordExitAt?: string): void {
    const payload = recordExitAt === undefined ? undefined : exitRecordPayload(resolve(recordExitAt));
    this.expectOk(`shim: watch ${name}`, { type: REQ.WATCH, name, pid, ...(payload ? { payload } : {}) });
  }

  /** Signals a process that the shim has not reaped yet (so its pid is still its own). */
  kill(name: string, signal: number): void {
    this.expectOk(`shim: signal ${name}`, { type: REQ.KILL, name, arg: signal });
  }

  resize(name: string, rows: number, cols: number): void {
    this.expectOk(`shim: resize the terminal of ${name}`, { type: REQ.RESIZE, name, arg: rows, arg2: cols });
  }

  closeStdin(name: string): void {
    this.expectOk(`shim: close the stdin of ${name}`, { type: REQ.CLOSE_STDIN, name });
  }

  state(): ShimProcess[] {
    return this.expectOk('shim: state', { type: REQ.STATE }).procs;
  }

  /** The exit of `name` is published: a restarted daemon need not report it again. */
  ack(name: string): void {
    this.expectOk(`shim: acknowledge the exit of ${name}`, { type: REQ.ACK, name });
  }

  /** Drops a process's record; force: even if it still runs (a launch that failed). */
  forget(name: string, force = false): void {
    this.expectOk(`shim: forget ${name}`, { type: REQ.FORGET, name, flags: force ? F_FORCE : 0 });
  }

  /** The shim exits (force: killing what still runs) and removes its socket. */
  shutdown(force = false): void {
    this.expectOk('shim: shut down', { type: REQ.SHUTDOWN, flags: force ? F_FORCE : 0 });
    this.close();
    this.reap(5000);
  }

  /**
   * Collects the shim's exit status when it is our child (not after a
   * daemon restart: then it is init's). True once it is gone.
   */
  reap(timeoutMs = 0): boolean {
    if (this.pidfd < 0 || this.pid === undefined) return true;
    if (!reapChild(this.pid, this.pidfd, timeoutMs)) return false;
    closeQuietly(this.pidfd);
    this.pidfd = -1;
    return true;
  }

  /**
   * Exits are pushed to `onExit` from now on; `onGone` runs once when the
   * shim's end closes (it died, or shut down).
   */
  subscribe(onExit: (p: ShimProcess) => void, onGone: () => void): void {
    this.events?.destroy();
    const [ours, theirs] = socketpair(SOCK_STREAM);
    try {
      this.expectOk('shim: subscribe to exits', { type: REQ.SUBSCRIBE }, [theirs]);
    } catch (e) {
      closeQuietly(ours);
      throw e;
    } finally {
      closeQuietly(theirs);
    }
    const sock = new Socket({ fd: ours, readable: true, writable: false });
    const reader = new EventReader();
    let gone = false;
    const end = () => {
      if (gone) return;
      gone = true;
      onGone();
    };
    sock.on('data', (chunk: Buffer) => {
      for (const p of reader.push(chunk)) onExit(p);
    });
    sock.on('end', end);
    sock.on('close', end);
    sock.on('error', end);
    this.events = sock;
  }

  /** Closes our sockets; the shim runs on. */
  close(): void {
    if (this.events) {
      this.events.removeAllListeners();
      this.events.on('error', () => {});
      this.events.destroy();
      this.events = undefined;
    }
    if (this.ctl >= 0) closeQuietly(this.ctl);
    this.ctl = -1;
  }

  /** A Spawner that clones through this shim under `name`; roles: the shim's stdio fds for it. */
  spawner(name: string, roles: Partial<Record<Role, number>> = {}): Spawner {
    const slots: number[] = [];
    return {
      remote: true,
      place(fd) {
        if (fd < 0) return -1;
        let i = slots.indexOf(fd);
        if (i < 0) i = slots.push(fd) - 1;
        return SLOT_BASE + i;
      },
      spawn: (plan, syncSlot) => {
        const syncFd = slots[syncSlot - SLOT_BASE];
        try {
          return { pid: this.spawn(name, plan, slots, roles), pidfd: -1 };
        } finally {
          if (syncFd !== undefined) closeQuietly(syncFd);
        }
      },
    };
  }
}
