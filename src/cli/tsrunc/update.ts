// `update [-r FILE|-] [--memory ...] ID`: runc's flags, or its JSON resources
// format (linux.resources) from a file or stdin; with -r the flags are ignored.
import { readFileSync } from 'node:fs';
import { updateContainer } from '../../runtime/cgroups/lifecycle.js';
import { ConfigError } from '../../oci/validate.js';
import { fromNodeError } from '../../linux/syscall-error.js';
import type { Globals } from './main.js';

export interface UpdateFlags {
  resources?: string;
  blkioWeight?: string;
  cpuPeriod?: string;
  cpuQuota?: string;
  cpuBurst?: string;
  cpuShare?: string;
  cpuShares?: string;
  cpuRtPeriod?: string;
  cpuRtRuntime?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  cpuIdle?: string;
  kernelMemory?: string;
  kernelMemoryTcp?: string;
  memory?: string;
  memoryReservation?: string;
  memorySwap?: string;
  pidsLimit?: string;
  l3CacheSchema?: string;
  memBwSchema?: string;
}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** docker's units.RAMInBytes: "512m", "1.5g", "100KiB", "2048"; binary multiples. */
export function ramInBytes(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(s);
  if (!m) return undefined;
  return Math.trunc(Number(m[1]) * UNITS[(m[2] ?? '').toLowerCase()]!);
}

/** The JSON path each flag fills, for errors that name the flag. */
const FLAG_OF: Record<string, string> = {
  'blockIO.weight': '--blkio-weight',
  'cpu.period': '--cpu-period',
  'cpu.quota': '--cpu-quota',
  'cpu.burst': '--cpu-burst',
  'cpu.shares': '--cpu-share',
  'cpu.realtimePeriod': '--cpu-rt-period',
  'cpu.realtimeRuntime': '--cpu-rt-runtime',
  'cpu.cpus': '--cpuset-cpus',
  'cpu.mems': '--cpuset-mems',
  'cpu.idle': '--cpu-idle',
  'memory.limit': '--memory',
  'memory.reservation': '--memory-reservation',
  'memory.swap': '--memory-swap',
  'pids.limit': '--pids-limit',
};

function int(flag: string, v: string, unsigned: boolean): number {
  if (!(unsigned ? /^\d+$/ : /^-?\d+$/).test(v)) throw new Error(`invalid value for ${flag}: "${v}" is not ${unsigned ? 'a non-negative' : 'an'} integer`);
  return Number(v);
}

/** runc's update flags -> a linux.resources object. */
export function resourcesFromFlags(o: UpdateFlags, warn: (m: string) => void): Record<string, Record<string, unknown>> {
  const r = { memory: {} as Record<string, unknown>, cpu: {} as Record<string, unknown>, blockIO: {} as Record<string, unknown>, pids: {} as Record<string, unknown> };
  if (o.blkioWeight !== undefined) {
    const w = int('--blkio-weight', o.blkioWeight, true);
    if (w !== 0) r.blockIO['weight'] = w;
  }
  if (o.cpusetCpus) r.cpu['cpus'] = o.cpusetCpus;
  if (o.cpusetMems) r.cpu['mems'] = o.cpusetMems;
  if (o.cpuIdle !== undefined) r.cpu['idle'] = int('--cpu-idle', o.cpuIdle, false);
  const shares = o.cpuShare ?? o.cpuShares;
  for (const [flag, v, key, unsigned] of [
    ['--cpu-burst', o.cpuBurst, 'burst', true],
    ['--cpu-period', o.cpuPeriod, 'period', true],
    ['--cpu-rt-period', o.cpuRtPeriod, 'realtimePeriod', true],
    ['--cpu-share', shares, 'shares', true],
    ['--cpu-quota', o.cpuQuota, 'quota', false],
    ['--cpu-rt-runtime', o.cpuRtRuntime, 'realtimeRuntime', false],
  ] as const) {
    if (v !== undefined && v !== '') r.cpu[key] = int(flag, v, unsigned);
  }
  for (const [flag, v, key] of [
    ['--memory', o.memory, 'limit'],
    ['--memory-swap', o.memorySwap, 'swap'],
    ['--memory-reservation', o.memoryReservation, 'reservation'],
    ['--kernel-memory', o.kernelMemory, 'kernel'],
    ['--kernel-memory-tcp', o.kernelMemoryTcp, 'kernelTCP'],
  ] as const) {
    if (v === undefined || v === '') continue;
    const n = v === '-1' ? -1 : ramInBytes(v);
    if (n === undefined) throw new Error(`invalid value for ${flag}: "${v}" is not a size like 512m, 1g or 1048576`);
    r.memory[key] = n;
  }
  if (r.memory['kernel'] !== undefined || r.memory['kernelTCP'] !== undefined) {
    warn('Kernel memory settings are ignored and will be removed');
    delete r.memory['kernel'];
    delete r.memory['kernelTCP'];
  }
  if (o.pidsLimit !== undefined) r.pids['limit'] = int('--pids-limit', o.pidsLimit, false);
  if (o.l3CacheSchema || o.memBwSchema) throw new Error('Intel RDT is not supported by tsrunc (--l3-cache-schema, --mem-bw-schema)');
  return r;
}

export default function update(g: Globals, id: string, o: UpdateFlags): void {
  if (o.resources !== undefined) {
    const file = o.resources === '-' ? 'stdin' : o.resources;
    let text: string;
    try {
      text = readFileSync(o.resources === '-' ? 0 : o.resources, 'utf8');
    } catch (e) {
      throw fromNodeError(e, `read ${file}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new ConfigError('', `malformed JSON: ${(e as Error).message}`, file);
    }
    updateContainer(g.root, id, json, { file, log: (m) => g.log.debug(m) });
    return;
  }
  const request = resourcesFromFlags(o, (m) => g.log.warn(m));
  try {
    updateContainer(g.root, id, request, { file: 'update', log: (m) => g.log.debug(m) });
  } catch (e) {
    // Name the flag rather than the JSON path it was turned into.
    if (e instanceof ConfigError && FLAG_OF[e.path]) {
      const prefix = `update: ${e.path}: `;
      throw new Error(`${FLAG_OF[e.path]}: ${e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message}`);
    }
    throw e;
  }
}
