import { readFileSync } from 'node:fs';

export interface MountInfo {
  id: number;
  parent: number;
  root: string;
  mountPoint: string;
  options: string;
  fsType: string;
  source: string;
  superOptions: string;
}

// mountinfo escapes space, tab, newline and backslash as octal.
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (sep < 0 || f.length < sep + 3) continue;
    out.push({
      id: Number(f[0]),
      parent: Number(f[1]),
      root: unescape(f[3]!),
      mountPoint: unescape(f[4]!),
      options: f[5]!,
      fsType: f[sep + 1]!,
      source: unescape(f[sep + 2]!),
      superOptions: f[sep + 3] ?? '',
    });
  }
  return out;
}

export function readMountInfo(pid: number | 'self' = 'self'): MountInfo[] {
  return parseMountInfo(readFileSync(`/proc/${pid}/mountinfo`, 'utf8'));
}

/** The mount that holds a path: the longest mount point that prefixes it. */
export function mountOf(path: string, mounts: MountInfo[]): MountInfo | undefined {
  let best: MountInfo | undefined;
  for (const m of mounts) {
    const mp = m.mountPoint;
    const inside = mp === '/' || path === mp || path.startsWith(mp.endsWith('/') ? mp : `${mp}/`);
    if (inside && (!best || mp.length >= best.mountPoint.length)) best = m;
  }
  return best;
}
