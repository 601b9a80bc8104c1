// tsrund unpacks the new layers of a pull side by side (worker threads,
// staged directories, committed in order): the result must be what the
// layers give one after another, including containerd's mkparent rule (a
// directory a layer makes implicitly takes its attributes from the layers
// below, which were not written yet when it was made), and a layer that
// fails must stop the others and leave no staged directory, snapshot or
// ingest behind.
import t, { type Test } from 'tap';
import { execa } from 'execa';
import { existsSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { tarArchive } from '../../src/archive/tar-writer.js';
import { getxattr } from '../../src/linux/fsat.js';
import { needsRoot } from '../helpers/cli.js';
import { cleanEnv, startTsrund, tempDir, TSRCTL, type RunningDaemon } from '../helpers/daemon.js';
import { busyboxLayer, makeLayer, ociLayout, registryMissing, skopeoPush, startRegistry, tarLayer, type Registry } from '../helpers/registry.js';

const skip = needsRoot || registryMissing() || (process.arch === 'x64' ? false : `the image's busybox runs only on x64 (this is ${process.arch})`);

t.test('pull: new layers unpacked side by side', { skip }, async (t: Test) => {
  const base = busyboxLayer();
  // layer 2 makes /opt/app itself: 0700, owned by 1000:1001, with a user xattr
  const app = tarLayer(
    tarArchive([
      { name: 'opt/', type: 'dir', mode: 0o755 },
      { name: 'opt/app/', type: 'dir', mode: 0o700, uid: 1000, gid: 1001, xattrs: new Map([['user.origin', Buffer.from('layer2')]]) },
      { name: 'opt/app/one', type: 'file', mode: 0o644, data: 'one\n' },
    ]),
  );
  // layer 3 names no directory: opt and opt/app are implicit parents there
  const more = tarLayer(tarArchive([{ name: 'opt/app/two', type: 'file', mode: 0o640, uid: 1000, gid: 1001, data: 'two\n' }]));
  // many files, so that it is still being written when the layer below it fails
  const many = makeLayer((d) => {
    for (let i = 0; i < 40; i++) {
      const sub = join(d, 'many', `d${i}`);
      mkdirSync(sub, { recursive: true });
      for (let j = 0; j < 50; j++) writeFileSync(join(sub, `f${j}`), `${i}/${j}\n`.repeat(40));
    }
  });
  const notTar = Buffer.alloc(4096, 0x41); // not a tar header: the tar reader refuses it
  const gz = gzipSync(notTar);
  const broken = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(gz), size: gz.length, data: gz, diffId: sha(notTar) };
  const cmd = ['/bin/busybox', 'stat', '-c', '%a %u %g', '/opt/app'];
  const good = ociLayout([{ layers: [base, app, more], cmd }]);
  const bad = ociLayout([{ layers: [base, broken, many], cmd }]);

  const reg: Registry = await startRegistry();
  t.teardown(() => reg.stop());
  await skopeoPush(reg, good, 'library/sbs:latest');
  await skopeoPush(reg, bad, 'library/sbs-bad:latest');
  const d: RunningDaemon = await startTsrund();
  t.teardown(() => d.stop());
  const ctl = (args: string[]) =>
    execa(process.execPath, [TSRCTL, '--address', d.address, '--namespace', 'sbs', ...args], {
      reject: false,
      timeout: 120_000,
      stdin: 'ignore',
      env: { ...cleanEnv(), DOCKER_CONFIG: tempDir('tsrunc-docker-config-') },
    });
  const snRoot = join(d.root, 'snapshots', 'overlayfs');
  const snapshotDirs = (): string[] => readdirSync(join(snRoot, 'snapshots')).sort();
  const staged = (): string[] => readdirSync(snRoot).filter((e) => e.startsWith('new-'));

  await t.test('the same snapshots as one layer after another, implicit parents from the layers below', async (t) => {
    const pull = await ctl(['pull', `${reg.host}/library/sbs:latest`]);
    t.equal(pull.exitCode, 0, pull.stderr);
    t.match(pull.stdout, /Pull complete/);
    t.same(staged(), [], 'no staged directory left');
    const dirs = snapshotDirs();
    t.equal(dirs.length, 3, 'one snapshot per layer');
    // the top layer's own /opt/app: made implicitly, attributes from layer 2
    const top = dirs.map((id) => join(snRoot, 'snapshots', id, 'fs')).find((fs) => existsSync(join(fs, 'opt', 'app', 'two')));
    t.ok(top, "the top layer's directory");
    const st = lstatSync(join(top!, 'opt', 'app'));
    t.equal(st.mode & 0o7777, 0o700, 'mode from the layer below');
    t.same([st.uid, st.gid], [1000, 1001], 'owner from the layer below');
    t.equal(getxattr(join(top!, 'opt', 'app'), 'user.origin')?.toString(), 'layer2', 'xattr from the layer below');
    t.equal(lstatSync(join(top!, 'opt')).mode & 0o7777, 0o755, 'its implicit parent too');
    const run = await ctl(['run', '--rm', `${reg.host}/library/sbs:latest`]);
    t.equal(run.exitCode, 0, run.stderr);
    t.equal(run.stdout.trim(), '700 1000 1001', 'seen from inside the container');
  });

  await t.test('a layer that fails stops the others; nothing is left of them', async (t) => {
    const before = snapshotDirs();
    const pull = await ctl(['pull', `${reg.host}/library/sbs-bad:latest`]);
    t.not(pull.exitCode, 0, 'the pull fails');
    t.match(pull.stderr, /unpack layer sha256:[0-9a-f]{64}: .*checksum/, 'the error names the layer and what is wrong');
    t.same(staged(), [], 'no staged directory left');
    const ingest = join(d.root, 'content', 'ingest');
    t.same(existsSync(ingest) ? readdirSync(ingest) : [], [], 'no ingest left');
    t.same(snapshotDirs(), before, 'no new snapshot (the layer above the failing one was stopped and removed)');
    const ls = await ctl(['images', 'ls', '-q']);
    t.notMatch(ls.stdout, /sbs-bad/, 'no image record');
  });
});

function sha(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}
