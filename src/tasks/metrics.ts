// A task's cgroup v2 statistics as containerd reports them from Tasks.Metrics:
// io.containerd.cgroups.v2.Metrics, read from the cgroup's files the way
// containerd's cgroups/v2 manager reads them (memory.stat keys by their proto
// names, "max" as 2^64-1 wherever a limit is unset).
import type { MessageInitShape } from '@bufbuild/protobuf';
import { MemoryStatSchema, type MetricsSchema } from '../gen/io/containerd/cgroups/v2/metrics_pb.js';
import { MAX_UINT64, parseKeyValues, readOptional, readUint } from '../runtime/cgroups/files.js';
import { cgroupPids } from '../runtime/cgroups/placement.js';
import { hugetlbSizes } from '../runtime/cgroups/stats.js';

export type MetricsInit = MessageInitShape<typeof MetricsSchema>;

const orZero = (v: bigint | undefined) => v ?? 0n;

export function cgroupMetrics(dir: string): MetricsInit {
  const cpu = parseKeyValues(readOptional(dir, 'cpu.stat'));
  const out: MetricsInit = {
    pids: {
      current: readUint(dir, 'pids.current') ?? BigInt(cgroupPids(dir).length),
      limit: readUint(dir, 'pids.max') ?? 0n,
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
