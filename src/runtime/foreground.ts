// `run` in the foreground: wait for the init with SIGCHLD + waitpid(pid,
// WNOHANG) and forward the signals we receive to it.
import { waitpidNoHang, type WaitResult } from '../linux/libc.js';

// Everything a terminal or supervisor may send; Node cannot catch SIGKILL or
// SIGSTOP, owns SIGUSR1 (inspector) and the fault signals, and needs SIGPROF
// (profiler) and SIGTRAP (debugger) for itself.
export const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2', 'SIGALRM', 'SIGPIPE', 'SIGCONT', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGPWR', 'SIGVTALRM', 'SIGXCPU', 'SIGXFSZ'];

export interface Supervision {
  /** the init's exit: its code, or 128 + signal */
  exited: Promise<WaitResult>;
  stop(): void;
}

/** Call before the init can exit (before `start`), so no SIGCHLD is missed. */
export function supervise(pid: number, forward: (sig: NodeJS.Signals) => void): Supervision {
  let settle: (r: WaitResult) => void = () => {};
  const exited = new Promise<WaitResult>((resolve) => (settle = resolve));
  const onChild = () => {
    const r = waitpidNoHang(pid);
    if (r) settle(r);
  };
  const handlers = FORWARDED.map((sig) => {
    const h = () => forward(sig);
    process.on(sig, h);
    return [sig, h] as const;
  });
  process.on('SIGCHLD', onChild);
  // Signal listeners do not keep Node's event loop alive; this timer does,
  // and it also catches a SIGCHLD that arrived before the listener.
  const keepAlive = setInterval(onChild, 1000);
  onChild();
  return {
    exited,
    stop() {
      clearInterval(keepAlive);
      process.off('SIGCHLD', onChild);
      for (const [sig, h] of handlers) process.off(sig, h);
    },
  };
}
