// OCI mount options -> mount(2) flags, propagation, mount_setattr(2)
// attributes and filesystem data, as runc maps them.
import t from 'tap';
import * as k from '../../src/linux/constants.js';
import { parseMountOptions, describeFlags, PROPAGATION } from '../../src/runtime/plan/mount-options.js';

t.test('no options', (t) => {
  t.same(parseMountOptions(), { flags: 0, cleared: 0, propagation: [], recSet: 0, recClear: 0, data: '', tmpcopyup: false, idmap: 'none' });
  t.same(parseMountOptions([]), parseMountOptions());
  t.end();
});

t.test('each flag option sets its MS_* flag', (t) => {
  const cases: [string, number][] = [
    ['ro', k.MS_RDONLY],
    ['nosuid', k.MS_NOSUID],
    ['nodev', k.MS_NODEV],
    ['noexec', k.MS_NOEXEC],
    ['sync', k.MS_SYNCHRONOUS],
    ['remount', k.MS_REMOUNT],
    ['mand', k.MS_MANDLOCK],
    ['dirsync', k.MS_DIRSYNC],
    ['nosymfollow', k.MS_NOSYMFOLLOW],
    ['noatime', k.MS_NOATIME],
    ['nodiratime', k.MS_NODIRATIME],
    ['bind', k.MS_BIND],
    ['silent', k.MS_SILENT],
    ['relatime', k.MS_RELATIME],
    ['iversion', k.MS_I_VERSION],
    ['strictatime', k.MS_STRICTATIME],
    ['lazytime', k.MS_LAZYTIME],
    ['defaults', 0],
  ];
  for (const [opt, flag] of cases) {
    const o = parseMountOptions([opt]);
    t.equal(o.flags, flag, `${opt} sets 0x${flag.toString(16)}`);
    t.equal(o.cleared, 0, `${opt} clears nothing`);
    t.equal(o.data, '', `${opt} is not filesystem data`);
  }
  t.end();
});

t.test('rbind is MS_BIND|MS_REC', (t) => {
  t.equal(parseMountOptions(['rbind']).flags, k.MS_BIND | k.MS_REC);
  t.equal(parseMountOptions(['bind']).flags & k.MS_REC, 0, 'bind alone is not recursive');
  t.end();
});

t.test('the negative options clear a flag and record it as cleared', (t) => {
  const cases: [string, string, number][] = [
    ['rw', 'ro', k.MS_RDONLY],
    ['suid', 'nosuid', k.MS_NOSUID],
    ['dev', 'nodev', k.MS_NODEV],
    ['exec', 'noexec', k.MS_NOEXEC],
    ['async', 'sync', k.MS_SYNCHRONOUS],
    ['atime', 'noatime', k.MS_NOATIME],
    ['diratime', 'nodiratime', k.MS_NODIRATIME],
    ['norelatime', 'relatime', k.MS_RELATIME],
    ['nostrictatime', 'strictatime', k.MS_STRICTATIME],
    ['nomand', 'mand', k.MS_MANDLOCK],
    ['noiversion', 'iversion', k.MS_I_VERSION],
    ['nolazytime', 'lazytime', k.MS_LAZYTIME],
    ['loud', 'silent', k.MS_SILENT],
    ['symfollow', 'nosymfollow', k.MS_NOSYMFOLLOW],
  ];
  for (const [neg, pos, flag] of cases) {
    const alone = parseMountOptions([neg]);
    t.equal(alone.flags, 0, `${neg} alone sets nothing`);
    t.equal(alone.cleared, flag, `${neg} records 0x${flag.toString(16)} as cleared`);
    const after = parseMountOptions([pos, neg]);
    t.equal(after.flags, 0, `${pos},${neg}: the later ${neg} wins`);
    t.equal(after.cleared, flag);
    const before = parseMountOptions([neg, pos]);
    t.equal(before.flags, flag, `${neg},${pos}: the later ${pos} wins`);
    t.equal(before.cleared, 0, `${pos} takes ${neg} back off the cleared set`);
  }
  t.end();
});

t.test('flags combine and leave the others alone', (t) => {
  const o = parseMountOptions(['nosuid', 'noexec', 'nodev', 'ro', 'rw']);
  t.equal(o.flags, k.MS_NOSUID | k.MS_NOEXEC | k.MS_NODEV);
  t.equal(o.cleared, k.MS_RDONLY);
  t.end();
});

t.test('propagation options are kept in order', (t) => {
  t.same(parseMountOptions(['rprivate']).propagation, [k.MS_PRIVATE | k.MS_REC]);
  const o = parseMountOptions(['nosuid', 'rshared', 'slave', 'runbindable', 'private', 'rslave', 'shared', 'unbindable']);
  t.same(o.propagation, [
    k.MS_SHARED | k.MS_REC,
    k.MS_SLAVE,
    k.MS_UNBINDABLE | k.MS_REC,
    k.MS_PRIVATE,
    k.MS_SLAVE | k.MS_REC,
    k.MS_SHARED,
    k.MS_UNBINDABLE,
  ]);
  t.equal(o.flags, k.MS_NOSUID, 'propagation does not go into the mount flags');
  t.same(parseMountOptions(['shared', 'shared']).propagation, [k.MS_SHARED, k.MS_SHARED], 'repeats are kept');
  t.equal(PROPAGATION['rslave'], k.MS_SLAVE | k.MS_REC);
  t.end();
});

t.test('recursive attributes (mount_setattr)', (t) => {
  const rec = (opts: string[]) => {
    const o = parseMountOptions(opts);
    return { set: o.recSet, clear: o.recClear, flags: o.flags };
  };
  t.same(rec(['rro']), { set: k.MOUNT_ATTR_RDONLY, clear: 0, flags: 0 }, 'rro is not MS_RDONLY');
  t.same(rec(['rrw']), { set: 0, clear: k.MOUNT_ATTR_RDONLY, flags: 0 });
  t.same(rec(['rnosuid', 'rnodev', 'rnoexec']), { set: k.MOUNT_ATTR_NOSUID | k.MOUNT_ATTR_NODEV | k.MOUNT_ATTR_NOEXEC, clear: 0, flags: 0 });
  t.same(rec(['rsuid', 'rdev', 'rexec']), { set: 0, clear: k.MOUNT_ATTR_NOSUID | k.MOUNT_ATTR_NODEV | k.MOUNT_ATTR_NOEXEC, flags: 0 });
  t.same(rec(['rnodiratime']), { set: k.MOUNT_ATTR_NODIRATIME, clear: 0, flags: 0 });
  t.same(rec(['rdiratime']), { set: 0, clear: k.MOUNT_ATTR_NODIRATIME, flags: 0 });
  t.same(rec(['rnosymfollow']), { set: k.MOUNT_ATTR_NOSYMFOLLOW, clear: 0, flags: 0 });
  t.same(rec(['rsymfollow']), { set: 0, clear: k.MOUNT_ATTR_NOSYMFOLLOW, flags: 0 });

  // The atime attributes are one field: setting one must clear the whole
  // MOUNT_ATTR__ATIME field (mount_setattr(2)).
  t.same(rec(['rnoatime']), { set: k.MOUNT_ATTR_NOATIME, clear: k.MOUNT_ATTR__ATIME, flags: 0 });
  t.same(rec(['rstrictatime']), { set: k.MOUNT_ATTR_STRICTATIME, clear: k.MOUNT_ATTR__ATIME, flags: 0 });
  t.same(rec(['rrelatime']), { set: k.MOUNT_ATTR_RELATIME, clear: k.MOUNT_ATTR__ATIME, flags: 0 }, 'relatime is 0: only the clear says it');
  t.same(rec(['ratime']), { set: 0, clear: k.MOUNT_ATTR_NOATIME, flags: 0 }, 'ratime clears noatime only');
  t.same(rec(['rnorelatime']), { set: 0, clear: k.MOUNT_ATTR_RELATIME, flags: 0 });
  t.same(rec(['rnostrictatime']), { set: 0, clear: k.MOUNT_ATTR_STRICTATIME, flags: 0 });
  t.same(rec(['rro', 'rnoatime']), { set: k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR_NOATIME, clear: k.MOUNT_ATTR__ATIME, flags: 0 });
  t.end();
});

t.test('other options are filesystem data, comma-joined in order', (t) => {
  const o = parseMountOptions(['nosuid', 'strictatime', 'mode=755', 'size=65536k']);
  t.equal(o.data, 'mode=755,size=65536k');
  t.equal(o.flags, k.MS_NOSUID | k.MS_STRICTATIME);
  t.equal(parseMountOptions(['newinstance', 'nosuid', 'ptmxmode=0666', 'mode=0620', 'gid=5']).data, 'newinstance,ptmxmode=0666,mode=0620,gid=5');
  t.equal(parseMountOptions(['lowerdir=/a:/b', 'upperdir=/u', 'workdir=/w']).data, 'lowerdir=/a:/b,upperdir=/u,workdir=/w');
  t.equal(parseMountOptions(['ro']).data, '');
  t.end();
});

t.test('tmpcopyup and idmap are extensions, not data', (t) => {
  const c = parseMountOptions(['tmpcopyup', 'mode=755']);
  t.equal(c.tmpcopyup, true);
  t.equal(c.data, 'mode=755');
  t.equal(parseMountOptions(['mode=755']).tmpcopyup, false);

  t.equal(parseMountOptions(['rbind', 'idmap']).idmap, 'idmap');
  t.equal(parseMountOptions(['rbind', 'ridmap']).idmap, 'ridmap');
  t.equal(parseMountOptions(['rbind', 'idmap']).data, '');
  t.equal(parseMountOptions(['rbind']).idmap, 'none');
  t.end();
});

t.test('describeFlags names the set flags', (t) => {
  t.equal(describeFlags(0), '');
  t.equal(describeFlags(k.MS_RDONLY), 'ro');
  t.equal(describeFlags(k.MS_RDONLY | k.MS_NOSUID | k.MS_NODEV | k.MS_NOEXEC), 'nodev,noexec,nosuid,ro');
  t.equal(describeFlags(k.MS_BIND | k.MS_REC), 'bind', 'rbind is not named apart from bind');
  t.equal(describeFlags(k.MS_STRICTATIME | k.MS_NOSUID), 'nosuid,strictatime');
  t.notMatch(describeFlags(0xffffffff), /\b(rw|suid|dev|exec|async|atime|defaults|rbind)\b/, 'never names a clearing option or rbind');
  const all = parseMountOptions(describeFlags(k.MS_NOEXEC | k.MS_RDONLY | k.MS_RELATIME).split(','));
  t.equal(all.flags, k.MS_NOEXEC | k.MS_RDONLY | k.MS_RELATIME, 'the names parse back to the same flags');
  t.end();
});
