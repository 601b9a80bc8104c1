// The cgroup v2 manager without root: resources -> file writes with runc's
// conversions and errors, the device rules emulator and eBPF program (run by
// a small interpreter), update merging, stats from a fake cgroup directory,
// controller enabling, cgroupsPath checks, CLI value parsing.
import t from 'tap';
import { mkdtempSync, writeFileSync, readFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  planResources,
  applyResources,
  cpuSharesToWeight,
  blkioWeightToIoWeight,
  memorySwapToV2,
  parseIdList,
  formatIdList,
  type ResourcePlan,
} from '../../src/runtime/cgroups/resources.js';
import { DeviceEmulator, deviceFilterProgram, effectiveDeviceRules, simulateDeviceFilter, type DeviceRule } from '../../src/runtime/cgroups/devices.js';
import { mergeUpdate } from '../../src/runtime/cgroups/update.js';
import { readStats, toJson, oomKillCount } from '../../src/runtime/cgroups/stats.js';
import { enableControllers } from '../../src/runtime/cgroups/controllers.js';
import { checkCgroupsPath } from '../../src/runtime/cgroups/placement.js';
import { ramInBytes, resourcesFromFlags } from '../../src/cli/tsrunc/update.js';
import { parseDuration } from '../../src/cli/tsrunc/events.js';

const writes = (p: ResourcePlan) => p.writes.map((w) => `${w.file}=${w.value}`);

t.test('conversions are runc\'s', (t) => {
  t.equal(cpuSharesToWeight(0n), 0n, 'unset');
  t.equal(cpuSharesToWeight(2n), 1n);
  t.equal(cpuSharesToWeight(1024n), 100n, 'the default shares are the default weight');
  t.equal(cpuSharesToWeight(512n), 59n);
  t.equal(cpuSharesToWeight(262144n), 10000n);
  t.equal(blkioWeightToIoWeight(10n), 1n);
  t.equal(blkioWeightToIoWeight(1000n), 10000n);
  t.equal(blkioWeightToIoWeight(500n), 4950n);
  t.equal(memorySwapToV2(0n, 100n), 0n, 'swap unset');
  t.equal(memorySwapToV2(300n, 100n), 200n, 'swap is memory+swap in the spec');
  t.equal(memorySwapToV2(0n, -1n), -1n, 'unlimited memory, swap unset: unlimited swap');
  t.equal(memorySwapToV2(-1n, 100n), -1n);
  t.throws(() => memorySwapToV2(50n, 100n), /must be at least the memory limit/);
  t.throws(() => memorySwapToV2(50n, 0n), /without a memory limit/);
  t.end();
});

t.test('planResources: every resource to its files, in runc\'s order', (t) => {
  const p = planResources({
    memory: { limit: 100 * 2 ** 20, reservation: 50 * 2 ** 20, swap: 200 * 2 ** 20, kernel: 5 },
    cpu: { shares: 512, quota: 50000, period: 100000, burst: 1000, idle: 0, cpus: '0-1', mems: '0' },
    pids: { limit: 10 },
    blockIO: { weight: 500, weightDevice: [{ major: 8, minor: 0, weight: 300 }], throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }], throttleWriteIOPSDevice: [{ major: 8, minor: 16, rate: 100 }] },
    hugepageLimits: [{ pageSize: '2MB', limit: 4194304 }],
    rdma: { mlx5_1: { hcaHandles: 3, hcaObjects: 1000 } },
    unified: { 'memory.high': '90000000', 'cgroup.max.descendants': '5' },
  });
  t.same(writes(p), [
    'pids.max=10',
    'memory.swap.max=104857600',
    'memory.max=104857600',
    'memory.low=52428800',
    'io.bfq.weight=500',
    'io.bfq.weight=8:0 300',
    'io.max=8:0 rbps=1048576',
    'io.max=8:16 wiops=100',
    'cpu.idle=0',
    'cpu.weight=59',
    'cpu.max.burst=1000',
    'cpu.max=50000 100000',
    'cpuset.cpus=0-1',
    'cpuset.mems=0',
    'hugetlb.2MB.max=4194304',
    'hugetlb.2MB.rsvd.max=4194304',
    'rdma.max=mlx5_1 hca_handle=3 hca_object=1000',
    'memory.high=90000000',
    'cgroup.max.descendants=5',
  ]);
  t.equal(p.writes.find((w) => w.file === 'io.bfq.weight')!.ioWeightFallback, '4950', 'io.weight when there is no BFQ');
  t.equal(p.writes.find((w) => w.file === 'cgroup.max.descendants')!.controller, undefined, 'a core file needs no controller');
  t.equal(p.devices, undefined, 'no device rules unless asked');
  t.end();
});

t.test('planResources: runc\'s special values', (t) => {
  t.same(writes(planResources({ pids: { limit: 0 } })), ['pids.max=1'], 'pids 0 is 1, as in runc (systemd cannot say 0)');
  t.same(writes(planResources({ pids: { limit: -1 } })), ['pids.max=max']);
  t.same(writes(planResources({ memory: { limit: -1 } })), ['memory.swap.max=max', 'memory.max=max'], '-1: no limit, and no swap limit either');
  t.same(writes(planResources({ memory: { limit: 1000000, swap: 1000000 } })), ['memory.swap.max=0', 'memory.max=1000000'], 'memory+swap = memory: no swap');
  t.same(writes(planResources({ memory: { limit: 0, reservation: 0, swap: 0 } })), [], 'zeros are unset');
  t.same(writes(planResources({ cpu: { quota: -1 } })), ['cpu.max=max 100000']);
  t.same(writes(planResources({ cpu: { period: 50000 } })), ['cpu.max=max 50000']);
  t.same(writes(planResources({ cpu: { shares: 0, cpus: '', mems: '' } })), [], 'unset');
  t.same(writes(planResources({ blockIO: { weight: 0 } })), []);
  const d = planResources({ pids: { limit: -1 }, cpu: { shares: 1024, quota: -1 }, memory: { limit: -1 } });
  t.same(
    d.writes.filter((w) => !w.isDefault).map((w) => w.file),
    [],
    'the no-limit defaults are marked, so a host without the controller does not refuse them',
  );
  t.ok(planResources({ memory: { limit: -1 } }).writes.find((w) => w.file === 'memory.swap.max')!.missingOk, 'no swap accounting: fine for "max"');
  t.end();
});

t.test('planResources: bad input names the JSON path', (t) => {
  const bad: [unknown, RegExp][] = [
    ['x', /config\.json: linux\.resources: must be an object/],
    [{ memory: { limit: -5 } }, /linux\.resources\.memory\.limit: must be -1 \(no limit\), 0 \(unset\) or a number of bytes/],
    [{ memory: { limit: '1g' } }, /linux\.resources\.memory\.limit: must be an integer, got "1g"/],
    [{ memory: { swap: 100 } }, /linux\.resources\.memory\.swap: cannot set a swap limit without a memory limit/],
    [{ memory: { limit: 200, swap: 100 } }, /linux\.resources\.memory\.swap: memory\+swap limit \(100\) must be at least the memory limit \(200\)/],
    [{ cpu: { quota: 500 } }, /linux\.resources\.cpu\.quota: must be at least 1000 microseconds \(the kernel's minimum\), got 500/],
    [{ cpu: { quota: -2 } }, /linux\.resources\.cpu\.quota: must be -1/],
    [{ cpu: { period: 10 } }, /linux\.resources\.cpu\.period: must be between 1000 and 1000000/],
    [{ cpu: { shares: -1 } }, /linux\.resources\.cpu\.shares: must be at least 0, got -1/],
    [{ cpu: { idle: 2 } }, /linux\.resources\.cpu\.idle: must be 0 or 1/],
    [{ cpu: { realtimeRuntime: 1000 } }, /linux\.resources\.cpu\.realtimeRuntime: realtime CPU limits are not supported by cgroup v2/],
    [{ cpu: { cpus: 'a-b' } }, /linux\.resources\.cpu\.cpus: "a-b" is not a list like "0-3,6"/],
    [{ cpu: { cpus: '3-1' } }, /linux\.resources\.cpu\.cpus: "3-1" is not a list/],
    [{ blockIO: { weight: 5 } }, /linux\.resources\.blockIO\.weight: must be between 10 and 1000, got 5/],
    [{ blockIO: { throttleReadBpsDevice: [{ major: 8, rate: 1 }] } }, /linux\.resources\.blockIO\.throttleReadBpsDevice\[0\]\.minor: is required/],
    [{ hugepageLimits: [{ pageSize: '2M', limit: 1 }] }, /linux\.resources\.hugepageLimits\[0\]\.pageSize: "2M" is not a page size/],
    [{ unified: { 'foo.bar': '1' } }, /linux\.resources\.unified\["foo\.bar"\]: unknown cgroup controller "foo" in "foo\.bar"/],
    [{ unified: { memory: '1' } }, /linux\.resources\.unified\.memory: "memory" is not a cgroup file name of the form CONTROLLER\.PARAMETER/],
    [{ unified: { '../memory.max': '1' } }, /must be a file name, without slashes/],
    [{ unified: { 'cgroup.procs': '1' } }, /"cgroup\.procs" cannot be set through linux\.resources\.unified/],
    [{ unified: { 'memory.max': 5 } }, /linux\.resources\.unified\["memory\.max"\]: must be a string/],
    [{ devices: [{ allow: false, type: 'x', access: 'rwm' }] }, /linux\.resources\.devices\[0\]\.type: unknown device type "x" \(want a, b or c\)/],
    [{ devices: [{ allow: true, type: 'c', access: 'rwx' }] }, /linux\.resources\.devices\[0\]\.access: must be a non-empty combination of r, w and m, got "rwx"/],
    [{ devices: [{ type: 'c' }] }, /linux\.resources\.devices\[0\]\.allow: is required/],
    [{ devices: [{ allow: true, type: 'c', major: -2 }] }, /linux\.resources\.devices\[0\]\.major: must be a device number/],
  ];
  for (const [json, re] of bad) t.throws(() => planResources(json, { devices: true }), re, JSON.stringify(json));
  t.throws(() => planResources({ pids: { limit: 1.5 } }, { file: 'r.json', base: '' }), /^r\.json: pids\.limit: must be an integer/, 'update -r: the file and a path relative to it');
  t.end();
});

const rule = (type: 'a' | 'b' | 'c', major: number, minor: number, access: string, allow: boolean): DeviceRule => ({ type, major, minor, access, allow });

t.test('device rules: runc\'s defaults, the v1 emulator, the eBPF program', (t) => {
  const rules = effectiveDeviceRules([rule('a', -1, -1, 'rwm', false), rule('c', 1, 11, 'w', true), rule('b', 8, 0, 'r', true)], []);
  const prog = deviceFilterProgram(rules);
  const allowed = (type: 'b' | 'c', maj: number, min: number, acc: string) => simulateDeviceFilter(prog, type, maj, min, acc);
  t.ok(allowed('c', 1, 3, 'r') && allowed('c', 1, 3, 'w'), '/dev/null: a default rule');
  t.ok(allowed('c', 136, 7, 'w'), '/dev/pts/*');
  t.ok(allowed('c', 250, 1, 'm'), 'mknod of any char device (runc\'s default)');
  t.notOk(allowed('c', 250, 1, 'r'), 'but not opening it');
  t.ok(allowed('c', 1, 11, 'w'), 'allowed for writing');
  t.notOk(allowed('c', 1, 11, 'r'), 'not for reading');
  t.ok(allowed('b', 8, 0, 'r'));
  t.notOk(allowed('b', 8, 0, 'w'));
  t.notOk(allowed('b', 8, 1, 'r'), 'another block device');
  t.notOk(allowed('c', 1, 1, 'r'), '/dev/mem: denied');

  const spec = effectiveDeviceRules([], ['/dev/null']);
  t.notOk(spec.some((r) => r.major === 1 && r.minor === 3), 'a default rule for a path the spec defines itself is dropped (runc)');

  // An allow-all spec: a blacklist with the deny exceptions
  const black = deviceFilterProgram([rule('a', -1, -1, 'rwm', true), rule('c', 1, 1, 'rwm', false)]);
  t.notOk(simulateDeviceFilter(black, 'c', 1, 1, 'r'));
  t.ok(simulateDeviceFilter(black, 'c', 1, 2, 'r'));

  const emu = new DeviceEmulator();
  emu.apply(rule('a', -1, -1, 'rwm', false));
  emu.apply(rule('c', 1, 3, 'rw', true));
  emu.apply(rule('c', 1, 3, 'm', true));
  emu.apply(rule('c', 1, 5, 'rwm', true));
  emu.apply(rule('c', 1, 5, 'w', false));
  t.same(emu.exceptions(), [rule('c', 1, 3, 'rwm', true), rule('c', 1, 5, 'rm', true)], 'exceptions merge and shrink');
  emu.apply(rule('c', -1, -1, 'r', true));
  t.throws(() => emu.apply(rule('c', 4, 2, 'r', false)), /would punch a hole into the wildcard rule "allow c \*:\* r"/, 'v1 cannot express holes in wildcards');
  t.throws(() => planResources({ devices: [{ allow: true, type: 'c', access: 'r' }, { allow: false, type: 'c', major: 4, minor: 2, access: 'r' }] }, { devices: true }), /linux\.resources\.devices: the rule/);

  // The encoding: 8 bytes each, ending in exit
  t.equal(prog.length % 8, 0);
  t.equal(prog.readUInt8(prog.length - 8), 0x95, 'ends with exit');
  t.end();
});

t.test('update: merged as runc merges', (t) => {
  const old = { memory: { limit: 100, swap: 300 }, cpu: { shares: 1024, quota: 20000, period: 100000, cpus: '0' }, pids: { limit: 50 }, unified: { 'memory.high': '80' }, devices: [{ allow: false, access: 'rwm' }] };
  let m = mergeUpdate(old, { memory: { limit: 200 } });
  t.same(m.write['memory'], { limit: 200, swap: 300 }, 'memory is rewritten as a whole: swap is recomputed against the new limit');
  t.same(m.write['cpu'], { shares: 1024 }, 'shares rewritten; quota/period untouched; cpuset only when asked');
  t.equal(m.write['pids'], undefined, 'pids only when asked');
  t.equal(m.write['unified'], undefined);
  t.same(m.store['cpu'], old.cpu, 'the stored cpu keeps its values');
  t.same((m.store['memory'] as Record<string, unknown>)['limit'], 200);
  t.same(m.store['devices'], old.devices, 'device rules are kept');
  m = mergeUpdate(old, { cpu: { quota: 50000 } });
  t.same(m.write['cpu'], { shares: 1024, period: 100000, quota: 50000 }, 'a quota alone keeps the period');
  m = mergeUpdate(old, { cpu: { period: 200000 } });
  t.same(m.write['cpu'], { shares: 1024, period: 200000, quota: 20000 }, 'a period alone keeps the quota');
  m = mergeUpdate(old, { memory: { limit: -1 } });
  t.same(m.write['memory'], { limit: -1, swap: 0 }, '"memory -1" alone lifts the swap limit too');
  m = mergeUpdate(old, { cpu: { idle: 1 } });
  t.same(m.write['cpu'], { shares: 0, idle: 1 }, 'idle alone: no cpu.weight write (the kernel refuses it then)');
  m = mergeUpdate({ blockIO: { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1 }] } }, { blockIO: { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 5 }, { major: 8, minor: 16, rate: 7 }] } });
  t.same((m.write['blockIO'] as Record<string, unknown>)['throttleReadBpsDevice'], [{ major: 8, minor: 0, rate: 5 }, { major: 8, minor: 16, rate: 7 }], 'throttle devices upserted');
  m = mergeUpdate(old, { pids: { limit: 10 }, unified: { 'memory.high': '90' } });
  t.same(m.write['pids'], { limit: 10 });
  t.same(m.store['unified'], { 'memory.high': '90' });
  t.end();
});

t.test('update flags', (t) => {
  t.equal(ramInBytes('512m'), 512 * 2 ** 20);
  t.equal(ramInBytes('1.5g'), 1.5 * 2 ** 30);
  t.equal(ramInBytes('100KiB'), 102400);
  t.equal(ramInBytes('2048'), 2048);
  t.equal(ramInBytes('10 MB'), 10 * 2 ** 20);
  t.equal(ramInBytes('abc'), undefined);
  t.equal(ramInBytes('-5'), undefined);
  const warnings: string[] = [];
  const r = resourcesFromFlags({ memory: '1g', memorySwap: '-1', pidsLimit: '0', cpuShare: '512', cpuQuota: '-1', cpusetCpus: '0', blkioWeight: '0', kernelMemory: '1m' }, (m) => warnings.push(m));
  t.same(r, { memory: { limit: 2 ** 30, swap: -1 }, cpu: { cpus: '0', shares: 512, quota: -1 }, blockIO: {}, pids: { limit: 0 } });
  t.match(warnings, [/Kernel memory settings are ignored/]);
  t.throws(() => resourcesFromFlags({ cpuPeriod: '-5' }, () => {}), /invalid value for --cpu-period: "-5" is not a non-negative integer/);
  t.throws(() => resourcesFromFlags({ memory: '12q' }, () => {}), /invalid value for --memory: "12q"/);
  t.throws(() => resourcesFromFlags({ l3CacheSchema: 'L3:0=f' }, () => {}), /Intel RDT is not supported/);
  t.end();
});

t.test('events --interval takes Go durations', (t) => {
  t.equal(parseDuration('5s'), 5000);
  t.equal(parseDuration('250ms'), 250);
  t.equal(parseDuration('1m30s'), 90000);
  t.equal(parseDuration('1.5s'), 1500);
  t.equal(parseDuration('0'), 0);
  t.ok(Number.isNaN(parseDuration('5')));
  t.ok(Number.isNaN(parseDuration('5x')));
  t.ok(Number.isNaN(parseDuration('')));
  t.end();
});

function fakeCgroup(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsrunc-cg-'));
  for (const [f, v] of Object.entries(files)) writeFileSync(join(dir, f), v);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('stats: runc\'s shape from the cgroup v2 files', (t) => {
  const dir = fakeCgroup({
    'cgroup.procs': '1\n2\n',
    'cpu.stat': 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 4\nthrottled_usec 250\n',
    'cpu.pressure': 'some avg10=1.50 avg60=0.00 avg300=0.00 total=77\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n',
    'memory.stat': 'file 4096\nanon 8192\nzswap 0\n',
    'memory.current': '12288\n',
    'memory.max': 'max\n',
    'memory.peak': '20000\n',
    'memory.swap.current': '0\n',
    'memory.swap.max': 'max\n',
    'memory.events': 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n',
    'pids.current': '2\n',
    'pids.max': '10\n',
    'io.stat': '8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n',
    'hugetlb.2MB.current': '0\n',
    'hugetlb.2MB.events': 'max 1\n',
  });
  const s = readStats(dir);
  const json = toJson({ type: 'stats', id: 'c1', data: s });
  t.equal(
    json,
    '{"type":"stats","id":"c1","data":{' +
      '"cpu":{"usage":{"total":1500000,"kernel":500000,"user":1000000},"throttling":{"periods":10,"throttledPeriods":4,"throttledTime":250000},"psi":{"some":{"avg10":1.5,"avg60":0,"avg300":0,"total":77}}},' +
      '"cpuset":{"cpu_exclusive":0,"mem_hardwall":0,"mem_exclusive":0,"memory_migrate":0,"memory_spread_page":0,"memory_spread_slab":0,"memory_pressure":0,"sched_load_balance":0,"sched_relax_domain_level":0},' +
      '"memory":{"cache":4096,"usage":{"limit":18446744073709551615,"usage":12288,"max":20000,"failcnt":0},"swap":{"limit":18446744073709551615,"usage":12288,"failcnt":0},"raw":{"anon":8192,"file":4096,"zswap":0}},' +
      '"pids":{"current":2,"limit":10},' +
      '"blkio":{"ioServiceBytesRecursive":[{"major":8,"op":"Read","value":4096},{"major":8,"op":"Write"}],"ioServicedRecursive":[{"major":8,"op":"Read","value":1},{"major":8,"op":"Write"}]},' +
      '"hugetlb":{"2MB":{"failcnt":1}},"intel_rdt":{},"network_interfaces":null}}',
    'field names, omissions and 2^64-1 for "max" as runc prints them',
  );
  t.equal(oomKillCount(dir), 2n);

  const bare = fakeCgroup({ 'cgroup.procs': '5\n', 'cpu.stat': 'usage_usec 0\nuser_usec 0\nsystem_usec 0\n' });
  const b = readStats(bare);
  t.same(JSON.parse(toJson(b.pids)), { current: 1 }, 'no pids controller: counted from cgroup.procs');
  t.same(JSON.parse(toJson(b.memory)), {}, 'no memory controller: nothing');
  t.same(JSON.parse(toJson(b.cpu)), {}, 'all zero: omitted');
  t.equal(oomKillCount(bare), undefined);
  t.end();
});

t.test('applyResources: controllers, defaults, host checks (on a fake cgroup)', (t) => {
  const dir = fakeCgroup({ 'cgroup.controllers': 'cpu memory\n', 'memory.max': 'max\n', 'memory.swap.max': 'max\n', 'cpu.max': 'max 100000\n', 'pids.max': '' });
  applyResources(dir, planResources({ memory: { limit: 1000000 }, cpu: { quota: 20000 } }));
  t.equal(readFileSync(join(dir, 'memory.max'), 'utf8'), '1000000');
  t.equal(readFileSync(join(dir, 'cpu.max'), 'utf8'), '20000 100000');
  applyResources(dir, planResources({ pids: { limit: -1 } }));
  t.pass('pids.limit -1 without the pids controller: nothing to do');
  t.throws(
    () => applyResources(dir, planResources({ pids: { limit: 5 } })),
    new RegExp(`^config\\.json: linux\\.resources\\.pids\\.limit: cgroup controller "pids" is not available in ${dir} \\(cgroup\\.controllers has: cpu memory\\), needed to write pids\\.max$`),
  );
  t.throws(() => applyResources(dir, planResources({ cpu: { cpus: '0-65000' } })), /linux\.resources\.cpu\.cpus: cpus \d+-65000 of "0-65000" are not on this host \(it has cpus [\d,-]+\)/);
  t.throws(() => applyResources(dir, planResources({ unified: { 'memory.bogus': '1' } })), /linux\.resources\.unified\["memory\.bogus"\]: unknown cgroup file "memory\.bogus"/);
  t.throws(() => applyResources(dir, planResources({ hugepageLimits: [{ pageSize: '2MB', limit: 0 }] })), /cgroup controller "hugetlb" is not available/);
  t.end();
});

t.test('enableControllers: every ancestor offers its controllers to the next', (t) => {
  const root = fakeCgroup({ 'cgroup.controllers': 'cpu memory pids\n', 'cgroup.subtree_control': '' });
  mkdirSync(join(root, 'a/b'), { recursive: true });
  writeFileSync(join(root, 'a/cgroup.controllers'), 'cpu memory pids\n');
  writeFileSync(join(root, 'a/cgroup.subtree_control'), 'cpu\n');
  enableControllers(root, join(root, 'a/b'));
  t.equal(readFileSync(join(root, 'cgroup.subtree_control'), 'utf8'), '+cpu +memory +pids');
  t.equal(readFileSync(join(root, 'a/cgroup.subtree_control'), 'utf8'), '+memory +pids', 'only what is missing');
  t.end();
});

t.test('cgroupsPath: no climbing, not the root', (t) => {
  for (const p of [undefined, '', '/a/b', 'a/b', 'machine.slice/c1', '/a..b']) t.doesNotThrow(() => checkCgroupsPath(p), String(p));
  t.throws(() => checkCgroupsPath('../x'), /^config\.json: linux\.cgroupsPath: "\.\.\/x": must not contain "\.\."/);
  t.throws(() => checkCgroupsPath('/a/../../etc'), /must not contain "\.\."/);
  t.throws(() => checkCgroupsPath('/'), /names the root of the cgroup hierarchy/);
  t.throws(() => checkCgroupsPath('./'), /names the root/);
  t.end();
});

t.test('id lists', (t) => {
  t.same(parseIdList('0-2,5'), [0, 1, 2, 5]);
  t.equal(parseIdList('1-'), undefined);
  t.equal(formatIdList([5, 0, 1, 2, 7]), '0-2,5,7');
  t.end();
});
