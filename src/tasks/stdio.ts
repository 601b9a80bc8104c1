// A task's I/O as containerd clients name it: FIFO paths (the client reads
// and writes them), `file:///path` (appended to), `binary:///path?k=v` (a
// logging process fed through pipes, containerd's protocol: fd 3 stdout,
// fd 4 stderr, fd 5 closed or written when ready), or "" (nothing).
//
// Output goes straight to the FIFO or file: the container writes it itself,
// so nothing is copied and nothing is lost when the daemon restarts. Input
// and a terminal go through the shim, which can end stdin (CloseIO) and
// hold the pty master.
import { closeSync, mkdirSync, openSync, fstatSync } from 'node:fs';
import { dirname } from 'node:path';
import { O_CLOEXEC, O_NONBLOCK, O_RDONLY, O_RDWR, SOCK_SEQPACKET, SOCK_STREAM } from '../linux/constants.js';
import { pipe, pollReadable, socketpair } from '../linux/libc.js';
import { fromNodeError } from '../linux/syscall-error.js';
import { invalidArgument, notFound } from '../errdefs.js';
import { launch, awaitExec } from '../runtime/launch.js';
import { op, SYNC_TAG, type LaunchPlan } from '../runtime/plan/ops.js';
import type { StdioFds } from '../runtime/plan/context.js';
import type { Role } from './shim-protocol.js';
import type { Shim } from './shim.js';

export interface ProcessIO {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

export interface OpenedIO {
  /** a non-terminal process's 0, 1, 2 (-1: the shim's /dev/null) */
  stdio?: StdioFds;
  /** the socket the plan's CONSOLE op sends the pty master to */
  consoleFd?: number;
  /** what the shim keeps for this process */
  roles: Partial<Record<Role, number>>;
  /** closes our copies once the shim has its own */
  close(): void;
}

const LOGGER_READY_MS = 10_000;

/** A logging binary's command line from a binary:// URI (query keys and values become arguments). */
export function loggerArgv(uri: URL): string[] {
  const args = [decodeURIComponent(uri.pathname)];
  for (const [k, v] of uri.searchParams) {
    args.push(k);
    if (v !== '') args.push(v);
  }
  return args;
}

function scheme(target: string): { kind: 'none' | 'fifo' | 'file' | 'binary'; url?: URL } {
  if (target === '') return { kind: 'none' };
  if (target.startsWith('file://') || target.startsWith('binary://')) {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      throw invalidArgument(`malformed I/O URI ${JSON.stringify(target)}`);
    }
    return { kind: url.protocol === 'file:' ? 'file' : 'binary', url };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) throw invalidArgument(`unsupported I/O URI scheme: ${target} (fifo paths, file:// and binary:// are)`);
  return { kind: 'fifo' };
}

function openFifo(path: string, flags: number, what: string): number {
  let fd: number;
  try {
    fd = openSync(path, flags | O_CLOEXEC);
  } catch (e) {
    const err = fromNodeError(e);
    const msg = `${what}: open FIFO ${path}: ${err instanceof Error ? err.message.replace(/^.*?: /, '') : String(err)}`;
    throw (e as NodeJS.ErrnoException).code === 'ENOENT' ? notFound(msg) : invalidArgument(msg);
  }
  if (!fstatSync(fd).isFIFO()) {
    closeSync(fd);
    throw invalidArgument(`${what}: ${path} is not a FIFO (use file:// for a file)`);
  }
  return fd;
}

function openFile(url: URL, what: string): number {
  const path = decodeURIComponent(url.pathname);
  try {
    mkdirSync(dirname(path), { recursive: true });
    return openSync(path, 'a', 0o600);
  } catch (e) {
    throw invalidArgument(`${what}: open ${path}: ${(e as Error).message}`);
  }
}

interface Owned {
  fds: number[];
  add(fd: number): number;
}

function owned(): Owned {
  const fds: number[] = [];
  return {
    fds,
    add(fd) {
      if (fd >= 0) fds.push(fd);
      return fd;
    },
  };
}

/**
 * Starts a binary:// logger as a process of the shim (named `name`) and
 * returns the write ends the container's stdout and stderr get.
 */
function startLogger(shim: Shim, name: string, url: URL, env: { namespace: string; id: string }, mine: Owned): { out: number; err: number } {
  const temp: number[] = [];
  const argv = loggerArgv(url);
  let readyR: number;
  let outW: number;
  let errW: number;
  try {
    const [outR, ow] = pipe();
    temp.push(outR);
    outW = mine.add(ow);
    const [errR, ew] = pipe();
    temp.push(errR);
    errW = mine.add(ew);
    const [rr, readyW] = pipe();
    readyR = mine.add(rr);
    temp.push(readyW);
    const [parentEnd, childEnd] = socketpair(SOCK_SEQPACKET);
    temp.push(parentEnd);
    const spawner = shim.spawner(name);
    const plan: LaunchPlan = {
      cloneFlags: 0,
      cgroupFd: -1,
      syncFd: spawner.place(childEnd),
      parentSyncFd: -1,
      ops: [
        op('SETSID', {}, 'start a session of its own'),
        op('DUP2', { oldfd: spawner.place(outR), newfd: 3 }, 'stdout pipe as fd 3'),
        op('DUP2', { oldfd: spawner.place(errR), newfd: 4 }, 'stderr pipe as fd 4'),
        op('DUP2', { oldfd: spawner.place(readyW), newfd: 5 }, 'the ready pipe as fd 5'),
        op('CLOSE_FDS', { first: 6 }, 'close every other fd at exec'),
        op('SYNC', { tag: SYNC_TAG.READY }, 'report ready'),
        op(
          'EXEC',
          { argv, envp: [`CONTAINER_ID=${env.id}`, `CONTAINER_NAMESPACE=${env.namespace}`, 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
          `exec the logger ${argv[0]}`,
        ),
      ],
    };
    const launched = launch(plan, parentEnd, {}, spawner);
    awaitExec(plan, parentEnd);
    shim.watch(name, launched.pid);
  } finally {
    for (const fd of temp) closeSync(fd);
  }
  // Ready: a byte, or fd 5 closed (by the logger, or by its death).
  if (pollReadable([readyR], LOGGER_READY_MS).length === 0) {
    throw invalidArgument(`the logging binary ${argv[0]} did not report ready within ${LOGGER_READY_MS / 1000} s`);
  }
  return { out: outW, err: errW };
}

/**
 * Opens what a process's I/O names. `shim` and `loggerName` are needed only
 * for binary:// output. On error everything opened is closed again.
 */
export function openIO(io: ProcessIO, shim: Shim, loggerName: string, env: { namespace: string; id: string }): OpenedIO {
  const mine = owned();
  const close = () => {
    for (const fd of mine.fds.splice(0)) {
      try {
        closeSync(fd);
      } catch {
        /* closed */
      }
    }
  };
  try {
    const roles: Partial<Record<Role, number>> = {};
    const out = scheme(io.stdout);
    const err = scheme(io.stderr);
    let stdout = -1;
    let stderr = -1;
    if (out.kind === 'binary') {
      const w = startLogger(shim, loggerName, out.url!, env, mine);
      stdout = w.out;
      stderr = w.err;
    } else {
      stdout = out.kind === 'fifo' ? mine.add(openFifo(io.stdout, O_RDWR, 'stdout')) : out.kind === 'file' ? mine.add(openFile(out.url!, 'stdout')) : -1;
      if (io.stderr === io.stdout) stderr = stdout;
      else if (err.kind === 'binary') throw invalidArgument('stderr: a binary:// logger must be given for stdout too');
      else stderr = err.kind === 'fifo' ? mine.add(openFifo(io.stderr, O_RDWR, 'stderr')) : err.kind === 'file' ? mine.add(openFile(err.url!, 'stderr')) : -1;
    }
    const inKind = scheme(io.stdin).kind;
    if (inKind !== 'none' && inKind !== 'fifo') throw invalidArgument(`stdin: ${io.stdin}: only a FIFO path can be stdin`);
    // Non-blocking: the client may open its end later; the shim waits for it.
    if (inKind === 'fifo') roles.stdinSrc = mine.add(openFifo(io.stdin, O_RDONLY | O_NONBLOCK, 'stdin'));

    if (io.terminal) {
      const [receiver, sender] = socketpair(SOCK_STREAM);
      roles.console = mine.add(receiver);
      mine.add(sender);
      roles.termOut = stdout >= 0 ? stdout : mine.add(openSync('/dev/null', 'w'));
      return { consoleFd: sender, roles, close };
    }
    let stdin = -1;
    if (roles.stdinSrc !== undefined) {
      const [r, w] = pipe();
      stdin = mine.add(r);
      roles.stdinDst = mine.add(w);
    }
    return { stdio: { stdin, stdout, stderr }, roles, close };
  } catch (e) {
    close();
    throw e;
  }
}
