// A task's cgroup v2 statistics as containerd reports them from Tasks.Metrics:
// io.containerd.cgroups.v2.Metrics, read from the cgroup's files the way
// containerd's cgroups/v2 manager reads them (memory.stat keys by their proto
// names, "max" as 2^64-1 wherever a limit is unset). On hybrid hosts memory
// and pids are limited in the v1 hierarchies, so their figures come from
// there, v1 names mapped onto the v2 fields of the same meaning.
import type { MessageInitShape } from '@bufbuild/protobuf';
import { MemoryStatSchema, type MetricsSchema } from '../gen/io/containerd/cgroups/v2/metrics_pb.js';
import { MAX_UINT64, parseKeyValues, readOptional, readUint } from '../runtime/cgroups/files.js';
import { cgroupPids } from '../runtime/cgroups/placement.js';
import { hugetlbSizes } from '../runtime/cgroups/stats.js';
import { v1DirOf, type V1Cgroup } from '../runtime/cgroups/v1.js';

export type MetricsInit = MessageInitShape<typeof MetricsSchema>;

const orZero = (v: bigint | undefined) => v ?? 0n;

/** cgroup v1 memory.stat names and the MemoryStat fields that mean the same. */
const V1_MEMORY_STAT: Record<string, string> = {
  rss: 'anon',
  cache: 'file',
  shmem: 'shmem',
  mapped_file: 'fileMapped',
  dirty: 'fileDirty',
  writeback: 'fileWriteback',
  rss_huge: 'anonThp',
  inactive_anon: 'inactiveAnon',
  active_anon: 'activeAnon',
  inactive_file: 'inactiveFile',
  active_file: 'activeFile',
  unevictable: 'unevictable',
  pgfault: 'pgfault',
  pgmajfault: 'pgmajfault',
};

/** v1's largest limit (PAGE_COUNTER_MAX pages) reads as no limit, as v2's "max". */
const V1_UNLIMITED = 0x7ffffffffffff000n;
const v1Limit = (v: bigint | undefined): bigint => (v === undefined || v >= V1_UNLIMITED ? MAX_UINT64 : v);

/** Memory of a v1 memory cgroup in v2's fields (memsw counts memory and swap together; v2's swap is swap alone). */
function v1Memory(dir: string): { memory: Record<string, bigint>; oomKill: bigint } | undefined {
  const stat = readOptional(dir, 'memory.stat');
  if (stat === undefined) return undefined;
  const raw = parseKeyValues(stat);
  const memory: Record<string, bigint> = {};
  for (const [v1, field] of Object.entries(V1_MEMORY_STAT)) {
    const v = raw.get(`total_${v1}`) ?? raw.get(v1);
    if (v !== undefined) memory[field] = v;
  }
  const usage = orZero(readUint(dir, 'memory.usage_in_bytes'));
  const limit = v1Limit(readUint(dir, 'memory.limit_in_bytes'));
  const memsw = readUint(dir, 'memory.memsw.usage_in_bytes');
  const memswLimit = v1Limit(readUint(dir, 'memory.memsw.limit_in_bytes'));
  memory['usage'] = usage;
  memory['usageLimit'] = limit;
  memory['swapUsage'] = memsw !== undefined && memsw > usage ? memsw - usage : 0n;
  memory['swapLimit'] = memswLimit === MAX_UINT64 || limit === MAX_UINT64 ? MAX_UINT64 : memswLimit > limit ? memswLimit - limit : 0n;
  const oomKill = parseKeyValues(readOptional(dir, 'memory.oom_control')).get('oom_kill') ?? 0n;
  return { memory, oomKill };
}

/** Metrics of the cgroup v2 DIR, with memory and pids from the v1 hierarchies where the task has them (hybrid hosts). */
export function cgroupMetrics(dir: string, v1: V1Cgroup[] = []): MetricsInit {
  const cpu = parseKeyValues(readOptional(dir, 'cpu.stat'));
  const v1Pids = readUint(dir, 'pids.current') === undefined ? v1DirOf(v1, 'pids') : undefined;
  const pidsDir = v1Pids ?? dir;
  const out: MetricsInit = {
    pids: {
      current: readUint(pidsDir, 'pids.current') ?? BigInt(cgroupPids(dir).length),
      limit: v1Pids ? v1Limit(readUint(pidsDir, 'pids.max')) : (readUint(dir, 'pids.max') ?? 0n),
    },
    cpu: {
      usageUsec: orZero(cpu.get('usage_usec')),
      userUsec: orZero(cpu.get('user_usec')),
      systemUsec: orZero(cpu.get('system_usec')),
      nrPeriods: orZero(cpu.get('nr_periods')),
      nrThrottled: orZero(cpu.get('nr_throttled')),
      throttledUsec: orZero(cpu.get('throttled_usec')),
    },
    hugetlb: [],
  };
  const memStat = readOptional(dir, 'memory.stat');
  if (memStat !== undefined) {
    const raw = parseKeyValues(memStat);
    const memory: Record<string, bigint> = {};
    for (const f of MemoryStatSchema.fields) {
      const v = raw.get(f.name);
      if (v !== undefined) memory[f.localName] = v;
    }
    memory['usage'] = orZero(readUint(dir, 'memory.current'));
    memory['usageLimit'] = readUint(dir, 'memory.max') ?? MAX_UINT64;
    memory['swapUsage'] = orZero(readUint(dir, 'memory.swap.current'));
    memory['swapLimit'] = readUint(dir, 'memory.swap.max') ?? MAX_UINT64;
    out.memory = memory;
    const ev = parseKeyValues(readOptional(dir, 'memory.events'));
    out.memoryEvents = { low: orZero(ev.get('low')), high: orZero(ev.get('high')), max: orZero(ev.get('max')), oom: orZero(ev.get('oom')), oomKill: orZero(ev.get('oom_kill')) };
  } else {
    const memDir = v1DirOf(v1, 'memory');
    const m = memDir ? v1Memory(memDir) : undefined;
    if (m) {
      out.memory = m.memory;
      out.memoryEvents = { oomKill: m.oomKill };
    }
  }
  const io = readOptional(dir, 'io.stat');
  if (io !== undefined) {
    const usage = [];
    for (const line of io.split('\n')) {
      const [dev, ...fields] = line.trim().split(/\s+/);
      const mm = /^(\d+):(\d+)$/.exec(dev ?? '');
      if (!mm) continue;
      const kv = new Map(fields.map((f) => f.split('=') as [string, string]));
      const n = (k: string) => (/^\d+$/.test(kv.get(k) ?? '') ? BigInt(kv.get(k)!) : 0n);
      usage.push({ major: BigInt(mm[1]!), minor: BigInt(mm[2]!), rbytes: n('rbytes'), wbytes: n('wbytes'), rios: n('rios'), wios: n('wios') });
    }
    out.io = { usage };
  }
  for (const size of hugetlbSizes(dir)) {
    out.hugetlb!.push({ current: orZero(readUint(dir, `hugetlb.${size}.current`)), max: readUint(dir, `hugetlb.${size}.max`) ?? MAX_UINT64, pagesize: size });
  }
  return out;
}
