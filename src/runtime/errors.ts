// Runtime errors keep their cause, so the user's last line says what failed
// and why, e.g. `create c1: op 12 mount proc on /proc: EPERM (Operation not permitted)`.
import { SyscallError, fromNodeError } from '../linux/syscall-error.js';

export class RuntimeError extends Error {
  constructor(message: string, cause?: unknown) {
    const c = cause === undefined ? undefined : fromNodeError(cause);
    super(c === undefined ? message : `${message}: ${c instanceof Error ? c.message : String(c)}`, c === undefined ? undefined : { cause: c });
    this.name = 'RuntimeError';
  }
}

/** The errno behind an error, if a syscall failed somewhere in its causes. */
export function errnoOf(err: unknown): number | undefined {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    if (e instanceof SyscallError) return e.errno;
  }
  return undefined;
}
