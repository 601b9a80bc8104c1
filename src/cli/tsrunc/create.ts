import { createContainer } from '../../runtime/container.js';
import type { Globals } from './main.js';

export interface CreateFlags {
  bundle: string;
  consoleSocket?: string;
  pidFile?: string;
  pivot: boolean;
  newKeyring: boolean;
  preserveFds: number;
}

export default function create(g: Globals, id: string, o: CreateFlags): void {
  withContext(`create ${id}`, () => createContainer({
    root: g.root,
    id,
    bundle: o.bundle,
    pidFile: o.pidFile,
    consoleSocket: o.consoleSocket,
    noPivot: !o.pivot,
    noNewKeyring: !o.newKeyring,
    preserveFds: o.preserveFds,
    log: g.log,
  }));
}

/** Prefixes an error with what was being done: `create c1: config.json: ...`. */
export function withContext<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof Error) e.message = `${what}: ${e.message}`;
    throw e;
  }
}
