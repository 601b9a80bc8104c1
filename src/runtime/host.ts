// Facts about the host that planners need, read once per command.
import { existsSync, readFileSync } from 'node:fs';
import { lastCap } from '../linux/capabilities.js';
import { readMountInfo } from '../linux/mountinfo.js';
import { cgroupLayout } from './cgroups/mode.js';
import type { HostFacts, LsmFacts } from './plan/context.js';

export function hostFacts(): HostFacts {
  const mounts = readMountInfo();
  return {
    capLastCap: lastCap(),
    mounts,
    procKcore: existsSync('/proc/kcore'),
    cgroupMode: cgroupLayout(mounts).mode,
    euid: process.geteuid?.() ?? 0,
    lsm: lsmFacts(),
  };
}

/** AppArmor and SELinux as runc detects them. */
export function lsmFacts(): LsmFacts {
  let apparmor = false;
  try {
    apparmor = existsSync('/sys/kernel/security/apparmor') && readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').startsWith('Y');
  } catch {
    /* not built in */
  }
  return { apparmor, selinux: existsSync('/sys/fs/selinux/enforce') };
}
