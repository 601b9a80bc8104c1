// Spec -> LaunchPlan for a container's init, without root: the plan is the
// recording of what the child will do, so these tests assert on its ops.
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k from '../../src/linux/constants.js';
import { CAPABILITIES } from '../../src/linux/capabilities.js';
import { parseMountInfo } from '../../src/linux/mountinfo.js';
import { defaultSpec, rootlessSpec } from '../../src/oci/default-spec.js';
import { ConfigError } from '../../src/oci/validate.js';
import type { Mount, Spec } from '../../src/oci/spec.js';
import { buildInitPlan } from '../../src/runtime/plan/init.js';
import { IGNORE, P, SYNC_TAG, type LaunchPlan, type OpName, type PlanOpOf } from '../../src/runtime/plan/ops.js';
import type { HostFacts, InitPlanInput } from '../../src/runtime/plan/context.js';

const ROOTFS = '/var/lib/tsrunc/bundles/c1/rootfs';

const MOUNTINFO = [
  '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro',
  '23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw',
  '24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw',
  // a procfs inside the rootfs and a partial procfs elsewhere: --no-pivot leaves both alone
  `25 22 0:21 / ${ROOTFS}/proc rw,relatime - proc proc rw`,
  '26 22 0:21 /sys /run/procsys rw,relatime - proc proc rw',
  '27 22 0:23 / /dev rw,nosuid shared:3 - devtmpfs udev rw,mode=755',
].join('\n');

const HOST: HostFacts = {
  capLastCap: 40,
  mounts: parseMountInfo(MOUNTINFO),
  procKcore: true,
  cgroupMode: 'hybrid',
  euid: 0,
};

// A bundle directory with a directory and a file to bind.
const BUNDLE = mkdtempSync(join(tmpdir(), 'tsrunc-plan-'));
mkdirSync(join(BUNDLE, 'data'));
writeFileSync(join(BUNDLE, 'file.txt'), 'x');
t.teardown(() => rmSync(BUNDLE, { recursive: true, force: true }));

function input(spec: Spec, over: Partial<InitPlanInput> = {}): InitPlanInput {
  return {
    id: 'c1',
    spec,
    rootfs: ROOTFS,
    bundle: BUNDLE,
    host: HOST,
    cgroupDir: undefined,
    fds: { sync: 10, parentSync: 11, cgroup: -1, fifo: 12, console: -1 },
    noPivot: false,
    noNewKeyring: false,
    preserveFds: 0,
    env: ['HOME=/root'],
    ...over,
  };
}

const plan = (spec: Spec, over: Partial<InitPlanInput> = {}) => buildInitPlan(input(spec, over));

/** The default spec with `edit` applied. */
function specWith(edit: (s: Spec) => void): Spec {
  const s = defaultSpec();
  edit(s);
  return s;
}

const withMounts = (...extra: Mount[]) => specWith((s) => s.mounts!.push(...extra));

/** The ops of one kind, optionally filtered. */
function ops<K extends OpName>(p: LaunchPlan, name: K, where: (o: PlanOpOf<K>) => boolean = () => true): PlanOpOf<K>[] {
  return (p.ops.filter((o) => o.name === name) as unknown as PlanOpOf<K>[]).filter(where);
}

/** The index in the plan of the first op of a kind that matches, or -1. */
function pos<K extends OpName>(p: LaunchPlan, name: K, where: (o: PlanOpOf<K>) => boolean = () => true): number {
  return p.ops.findIndex((o) => o.name === name && where(o as unknown as PlanOpOf<K>));
}

/** `value & mask` for a 'u' field (number or bigint). */
const bits = (value: number | bigint, mask: number): number => Number(value) & mask;

const mountsOn = (p: LaunchPlan, target: string) => ops(p, 'MOUNT', (o) => o.args.target === target);
const remountsOf = (p: LaunchPlan, target: string) => ops(p, 'REMOUNT', (o) => o.args.target === target);

/** The ConfigError that `fn` throws, as message and path (or why there is none). */
function configError(fn: () => unknown): { message: string; path: string } | string {
  try {
    fn();
  } catch (e) {
    return e instanceof ConfigError ? { message: e.message, path: e.path } : `not a ConfigError: ${String(e)}`;
  }
  return 'no error';
}

const DEFAULT_NS_FLAGS = k.CLONE_NEWPID | k.CLONE_NEWNET | k.CLONE_NEWIPC | k.CLONE_NEWUTS | k.CLONE_NEWNS;

t.test('plan header', (t) => {
  const p = plan(defaultSpec(), { fds: { sync: 10, parentSync: 11, cgroup: 7, fifo: 12, console: -1 } });
  t.equal(p.syncFd, 10);
  t.equal(p.parentSyncFd, 11);
  t.equal(p.cgroupFd, 7);
  const [first, second] = p.ops;
  t.same([first!.name, first!.args], ['PRCTL', { option: k.PR_SET_DUMPABLE, arg2: 0, arg3: 0, arg4: 0, arg5: 0 }], 'first the runtime copy becomes non-dumpable (CVE-2019-5736)');
  t.same([second!.name, second!.args], ['PRCTL', { option: k.PR_SET_PDEATHSIG, arg2: 9, arg3: 0, arg4: 0, arg5: 0 }], 'then it is tied to the runtime');
  for (const o of p.ops) t.ok(o.describe.length > 0, `${o.name} has a description`);
  t.end();
});

t.test('namespaces', async (t) => {
  t.test('new namespaces are clone flags', (t) => {
    const p = plan(defaultSpec());
    t.equal(p.cloneFlags, DEFAULT_NS_FLAGS);
    t.same(ops(p, 'SETNS'), [], 'no setns');
    t.same(ops(p, 'UNSHARE'), [], 'no unshare');
    t.same(ops(p, 'FORK'), [], 'no fork');
    t.same(ops(p, 'SYNC', (o) => o.args.tag === SYNC_TAG.USERMAP), [], 'no uid/gid map wait');
    t.equal(plan(defaultSpec({ cgroupNamespace: true })).cloneFlags, DEFAULT_NS_FLAGS | k.CLONE_NEWCGROUP);
    t.end();
  });

  t.test('joined namespaces: setns (user first, mount last), unshare the rest, fork for pid', (t) => {
    const spec = specWith((s) => {
      s.linux!.namespaces = [
        { type: 'pid' },
        { type: 'mount', path: '/proc/42/ns/mnt' },
        { type: 'network', path: '/proc/42/ns/net' },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'user', path: '/proc/42/ns/user' },
      ];
    });
    const p = plan(spec);
    t.equal(p.cloneFlags, 0, 'clone3 creates nothing');
    const setns = ops(p, 'SETNS');
    t.same(
      setns.map((o) => o.args),
      [
        { path: '/proc/42/ns/user', nstype: k.CLONE_NEWUSER },
        { path: '/proc/42/ns/net', nstype: k.CLONE_NEWNET },
        { path: '/proc/42/ns/mnt', nstype: k.CLONE_NEWNS },
      ],
    );
    const iUser = pos(p, 'SETNS', (o) => o.args.nstype === k.CLONE_NEWUSER);
    t.same(
      p.ops.slice(iUser + 1, iUser + 3).map((o) => [o.name, o.args]),
      [
        ['SETRESGID', { gid: 0 }],
        ['SETRESUID', { uid: 0 }],
      ],
      'root in the joined user namespace right after joining it',
    );
    const unshare = ops(p, 'UNSHARE');
    t.same(
      unshare.map((o) => o.args.flags),
      [k.CLONE_NEWPID | k.CLONE_NEWIPC | k.CLONE_NEWUTS],
      'one unshare of the new namespaces',
    );
    const iUnshare = pos(p, 'UNSHARE');
    const iFork = pos(p, 'FORK');
    t.ok(iFork > iUnshare, 'fork after unshare (a new pid namespace applies to children)');
    t.ok(iUnshare > pos(p, 'SETNS', (o) => o.args.nstype === k.CLONE_NEWNS), 'unshare after all setns');
    t.ok(iFork < pos(p, 'OPEN_ROOT'), 'fork before the rootfs work');
    t.end();
  });

  t.test('joining a pid namespace forks too; no pid namespace, no fork', (t) => {
    const joinPid = specWith((s) => {
      s.linux!.namespaces = [{ type: 'pid', path: '/proc/42/ns/pid' }, { type: 'mount' }, { type: 'uts' }];
    });
    const p = plan(joinPid);
    t.same(ops(p, 'UNSHARE').map((o) => o.args.flags), [k.CLONE_NEWNS | k.CLONE_NEWUTS]);
    t.equal(ops(p, 'FORK').length, 1);

    const noPid = specWith((s) => {
      s.linux!.namespaces = [{ type: 'network', path: '/proc/42/ns/net' }, { type: 'mount' }, { type: 'uts' }];
    });
    const q = plan(noPid);
    t.equal(q.cloneFlags, 0);
    t.same(ops(q, 'SETNS').map((o) => o.args.path), ['/proc/42/ns/net']);
    t.same(ops(q, 'FORK'), [], 'no fork without a pid namespace');
    t.end();
  });

  t.test('a new user namespace: clone flag, wait for the maps, become root', (t) => {
    const p = plan(rootlessSpec(1000, 1000), { host: { ...HOST, euid: 1000 } });
    t.ok(p.cloneFlags & k.CLONE_NEWUSER, 'CLONE_NEWUSER');
    t.notOk(p.cloneFlags & k.CLONE_NEWNET, 'no network namespace');
    const i = pos(p, 'SYNC', (o) => o.args.tag === SYNC_TAG.USERMAP);
    t.equal(i, 2, 'the first thing after DUMPABLE and PDEATHSIG');
    t.same(
      p.ops.slice(i + 1, i + 3).map((o) => [o.name, o.args]),
      [
        ['SETRESGID', { gid: 0 }],
        ['SETRESUID', { uid: 0 }],
      ],
    );
    t.equal(p.ops[i + 1]!.ignore & IGNORE.EINVAL, IGNORE.EINVAL, 'a map without 0 keeps us as we are');
    t.end();
  });

  t.test('a new user namespace beside joined ones: unshare it, then wait for the maps', (t) => {
    const spec = specWith((s) => {
      s.linux!.namespaces = [{ type: 'network', path: '/proc/42/ns/net' }, { type: 'mount' }, { type: 'uts' }, { type: 'user' }];
      s.linux!.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
      s.linux!.gidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
    });
    const p = plan(spec);
    t.equal(p.cloneFlags, 0);
    const iUser = pos(p, 'UNSHARE', (o) => o.args.flags === k.CLONE_NEWUSER);
    t.ok(iUser > pos(p, 'SETNS'), 'after the setns');
    t.same(
      p.ops.slice(iUser + 1, iUser + 4).map((o) => o.name),
      ['SYNC', 'SETRESGID', 'SETRESUID'],
    );
    t.same(ops(p, 'UNSHARE', (o) => o.args.flags !== k.CLONE_NEWUSER).map((o) => o.args.flags), [k.CLONE_NEWNS | k.CLONE_NEWUTS]);
    t.end();
  });

  t.test('time offsets: the parent writes them before the fork', (t) => {
    const spec = specWith((s) => {
      s.linux!.namespaces!.push({ type: 'time' });
      s.linux!.timeOffsets = { monotonic: { secs: 100 } };
    });
    const p = plan(spec);
    t.equal(p.cloneFlags, 0);
    const iSync = pos(p, 'SYNC', (o) => o.args.tag === SYNC_TAG.TIMENS);
    t.ok(iSync > pos(p, 'UNSHARE'), 'after the unshare');
    t.ok(pos(p, 'FORK') > iSync, 'fork after the offsets are written');
    t.end();
  });
});

t.test('session and keyring', (t) => {
  const p = plan(defaultSpec());
  t.same(ops(p, 'KEYRING').map((o) => o.args.name), ['_ses.c1']);
  t.equal(ops(p, 'KEYRING')[0]!.ignore, IGNORE.ENOSYS);
  t.equal(ops(p, 'SETSID').length, 1);
  t.same(ops(plan(defaultSpec(), { noNewKeyring: true }), 'KEYRING'), [], '--no-new-keyring');
  t.end();
});

t.test('the rootfs', async (t) => {
  t.test('propagation, the rootfs bind, handles', (t) => {
    const p = plan(defaultSpec());
    const root = mountsOn(p, '/');
    t.same(root[0]!.args, { source: '', target: '/', flags: k.MS_SLAVE | k.MS_REC, fstype: '', data: '', pflags: P.HOST, guard: '' }, 'make / rslave');
    t.equal(root[1]!.args.flags, k.MS_PRIVATE, 'the parent mount of the rootfs (here /) is made private');
    const bind = mountsOn(p, ROOTFS);
    t.same(bind.map((o) => o.args), [{ source: ROOTFS, target: ROOTFS, flags: k.MS_BIND | k.MS_REC, fstype: '', data: '', pflags: P.HOST, guard: '' }]);
    const iOpen = pos(p, 'OPEN_ROOT', (o) => o.args.path === ROOTFS);
    t.ok(iOpen > pos(p, 'MOUNT', (o) => o.args.target === ROOTFS), 'the rootfs is opened after its bind');
    t.ok(iOpen < pos(p, 'MOUNT', (o) => o.args.target === '/proc'), 'and before the spec mounts');
    t.equal(pos(p, 'OPEN_PROC'), iOpen + 1);
    t.end();
  });

  t.test('rootfsPropagation', (t) => {
    const shared = plan(specWith((s) => (s.linux!.rootfsPropagation = 'shared')));
    const root = mountsOn(shared, '/');
    t.equal(root[0]!.args.flags, k.MS_SHARED, 'the host side gets the requested propagation');
    const iPivot = pos(shared, 'PIVOT_ROOT');
    const after = mountsOn(shared, '/').filter((o) => shared.ops.indexOf(o) > iPivot);
    t.same(after.map((o) => o.args.flags), [k.MS_SHARED], 'and the container root after pivot_root');

    const rslave = plan(specWith((s) => (s.linux!.rootfsPropagation = 'rslave')));
    t.equal(mountsOn(rslave, '/').filter((o) => rslave.ops.indexOf(o) > pos(rslave, 'PIVOT_ROOT')).length, 0, 'nothing to redo after pivot for rslave');
    t.end();
  });

  t.test('the default spec mounts', (t) => {
    const p = plan(defaultSpec());
    const proc = mountsOn(p, '/proc');
    t.equal(proc.length, 1);
    t.same(proc[0]!.args, { source: 'proc', target: '/proc', flags: 0, fstype: 'proc', data: '', pflags: P.MKDIR | P.NO_SYMLINKS, guard: '' });

    const dev = mountsOn(p, '/dev')[0]!;
    t.same(dev.args, {
      source: 'tmpfs',
      target: '/dev',
      flags: k.MS_NOSUID | k.MS_STRICTATIME,
      fstype: 'tmpfs',
      data: 'mode=755,size=65536k',
      pflags: P.MKDIR | P.TMPFS_MODE,
      guard: '/proc',
    });

    const pts = mountsOn(p, '/dev/pts')[0]!;
    t.equal(pts.args.fstype, 'devpts');
    t.equal(pts.args.flags, k.MS_NOSUID | k.MS_NOEXEC);
    t.equal(pts.args.data, 'newinstance,ptmxmode=0666,mode=0620,gid=5');

    const sys = mountsOn(p, '/sys')[0]!;
    t.equal(sys.args.fstype, 'sysfs');
    t.equal(sys.args.flags, k.MS_NOSUID | k.MS_NOEXEC | k.MS_NODEV | k.MS_RDONLY, 'sysfs is mounted read-only at once');
    t.equal(bits(sys.args.pflags, P.NO_SYMLINKS), P.NO_SYMLINKS, 'no symlinks on the way to sysfs');
    t.same(remountsOf(p, '/sys'), [], 'no remount for sysfs');

    for (const m of ops(p, 'MOUNT', (o) => o.args.fstype !== '' && !o.args.target.startsWith('/proc'))) {
      t.equal(m.args.guard, '/proc', `${m.args.target}: must not resolve into /proc`);
    }

    const order = ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup'].map((d) => pos(p, 'MOUNT', (o) => o.args.target === d));
    t.same([...order].sort((a, b) => a - b), order, 'spec order');
    t.notOk(order.includes(-1), 'all mounted');
    t.ok(order[6]! < pos(p, 'PIVOT_ROOT'), 'all before pivot_root');
    t.match(sys.describe, /sysfs.*\/sys/);
    t.end();
  });

  t.test('cgroup mounts', (t) => {
    // hybrid host, the container's own cgroup2 directory
    const p = plan(defaultSpec(), { cgroupDir: '/sys/fs/cgroup/unified/c1' });
    const tmpfs = mountsOn(p, '/sys/fs/cgroup')[0]!;
    t.equal(tmpfs.args.fstype, 'tmpfs');
    t.equal(bits(tmpfs.args.flags, k.MS_RDONLY), 0, 'writable until unified/ is made');
    const unified = mountsOn(p, '/sys/fs/cgroup/unified')[0]!;
    t.equal(unified.args.source, '/sys/fs/cgroup/unified/c1');
    t.equal(unified.args.flags, k.MS_BIND);
    t.equal(bits(unified.args.pflags, P.SRC_OPEN), P.SRC_OPEN);
    t.equal(bits(remountsOf(p, '/sys/fs/cgroup/unified')[0]!.args.flags, k.MS_RDONLY), k.MS_RDONLY);
    const ro = remountsOf(p, '/sys/fs/cgroup')[0]!;
    t.equal(bits(ro.args.flags, k.MS_RDONLY), k.MS_RDONLY);
    t.ok(p.ops.indexOf(ro) > pos(p, 'PIVOT_ROOT'), 'read-only after pivot_root');

    const unifiedHost = plan(defaultSpec({ cgroupNamespace: true }), { host: { ...HOST, cgroupMode: 'unified' } });
    const cg2 = mountsOn(unifiedHost, '/sys/fs/cgroup');
    t.same(
      cg2.map((o) => [o.args.source, o.args.fstype, o.args.flags, o.args.guard]),
      [['cgroup2', 'cgroup2', k.MS_NOSUID | k.MS_NOEXEC | k.MS_NODEV | k.MS_RELATIME | k.MS_RDONLY, '/proc']],
    );
    t.end();
  });

  t.test('read-only tmpfs and /dev are remounted after pivot_root', (t) => {
    const spec = specWith((s) => {
      s.mounts!.find((m) => m.destination === '/dev')!.options!.push('ro');
      s.mounts!.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['ro', 'nosuid', 'size=1m'] });
    });
    const p = plan(spec);
    const iPivot = pos(p, 'PIVOT_ROOT');
    for (const dest of ['/dev', '/tmp']) {
      const m = mountsOn(p, dest)[0]!;
      t.equal(bits(m.args.flags, k.MS_RDONLY), 0, `${dest} is mounted writable`);
      t.equal(bits(m.args.flags, k.MS_NOSUID), k.MS_NOSUID, `${dest} keeps its other flags`);
      const r = remountsOf(p, dest);
      t.equal(r.length, 1, `${dest} is remounted once`);
      t.equal(bits(r[0]!.args.flags, k.MS_RDONLY | k.MS_BIND | k.MS_NOSUID), k.MS_RDONLY | k.MS_BIND | k.MS_NOSUID, `${dest} remount flags`);
      t.equal(r[0]!.args.pflags, P.KEEP_LOCKED);
      t.ok(p.ops.indexOf(r[0]!) > iPivot, `${dest} remount after pivot_root`);
    }
    t.same(remountsOf(plan(defaultSpec()), '/dev'), [], 'a writable /dev is not remounted');
    t.end();
  });

  t.test('bind mounts', async (t) => {
    const dir = join(BUNDLE, 'data');
    const file = join(BUNDLE, 'file.txt');

    t.test('a directory', (t) => {
      const p = plan(withMounts({ destination: '/data', source: dir, options: ['bind'] }));
      const m = mountsOn(p, '/data');
      t.same(m.map((o) => o.args), [{ source: dir, target: '/data', flags: k.MS_BIND, fstype: '', data: '', pflags: P.SRC_OPEN | P.MKDIR, guard: '/proc' }]);
      t.equal(m[0]!.describe, `bind ${dir} on /data`);
      t.same(remountsOf(p, '/data'), [], 'no remount without extra flags');
      t.end();
    });

    t.test('a file, recursive, with flags', (t) => {
      const p = plan(withMounts({ destination: '/etc/app.conf', type: 'bind', source: file, options: ['rbind', 'ro', 'nosuid'] }));
      const m = mountsOn(p, '/etc/app.conf')[0]!;
      t.equal(m.args.flags, k.MS_BIND | k.MS_REC);
      t.equal(m.args.pflags, P.SRC_OPEN | P.MKFILE, 'a file source creates a file');
      const r = remountsOf(p, '/etc/app.conf');
      t.same(r.map((o) => o.args), [{ target: '/etc/app.conf', flags: k.MS_BIND | k.MS_RDONLY | k.MS_NOSUID, pflags: P.KEEP_LOCKED }]);
      t.equal(p.ops.indexOf(r[0]!), p.ops.indexOf(m) + 1, 'the remount follows the bind');
      t.end();
    });

    t.test('a relative source is resolved against the bundle', (t) => {
      const p = plan(withMounts({ destination: '/rel', type: 'bind', source: 'data', options: ['rbind'] }));
      t.equal(mountsOn(p, '/rel')[0]!.args.source, dir);
      t.end();
    });

    t.test('a missing source', (t) => {
      t.same(
        configError(() => plan(withMounts({ destination: '/x', type: 'bind', source: 'nope', options: ['bind'] }))),
        { message: `config.json: mounts[7].source: bind source ${join(BUNDLE, 'nope')}: does not exist`, path: 'mounts[7].source' },
      );
      t.end();
    });

    t.test('"rw" alone is a cleared flag: remounted', (t) => {
      const p = plan(withMounts({ destination: '/data', type: 'bind', source: dir, options: ['bind', 'rw'] }));
      t.same(remountsOf(p, '/data').map((o) => o.args.flags), [k.MS_BIND]);
      t.end();
    });

    t.test('propagation and recursive attributes follow the bind', (t) => {
      const p = plan(withMounts({ destination: '/data', type: 'bind', source: dir, options: ['rbind', 'rshared', 'rro'] }));
      const m = mountsOn(p, '/data');
      t.same(m.map((o) => o.args.flags), [k.MS_BIND | k.MS_REC, k.MS_SHARED | k.MS_REC]);
      const attr = ops(p, 'MOUNT_SETATTR', (o) => o.args.target === '/data');
      t.same(attr.map((o) => o.args), [{ target: '/data', set: k.MOUNT_ATTR_RDONLY, clear: 0, propagation: 0, pflags: P.RECURSIVE }]);
      t.end();
    });
  });

  t.test('mounts inside /proc', (t) => {
    t.same(configError(() => plan(withMounts({ destination: '/proc/foo', type: 'tmpfs', source: 'tmpfs' }))), {
      message: 'config.json: mounts[7].destination: /proc/foo is inside /proc, where only procfs may be mounted',
      path: 'mounts[7].destination',
    });
    t.same(configError(() => plan(withMounts({ destination: '/proc/../proc/sys/', type: 'bind', source: join(BUNDLE, 'data'), options: ['bind'] }))), {
      message: 'config.json: mounts[7].destination: /proc/sys is inside /proc, where only procfs may be mounted',
      path: 'mounts[7].destination',
    });
    t.same(configError(() => plan(specWith((s) => (s.mounts![0] = { destination: '/proc', type: 'tmpfs', source: 'tmpfs' })))), {
      message: 'config.json: mounts[0].type: only procfs may be mounted on /proc, not "tmpfs"',
      path: 'mounts[0].type',
    });

    // lxcfs-style files are allowed, never through a symlink
    const p = plan(withMounts({ destination: '/proc/cpuinfo', type: 'bind', source: join(BUNDLE, 'file.txt'), options: ['bind'] }));
    const m = mountsOn(p, '/proc/cpuinfo')[0]!;
    t.equal(bits(m.args.pflags, P.NO_SYMLINKS), P.NO_SYMLINKS);
    t.equal(m.args.guard, '');
    t.end();
  });

  t.test('a bind of a directory that is not procfs onto /proc is refused (runc checkProcMount)', (t) => {
    const spec = specWith((s) => (s.mounts![0] = { destination: '/proc', type: 'bind', source: join(BUNDLE, 'data'), options: ['rbind'] }));
    const procBind = specWith((s) => (s.mounts![0] = { destination: '/proc', type: 'bind', source: '/proc', options: ['rbind'] }));
    t.equal(configError(() => plan(procBind)), 'no error', "binding the host's procfs is fine");
    t.match(configError(() => plan(spec)), { path: /^mounts\[0\]/ }, 'ConfigError on mounts[0]');
    t.end();
  });

  t.test('a mount on / is refused', (t) => {
    for (const destination of ['/', '/./', '//']) {
      t.same(configError(() => plan(withMounts({ destination, type: 'tmpfs', source: 'tmpfs' }))), {
        message: 'config.json: mounts[7].destination: mounting on top of the container root is not supported',
        path: 'mounts[7].destination',
      }, destination);
    }
    t.end();
  });

  t.test('other mount options that cannot be honoured are refused', (t) => {
    t.match(configError(() => plan(withMounts({ destination: '/x', type: 'tmpfs', source: 'tmpfs', options: ['remount'] }))), { path: 'mounts[7].options' });
    t.match(configError(() => plan(withMounts({ destination: '/x', source: 'tmpfs' }))), { message: 'config.json: mounts[7].type: is required for a mount that is not a bind mount' });
    t.end();
  });

  t.test('masked and read-only paths', (t) => {
    const spec = defaultSpec();
    const p = plan(spec);
    const masks = ops(p, 'MASK_PATH');
    t.same(masks.map((o) => o.args.path), spec.linux!.maskedPaths);
    for (const m of masks) t.equal(m.ignore, IGNORE.ENOENT, `${m.args.path}: a missing path is fine`);

    for (const path of spec.linux!.readonlyPaths!) {
      const bind = ops(p, 'MOUNT', (o) => o.args.target === path);
      t.same(bind.map((o) => o.args), [{ source: path, target: path, flags: k.MS_BIND | k.MS_REC, fstype: '', data: '', pflags: P.SRC_IN_ROOT, guard: '' }], `${path} bound onto itself`);
      const r = remountsOf(p, path);
      t.same(r.map((o) => o.args), [{ target: path, flags: k.MS_BIND | k.MS_RDONLY, pflags: P.KEEP_LOCKED }], `${path} remounted read-only`);
      t.equal(p.ops.indexOf(r[0]!), p.ops.indexOf(bind[0]!) + 1);
      t.equal(bind[0]!.ignore & IGNORE.ENOENT, IGNORE.ENOENT);
    }
    t.ok(pos(p, 'MASK_PATH') > pos(p, 'MOUNT', (o) => o.args.target === '/sys'), 'after the mounts they cover');
    t.end();
  });
});

t.test('devices', async (t) => {
  t.test('without a user namespace: mknod', (t) => {
    const spec = specWith((s) => {
      s.linux!.devices = [
        { type: 'b', path: '/dev/sda', major: 8, minor: 0, fileMode: 0o660, uid: 0, gid: 6 },
        { type: 'p', path: '/dev/fifo' },
        { type: 'c', path: '/dev/null', major: 1, minor: 3, fileMode: 0o600 },
      ];
    });
    const p = plan(spec);
    const nodes = ops(p, 'MKNOD');
    t.same(
      nodes.map((o) => o.args.path),
      ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty', '/dev/sda', '/dev/fifo'],
      'the defaults, then linux.devices; an override replaces the default',
    );
    const byPath = new Map(nodes.map((o) => [o.args.path, o]));
    t.same(byPath.get('/dev/null')!.args, { path: '/dev/null', mode: k.S_IFCHR | 0o600, dev: k.makedev(1, 3), uid: 0, gid: 0 });
    t.equal(byPath.get('/dev/zero')!.args.dev, k.makedev(1, 5));
    t.equal(byPath.get('/dev/zero')!.args.mode, k.S_IFCHR | 0o666);
    t.same(byPath.get('/dev/sda')!.args, { path: '/dev/sda', mode: k.S_IFBLK | 0o660, dev: k.makedev(8, 0), uid: 0, gid: 6 });
    t.same(byPath.get('/dev/fifo')!.args, { path: '/dev/fifo', mode: k.S_IFIFO | 0o666, dev: 0, uid: 0, gid: 0 });
    t.equal(byPath.get('/dev/tty')!.describe, 'mknod /dev/tty (c 5:0, mode 0666)');
    t.same(ops(p, 'MOUNT', (o) => o.args.target === '/dev/null'), [], 'no bind of the host node');
    t.ok(p.ops.indexOf(nodes[0]!) > pos(p, 'MOUNT', (o) => o.args.target === '/dev'), 'after /dev is mounted');
    t.end();
  });

  t.test('in a user namespace: bind the host node', (t) => {
    const p = plan(rootlessSpec(1000, 1000));
    t.same(ops(p, 'MKNOD'), [], 'no mknod');
    const nul = mountsOn(p, '/dev/null');
    t.same(nul.map((o) => o.args), [{ source: '/dev/null', target: '/dev/null', flags: k.MS_BIND, fstype: '', data: '', pflags: P.SRC_OPEN | P.MKFILE, guard: '' }]);
    t.equal(mountsOn(p, '/dev/tty').length, 1);
    t.end();
  });

  t.test('symlinks and /dev/ptmx', (t) => {
    const p = plan(defaultSpec());
    const links = ops(p, 'SYMLINK');
    t.same(
      links.map((o) => [o.args.path, o.args.target]),
      [
        ['/dev/fd', '/proc/self/fd'],
        ['/dev/stdin', '/proc/self/fd/0'],
        ['/dev/stdout', '/proc/self/fd/1'],
        ['/dev/stderr', '/proc/self/fd/2'],
        ['/dev/core', '/proc/kcore'],
        ['/dev/ptmx', 'pts/ptmx'],
      ],
    );
    const iUnlink = pos(p, 'UNLINK', (o) => o.args.path === '/dev/ptmx');
    t.equal(p.ops[iUnlink + 1]!.name, 'SYMLINK', 'ptmx is replaced by the symlink');
    t.equal(p.ops[iUnlink]!.ignore, IGNORE.ENOENT);
    t.notOk(
      ops(plan(defaultSpec(), { host: { ...HOST, procKcore: false } }), 'SYMLINK').some((o) => o.args.path === '/dev/core'),
      'no /dev/core without /proc/kcore',
    );
    t.equal(ops(p, 'REOPEN_DEVNULL').length, 1);
    t.ok(pos(p, 'REOPEN_DEVNULL') > pos(p, 'PIVOT_ROOT'), "stdio moves to the container's /dev/null after pivot_root");
    t.end();
  });

  t.test('a bind-mounted /dev is left as it is', (t) => {
    const p = plan(specWith((s) => (s.mounts![1] = { destination: '/dev', type: 'bind', source: join(BUNDLE, 'data'), options: ['rbind'] })));
    t.same(ops(p, 'MKNOD'), []);
    t.same(ops(p, 'SYMLINK'), []);
    t.same(ops(p, 'REOPEN_DEVNULL'), []);
    t.end();
  });
});

t.test('the order around pivot_root', (t) => {
  const spec = specWith((s) => (s.process!.consoleSize = { height: 40, width: 120 }));
  const p = plan(spec, { fds: { sync: 10, parentSync: 11, cgroup: -1, fifo: 12, console: 9 } });
  const iPivot = pos(p, 'PIVOT_ROOT');
  const iConsole = pos(p, 'CONSOLE');
  const iRootRo = pos(p, 'REMOUNT', (o) => o.args.target === '/');
  const iHost = pos(p, 'SETHOSTNAME');
  t.ok(iPivot >= 0 && iConsole >= 0 && iRootRo >= 0 && iHost >= 0, 'all present');
  t.ok(iPivot < iConsole, 'pivot_root < console');
  t.ok(iConsole < iRootRo, 'console < root read-only');
  t.ok(iRootRo < iHost, 'root read-only < hostname');
  t.same(p.ops[iConsole]!.args, { socket: 9, rows: 40, cols: 120 });
  t.same(p.ops[iRootRo]!.args, { target: '/', flags: k.MS_BIND | k.MS_RDONLY, pflags: P.HOST | P.KEEP_LOCKED });
  t.same(p.ops[iHost]!.args, { name: 'tsrunc' });
  t.equal(ops(p, 'PIVOT_ROOT').length, 1);
  t.same(ops(p, 'MOVE_ROOT'), []);
  t.same(ops(p, 'CHROOT'), []);

  const plain = plan(specWith((s) => {
    s.process!.terminal = false;
    s.root!.readonly = false;
  }));
  t.same(ops(plain, 'CONSOLE'), [], 'no terminal, no console');
  t.same(remountsOf(plain, '/'), [], 'a writable root is not remounted');
  t.end();
});

t.test('--no-pivot', (t) => {
  const p = plan(defaultSpec(), { noPivot: true });
  t.same(ops(p, 'PIVOT_ROOT'), []);
  t.equal(ops(p, 'MOVE_ROOT').length, 1);
  const umounts = ops(p, 'UMOUNT');
  t.same(
    umounts.map((o) => o.args),
    [
      { path: '/proc', flags: k.MNT_DETACH },
      { path: '/sys', flags: k.MNT_DETACH },
    ],
    "the host's full procfs and sysfs, not the one in the rootfs nor a partial one",
  );
  for (const u of umounts) {
    const prev = p.ops[p.ops.indexOf(u) - 1]!;
    t.same(prev.args, { source: '', target: u.args.path, flags: k.MS_SLAVE | k.MS_REC, fstype: '', data: '', pflags: P.HOST, guard: '' }, `${u.args.path} made rslave first`);
    t.ok(p.ops.indexOf(u) < pos(p, 'MOVE_ROOT'), 'before the move');
  }
  t.end();
});

t.test('no mount namespace: chroot, and no mounts allowed', (t) => {
  const bare = specWith((s) => {
    s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'mount');
    s.mounts = [];
    delete s.linux!.maskedPaths;
    delete s.linux!.readonlyPaths;
    s.root!.readonly = false;
  });
  const p = plan(bare);
  t.notOk(p.cloneFlags & k.CLONE_NEWNS);
  t.same(ops(p, 'PIVOT_ROOT'), []);
  t.same(ops(p, 'MOUNT'), [], 'no mounts at all');
  const iRoot = pos(p, 'OPEN_ROOT');
  t.same(
    p.ops.slice(iRoot, iRoot + 3).map((o) => o.name),
    ['OPEN_ROOT', 'OPEN_PROC', 'CHROOT'],
  );

  const needs = 'config.json: linux.namespaces: a mount namespace is needed for mounts, maskedPaths, readonlyPaths or root.readonly';
  t.same(configError(() => plan(specWith((s) => (s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'mount'))))), { message: needs, path: 'linux.namespaces' });
  const roOnly = specWith((s) => {
    s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'mount');
    s.mounts = [];
    delete s.linux!.maskedPaths;
    delete s.linux!.readonlyPaths;
  });
  t.same(configError(() => plan(roOnly)), { message: needs, path: 'linux.namespaces' }, 'root.readonly alone needs one too');
  t.end();
});

t.test('capabilities', async (t) => {
  const bit = (name: string) => 1n << BigInt(CAPABILITIES[name]!);

  t.test('the bounding set', (t) => {
    const p = plan(defaultSpec());
    const drops = ops(p, 'PRCTL', (o) => o.args.option === k.PR_CAPBSET_DROP);
    const kept = new Set(['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'].map((n) => CAPABILITIES[n]!));
    const want = [...Array(41).keys()].filter((c) => !kept.has(c));
    t.same(drops.map((o) => o.args.arg2), want, 'every cap 0..cap_last_cap not in bounding');
    t.equal(drops[0]!.describe, 'drop CAP_CHOWN from the bounding set');
    const fewer = plan(defaultSpec(), { host: { ...HOST, capLastCap: 37 } });
    t.equal(Math.max(...ops(fewer, 'PRCTL', (o) => o.args.option === k.PR_CAPBSET_DROP).map((o) => Number(o.args.arg2))), 37, 'only up to cap_last_cap');
    t.end();
  });

  t.test('capset and the uid change', (t) => {
    const p = plan(defaultSpec());
    const capset = ops(p, 'CAPSET');
    const mask = bit('CAP_AUDIT_WRITE') | bit('CAP_KILL') | bit('CAP_NET_BIND_SERVICE');
    t.same(capset.map((o) => o.args), [{ effective: mask, permitted: mask, inheritable: 0n }], 'inheritable stays empty (CVE-2022-29162)');
    const iDrop = pos(p, 'PRCTL', (o) => o.args.option === k.PR_CAPBSET_DROP);
    const iKeep = pos(p, 'PRCTL', (o) => o.args.option === k.PR_SET_KEEPCAPS && o.args.arg2 === 1);
    const iUid = pos(p, 'SETRESUID', (o) => p.ops.indexOf(o) > iKeep);
    const iUnkeep = pos(p, 'PRCTL', (o) => o.args.option === k.PR_SET_KEEPCAPS && o.args.arg2 === 0);
    const iCapset = pos(p, 'CAPSET');
    t.ok(iDrop < iKeep && iKeep < iUid && iUid < iUnkeep && iUnkeep < iCapset, 'drop bounding, keepcaps, setresuid, keepcaps off, capset');
    t.same(ops(p, 'PRCTL', (o) => o.args.option === k.PR_CAP_AMBIENT), [], 'no ambient raises');
    t.end();
  });

  t.test('inheritable and ambient when asked', (t) => {
    const spec = specWith((s) => {
      const c = s.process!.capabilities!;
      c.inheritable = ['CAP_NET_BIND_SERVICE'];
      c.permitted = [...c.permitted!];
      c.ambient = ['CAP_NET_BIND_SERVICE', 'cap_kill'];
    });
    const p = plan(spec);
    t.equal(ops(p, 'CAPSET')[0]!.args.inheritable, bit('CAP_NET_BIND_SERVICE'));
    const raises = ops(p, 'PRCTL', (o) => o.args.option === k.PR_CAP_AMBIENT);
    t.same(
      raises.map((o) => [o.args.arg2, o.args.arg3]),
      [
        [k.PR_CAP_AMBIENT_RAISE, CAPABILITIES['CAP_NET_BIND_SERVICE']],
        [k.PR_CAP_AMBIENT_RAISE, CAPABILITIES['CAP_KILL']],
      ],
    );
    for (const r of raises) t.equal(r.ignore & IGNORE.EPERM, IGNORE.EPERM, 'a raise the kernel refuses is skipped');
    t.ok(p.ops.indexOf(raises[0]!) > pos(p, 'CAPSET'), 'raised after capset');
    t.end();
  });
});

t.test('user, groups, umask, no_new_privs', (t) => {
  const spec = specWith((s) => {
    s.process!.user = { uid: 1000, gid: 100, additionalGids: [10, 20], umask: 0o077 };
  });
  const p = plan(spec);
  t.same(ops(p, 'SETGROUPS').map((o) => o.args.gids), [[10, 20]]);
  t.same(ops(p, 'SETRESGID').map((o) => o.args.gid), [100]);
  t.same(ops(p, 'SETRESUID').map((o) => o.args.uid), [1000]);
  t.ok(pos(p, 'SETGROUPS') < pos(p, 'SETRESGID') && pos(p, 'SETRESGID') < pos(p, 'SETRESUID'), 'groups, gid, uid');
  t.same(ops(p, 'UMASK').map((o) => o.args.mask), [0o077]);
  t.same(ops(plan(defaultSpec()), 'UMASK').map((o) => o.args.mask), [0o022], 'umask 0022 by default');
  t.equal(ops(p, 'PRCTL', (o) => o.args.option === k.PR_SET_NO_NEW_PRIVS && o.args.arg2 === 1).length, 1);
  t.same(
    ops(plan(specWith((s) => (s.process!.noNewPrivileges = false))), 'PRCTL', (o) => o.args.option === k.PR_SET_NO_NEW_PRIVS),
    [],
  );
  t.same(ops(plan(defaultSpec()), 'SETGROUPS').map((o) => o.args.gids), [[]], 'groups cleared');

  // A rootless runtime has setgroups denied in the user namespace it creates.
  t.same(ops(plan(rootlessSpec(1000, 1000), { host: { ...HOST, euid: 1000 } }), 'SETGROUPS'), []);
  t.equal(ops(plan(rootlessSpec(1000, 1000)), 'SETGROUPS').length, 1, 'root may setgroups in a user namespace');
  t.end();
});

t.test('rlimits', (t) => {
  const spec = specWith((s) => {
    s.process!.rlimits = [
      { type: 'RLIMIT_NOFILE', soft: 1024, hard: 4096 },
      { type: 'RLIMIT_CORE', soft: 0, hard: 0 },
      { type: 'RLIMIT_NPROC', soft: 100, hard: 200 },
      { type: 'RLIMIT_AS', soft: 2 ** 40, hard: Number.MAX_SAFE_INTEGER },
    ];
  });
  const p = plan(spec);
  t.same(
    ops(p, 'SETRLIMIT').map((o) => o.args),
    [
      { resource: 7, soft: 1024n, hard: 4096n },
      { resource: 4, soft: 0n, hard: 0n },
      { resource: 6, soft: 100n, hard: 200n },
      { resource: 9, soft: 2n ** 40n, hard: BigInt(Number.MAX_SAFE_INTEGER) },
    ],
  );
  t.equal(ops(p, 'SETRLIMIT')[0]!.describe, 'set RLIMIT_NOFILE to 1024:4096');
  t.end();
});

t.test('the last ops: ready, exec fifo, exec; fds made close-on-exec before any seccomp filter', (t) => {
  const spec = specWith((s) => (s.process!.args = ['/bin/app', '--flag', 'x y']));
  const p = plan(spec);
  const tail = p.ops.slice(-3);
  t.same(
    tail.map((o) => o.name),
    ['SYNC', 'EXEC_FIFO', 'EXEC'],
  );
  t.same(tail[0]!.args, { tag: SYNC_TAG.READY });
  t.same(tail[1]!.args, { fd: 12 });
  t.same(tail[2]!.args, {
    argv: ['/bin/app', '--flag', 'x y'],
    envp: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm', 'HOME=/root'],
  });
  t.same(ops(p, 'CLOSE_FDS').map((o) => o.args), [{ first: 3 }], 'one CLOSE_FDS');
  t.ok(pos(p, 'CLOSE_FDS') < pos(p, 'SETRESUID'), 'before the identity ops (and so before a filter installed without no_new_privs)');

  const noFifo = plan(spec, { fds: { sync: 10, parentSync: 11, cgroup: -1, fifo: -1, console: -1 }, preserveFds: 2 });
  t.same(
    noFifo.ops.slice(-2).map((o) => [o.name, o.args]),
    [
      ['SYNC', { tag: SYNC_TAG.READY }],
      ['EXEC', tail[2]!.args],
    ],
    'no fifo: exec right after ready',
  );
  t.same(ops(noFifo, 'CLOSE_FDS').map((o) => o.args), [{ first: 5 }], '--preserve-fds 2 keeps fds 3 and 4');
  t.end();
});

t.test('cwd and the executable lookup', (t) => {
  const spec = specWith((s) => {
    s.process!.cwd = '/work';
    s.process!.env = ['PATH=/first', 'A=1', 'PATH=/usr/bin:/bin'];
    s.process!.user = { uid: 1000, gid: 1000 };
  });
  const p = plan(spec);
  const mk = ops(p, 'MKDIR', (o) => o.args.path === '/work');
  t.equal(mk.length, 1, 'the cwd is created');
  const chdir = ops(p, 'CHDIR');
  t.same(chdir.map((o) => o.args), [{ path: '/work', pflags: P.CHECK_INSIDE }], 'checked to be inside the container (CVE-2024-21626)');
  t.ok(p.ops.indexOf(mk[0]!) < pos(p, 'SETRESUID', (o) => o.args.uid === 1000), 'created as root');
  t.ok(p.ops.indexOf(chdir[0]!) > pos(p, 'SETRESUID', (o) => o.args.uid === 1000), 'entered as the user');
  const find = ops(p, 'FIND_EXEC');
  t.same(find.map((o) => o.args), [{ file: 'sh', path: '/usr/bin:/bin' }], 'the last PATH wins');
  t.ok(p.ops.indexOf(find[0]!) < pos(p, 'SYNC', (o) => o.args.tag === SYNC_TAG.READY), 'looked up before ready');
  t.same(
    ops(plan(specWith((s) => (s.process!.env = ['TERM=xterm']))), 'FIND_EXEC').map((o) => o.args.path),
    [''],
    'no PATH, empty search path',
  );
  t.end();
});
