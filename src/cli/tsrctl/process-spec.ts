// The process parts of `run` and `tasks exec` flags, as docker reads them:
// -e K=V (or -e K: our value of K), --user uid[:gid] or name[:group] looked
// up in the container's /etc/passwd and /etc/group when its root is a
// directory we can read, or the layer directories of an image's snapshot.
import { lstatSync, readFileSync, realpathSync } from 'node:fs';
import { join, sep } from 'node:path';
import { getxattr } from '../../linux/fsat.js';
import type { User } from '../../oci/spec.js';

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** -e values: K=V as given; a bare K takes our own value (skipped when we have none). */
export function parseEnv(list: readonly string[], from: NodeJS.ProcessEnv = process.env): string[] {
  const env: string[] = [];
  for (const e of list) {
    if (e === '' || e.startsWith('=')) throw new Error(`-e ${JSON.stringify(e)}: expected KEY=VALUE or KEY`);
    if (e.includes('=')) env.push(e);
    else if (from[e] !== undefined) env.push(`${e}=${from[e]}`);
  }
  return env;
}

/** KEY=VALUE lists merged: a later KEY replaces an earlier one in place. */
export function mergeEnv(base: readonly string[], extra: readonly string[]): string[] {
  const out = [...base];
  for (const e of extra) {
    const k = e.slice(0, e.indexOf('=') + 1);
    const i = out.findIndex((x) => x.startsWith(k));
    if (i >= 0) out[i] = e;
    else out.push(e);
  }
  return out;
}

/** A file of the container's root, unless a symlink leads it out of there (then: none). */
function rootfsFile(rootfs: string, path: string): string | undefined {
  try {
    const root = realpathSync(rootfs);
    const real = realpathSync(join(root, path));
    if (!real.startsWith(root + sep)) return undefined;
    return readFileSync(real, 'utf8');
  } catch {
    return undefined;
  }
}

/** Files of a container's root as the container will see them, and where that is (for errors). */
export interface RootFiles {
  /** how an error names a file ("/srv/rootfs/etc/passwd", "/etc/passwd of image busybox") */
  describe(path: string): string;
  read(path: string): string | undefined;
}

/**
 * The files of an overlay's layers, topmost first, without mounting it:
 * the first layer with the path has it, unless a whiteout (0:0 character
 * device) or an opaque directory on the way hides what lies below.
 */
export function layerFiles(dirs: readonly string[], owner: string): RootFiles {
  return {
    describe: (path) => `/${path} of ${owner}`,
    read(path) {
      const parts = path.split('/').filter(Boolean);
      for (const dir of dirs) {
        let hidden = false;
        for (let i = 1; i <= parts.length; i++) {
          const p = join(dir, ...parts.slice(0, i));
          let st;
          try {
            st = lstatSync(p);
          } catch {
            break;
          }
          if (st.isCharacterDevice() && st.rdev === 0) return undefined;
          if (i === parts.length) return st.isFile() ? rootfsFile(dir, path) : undefined;
          if (!st.isDirectory()) return undefined;
          if (isOpaque(p)) hidden = true;
        }
        if (hidden) return undefined;
      }
      return undefined;
    },
  };
}

function isOpaque(dir: string): boolean {
  try {
    return getxattr(dir, 'trusted.overlay.opaque')?.toString() === 'y';
  } catch {
    return false; // trusted.* unreadable without CAP_SYS_ADMIN: as if not opaque
  }
}

/** colon-separated records of /etc/passwd or /etc/group */
function records(text: string | undefined): string[][] {
  return (text ?? '')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

const isNumber = (s: string): boolean => /^[0-9]+$/.test(s);

export interface ResolvedUser {
  user: User;
  /** the user's home from /etc/passwd, for HOME */
  home?: string;
}

/**
 * --user as docker takes it: uid, uid:gid, name, name:group (and mixes).
 * `rootfs` is the container's root directory, when we can read it; names
 * need it. A uid not in /etc/passwd gets gid 0, as docker gives it.
 */
export function resolveUser(spec: string, root: string | RootFiles | undefined): ResolvedUser {
  const [u = '', g, ...rest] = spec.split(':');
  if (u === '' || g === '' || rest.length) throw new Error(`--user ${JSON.stringify(spec)}: expected USER[:GROUP] (names or numbers)`);
  const files: RootFiles | undefined = typeof root === 'string' ? { describe: (p) => join(root, p), read: (p) => rootfsFile(root, p) } : root;
  const passwd = files ? records(files.read('etc/passwd')) : [];
  const groups = files ? records(files.read('etc/group')) : [];
  const where = files ? `in ${files.describe('etc/passwd')}` : '(the container has no root directory to look it up in: give a number)';
  const entry = passwd.find((r) => (isNumber(u) ? r[2] === u : r[0] === u));
  if (!entry && !isNumber(u)) throw new Error(`--user ${JSON.stringify(spec)}: no user ${JSON.stringify(u)} ${where}`);
  const uid = Number(entry ? entry[2] : u);
  let gid = entry ? Number(entry[3]) : 0;
  if (g !== undefined) {
    if (isNumber(g)) gid = Number(g);
    else {
      const grp = groups.find((r) => r[0] === g);
      if (!grp) throw new Error(`--user ${JSON.stringify(spec)}: no group ${JSON.stringify(g)} ${files ? `in ${files.describe('etc/group')}` : where}`);
      gid = Number(grp[2]);
    }
  }
  const name = entry?.[0];
  const additionalGids =
    name !== undefined && g === undefined
      ? groups.filter((r) => (r[3] ?? '').split(',').includes(name) && Number(r[2]) !== gid).map((r) => Number(r[2]))
      : [];
  const user: User = { uid, gid, ...(additionalGids.length ? { additionalGids } : {}) };
  return { user, ...(entry?.[5] ? { home: entry[5] } : {}) };
}
