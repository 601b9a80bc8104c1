// The registry client, pull and push in process, against a real registry
// (Debian's docker-registry on 127.0.0.1) with images built here from
// busybox-static and copied there by skopeo: OCI and Docker schema2,
// indexes and platform selection, not found, basic auth with credentials
// from a docker config.json, a digest mismatch (nothing committed), a
// connection cut mid-blob (retried; a partial ingest resumed by the next
// pull), push with blob checks, cross-repository mount and chunked upload,
// and a push/pull round trip with the same manifest digest.
import t, { type Test } from 'tap';
import { createServer, request, type Server } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openMetadata, type Metadata } from '../../src/metadata/index.js';
import { ContentStore } from '../../src/content/store.js';
import { pullImage, type PullEvent } from '../../src/images/pull.js';
import { pushImage } from '../../src/images/push.js';
import { RegistryClient } from '../../src/images/registry/client.js';
import { credentialsFor, dockerConfigPath, readDockerConfig } from '../../src/images/registry/credentials.js';
import { errClassOf } from '../../src/errdefs.js';
import { tempDir } from '../helpers/daemon.js';
import { busyboxLayer, fileLayer, ociLayout, registryMissing, skopeoPush, startRegistry, startTokenServer, type BuiltImage, type Registry } from '../helpers/registry.js';

const missing = registryMissing();
if (missing) {
  t.comment(`skipping the registry tests: ${missing}`);
  t.pass('skipped');
} else {
  // one parent test: its teardown stops the registry (a root-level teardown
  // would wait for an event loop the registry child keeps busy)
  t.test('against docker-registry', main);
}

interface Store {
  metadata: Metadata;
  content: ContentStore;
}

function openStore(t: Test): Store {
  const root = join(tempDir('tsrunc-reg-store-'), 'root');
  const metadata = openMetadata(root);
  const content = new ContentStore(join(root, 'content'), metadata);
  t.teardown(() => metadata.close());
  return { metadata, content };
}

/** What a namespace holds after a pull: blobs, ingests, leases. */
async function holdings(s: Store, ns = 'default') {
  return {
    blobs: s.content.list(ns).map((i) => i.digest).sort(),
    ingests: (await s.content.listStatuses(ns)).map((i) => i.ref),
    leases: s.metadata.leases.list(ns).map((l) => l.id),
  };
}

/**
 * A loopback proxy in front of the registry. For GETs of the blob `digest`:
 * "cut" sends `cutAfter` bytes then drops the connection (the first `times`
 * requests), "corrupt" flips a byte of the body.
 */
async function proxy(reg: Registry, o: { digest: string; mode: 'cut' | 'corrupt'; cutAfter?: number; times?: number; port?: number }): Promise<{ host: string; port: number; ranges: string[]; close(): Promise<void> }> {
  const ranges: string[] = [];
  let hits = 0;
  const server: Server = createServer((req, res) => {
    const isBlob = req.method === 'GET' && req.url?.includes(`/blobs/${o.digest}`);
    if (isBlob) ranges.push(String(req.headers['range'] ?? ''));
    const up = request({ host: '127.0.0.1', port: reg.port, path: req.url, method: req.method, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      if (!isBlob || ur.statusCode! >= 300) return void ur.pipe(res);
      hits++;
      if (o.mode === 'cut' && hits <= (o.times ?? 1)) {
        let sent = 0;
        ur.on('data', (c: Buffer) => {
          if (sent >= o.cutAfter!) return;
          const part = c.subarray(0, o.cutAfter! - sent);
          sent += part.length;
          res.write(part);
          if (sent >= o.cutAfter!) {
            ur.destroy();
            res.socket?.destroy();
          }
        });
        return;
      }
      if (o.mode === 'corrupt') {
        let first = true;
        ur.on('data', (c: Buffer) => {
          if (first) {
            c = Buffer.from(c);
            c[c.length - 1] = c[c.length - 1]! ^ 0xff;
            first = false;
          }
          res.write(c);
        });
        ur.on('end', () => res.end());
        return;
      }
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(o.port ?? 0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    host: `127.0.0.1:${port}`,
    port,
    ranges,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function main(t: Test): Promise<void> {
  const bb = busyboxLayer();
  const extra = fileLayer('etc/motd', 'layer two\n');
  const hello: BuiltImage = ociLayout([{ layers: [bb, extra] }]);
  const multi = ociLayout([{ layers: [bb] }, { layers: [fileLayer('arch', 'arm64\n')], architecture: 'arm64', variant: 'v8' }, { layers: [fileLayer('arch', 'armv7\n')], architecture: 'arm', variant: 'v7' }]);

  const reg: Registry = await startRegistry();
  t.teardown(() => reg.stop());
  await skopeoPush(reg, hello, 'library/hello:latest');
  await skopeoPush(reg, hello, 'library/hello-docker:latest', { format: 'v2s2' });
  await skopeoPush(reg, multi, 'library/multi:latest');

  t.test('ping and resolve: plain HTTP for 127.0.0.1, the manifest by tag', async (t) => {
    const c = new RegistryClient(reg.host);
    t.equal((await c.ping()).protocol, 'http:');
    const r = await c.resolve('library/hello', 'latest', `${reg.host}/library/hello:latest`);
    t.equal(r.desc.digest, hello.manifest.digest);
    t.equal(r.desc.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    const plain = new RegistryClient('registry.invalid:5000');
    await t.rejects(plain.ping(), /registry registry\.invalid:5000 cannot be reached: .*plain HTTP is used only for localhost and registries named insecure/);
  });

  t.test('pull an OCI image into content, with labels, an image record and progress', async (t) => {
    const s = openStore(t);
    const events: PullEvent[] = [];
    const name = `${reg.host}/library/hello:latest`;
    const r = await pullImage(s, { namespace: 'default', ref: name, progress: (e) => events.push(e) });
    t.equal(r.digest, hello.manifest.digest);
    t.ok(r.created && r.updated);
    t.equal(r.image.name, name);
    t.same(r.image.target, { mediaType: hello.manifest.mediaType, digest: hello.manifest.digest, size: hello.manifest.size, annotations: {} });
    const h = await holdings(s);
    t.same(h.blobs, [hello.manifest.digest, hello.config.digest, bb.digest, extra.digest].sort());
    t.same(h.ingests, []);
    t.same(h.leases, [], 'the temporary lease is gone');
    const m = s.content.info('default', hello.manifest.digest);
    t.equal(m.labels['containerd.io/gc.ref.content.config'], hello.config.digest);
    t.equal(m.labels['containerd.io/gc.ref.content.l.0'], bb.digest);
    t.equal(m.labels['containerd.io/gc.ref.content.l.1'], extra.digest);
    t.equal(s.content.info('default', bb.digest).labels[`containerd.io/distribution.source.${reg.host}`], 'library/hello');
    t.same((await s.content.readAll('default', bb.digest)).equals(bb.data), true, 'the layer bytes are the pushed ones');
    const lines = events.map((e) => (e.kind === 'message' ? e.text : `${e.id}: ${e.status}`));
    t.equal(lines[0], 'latest: Pulling from 127.0.0.1:' + reg.port + '/library/hello');
    t.ok(lines.includes(`${bb.digest.slice(7, 19)}: Pulling fs layer`));
    t.ok(lines.includes(`${bb.digest.slice(7, 19)}: Download complete`));
    t.ok(events.some((e) => e.kind === 'layer' && e.status === 'Downloading' && e.total === bb.size));

    const again: PullEvent[] = [];
    const r2 = await pullImage(s, { namespace: 'default', ref: name, progress: (e) => again.push(e) });
    t.notOk(r2.updated, 'a second pull changes nothing');
    t.ok(again.some((e) => e.kind === 'layer' && e.status === 'Already exists'));
    t.notOk(again.some((e) => e.kind === 'layer' && e.status === 'Downloading'));
  });

  t.test('pull a Docker schema2 image and by digest', async (t) => {
    const s = openStore(t);
    const r = await pullImage(s, { namespace: 'default', ref: `${reg.host}/library/hello-docker` });
    t.equal(r.image.target.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    const manifest = JSON.parse((await s.content.readAll('default', r.digest)).toString()) as { config: { mediaType: string }; layers: Array<{ mediaType: string; digest: string }> };
    t.equal(manifest.config.mediaType, 'application/vnd.docker.container.image.v1+json');
    t.equal(manifest.layers[0]!.mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
    t.equal(manifest.layers[0]!.digest, bb.digest);
    const byDigest = await pullImage(s, { namespace: 'default', ref: `${reg.host}/library/hello@${hello.manifest.digest}` });
    t.equal(byDigest.image.name, `${reg.host}/library/hello@${hello.manifest.digest}`);
    t.equal(byDigest.digest, hello.manifest.digest);
  });

  t.test('an index: the platform\'s manifest is pulled, the others are not', async (t) => {
    const s = openStore(t);
    const ref = `${reg.host}/library/multi:latest`;
    const r = await pullImage(s, { namespace: 'default', ref, platform: { os: 'linux', architecture: 'amd64' } });
    t.equal(r.image.target.mediaType, 'application/vnd.oci.image.index.v1+json');
    t.equal(r.digest, multi.index!.digest);
    t.ok(s.content.has('default', bb.digest), 'the amd64 layer');
    t.equal(s.content.list('default').length, 4, 'index, manifest, config, layer');
    const arm = openStore(t);
    await pullImage(arm, { namespace: 'default', ref, platform: { os: 'linux', architecture: 'arm64' } });
    t.notOk(arm.content.has('default', bb.digest), 'arm64 has its own layer');
    const armLayer = arm.content.list('default').find((i) => i.labels[`containerd.io/distribution.source.${reg.host}`] && i.size < 1000 && i.digest !== multi.index!.digest);
    t.ok(armLayer);
    const v6 = openStore(t);
    await t.rejects(pullImage(v6, { namespace: 'default', ref, platform: { os: 'linux', architecture: 'arm', variant: 'v6' } }), /no match for platform linux\/arm\/v6 in manifest sha256:[0-9a-f]+ of .* \(it has linux\/amd64, linux\/arm64\/v8, linux\/arm\/v7\)/);
    t.same(await holdings(v6), { blobs: [], ingests: [], leases: [] }, 'nothing left by a failed pull');
  });

  t.test('unknown image or tag: not found, nothing left', async (t) => {
    const s = openStore(t);
    for (const ref of [`${reg.host}/library/nope:latest`, `${reg.host}/library/hello:nope`]) {
      const e = await pullImage(s, { namespace: 'default', ref }).catch((x: Error) => x);
      t.equal((e as Error).message, `not found: ${ref}`);
      t.equal(errClassOf(e), 'not found');
    }
    const e = await pullImage(s, { namespace: 'default', ref: `${reg.host}/nope` }).catch((x: Error) => x);
    t.equal((e as Error).message, `not found: ${reg.host}/nope:latest`, 'no library/ for a registry other than docker.io');
    t.same(await holdings(s), { blobs: [], ingests: [], leases: [] });
  });

  t.test('a blob whose digest does not match is refused; nothing committed', async (t) => {
    const p = await proxy(reg, { digest: extra.digest, mode: 'corrupt' });
    t.teardown(() => p.close());
    const s = openStore(t);
    const e = await pullImage(s, { namespace: 'default', ref: `${p.host}/library/hello:latest` }).catch((x: Error) => x);
    t.match((e as Error).message, new RegExp(`blob ${extra.digest} of .*: the registry sent content with digest sha256:[0-9a-f]{64}; nothing was committed`));
    t.equal(errClassOf(e), 'failed precondition');
    const h = await holdings(s);
    t.notOk(h.blobs.includes(extra.digest), 'the bad blob is not in content');
    t.same(h.ingests, [], 'its ingest is removed');
    t.same(h.leases, []);
    t.notOk(s.metadata.images.list('default').length, 'no image record');
  });

  t.test('a connection cut mid-blob is retried from where it stopped', async (t) => {
    const p = await proxy(reg, { digest: bb.digest, mode: 'cut', cutAfter: 300_000, times: 1 });
    t.teardown(() => p.close());
    const s = openStore(t);
    const r = await pullImage(s, { namespace: 'default', ref: `${p.host}/library/hello:latest` });
    t.equal(r.digest, hello.manifest.digest);
    t.ok((await s.content.readAll('default', bb.digest)).equals(bb.data));
    t.equal(p.ranges[0], '', 'first request from the start');
    t.match(p.ranges[1], /^bytes=(\d+)-$/, 'then a Range request');
    t.ok(Number(/bytes=(\d+)-/.exec(p.ranges[1]!)?.[1]) >= 200_000, `resumed at ${p.ranges[1]}`);
  });

  t.test('a download that keeps failing leaves a resumable ingest; the next pull resumes it', async (t) => {
    // 5 tries of 100 kB each: the 2 MB of busybox never arrive
    const p = await proxy(reg, { digest: bb.digest, mode: 'cut', cutAfter: 100_000, times: 1000 });
    t.teardown(() => p.close());
    const s = openStore(t);
    const ref = `${p.host}/library/hello:latest`;
    const e = await pullImage(s, { namespace: 'default', ref }).catch((x: Error) => x);
    t.match((e as Error).message, /the download failed 5 times .* bytes received are kept in ingest layer-sha256:[0-9a-f]+ and the next pull resumes from there/);
    const st = await s.content.listStatuses('default');
    t.equal(st.length, 1);
    t.ok(st[0]!.offset > 0 && st[0]!.offset < bb.size, `the ingest holds ${st[0]!.offset} bytes`);
    t.notOk(s.content.has('default', bb.digest));
    t.equal(s.metadata.leases.list('default').length, 1, 'a lease keeps the ingest from the collector');
    const held = st[0]!.offset;
    await p.close();
    // the same name again (a lease is kept per image name)
    const q = await proxy(reg, { digest: bb.digest, mode: 'cut', cutAfter: 0, times: 0, port: p.port });
    t.teardown(() => q.close());
    const r = await pullImage(s, { namespace: 'default', ref });
    t.equal(r.digest, hello.manifest.digest);
    t.same(q.ranges, [`bytes=${held}-`], 'one request, from the bytes already held');
    t.ok((await s.content.readAll('default', bb.digest)).equals(bb.data));
    const h = await holdings(s);
    t.same(h.ingests, []);
    t.same(h.leases, [], 'the kept lease went with the finished pull');
  });

  t.test('push: blob checks, cross-repository mount, chunked upload, round trip', async (t) => {
    const s = openStore(t);
    const src = `${reg.host}/library/hello:latest`;
    await pullImage(s, { namespace: 'default', ref: src });
    const events: PullEvent[] = [];
    const to = `${reg.host}/team/copy:v1`;
    const r = await pushImage(s, { namespace: 'default', name: src, ref: to, progress: (e) => events.push(e) });
    t.equal(r.digest, hello.manifest.digest, 'the registry keeps the manifest digest');
    const status = (d: string) => events.filter((e) => e.kind === 'layer' && e.id === d.slice(7, 19)).map((e) => (e as { status: string }).status);
    t.ok(status(bb.digest).includes('Mounted from library/hello'), `layer: ${status(bb.digest).join(', ')}`);
    t.ok(status(hello.config.digest).includes('Mounted from library/hello'));
    t.match(events.at(-1), { kind: 'message', text: `v1: digest: ${hello.manifest.digest} size: ${hello.manifest.size}` });

    const again: PullEvent[] = [];
    await pushImage(s, { namespace: 'default', name: src, ref: to, progress: (e) => again.push(e) });
    t.ok(again.filter((e) => e.kind === 'layer' && e.status === 'Layer already exists').length >= 3, 'a second push uploads nothing');

    // a registry that never saw these blobs: chunked uploads (64 KiB chunks)
    const other = await startRegistry();
    t.teardown(() => other.stop());
    const up: PullEvent[] = [];
    const r2 = await pushImage(s, { namespace: 'default', name: src, ref: `${other.host}/library/hello:latest`, chunkSize: 64 << 10, progress: (e) => up.push(e) });
    t.equal(r2.digest, hello.manifest.digest);
    t.ok(up.some((e) => e.kind === 'layer' && e.status === 'Pushing' && e.current! > 0 && e.current! < bb.size), 'progress between chunks');
    t.ok(up.some((e) => e.kind === 'layer' && e.id === bb.digest.slice(7, 19) && e.status === 'Pushed'));
    const back = openStore(t);
    const pulled = await pullImage(back, { namespace: 'default', ref: `${other.host}/library/hello:latest` });
    t.equal(pulled.digest, r.digest, 'pulled manifest digest equals the pushed one');
    t.ok((await back.content.readAll('default', bb.digest)).equals(bb.data));

    // an index pushed whole
    const m = openStore(t);
    await pullImage(m, { namespace: 'default', ref: `${reg.host}/library/multi:latest` });
    await t.rejects(pushImage(m, { namespace: 'default', name: `${reg.host}/library/multi:latest`, ref: `${other.host}/library/multi:latest` }), /is not in the content store \(was the image pulled for another platform only\?\)/);
    const one = await pushImage(m, { namespace: 'default', name: `${reg.host}/library/multi:latest`, ref: `${other.host}/library/multi-amd64:latest`, platform: { os: 'linux', architecture: 'amd64' } });
    const amd64 = (JSON.parse(multi.index!.data.toString()) as { manifests: Array<{ digest: string }> }).manifests[0]!.digest;
    t.equal(one.digest, amd64, 'only the platform\'s manifest, under the tag');
  });

  t.test('basic auth: refused anonymously and with wrong credentials, accepted with the config.json ones', async (t) => {
    const secure = await startRegistry({ auth: { username: 'alice', password: 's3cret' } });
    t.teardown(() => secure.stop());
    await skopeoPush(secure, hello, 'library/hello:latest');
    const ref = `${secure.host}/library/hello:latest`;
    const s = openStore(t);
    const anon = await pullImage(s, { namespace: 'default', ref }).catch((x: Error) => x);
    t.equal((anon as Error).message, `${secure.host} requires a user name and password (basic auth) and none is configured: log in first (credentials come from ~/.docker/config.json)`);
    t.equal((anon as { code?: number }).code, 16, 'Unauthenticated');
    const wrong = await pullImage(s, { namespace: 'default', ref, registry: { credentials: () => ({ username: 'alice', secret: 'nope' }) } }).catch((x: Error) => x);
    t.match((wrong as Error).message, /unauthorized: the registry refused the configured credentials \(user "alice"\)$/);
    t.equal((wrong as { code?: number }).code, 16);
    t.same(await holdings(s), { blobs: [], ingests: [], leases: [] });

    const cfgDir = tempDir('tsrunc-docker-config-');
    mkdirSync(cfgDir, { recursive: true });
    writeFileSync(join(cfgDir, 'config.json'), JSON.stringify({ auths: { [secure.host]: { auth: Buffer.from('alice:s3cret').toString('base64') } } }));
    const path = dockerConfigPath({ DOCKER_CONFIG: cfgDir });
    t.equal(path, join(cfgDir, 'config.json'));
    const fromFile = (host: string) => credentialsFor(host, readDockerConfig(path));
    t.same(fromFile(secure.host), { username: 'alice', secret: 's3cret' });
    const r = await pullImage(s, { namespace: 'default', ref, registry: { credentials: fromFile } });
    t.equal(r.digest, hello.manifest.digest);
    const pushed = await pushImage(s, { namespace: 'default', name: ref, ref: `${secure.host}/team/x:1`, registry: { credentials: fromFile } });
    t.equal(pushed.digest, hello.manifest.digest);
  });

  t.test('Bearer tokens from the WWW-Authenticate realm: anonymous pull, refused push, credentials, wrong credentials', async (t) => {
    const tokens = await startTokenServer({ carol: 'tok-pw' });
    t.teardown(() => tokens.close());
    const secure = await startRegistry({ token: tokens, auth: { username: 'carol', password: 'tok-pw' } });
    t.teardown(() => secure.stop());
    await skopeoPush(secure, hello, 'library/hello:latest');
    await skopeoPush(secure, hello, 'private/app:v1');
    tokens.requests.length = 0;

    const s = openStore(t);
    const r = await pullImage(s, { namespace: 'default', ref: `${secure.host}/library/hello:latest` });
    t.equal(r.digest, hello.manifest.digest, 'anonymous pull with an anonymous token');
    t.same(tokens.requests[0], { account: undefined, basic: undefined, service: 'tsrunc-test', scopes: ['repository:library/hello:pull'] });
    t.ok(tokens.requests.length <= 2, `one token reused for the blobs (${tokens.requests.length} token requests)`);

    const denied = await pullImage(openStore(t), { namespace: 'default', ref: `${secure.host}/private/app:v1` }).catch((x: Error) => x);
    t.match((denied as Error).message, /unauthorized: the registry refused anonymous access \(no credentials configured for it\)/);
    t.equal((denied as { code?: number }).code, 16);
    const push = await pushImage(s, { namespace: 'default', name: `${secure.host}/library/hello:latest`, ref: `${secure.host}/library/copy:1` }).catch((x: Error) => x);
    t.match((push as Error).message, /: unauthorized: the registry refused anonymous access \(no credentials configured for it\) to push$/, 'anonymous users may not push');

    const wrong = await pullImage(openStore(t), { namespace: 'default', ref: `${secure.host}/private/app:v1`, registry: { credentials: () => ({ username: 'carol', secret: 'bad' }) } }).catch((x: Error) => x);
    t.match((wrong as Error).message, new RegExp(`${secure.host.replace(/\./g, '\\.')}: the token server http://127\\.0\\.0\\.1:\\d+/token refused the credentials of user "carol" \\(401: incorrect username or password\\)`));
    t.equal((wrong as { code?: number }).code, 16);

    tokens.requests.length = 0;
    const creds = { credentials: () => ({ username: 'carol', secret: 'tok-pw' }) };
    const p = await pullImage(openStore(t), { namespace: 'default', ref: `${secure.host}/private/app:v1`, registry: creds });
    t.equal(p.digest, hello.manifest.digest);
    t.match(tokens.requests[0], { account: 'carol', basic: 'carol:tok-pw', scopes: ['repository:private/app:pull'] });
    const pushed = await pushImage(s, { namespace: 'default', name: `${secure.host}/library/hello:latest`, ref: `${secure.host}/private/copy:1`, registry: creds });
    t.equal(pushed.digest, hello.manifest.digest);
    t.ok(tokens.requests.some((q) => q.scopes.includes('repository:private/copy:pull,push') && q.scopes.includes('repository:library/hello:pull')), 'the mount asks for both repositories');
  });
}
