// Closing an fd on a clean-up path, where it may be closed already (or -1).
import { closeSync } from 'node:fs';

export function closeQuietly(fd: number): void {
  if (fd < 0) return;
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}
