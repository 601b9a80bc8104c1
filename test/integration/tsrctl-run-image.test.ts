// tsrctl run IMAGE end to end, as a docker user runs one: a real registry
// (docker-registry on 127.0.0.1) with images built here from busybox-static,
// a tsrund of its own. First run pulls (docker's lines, on stderr), the
// second does not; the image's ENTRYPOINT/CMD/Env/WorkingDir/User and the
// flags over them; --rm leaves no container, task, snapshot, lease or
// mount; exit codes pass through; an unknown image leaves nothing. And a
// multi-layer image with every file type and attribute, looked at from
// inside the running container (and its xattrs through /proc/PID/root).
// Namespaces start with "ri".
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { Containers } from '../../src/gen/containerd/services/containers/v1/containers_pb.js';
import { Leases } from '../../src/gen/containerd/services/leases/v1/leases_pb.js';
import { Snapshots } from '../../src/gen/containerd/services/snapshots/v1/snapshots_pb.js';
import { Tasks } from '../../src/gen/containerd/services/tasks/v1/tasks_pb.js';
import { tarArchive, type TarEntry } from '../../src/archive/tar-writer.js';
import { connect, type Connection } from '../../src/client/index.js';
import { getxattr } from '../../src/linux/fsat.js';
import { needsRoot } from '../helpers/cli.js';
import { cleanEnv, startTsrund, tempDir, TSRCTL, type RunningDaemon } from '../helpers/daemon.js';
import { BUSYBOX, ociLayout, registryMissing, skopeoPush, startRegistry, tarLayer, type Registry } from '../helpers/registry.js';

type E = TarEntry & { data?: string | Uint8Array };
const missing = registryMissing();

/** busybox with every applet as a symlink in /bin, a passwd with root and app (1000:1000, home /home/app). */
function baseEntries(): E[] {
  const applets = execFileSync(BUSYBOX, ['--list']).toString().split('\n').filter((a) => a && a !== 'busybox');
  return [
    { name: 'bin/', type: 'dir', mode: 0o755 },
    { name: 'bin/busybox', type: 'file', mode: 0o755, data: readFileSync(BUSYBOX) },
    ...applets.map((a): E => ({ name: `bin/${a}`, type: 'symlink', mode: 0o777, linkname: 'busybox' })),
    { name: 'etc/', type: 'dir', mode: 0o755 },
    { name: 'etc/passwd', type: 'file', mode: 0o644, data: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' },
    { name: 'etc/group', type: 'file', mode: 0o644, data: 'root:x:0:\napp:x:1000:\nextra:x:2000:app\n' },
    { name: 'home/app/', type: 'dir', mode: 0o755, uid: 1000, gid: 1000 },
    { name: 'srv/', type: 'dir', mode: 0o755 },
    { name: 'tmp/', type: 'dir', mode: 0o1777 },
  ];
}

// vfs_cap_data revision 2: CAP_NET_BIND_SERVICE (10) permitted and effective
const CAP = Buffer.alloc(20);
CAP.writeUInt32LE(0x02000001, 0);
CAP.writeUInt32LE(1 << 10, 4);

t.test('tsrctl run IMAGE', { skip: needsRoot || missing }, async (t: Test) => {
  const base = tarLayer(tarArchive(baseEntries()));
  const hello = ociLayout([{ layers: [base], cmd: ['echo', 'Hello from tsrund!'] }]);
  const app = ociLayout([
    {
      layers: [base],
      config: {
        Entrypoint: ['/bin/sh', '-c'],
        Cmd: ['echo "$GREETING from $(pwd) as $(id -u):$(id -g) groups=$(id -G) home=$HOME path=$PATH"'],
        Env: ['PATH=/bin:/usr/bin', 'GREETING=hi'],
        WorkingDir: '/srv',
        User: 'app',
      },
    },
  ]);
  const reg: Registry = await startRegistry();
  t.teardown(() => reg.stop());
  await skopeoPush(reg, hello, 'library/hello:latest');
  await skopeoPush(reg, app, 'library/app:v1');
  const d: RunningDaemon = await startTsrund();
  t.teardown(() => d.stop());
  const conn: Connection = connect(d.address, { namespace: 'ri' });
  await conn.ready();
  t.teardown(() => conn.close());
  const ctl = (args: string[], input?: string) =>
    execa(process.execPath, [TSRCTL, '--address', d.address, '--namespace', 'ri', ...args], {
      reject: false,
      timeout: 60_000,
      env: { ...cleanEnv(), DOCKER_CONFIG: tempDir('tsrunc-docker-config-') },
      ...(input === undefined ? { stdin: 'ignore' as const } : { input }),
    });
  const ref = `${reg.host}/library/hello:latest`;
  const appRef = `${reg.host}/library/app:v1`;

  const snapshotKeys = async (): Promise<string[]> => {
    const keys: string[] = [];
    for await (const r of conn.service(Snapshots).list({ snapshotter: 'overlayfs' })) keys.push(...r.info.map((i) => i.name));
    return keys.sort();
  };
  const leases = async () => (await conn.service(Leases).list({})).leases.map((l) => l.id).sort();
  const containers = async () => (await conn.service(Containers).list({})).containers.map((c) => c.id).sort();
  const tasks = async () => (await conn.service(Tasks).list({})).tasks.map((x) => x.id).sort();
  const ourMounts = () =>
    readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.includes(d.dir));
  /** what a finished --rm run must leave as it was */
  const state = async () => ({ snapshots: await snapshotKeys(), leases: await leases(), containers: await containers(), tasks: await tasks(), mounts: ourMounts() });

  await t.test('first run pulls (docker\'s lines on stderr), the second does not', async (t) => {
    const r = await ctl(['run', '--rm', '--name', 'ri-hello', ref]);
    t.equal(r.exitCode, 0, r.stderr);
    t.equal(r.stdout, 'Hello from tsrund!', 'the image\'s Cmd ran; stdout is the container\'s alone');
    const lines = r.stderr.split('\n');
    t.equal(lines[0], `Unable to find image '${ref}' locally`);
    t.equal(lines[1], `latest: Pulling from ${reg.host}/library/hello`);
    const short = base.digest.slice(7, 19);
    t.ok(lines.includes(`${short}: Pulling fs layer`), 'Pulling fs layer');
    t.ok(lines.includes(`${short}: Pull complete`), 'Pull complete');
    t.ok(lines.includes(`Digest: ${hello.manifest.digest}`), 'Digest');
    t.ok(lines.includes(`Status: Downloaded newer image for ${ref}`), 'Status');
    t.same(lines.slice(2, -2).filter((l) => !/^[0-9a-f]{12}: (Pulling fs layer|Waiting|Downloading|Verifying Checksum|Download complete|Extracting|Pull complete)$/.test(l)), [], 'nothing else on stderr');

    const before = await state();
    const again = await ctl(['run', '--rm', '--name', 'ri-hello', ref]);
    t.equal(again.exitCode, 0, again.stderr);
    t.equal(again.stdout, 'Hello from tsrund!');
    t.equal(again.stderr, '', 'no pull lines the second time');
    t.same(await state(), before, '--rm: no container, task, snapshot, lease or mount left');
    t.same(before.containers, []);
    t.same(before.snapshots, [base.diffId], 'only the image\'s layer snapshot');
    t.same(before.mounts, []);
  });

  await t.test('arguments replace Cmd; exit codes pass through; a random 12-hex id', async (t) => {
    const before = await state();
    const a = await ctl(['run', '--rm', ref, 'sh', '-c', 'echo "args $0 $1" >&2; hostname; exit 7', 'x', 'y']);
    t.equal(a.exitCode, 7, "the container's exit code");
    t.equal(a.stderr, 'args x y');
    t.match(a.stdout, /^[0-9a-f]{12}$/, 'the hostname is the generated id');
    const nf = await ctl(['run', '--rm', ref, 'no-such-command']);
    t.equal(nf.exitCode, 127, 'a command not found: 127, as docker');
    t.same(await state(), before, 'nothing left by either');
  });

  await t.test('the image config: Entrypoint + Cmd, Env, WorkingDir, User; and -e, -w, -u, --entrypoint over them', async (t) => {
    t.equal((await ctl(['pull', '-q', appRef])).exitCode, 0, 'pulled first: what the runs leave is compared with this');
    const before = await state();
    const r = await ctl(['run', '--rm', appRef]);
    t.equal(r.exitCode, 0, r.stderr);
    t.equal(r.stdout, 'hi from /srv as 1000:1000 groups=1000 2000 home=/home/app path=/bin:/usr/bin');
    const args = await ctl(['run', '--rm', appRef, 'echo "$GREETING args"']);
    t.equal(args.stdout, 'hi args', 'args replace Cmd, Entrypoint stays');
    const flags = await ctl(['run', '--rm', '-e', 'GREETING=yo', '-e', 'NEW=1', '-w', '/tmp', '-u', '0:0', appRef, 'echo "$GREETING $NEW $(pwd) $(id -u):$(id -g) $HOME"']);
    t.equal(flags.stdout, 'yo 1 /tmp 0:0 /root', flags.stderr);
    const wd = await ctl(['run', '--rm', '-w', '/new/dir', appRef, 'pwd']);
    t.equal(wd.stdout, '/new/dir', 'a working directory the image lacks is made, as docker makes it');
    const named = await ctl(['run', '--rm', '-u', 'app:root', appRef, 'id -u; id -g']);
    t.equal(named.stdout, '1000\n0', 'names from the image\'s /etc/passwd and /etc/group');
    const ep = await ctl(['run', '--rm', '--entrypoint', '/bin/echo', appRef, 'plain', '$GREETING']);
    t.equal(ep.stdout, 'plain $GREETING', '--entrypoint replaces Entrypoint (no shell)');
    const bad = await ctl(['run', '--rm', '-u', 'nobody', appRef]);
    t.equal(bad.exitCode, 1);
    t.equal(bad.stderr, `tsrctl: --user "nobody": no user "nobody" in /etc/passwd of image ${appRef}`);
    t.same(await state(), before, 'nothing left (the failed one\'s snapshot removed too)');
  });

  await t.test('--mount bind (read-only) and tmpfs; -i stdin', async (t) => {
    const host = tempDir('tsrunc-run-mount-');
    writeFileSync(join(host, 'f'), 'from the host\n');
    const r = await ctl([
      'run', '--rm', '-i',
      '--mount', `type=bind,src=${host},dst=/data,ro`,
      '--mount', 'type=tmpfs,target=/scratch,tmpfs-size=1m',
      ref, 'sh', '-c', 'cat /data/f; touch /data/g 2>/dev/null || echo read-only; cat > /scratch/x; cat /scratch/x; grep " /scratch " /proc/mounts | cut -d" " -f3',
    ], 'piped\n');
    t.equal(r.exitCode, 0, r.stderr);
    t.equal(r.stdout, 'from the host\nread-only\npiped\ntmpfs');
    const bad = await ctl(['run', '--rm', '--mount', 'type=bind,src=/no/such/dir,dst=/x', ref]);
    t.equal(bad.exitCode, 1);
    t.equal(bad.stderr, 'tsrctl: --mount "type=bind,src=/no/such/dir,dst=/x": bind source path does not exist: /no/such/dir');
  });

  await t.test('without --rm the container keeps its snapshot; -d; containers rm takes it away', async (t) => {
    const r = await ctl(['run', '--name', 'ri-kept', ref, 'sh', '-c', 'echo kept > /k']);
    t.equal(r.exitCode, 0, r.stderr);
    const { container } = await conn.service(Containers).get({ id: 'ri-kept' });
    t.equal(container?.image, ref, "the record names the image");
    t.equal(container?.snapshotter, 'overlayfs');
    t.equal(container?.snapshotKey, 'ri-kept');
    const { info } = await conn.service(Snapshots).stat({ snapshotter: 'overlayfs', key: 'ri-kept' });
    t.equal(info?.parent, base.diffId, 'an active snapshot on the image\'s top layer');
    t.same(await leases(), [], 'no lease: the container record holds the snapshot');

    const taken = await ctl(['run', '--rm', '--name', 'ri-kept', ref]);
    t.equal(taken.exitCode, 1, 'the name is in use');
    t.match(taken.stderr, /ri-kept/);
    t.ok((await conn.service(Snapshots).stat({ snapshotter: 'overlayfs', key: 'ri-kept' })).info, 'the other container\'s snapshot is untouched');

    const dd = await ctl(['run', '-d', '--name', 'ri-bg', ref, 'sleep', '1000']);
    t.equal(dd.exitCode, 0, dd.stderr);
    t.equal(dd.stdout, 'ri-bg');
    t.ok((await tasks()).includes('ri-bg'), 'running');
    t.equal((await ctl(['tasks', 'rm', '-f', 'ri-bg'])).exitCode, 0);
    for (const id of ['ri-kept', 'ri-bg']) {
      const rm = await ctl(['containers', 'rm', id]);
      t.equal(rm.exitCode, 0, rm.stderr);
      await t.rejects(conn.service(Snapshots).stat({ snapshotter: 'overlayfs', key: id }), { code: 5 }, `${id}'s snapshot removed with it`);
    }
    t.same(ourMounts(), [], 'no mount left');
  });

  await t.test('an unknown image: not found, exit 1, nothing left', async (t) => {
    const before = await state();
    const nope = `${reg.host}/library/nope:latest`;
    const r = await ctl(['run', '--rm', '--name', 'ri-nope', nope]);
    t.equal(r.exitCode, 1);
    t.equal(r.stdout, '');
    const lines = r.stderr.split('\n');
    t.equal(lines[0], `Unable to find image '${nope}' locally`);
    t.equal(lines.at(-1), `tsrctl: not found: ${nope}`);
    t.same(await state(), before, 'no container, snapshot, lease or mount');
  });

  await t.test('every file type and attribute is right inside the container', async (t) => {
    const t1 = 1_600_000_000;
    const layer2: E[] = [
      { name: 'gone', type: 'file', mode: 0o644, data: 'g' },
      { name: 'gonedir/x', type: 'file', mode: 0o644, data: 'x' },
      { name: 'opq/old', type: 'file', mode: 0o644, data: 'old' },
      { name: 'opq/', type: 'dir', mode: 0o711 },
      { name: 'data/', type: 'dir', mode: 0o750, uid: 10, gid: 20, mtime: { sec: t1, nsec: 0 } },
      { name: 'data/file', type: 'file', mode: 0o640, uid: 1000, gid: 1001, data: 'content\n', mtime: { sec: t1, nsec: 123_456_789 } },
      { name: 'data/hard', type: 'link', mode: 0o640, uid: 1000, gid: 1001, linkname: 'data/file', mtime: { sec: t1, nsec: 123_456_789 } },
      { name: 'data/abs', type: 'symlink', mode: 0o777, linkname: '/data/file' },
      { name: 'data/rel', type: 'symlink', mode: 0o777, linkname: '../data/file' },
      { name: 'data/suid', type: 'file', mode: 0o4755, data: 'suid' },
      { name: 'data/sgid', type: 'file', mode: 0o2755, gid: 50, data: 'sgid' },
      { name: 'data/sticky/', type: 'dir', mode: 0o1777 },
      { name: 'data/cap', type: 'file', mode: 0o755, data: 'cap', xattrs: new Map([['security.capability', CAP]]) },
      { name: 'data/user', type: 'file', mode: 0o644, data: 'u', xattrs: new Map([['user.bin', Buffer.from([0xff, 0, 0x80])], ['user.text', Buffer.from('hello')]]) },
      { name: 'data/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 },
      { name: 'data/loop9', type: 'block', mode: 0o660, devmajor: 7, devminor: 9, gid: 6 },
      { name: 'data/fifo', type: 'fifo', mode: 0o620 },
      // busybox with a file capability: what it grants, seen by a non-root user
      { name: 'opt/caps/cat', type: 'file', mode: 0o755, data: readFileSync(BUSYBOX), xattrs: new Map([['security.capability', CAP]]) },
    ];
    const layer3: E[] = [
      { name: '.wh.gone', type: 'file', mode: 0o644 },
      { name: '.wh.gonedir', type: 'file', mode: 0o644 },
      { name: 'opq/', type: 'dir', mode: 0o755 },
      { name: 'opq/.wh..wh..opq', type: 'file', mode: 0o644 },
      { name: 'opq/new', type: 'file', mode: 0o644, data: 'new' },
    ];
    const img = ociLayout([{ layers: [base, tarLayer(tarArchive(layer2)), tarLayer(tarArchive(layer3))] }]);
    await skopeoPush(reg, img, 'library/files:latest');
    const fref = `${reg.host}/library/files:latest`;
    const script = [
      'cd /data',
      "stat -c '%n %F %a %u:%g %h' . file hard abs rel suid sgid sticky cap user null loop9 fifo",
      "stat -c '%n %t:%T' null loop9",
      'test "$(stat -c %i file)" = "$(stat -c %i hard)" && echo hard-same-inode',
      'readlink abs; readlink rel',
      'cat abs rel',
      "stat -c '%Y' . file",
      'ls -a / | grep -E "^(gone|gonedir)$" || echo whiteouts-hide',
      'ls -a /opq | tr "\\n" " "; echo',
      'echo probe > fifo & cat fifo; wait',
      'sleep 1000',
    ].join('; ');
    const r = ctl(['run', '--rm', '--name', 'ri-files', fref, 'sh', '-c', script]);
    // the script has printed all once the fifo's line is out; then it sleeps
    let seen = '';
    await new Promise<void>((res, rej) => {
      r.stdout!.on('data', (b: Buffer) => {
        seen += b.toString();
        if (seen.includes('probe\n')) res();
      });
      r.then(() => rej(new Error(`the container ended early: ${seen}`)), rej);
    });
    // xattrs seen through the container's own root (/proc/PID/root): busybox has no getfattr
    const pid = (await conn.service(Tasks).get({ containerId: 'ri-files' })).process?.pid ?? 0;
    t.ok(pid > 0, 'the container runs');
    const xattrs = ['data/cap:security.capability', 'data/user:user.bin', 'data/user:user.text'].map((x) => {
      const [p, n] = x.split(':') as [string, string];
      return getxattr(`/proc/${pid}/root/${p}`, n);
    });
    t.ok(xattrs[0]?.equals(CAP), 'security.capability bytes exact, inside the container');
    t.ok(xattrs[1]?.equals(Buffer.from([0xff, 0, 0x80])), 'binary user xattr');
    t.equal(xattrs[2]?.toString(), 'hello');
    await conn.service(Tasks).kill({ containerId: 'ri-files', signal: 9, all: true });
    const out = await r;
    t.equal(out.exitCode, 137, out.stderr);
    const lines = out.stdout.split('\n');
    t.same(lines.slice(0, 13), [
      '. directory 750 10:20 3',
      'file regular file 640 1000:1001 2',
      'hard regular file 640 1000:1001 2',
      'abs symbolic link 777 0:0 1',
      'rel symbolic link 777 0:0 1',
      'suid regular file 4755 0:0 1',
      'sgid regular file 2755 0:50 1',
      'sticky directory 1777 0:0 2',
      'cap regular file 755 0:0 1',
      'user regular file 644 0:0 1',
      'null character special file 666 0:0 1',
      'loop9 block special file 660 0:6 1',
      'fifo fifo 620 0:0 1',
    ]);
    t.same(lines.slice(13), [
      'null 1:3',
      'loop9 7:9',
      'hard-same-inode',
      '/data/file',
      '../data/file',
      'content',
      'content',
      String(t1),
      String(t1),
      'whiteouts-hide',
      '. .. new ',
      'probe',
    ]);
    const caps = await ctl(['run', '--rm', '-u', '1000', fref, 'sh', '-c', 'grep CapEff /proc/self/status; /opt/caps/cat /proc/self/status | grep CapEff']);
    t.equal(caps.stdout, 'CapEff:\t0000000000000000\nCapEff:\t0000000000000400', 'a non-root user has no capability but what the file grants (CAP_NET_BIND_SERVICE)');
    t.same(ourMounts(), [], 'no mount left');
  });
});
