// Facts about the host that planners need, read once per command.
import { existsSync } from 'node:fs';
import { lastCap } from '../linux/capabilities.js';
import { readMountInfo } from '../linux/mountinfo.js';
import { cgroupLayout } from './cgroups/mode.js';
import type { HostFacts } from './plan/context.js';

export function hostFacts(): HostFacts {
  const mounts = readMountInfo();
  return {
    capLastCap: lastCap(),
    mounts,
    procKcore: existsSync('/proc/kcore'),
    cgroupMode: cgroupLayout(mounts).mode,
    euid: process.geteuid?.() ?? 0,
  };
}
