import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { createContainer, startContainer, deleteContainer, killContainer } from '../../runtime/container.js';
import { supervise } from '../../runtime/foreground.js';
import { relayConsole } from '../../runtime/console.js';
import { setChildSubreaper } from '../../linux/libc.js';
import { constants } from 'node:os';
import type { CreateFlags } from './create.js';
import type { Globals } from './main.js';

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

export default async function run(g: Globals, arg: string, o: RunFlags): Promise<number> {
  const { id, bundle } = runTarget(arg, o.bundle, o.bundle !== '.');
  // Our init may be a grandchild (a joined pid namespace): adopt it.
  if (!o.detach && o.subreaper) setChildSubreaper();
  const created = createContainer({
    root: g.root,
    id,
    bundle,
    pidFile: o.pidFile,
    consoleSocket: o.consoleSocket,
    relayConsole: !o.detach,
    noPivot: !o.pivot,
    noNewKeyring: !o.newKeyring,
    preserveFds: o.preserveFds,
    log: g.log,
  });
  if (o.detach) {
    try {
      startContainer(g.root, id);
    } catch (e) {
      deleteContainer(g.root, id, true, g.log);
      throw e;
    }
    return 0;
  }

  const watch = supervise(created.pid, (sig) => {
    try {
      killContainer(g.root, id, constants.signals[sig]);
    } catch {
      /* it is exiting */
    }
  });
  const relay = created.consoleMaster !== undefined ? relayConsole(created.consoleMaster) : undefined;
  let code: number;
  try {
    startContainer(g.root, id);
    const exit = await watch.exited;
    code = exit.code;
    if (relay) await Promise.race([relay.closed, new Promise((r) => setTimeout(r, 200))]);
  } catch (e) {
    deleteContainer(g.root, id, true, g.log);
    throw e;
  } finally {
    watch.stop();
    relay?.stop();
  }
  if (!o.keep) deleteContainer(g.root, id, true, g.log);
  return code;
}
