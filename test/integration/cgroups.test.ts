// The cgroup v2 manager on this host's cgroup2 mount (on the hybrid hosts
// here: /sys/fs/cgroup/unified, with no resource controllers): placement,
// sharing, pause/resume, kill --all, stats, device rules, removal, and the
// clear errors for limits the host cannot enforce. Limits themselves are
// proven in the VM lane (test/vm).
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { makeBundle } from '../helpers/bundle.js';
import { cli, needsRoot, waitFor } from '../helpers/cli.js';
import { snapshot, leftovers } from '../helpers/leftovers.js';
import { readMountInfo } from '../../src/linux/mountinfo.js';
import { cgroupLayout } from '../../src/runtime/cgroups/mode.js';
import { cgroupDirFor, ownCgroupV2 } from '../../src/runtime/cgroups/placement.js';
import { v1Hierarchies } from '../../src/runtime/cgroups/v1.js';
import type { Spec } from '../../src/oci/spec.js';

const mount = cgroupLayout(readMountInfo()).unifiedMount;
const skip = needsRoot || (mount ? false : 'this host has no cgroup2 mount');
const controllers = mount ? readFileSync(join(mount, 'cgroup.controllers'), 'utf8').split(/\s+/).filter(Boolean) : [];
// On a hybrid host the controllers of v1 hierarchies limit there (test/integration/hybrid-cgroups.test.ts).
const inV1 = new Set(v1Hierarchies(readMountInfo()).flatMap((h) => h.controllers));
const unavailable = (c: string) => !controllers.includes(c) && !inV1.has(c);
const dirOf = (id: string, cgroupsPath?: string) => cgroupDirFor(mount!, cgroupsPath, id, ownCgroupV2());
const read = (dir: string, file: string) => readFileSync(join(dir, file), 'utf8');
const usage = (dir: string) => Number(/^usage_usec (\d+)$/m.exec(read(dir, 'cpu.stat'))?.[1]);
const state = async (tsrunc: ReturnType<typeof cli>, id: string) => JSON.parse((await tsrunc(['state', id])).stdout) as { status: string; pid: number };
const noPidNs = (s: Spec) => (s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'pid'));

t.test('cgroups on this host', { skip }, async (t) => {
  const tsrunc = cli();

  t.test('placement: born in its own cgroup, removed on delete', async (t) => {
    const id = 'cghost1';
    const b = makeBundle(['sh', '-c', 'cat /proc/self/cgroup; sleep 100']);
    t.equal((await tsrunc.detached(['run', '-d', '-b', b.dir, id])).exitCode, 0);
    const dir = dirOf(id);
    const { pid } = await state(tsrunc, id);
    t.same(read(dir, 'cgroup.procs').trim().split('\n').map(Number), [pid], 'the init, and only it, is in the cgroup');
    t.match(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), new RegExp(`^0::/${relative(mount!, dir)}$`, 'm'));
    t.equal((await tsrunc(['delete', '-f', id])).exitCode, 0);
    t.notOk(existsSync(dir), 'removed on delete');
  });

  t.test('cgroupsPath: absolute from the mount, relative from our own parent; made parents removed too', async (t) => {
    for (const [id, path, top] of [
      ['cghost2', '/cgtest-abs/a/cghost2', '/cgtest-abs'],
      ['cghost3', 'cgtest-rel/cghost3', undefined],
    ] as const) {
      const b = makeBundle(['sleep', '100'], (s) => (s.linux!.cgroupsPath = path));
      t.equal((await tsrunc.detached(['run', '-d', '-b', b.dir, id])).exitCode, 0);
      const dir = dirOf(id, path);
      t.ok(path.startsWith('/') ? dir === join(mount!, path) : dir === join(mount!, posix.dirname(ownCgroupV2()), path), `${path} -> ${dir}`);
      t.equal(read(dir, 'cgroup.procs').trim(), String((await state(tsrunc, id)).pid));
      t.equal((await tsrunc(['delete', '-f', id])).exitCode, 0);
      t.notOk(existsSync(dir), 'removed');
      if (top) t.notOk(existsSync(join(mount!, top)), 'with the parents it made');
    }
  });

  t.test('an existing cgroup with processes is refused; one shared through a joined pid namespace is not', async (t) => {
    const busy = join(mount!, 'cgtest-busy');
    mkdirSync(busy, { recursive: true });
    const sleeper = spawn('sleep', ['100'], { stdio: 'ignore' });
    const exited = new Promise((r) => sleeper.once('exit', r));
    t.teardown(async () => {
      sleeper.kill('SIGKILL');
      await exited;
      await waitFor(() => {
        try {
          rmdirSync(busy);
          return true;
        } catch {
          return false; // the kernel is still taking the sleeper out
        }
      });
    });
    writeFileSync(join(busy, 'cgroup.procs'), String(sleeper.pid));
    const b = makeBundle(['true'], (s) => (s.linux!.cgroupsPath = '/cgtest-busy'));
    const before = snapshot(tsrunc.root);
    const r = await tsrunc(['run', '-b', b.dir, 'cghost4']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr.trim().split('\n').at(-1), /^tsrunc: run cghost4: cgroup \S+\/cgtest-busy is not empty: 1 process\(es\) found in it/);
    t.same(snapshot(tsrunc.root), before, 'nothing left behind');
    t.ok(existsSync(busy), 'the existing cgroup is not touched');

    // A sidecar joining the first container's pid namespace lives in its cgroup.
    const a = makeBundle(['sleep', '100']);
    t.equal((await tsrunc.detached(['run', '-d', '-b', a.dir, 'cghost5'])).exitCode, 0);
    const aPid = (await state(tsrunc, 'cghost5')).pid;
    const shared = `/${relative(mount!, dirOf('cghost5'))}`;
    const side = makeBundle(['sleep', '100'], (s) => {
      s.linux!.namespaces = s.linux!.namespaces!.map((n) => (n.type === 'pid' ? { type: 'pid', path: `/proc/${aPid}/ns/pid` } : n));
      s.linux!.cgroupsPath = shared;
    });
    const rs = await tsrunc.detached(['run', '-d', '-b', side.dir, 'cghost6']);
    t.equal(rs.exitCode, 0, rs.stderr);
    t.equal(read(dirOf('cghost5'), 'cgroup.procs').trim().split('\n').length, 2, 'both in one cgroup');
    t.equal((await tsrunc(['delete', '-f', 'cghost6'])).exitCode, 0);
    t.equal((await state(tsrunc, 'cghost5')).status, 'running', 'deleting the sidecar leaves the other container alone');
    t.ok(existsSync(dirOf('cghost5')), 'and its cgroup');
    t.equal((await tsrunc(['delete', '-f', 'cghost5'])).exitCode, 0);
    t.notOk(existsSync(dirOf('cghost5')));
  });

  t.test('pause and resume through cgroup.freeze', async (t) => {
    const id = 'cghost7';
    const b = makeBundle(['sh', '-c', 'while :; do :; done']);
    t.equal((await tsrunc.detached(['run', '-d', '-b', b.dir, id])).exitCode, 0);
    const dir = dirOf(id);
    t.equal((await tsrunc(['pause', id])).exitCode, 0);
    t.equal((await state(tsrunc, id)).status, 'paused');
    t.match(read(dir, 'cgroup.events'), /^frozen 1$/m);
    const u = usage(dir);
    await new Promise((r) => setTimeout(r, 300));
    t.equal(usage(dir), u, 'frozen: no cpu used');
    const again = await tsrunc(['pause', id]);
    t.equal(again.exitCode, 1);
    t.match(again.stderr, /container cghost7 is paused: only a running or created container can be paused/);
    t.equal((await tsrunc(['resume', id])).exitCode, 0);
    t.equal((await state(tsrunc, id)).status, 'running');
    t.ok(await waitFor(() => usage(dir) > u), 'running again');
    const r = await tsrunc(['resume', id]);
    t.match(r.stderr, /container cghost7 is not paused \(it is running\)/);
    await tsrunc(['pause', id]);
    t.equal((await tsrunc(['delete', '-f', id])).exitCode, 0, 'a paused container can be deleted with -f');
    t.notOk(existsSync(dir));
  });

  t.test('kill --all: every process, through cgroup.kill for KILL', async (t) => {
    for (const [id, sig] of [
      ['cghost8', 'KILL'],
      ['cghost9', 'TERM'],
    ] as const) {
      // no pid namespace: the children would outlive the init
      const b = makeBundle(['sh', '-c', 'sleep 100 & sleep 100 & wait'], noPidNs);
      t.equal((await tsrunc.detached(['run', '-d', '-b', b.dir, id])).exitCode, 0);
      const dir = dirOf(id);
      t.ok(await waitFor(() => read(dir, 'cgroup.procs').trim().split('\n').length === 3), 'sh and two sleeps');
      t.equal((await tsrunc(['kill', '--all', id, sig])).exitCode, 0);
      t.ok(await waitFor(() => /^populated 0$/m.test(read(dir, 'cgroup.events'))), `${sig}: none left`);
      t.equal((await tsrunc(['delete', id])).exitCode, 0);
      t.notOk(existsSync(dir));
    }
  });

  t.test('device rules: an eBPF filter on the cgroup', async (t) => {
    const b = makeBundle(['sh', '-c', 'echo x > /dev/kmsg && echo write-ok; head -c 1 /dev/kmsg > /dev/null || echo read-denied; echo y > /dev/null && echo null-ok; echo z > /dev/loop-control || echo loop-denied'], (s) => {
      s.linux!.devices = [
        { type: 'c', path: '/dev/kmsg', major: 1, minor: 11, fileMode: 0o666 },
        { type: 'c', path: '/dev/loop-control', major: 10, minor: 237, fileMode: 0o666 },
      ];
      s.linux!.resources = { devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 11, access: 'w' }] };
    });
    const r = await tsrunc(['run', '-b', b.dir, 'cghost10']);
    t.equal(r.exitCode, 0, r.stderr);
    t.same(r.stdout.split('\n'), ['write-ok', 'read-denied', 'null-ok', 'loop-denied']);
    t.match(r.stderr, /\/dev\/kmsg: Operation not permitted/);
    t.match(r.stderr, /can't create \/dev\/loop-control: Operation not permitted/);
  });

  t.test('events --stats, update: what this host has works, the rest fails clearly', async (t) => {
    const id = 'cghost11';
    const b = makeBundle(['sleep', '100'], (s) => {
      // no-limit values need no controller
      s.linux!.resources = { ...s.linux!.resources, memory: { limit: -1 }, pids: { limit: -1 }, cpu: { shares: 1024, quota: -1 } };
    });
    const c = await tsrunc.detached(['run', '-d', '-b', b.dir, id]);
    t.equal(c.exitCode, 0, c.stderr);
    const r = await tsrunc(['events', '--stats', id]);
    t.equal(r.exitCode, 0, r.stderr);
    const e = JSON.parse(r.stdout) as { type: string; id: string; data: { pids: { current: number }; cpuset: object; hugetlb: object; network_interfaces: null } };
    t.equal(e.type, 'stats');
    t.equal(e.id, id);
    t.equal(e.data.pids.current, 1);
    t.equal(e.data.network_interfaces, null);
    if (controllers.includes('hugetlb')) t.ok(Object.keys(e.data.hugetlb).length > 0, 'hugetlb stats where hugetlb is offered');

    t.equal((await tsrunc(['update', '--pids-limit', '-1', id])).exitCode, 0, 'no limit: nothing to refuse');
    if (unavailable('pids')) {
      const u = await tsrunc(['update', '--pids-limit', '5', id]);
      t.equal(u.exitCode, 1);
      t.match(u.stderr, new RegExp(`--pids-limit: cgroup controller "pids" is not available in ${dirOf(id)} \\(cgroup\\.controllers has: [^)]*\\), needed to write pids\\.max`));
    }
    const bad = await tsrunc(['update', '--cpu-quota', '500', id]);
    t.match(bad.stderr, /--cpu-quota: must be at least 1000 microseconds/);
    const junk = await tsrunc(['update', '--memory', 'lots', id]);
    t.match(junk.stderr, /invalid value for --memory: "lots"/);
    t.equal((await tsrunc(['delete', '-f', id])).exitCode, 0);
    const gone = await tsrunc(['events', '--stats', id]);
    t.match(gone.stderr, /container "cghost11" does not exist/);
  });

  t.test('events: stats every interval, until the container has no process left', async (t) => {
    const id = 'cghost13';
    const b = makeBundle(['sleep', '1']);
    t.equal((await tsrunc.detached(['run', '-d', '-b', b.dir, id])).exitCode, 0);
    const r = await tsrunc(['events', '--interval', '200ms', id]);
    t.equal(r.exitCode, 0, r.stderr);
    const lines = r.stdout.split('\n').map((l) => JSON.parse(l) as { type: string; id: string; data: { pids: object } });
    t.ok(lines.length >= 2, `stats lines while it ran (${lines.length})`);
    t.ok(lines.every((l) => l.type === 'stats' && l.id === id && typeof l.data.pids === 'object'));
    t.equal((await tsrunc(['delete', id])).exitCode, 0);
  });

  t.test('pause, resume, events, update of a stopped container', async (t) => {
    const b = makeBundle(['true']);
    t.equal((await tsrunc(['run', '--keep', '-b', b.dir, 'cghost12'])).exitCode, 0);
    for (const [args, re] of [
      [['pause', 'cghost12'], /container cghost12 is stopped/],
      [['resume', 'cghost12'], /is not paused \(it is stopped\)/],
      [['events', '--stats', 'cghost12'], /container with id cghost12 is not running/],
      [['update', '--pids-limit', '5', 'cghost12'], /container cghost12 is not running/],
      [['events', '--interval', '0s', 'cghost12'], /duration interval must be greater than 0/],
    ] as const) {
      const r = await tsrunc([...args]);
      t.equal(r.exitCode, 1, args.join(' '));
      t.match(r.stderr, re);
    }
    t.equal((await tsrunc(['delete', 'cghost12'])).exitCode, 0);
  });

  const cpus = readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
  const bad: [string, (s: Spec) => void, RegExp][] = [
    ['cgroupsPath with ..', (s) => (s.linux!.cgroupsPath = '../escape'), /config\.json: linux\.cgroupsPath: "\.\.\/escape": must not contain "\.\."/],
    ['cgroupsPath climbing inside', (s) => (s.linux!.cgroupsPath = '/a/../../b'), /config\.json: linux\.cgroupsPath: "\/a\/\.\.\/\.\.\/b": must not contain "\.\."/],
    ['cgroupsPath of the root', (s) => (s.linux!.cgroupsPath = '/'), /linux\.cgroupsPath: "\/": names the root of the cgroup hierarchy/],
    ['cpu quota below the kernel minimum', (s) => (s.linux!.resources = { cpu: { quota: 500 } }), /config\.json: linux\.resources\.cpu\.quota: must be at least 1000 microseconds/],
    ['zero cpu period is the default, a tiny one is refused', (s) => (s.linux!.resources = { cpu: { period: 10 } }), /linux\.resources\.cpu\.period: must be between 1000 and 1000000/],
    ['negative memory', (s) => (s.linux!.resources = { memory: { limit: -5 } }), /config\.json: linux\.resources\.memory\.limit: must be -1 \(no limit\), 0 \(unset\) or a number of bytes/],
    ['unknown unified key', (s) => (s.linux!.resources = { unified: { 'foo.bar': '1' } }), /config\.json: linux\.resources\.unified\["foo\.bar"\]: unknown cgroup controller "foo"/],
    ['cpuset outside the host', (s) => (s.linux!.resources = { cpu: { cpus: '0-4000' } }), new RegExp(`config\\.json: linux\\.resources\\.cpu\\.cpus: cpus \\S+ of "0-4000" are not on this host \\(it has cpus ${cpus}\\)`)],
    ['device rule of an unknown type', (s) => (s.linux!.resources = { devices: [{ allow: true, type: 'x' as 'c', access: 'rwm' }] }), /config\.json: linux\.resources\.devices\[0\]\.type: unknown device type "x" \(want a, b or c\)/],
  ];
  if (unavailable('memory')) {
    bad.push([
      'a memory limit where the host has no memory controller',
      (s) => (s.linux!.resources = { memory: { limit: 64 * 2 ** 20 } }),
      /config\.json: linux\.resources\.memory\.limit: cgroup controller "memory" is not available in \S+ \(cgroup\.controllers has: [^)]*\), needed to write memory\.max$/,
    ]);
  }
  let n = 0;
  for (const [name, mutate, re] of bad) {
    t.test(`bad input: ${name}`, async (t) => {
      const id = `cgbad${n++}`;
      const b = makeBundle(['true'], mutate);
      for (const verb of ['create', 'run'] as const) {
        const before = snapshot(tsrunc.root);
        const r = verb === 'create' ? await tsrunc.detached(['create', '-b', b.dir, id]) : await tsrunc(['run', '-b', b.dir, id]);
        t.equal(r.exitCode, 1, `${verb} fails`);
        t.match(r.stderr.trim().split('\n').at(-1), re, `${verb}: the last line says what, where and why`);
        t.same(leftovers(tsrunc.root, before, id), [], `${verb}: nothing left behind`);
      }
    });
  }
});
