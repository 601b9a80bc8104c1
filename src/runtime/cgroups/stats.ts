// Container statistics from the cgroup v2 files, in the shape `runc events`
// prints (runc's types.Stats, filled as its fs2 driver fills it), with the
// same JSON field names and omissions. Numbers are bigints: limits of "max"
// are 2^64-1, as runc reports them.
import { readdirSync } from 'node:fs';
import { MAX_UINT64, parseKeyValues, readOptional, readUint } from './files.js';
import { cgroupPids } from './placement.js';

export interface PsiData {
  avg10: number;
  avg60: number;
  avg300: number;
  total: bigint;
}
export interface PsiStats {
  some?: PsiData;
  full?: PsiData;
}
export interface MemoryEntry {
  limit: bigint;
  usage?: bigint;
  max?: bigint;
  failcnt: bigint;
}
export interface BlkioEntry {
  major?: bigint;
  minor?: bigint;
  op?: string;
  value?: bigint;
}
export interface Stats {
  cpu: {
    usage?: { total?: bigint; kernel: bigint; user: bigint };
    throttling?: { periods?: bigint; throttledPeriods?: bigint; throttledTime?: bigint };
    psi?: PsiStats;
  };
  cpuset: Record<string, bigint>;
  memory: {
    cache?: bigint;
    usage?: MemoryEntry;
    swap?: MemoryEntry;
    kernel?: MemoryEntry;
    kernelTCP?: MemoryEntry;
    raw?: Record<string, bigint>;
    psi?: PsiStats;
  };
  pids: { current?: bigint; limit?: bigint };
  blkio: { ioServiceBytesRecursive?: BlkioEntry[]; ioServicedRecursive?: BlkioEntry[]; psi?: PsiStats };
  hugetlb: Record<string, { usage?: bigint; max?: bigint; failcnt: bigint }>;
  intel_rdt: Record<string, never>;
  network_interfaces: null;
}

/** Go's omitempty for one number. */
const nz = <K extends string>(key: K, v: bigint | undefined): { [P in K]?: bigint } => (v ? ({ [key]: v } as { [P in K]?: bigint }) : {});

function psi(dir: string, file: string): PsiStats | undefined {
  const text = readOptional(dir, file);
  if (text === undefined) return undefined;
  const out: PsiStats = {};
  for (const line of text.split('\n')) {
    const [kind, ...fields] = line.trim().split(/\s+/);
    if (kind !== 'some' && kind !== 'full') continue;
    const d: PsiData = { avg10: 0, avg60: 0, avg300: 0, total: 0n };
    for (const f of fields) {
      const [k, v = ''] = f.split('=');
      if (k === 'total') d.total = /^\d+$/.test(v) ? BigInt(v) : 0n;
      else if (k === 'avg10' || k === 'avg60' || k === 'avg300') d[k] = Number(v) || 0;
    }
    // omitzero: an all-zero half is left out
    if (d.avg10 || d.avg60 || d.avg300 || d.total) out[kind] = d;
  }
  return out;
}

const u64 = (v: bigint): bigint => v & MAX_UINT64; // Go's uint64 wraps

function memoryData(dir: string, prefix: string): { usage: bigint; limit: bigint; max: bigint } | undefined {
  const usage = readUint(dir, `${prefix}.current`);
  if (usage === undefined) return undefined;
  return { usage, limit: readUint(dir, `${prefix}.max`) ?? 0n, max: readUint(dir, `${prefix}.peak`) ?? 0n };
}

const entry = (d: { usage: bigint; limit: bigint; max: bigint }): MemoryEntry | undefined =>
  d.limit || d.usage || d.max ? { limit: d.limit, ...nz('usage', d.usage), ...nz('max', d.max), failcnt: 0n } : undefined;

/** Reads the statistics of the cgroup DIR. */
export function readStats(dir: string): Stats {
  // cpu (cpu.stat exists even without the cpu controller)
  const cs = parseKeyValues(readOptional(dir, 'cpu.stat'));
  const us = (k: string) => (cs.get(k) ?? 0n) * 1000n;
  const usage = { ...nz('total', us('usage_usec')), kernel: us('system_usec'), user: us('user_usec') };
  const throttling = { ...nz('periods', cs.get('nr_periods')), ...nz('throttledPeriods', cs.get('nr_throttled')), ...nz('throttledTime', us('throttled_usec')) };
  const cpuPsi = psi(dir, 'cpu.pressure');
  const stats: Stats = {
    cpu: {
      ...(usage.total || usage.kernel || usage.user ? { usage } : {}),
      ...(Object.keys(throttling).length ? { throttling } : {}),
      ...(cpuPsi ? { psi: cpuPsi } : {}),
    },
    cpuset: {
      cpu_exclusive: 0n,
      mem_hardwall: 0n,
      mem_exclusive: 0n,
      memory_migrate: 0n,
      memory_spread_page: 0n,
      memory_spread_slab: 0n,
      memory_pressure: 0n,
      sched_load_balance: 0n,
      sched_relax_domain_level: 0n,
    },
    memory: {},
    pids: {},
    blkio: {},
    hugetlb: {},
    intel_rdt: {},
    network_interfaces: null,
  };

  // memory (only with the memory controller)
  const memStat = readOptional(dir, 'memory.stat');
  if (memStat !== undefined) {
    const raw = parseKeyValues(memStat);
    const mem = memoryData(dir, 'memory') ?? { usage: 0n, limit: 0n, max: 0n };
    const swapOnly = memoryData(dir, 'memory.swap') ?? { usage: 0n, limit: 0n, max: 0n };
    // v1 reported memory+swap; runc keeps that for v2.
    const swap = { usage: u64(swapOnly.usage + mem.usage), limit: swapOnly.limit === MAX_UINT64 ? MAX_UINT64 : u64(swapOnly.limit + mem.limit), max: 0n };
    const usageEntry = entry(mem);
    const swapEntry = entry(swap);
    stats.memory = {
      ...nz('cache', raw.get('file')),
      ...(usageEntry ? { usage: usageEntry } : {}),
      ...(swapEntry ? { swap: swapEntry } : {}),
      ...(raw.size ? { raw: Object.fromEntries([...raw].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) } : {}),
    };
  }
  const memPsi = psi(dir, 'memory.pressure');
  if (memPsi) stats.memory.psi = memPsi;

  // pids
  const current = readUint(dir, 'pids.current');
  if (current !== undefined) {
    const max = readUint(dir, 'pids.max') ?? 0n;
    stats.pids = { ...nz('current', current), ...nz('limit', max === MAX_UINT64 ? 0n : max) };
  } else {
    stats.pids = nz('current', BigInt(cgroupPids(dir).length));
  }

  // io
  const io = readOptional(dir, 'io.stat');
  const bytes: BlkioEntry[] = [];
  const ios: BlkioEntry[] = [];
  for (const line of (io ?? '').split('\n')) {
    const [dev, ...fields] = line.trim().split(/\s+/);
    const mm = /^(\d+):(\d+)$/.exec(dev ?? '');
    if (!mm) continue;
    const major = BigInt(mm[1]!);
    const minor = BigInt(mm[2]!);
    for (const f of fields) {
      const [k, v = ''] = f.split('=');
      if (!/^\d+$/.test(v)) continue;
      const table = k === 'rbytes' || k === 'wbytes' ? bytes : k === 'rios' || k === 'wios' ? ios : undefined;
      if (!table) continue;
      table.push({ ...nz('major', major), ...nz('minor', minor), op: k!.startsWith('r') ? 'Read' : 'Write', ...nz('value', BigInt(v)) });
    }
  }
  if (bytes.length) stats.blkio.ioServiceBytesRecursive = bytes;
  if (ios.length) stats.blkio.ioServicedRecursive = ios;
  const ioPsi = psi(dir, 'io.pressure');
  if (ioPsi) stats.blkio.psi = ioPsi;

  // hugetlb: one entry per page size the cgroup has files for
  for (const size of hugetlbSizes(dir)) {
    const used = readUint(dir, `hugetlb.${size}.rsvd.current`) ?? readUint(dir, `hugetlb.${size}.current`) ?? 0n;
    const failcnt = parseKeyValues(readOptional(dir, `hugetlb.${size}.events`)).get('max') ?? 0n;
    stats.hugetlb[size] = { ...nz('usage', used), failcnt };
  }
  return stats;
}

/** The huge page sizes ("2MB", "1GB") the cgroup DIR has hugetlb files for. */
export function hugetlbSizes(dir: string): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    /* gone */
  }
  return names
    .sort()
    .map((n) => /^hugetlb\.(\d+[KMGT]B)\.current$/.exec(n)?.[1])
    .filter((s): s is string => s !== undefined);
}

/** JSON with bigints as plain numbers (JSON.stringify refuses bigints; Node 20 has no JSON.rawJSON). */
export function toJson(value: unknown): string {
  const MARK = '\u0001bigint:';
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${MARK}${v}` : v)).replace(/"\\u0001bigint:(\d+)"/g, '$1');
}

/** The number of OOM kills so far (memory.events oom_kill), undefined without the memory controller. */
export function oomKillCount(dir: string): bigint | undefined {
  const text = readOptional(dir, 'memory.events');
  return text === undefined ? undefined : (parseKeyValues(text).get('oom_kill') ?? 0n);
}
