import { getSystemErrorMap } from 'node:util';

/** errno number -> [name, message], from libuv's table (Linux numbering). */
let errnoTable: Map<number, [string, string]> | undefined;

function lookup(errno: number): [string, string] | undefined {
  errnoTable ??= getSystemErrorMap();
  return errnoTable.get(-Math.abs(errno));
}

/** The symbolic name of an errno value, e.g. 2 -> "ENOENT". */
export function errnoName(errno: number): string {
  return lookup(errno)?.[0] ?? `E${errno}`;
}

/** The errno value of a symbolic name, e.g. "ENOENT" -> 2; undefined if unknown. */
export function errnoValue(name: string): number | undefined {
  errnoTable ??= getSystemErrorMap();
  for (const [code, [n]] of errnoTable) if (n === name) return -code;
  return undefined;
}

/** A failed system call: which call, on what path, and the errno it returned. */
export class SyscallError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly syscall: string;
  readonly path: string | undefined;

  constructor(syscall: string, errno: number, path?: string, what?: string) {
    const code = errnoName(errno);
    const detail = lookup(errno)?.[1];
    const subject = what ?? (path !== undefined ? `${syscall} ${path}` : syscall);
    super(`${subject}: ${code}${detail ? ` (${detail})` : ''}`);
    this.name = 'SyscallError';
    this.errno = Math.abs(errno);
    this.code = code;
    this.syscall = syscall;
    this.path = path;
  }
}

/** Node's own fs errors carry code/syscall/path; turn one into a SyscallError. */
export function fromNodeError(err: unknown, what?: string): SyscallError | unknown {
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.errno === 'number' && typeof e.syscall === 'string') {
    return new SyscallError(e.syscall, e.errno, e.path, what);
  }
  return err;
}
