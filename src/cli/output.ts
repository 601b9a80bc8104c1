// Output by write(2) on fds 1 and 2. Touching process.stdout/stderr would turn
// them into Node streams (and may set O_NONBLOCK on an fd the container
// shares with us); it also costs start-up time.
import { writeSync } from 'node:fs';

function writeAll(fd: number, text: string | Uint8Array): void {
  const buf = typeof text === 'string' ? Buffer.from(text) : text;
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') continue;
      if (code === 'EPIPE') return;
      throw e;
    }
  }
}

export const out = (text: string | Uint8Array): void => writeAll(1, text);
export const err = (text: string | Uint8Array): void => writeAll(2, text);
