import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { createContainer, deleteContainer, destroyContainer, killContainer, startCreated, type Created } from '../../runtime/container.js';
import { processAlive } from '../../linux/proc.js';
import { attach } from './attach.js';
import { setChildSubreaper } from '../../linux/libc.js';
import { constants } from 'node:os';
import { withContext, type CreateFlags } from './create.js';
import type { Globals } from './main.js';
import type { Logger } from '../../runtime/log.js';

interface RunFlags extends CreateFlags {
  detach?: boolean;
  keep?: boolean;
  subreaper: boolean;
}

/**
 * `run ID` uses --bundle (default: the current directory). `run DIR/` is a
 * shorthand for people typing by hand: DIR is the bundle and its name the id.
 */
export function runTarget(arg: string, bundleFlag: string, bundleGiven: boolean): { id: string; bundle: string } {
  const looksLikeDir = arg.includes('/') || (!bundleGiven && !existsSync('config.json') && existsSync(resolve(arg, 'config.json')));
  if (!looksLikeDir) return { id: arg, bundle: bundleFlag };
  const id = basename(resolve(arg)).replace(/[^\w+\-.]/g, '_');
  return { id, bundle: arg };
}

/** start, then wait for the exec; if the init died instead, its error is the better one. */
function startInit(root: string, created: Created, log: Logger): void {
  try {
    startCreated(root, created.record, log);
  } catch (e) {
    if (!processAlive(created.pid)) created.confirmExec?.();
    throw e;
  }
  created.confirmExec?.();
}

export default async function run(g: Globals, arg: string, o: RunFlags): Promise<number> {
  const { id, bundle } = runTarget(arg, o.bundle, o.bundle !== '.');
  // Our init may be a grandchild (a joined pid namespace): adopt it.
  if (!o.detach && o.subreaper) setChildSubreaper();
  const created = withContext(`run ${id}`, () => createContainer({
    root: g.root,
    id,
    bundle,
    pidFile: o.pidFile,
    consoleSocket: o.consoleSocket,
    relayConsole: !o.detach,
    watchExec: true,
    noPivot: !o.pivot,
    noNewKeyring: !o.newKeyring,
    preserveFds: o.preserveFds,
    log: g.log,
  }));
  if (o.detach) {
    try {
      startInit(g.root, created, g.log);
    } catch (e) {
      deleteContainer(g.root, id, true, g.log);
      throw e;
    }
    return 0;
  }

  g.log.debug(`run ${id}: created`);
  let code: number;
  try {
    code = await attach(created.pid, {
      consoleMaster: created.consoleMaster,
      forward: (sig) => {
        try {
          killContainer(g.root, id, constants.signals[sig]);
        } catch {
          /* it is exiting */
        }
      },
      release: () => startInit(g.root, created, g.log),
    });
  } catch (e) {
    deleteContainer(g.root, id, true, g.log);
    throw e;
  }
  g.log.debug(`run ${id}: init exited with ${code}`);
  if (!o.keep) destroyContainer(g.root, created.record, g.log);
  g.log.debug(`run ${id}: deleted`);
  return code;
}
