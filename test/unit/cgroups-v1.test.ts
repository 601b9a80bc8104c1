// Hybrid hosts' v1 part without root: which hierarchies there are, where a
// container's directories go (runc's v1 rule), the v1 files and values of
// each limit, which writes stay with cgroup v2, and applying to fake
// directories.
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseMountInfo } from '../../src/linux/mountinfo.js';
import { planResources } from '../../src/runtime/cgroups/resources.js';
import { applyV1Resources, ownV1Cgroups, planV1Writes, v1Dirs, v1Hierarchies, withoutV1 } from '../../src/runtime/cgroups/v1.js';

const MOUNTINFO = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
  '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
  '50 23 0:36 /kubepods /host/pids rw,relatime - cgroup cgroup rw,pids',
].join('\n');

const PROC_SELF_CGROUP = ['4:memory:/box/inner', '3:pids:/', '2:cpu,cpuacct:/', '1:name=systemd:/', '0::/'].join('\n');

t.test('hierarchies from mountinfo', (t) => {
  const hs = v1Hierarchies(parseMountInfo(MOUNTINFO));
  t.same(
    hs.map((h) => [h.mountPoint, h.controllers]),
    [
      ['/sys/fs/cgroup/cpu,cpuacct', ['cpu', 'cpuacct']],
      ['/sys/fs/cgroup/memory', ['memory']],
      ['/sys/fs/cgroup/pids', ['pids']],
      ['/sys/fs/cgroup/systemd', ['name=systemd']],
    ],
    'one mount per hierarchy; mount options that are not controllers left out; cgroup2 is not one',
  );
  t.same(ownV1Cgroups(PROC_SELF_CGROUP).get('cpuacct'), '/');
  t.same(ownV1Cgroups(PROC_SELF_CGROUP).get('memory'), '/box/inner');
  t.end();
});

t.test("directories: runc's v1 rule", (t) => {
  const hs = v1Hierarchies(parseMountInfo(MOUNTINFO));
  const own = ownV1Cgroups(PROC_SELF_CGROUP);
  const dirs = (p: string | undefined) => v1Dirs(hs, p, 'c1', own).map((d) => d.dir);
  t.same(dirs('/docker/c1'), ['/sys/fs/cgroup/cpu,cpuacct/docker/c1', '/sys/fs/cgroup/memory/docker/c1', '/sys/fs/cgroup/pids/docker/c1', '/sys/fs/cgroup/systemd/docker/c1'], 'absolute: from the root of each hierarchy');
  t.same(dirs(undefined), ['/sys/fs/cgroup/cpu,cpuacct/c1', '/sys/fs/cgroup/memory/box/inner/c1', '/sys/fs/cgroup/pids/c1', '/sys/fs/cgroup/systemd/c1'], 'default: the id, under our own cgroup in each');
  t.same(dirs('pod/c1')[1], '/sys/fs/cgroup/memory/box/inner/pod/c1', 'relative: under our own cgroup');
  const nested = v1Dirs([{ mountPoint: '/host/pids', root: '/kubepods', controllers: ['pids'] }], 'x', 'c1', new Map([['pids', '/kubepods/pod1']]));
  t.same(nested[0]!.dir, '/host/pids/pod1/x', 'a mount of a sub-tree: our path relative to what it shows');
  t.end();
});

t.test("v1 files and values: runc's fs driver", (t) => {
  const files = (r: unknown) => planV1Writes(r).map((w) => `${w.file}=${w.value}`);
  t.same(files({ pids: { limit: 2048 } }), ['pids.max=2048']);
  t.same(files({ pids: { limit: -1 } }), ['pids.max=max'], 'negative: no limit');
  t.same(files({ pids: { limit: 0 } }), [], 'zero: unset');
  t.same(files({ memory: { limit: 64 << 20, reservation: 32 << 20, swappiness: 10, disableOOMKiller: true } }), [
    'memory.limit_in_bytes=67108864',
    'memory.soft_limit_in_bytes=33554432',
    'memory.oom_control=1',
    'memory.swappiness=10',
  ]);
  t.same(files({ memory: { limit: 64 << 20, swap: 128 << 20 } }), ['memory.memsw.limit_in_bytes=134217728', 'memory.limit_in_bytes=67108864'], 'memory+swap raised before memory');
  t.same(files({ memory: { limit: -1 } }), ['memory.memsw.limit_in_bytes=-1', 'memory.limit_in_bytes=-1'], '-1 alone lifts the swap limit too');
  t.same(files({ memory: { swappiness: -1 } }), [], 'swappiness -1: unset');
  t.throws(() => planV1Writes({ memory: { swappiness: 101 } }), /linux\.resources\.memory\.swappiness: must be between 0 and 100, got 101/);
  t.same(files({ cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0', mems: '0' } }), [
    'cpu.shares=512',
    'cpu.cfs_period_us=100000',
    'cpu.cfs_quota_us=50000',
    'cpuset.cpus=0',
    'cpuset.mems=0',
  ]);
  t.same(files({ cpu: { shares: 0 }, blockIO: { weight: 0 }, memory: { disableOOMKiller: false } }), [], "docker's zero values write nothing");
  t.same(files({ blockIO: { weight: 500, weightDevice: [{ major: 8, minor: 0, weight: 300 }], throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1000 }] } }), [
    'blkio.weight=500',
    'blkio.weight_device=8:0 300',
    'blkio.throttle.read_bps_device=8:0 1000',
  ]);
  t.same(files({ network: { classID: 42, priorities: [{ name: 'eth0', priority: 3 }] } }), ['net_cls.classid=42', 'net_prio.ifpriomap=eth0 3']);
  t.same(files({ hugepageLimits: [{ pageSize: '2MB', limit: 4194304 }] }), ['hugetlb.2MB.limit_in_bytes=4194304', 'hugetlb.2MB.rsvd.limit_in_bytes=4194304']);
  t.equal(planV1Writes({ pids: { limit: 5 } }, '')[0]!.path, 'pids.limit', 'update requests name their own fields');
  t.end();
});

t.test('the v2 plan keeps what v1 does not hold', (t) => {
  const plan = planResources({ pids: { limit: 10 }, memory: { limit: 1 << 20 }, hugepageLimits: [{ pageSize: '2MB', limit: 2097152 }], unified: { 'pids.max': '3' } });
  const rest = withoutV1(plan, ['pids', 'memory', 'cpu', 'cpuacct', 'blkio', 'name=systemd']);
  t.same(
    rest.writes.map((w) => w.file),
    ['hugetlb.2MB.max', 'hugetlb.2MB.rsvd.max', 'pids.max'],
    'hugetlb (in cgroup v2 here) and the verbatim unified key stay; pids and memory go to v1',
  );
  t.equal(withoutV1(plan, []), plan, 'a pure v2 host: unchanged');
  t.same(withoutV1(planResources({ blockIO: { weight: 100 } }), ['blkio']).writes, [], 'v2 "io" is v1 "blkio"');
  t.end();
});

t.test('applying to directories', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'tsrunc-v1-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const pids = join(root, 'pids');
  const mem = join(root, 'memory');
  mkdirSync(pids);
  mkdirSync(mem);
  for (const f of ['pids.max']) writeFileSync(join(pids, f), '');
  for (const f of ['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes']) writeFileSync(join(mem, f), '');
  const cgroups = [
    { dir: pids, controllers: ['pids'] },
    { dir: mem, controllers: ['memory'] },
  ];
  const n = applyV1Resources(cgroups, { pids: { limit: 7 }, memory: { limit: 1048576, swap: 2097152 }, cpu: { shares: 2 } });
  t.equal(n, 3, 'cpu is not among these hierarchies: nothing written for it');
  t.equal(readFileSync(join(pids, 'pids.max'), 'utf8'), '7');
  t.equal(readFileSync(join(mem, 'memory.limit_in_bytes'), 'utf8'), '1048576');
  t.equal(readFileSync(join(mem, 'memory.memsw.limit_in_bytes'), 'utf8'), '2097152');
  t.throws(
    () => applyV1Resources(cgroups, { memory: { reservation: 5 } }),
    new RegExp(`config\\.json: linux\\.resources\\.memory\\.reservation: write "5" to ${mem}/memory\\.soft_limit_in_bytes \\(cgroup v1\\): ENOENT`),
    'a missing file names the setting and the file',
  );
  t.end();
});
