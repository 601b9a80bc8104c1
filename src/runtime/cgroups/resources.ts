// linux.resources -> cgroup v2 file writes, with runc's conversions (fs2/*.go,
// cgroups/utils.go). Planning is pure (validation with JSON paths, no host
// access); applying checks the host (controllers, cpus, memory nodes) before
// it writes anything, so a refused config changes nothing.
import { join } from 'node:path';
import { closeSync, constants, existsSync, openSync, readdirSync } from 'node:fs';
import { RuntimeError } from '../errors.js';
import { setDeviceFilter } from './bpf.js';
import { ConfigError } from '../../oci/validate.js';
import { validAccess, effectiveDeviceRules, deviceFilterProgram, type DeviceRule, type DeviceType } from './devices.js';
import { controllersOf, readOptional, readUint, writeRaw } from './files.js';
import { fromNodeError } from '../../linux/syscall-error.js';

export interface CgroupWrite {
  file: string;
  value: string;
  /** the controller that provides the file; undefined for core cgroup.* files */
  controller: string | undefined;
  /** JSON path of the setting, for errors */
  path: string;
  /** the kernel's own no-limit value: skipped, not refused, where the controller is missing */
  isDefault?: boolean;
  /** a missing file is fine (no swap accounting, no rsvd hugetlb files) */
  missingOk?: boolean;
  /** io.bfq.weight, falling back to io.weight with this value */
  ioWeightFallback?: string;
  /** per-device BFQ weight: written only where BFQ supports it, as runc does */
  bfqDevice?: boolean;
  /** cpu.max.burst: on EINVAL retried after cpu.max (a smaller quota may be coming) */
  burst?: boolean;
  hugetlb?: boolean;
  /** a `unified` entry: written line by line, a missing file is an unknown key */
  unified?: boolean;
}

export interface ResourcePlan {
  writes: CgroupWrite[];
  /** the device rules, ours appended; undefined leaves the cgroup's filter alone (update) */
  devices: DeviceRule[] | undefined;
  /** their eBPF program, built while validating */
  deviceProgram?: Buffer;
  /** memory.checkBeforeUpdate: refuse limits at or below the current usage */
  check?: { limit: bigint; swap: bigint; path: string };
  cpus?: { list: string; path: string };
  mems?: { list: string; path: string };
}

export interface PlanOptions {
  /** the file named in errors ("config.json", or the update's source) */
  file?: string;
  /** the JSON path of the resources object ("linux.resources"; "" for update -r) */
  base?: string;
  /** linux.devices paths: runc's default device rules for those paths are left out */
  devicePaths?: string[];
  /** compute device rules (create); update leaves the device filter alone, as runc does */
  devices?: boolean;
}

type Json = unknown;
const isObject = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The v2 controllers a `unified` key may name (and "cgroup" for core files). */
export const KNOWN_CONTROLLERS = ['cgroup', 'cpu', 'cpuset', 'io', 'memory', 'pids', 'hugetlb', 'rdma', 'misc'];
/** Core files that would move, kill or re-shape processes: not settable through `unified`. */
const UNIFIED_FORBIDDEN = ['cgroup.procs', 'cgroup.threads', 'cgroup.kill', 'cgroup.subtree_control', 'cgroup.freeze', 'cgroup.type', 'cgroup.controllers', 'cgroup.events', 'cgroup.stat'];

class Reader {
  constructor(
    readonly file: string,
    readonly base: string,
  ) {}
  at(path: string, key: string | number): string {
    if (typeof key === 'number') return `${path}[${key}]`;
    if (!/^[A-Za-z_][\w]*$/.test(key)) return `${path}[${JSON.stringify(key)}]`;
    return path ? `${path}.${key}` : key;
  }
  fail(path: string, reason: string): never {
    throw new ConfigError(path, reason, this.file);
  }
  object(o: Record<string, Json>, key: string, path: string): Record<string, Json> | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (!isObject(v)) this.fail(this.at(path, key), 'must be an object');
    return v;
  }
  array(o: Record<string, Json>, key: string, path: string): Json[] {
    const v = o[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) this.fail(this.at(path, key), 'must be an array');
    return v;
  }
  /** an integer (as bigint: cgroup values go past 2^53) */
  int(o: Record<string, Json>, key: string, path: string, min?: bigint, why?: string): bigint | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(this.at(path, key), `must be an integer, got ${JSON.stringify(v)}`);
    const b = BigInt(v);
    if (min !== undefined && b < min) this.fail(this.at(path, key), why ?? `must be at least ${min}, got ${v}`);
    return b;
  }
  str(o: Record<string, Json>, key: string, path: string): string | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') this.fail(this.at(path, key), 'must be a string');
    return v;
  }
  bool(o: Record<string, Json>, key: string, path: string): boolean | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') this.fail(this.at(path, key), 'must be true or false');
    return v;
  }
}

/** runc's numToStr: 0 is "unset" (nothing written), -1 is "max". */
function numToStr(v: bigint): string {
  if (v === 0n) return '';
  if (v === -1n) return 'max';
  return String(v);
}

/** runc's ConvertCPUSharesToCgroupV2Value: a quadratic through (2,1), (1024,100), (262144,10000). */
export function cpuSharesToWeight(shares: bigint): bigint {
  if (shares === 0n) return 0n;
  if (shares <= 2n) return 1n;
  if (shares >= 262144n) return 10000n;
  const l = Math.log2(Number(shares));
  const exponent = (l * l + 125 * l) / 612.0 - 7.0 / 34.0;
  return BigInt(Math.ceil(10 ** exponent));
}

/** runc's ConvertBlkIOToIOWeightValue: [10, 1000] onto [1, 10000]. */
export function blkioWeightToIoWeight(w: bigint): bigint {
  if (w === 0n) return 0n;
  return 1n + ((w - 10n) * 9999n) / 990n;
}

/** runc's ConvertMemorySwapToCgroupV2Value: the spec's swap is memory+swap, v2's is swap alone. */
export function memorySwapToV2(swap: bigint, memory: bigint): bigint {
  if (memory === -1n && swap === 0n) return -1n;
  if (swap === -1n || swap === 0n) return swap;
  if (memory === -1n) return swap;
  if (memory === 0n) throw new Error('cannot set a swap limit without a memory limit');
  if (memory < 0n) throw new Error(`invalid memory value ${memory}`);
  if (swap < memory) throw new Error(`memory+swap limit (${swap}) must be at least the memory limit (${memory})`);
  return swap - memory;
}

/** "0-3,5" -> [0,1,2,3,5]; undefined when malformed. */
export function parseIdList(s: string): number[] | undefined {
  const out: number[] = [];
  for (const part of s.split(',')) {
    const m = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    if (!m) return undefined;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a || b - a > 65536) return undefined;
    for (let i = a; i <= b; i++) out.push(i);
  }
  return out;
}

/** [0,1,2,5] -> "0-2,5" */
export function formatIdList(ids: number[]): string {
  const s = [...new Set(ids)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    parts.push(i === j ? `${s[i]}` : `${s[i]}-${s[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

const DEVICE_TYPES: readonly DeviceType[] = ['a', 'b', 'c'];

/** Validates linux.resources and turns it into the writes runc's fs2 driver makes, in its order. */
export function planResources(json: Json, o: PlanOptions = {}): ResourcePlan {
  const rd: Reader = new Reader(o.file ?? 'config.json', o.base ?? 'linux.resources');
  const base = rd.base;
  const plan: ResourcePlan = { writes: [], devices: undefined };
  if (json === undefined || json === null) {
    if (o.devices) plan.devices = effectiveDeviceRules([], o.devicePaths ?? []);
    return plan;
  }
  if (!isObject(json)) rd.fail(base, 'must be an object');
  const r = json;
  const w = plan.writes;
  const add = (x: CgroupWrite) => w.push(x);

  // devices: validated here, applied as an eBPF program
  const rules: DeviceRule[] = [];
  rd.array(r, 'devices', base).forEach((d, i) => {
    const p = rd.at(rd.at(base, 'devices'), i);
    if (!isObject(d)) rd.fail(p, 'must be an object');
    const allow = rd.bool(d, 'allow', p);
    if (allow === undefined) rd.fail(rd.at(p, 'allow'), 'is required');
    const type = rd.str(d, 'type', p) ?? 'a';
    if (!DEVICE_TYPES.includes(type as DeviceType)) rd.fail(rd.at(p, 'type'), `unknown device type "${type}" (want a, b or c)`);
    const major = rd.int(d, 'major', p, -1n, 'must be a device number, or -1 (or absent) for any');
    const minor = rd.int(d, 'minor', p, -1n, 'must be a device number, or -1 (or absent) for any');
    for (const [k, v] of [['major', major], ['minor', minor]] as const) {
      if (v !== undefined && v > 0xffffffffn) rd.fail(rd.at(p, k), `${v} is not a device number`);
    }
    const access = rd.str(d, 'access', p) ?? 'rwm';
    if (!validAccess(access)) rd.fail(rd.at(p, 'access'), `must be a non-empty combination of r, w and m, got "${access}"`);
    rules.push({ type: type as DeviceType, major: Number(major ?? -1n), minor: Number(minor ?? -1n), access, allow });
  });
  if (o.devices) {
    plan.devices = effectiveDeviceRules(rules, o.devicePaths ?? []);
    try {
      plan.deviceProgram = deviceFilterProgram(plan.devices);
    } catch (e) {
      rd.fail(rd.at(base, 'devices'), (e as Error).message);
    }
  }

  // pids (runc's setPids: 0 becomes 1, as systemd cannot express 0; negative is no limit)
  const pids = rd.object(r, 'pids', base);
  const pidsLimit = pids ? rd.int(pids, 'limit', rd.at(base, 'pids')) : undefined;
  const pidsWrite =
    pidsLimit === undefined
      ? undefined
      : { file: 'pids.max', value: pidsLimit > 0n ? String(pidsLimit) : pidsLimit === 0n ? '1' : 'max', controller: 'pids', path: rd.at(rd.at(base, 'pids'), 'limit') };
  if (pidsWrite) add({ ...pidsWrite, isDefault: pidsWrite.value === 'max' });

  // memory
  const mem = rd.object(r, 'memory', base);
  if (mem) {
    const mp = rd.at(base, 'memory');
    const noLimit = 'must be -1 (no limit), 0 (unset) or a number of bytes';
    const limit = rd.int(mem, 'limit', mp, -1n, noLimit) ?? 0n;
    const reservation = rd.int(mem, 'reservation', mp, -1n, noLimit) ?? 0n;
    const swap = rd.int(mem, 'swap', mp, -1n, noLimit) ?? 0n;
    rd.int(mem, 'kernel', mp); // ignored, as runc ignores it
    rd.int(mem, 'kernelTCP', mp);
    rd.int(mem, 'swappiness', mp); // cgroup v2 has no per-cgroup swappiness
    rd.bool(mem, 'disableOOMKiller', mp);
    rd.bool(mem, 'useHierarchy', mp);
    const check = rd.bool(mem, 'checkBeforeUpdate', mp);
    if (limit !== 0n || reservation !== 0n || swap !== 0n) {
      let v2swap: bigint;
      try {
        v2swap = memorySwapToV2(swap, limit);
      } catch (e) {
        rd.fail(rd.at(mp, 'swap'), (e as Error).message);
      }
      let swapStr = numToStr(v2swap);
      // memory and memory+swap equal: no swap at all
      if (swapStr === '' && v2swap === 0n && swap > 0n) swapStr = '0';
      if (swapStr !== '') {
        add({ file: 'memory.swap.max', value: swapStr, controller: 'memory', path: rd.at(mp, 'swap'), isDefault: swapStr === 'max', missingOk: swapStr === 'max' || swapStr === '0' });
      }
      const max = numToStr(limit);
      if (max) add({ file: 'memory.max', value: max, controller: 'memory', path: rd.at(mp, 'limit'), isDefault: max === 'max' });
      const low = numToStr(reservation);
      if (low) add({ file: 'memory.low', value: low, controller: 'memory', path: rd.at(mp, 'reservation') });
      if (check) plan.check = { limit, swap, path: rd.at(mp, 'checkBeforeUpdate') };
    }
  }

  // blockIO
  const bio = rd.object(r, 'blockIO', base);
  if (bio) {
    const bp = rd.at(base, 'blockIO');
    const weight = rd.int(bio, 'weight', bp, 0n);
    if (weight !== undefined && weight !== 0n && (weight < 10n || weight > 1000n)) rd.fail(rd.at(bp, 'weight'), `must be between 10 and 1000, got ${weight}`);
    rd.int(bio, 'leafWeight', bp); // cgroup v1 only
    if (weight) {
      add({ file: 'io.bfq.weight', value: String(weight), controller: 'io', path: rd.at(bp, 'weight'), ioWeightFallback: String(blkioWeightToIoWeight(weight)) });
    }
    const dev = (d: Json, p: string) => {
      if (!isObject(d)) rd.fail(p, 'must be an object');
      const major = rd.int(d, 'major', p, 0n);
      const minor = rd.int(d, 'minor', p, 0n);
      if (major === undefined) rd.fail(rd.at(p, 'major'), 'is required');
      if (minor === undefined) rd.fail(rd.at(p, 'minor'), 'is required');
      return { d, mm: `${major}:${minor}` };
    };
    rd.array(bio, 'weightDevice', bp).forEach((x, i) => {
      const p = rd.at(rd.at(bp, 'weightDevice'), i);
      const { d, mm } = dev(x, p);
      const wd = rd.int(d, 'weight', p, 0n);
      rd.int(d, 'leafWeight', p);
      if (wd !== undefined && wd !== 0n && (wd < 10n || wd > 1000n)) rd.fail(rd.at(p, 'weight'), `must be between 10 and 1000, got ${wd}`);
      if (wd) add({ file: 'io.bfq.weight', value: `${mm} ${wd}`, controller: 'io', path: rd.at(p, 'weight'), bfqDevice: true });
    });
    for (const [key, name] of [
      ['throttleReadBpsDevice', 'rbps'],
      ['throttleWriteBpsDevice', 'wbps'],
      ['throttleReadIOPSDevice', 'riops'],
      ['throttleWriteIOPSDevice', 'wiops'],
    ] as const) {
      rd.array(bio, key, bp).forEach((x, i) => {
        const p = rd.at(rd.at(bp, key), i);
        const { d, mm } = dev(x, p);
        const rate = rd.int(d, 'rate', p, 0n);
        if (rate === undefined) rd.fail(rd.at(p, 'rate'), 'is required');
        add({ file: 'io.max', value: `${mm} ${name}=${rate}`, controller: 'io', path: p });
      });
    }
  }

  // cpu
  const cpu = rd.object(r, 'cpu', base);
  if (cpu) {
    const cp = rd.at(base, 'cpu');
    const shares = rd.int(cpu, 'shares', cp, 0n);
    const quota = rd.int(cpu, 'quota', cp, -1n, 'must be -1 (no limit), 0 (unset) or at least 1000 microseconds');
    if (quota !== undefined && quota > 0n && quota < 1000n) rd.fail(rd.at(cp, 'quota'), `must be at least 1000 microseconds (the kernel's minimum), got ${quota}`);
    const period = rd.int(cpu, 'period', cp, 0n);
    if (period !== undefined && period !== 0n && (period < 1000n || period > 1000000n)) {
      rd.fail(rd.at(cp, 'period'), `must be between 1000 and 1000000 microseconds (the kernel's range), or 0 for the default, got ${period}`);
    }
    const burst = rd.int(cpu, 'burst', cp, 0n);
    const idle = rd.int(cpu, 'idle', cp);
    if (idle !== undefined && idle !== 0n && idle !== 1n) rd.fail(rd.at(cp, 'idle'), `must be 0 or 1, got ${idle}`);
    for (const k of ['realtimeRuntime', 'realtimePeriod']) {
      const v = rd.int(cpu, k, cp);
      if (v) rd.fail(rd.at(cp, k), 'realtime CPU limits are not supported by cgroup v2');
    }
    const cpus = rd.str(cpu, 'cpus', cp);
    const mems = rd.str(cpu, 'mems', cp);
    if (idle !== undefined) add({ file: 'cpu.idle', value: String(idle), controller: 'cpu', path: rd.at(cp, 'idle'), isDefault: idle === 0n });
    const weight = shares === undefined ? 0n : cpuSharesToWeight(shares);
    if (weight) add({ file: 'cpu.weight', value: String(weight), controller: 'cpu', path: rd.at(cp, 'shares'), isDefault: weight === 100n });
    const setsMax = (quota ?? 0n) !== 0n || (period ?? 0n) !== 0n;
    if (burst !== undefined) add({ file: 'cpu.max.burst', value: String(burst), controller: 'cpu', path: rd.at(cp, 'burst'), isDefault: burst === 0n, burst: setsMax });
    if (setsMax) {
      const value = `${quota !== undefined && quota > 0n ? quota : 'max'} ${period || 100000n}`;
      add({ file: 'cpu.max', value, controller: 'cpu', path: rd.at(cp, quota ? 'quota' : 'period'), isDefault: value === 'max 100000' });
    }
    for (const [key, v, file] of [
      ['cpus', cpus, 'cpuset.cpus'],
      ['mems', mems, 'cpuset.mems'],
    ] as const) {
      if (!v) continue;
      const p = rd.at(cp, key);
      if (!parseIdList(v)) rd.fail(p, `"${v}" is not a list like "0-3,6"`);
      plan[key] = { list: v, path: p };
      add({ file, value: v, controller: 'cpuset', path: p });
    }
  }

  // hugetlb (runc writes .rsvd.max too where the kernel has it)
  rd.array(r, 'hugepageLimits', base).forEach((x, i) => {
    const p = rd.at(rd.at(base, 'hugepageLimits'), i);
    if (!isObject(x)) rd.fail(p, 'must be an object');
    const size = rd.str(x, 'pageSize', p);
    if (size === undefined) rd.fail(rd.at(p, 'pageSize'), 'is required');
    if (!/^\d+(KB|MB|GB|TB)$/.test(size)) rd.fail(rd.at(p, 'pageSize'), `"${size}" is not a page size like "2MB" or "1GB"`);
    const limit = rd.int(x, 'limit', p, 0n);
    if (limit === undefined) rd.fail(rd.at(p, 'limit'), 'is required');
    add({ file: `hugetlb.${size}.max`, value: String(limit), controller: 'hugetlb', path: p, hugetlb: true });
    add({ file: `hugetlb.${size}.rsvd.max`, value: String(limit), controller: 'hugetlb', path: p, hugetlb: true, missingOk: true });
  });

  // rdma
  const rdma = rd.object(r, 'rdma', base);
  for (const [dev, lim] of Object.entries(rdma ?? {})) {
    const p = rd.at(rd.at(base, 'rdma'), dev);
    if (!/^[\w.-]+$/.test(dev)) rd.fail(p, `"${dev}" is not an RDMA device name`);
    if (!isObject(lim)) rd.fail(p, 'must be an object');
    const handles = rd.int(lim, 'hcaHandles', p, 0n);
    const objects = rd.int(lim, 'hcaObjects', p, 0n);
    let value = dev;
    if (handles !== undefined) value += ` hca_handle=${handles}`;
    if (objects !== undefined) value += ` hca_object=${objects}`;
    add({ file: 'rdma.max', value, controller: 'rdma', path: p });
  }

  // network (net_cls/net_prio) exists in cgroup v1 only; runc's v2 driver ignores it too.
  rd.object(r, 'network', base);

  // unified: written verbatim, last, so it overrides the conversions above
  const unified = rd.object(r, 'unified', base);
  for (const [key, value] of Object.entries(unified ?? {})) {
    const p = rd.at(rd.at(base, 'unified'), key);
    if (typeof value !== 'string') rd.fail(p, 'must be a string');
    if (key.includes('/') || key === '.' || key === '..') rd.fail(p, `"${key}" must be a file name, without slashes`);
    const m = /^([a-z_]+)\.[a-z0-9_.]+$/.exec(key);
    if (!m) rd.fail(p, `"${key}" is not a cgroup file name of the form CONTROLLER.PARAMETER`);
    const controller = m[1]!;
    if (!KNOWN_CONTROLLERS.includes(controller)) rd.fail(p, `unknown cgroup controller "${controller}" in "${key}" (known: ${KNOWN_CONTROLLERS.join(', ')})`);
    if (UNIFIED_FORBIDDEN.includes(key)) rd.fail(p, `"${key}" cannot be set through linux.resources.unified (the runtime manages it)`);
    add({ file: key, value, controller: controller === 'cgroup' ? undefined : controller, path: p, unified: true });
  }
  return plan;
}

// ---- applying ---------------------------------------------------------------------

const readIds = (path: string, fallback: string): number[] => parseIdList((readOptional('/', path) ?? fallback).trim()) ?? [];

/** Host checks that need no cgroup: cpus and memory nodes that exist. */
export function checkHostResources(plan: ResourcePlan, file = 'config.json'): void {
  for (const [want, online, what] of [
    [plan.cpus, '/sys/devices/system/cpu/online', 'cpus'],
    [plan.mems, '/sys/devices/system/node/online', 'memory nodes'],
  ] as const) {
    if (!want) continue;
    const have = new Set(readIds(online, '0'));
    const missing = parseIdList(want.list)!.filter((i) => !have.has(i));
    if (missing.length) {
      throw new ConfigError(want.path, `${what} ${formatIdList(missing)} of "${want.list}" are not on this host (it has ${what} ${formatIdList([...have])})`, file);
    }
  }
}

export interface ApplyOptions {
  file?: string;
  /** the cgroup directory's fd, for the device filter (opened here if absent) */
  cgroupFd?: number;
  /** runc ignores device-filter failures when it cannot use bpf(2) (rootless) */
  rootless?: boolean;
  log?: (msg: string) => void;
}

/** Checks the host, then writes every setting of the plan into DIR. */
export function applyResources(dir: string, plan: ResourcePlan, o: ApplyOptions = {}): void {
  const file = o.file ?? 'config.json';
  checkHostResources(plan, file);
  const available = new Set(controllersOf(dir));
  const writes: CgroupWrite[] = [];
  for (const w of plan.writes) {
    if (w.controller && !available.has(w.controller)) {
      if (w.isDefault) continue; // nothing to limit: asking for no limit is not an error
      throw new ConfigError(
        w.path,
        `cgroup controller "${w.controller}" is not available in ${dir} (cgroup.controllers has: ${[...available].join(' ') || 'nothing'}), needed to write ${w.file}`,
        file,
      );
    }
    if (w.unified && !existsSync(join(dir, w.file))) throw new ConfigError(w.path, `unknown cgroup file "${w.file}": ${dir} has no such file`, file);
    if (w.hugetlb && !w.missingOk && !existsSync(join(dir, w.file))) {
      throw new ConfigError(w.path, `huge page size ${w.file.split('.')[1]} is not supported here (hugetlb offers: ${hugePageSizes(dir).join(', ') || 'none'})`, file);
    }
    writes.push(w);
  }
  if (plan.check) checkMemoryUsage(dir, plan.check, file);

  const failed = (w: CgroupWrite, e: unknown, target = w.file): never => {
    const msg = (fromNodeError(e) as Error).message;
    const why = /: (E[A-Z0-9]+\b.*)$/.exec(msg)?.[1] ?? msg;
    throw new ConfigError(w.path, `write ${JSON.stringify(w.value)} to ${join(dir, target)}: ${why}`, file);
  };
  const code = (e: unknown) => (e as NodeJS.ErrnoException).code;
  let deferredBurst: CgroupWrite | undefined;
  let bfqDevices: boolean | undefined;
  for (const w of writes) {
    try {
      if (w.ioWeightFallback !== undefined) {
        if (existsSync(join(dir, 'io.bfq.weight'))) writeRaw(dir, 'io.bfq.weight', w.value);
        else writeRaw(dir, 'io.weight', w.ioWeightFallback);
        continue;
      }
      if (w.bfqDevice) {
        // BFQ takes "major:minor weight" since Linux 5.4; older kernels read back one number.
        bfqDevices ??= !/^\s*\d+\s*$/.test(readOptional(dir, 'io.bfq.weight') ?? '0');
        if (bfqDevices) writeRaw(dir, 'io.bfq.weight', `${w.value}\n`);
        else o.log?.(`${w.path}: per-device weights need the BFQ I/O scheduler; not set`);
        continue;
      }
      if (w.unified) {
        // runc writes a multi-line value line by line (io.max for several devices)
        for (const line of w.value.split('\n')) if (line.trim() !== '' || w.value === '') writeRaw(dir, w.file, line);
        continue;
      }
      writeRaw(dir, w.file, w.value);
      if (w.file === 'cpu.max' && deferredBurst) {
        writeRaw(dir, deferredBurst.file, deferredBurst.value);
        deferredBurst = undefined;
      }
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      if (w.burst && code(e) === 'EINVAL' && !deferredBurst) {
        deferredBurst = w; // the new quota may make room for it
        continue;
      }
      if (w.missingOk && code(e) === 'ENOENT') continue;
      failed(w, e);
    }
  }
  if (deferredBurst) {
    try {
      writeRaw(dir, deferredBurst.file, deferredBurst.value);
    } catch (e) {
      failed(deferredBurst, e);
    }
  }
  if (plan.devices) applyDeviceRules(dir, plan.deviceProgram ?? deviceFilterProgram(plan.devices), o);
}

/** Loads a device filter program (deviceFilterProgram) on the cgroup, replacing the one before. */
export function applyDeviceRules(dir: string, insns: Buffer, o: ApplyOptions = {}): void {
  const fd = o.cgroupFd ?? openSync(dir, constants.O_DIRECTORY | constants.O_RDONLY);
  try {
    setDeviceFilter(fd, insns, dir);
  } catch (e) {
    // Without CAP_SYS_ADMIN (rootless) bpf(2) is refused; runc goes on without the filter then.
    if (o.rootless) o.log?.(`device rules not applied: ${(e as Error).message}`);
    else throw new RuntimeError('set the device rules (linux.resources.devices)', e);
  } finally {
    if (o.cgroupFd === undefined) closeSync(fd);
  }
}

/** runc's CheckMemoryUsage (memory.checkBeforeUpdate). */
function checkMemoryUsage(dir: string, c: NonNullable<ResourcePlan['check']>, file: string): void {
  const usage = readUint(dir, 'memory.current');
  if (usage === undefined) return; // best effort, as runc
  if (c.swap > 0n && c.swap <= usage) throw new ConfigError(c.path, `rejecting memory+swap limit ${c.swap} <= usage ${usage}`, file);
  if (c.limit > 0n && c.limit <= usage) throw new ConfigError(c.path, `rejecting memory limit ${c.limit} <= usage ${usage}`, file);
}

/** Page sizes with hugetlb.<size>.max files in DIR ("2MB", "1GB"). */
export function hugePageSizes(dir: string): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    /* no directory: no sizes */
  }
  return names.map((n) => /^hugetlb\.(\d+[KMGT]B)\.max$/.exec(n)?.[1]).filter((s): s is string => s !== undefined);
}
