// The container's filesystem: mounts and their options as the kernel shows
// them, the read-only root, /dev, masked and read-only paths, --no-pivot,
// and mount destinations that try to leave the rootfs through symlinks.
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle.js';
import { cli, needsRoot } from '../helpers/cli.js';

/** mountinfo lines inside the container: mount point -> "options | fstype | super options" */
function parseMounts(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0) continue;
    out.set(f[4]!, `${f[5]} | ${f[sep + 1]} | ${f[sep + 3]}`);
  }
  return out;
}

t.test('filesystem', { skip: needsRoot }, async (t) => {
  const tsrunc = cli();

  t.test('default mounts and their options', async (t) => {
    const b = makeBundle(['cat', '/proc/self/mountinfo']);
    const r = await tsrunc(['run', '-b', b.dir, 'fs1']);
    t.equal(r.exitCode, 0, r.stderr);
    const m = parseMounts(r.stdout);
    t.match(m.get('/'), /^ro,/, 'root is read-only');
    t.match(m.get('/proc'), /\| proc \|/);
    t.match(m.get('/dev'), /^rw,nosuid.*\| tmpfs \|.*mode=755/);
    t.match(m.get('/dev/pts'), /^rw,nosuid,noexec.*\| devpts \|.*gid=5.*mode=620.*ptmxmode=666/);
    t.match(m.get('/dev/shm'), /^rw,nosuid,nodev,noexec.*\| tmpfs \|.*size=65536k/);
    t.match(m.get('/dev/mqueue'), /^rw,nosuid,nodev,noexec.*\| mqueue \|/);
    t.match(m.get('/sys'), /^ro,nosuid,nodev,noexec.*\| sysfs \|/);
    t.ok(m.has('/sys/fs/cgroup'), 'a cgroup mount');
    t.match(m.get('/proc/keys'), /\| tmpfs \|/, "masked file: the container's /dev/null (on its /dev tmpfs) bound over it");
    t.match(m.get('/sys/firmware'), /^ro,.*\| tmpfs \|/, 'masked directory: read-only tmpfs');
    t.match(m.get('/proc/sys'), /^ro,.*\| proc \|/, 'read-only path');
  });

  t.test('a writable root and a read-only root', async (t) => {
    const b = makeBundle(['sh', '-c', 'touch /made-here && echo ok']);
    const ro = await tsrunc(['run', '-b', b.dir, 'fs2']);
    t.equal(ro.exitCode, 1);
    t.match(ro.stderr, /Read-only file system/);
    b.spec.root!.readonly = false;
    b.save();
    const rw = await tsrunc(['run', '-b', b.dir, 'fs3']);
    t.equal(rw.stdout, 'ok');
    t.ok(existsSync(join(b.rootfs, 'made-here')));
  });

  t.test('bind mounts: ro, rw, file, relative source, propagation, recursive read-only', async (t) => {
    const host = mkdtempSync(join(tmpdir(), 'tsrunc-src-'));
    t.teardown(() => rmSync(host, { recursive: true, force: true }));
    chmodSync(host, 0o755);
    writeFileSync(join(host, 'hello.txt'), 'hello from the host\n');
    mkdirSync(join(host, 'sub'));
    const b = makeBundle(
      [
        'sh',
        '-c',
        'cat /data/hello.txt; cat /single; cat /rel/hello.txt; touch /data/x 2>/dev/null && echo data-writable || echo data-ro; touch /rw/y && echo rw-writable; grep -E " /(data|rw|single|rel|rec) " /proc/self/mountinfo',
      ],
      (s) => {
        s.mounts!.push(
          { destination: '/data', type: 'bind', source: host, options: ['rbind', 'ro', 'nosuid', 'nodev'] },
          { destination: '/rw', type: 'none', source: host, options: ['bind', 'rw'] },
          { destination: '/single', type: 'bind', source: join(host, 'hello.txt'), options: ['bind', 'ro'] },
          { destination: '/rel', type: 'bind', source: 'reldir', options: ['bind', 'private'] },
          { destination: '/rec', type: 'bind', source: host, options: ['rbind', 'rro', 'rnoexec'] },
        );
      },
    );
    mkdirSync(join(b.dir, 'reldir'));
    writeFileSync(join(b.dir, 'reldir', 'hello.txt'), 'relative\n');
    const r = await tsrunc(['run', '-b', b.dir, 'fs4']);
    t.equal(r.exitCode, 0, r.stderr);
    const lines = r.stdout.split('\n');
    t.same(lines.slice(0, 5), ['hello from the host', 'hello from the host', 'relative', 'data-ro', 'rw-writable']);
    const m = parseMounts(lines.slice(5).join('\n'));
    t.match(m.get('/data'), /^ro,nosuid,nodev/);
    t.match(m.get('/rw'), /^rw/);
    t.match(m.get('/single'), /^ro/);
    t.match(m.get('/rec'), /^ro,.*noexec/);
    t.ok(existsSync(join(host, 'y')), 'the rw bind wrote to the host directory');
  });

  t.test('tmpfs options and the mode of an existing mount point', async (t) => {
    const b = makeBundle(['sh', '-c', 'stat -c %a /scratch /kept; grep " /scratch " /proc/self/mountinfo'], (s) => {
      s.mounts!.push(
        { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['mode=1777', 'size=1m', 'noexec'] },
        { destination: '/kept', type: 'tmpfs', source: 'tmpfs' },
      );
    });
    mkdirSync(join(b.rootfs, 'kept'));
    chmodSync(join(b.rootfs, 'kept'), 0o710);
    const r = await tsrunc(['run', '-b', b.dir, 'fs5']);
    t.equal(r.exitCode, 0, r.stderr);
    const [scratch, kept, info] = r.stdout.split('\n');
    t.equal(scratch, '1777');
    t.equal(kept, '710', 'a tmpfs takes the mode of the directory it covers');
    t.match(info, / \/scratch rw,noexec,relatime - tmpfs tmpfs rw,size=1024k$/, '1777 is tmpfs\'s default mode, so mountinfo leaves it out');
  });

  t.test('/dev: default nodes, linux.devices, symlinks, ptmx', async (t) => {
    const b = makeBundle(['sh', '-c', 'ls -l /dev | grep -v "^total"'], (s) => {
      s.linux!.devices = [
        { type: 'c', path: '/dev/fuse-like', major: 10, minor: 229, fileMode: 0o600, uid: 1000, gid: 1000 },
        { type: 'p', path: '/dev/my-fifo', fileMode: 0o640 },
      ];
    });
    const r = await tsrunc(['run', '-b', b.dir, 'fs6']);
    t.equal(r.exitCode, 0, r.stderr);
    const out = r.stdout;
    for (const [name, mm] of [['null', '1,\\s+3'], ['zero', '1,\\s+5'], ['full', '1,\\s+7'], ['random', '1,\\s+8'], ['urandom', '1,\\s+9'], ['tty', '5,\\s+0']]) {
      t.match(out, new RegExp(`^crw-rw-rw-\\s+1 root\\s+root\\s+${mm} .* ${name}$`, 'm'), `/dev/${name}`);
    }
    t.match(out, /^crw-------\s+1 tester\s+tester\s+10,\s+229 .* fuse-like$/m, 'linux.devices node with mode and owner');
    t.match(out, /^prw-r-----\s+1 root\s+root\s+0 .* my-fifo$/m, 'a fifo device');
    t.match(out, /^lrwxrwxrwx .* fd -> \/proc\/self\/fd$/m);
    t.match(out, /^lrwxrwxrwx .* ptmx -> pts\/ptmx$/m);
    t.match(out, /^lrwxrwxrwx .* stderr -> \/proc\/self\/fd\/2$/m);
  });

  t.test('masked paths and read-only paths', async (t) => {
    const b = makeBundle(['sh', '-c', 'cat /proc/keys | wc -c; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/ns_last_pid 2>&1 || echo proc-sys-ro'], (s) => {
      s.linux!.maskedPaths = ['/proc/keys', '/sys/firmware', '/does/not/exist'];
      s.linux!.readonlyPaths = ['/proc/sys', '/also/missing'];
    });
    const r = await tsrunc(['run', '-b', b.dir, 'fs7']);
    t.equal(r.exitCode, 0, r.stderr);
    t.same(r.stdout.split('\n').map((l) => l.trim()), ['0', '0', 'proc-sys-ro'], 'missing paths are skipped as runc does');
  });

  t.test('--no-pivot: MS_MOVE and chroot, no host procfs reachable', async (t) => {
    const b = makeBundle(['sh', '-c', 'cat /proc/self/mountinfo | wc -l; ls /']);
    const r = await tsrunc(['run', '--no-pivot', '-b', b.dir, 'fs8']);
    t.equal(r.exitCode, 0, r.stderr);
    t.match(r.stdout, /\nbin\n/);
  });

  t.test('rootfsPropagation shared and slave', async (t) => {
    for (const [prop, id] of [['shared', 'fs9'], ['rslave', 'fs10'], ['private', 'fs11']] as const) {
      const b = makeBundle(['sh', '-c', 'awk "\\$5 == \\"/\\"" /proc/self/mountinfo'], (s) => (s.linux!.rootfsPropagation = prop));
      const r = await tsrunc(['run', '-b', b.dir, id]);
      t.equal(r.exitCode, 0, r.stderr);
      if (prop === 'shared') t.match(r.stdout, / shared:\d+/, 'root mount is shared');
      // A slave of a private host mount has no master to show; it must not be shared.
      if (prop === 'rslave') t.notMatch(r.stdout, / shared:\d+/, 'root mount is not shared');
      if (prop === 'private') t.notMatch(r.stdout, /shared:|master:/, 'root mount is private');
    }
  });

  t.test('a mount destination that is a symlink to / never covers the host, nor the container root', async (t) => {
    // Resolved inside the rootfs, "/escape -> /" is the container's root
    // itself: mounting there is refused (runc: "mountpoint is on the top of rootfs").
    const b = makeBundle(['true'], (s) => s.mounts!.push({ destination: '/escape', type: 'tmpfs', source: 'tmpfs' }));
    symlinkSync('/', join(b.rootfs, 'escape'));
    const before = readFileSync('/proc/self/mountinfo', 'utf8');
    const r = await tsrunc(['run', '-b', b.dir, 'fs12']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /op \d+ mount tmpfs on \/escape: EBUSY: the path resolves where this mount is not allowed/);
    t.equal(readFileSync('/proc/self/mountinfo', 'utf8'), before, 'no mount appeared on the host');

    // A symlink to a directory elsewhere in the rootfs: the mount lands there, inside.
    const b2 = makeBundle(['sh', '-c', 'grep -c " /var/tmp " /proc/self/mountinfo'], (s) => s.mounts!.push({ destination: '/shortcut', type: 'tmpfs', source: 'tmpfs' }));
    symlinkSync('/var/tmp', join(b2.rootfs, 'shortcut'));
    const r2 = await tsrunc(['run', '-b', b2.dir, 'fs12b']);
    t.equal(r2.exitCode, 0, r2.stderr);
    t.equal(r2.stdout, '1', 'the tmpfs is on /var/tmp of the container');
    t.equal(readFileSync('/proc/self/mountinfo', 'utf8'), before, 'and not on the host');
  });

  t.test('a mount destination that resolves into /proc is refused', async (t) => {
    const b = makeBundle(['true'], (s) => s.mounts!.push({ destination: '/sneaky', type: 'tmpfs', source: 'tmpfs' }));
    symlinkSync('/proc/sys', join(b.rootfs, 'sneaky'));
    const r = await tsrunc(['run', '-b', b.dir, 'fs13']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /op \d+ mount tmpfs on \/sneaky: EPERM: the path resolves where this mount is not allowed/);
  });

  t.test('a rootfs whose /proc is a symlink is refused (CVE-2023-27561)', async (t) => {
    const b = makeBundle(['true']);
    const { rmSync } = await import('node:fs');
    rmSync(join(b.rootfs, 'proc'), { recursive: true });
    symlinkSync('/tmp', join(b.rootfs, 'proc'));
    const r = await tsrunc(['run', '-b', b.dir, 'fs14']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /op \d+ mount proc on \/proc: ELOOP/);
  });
});
