// Starts the built tsrund (dist/tsrund.cjs) as this test's own child, on a
// socket and --root/--state in a temp dir, and stops it in teardown.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './cli.js';

export const TSRUND = join(REPO, 'dist', 'tsrund.cjs');
export const TSRCTL = join(REPO, 'dist', 'tsrctl.cjs');

export interface RunningDaemon {
  dir: string;
  address: string;
  root: string;
  state: string;
  child: ChildProcess;
  /** everything the daemon wrote on stderr so far */
  log(): string;
  /** SIGTERM; resolves with the exit code */
  stop(): Promise<number | null>;
}

/** The environment of a child without tap's instrumentation. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k === 'NODE_OPTIONS' || k.startsWith('_TAPJS_')) delete env[k];
  return env;
}

export function tempDir(prefix = 'tsrund-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Starts tsrund and resolves once it serves. */
export async function startTsrund(opts: { dir?: string; args?: string[]; nodeArgs?: string[] } = {}): Promise<RunningDaemon> {
  const dir = opts.dir ?? tempDir();
  const address = join(dir, 'tsrund.sock');
  const root = join(dir, 'root');
  const state = join(dir, 'state');
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), TSRUND, '--address', address, '--root', root, '--state', state, ...(opts.args ?? [])], {
    env: cleanEnv(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`tsrund did not start in 20 s:\n${log}`)), 20_000);
    const check = (): void => {
      if (log.includes('msg="serving..."')) {
        clearTimeout(t);
        resolve();
      }
    };
    child.stderr!.on('data', check);
    void exited.then((code) => {
      clearTimeout(t);
      reject(new Error(`tsrund exited with ${code} before serving:\n${log}`));
    });
  });
  let stopping: Promise<number | null> | undefined;
  const stop = (): Promise<number | null> => {
    if (!stopping) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      stopping = exited;
    }
    return stopping;
  };
  process.on('exit', () => child.kill('SIGKILL'));
  return { dir, address, root, state, child, log: () => log, stop };
}
