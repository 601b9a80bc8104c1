// runc (urfave/cli) accepts Go-style long flags with one dash: `-root /x`,
// `-log-format=json`. Rewrite those to `--root` before commander sees them.

/**
 * Rewrites `-name` and `-name=value` to `--name...` when `name` is one of
 * `longFlags`. Stops at `--` and at `stopAfter` positionals (container
 * arguments after the id are left alone).
 */
export function goStyleLongFlags(argv: readonly string[], longFlags: ReadonlySet<string>, stopAt?: (positionals: string[]) => boolean): string[] {
  const out: string[] = [];
  const positionals: string[] = [];
  let copying = false;
  for (const a of argv) {
    if (copying) {
      out.push(a);
      continue;
    }
    if (a === '--') {
      copying = true;
      out.push(a);
      continue;
    }
    if (/^-[a-zA-Z][\w-]+(=.*)?$/.test(a)) {
      const name = a.slice(1).split('=')[0]!;
      if (longFlags.has(name)) {
        out.push(`-${a}`);
        continue;
      }
    }
    if (!a.startsWith('-')) {
      positionals.push(a);
      if (stopAt?.(positionals)) copying = true;
    }
    out.push(a);
  }
  return out;
}
