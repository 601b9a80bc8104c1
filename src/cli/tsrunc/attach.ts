// The foreground part of `run` and `exec`: wait for the process, forward the
// signals we get to it, relay its pty if we hold the master.
import { supervise } from '../../runtime/foreground.js';

export interface AttachOptions {
  /** the pty master to relay, if the process has a terminal and no console socket */
  consoleMaster?: number | undefined;
  /** how a signal we receive reaches the process */
  forward: (sig: NodeJS.Signals) => void;
  /** lets the process go (start the init, confirm the exec); runs once we are listening */
  release: () => void;
}

/** Resolves with the exit code (128 + N when signal N killed the process). */
export async function attach(pid: number, o: AttachOptions): Promise<number> {
  const watch = supervise(pid, o.forward);
  // node:tty pulls in net and streams (~5 ms): load it only for a terminal.
  const relay = o.consoleMaster !== undefined ? (await import('../../runtime/console.js')).relayConsole(o.consoleMaster) : undefined;
  try {
    o.release();
    const exit = await watch.exited;
    // Let the pty drain what the process wrote last.
    if (relay) await Promise.race([relay.closed, new Promise((r) => setTimeout(r, 200))]);
    return exit.code;
  } finally {
    watch.stop();
    relay?.stop();
  }
}
