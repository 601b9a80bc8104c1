// Hybrid cgroup hosts (v1 controllers and a cgroup2 mount, as here): like
// runc, a container gets a directory in every v1 hierarchy too, and the
// limits of controllers that v1 holds (pids, memory, cpu, ...) are written
// and enforced there. podman's default pids limit depends on it.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle.js';
import { cli, needsRoot } from '../helpers/cli.js';
import { leftovers, snapshot } from '../helpers/leftovers.js';
import { readMountInfo } from '../../src/linux/mountinfo.js';
import { cgroupLayout } from '../../src/runtime/cgroups/mode.js';
import { ownV1Cgroups, v1Dirs, v1Hierarchies } from '../../src/runtime/cgroups/v1.js';

const mounts = readMountInfo();
const hierarchies = v1Hierarchies(mounts);
const held = new Set(hierarchies.flatMap((h) => h.controllers));
const skip =
  needsRoot ||
  (cgroupLayout(mounts).mode !== 'hybrid'
    ? 'not a hybrid cgroup host (v1 controllers and a cgroup2 mount)'
    : !['pids', 'memory', 'cpu'].every((c) => held.has(c))
      ? 'the v1 pids, memory and cpu hierarchies are not all mounted'
      : false);

/** Where runc (and tsrunc) put the container in each v1 hierarchy. */
const dirsOf = (id: string, cgroupsPath?: string) => v1Dirs(hierarchies, cgroupsPath, id, ownV1Cgroups());
const dirOf = (id: string, controller: string, cgroupsPath?: string) => dirsOf(id, cgroupsPath).find((d) => d.controllers.includes(controller))!.dir;
const read = (dir: string, file: string) => readFileSync(join(dir, file), 'utf8').trim();
const v1Lines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l && !l.startsWith('0::'))
    .map((l) => l.replace(/^\d+:/, ''))
    .sort();

t.test('hybrid host: v1 hierarchies', { skip }, async (t) => {
  const tsrunc = cli();

  t.test("placement: a directory in each v1 hierarchy at runc's path, removed on delete", async (t) => {
    const id = 'hyb1';
    const cgroupsPath = '/tsrunc-hybrid-test/hyb1';
    const b = makeBundle(['sleep', '100'], (s) => (s.linux!.cgroupsPath = cgroupsPath));
    t.equal((await tsrunc.detached(['run', '-d', '-b', b.dir, id])).exitCode, 0);
    const { pid } = JSON.parse((await tsrunc(['state', id])).stdout) as { pid: number };
    const want = hierarchies.map((h) => `${h.controllers.join(',')}:${cgroupsPath}`).sort();
    t.same(v1Lines(readFileSync(`/proc/${pid}/cgroup`, 'utf8')), want, 'the init is in every v1 hierarchy');
    for (const d of dirsOf(id, cgroupsPath)) t.ok(existsSync(d.dir), d.dir);
    const ex = await tsrunc(['exec', id, 'cat', '/proc/self/cgroup']);
    t.equal(ex.exitCode, 0, ex.stderr);
    t.same(v1Lines(ex.stdout), want, 'an exec joins them too');
    t.equal((await tsrunc(['delete', '-f', id])).exitCode, 0);
    for (const d of dirsOf(id, cgroupsPath)) {
      t.notOk(existsSync(d.dir), `${d.dir} removed`);
      t.notOk(existsSync(join(d.dir, '..')), 'with the parent create made');
    }
  });

  t.test('a pids limit is enforced', async (t) => {
    const id = 'hyb2';
    const b = makeBundle(['sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do sleep 5 & echo $i; done 2>&1'], (s) => {
      s.linux!.resources = { ...s.linux!.resources, pids: { limit: 4 } };
    });
    const r = await tsrunc(['run', '-b', b.dir, id]);
    t.equal(r.exitCode, 2, 'busybox sh gives up on a failed fork');
    t.same(r.stdout.split('\n'), ['1', '2', '3', "sh: can't fork: Resource temporarily unavailable"], 'sh and three sleeps: the fourth fork fails');
  });

  t.test('memory and cpu limits, update, and the values runc writes', async (t) => {
    const id = 'hyb3';
    const b = makeBundle(['sleep', '100'], (s) => {
      s.linux!.resources = { ...s.linux!.resources, memory: { limit: 64 * 2 ** 20, reservation: 32 * 2 ** 20 }, cpu: { shares: 512, quota: 50000, period: 100000 }, pids: { limit: 100 } };
    });
    t.equal((await tsrunc.detached(['run', '-d', '-b', b.dir, id])).exitCode, 0);
    const mem = dirOf(id, 'memory');
    const cpu = dirOf(id, 'cpu');
    t.equal(read(mem, 'memory.limit_in_bytes'), String(64 * 2 ** 20));
    t.equal(read(mem, 'memory.soft_limit_in_bytes'), String(32 * 2 ** 20));
    t.equal(read(cpu, 'cpu.shares'), '512');
    t.equal(read(cpu, 'cpu.cfs_quota_us'), '50000');
    t.equal(read(dirOf(id, 'pids'), 'pids.max'), '100');
    const u = await tsrunc(['update', '--pids-limit', '9', '--memory', '128m', id]);
    t.equal(u.exitCode, 0, u.stderr);
    t.equal(read(dirOf(id, 'pids'), 'pids.max'), '9', 'update writes v1 too');
    t.equal(read(mem, 'memory.limit_in_bytes'), String(128 * 2 ** 20));
    t.equal((await tsrunc(['delete', '-f', id])).exitCode, 0);
  });

  t.test('a limit the kernel refuses: the setting named, nothing left behind', { skip: held.has('blkio') ? false : 'no v1 blkio hierarchy' }, async (t) => {
    const id = 'hyb4';
    const b = makeBundle(['true'], (s) => {
      s.linux!.resources = { ...s.linux!.resources, blockIO: { throttleReadBpsDevice: [{ major: 8, minor: 999, rate: 1000 }] } };
    });
    const before = snapshot(tsrunc.root);
    const r = await tsrunc(['run', '-b', b.dir, id]);
    t.equal(r.exitCode, 1);
    t.match(
      r.stderr.trim().split('\n').at(-1),
      /config\.json: linux\.resources\.blockIO\.throttleReadBpsDevice\[0\]: write "8:999 1000" to \S+\/blkio\.throttle\.read_bps_device \(cgroup v1\): ENODEV/,
    );
    t.same(leftovers(tsrunc.root, before, id), []);
    for (const d of dirsOf(id)) t.notOk(existsSync(d.dir), `${d.dir} removed`);
  });
});
