// Linux helpers: signals, mountinfo, errno names, dev_t, cgroup placement and
// layout, container ids.
import t from 'tap';
import { statSync } from 'node:fs';
import { parseSignal, signalName } from '../../src/linux/signals.js';
import { parseMountInfo, mountOf, type MountInfo } from '../../src/linux/mountinfo.js';
import { SyscallError, errnoName, errnoValue, fromNodeError } from '../../src/linux/syscall-error.js';
import { makedev } from '../../src/linux/constants.js';
import { cgroupDirFor } from '../../src/runtime/cgroups/placement.js';
import { cgroupLayout } from '../../src/runtime/cgroups/mode.js';
import { validateId } from '../../src/runtime/state.js';
import { RuntimeError } from '../../src/runtime/errors.js';

t.test('parseSignal', (t) => {
  for (const s of ['KILL', 'SIGKILL', 'sigkill', 'Kill', '9']) t.equal(parseSignal(s), 9, s);
  t.equal(parseSignal('TERM'), 15);
  t.equal(parseSignal('SIGHUP'), 1);
  t.equal(parseSignal('usr1'), 10);
  t.equal(parseSignal('64'), 64, 'the highest signal number');
  t.equal(parseSignal('1'), 1);
  for (const s of ['0', '65', '100', '-9', '9x', 'FOO', 'SIGFOO', '', 'SIG']) t.equal(parseSignal(s), undefined, `"${s}" is not a signal`);

  // glibc's SIGRTMIN is 34 (the C library keeps 32 and 33), SIGRTMAX 64
  t.equal(parseSignal('RTMIN'), 34);
  t.equal(parseSignal('RTMIN+1'), 35);
  t.equal(parseSignal('SIGRTMIN+1'), 35);
  t.equal(parseSignal('sigrtmin+30'), 64);
  t.equal(parseSignal('RTMAX'), 64);
  t.equal(parseSignal('RTMAX-2'), 62);
  t.equal(parseSignal('RTMIN+31'), undefined, 'past SIGRTMAX');
  t.equal(parseSignal('RTMIN-1'), undefined, 'below SIGRTMIN');
  t.equal(parseSignal('RTMINX'), undefined);

  t.equal(signalName(9), 'SIGKILL');
  t.equal(signalName(parseSignal('term')!), 'SIGTERM');
  t.end();
});

t.test('parseMountInfo', (t) => {
  const text = [
    '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro',
    '36 35 98:0 /mnt1 /mnt\\0402 rw,noatime master:1 shared:7 propagate_from:2 - ext3 /dev/my\\040disk rw,errors=continue',
    '40 22 0:5 / /proc rw,nosuid - proc proc rw',
    '41 22 0:50 / /tab\\011and\\134back rw - tmpfs tmpfs rw',
    '',
    'garbage line without a separator',
  ].join('\n');
  const m = parseMountInfo(text);
  t.equal(m.length, 4, 'blank and malformed lines are skipped');
  t.same(m[0], {
    id: 22,
    parent: 1,
    root: '/',
    mountPoint: '/',
    options: 'rw,relatime',
    fsType: 'ext4',
    source: '/dev/sda1',
    superOptions: 'rw,errors=remount-ro',
  });
  t.same(m[1], {
    id: 36,
    parent: 35,
    root: '/mnt1',
    mountPoint: '/mnt 2',
    options: 'rw,noatime',
    fsType: 'ext3',
    source: '/dev/my disk',
    superOptions: 'rw,errors=continue',
  }, 'optional fields before "-" are skipped; \\040 is a space');
  t.equal(m[2]!.fsType, 'proc', 'no optional fields');
  t.equal(m[2]!.mountPoint, '/proc');
  t.equal(m[3]!.mountPoint, '/tab\tand\\back', 'tab and backslash escapes');
  t.end();
});

t.test('mountOf', (t) => {
  const mi = (id: number, mountPoint: string): MountInfo => ({ id, parent: 1, root: '/', mountPoint, options: 'rw', fsType: 'ext4', source: 'x', superOptions: 'rw' });
  const mounts = [mi(1, '/'), mi(2, '/foo'), mi(3, '/foo/bar'), mi(4, '/var/lib'), mi(5, '/var/lib')];
  t.equal(mountOf('/foo/bar/baz', mounts)?.id, 3, 'the longest prefix');
  t.equal(mountOf('/foo/bar', mounts)?.id, 3, 'the mount point itself');
  t.equal(mountOf('/foo/other', mounts)?.id, 2);
  t.equal(mountOf('/foobar', mounts)?.id, 1, '/foo does not hold /foobar');
  t.equal(mountOf('/foo/barn', mounts)?.id, 2, '/foo/bar does not hold /foo/barn');
  t.equal(mountOf('/etc', mounts)?.id, 1, '/ holds everything');
  t.equal(mountOf('/var/lib/x', mounts)?.id, 5, 'the top of stacked mounts (the later line)');
  t.equal(mountOf('/x', [mi(2, '/foo')]), undefined, 'no mount holds it');
  t.equal(mountOf('/x', []), undefined);
  t.end();
});

t.test('SyscallError', (t) => {
  const e = new SyscallError('mount', 2, '/x');
  t.equal(e.message, 'mount /x: ENOENT (no such file or directory)');
  t.equal(e.errno, 2);
  t.equal(e.code, 'ENOENT');
  t.equal(e.syscall, 'mount');
  t.equal(e.path, '/x');
  t.equal(e.name, 'SyscallError');
  t.ok(e instanceof Error);

  t.equal(new SyscallError('clone3', -1).message, 'clone3: EPERM (operation not permitted)', 'a negative errno as the kernel returns it');
  t.equal(new SyscallError('clone3', -1).errno, 1);
  t.equal(new SyscallError('mount', 13, '/a', 'op 12: mount proc on /proc').message, 'op 12: mount proc on /proc: EACCES (permission denied)');
  t.equal(new SyscallError('ioctl', 9999).message, 'ioctl: E9999', 'an unknown errno');

  t.equal(errnoName(1), 'EPERM');
  t.equal(errnoName(-22), 'EINVAL');
  t.equal(errnoName(38), 'ENOSYS');
  t.equal(errnoName(9999), 'E9999');
  t.equal(errnoValue('ENOENT'), 2);
  t.equal(errnoValue('EBUSY'), 16);
  t.equal(errnoValue('ENOPE'), undefined);

  let nodeErr: unknown;
  try {
    statSync('/nonexistent/tsrunc-test');
  } catch (err) {
    nodeErr = err;
  }
  const wrapped = fromNodeError(nodeErr);
  t.ok(wrapped instanceof SyscallError, "Node's fs errors become SyscallErrors");
  t.equal((wrapped as SyscallError).message, 'stat /nonexistent/tsrunc-test: ENOENT (no such file or directory)');
  const other = new Error('plain');
  t.equal(fromNodeError(other), other, 'other errors pass through');
  t.end();
});

t.test('makedev', (t) => {
  t.equal(makedev(1, 3), 0x103n);
  t.equal(makedev(1, 3), BigInt(statSync('/dev/null').rdev), 'the dev_t of /dev/null');
  t.equal(makedev(0, 0), 0n);
  t.equal(makedev(4095, 255), 0xfffffn, 'the old 12:8 bit layout');
  t.equal(makedev(4096, 256), 0x100000100000n, 'majors and minors past it use the high bits');
  t.equal(makedev(0x12345, 0x6789a), 0x120006783459an, "glibc's makedev(0x12345, 0x6789a)");
  t.equal(makedev(0xfffff, 0xfffff), 4486011736293375n);
  t.end();
});

t.test('cgroupDirFor (runc cgroupfs rules)', (t) => {
  const mnt = '/sys/fs/cgroup';
  const own = '/user.slice/user-0.slice/session-1.scope';
  t.equal(cgroupDirFor(mnt, '/machine/c1', 'c1', own), '/sys/fs/cgroup/machine/c1', 'an absolute path hangs off the mount');
  t.equal(cgroupDirFor(mnt, 'mygroup/c1', 'c1', own), '/sys/fs/cgroup/user.slice/user-0.slice/mygroup/c1', 'a relative one off the parent of our own cgroup');
  t.equal(cgroupDirFor(mnt, undefined, 'c1', own), '/sys/fs/cgroup/user.slice/user-0.slice/c1', 'the default is the id, relative');
  t.equal(cgroupDirFor(mnt, '', 'c1', own), '/sys/fs/cgroup/user.slice/user-0.slice/c1', 'an empty path is the default');
  t.equal(cgroupDirFor(mnt, undefined, 'c1', '/'), '/sys/fs/cgroup/c1', 'in the root cgroup');
  t.equal(cgroupDirFor('/sys/fs/cgroup/unified', '/a/b', 'c1', own), '/sys/fs/cgroup/unified/a/b', 'a hybrid host: under the cgroup2 mount');
  t.equal(cgroupDirFor(mnt, '/a/../../../etc', 'c1', own), '/sys/fs/cgroup/etc', 'an absolute path cannot climb out of the mount');
  t.equal(cgroupDirFor(mnt, '/a//b/./c', 'c1', own), '/sys/fs/cgroup/a/b/c', 'cleaned');

  const escape = cgroupDirFor(mnt, '../../../../etc/evil', 'c1', own);
  t.equal(escape, '/sys/fs/cgroup/user.slice/user-0.slice/etc/evil', 'a relative path cannot climb out either (runc CleanPath)');
  t.end();
});

t.test('cgroupLayout', (t) => {
  const unified = parseMountInfo('30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n');
  t.same(cgroupLayout(unified), { mode: 'unified', unifiedMount: '/sys/fs/cgroup' });

  const hybrid = parseMountInfo(
    [
      '30 22 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755',
      '31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate',
      '32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:6 - cgroup cgroup rw,xattr,name=systemd',
      '33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:7 - cgroup cgroup rw,memory',
    ].join('\n'),
  );
  t.same(cgroupLayout(hybrid), { mode: 'hybrid', unifiedMount: '/sys/fs/cgroup/unified' });

  const legacy = parseMountInfo(
    [
      '30 22 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755',
      '32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd',
      '33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct',
    ].join('\n'),
  );
  t.same(cgroupLayout(legacy), { mode: 'legacy', unifiedMount: undefined });

  t.same(cgroupLayout(parseMountInfo('22 1 8:1 / / rw - ext4 /dev/sda1 rw\n')), { mode: 'none', unifiedMount: undefined });

  const twoV2 = parseMountInfo(
    [
      '40 22 0:26 /some/sub /mnt/cg-sub rw - cgroup2 cgroup2 rw',
      '41 22 0:26 / /mnt/cg-root rw - cgroup2 cgroup2 rw',
    ].join('\n'),
  );
  t.same(cgroupLayout(twoV2), { mode: 'unified', unifiedMount: '/mnt/cg-root' }, 'the mount of the cgroup2 root is preferred');
  t.end();
});

t.test('validateId (runc rules)', (t) => {
  const reason = (id: string): string => {
    try {
      validateId(id);
      return 'valid';
    } catch (e) {
      return e instanceof RuntimeError ? e.message : `not a RuntimeError: ${String(e)}`;
    }
  };
  for (const id of ['c1', 'my_container', 'a+b', 'a-b', 'a.b', 'A.b-C_d+9', '...', '..a', 'x'.repeat(1024)]) t.equal(reason(id), 'valid', id.length > 40 ? '1024 bytes' : id);
  t.equal(reason(''), 'container id cannot be empty');
  for (const id of ['/', 'a/b', '..', '.', '../x', 'a b', 'a:b', 'é', 'a\n']) {
    t.match(reason(id), /^invalid container id format/, JSON.stringify(id));
  }
  t.equal(reason('x'.repeat(1025)), 'invalid container id format: longer than 1024 bytes');
  t.end();
});
