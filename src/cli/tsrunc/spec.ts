import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultSpec, rootlessSpec } from '../../oci/default-spec.js';
import { cgroupLayout } from '../../runtime/cgroups/mode.js';
import { readMountInfo } from '../../linux/mountinfo.js';
import type { Globals } from './main.js';

export default function spec(_g: Globals, o: { bundle: string; rootless?: boolean }): void {
  const path = join(o.bundle, 'config.json');
  if (existsSync(path)) throw new Error(`spec: ${path} exists; remove it first`);
  const cgroupNamespace = cgroupLayout(readMountInfo()).mode === 'unified';
  const s = o.rootless ? rootlessSpec(process.geteuid?.() ?? 0, process.getegid?.() ?? 0, { cgroupNamespace }) : defaultSpec({ cgroupNamespace });
  writeFileSync(path, `${JSON.stringify(s, null, '\t')}\n`, { flag: 'wx' });
}
