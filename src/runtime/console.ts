// `run` with a terminal and no --console-socket: we hold the pty master and
// copy between it and our own stdio, in raw mode, following window resizes.
import { closeSync } from 'node:fs';
import tty from 'node:tty';
import { dupCloexec, setWinsize } from '../linux/libc.js';

export interface ConsoleRelay {
  /** resolves once the container side of the pty is closed and its output copied */
  closed: Promise<void>;
  /** stop copying and restore our terminal */
  stop(): void;
}

export function relayConsole(master: number): ConsoleRelay {
  const stdin = process.stdin;
  const stdout = process.stdout;
  const resize = () => {
    if (stdout.isTTY && stdout.rows && stdout.columns) {
      try {
        setWinsize(master, stdout.rows, stdout.columns);
      } catch {
        /* the pty is gone */
      }
    }
  };
  resize();
  stdout.on('resize', resize);

  const reader = new tty.ReadStream(master);
  const writer = new tty.WriteStream(dupCloexec(master));
  const raw = stdin.isTTY ? (stdin as tty.ReadStream) : undefined;
  raw?.setRawMode(true);
  stdin.pipe(writer);
  reader.pipe(stdout, { end: false });

  const closed = new Promise<void>((resolve) => {
    // EIO on the master means every slave fd is closed.
    reader.on('error', () => resolve());
    reader.on('end', () => resolve());
    reader.on('close', () => resolve());
  });

  return {
    closed,
    stop() {
      stdout.off('resize', resize);
      stdin.unpipe(writer);
      raw?.setRawMode(false);
      stdin.pause();
      reader.destroy();
      writer.destroy();
      try {
        closeSync(master);
      } catch {
        /* closed by the stream */
      }
    },
  };
}
