// tsrctl pull / push / images against its own tsrund and a real registry
// (docker-registry on 127.0.0.1, images built from busybox-static, copied
// there by skopeo): docker's progress lines, the layers unpacked into
// overlayfs snapshots named by chain ID, images ls/inspect/tag/rm, push
// then pull with the same digest, basic auth from a docker config.json,
// and the Transfer service's errors. Namespaces start with "pl".
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import * as grpc from '@grpc/grpc-js';
import { Snapshots } from '../../src/gen/containerd/services/snapshots/v1/snapshots_pb.js';
import { Content } from '../../src/gen/containerd/services/content/v1/content_pb.js';
import { Images } from '../../src/gen/containerd/services/images/v1/images_pb.js';
import { Leases } from '../../src/gen/containerd/services/leases/v1/leases_pb.js';
import { Transfer } from '../../src/gen/tsrund/services/transfer/v1/transfer_pb.js';
import { connect, type Connection } from '../../src/client/index.js';
import { needsRoot } from '../helpers/cli.js';
import { cleanEnv, startTsrund, tempDir, TSRCTL, type RunningDaemon } from '../helpers/daemon.js';
import { busyboxLayer, fileLayer, ociLayout, registryMissing, skopeoPush, startRegistry, type Registry } from '../helpers/registry.js';

const missing = registryMissing();
const sha = (s: string): string => `sha256:${createHash('sha256').update(s).digest('hex')}`;

t.test('pull, push and images through tsrund', { skip: needsRoot || missing }, async (t: Test) => {
  const bb = busyboxLayer();
  const motd = fileLayer('etc/motd', 'hello from layer two\n');
  const hello = ociLayout([{ layers: [bb, motd] }]);
  const chain = [bb.diffId, sha(`${bb.diffId} ${motd.diffId}`)];
  const reg: Registry = await startRegistry();
  t.teardown(() => reg.stop());
  await skopeoPush(reg, hello, 'library/hello:latest');
  const d: RunningDaemon = await startTsrund();
  t.teardown(() => d.stop());
  const conn: Connection = connect(d.address, { namespace: 'pl' });
  await conn.ready();
  t.teardown(() => conn.close());
  const dockerConfig = tempDir('tsrunc-docker-config-');
  const ctl = (args: string[], env: Record<string, string> = {}) =>
    execa(process.execPath, [TSRCTL, '--address', d.address, '--namespace', 'pl', ...args], { reject: false, timeout: 60_000, env: { ...cleanEnv(), DOCKER_CONFIG: dockerConfig, ...env } });
  const ref = `${reg.host}/library/hello:latest`;
  const short = (digest: string) => digest.slice(7, 19);

  await t.test('pull: docker\'s lines (not a terminal), content and snapshots', async (t) => {
    const r = await ctl(['pull', `${reg.host}/library/hello`]);
    t.equal(r.exitCode, 0, r.stderr);
    const lines = r.stdout.split('\n');
    t.equal(lines[0], 'Using default tag: latest');
    t.equal(lines[1], `latest: Pulling from ${reg.host}/library/hello`);
    for (const l of [bb, motd]) {
      t.ok(lines.includes(`${short(l.digest)}: Pulling fs layer`), `${short(l.digest)}: Pulling fs layer`);
      t.ok(lines.includes(`${short(l.digest)}: Pull complete`), `${short(l.digest)}: Pull complete`);
      t.ok(lines.indexOf(`${short(l.digest)}: Pulling fs layer`) < lines.indexOf(`${short(l.digest)}: Pull complete`));
    }
    t.notOk(r.stdout.includes('Downloading'), 'no byte counts off a terminal');
    t.ok(lines.includes(`Digest: ${hello.manifest.digest}`));
    t.ok(lines.includes(`Status: Downloaded newer image for ${reg.host}/library/hello:latest`));
    t.equal(lines.at(-1), ref, 'the name last, as docker prints it');

    const sn = conn.service(Snapshots);
    for (const c of chain) {
      const { info } = await sn.stat({ snapshotter: 'overlayfs', key: c });
      t.equal(info?.kind, 3, `${c.slice(0, 19)} committed`);
    }
    const { info: top } = await sn.stat({ snapshotter: 'overlayfs', key: chain[1]! });
    t.equal(top?.parent, chain[0], 'layer two on layer one');
    const { info: cfg } = await conn.service(Content).info({ digest: hello.config.digest });
    t.equal(cfg?.labels['containerd.io/gc.ref.snapshot.overlayfs'], chain[1]);
    const { info: layer } = await conn.service(Content).info({ digest: motd.digest });
    t.equal(layer?.labels['containerd.io/uncompressed'], motd.diffId);

    const again = await ctl(['pull', ref]);
    t.equal(again.exitCode, 0, again.stderr);
    t.match(again.stdout, `${short(bb.digest)}: Already exists`);
    t.match(again.stdout, `Status: Image is up to date for ${ref}`);
    t.notOk(again.stdout.includes('Using default tag'));
  });

  await t.test('pull of an unknown image or tag: not found, nothing left', async (t) => {
    for (const name of ['library/nope:latest', 'library/hello:nope']) {
      const r = await ctl(['pull', `${reg.host}/${name}`]);
      t.equal(r.exitCode, 1);
      t.equal(r.stderr, `tsrctl: not found: ${reg.host}/${name}`);
    }
    const e = await (async () => {
      for await (const _ of conn.service(Transfer).pull({ ref: `${reg.host}/library/nope` })) {
        /* progress */
      }
    })().catch((x: grpc.ServiceError) => x);
    t.equal((e as grpc.ServiceError).code, grpc.status.NOT_FOUND);
    t.same((await conn.service(Leases).list({})).leases.map((l) => l.id), [], 'no lease left');
    t.same((await conn.service(Content).listStatuses({})).statuses, [], 'no ingest left');
  });

  await t.test('images ls, inspect, tag, rm', async (t) => {
    const ls = await ctl(['images', 'ls']);
    t.equal(ls.exitCode, 0, ls.stderr);
    t.match(ls.stdout, new RegExp(`^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE\\n${reg.host.replace(/\./g, '\\.')}/library/hello +latest +${short(hello.config.digest)} +\\S.* +\\d+(\\.\\d+)?[kM]B$`));
    const insp = await ctl(['images', 'inspect', 'no-such-image', ref]);
    t.equal(insp.exitCode, 1);
    t.match(insp.stderr, 'tsrctl: no-such-image: image "docker.io/library/no-such-image:latest": not found');
    const [j] = JSON.parse(insp.stdout) as Array<{ Name: string; Id: string; Manifest: string; Platform: string; Config: { Cmd: string[] }; RootFS: { diff_ids: string[] }; Layers: unknown[] }>;
    t.equal(j!.Name, ref);
    t.equal(j!.Id, hello.config.digest);
    t.equal(j!.Manifest, hello.manifest.digest);
    t.equal(j!.Platform, 'linux/amd64');
    t.same(j!.Config.Cmd, ['/bin/busybox', 'echo', 'Hello from tsrunc']);
    t.same(j!.RootFS.diff_ids, [bb.diffId, motd.diffId]);
    t.equal(j!.Layers.length, 2);

    t.equal((await ctl(['images', 'tag', ref, 'mine', `${reg.host}/team/mine:v2`])).exitCode, 0);
    const names = (await ctl(['images', 'ls', '-q'])).stdout.split('\n').filter(Boolean).sort();
    t.same(names, [`${reg.host}/library/hello:latest`, `${reg.host}/team/mine:v2`, 'docker.io/library/mine:latest'].sort());
    const rm = await ctl(['images', 'rm', 'mine', 'nothere']);
    t.equal(rm.exitCode, 1);
    t.equal(rm.stdout, 'Untagged: mine:latest');
    t.match(rm.stderr, /^tsrctl: nothere: image "docker.io\/library\/nothere:latest": not found/);
    t.ok((await conn.service(Content).info({ digest: bb.digest })).info, 'content stays while another name holds it');
  });

  await t.test('push to another repository, then pull it back: the same digest', async (t) => {
    const r = await ctl(['push', `${reg.host}/team/mine:v2`]);
    t.equal(r.exitCode, 0, r.stderr);
    t.match(r.stdout, `The push refers to repository [${reg.host}/team/mine]`);
    t.match(r.stdout, `${short(bb.digest)}: Mounted from library/hello`);
    t.match(r.stdout, `v2: digest: ${hello.manifest.digest} size: ${hello.manifest.size}`);
    const other = await startRegistry();
    t.teardown(() => other.stop());
    const p2 = await ctl(['push', '--to', `${other.host}/x/y:1`, ref]);
    t.equal(p2.exitCode, 0, p2.stderr);
    t.match(p2.stdout, `${short(bb.digest)}: Pushed`);
    const back = await ctl(['--namespace', 'pl2', 'pull', `${other.host}/x/y:1`]);
    t.equal(back.exitCode, 0, back.stderr);
    t.match(back.stdout, `Digest: ${hello.manifest.digest}`);
  });

  await t.test('basic auth: credentials from DOCKER_CONFIG/config.json; wrong ones refused', async (t) => {
    const secure = await startRegistry({ auth: { username: 'bob', password: 'pw1' } });
    t.teardown(() => secure.stop());
    await skopeoPush(secure, hello, 'library/hello:latest');
    const sref = `${secure.host}/library/hello:latest`;
    const anon = await ctl(['pull', sref]);
    t.equal(anon.exitCode, 1);
    t.match(anon.stderr, `tsrctl: ${secure.host} requires a user name and password (basic auth) and none is configured`);
    const wrongDir = tempDir('tsrunc-docker-config-');
    writeFileSync(join(wrongDir, 'config.json'), JSON.stringify({ auths: { [secure.host]: { auth: Buffer.from('bob:nope').toString('base64') } } }));
    const wrong = await ctl(['pull', sref], { DOCKER_CONFIG: wrongDir });
    t.equal(wrong.exitCode, 1);
    t.match(wrong.stderr, /unauthorized: the registry refused the configured credentials/);
    mkdirSync(dockerConfig, { recursive: true });
    writeFileSync(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [secure.host]: { username: 'bob', password: 'pw1' } } }));
    const ok = await ctl(['pull', '-q', sref]);
    t.equal(ok.exitCode, 0, ok.stderr);
    t.equal(ok.stdout, sref);
  });
});
