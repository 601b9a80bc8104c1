// Hybrid hosts (v1 controllers plus a cgroup2 mount, as on this project's VMs):
// the container's own cgroup v2 directory carries placement, the device
// filter and freezing, while the controllers that are bound to v1 hierarchies
// (pids, memory, cpu, ...) can only limit it there. runc 1.1 puts every
// container into a directory of each v1 hierarchy and writes its limits
// there; clients built for such hosts (podman with its default pids limit)
// count on it. This is that part: where the directories go (runc's
// cgroupfs rule for v1), creating them, the v1 form of each limit, joining a
// process and removing them again. Nothing here runs on a pure v2 host.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import type { MountInfo } from '../../linux/mountinfo.js';
import { fromNodeError } from '../../linux/syscall-error.js';
import { ConfigError } from '../../oci/validate.js';
import { RuntimeError } from '../errors.js';
import { readOptional, writeRaw } from './files.js';
import type { ResourcePlan } from './resources.js';
import { removeCgroup } from './placement.js';

/** A mounted v1 hierarchy: its controllers ("name=systemd" for a named one). */
export interface V1Hierarchy {
  mountPoint: string;
  /** the cgroup path that the mount point shows (mountinfo's root) */
  root: string;
  controllers: string[];
}

/** A container's directory in one v1 hierarchy (kept in state.json). */
export interface V1Cgroup {
  dir: string;
  controllers: string[];
  /** the highest directory create made here (removed on delete); absent if it existed */
  top?: string;
}

/** Mount options of a cgroup v1 mount that are not controllers. */
const NOT_CONTROLLERS = new Set(['rw', 'ro', 'xattr', 'noprefix', 'clone_children', 'cpuset_v2_mode', 'all', 'none', 'favordynmods']);

/** The v1 hierarchies, one mount each (the first of a hierarchy mounted twice). */
export function v1Hierarchies(mounts: MountInfo[]): V1Hierarchy[] {
  const out: V1Hierarchy[] = [];
  for (const m of mounts) {
    if (m.fsType !== 'cgroup') continue;
    const controllers = m.superOptions.split(',').filter((o) => o && !NOT_CONTROLLERS.has(o) && !o.startsWith('release_agent='));
    if (controllers.length === 0) continue;
    const key = [...controllers].sort().join(',');
    if (out.some((h) => [...h.controllers].sort().join(',') === key)) continue;
    out.push({ mountPoint: m.mountPoint, root: m.root, controllers });
  }
  return out;
}

/** This process's path in each v1 hierarchy, by controller (/proc/self/cgroup). */
export function ownV1Cgroups(text = readFileSync('/proc/self/cgroup', 'utf8')): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]+):(.*)$/.exec(line);
    if (!m) continue;
    for (const c of m[1]!.split(',')) out.set(c, m[2]!);
  }
  return out;
}

/**
 * runc's v1 rule (fs/paths.go): an absolute cgroupsPath hangs off the root
 * of each hierarchy, a relative one (and the default, the id) off this
 * process's own cgroup there. Cleaned as if rooted, like the v2 path.
 */
export function v1Dirs(hierarchies: V1Hierarchy[], cgroupsPath: string | undefined, id: string, own: Map<string, string>): V1Cgroup[] {
  const raw = cgroupsPath || id;
  const inner = posix.normalize(`/${raw}`);
  return hierarchies.map((h) => {
    let base = h.mountPoint;
    if (!raw.startsWith('/')) {
      const mine = own.get(h.controllers[0]!) ?? '/';
      // The mount shows the hierarchy from h.root down: our path relative to that.
      const rel = relative(h.root, mine);
      if (rel && !rel.startsWith('..')) base = join(h.mountPoint, rel);
    }
    return { dir: join(base, inner), controllers: h.controllers };
  });
}

/** One write of a v1 limit. */
export interface V1Write {
  controller: string;
  file: string;
  value: string;
  /** JSON path of the setting, for errors */
  path: string;
  /** a missing file is fine (no swap accounting, no rsvd hugetlb files) */
  missingOk?: boolean;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined);
const list = (v: unknown): Json[] => (Array.isArray(v) ? (v as unknown[]).map(obj).filter((x): x is Json => x !== undefined) : []);
/** A number of the (already validated) resources; 0 when absent. */
const num = (o: Json | undefined, k: string): bigint => (typeof o?.[k] === 'number' && Number.isInteger(o[k]) ? BigInt(o[k] as number) : 0n);
const str = (o: Json | undefined, k: string): string => (typeof o?.[k] === 'string' ? (o[k] as string) : '');

/**
 * linux.resources in v1 files, as runc's fs driver writes them (zero means
 * unset; -1 means no limit, which v1 files take as it is). `dirOf` gives the
 * directory of a controller, to read what the order of writes depends on.
 * Validation is planResources' job, done before this runs.
 */
export function planV1Writes(resources: unknown, base = 'linux.resources', dirOf?: (controller: string) => string | undefined): V1Write[] {
  const r = obj(resources);
  if (!r) return [];
  const w: V1Write[] = [];
  const at = (...keys: (string | number)[]) => keys.reduce<string>((p, k) => (typeof k === 'number' ? `${p}[${k}]` : p ? `${p}.${k}` : k), base);

  const pids = obj(r['pids']);
  if (pids && pids['limit'] !== undefined && pids['limit'] !== null) {
    const limit = num(pids, 'limit');
    // runc's v1 pids: 0 is unset, negative is "max"
    if (limit !== 0n) w.push({ controller: 'pids', file: 'pids.max', value: limit > 0n ? String(limit) : 'max', path: at('pids', 'limit') });
  }

  const mem = obj(r['memory']);
  if (mem) {
    const limit = num(mem, 'limit');
    let swap = num(mem, 'swap');
    const memDir = dirOf?.('memory');
    const hasSwap = memDir === undefined || existsSync(join(memDir, 'memory.memsw.limit_in_bytes'));
    // runc: "memory -1" alone means no swap limit either (where the kernel accounts swap)
    if (limit === -1n && swap === 0n && hasSwap) swap = -1n;
    const setMem = () => limit !== 0n && w.push({ controller: 'memory', file: 'memory.limit_in_bytes', value: String(limit), path: at('memory', 'limit') });
    const setSwap = () =>
      swap !== 0n && w.push({ controller: 'memory', file: 'memory.memsw.limit_in_bytes', value: String(swap), path: at('memory', 'swap'), missingOk: swap === -1n });
    // The kernel keeps memory <= memory+swap at every step: raise first what must be raised.
    const current = memDir ? readOptional(memDir, 'memory.limit_in_bytes')?.trim() : undefined;
    const curLimit = current && /^\d+$/.test(current) ? BigInt(current) : 0n;
    if (limit !== 0n && swap !== 0n && (swap === -1n || curLimit < swap)) {
      setSwap();
      setMem();
    } else {
      setMem();
      setSwap();
    }
    const reservation = num(mem, 'reservation');
    if (reservation !== 0n) w.push({ controller: 'memory', file: 'memory.soft_limit_in_bytes', value: String(reservation), path: at('memory', 'reservation') });
    if (mem['disableOOMKiller'] === true) w.push({ controller: 'memory', file: 'memory.oom_control', value: '1', path: at('memory', 'disableOOMKiller') });
    const swappiness = mem['swappiness'];
    if (typeof swappiness === 'number' && swappiness !== -1) {
      if (swappiness < 0 || swappiness > 100) throw new ConfigError(at('memory', 'swappiness'), `must be between 0 and 100, got ${swappiness}`);
      w.push({ controller: 'memory', file: 'memory.swappiness', value: String(swappiness), path: at('memory', 'swappiness') });
    }
  }

  const cpu = obj(r['cpu']);
  if (cpu) {
    const shares = num(cpu, 'shares');
    if (shares !== 0n) w.push({ controller: 'cpu', file: 'cpu.shares', value: String(shares), path: at('cpu', 'shares') });
    // the quota after the period: a period shorter than the current one may need the new quota first
    const period = num(cpu, 'period');
    const quota = num(cpu, 'quota');
    if (period !== 0n) w.push({ controller: 'cpu', file: 'cpu.cfs_period_us', value: String(period), path: at('cpu', 'period') });
    if (quota !== 0n) w.push({ controller: 'cpu', file: 'cpu.cfs_quota_us', value: String(quota), path: at('cpu', 'quota') });
    if (typeof cpu['burst'] === 'number') w.push({ controller: 'cpu', file: 'cpu.cfs_burst_us', value: String(num(cpu, 'burst')), path: at('cpu', 'burst') });
    if (typeof cpu['idle'] === 'number') w.push({ controller: 'cpu', file: 'cpu.idle', value: String(num(cpu, 'idle')), path: at('cpu', 'idle') });
    if (str(cpu, 'cpus')) w.push({ controller: 'cpuset', file: 'cpuset.cpus', value: str(cpu, 'cpus'), path: at('cpu', 'cpus') });
    if (str(cpu, 'mems')) w.push({ controller: 'cpuset', file: 'cpuset.mems', value: str(cpu, 'mems'), path: at('cpu', 'mems') });
  }

  const bio = obj(r['blockIO']);
  if (bio) {
    // BFQ's files where the kernel has them, else CFQ's (runc's detectWeightFilenames)
    const bioDir = dirOf?.('blkio');
    const bfq = bioDir !== undefined && existsSync(join(bioDir, 'blkio.bfq.weight'));
    const weightFile = bfq ? 'blkio.bfq.weight' : 'blkio.weight';
    const weight = num(bio, 'weight');
    if (weight !== 0n) w.push({ controller: 'blkio', file: weightFile, value: String(weight), path: at('blockIO', 'weight') });
    const leaf = num(bio, 'leafWeight');
    if (leaf !== 0n) w.push({ controller: 'blkio', file: 'blkio.leaf_weight', value: String(leaf), path: at('blockIO', 'leafWeight') });
    list(bio['weightDevice']).forEach((d, i) => {
      const mm = `${num(d, 'major')}:${num(d, 'minor')}`;
      if (num(d, 'weight') !== 0n) w.push({ controller: 'blkio', file: `${weightFile}_device`, value: `${mm} ${num(d, 'weight')}`, path: at('blockIO', 'weightDevice', i) });
      if (num(d, 'leafWeight') !== 0n) {
        w.push({ controller: 'blkio', file: 'blkio.leaf_weight_device', value: `${mm} ${num(d, 'leafWeight')}`, path: at('blockIO', 'weightDevice', i) });
      }
    });
    for (const [key, file] of [
      ['throttleReadBpsDevice', 'blkio.throttle.read_bps_device'],
      ['throttleWriteBpsDevice', 'blkio.throttle.write_bps_device'],
      ['throttleReadIOPSDevice', 'blkio.throttle.read_iops_device'],
      ['throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device'],
    ] as const) {
      list(bio[key]).forEach((d, i) => w.push({ controller: 'blkio', file, value: `${num(d, 'major')}:${num(d, 'minor')} ${num(d, 'rate')}`, path: at('blockIO', key, i) }));
    }
  }

  list(r['hugepageLimits']).forEach((h, i) => {
    const size = str(h, 'pageSize');
    w.push({ controller: 'hugetlb', file: `hugetlb.${size}.limit_in_bytes`, value: String(num(h, 'limit')), path: at('hugepageLimits', i) });
    w.push({ controller: 'hugetlb', file: `hugetlb.${size}.rsvd.limit_in_bytes`, value: String(num(h, 'limit')), path: at('hugepageLimits', i), missingOk: true });
  });

  for (const [dev, lim] of Object.entries(obj(r['rdma']) ?? {})) {
    const l = obj(lim);
    let value = dev;
    if (typeof l?.['hcaHandles'] === 'number') value += ` hca_handle=${num(l, 'hcaHandles')}`;
    if (typeof l?.['hcaObjects'] === 'number') value += ` hca_object=${num(l, 'hcaObjects')}`;
    w.push({ controller: 'rdma', file: 'rdma.max', value, path: at('rdma', dev) });
  }

  const net = obj(r['network']);
  if (net) {
    const classID = num(net, 'classID');
    if (classID !== 0n) w.push({ controller: 'net_cls', file: 'net_cls.classid', value: String(classID), path: at('network', 'classID') });
    list(net['priorities']).forEach((p, i) =>
      w.push({ controller: 'net_prio', file: 'net_prio.ifpriomap', value: `${str(p, 'name')} ${num(p, 'priority')}`, path: at('network', 'priorities', i) }),
    );
  }
  return w;
}

/** The v1 controller that a cgroup v2 controller is called there. */
export const v1NameOf = (v2controller: string): string => (v2controller === 'io' ? 'blkio' : v2controller);

/** The directory of CONTROLLER among a container's v1 cgroups. */
export function v1DirOf(cgroups: V1Cgroup[], controller: string): string | undefined {
  return cgroups.find((c) => c.controllers.includes(controller))?.dir;
}

/**
 * Writes the limits of RESOURCES that belong to the controllers of CGROUPS
 * (`base`/`file` name the settings in errors); returns how many it wrote.
 */
export function applyV1Resources(cgroups: V1Cgroup[], resources: unknown, base = 'linux.resources', file = 'config.json'): number {
  const writes = planV1Writes(resources, base, (c) => v1DirOf(cgroups, c));
  let n = 0;
  for (const w of writes) {
    const dir = v1DirOf(cgroups, w.controller);
    if (!dir) continue; // a controller cgroup v2 has (planned there) or that no hierarchy has
    n++;
    try {
      writeRaw(dir, w.file, w.value);
    } catch (e) {
      if (w.missingOk && (e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      const msg = (fromNodeError(e) as Error).message;
      const why = /: (E[A-Z0-9]+\b.*)$/.exec(msg)?.[1] ?? msg;
      throw new ConfigError(w.path, `write ${JSON.stringify(w.value)} to ${join(dir, w.file)} (cgroup v1): ${why}`, file);
    }
  }
  return n;
}

/** The plan without the writes whose controller a v1 hierarchy holds (`unified` keys stay: they are v2 files). */
export function withoutV1(plan: ResourcePlan, v1Controllers: Iterable<string>): ResourcePlan {
  const held = new Set(v1Controllers);
  if (held.size === 0) return plan;
  const inV1 = (c: string | undefined) => c !== undefined && held.has(v1NameOf(c));
  const out: ResourcePlan = { ...plan, writes: plan.writes.filter((w) => w.unified || !inV1(w.controller)) };
  if (inV1('memory')) delete out.check;
  return out;
}

/**
 * A new cpuset cgroup has no cpus and no memory nodes, and takes no process
 * until it has both: copy them down from the parent into each directory
 * made (runc's cpusetEnsureParent).
 */
function initCpuset(dir: string, top: string): void {
  const chain: string[] = [];
  for (let d = dir; ; d = posix.dirname(d)) {
    chain.unshift(d);
    if (d === top || d === '/') break;
  }
  for (const d of chain) {
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      if ((readOptional(d, f) ?? '').trim() !== '') continue;
      const parent = (readOptional(posix.dirname(d), f) ?? '').trim();
      writeRaw(d, f, parent);
    }
  }
}

/**
 * Creates the directories and writes the limits that belong to v1
 * controllers. On failure removes what it made, and throws.
 */
export function setupV1Cgroups(planned: V1Cgroup[], resources: unknown, log?: (msg: string) => void): V1Cgroup[] {
  const made: V1Cgroup[] = [];
  try {
    for (const c of planned) {
      let top: string | undefined;
      try {
        top = mkdirSync(c.dir, { recursive: true, mode: 0o755 });
      } catch (e) {
        throw new RuntimeError(`create cgroup ${c.dir}`, e);
      }
      const cg: V1Cgroup = top ? { ...c, top } : { ...c };
      made.push(cg);
      if (c.controllers.includes('cpuset')) initCpuset(c.dir, top ?? c.dir);
    }
    const n = applyV1Resources(made, resources);
    log?.(`cgroup v1: ${made.map((c) => c.dir).join(', ')} (${n} limit(s))`);
    return made;
  } catch (e) {
    removeV1Cgroups(made, log);
    throw e;
  }
}

/** Moves PID into each of the container's v1 cgroups. */
export function joinV1Cgroups(cgroups: V1Cgroup[], pid: number): void {
  for (const c of cgroups) {
    try {
      writeRaw(c.dir, 'cgroup.procs', String(pid));
    } catch (e) {
      throw new RuntimeError(`join the cgroup ${c.dir} (cgroup v1) with pid ${pid}`, e);
    }
  }
}

/** Removes the directories create made (best effort: one still in use stays, with a warning). */
export function removeV1Cgroups(cgroups: V1Cgroup[], log?: (msg: string) => void): void {
  for (const c of cgroups) {
    if (!c.top) continue;
    try {
      removeCgroup(c.dir, c.top);
    } catch (e) {
      log?.((e as Error).message);
    }
  }
}
