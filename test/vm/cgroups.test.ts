// cgroup v2 limits that only a pure cgroup v2 kernel enforces: run in the VM
// lane (test/vm/run.sh boots one with every controller). Elsewhere they skip.
// Each test proves a limit by its effect (an OOM kill, a failed fork,
// throttled periods, EPERM on a device), not by reading back what was written.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle.js';
import { cli, isRoot, waitFor, TSRUNC } from '../helpers/cli.js';
import { snapshot, leftovers } from '../helpers/leftovers.js';
import { readMountInfo } from '../../src/linux/mountinfo.js';
import { cgroupLayout } from '../../src/runtime/cgroups/mode.js';

const CG = '/sys/fs/cgroup';
const NEEDED = ['cpu', 'memory', 'pids', 'cpuset'];

function whySkip(): string | false {
  if (!isRoot) return 'needs root';
  const layout = cgroupLayout(readMountInfo());
  if (layout.mode !== 'unified' || layout.unifiedMount !== CG) return `needs a pure cgroup v2 host (this one is ${layout.mode}); run them with npm run test:vm`;
  const have = readFileSync(join(CG, 'cgroup.subtree_control'), 'utf8').split(/\s+/);
  const missing = NEEDED.filter((c) => !have.includes(c));
  return missing.length ? `needs the ${missing.join(', ')} controllers enabled at ${CG}` : false;
}

// Code runs 10-80x slower under TCG: generous waits.
const SLOW = 90_000;
const read = (id: string, file: string) => readFileSync(join(CG, id, file), 'utf8');
const kv = (text: string, key: string) => Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);

/** `tsrunc events` in the background, its stdout as JSON lines. */
function events(root: string, args: string[]) {
  const child = spawn('node', [TSRUNC, '--root', root, 'events', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i; (i = buf.indexOf('\n')) >= 0; ) {
      lines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
      buf = buf.slice(i + 1);
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, lines, exited, stderr: () => stderr };
}

t.test('cgroup v2 limits (VM lane)', { skip: whySkip() }, async (t) => {
  const tsrunc = cli();

  t.test('memory.max: a memory hog is OOM-killed and events reports it', async (t) => {
    const id = 'cgvm-oom';
    const b = makeBundle(['sh', '-c', 'while [ ! -e /tmp/go ]; do sleep 0.2; done; dd if=/dev/zero bs=1048576 count=200 | tail > /dev/null; echo hog-done; sleep 1000'], (s) => {
      s.linux!.resources = { ...s.linux!.resources, memory: { limit: 32 * 2 ** 20, swap: 32 * 2 ** 20 } };
    });
    const before = snapshot(tsrunc.root);
    const r = await tsrunc.detached(['run', '-d', '-b', b.dir, id]);
    t.equal(r.exitCode, 0, r.stderr);
    t.equal(read(id, 'memory.max').trim(), String(32 * 2 ** 20));
    const ev = events(tsrunc.root, ['--interval', '1s', id]);
    t.ok(await waitFor(() => ev.lines.some((l) => l['type'] === 'stats'), SLOW), 'a stats line every interval');
    writeFileSync(join(b.rootfs, 'tmp/go'), '');
    t.ok(await waitFor(() => ev.lines.some((l) => l['type'] === 'oom'), SLOW), `an oom event (${ev.stderr()})`);
    t.same(ev.lines.find((l) => l['type'] === 'oom'), { type: 'oom', id }, 'as runc prints it');
    t.ok(kv(read(id, 'memory.events'), 'oom_kill') >= 1, 'the kernel counted the OOM kill');
    t.equal(JSON.parse((await tsrunc(['state', id])).stdout).status, 'running', 'the container lives on (only the hog died)');
    t.equal((await tsrunc(['delete', '-f', id])).exitCode, 0);
    t.equal(await Promise.race([ev.exited, new Promise((r) => setTimeout(() => r('still running'), SLOW).unref())]), 0, 'events ends with the container');
    t.notOk(existsSync(join(CG, id)), 'the cgroup is removed on delete');
    t.same(leftovers(tsrunc.root, before, id), []);
  });

  t.test('pids.max: the N+1th process cannot be forked', async (t) => {
    const id = 'cgvm-pids';
    // sh itself and 3 children make 4; the 4th child is the 5th process.
    const b = makeBundle(['sh', '-c', 'for i in 1 2 3 4 5; do sleep 1000 & echo started $i; done'], (s) => {
      s.linux!.resources = { ...s.linux!.resources, pids: { limit: 4 } };
    });
    const r = await tsrunc(['run', '--keep', '-b', b.dir, id]);
    t.not(r.exitCode, 0, 'the shell gives up when it cannot fork');
    t.same(r.stdout.split('\n'), ['started 1', 'started 2', 'started 3']);
    t.match(r.stderr, /can't fork: Resource temporarily unavailable/);
    t.equal(read(id, 'pids.max').trim(), '4');
    t.equal(kv(read(id, 'pids.events'), 'max'), 1, 'the kernel counted one refused fork');
    t.equal((await tsrunc(['delete', id])).exitCode, 0);
    t.notOk(existsSync(join(CG, id)));
  });

  t.test('cpu.max throttles; freeze stops a busy loop, thaw resumes it; stats match the kernel', async (t) => {
    const id = 'cgvm-cpu';
    const b = makeBundle(['sh', '-c', 'while :; do :; done'], (s) => {
      s.linux!.resources = { ...s.linux!.resources, cpu: { quota: 20000, period: 100000 }, memory: { limit: 64 * 2 ** 20 }, pids: { limit: 20 } };
    });
    t.equal((await tsrunc.detached(['run', '-d', '-b', b.dir, id])).exitCode, 0);
    t.equal(read(id, 'cpu.max').trim(), '20000 100000');
    t.ok(await waitFor(() => kv(read(id, 'cpu.stat'), 'nr_throttled') >= 3, SLOW), 'cpu.stat nr_throttled grows');

    const r = await tsrunc(['events', '--stats', id]);
    t.equal(r.exitCode, 0, r.stderr);
    const { data } = JSON.parse(r.stdout) as { data: { cpu: { usage: { total: number }; throttling: { throttledPeriods: number } }; memory: { usage: { limit: number; usage: number }; raw: Record<string, number> }; pids: { current: number; limit: number } } };
    const after = read(id, 'cpu.stat');
    t.ok(data.cpu.throttling.throttledPeriods >= 3 && data.cpu.throttling.throttledPeriods <= kv(after, 'nr_throttled'), 'throttled periods as the kernel counts them');
    t.ok(data.cpu.usage.total > 0 && data.cpu.usage.total <= kv(after, 'usage_usec') * 1000, 'cpu usage in ns from cpu.stat');
    t.equal(data.memory.usage.limit, 64 * 2 ** 20, 'memory limit');
    t.ok(data.memory.usage.usage > 0, 'memory usage');
    t.equal(data.memory.raw['anon'] !== undefined, true, 'memory.stat as raw');
    t.same(data.pids, { current: 1, limit: 20 });

    t.equal((await tsrunc(['pause', id])).exitCode, 0);
    t.equal(read(id, 'cgroup.freeze').trim(), '1');
    t.match(read(id, 'cgroup.events'), /^frozen 1$/m, 'pause returns once the kernel says frozen');
    t.equal(JSON.parse((await tsrunc(['state', id])).stdout).status, 'paused');
    const u1 = kv(read(id, 'cpu.stat'), 'usage_usec');
    await new Promise((r) => setTimeout(r, 1500));
    t.equal(kv(read(id, 'cpu.stat'), 'usage_usec'), u1, 'a frozen busy loop uses no cpu');
    t.equal((await tsrunc(['resume', id])).exitCode, 0);
    t.equal(JSON.parse((await tsrunc(['state', id])).stdout).status, 'running');
    t.ok(await waitFor(() => kv(read(id, 'cpu.stat'), 'usage_usec') > u1, SLOW), 'thawed, it runs again');

    // update rewrites the files
    t.equal((await tsrunc(['update', '--cpu-quota', '50000', '--memory', '48m', '--pids-limit', '30', id])).exitCode, 0);
    t.equal(read(id, 'cpu.max').trim(), '50000 100000');
    t.equal(read(id, 'memory.max').trim(), String(48 * 2 ** 20));
    t.equal(read(id, 'pids.max').trim(), '30');
    const bad = await tsrunc(['update', '--cpuset-cpus', '5', id]);
    t.equal(bad.exitCode, 1);
    t.match(bad.stderr, /--cpuset-cpus: cpus 5 of "5" are not on this host \(it has cpus 0-1\)/, 'an invalid value: a clear error');
    const check = join(b.dir, 'r.json');
    writeFileSync(check, JSON.stringify({ memory: { limit: 4096, checkBeforeUpdate: true } }));
    const refused = await tsrunc(['update', '-r', check, id]);
    t.match(refused.stderr, /r\.json: memory\.checkBeforeUpdate: rejecting memory limit 4096 <= usage \d+/, 'checkBeforeUpdate');
    t.equal(read(id, 'memory.max').trim(), String(48 * 2 ** 20), 'unchanged');

    t.equal((await tsrunc(['kill', '--all', id, 'KILL'])).exitCode, 0);
    t.ok(await waitFor(() => /^populated 0$/m.test(read(id, 'cgroup.events')), SLOW), 'kill --all: cgroup.kill emptied it');
    t.equal((await tsrunc(['delete', id])).exitCode, 0);
    t.notOk(existsSync(join(CG, id)));
  });

  t.test('every resource lands in its file, converted as runc converts it', async (t) => {
    const id = 'cgvm-files';
    // io.max needs a block device: a loop device over a file in the guest's /tmp
    const img = join(tmpdir(), 'cgvm.img');
    writeFileSync(img, Buffer.alloc(1 << 20));
    const loop = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8' }).trim();
    t.teardown(() => execFileSync('losetup', ['-d', loop]));
    const rdev = statSync(loop).rdev;
    const [major, minor] = [Math.floor(rdev / 256) & 0xfff, (rdev & 0xff) | ((rdev >> 12) & 0xfff00)];
    const b = makeBundle(['sleep', '1000'], (s) => {
      s.linux!.resources = {
        ...s.linux!.resources,
        memory: { limit: 100 * 2 ** 20, reservation: 50 * 2 ** 20, swap: 150 * 2 ** 20 },
        cpu: { shares: 512, quota: 30000, period: 50000, burst: 10000, cpus: '1', mems: '0' },
        pids: { limit: 64 },
        blockIO: { weight: 500, throttleWriteBpsDevice: [{ major, minor, rate: 1048576 }], throttleReadIOPSDevice: [{ major, minor, rate: 100 }] },
        hugepageLimits: [{ pageSize: '2MB', limit: 0 }],
        unified: { 'memory.high': '90000000' },
      };
    });
    const r = await tsrunc.detached(['run', '-d', '-b', b.dir, id]);
    t.equal(r.exitCode, 0, r.stderr);
    const f = (file: string) => read(id, file).trim();
    t.equal(f('memory.max'), String(100 * 2 ** 20));
    t.equal(f('memory.low'), String(50 * 2 ** 20));
    t.equal(f('memory.swap.max'), String(50 * 2 ** 20), 'swap minus memory');
    t.equal(f('memory.high'), '89997312', 'unified, verbatim (the kernel rounds to pages)');
    t.equal(f('cpu.weight'), '59', 'shares 512 -> weight 59');
    t.equal(f('cpu.max'), '30000 50000');
    t.equal(f('cpu.max.burst'), '10000');
    t.equal(f('cpuset.cpus'), '1');
    t.equal(f('cpuset.cpus.effective'), '1');
    t.equal(f('cpuset.mems'), '0');
    t.equal(f('pids.max'), '64');
    t.equal(f('hugetlb.2MB.max'), '0');
    t.match(f('io.max'), new RegExp(`^${major}:${minor} rbps=max wbps=1048576 riops=100 wiops=max$`, 'm'));
    t.match(existsSync(join(CG, id, 'io.bfq.weight')) ? f('io.bfq.weight') : f('io.weight'), /^default (500|4950)$/m, 'blkio weight (BFQ, or io.weight converted)');
    t.equal((await tsrunc(['delete', '-f', id])).exitCode, 0);
    t.notOk(existsSync(join(CG, id)));
  });

  t.test('devices: a denied device fails with EPERM, allowed ones open', async (t) => {
    const b = makeBundle(['sh', '-c', 'echo x > /dev/kmsg && echo write-ok; head -c 1 /dev/kmsg > /dev/null || echo read-denied; echo y > /dev/null && echo null-ok; echo z > /dev/loop-control || echo loop-denied'], (s) => {
      s.linux!.devices = [
        { type: 'c', path: '/dev/kmsg', major: 1, minor: 11, fileMode: 0o666 },
        { type: 'c', path: '/dev/loop-control', major: 10, minor: 237, fileMode: 0o666 },
      ];
      s.linux!.resources = { devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 11, access: 'w' }] };
    });
    const r = await tsrunc(['run', '-b', b.dir, 'cgvm-dev']);
    t.equal(r.exitCode, 0, r.stderr);
    t.same(r.stdout.split('\n'), ['write-ok', 'read-denied', 'null-ok', 'loop-denied']);
    t.match(r.stderr, /\/dev\/kmsg: Operation not permitted/);
    t.match(r.stderr, /can't create \/dev\/loop-control: Operation not permitted/);
  });

  t.test('bad input on a host that has every controller: clear error, nothing left behind', async (t) => {
    const cases: [string, (s: import('../../src/oci/spec.js').Spec) => void, RegExp][] = [
      ['cpuset outside the host', (s) => (s.linux!.resources = { cpu: { cpus: '0-63' } }), /config\.json: linux\.resources\.cpu\.cpus: cpus 2-63 of "0-63" are not on this host \(it has cpus 0-1\)/],
      ['unknown unified key', (s) => (s.linux!.resources = { unified: { 'memory.bogus': '1' } }), /config\.json: linux\.resources\.unified\["memory\.bogus"\]: unknown cgroup file "memory\.bogus"/],
      ['a value the kernel refuses', (s) => (s.linux!.resources = { unified: { 'memory.max': '-5' } }), /config\.json: linux\.resources\.unified\["memory\.max"\]: write "-5" to \/sys\/fs\/cgroup\/cgvm-bad\d\/memory\.max: EINVAL/],
    ];
    let n = 0;
    for (const [name, mutate, re] of cases) {
      const id = `cgvm-bad${n++}`;
      const b = makeBundle(['true'], mutate);
      const before = snapshot(tsrunc.root);
      const r = await tsrunc(['run', '-b', b.dir, id]);
      t.equal(r.exitCode, 1, name);
      t.match(r.stderr.trim().split('\n').at(-1), re, name);
      t.same(leftovers(tsrunc.root, before, id), [], `${name}: nothing left behind`);
    }
  });
});
