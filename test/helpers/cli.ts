// Runs the built CLI (dist/tsrunc.cjs) as a user would, with a private --root.
import { execa, type Options } from 'execa';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const TSRUNC = join(REPO, 'dist', 'tsrunc.cjs');

/**
 * tsrunc runs as a user would run it, without tap's instrumentation: tap
 * puts NODE_OPTIONS (and its variables) into every child it sees spawned, so
 * the command line itself drops them through env(1).
 */
export function tsruncArgv(root: string, args: string[]): [string, string[]] {
  const tapVars = Object.keys(process.env).filter((k) => k.startsWith('_TAPJS_'));
  return ['env', [...['NODE_OPTIONS', ...tapVars].flatMap((k) => ['-u', k]), 'node', TSRUNC, '--root', root, ...args]];
}

export function tempRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'tsrunc-root-'));
  process.on('exit', () => rmSync(root, { recursive: true, force: true }));
  return root;
}

export interface Result {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** A running command: a promise of its result that can also be signalled. */
export type Running = Promise<Result> & { kill(signal?: NodeJS.Signals): boolean; pid: number | undefined };

export interface Cli {
  root: string;
  /** runs `tsrunc --root ROOT ...args`; never throws on a non-zero exit */
  (args: string[], opts?: Options): Running;
  /**
   * For commands that leave a container running (create, run -d): the
   * container keeps the stdio it inherited, so it goes to files, not pipes
   * that would never close. Resolves with the exit code and stderr text.
   */
  detached(args: string[]): Promise<{ exitCode: number; stderr: string }>;
}

export function cli(root = tempRoot()): Cli {
  const fn = ((args: string[], opts: Options = {}) => {
    const sub = execa(...tsruncArgv(root, args), { reject: false, timeout: 60_000, ...opts });
    const done = sub.then((r) => ({ exitCode: r.exitCode ?? -1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') }));
    return Object.assign(done, { kill: (sig?: NodeJS.Signals) => sub.kill(sig), pid: sub.pid });
  }) as unknown as Cli;
  fn.root = root;
  let n = 0;
  fn.detached = async (args: string[]) => {
    // A real fd: execa would turn a { file } target into a pipe it drains.
    const errFile = join(root, `.stderr-${process.pid}-${n++}`);
    const errFd = openSync(errFile, 'w');
    let r;
    try {
      r = await execa(...tsruncArgv(root, args), {
        reject: false,
        timeout: 60_000,
        stdin: 'ignore',
        stdout: 'ignore',
        stderr: errFd as unknown as 'inherit',
      });
    } finally {
      closeSync(errFd);
    }
    const stderr = readFileSync(errFile, 'utf8').trim();
    rmSync(errFile, { force: true });
    return { exitCode: r.exitCode ?? -1, stderr };
  };
  return fn;
}

export const isRoot = process.geteuid?.() === 0;
export const needsRoot = isRoot ? false : 'integration tests run real containers and need root';

/** Polls until `cond` holds (or the time is up); returns its last value. */
export async function waitFor<T>(cond: () => T | Promise<T>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}
