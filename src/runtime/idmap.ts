// Parent-side writes into a child's user and time namespaces, done while the
// child waits on its sync socket.
import { writeFileSync } from 'node:fs';
import type { IdMapping, Spec } from '../oci/spec.js';
import { RuntimeError } from './errors.js';

const mapText = (maps: IdMapping[]) => maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');

function write(path: string, text: string): void {
  try {
    writeFileSync(path, text);
  } catch (e) {
    throw new RuntimeError(`write ${path} (${JSON.stringify(text.trim())})`, e);
  }
}

/** uid_map and gid_map; a rootless runtime must deny setgroups first. */
export function writeIdMaps(pid: number, spec: Spec, euid: number): void {
  if (euid !== 0) write(`/proc/${pid}/setgroups`, 'deny');
  write(`/proc/${pid}/uid_map`, mapText(spec.linux?.uidMappings ?? []));
  write(`/proc/${pid}/gid_map`, mapText(spec.linux?.gidMappings ?? []));
}

/** linux.timeOffsets for the time namespace the child's next fork enters. */
export function writeTimeOffsets(pid: number, spec: Spec): void {
  const lines = Object.entries(spec.linux?.timeOffsets ?? {}).map(([clock, o]) => `${clock} ${o.secs ?? 0} ${o.nanosecs ?? 0}\n`);
  write(`/proc/${pid}/timens_offsets`, lines.join(''));
}
