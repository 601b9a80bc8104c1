// `tsrunc spec` writes runc's example config (libcontainer/specconv/example.go),
// and `tsrunc spec --rootless` applies runc's ToRootless to it.
import t from 'tap';
import { defaultSpec, rootlessSpec } from '../../src/oci/default-spec.js';
import { OCI_SPEC_VERSION } from '../../src/oci/spec.js';
import { validateSpec } from '../../src/oci/validate.js';

const RUNC_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
const RUNC_MASKED = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/sys/firmware',
  '/proc/scsi',
];
const RUNC_READONLY = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

t.test('defaultSpec matches runc spec', (t) => {
  const s = defaultSpec();
  t.equal(s.ociVersion, OCI_SPEC_VERSION);
  t.same(s.root, { path: 'rootfs', readonly: true });
  t.ok(s.hostname, 'has a hostname');

  const p = s.process!;
  t.equal(p.terminal, true);
  t.same(p.user, { uid: 0, gid: 0 });
  t.same(p.args, ['sh']);
  t.same(p.env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm']);
  t.equal(p.cwd, '/');
  t.equal(p.noNewPrivileges, true);
  t.same(p.capabilities, { bounding: RUNC_CAPS, effective: RUNC_CAPS, permitted: RUNC_CAPS }, 'no inheritable or ambient set');
  t.same(p.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }]);

  t.same(s.mounts, [
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
  ]);

  const l = s.linux!;
  t.same(l.maskedPaths, RUNC_MASKED);
  t.same(l.readonlyPaths, RUNC_READONLY);
  t.same(l.resources, { devices: [{ allow: false, access: 'rwm' }] }, 'deny all devices');
  t.same(l.namespaces, [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }], 'no cgroup namespace by default');
  t.notOk(l.uidMappings, 'no uid mappings');
  t.end();
});

t.test('cgroupNamespace adds a cgroup namespace (runc on a pure cgroup v2 host)', (t) => {
  const types = defaultSpec({ cgroupNamespace: true }).linux!.namespaces!.map((n) => n.type);
  t.same(types, ['pid', 'network', 'ipc', 'uts', 'mount', 'cgroup']);
  t.same(
    defaultSpec({ cgroupNamespace: false }).linux!.namespaces!.map((n) => n.type),
    ['pid', 'network', 'ipc', 'uts', 'mount'],
  );
  t.end();
});

t.test('each call returns a fresh object', (t) => {
  const a = defaultSpec();
  a.process!.capabilities!.bounding!.push('CAP_SYS_ADMIN');
  a.mounts!.pop();
  const b = defaultSpec();
  t.same(b.process!.capabilities!.bounding, RUNC_CAPS);
  t.equal(b.mounts!.length, 7);
  t.end();
});

t.test('rootlessSpec(uid, gid) is runc ToRootless', (t) => {
  const s = rootlessSpec(1000, 1001);
  const l = s.linux!;
  const types = l.namespaces!.map((n) => n.type);
  t.notOk(types.includes('network'), 'no network namespace (the host network is kept)');
  t.equal(types.filter((x) => x === 'user').length, 1, 'one user namespace');
  t.equal(types[types.length - 1], 'user', 'the user namespace is appended');
  t.same(types, ['pid', 'ipc', 'uts', 'mount', 'user']);
  t.same(l.uidMappings, [{ containerID: 0, hostID: 1000, size: 1 }]);
  t.same(l.gidMappings, [{ containerID: 0, hostID: 1001, size: 1 }]);
  t.notOk('resources' in l, 'no cgroup resources');

  const sys = s.mounts!.filter((m) => m.destination === '/sys');
  t.same(sys, [{ destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] }], '/sys is an rbind of the host');
  for (const m of s.mounts!) {
    t.notOk(
      (m.options ?? []).some((o) => o.startsWith('uid=') || o.startsWith('gid=')),
      `${m.destination}: no uid=/gid= options`,
    );
  }
  const pts = s.mounts!.find((m) => m.destination === '/dev/pts')!;
  t.same(pts.options, ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'], 'devpts keeps its other options in order');
  const proc = s.mounts!.find((m) => m.destination === '/proc')!;
  t.notOk('options' in proc, 'a mount without options gets none added');
  t.same(
    s.mounts!.map((m) => m.destination),
    defaultSpec().mounts!.map((m) => m.destination),
    'same mount points, same order',
  );
  t.same(l.maskedPaths, RUNC_MASKED);
  t.same(l.readonlyPaths, RUNC_READONLY);
  t.end();
});

t.test('rootlessSpec with a cgroup namespace keeps it', (t) => {
  const types = rootlessSpec(1000, 1000, { cgroupNamespace: true }).linux!.namespaces!.map((n) => n.type);
  t.same(types, ['pid', 'ipc', 'uts', 'mount', 'cgroup', 'user']);
  t.end();
});

t.test('both pass validateSpec', (t) => {
  t.doesNotThrow(() => validateSpec(JSON.parse(JSON.stringify(defaultSpec()))));
  t.doesNotThrow(() => validateSpec(JSON.parse(JSON.stringify(defaultSpec({ cgroupNamespace: true })))));
  t.doesNotThrow(() => validateSpec(JSON.parse(JSON.stringify(rootlessSpec(1000, 1000)))));
  t.doesNotThrow(() => validateSpec(JSON.parse(JSON.stringify(rootlessSpec(0, 0, { cgroupNamespace: true })))));
  t.end();
});
