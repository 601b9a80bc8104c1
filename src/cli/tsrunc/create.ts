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
  createContainer({
    root: g.root,
    id,
    bundle: o.bundle,
    pidFile: o.pidFile,
    consoleSocket: o.consoleSocket,
    noPivot: !o.pivot,
    noNewKeyring: !o.newKeyring,
    preserveFds: o.preserveFds,
    log: g.log,
  });
}
