// How layer member names map into a root, and what OCI whiteouts mean
// (image-spec layer.md): `.wh.NAME` deletes NAME from the layers below,
// `.wh..wh..opq` in a directory hides everything below it. Pure functions:
// no file system here.

export const WHITEOUT_PREFIX = '.wh.';
export const WHITEOUT_META_PREFIX = '.wh..wh.';
export const WHITEOUT_OPAQUE = '.wh..wh..opq';

/**
 * A member name cleaned as containerd cleans it (filepath.Join("/", name)):
 * `..` cannot climb above the root, leading slashes are dropped.
 * parent is "" for the root; undefined when the name is the root itself.
 */
export function splitMemberPath(name: string): { parent: string; base: string; path: string } | undefined {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      out.pop();
      continue;
    }
    out.push(part);
  }
  if (out.length === 0) return undefined;
  const base = out.pop()!;
  const parent = out.join('/');
  return { parent, base, path: parent ? `${parent}/${base}` : base };
}

export type Whiteout =
  /** `.wh..wh..opq`: the directory hides the layers below */
  | { kind: 'opaque' }
  /** `.wh.NAME`: NAME is deleted */
  | { kind: 'whiteout'; name: string }
  /** other `.wh..wh.*` names (aufs metadata): skipped */
  | { kind: 'meta' };

/** What a base name means as a whiteout; undefined for an ordinary name. Throws for a whiteout of "", "." or "..". */
export function whiteoutOf(base: string): Whiteout | undefined {
  if (!base.startsWith(WHITEOUT_PREFIX)) return undefined;
  if (base === WHITEOUT_OPAQUE) return { kind: 'opaque' };
  if (base.startsWith(WHITEOUT_META_PREFIX)) return { kind: 'meta' };
  const name = base.slice(WHITEOUT_PREFIX.length);
  if (name === '' || name === '.' || name === '..') throw new Error(`invalid whiteout name ${JSON.stringify(base)}`);
  return { kind: 'whiteout', name };
}

/** The tar member name of a whiteout for path (as a layer writer emits it). */
export function whiteoutMember(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? `${WHITEOUT_PREFIX}${path}` : `${path.slice(0, i + 1)}${WHITEOUT_PREFIX}${path.slice(i + 1)}`;
}

/** The opaque marker's member name inside directory dir ("" for the root). */
export function opaqueMember(dir: string): string {
  return dir ? `${dir}/${WHITEOUT_OPAQUE}` : WHITEOUT_OPAQUE;
}
