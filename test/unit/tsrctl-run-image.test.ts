// The parts of `tsrctl run IMAGE` that need no daemon: docker's rules for
// ENTRYPOINT + CMD + arguments, --mount parsing, the layer directories of
// snapshot mounts, and /etc/passwd read through layers (whiteouts and
// opaque directories hide what lies below; those two need root to make).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageArgs, mountDirs } from '../../src/cli/tsrctl/image-rootfs.js';
import { parseMountFlag } from '../../src/cli/tsrctl/mount-flag.js';
import { layerFiles, resolveUser } from '../../src/cli/tsrctl/process-spec.js';
import { lsetxattrRaw } from '../../src/linux/fsat.js';

t.test("docker's ENTRYPOINT + CMD rules", async (t) => {
  const cfg = { Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo hi'] };
  t.same(imageArgs(cfg, []), ['/bin/sh', '-c', 'echo hi'], 'Entrypoint then Cmd');
  t.same(imageArgs(cfg, ['echo yo']), ['/bin/sh', '-c', 'echo yo'], 'arguments replace Cmd');
  t.same(imageArgs({ Cmd: ['echo', 'hi'] }, []), ['echo', 'hi'], 'Cmd alone');
  t.same(imageArgs({ Cmd: ['echo', 'hi'] }, ['ls', '-l']), ['ls', '-l']);
  t.same(imageArgs(cfg, [], '/bin/echo'), ['/bin/echo'], '--entrypoint drops Cmd');
  t.same(imageArgs(cfg, ['a'], '/bin/echo'), ['/bin/echo', 'a']);
  t.same(imageArgs(cfg, ['ls'], ''), ['ls'], '--entrypoint "" drops Entrypoint');
  t.same(imageArgs({ Entrypoint: null, Cmd: null }, []), [], 'nothing to run');
});

t.test('--mount', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsrunc-mountflag-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.same(parseMountFlag(`type=bind,src=${dir},dst=/data,ro`), { destination: '/data', type: 'bind', source: dir, options: ['rbind', 'rprivate', 'ro'] });
  t.same(parseMountFlag(`type=bind,source=${dir},target=/d,readonly=false,bind-propagation=rslave`).options, ['rbind', 'rslave']);
  t.same(parseMountFlag('type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1770'), {
    destination: '/t',
    type: 'tmpfs',
    source: 'tmpfs',
    options: ['nosuid', 'nodev', `size=${64 * 1024 * 1024}`, 'mode=1770'],
  });
  const bad: Array<[string, RegExp]> = [
    ['type=bind,src=/no/such/dir,dst=/x', /bind source path does not exist: \/no\/such\/dir$/],
    [`type=bind,src=${dir}`, /target= is required$/],
    [`type=bind,src=${dir},dst=rel`, /target "rel" must be an absolute path$/],
    [`type=bind,src=${dir},dst=/x,ro=maybe`, /readonly="maybe": expected true or false$/],
    [`type=bind,src=${dir},dst=/x,tmpfs-size=1m`, /unknown option "tmpfs-size" for type bind$/],
    ['type=tmpfs,dst=/x,tmpfs-size=lots', /tmpfs-size="lots": expected a size/],
    [`type=volume,src=v,dst=/x`, /type "volume" is not supported/],
    [`src=${dir},dst=/x`, /type "volume" is not supported/],
  ];
  for (const [flag, re] of bad) t.throws(() => parseMountFlag(flag), re, flag);
});

t.test('mountDirs: the layers of snapshot mounts, topmost first', async (t) => {
  t.same(mountDirs([{ type: 'overlay', source: 'overlay', options: ['index=off', 'workdir=/w', 'upperdir=/u', 'lowerdir=/l2:/l1'] }]), ['/u', '/l2', '/l1']);
  t.same(mountDirs([{ type: 'overlay', source: 'overlay', options: ['lowerdir=/l2:/l1'] }]), ['/l2', '/l1'], 'a view: no upper dir');
  t.same(mountDirs([{ type: 'bind', source: '/fs', options: ['rbind', 'rw'] }]), ['/fs']);
});

t.test('/etc/passwd through layers', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'tsrunc-layerfiles-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const layer = (name: string, files: Record<string, string>): string => {
    const d = join(base, name);
    for (const [p, c] of Object.entries(files)) {
      mkdirSync(join(d, p, '..'), { recursive: true });
      writeFileSync(join(d, p), c);
    }
    mkdirSync(d, { recursive: true });
    return d;
  };
  const lower = layer('lower', { 'etc/passwd': 'app:x:1000:1000::/home/app:/bin/sh\n', 'etc/group': 'app:x:1000:\n' });
  const upper = layer('upper', { 'etc/passwd': 'app:x:2000:2000::/srv:/bin/sh\n' });
  const files = layerFiles([upper, lower], 'image x');
  t.same(resolveUser('app', files), { user: { uid: 2000, gid: 2000 }, home: '/srv' }, 'the upper layer wins');
  t.equal(files.read('etc/group'), 'app:x:1000:\n', 'what the upper has not comes from below');
  t.throws(() => resolveUser('nobody', files), /no user "nobody" in \/etc\/passwd of image x$/);
  t.equal(layerFiles([layer('empty', {})], 'image y').read('etc/passwd'), undefined);

  const root = process.getuid?.() === 0;
  t.test('a whiteout hides a file, an opaque directory what is below it', { skip: root ? false : 'needs root (mknod 0:0, trusted.* xattrs)' }, async (t) => {
    const wh = layer('wh', {});
    mkdirSync(join(wh, 'etc'));
    execFileSync('mknod', [join(wh, 'etc/passwd'), 'c', '0', '0']);
    t.equal(layerFiles([wh, lower], 'i').read('etc/passwd'), undefined, 'whited out');
    t.equal(layerFiles([wh, lower], 'i').read('etc/group'), 'app:x:1000:\n', 'its neighbour is not');
    const opq = layer('opq', { 'etc/hosts': 'h\n' });
    t.equal(lsetxattrRaw(join(opq, 'etc'), 'trusted.overlay.opaque', Buffer.from('y')), 0);
    t.equal(layerFiles([opq, lower], 'i').read('etc/passwd'), undefined, 'below an opaque dir: hidden');
    t.equal(layerFiles([opq, lower], 'i').read('etc/hosts'), 'h\n', 'in it: seen');
  });
});
