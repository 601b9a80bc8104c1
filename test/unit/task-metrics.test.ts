// Tasks.Metrics on a hybrid host: memory and pids live in the v1
// hierarchies, and their figures land in the v2 Metrics fields of the same
// meaning (docker stats reads usage, limit and inactive_file from there).
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_UINT64 } from '../../src/runtime/cgroups/files.js';
import { cgroupMetrics } from '../../src/tasks/metrics.js';

function cgroup(base: string, name: string, files: Record<string, string>): string {
  const dir = join(base, name);
  mkdirSync(dir, { recursive: true });
  for (const [f, v] of Object.entries(files)) writeFileSync(join(dir, f), v);
  return dir;
}

t.test('memory and pids from the v1 hierarchies when the v2 cgroup has no such controller', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'tsrunc-metrics-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const v2 = cgroup(base, 'unified', { 'cpu.stat': 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n', 'cgroup.procs': '' });
  const mem = cgroup(base, 'memory', {
    'memory.stat': 'cache 4096\nrss 8192\nshmem 20000768\ninactive_file 12288\npgfault 7\ntotal_cache 40960\ntotal_rss 81920\ntotal_shmem 20000768\ntotal_inactive_file 12288\ntotal_pgfault 70\n',
    'memory.usage_in_bytes': '20193280\n',
    'memory.limit_in_bytes': '67108864\n',
    'memory.memsw.usage_in_bytes': '20197376\n',
    'memory.memsw.limit_in_bytes': '134217728\n',
    'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
  });
  const pids = cgroup(base, 'pids', { 'pids.current': '3\n', 'pids.max': '50\n' });
  const m = cgroupMetrics(v2, [
    { dir: mem, controllers: ['memory'] },
    { dir: pids, controllers: ['pids'] },
  ]);
  t.same(m.pids, { current: 3n, limit: 50n });
  t.equal(m.cpu?.usageUsec, 1500n, 'cpu from the v2 cpu.stat');
  t.match(m.memory, { usage: 20193280n, usageLimit: 67108864n, swapUsage: 4096n, swapLimit: 67108864n });
  t.match(m.memory, { file: 40960n, anon: 81920n, shmem: 20000768n, inactiveFile: 12288n, pgfault: 70n }, 'hierarchical (total_) figures, by their v2 names');
  t.equal(m.memoryEvents?.oomKill, 2n);

  writeFileSync(join(mem, 'memory.limit_in_bytes'), '9223372036854771712\n');
  writeFileSync(join(mem, 'memory.memsw.limit_in_bytes'), '9223372036854771712\n');
  writeFileSync(join(pids, 'pids.max'), 'max\n');
  const open = cgroupMetrics(v2, [
    { dir: mem, controllers: ['memory'] },
    { dir: pids, controllers: ['pids'] },
  ]);
  t.equal(open.memory?.usageLimit, MAX_UINT64, "v1's largest limit is no limit");
  t.equal(open.memory?.swapLimit, MAX_UINT64);
  t.equal(open.pids?.limit, MAX_UINT64);
});

t.test('without v1 directories: nothing invented', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'tsrunc-metrics-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const v2 = cgroup(base, 'unified', { 'cpu.stat': 'usage_usec 1\n', 'cgroup.procs': '1\n2\n' });
  const m = cgroupMetrics(v2);
  t.equal(m.memory, undefined);
  t.same(m.pids, { current: 2n, limit: 0n }, 'pids counted from cgroup.procs');
});
