// OCI hooks: prestart and createRuntime in the runtime's namespaces during
// create; createContainer in the container's before pivot_root;
// startContainer in the container's during start; poststart and poststop in
// the runtime's, where a failure is only a warning. Each gets the state JSON
// on stdin; an error names the hook.
import { closeSync, readSync, writeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import type { Hook, Hooks, Spec, State } from '../oci/spec.js';
import { SOCK_SEQPACKET, SOCK_STREAM } from '../linux/constants.js';
import { socketpair, pidfdOpen, pollReadable, waitpidNoHang } from '../linux/libc.js';
import { launch } from './launch.js';
import { buildHookPlan } from './plan/hook.js';
import { RuntimeError } from './errors.js';
import type { Logger } from './log.js';

export type HookKind = keyof Hooks;

/** The state hooks get (runtime-spec State: no runc extras). */
export function hookState(s: Pick<State, 'ociVersion' | 'id' | 'status' | 'pid' | 'bundle' | 'annotations'>): string {
  const state: Record<string, unknown> = { ociVersion: s.ociVersion, id: s.id, status: s.status, pid: s.pid, bundle: s.bundle };
  if (s.annotations && Object.keys(s.annotations).length) state['annotations'] = s.annotations;
  return JSON.stringify(state);
}

export function hooksOf(spec: Spec, kind: HookKind): Hook[] {
  return spec.hooks?.[kind] ?? [];
}

function failure(kind: HookKind, i: number, hook: Hook, why: string, output: string): RuntimeError {
  const out = output.trim();
  return new RuntimeError(`${kind} hook ${i} (${hook.path}) ${why}${out ? `: ${out.length > 400 ? `${out.slice(0, 400)}...` : out}` : ''}`);
}

/** Runs one kind of hooks in the runtime's namespaces, in order; throws on the first failure. */
export function runHostHooks(kind: HookKind, spec: Spec, state: string): void {
  hooksOf(spec, kind).forEach((hook, i) => runHostHook(kind, i, hook, state));
}

/** Hooks whose failure is a warning (poststart, poststop): the rest still run. */
export function runHostHooksWarn(kind: HookKind, spec: Spec, state: string, log: Logger): void {
  hooksOf(spec, kind).forEach((hook, i) => {
    try {
      runHostHook(kind, i, hook, state);
    } catch (e) {
      log.warn((e as Error).message);
    }
  });
}

function runHostHook(kind: HookKind, i: number, hook: Hook, state: string): void {
  const r = spawnSync(hook.path, (hook.args ?? [hook.path]).slice(1), {
    argv0: hook.args?.[0] ?? hook.path,
    input: state,
    // No env in the hook: it inherits ours, as runc's do.
    env: hook.env ? Object.fromEntries(hook.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])) : process.env,
    timeout: hook.timeout ? hook.timeout * 1000 : undefined,
    killSignal: 'SIGKILL',
    maxBuffer: 1 << 20,
  });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  // A hook need not read its stdin: EPIPE writing the state is no failure.
  if (r.error && !((r.error as NodeJS.ErrnoException).code === 'EPIPE' && (r.status !== null || r.signal))) {
    const code = (r.error as NodeJS.ErrnoException).code;
    if (code === 'ETIMEDOUT') throw failure(kind, i, hook, `timed out after ${hook.timeout} s`, output);
    throw failure(kind, i, hook, `could not run: ${code ?? r.error.message}`, output);
  }
  if (r.signal) throw failure(kind, i, hook, `was killed by ${r.signal}`, output);
  if (r.status !== 0) throw failure(kind, i, hook, `exited with status ${r.status}`, output);
}

/** Reads what is there without blocking (the fd stays blocking for the hook's sake). */
function drain(fd: number, chunks: Buffer[]): void {
  const buf = Buffer.alloc(65536);
  while (pollReadable([fd], 0).length > 0) {
    const n = readSync(fd, buf, 0, buf.length, null);
    if (n === 0) return;
    // Keep the first 64 KiB for the error message; read the rest away.
    if (chunks.reduce((a, c) => a + c.length, 0) < 65536) chunks.push(Buffer.from(buf.subarray(0, n)));
  }
}

/** Runs one kind of hooks in the namespaces of the container's init `initPid`. */
export function runContainerHooks(kind: HookKind, spec: Spec, initPid: number, state: string): void {
  hooksOf(spec, kind).forEach((hook, i) => {
    // The state is written to the stdin pipe first: a small JSON fits its buffer.
    const [stdinR, stdinW] = pipe();
    const [outR, outW] = pipe();
    const [parentEnd, childEnd] = socketpair(SOCK_SEQPACKET);
    const chunks: Buffer[] = [];
    try {
      writeSync(stdinW, state);
      closeSync(stdinW);
      const plan = buildHookPlan({ spec, initPid, hook, defaultEnv: spec.process?.env ?? [], fds: { sync: childEnd, parentSync: parentEnd, stdin: stdinR, output: outW } });
      let launched;
      try {
        launched = launch(plan, parentEnd, {});
      } catch (e) {
        throw failure(kind, i, hook, `could not run: ${(e as Error).message}`, '');
      } finally {
        closeSync(outW);
      }
      closeSync(launched.clonePidfd);
      const pidfd = pidfdOpen(launched.pid);
      try {
        const deadline = hook.timeout ? Date.now() + hook.timeout * 1000 : Infinity;
        for (;;) {
          const st = waitpidNoHang(launched.pid);
          if (st) {
            drain(outR, chunks);
            const output = Buffer.concat(chunks).toString();
            if (st.signal) throw failure(kind, i, hook, `was killed by signal ${st.signal}`, output);
            if (st.code !== 0) throw failure(kind, i, hook, `exited with status ${st.code}`, output);
            break;
          }
          if (Date.now() > deadline) {
            process.kill(launched.pid, 'SIGKILL');
            while (!waitpidNoHang(launched.pid)) pollReadable([pidfd], 100);
            throw failure(kind, i, hook, `timed out after ${hook.timeout} s`, Buffer.concat(chunks).toString());
          }
          const ready = pollReadable([pidfd, outR], Math.min(100, deadline - Date.now()));
          if (ready.includes(outR)) drain(outR, chunks);
        }
      } finally {
        closeSync(pidfd);
      }
    } finally {
      for (const fd of [stdinR, outR, parentEnd]) {
        try {
          closeSync(fd);
        } catch {
          /* closed */
        }
      }
    }
  });
}

/** A one-way channel as two close-on-exec fds (read end, write end). */
function pipe(): [number, number] {
  // A stream socketpair serves as a pipe and needs no further binding.
  return socketpair(SOCK_STREAM);
}
