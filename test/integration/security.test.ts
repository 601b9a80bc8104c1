// Process attributes through procfs (sysctl, oom_score_adj), personality,
// security labels on a host without AppArmor/SELinux, and attacks on the
// rootfs: a /dev/null that is not one, a mount destination swapped for a
// symlink while containers start.
import t from 'tap';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle.js';
import { cli, needsRoot } from '../helpers/cli.js';
import { snapshot, leftovers } from '../helpers/leftovers.js';
import { lsmFacts } from '../../src/runtime/host.js';

t.test('security', { skip: needsRoot }, async (t) => {
  const tsrunc = cli();

  t.test('sysctl: namespaced ones are set in the container only', async (t) => {
    const hostForward = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
    const b = makeBundle(['cat', '/proc/sys/net/ipv4/ip_forward', '/proc/sys/kernel/shmmni', '/proc/sys/fs/mqueue/msg_max'], (s) => {
      s.linux!.sysctl = { 'net.ipv4.ip_forward': hostForward.trim() === '1' ? '0' : '1', 'kernel.shmmni': '1234', 'fs.mqueue.msg_max': '33' };
    });
    const r = await tsrunc(['run', '-b', b.dir, 'se1']);
    t.equal(r.exitCode, 0, r.stderr);
    t.same(r.stdout.split('\n'), [hostForward.trim() === '1' ? '0' : '1', '1234', '33']);
    t.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), hostForward, "the host's value is untouched");
  });

  t.test('sysctl: what would change the host is refused, naming the key', async (t) => {
    const cases: [Record<string, string>, ((s: import('../../src/oci/spec.js').Spec) => void) | undefined, RegExp][] = [
      [{ 'kernel.panic': '1' }, undefined, /linux\.sysctl\.kernel\.panic: not a namespaced sysctl: it would change the host/],
      [{ 'kernel.hostname': 'x' }, undefined, /linux\.sysctl\.kernel\.hostname: conflicts with the "hostname" field/],
      [{ 'net.ipv4.ip_forward': '1' }, (s) => (s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'network')), /linux\.sysctl\.net\.ipv4\.ip_forward: not allowed in the host's network namespace/],
      [{ 'kernel.shmmax': '1' }, (s) => (s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'ipc')), /linux\.sysctl\.kernel\.shmmax: not allowed in the host's ipc namespace/],
    ];
    for (const [sysctl, more, message] of cases) {
      const b = makeBundle(['true'], (s) => {
        s.linux!.sysctl = sysctl;
        more?.(s);
      });
      const before = snapshot(tsrunc.root);
      const r = await tsrunc(['run', '-b', b.dir, 'se2']);
      t.equal(r.exitCode, 1);
      t.match(r.stderr, message);
      t.same(leftovers(tsrunc.root, before, 'se2'), []);
    }
  });

  t.test('oomScoreAdj', async (t) => {
    const b = makeBundle(['cat', '/proc/self/oom_score_adj'], (s) => (s.process!.oomScoreAdj = 777));
    t.equal((await tsrunc(['run', '-b', b.dir, 'se3'])).stdout, '777');
  });

  t.test('scheduler and I/O priority', async (t) => {
    const b = makeBundle(['sh', '-c', 'grep ^policy /proc/self/sched; cut -d" " -f19 /proc/self/stat; ionice -p $$'], (s) => {
      s.process!.scheduler = { policy: 'SCHED_BATCH', nice: 7 };
      s.process!.ioPriority = { class: 'IOPRIO_CLASS_BE', priority: 6 };
    });
    const r = await tsrunc(['run', '-b', b.dir, 'se10']);
    t.equal(r.exitCode, 0, r.stderr);
    const [policy, nice, io] = r.stdout.split('\n');
    t.match(policy, /:\s+3$/, 'SCHED_BATCH');
    t.equal(nice, '7');
    t.match(io, /best-effort: prio 6/);
    const bad = makeBundle(['true'], (s) => (s.process!.ioPriority = { class: 'IOPRIO_CLASS_FAST' }));
    t.match((await tsrunc(['run', '-b', bad.dir, 'se11'])).stderr, /process\.ioPriority\.class: unknown class "IOPRIO_CLASS_FAST"/);
  });

  t.test('personality LINUX32', async (t) => {
    const b = makeBundle(['uname', '-m'], (s) => (s.linux!.personality = { domain: 'LINUX32' }));
    const r = await tsrunc(['run', '-b', b.dir, 'se4']);
    t.equal(r.exitCode, 0, r.stderr);
    t.match(r.stdout, /^i[3-6]86$/);
    const bad = makeBundle(['true'], (s) => (s.linux!.personality = { domain: 'LINUX64' as 'LINUX' }));
    t.match((await tsrunc(['run', '-b', bad.dir, 'se5'])).stderr, /linux\.personality\.domain: unknown domain "LINUX64"/);
  });

  t.test('AppArmor, SELinux labels and mount labels on a host without them', { skip: lsmFacts().apparmor || lsmFacts().selinux ? 'this host has an LSM that labels processes' : false }, async (t) => {
    const cases: [(s: import('../../src/oci/spec.js').Spec) => void, RegExp][] = [
      [(s) => (s.process!.apparmorProfile = 'acme_secure_profile'), /process\.apparmorProfile: AppArmor is not enabled on this host, so profile "acme_secure_profile" cannot be applied/],
      [(s) => (s.process!.selinuxLabel = 'system_u:system_r:svirt_lxc_net_t:s0:c124,c675'), /process\.selinuxLabel: selinux label is specified in config, but selinux is disabled or not supported/],
      [(s) => (s.linux!.mountLabel = 'system_u:object_r:svirt_sandbox_file_t:s0:c715,c811'), /linux\.mountLabel: selinux mount label is specified in config, but selinux is disabled or not supported/],
    ];
    for (const [mutate, message] of cases) {
      const b = makeBundle(['true'], mutate);
      const before = snapshot(tsrunc.root);
      const r = await tsrunc(['run', '-b', b.dir, 'se6']);
      t.equal(r.exitCode, 1);
      t.match(r.stderr, message);
      t.same(leftovers(tsrunc.root, before, 'se6'), []);
    }
  });

  t.test('a rootfs whose /dev/null is a symlink to a procfs file is refused (CVE-2025-31133)', async (t) => {
    // No /dev tmpfs: the nodes are made in the rootfs's own /dev.
    const b = makeBundle(['true'], (s) => (s.mounts = s.mounts!.filter((m) => !m.destination.startsWith('/dev'))));
    rmSync(join(b.rootfs, 'dev'), { recursive: true, force: true });
    mkdirSync(join(b.rootfs, 'dev'));
    symlinkSync('/proc/sys/kernel/core_pattern', join(b.rootfs, 'dev/null'));
    const before = snapshot(tsrunc.root);
    const r = await tsrunc(['run', '-b', b.dir, 'se7']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /op \d+ mknod \/dev\/null \(c 1:3, mode 0666\): EEXIST: an existing node there has another type or device number/);
    t.same(leftovers(tsrunc.root, before, 'se7'), []);

    // /dev bound from the bundle: masking must still refuse the fake /dev/null.
    const b2 = makeBundle(['true'], (s) => {
      s.mounts = s.mounts!.filter((m) => !m.destination.startsWith('/dev'));
      s.mounts.push({ destination: '/dev', type: 'bind', source: 'fakedev', options: ['rbind'] });
    });
    mkdirSync(join(b2.dir, 'fakedev'));
    symlinkSync('/proc/sys/kernel/core_pattern', join(b2.dir, 'fakedev/null'));
    const r2 = await tsrunc(['run', '-b', b2.dir, 'se8']);
    t.equal(r2.exitCode, 1);
    t.match(r2.stderr, /op \d+ mask \/proc\/\S+: ENODEV: not the real \/dev\/null \(character device 1:3\)/);
    t.equal(readFileSync('/proc/sys/kernel/core_pattern', 'utf8').length > 0, true, 'core_pattern untouched');
  });

  t.test('a mount destination swapped for a symlink to / during start stays inside (CVE-2021-30465 style)', async (t) => {
    const b = makeBundle(['true'], (s) => s.mounts!.push({ destination: '/target', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] }));
    const target = join(b.rootfs, 'target');
    const parked = join(b.rootfs, 'target-dir');
    const link = join(b.rootfs, 'target-link');
    mkdirSync(parked);
    symlinkSync('/', link);
    const hostMounts = readFileSync('/proc/self/mountinfo', 'utf8');
    // Swap /target between a directory and a symlink to / as fast as we can
    // while containers mount on it.
    let swapping = true;
    const swapper = (async () => {
      let i = 0;
      while (swapping) {
        try {
          renameSync(i++ % 2 ? parked : link, target);
          renameSync(target, i % 2 ? parked : link);
        } catch {
          /* the other side moved it */
        }
        if (i % 50 === 0) await new Promise((r) => setImmediate(r));
      }
    })();
    let ok = 0;
    for (let i = 0; i < 15; i++) {
      const before = snapshot(tsrunc.root);
      const r = await tsrunc(['run', '-b', b.dir, `se9-${i}`]);
      if (r.exitCode === 0) ok++;
      else t.match(r.stderr, /op \d+ mount tmpfs on \/target: /, 'a failure is the mount op failing, nothing worse');
      t.same(leftovers(tsrunc.root, before, `se9-${i}`), [], 'and leaves nothing behind');
    }
    swapping = false;
    await swapper;
    t.equal(readFileSync('/proc/self/mountinfo', 'utf8'), hostMounts, 'no mount ever landed on the host');
    t.ok(existsSync('/bin/sh'), 'the host root is intact');
    t.comment(`${ok} of 15 containers started during the swapping`);
  });
});
