// Read-only lookups in a container's root filesystem from the host side:
// symlinks resolve inside the root, never out of it.
import { lstatSync, readlinkSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';

/** The host path that `path` names inside `root`, symlinks resolved within root. */
export function resolveInRoot(root: string, path: string): string | undefined {
  const parts = path.split('/').filter(Boolean);
  const done: string[] = [];
  let links = 0;
  while (parts.length) {
    const part = parts.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const host = posix.join(root, ...done, part);
    let st;
    try {
      st = lstatSync(host);
    } catch {
      return undefined;
    }
    if (st.isSymbolicLink()) {
      if (++links > 40) return undefined;
      const target = readlinkSync(host);
      if (target.startsWith('/')) done.length = 0;
      parts.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    done.push(part);
  }
  return posix.join(root, ...done);
}

/** The home directory of uid in the container's /etc/passwd, if listed. */
export function homeOf(root: string, uid: number): string | undefined {
  const passwd = resolveInRoot(root, '/etc/passwd');
  if (!passwd) return undefined;
  let text: string;
  try {
    if (!lstatSync(passwd).isFile()) return undefined;
    text = readFileSync(passwd, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 6 && Number(f[2]) === uid && f[2] !== '') return f[5] || undefined;
  }
  return undefined;
}
