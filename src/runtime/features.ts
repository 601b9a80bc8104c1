// The runtime-spec "features" document (`tsrunc features`): what this tsrunc
// implements, and whether each part is usable on this host.
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { CAPABILITIES, lastCap } from '../linux/capabilities.js';
import { readMountInfo } from '../linux/mountinfo.js';
import { FLAGS as MOUNT_FLAGS_TABLE, PROPAGATION, REC_ATTRS } from './plan/mount-options.js';
import { NAMESPACE_TYPES } from '../oci/validate.js';
import { OCI_SPEC_VERSION } from '../oci/spec.js';
import { NS_PROC_NAME } from './plan/namespaces.js';
import { cgroupLayout } from './cgroups/mode.js';
import { lsmFacts } from './host.js';
import { VERSION, COMMIT } from '../version.js';

export interface Features {
  ociVersionMin: string;
  ociVersionMax: string;
  hooks: string[];
  mountOptions: string[];
  linux: Record<string, unknown>;
  annotations: Record<string, string>;
}

function kernelAtLeast(major: number, minor: number): boolean {
  const [ma = 0, mi = 0] = release().split('.').map((n) => parseInt(n, 10));
  return ma > major || (ma === major && mi >= minor);
}

async function seccompFeatures(): Promise<{ section: Record<string, unknown>; version?: string }> {
  const { ACTIONS, OPERATORS, ARCHITECTURES, FLAGS } = await import('./seccomp/profile.js');
  const known = Object.keys(FLAGS);
  try {
    const lib = await import('./seccomp/libseccomp.js');
    const version = lib.libseccompVersion();
    // libseccomp refuses a filter attribute the kernel cannot back.
    const probe = new lib.Filter(ACTIONS.SCMP_ACT_ALLOW);
    const supported: string[] = ['SECCOMP_FILTER_FLAG_TSYNC'];
    try {
      if (probe.setAttr(lib.ATTR.CTL_LOG, 1) === 0) supported.push('SECCOMP_FILTER_FLAG_LOG');
      if (probe.setAttr(lib.ATTR.CTL_SSB, 1) === 0) supported.push('SECCOMP_FILTER_FLAG_SPEC_ALLOW');
    } finally {
      probe.release();
    }
    if (kernelAtLeast(5, 19)) supported.push('SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV');
    const archs = Object.keys(ARCHITECTURES).filter((a) => lib.archToken(ARCHITECTURES[a]!) !== 0);
    return {
      section: { enabled: true, actions: Object.keys(ACTIONS).sort(), operators: Object.keys(OPERATORS).sort(), archs: archs.sort(), knownFlags: known, supportedFlags: supported },
      version,
    };
  } catch {
    return { section: { enabled: false, actions: Object.keys(ACTIONS).sort(), operators: Object.keys(OPERATORS).sort(), archs: [], knownFlags: known, supportedFlags: [] } };
  }
}

export async function features(): Promise<Features> {
  const layout = cgroupLayout(readMountInfo());
  const controllers = layout.unifiedMount && existsSync(`${layout.unifiedMount}/cgroup.controllers`) ? readFileSync(`${layout.unifiedMount}/cgroup.controllers`, 'utf8').trim().split(/\s+/).filter(Boolean) : [];
  const last = lastCap();
  const caps = Object.entries(CAPABILITIES)
    .filter(([, n]) => n <= last)
    .map(([name]) => name);
  const lsm = lsmFacts();
  const seccomp = await seccompFeatures();
  const annotations: Record<string, string> = {
    'io.github.tsrunc.version': VERSION,
    'io.github.tsrunc.commit': COMMIT,
    'io.github.tsrunc.cgroup.mode': layout.mode,
    'io.github.tsrunc.cgroup.controllers': controllers.join(','),
  };
  if (seccomp.version) annotations['io.github.seccomp.libseccomp.version'] = seccomp.version;
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: OCI_SPEC_VERSION,
    hooks: ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'],
    // "remount" is refused in a container mount.
    mountOptions: [...Object.keys(MOUNT_FLAGS_TABLE), ...Object.keys(PROPAGATION), ...Object.keys(REC_ATTRS)].filter((o) => o !== 'remount').sort(),
    linux: {
      namespaces: NAMESPACE_TYPES.filter((t) => existsSync(`/proc/self/ns/${NS_PROC_NAME[t]}`)).sort(),
      capabilities: caps,
      cgroup: { v1: false, v2: layout.unifiedMount !== undefined, systemd: false, systemdUser: false, rdma: controllers.includes('rdma') },
      seccomp: seccomp.section,
      apparmor: { enabled: lsm.apparmor },
      selinux: { enabled: lsm.selinux },
      intelRdt: { enabled: false },
      mountExtensions: { idmap: { enabled: false } },
    },
    annotations,
  };
}
