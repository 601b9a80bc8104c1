// OCI mount options -> mount(2) flags, propagation, mount_setattr(2)
// attributes and filesystem data, with runc's mapping.
import * as k from '../../linux/constants.js';

export interface MountOptions {
  /** MS_* flags to set */
  flags: number;
  /** MS_* flags the options clear explicitly ("rw", "suid", ...) */
  cleared: number;
  /** propagation changes, applied one by one after the mount */
  propagation: number[];
  /** recursive attributes ("rro", "rnosuid", ...) for mount_setattr */
  recSet: number;
  recClear: number;
  /** filesystem-specific options, comma-joined */
  data: string;
  tmpcopyup: boolean;
  idmap: 'none' | 'idmap' | 'ridmap';
}

export const FLAGS: Record<string, [clear: boolean, flag: number]> = {
  async: [true, k.MS_SYNCHRONOUS],
  atime: [true, k.MS_NOATIME],
  bind: [false, k.MS_BIND],
  defaults: [false, 0],
  dev: [true, k.MS_NODEV],
  diratime: [true, k.MS_NODIRATIME],
  dirsync: [false, k.MS_DIRSYNC],
  exec: [true, k.MS_NOEXEC],
  iversion: [false, k.MS_I_VERSION],
  lazytime: [false, k.MS_LAZYTIME],
  loud: [true, k.MS_SILENT],
  mand: [false, k.MS_MANDLOCK],
  noatime: [false, k.MS_NOATIME],
  nodev: [false, k.MS_NODEV],
  nodiratime: [false, k.MS_NODIRATIME],
  noexec: [false, k.MS_NOEXEC],
  noiversion: [true, k.MS_I_VERSION],
  nolazytime: [true, k.MS_LAZYTIME],
  nomand: [true, k.MS_MANDLOCK],
  norelatime: [true, k.MS_RELATIME],
  nostrictatime: [true, k.MS_STRICTATIME],
  nosuid: [false, k.MS_NOSUID],
  nosymfollow: [false, k.MS_NOSYMFOLLOW],
  rbind: [false, k.MS_BIND | k.MS_REC],
  relatime: [false, k.MS_RELATIME],
  remount: [false, k.MS_REMOUNT],
  ro: [false, k.MS_RDONLY],
  rw: [true, k.MS_RDONLY],
  silent: [false, k.MS_SILENT],
  strictatime: [false, k.MS_STRICTATIME],
  suid: [true, k.MS_NOSUID],
  sync: [false, k.MS_SYNCHRONOUS],
  symfollow: [true, k.MS_NOSYMFOLLOW],
};

export const PROPAGATION: Record<string, number> = {
  rprivate: k.MS_PRIVATE | k.MS_REC,
  private: k.MS_PRIVATE,
  rslave: k.MS_SLAVE | k.MS_REC,
  slave: k.MS_SLAVE,
  rshared: k.MS_SHARED | k.MS_REC,
  shared: k.MS_SHARED,
  runbindable: k.MS_UNBINDABLE | k.MS_REC,
  unbindable: k.MS_UNBINDABLE,
};

export const REC_ATTRS: Record<string, [clear: boolean, attr: number]> = {
  rro: [false, k.MOUNT_ATTR_RDONLY],
  rrw: [true, k.MOUNT_ATTR_RDONLY],
  rnosuid: [false, k.MOUNT_ATTR_NOSUID],
  rsuid: [true, k.MOUNT_ATTR_NOSUID],
  rnodev: [false, k.MOUNT_ATTR_NODEV],
  rdev: [true, k.MOUNT_ATTR_NODEV],
  rnoexec: [false, k.MOUNT_ATTR_NOEXEC],
  rexec: [true, k.MOUNT_ATTR_NOEXEC],
  rnodiratime: [false, k.MOUNT_ATTR_NODIRATIME],
  rdiratime: [true, k.MOUNT_ATTR_NODIRATIME],
  rrelatime: [false, k.MOUNT_ATTR_RELATIME],
  rnorelatime: [true, k.MOUNT_ATTR_RELATIME],
  rnoatime: [false, k.MOUNT_ATTR_NOATIME],
  ratime: [true, k.MOUNT_ATTR_NOATIME],
  rstrictatime: [false, k.MOUNT_ATTR_STRICTATIME],
  rnostrictatime: [true, k.MOUNT_ATTR_STRICTATIME],
  rnosymfollow: [false, k.MOUNT_ATTR_NOSYMFOLLOW],
  rsymfollow: [true, k.MOUNT_ATTR_NOSYMFOLLOW],
};

export function parseMountOptions(options: readonly string[] = []): MountOptions {
  const out: MountOptions = { flags: 0, cleared: 0, propagation: [], recSet: 0, recClear: 0, data: '', tmpcopyup: false, idmap: 'none' };
  const data: string[] = [];
  for (const o of options) {
    const f = FLAGS[o];
    if (f) {
      const [clear, flag] = f;
      if (clear) {
        out.flags &= ~flag;
        out.cleared |= flag;
      } else {
        out.flags |= flag;
        out.cleared &= ~flag;
      }
      continue;
    }
    const p = PROPAGATION[o];
    if (p !== undefined) {
      out.propagation.push(p);
      continue;
    }
    const r = REC_ATTRS[o];
    if (r) {
      const [clear, attr] = r;
      if (clear) {
        out.recClear |= attr;
      } else {
        out.recSet |= attr;
        // The atime attributes are an enum: setting one replaces the others.
        if ((attr & k.MOUNT_ATTR__ATIME) === attr) out.recClear |= k.MOUNT_ATTR__ATIME;
      }
      continue;
    }
    if (o === 'tmpcopyup') {
      out.tmpcopyup = true;
      continue;
    }
    if (o === 'idmap' || o === 'ridmap') {
      out.idmap = o;
      continue;
    }
    data.push(o);
  }
  out.data = data.join(',');
  return out;
}

/** The names of the MS_* flags set in `flags`, for descriptions. */
export function describeFlags(flags: number): string {
  const names: string[] = [];
  for (const [name, [clear, flag]] of Object.entries(FLAGS)) {
    if (!clear && flag && name !== 'rbind' && name !== 'defaults' && (flags & flag) === flag) names.push(name);
  }
  return names.join(',');
}
