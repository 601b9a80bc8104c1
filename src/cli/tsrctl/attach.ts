// The foreground part of `tsrctl run`, `tasks start` and `tasks exec`, as
// ctr does it: FIFOs in a private temp dir become the process's stdio and we
// copy them to and from our own; Tasks.Wait is called before Tasks.Start so
// no exit is missed; with -t -i our terminal goes raw and its size follows
// (ResizePty), without -t the signals we get are forwarded (Tasks.Kill).
// The FIFO dir is removed on every path.
import { closeSync, mkdtempSync, openSync, rmSync, constants as fsc } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isatty, type ReadStream, type WriteStream } from 'node:tty';
import { constants as os } from 'node:os';
import { Tasks } from '../../gen/containerd/services/tasks/v1/tasks_pb.js';
import type { Connection } from '../../client/index.js';
import { statusName } from '../../client/index.js';
import { mkfifo } from '../../linux/libc.js';
import { FORWARDED } from '../../runtime/foreground.js';
import { out, err } from '../output.js';
import { messageOf } from './main.js';

/** What Tasks.Create and Tasks.Exec take as the process's stdio. */
export interface StdioPaths {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

/** The init (execId "") or an exec'd process of a task. */
export interface ProcessRef {
  containerId: string;
  execId: string;
}

export interface AttachFlags {
  /** a terminal for the process (-t) */
  tty?: boolean | undefined;
  /** our stdin to the process (-i) */
  interactive?: boolean | undefined;
  /** start it and return (-d): no output, stdin held open with -i */
  detach?: boolean | undefined;
}

/** After the exit: how long output may stay silent, and how long we wait for it at most. */
const DRAIN_IDLE_MS = 100;
const DRAIN_MAX_MS = 2000;

/** A FIFO we read (our end opened non-blocking before the daemon opens its end). */
function readEnd(path: string): number {
  mkfifo(path, 0o600);
  return openSync(path, fsc.O_RDONLY | fsc.O_NONBLOCK);
}

interface Fifos {
  paths: StdioPaths;
  /** our read ends of stdout and stderr (-1: none) */
  outFd: number;
  errFd: number;
  remove(): void;
}

function makeFifos(f: AttachFlags): Fifos {
  const terminal = Boolean(f.tty);
  if (f.detach && !f.interactive) {
    return { paths: { stdin: '', stdout: '', stderr: '', terminal }, outFd: -1, errFd: -1, remove() {} };
  }
  const dir = mkdtempSync(join(tmpdir(), 'tsrctl-'));
  const fifos: Fifos = {
    paths: { stdin: '', stdout: '', stderr: '', terminal },
    outFd: -1,
    errFd: -1,
    remove() {
      for (const fd of [this.outFd, this.errFd]) {
        try {
          if (fd >= 0) closeSync(fd);
        } catch {
          /* a stream closed it */
        }
      }
      this.outFd = this.errFd = -1;
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    if (f.interactive) {
      fifos.paths.stdin = join(dir, 'stdin');
      mkfifo(fifos.paths.stdin, 0o600);
    }
    if (!f.detach) {
      fifos.paths.stdout = join(dir, 'stdout');
      fifos.outFd = readEnd(fifos.paths.stdout);
      if (!terminal) {
        fifos.paths.stderr = join(dir, 'stderr');
        fifos.errFd = readEnd(fifos.paths.stderr);
      }
    }
  } catch (e) {
    fifos.remove();
    throw e;
  }
  return fifos;
}

/** Copies a FIFO to one of our fds until it ends; `last` is when data last came. */
function copyOut(fd: number, to: (b: Uint8Array) => void, seen: { last: number }): { ended: Promise<void>; socket: Socket } {
  const socket = new Socket({ fd, readable: true, writable: false, allowHalfOpen: true });
  const ended = new Promise<void>((resolve) => {
    socket.on('data', (b: Buffer) => {
      seen.last = Date.now();
      to(b);
    });
    socket.on('end', resolve);
    socket.on('close', resolve);
    socket.on('error', () => resolve());
  });
  return { ended, socket };
}

/** Resolves when every stream ended, or output has been quiet for a while after the exit. */
function drain(ended: Promise<void>[], seen: { last: number }): Promise<void> {
  const start = Date.now();
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const check = (): void => {
      const now = Date.now();
      if (now - start >= DRAIN_MAX_MS || now - Math.max(seen.last, start) >= DRAIN_IDLE_MS) return finish();
      timer = setTimeout(check, DRAIN_IDLE_MS / 2);
    };
    const finish = (): void => {
      if (timer) clearTimeout(timer);
      resolve();
    };
    void Promise.all(ended).then(finish);
    check();
  });
}

/** Our terminal (stdout, else stderr), whose size the process's pty follows. */
function localTerminal(): WriteStream | undefined {
  if (isatty(1)) return process.stdout as WriteStream;
  if (isatty(2)) return process.stderr as WriteStream;
  return undefined;
}

/**
 * Creates a process (`create` is Tasks.Create or Tasks.Exec with the stdio
 * it is given), starts it and, unless detached, copies its I/O until it
 * exits. Resolves with its exit status (0 when detached). When this throws,
 * the process may exist: the caller removes what it made.
 */
export async function runProcess(conn: Connection, ref: ProcessRef, f: AttachFlags, create: (io: StdioPaths) => Promise<void>): Promise<number> {
  const tasks = conn.service(Tasks);
  const fifos = makeFifos(f);
  const cleanups: (() => void)[] = [() => fifos.remove()];
  const cleanup = (): void => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        c();
      } catch {
        /* best effort: each step is independent */
      }
    }
  };
  try {
    await create(fifos.paths);
    if (f.detach) {
      // -d -i: the daemon holds the stdin FIFO open; with no writer ever,
      // the process's stdin stays open (docker run -dit) and nothing is left here.
      fifos.remove();
      await tasks.start(ref);
      return 0;
    }

    const abort = new AbortController();
    cleanups.push(() => abort.abort());
    const waiting = tasks.wait(ref, { signal: abort.signal });
    waiting.catch(() => {}); // handled below, or abandoned when the start fails

    const seen = { last: 0 };
    const streams: ReturnType<typeof copyOut>[] = [];
    if (fifos.outFd >= 0) streams.push(copyOut(fifos.outFd, out, seen));
    if (fifos.errFd >= 0) streams.push(copyOut(fifos.errFd, err, seen));
    fifos.outFd = fifos.errFd = -1; // the sockets own them now
    cleanups.push(() => streams.forEach((s) => s.socket.destroy()));

    const term = f.tty ? localTerminal() : undefined;
    const resize = async (): Promise<void> => {
      if (!term?.rows || !term.columns) return;
      await tasks.resizePty({ ...ref, width: term.columns, height: term.rows }).catch(() => {});
    };
    if (term) {
      if (ref.execId === '') await resize(); // the init's pty exists once it is created
      // Node refreshes the size on SIGWINCH, then says 'resize'.
      const onResize = (): void => void resize();
      term.on('resize', onResize);
      cleanups.push(() => term.off('resize', onResize));
    }
    if (!(f.tty && f.interactive)) cleanups.push(forwardSignals(conn, ref));

    await tasks.start(ref);
    // After the start: by then the daemon reads the FIFO (an exec's from its
    // start), so what we write cannot be dropped with the last open end.
    if (f.interactive) cleanups.push(pumpStdin(conn, ref, fifos.paths.stdin, Boolean(f.tty)));
    if (term && ref.execId !== '') await resize(); // an exec's pty is made by its start

    const exit = await waiting;
    await drain(
      streams.map((s) => s.ended),
      seen,
    );
    return exit.exitStatus;
  } finally {
    cleanup();
  }
}

/**
 * Our stdin into the process's stdin FIFO; with a terminal ours goes raw. At our EOF the FIFO
 * closes and CloseIO tells the daemon. Returns the undo.
 */
function pumpStdin(conn: Connection, ref: ProcessRef, path: string, tty: boolean): () => void {
  const sink = new Socket({ fd: openSync(path, fsc.O_WRONLY | fsc.O_NONBLOCK), readable: false, writable: true });
  sink.on('error', () => {}); // the process is gone or closed its stdin
  const input = process.stdin;
  const raw = tty && input.isTTY ? (input as ReadStream) : undefined;
  raw?.setRawMode(true);
  const onData = (b: Buffer): void => void sink.write(b);
  const onEnd = (): void => {
    // Written out, then closed (end() would shutdown(2), which a FIFO refuses).
    sink.write(Buffer.alloc(0), () => {
      sink.destroy();
      conn
        .service(Tasks)
        .closeIO({ ...ref, stdin: true })
        .catch(() => {});
    });
  };
  input.on('data', onData);
  input.once('end', onEnd);
  return () => {
    input.off('data', onData);
    input.off('end', onEnd);
    raw?.setRawMode(false);
    input.pause();
    sink.destroy();
  };
}

/** The signals we receive go to the process (SIGINT: Ctrl-C); returns the undo. */
function forwardSignals(conn: Connection, ref: ProcessRef): () => void {
  const handlers = FORWARDED.map((sig) => {
    const h = (): void => {
      conn
        .service(Tasks)
        .kill({ ...ref, signal: os.signals[sig] })
        .catch((e: unknown) => {
          if (statusName(e) !== 'NOT_FOUND') err(`tsrctl: forwarding ${sig}: ${(e as { details?: string }).details ?? (e as Error).message}\n`);
        });
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  return () => {
    for (const [sig, h] of handlers) process.off(sig, h);
  };
}

/** The failure of a command that never ran, with docker's exit codes (127: not found, 126: not runnable). */
export function commandFailure(e: unknown): never {
  const msg = messageOf(e);
  if (/executable file not found|look up .*: ENOENT/.test(msg)) throw Object.assign(new Error(msg), { exitCode: 127 });
  if (/^op \d+ (look up|exec) .*(EACCES|permission denied|ENOEXEC)/.test(msg)) throw Object.assign(new Error(msg), { exitCode: 126 });
  throw e;
}
