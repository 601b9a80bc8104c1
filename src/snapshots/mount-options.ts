// Reading the options of containerd Mount messages (no system calls: the
// client, tsrctl, uses these too).

/** The value of option key= of a mount, if it has one. */
export function mountOption(m: { options?: readonly string[] }, key: string): string | undefined {
  const o = (m.options ?? []).find((x) => x.startsWith(`${key}=`));
  return o?.slice(key.length + 1);
}

/** An overlay mount's layer directories, topmost first: its upperdir, then its lowerdirs. */
export function overlayLayerDirs(m: { options?: readonly string[] }): string[] {
  const upper = mountOption(m, 'upperdir');
  const lower = mountOption(m, 'lowerdir');
  return [...(upper ? [upper] : []), ...(lower ? lower.split(':').filter(Boolean) : [])];
}
