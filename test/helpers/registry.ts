// A real registry for the tests (Debian's docker-registry, distribution
// 2.8) on 127.0.0.1:<free port> with its storage in a temp dir, optionally
// with htpasswd (basic) auth; and images built here from busybox-static as
// OCI layouts (tar+gzip layers made in the test), copied to it with skopeo.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, createSign, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer, request, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { tempDir } from './daemon.js';

export const BUSYBOX = '/bin/busybox';
const execFileAsync = promisify(execFile);

/** Why the registry tests cannot run here, or undefined. */
export function registryMissing(): string | undefined {
  for (const [bin, pkg] of [
    ['/usr/bin/docker-registry', 'docker-registry'],
    ['/usr/bin/skopeo', 'skopeo'],
    ['/usr/bin/htpasswd', 'apache2-utils'],
    [BUSYBOX, 'busybox-static'],
  ] as const) {
    if (!existsSync(bin)) return `${bin} is missing (apt-get install ${pkg})`;
  }
  return undefined;
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const children = new Set<ChildProcess>();
let handling = false;

/**
 * tap ends a test that runs past its time with SIGTERM, which skips 'exit'
 * handlers: the registries would be left running, orphaned.
 */
function killOnSignal(child: ChildProcess): void {
  if (!handling) {
    handling = true;
    process.once('SIGTERM', () => {
      for (const c of children) c.kill('SIGKILL');
      process.exit(143);
    });
  }
  children.add(child);
  child.once('exit', () => children.delete(child));
}

export interface Registry {
  /** "127.0.0.1:PORT" */
  host: string;
  port: number;
  dir: string;
  auth?: { username: string; password: string } | undefined;
  log(): string;
  stop(): Promise<void>;
}

/** Starts docker-registry serve; resolves once GET /v2/ answers. */
export async function startRegistry(opts: { auth?: { username: string; password: string }; token?: TokenServer } = {}): Promise<Registry> {
  const dir = tempDir('tsrunc-registry-');
  const port = await freePort();
  let auth = '';
  if (opts.token) {
    auth = `auth:\n  token:\n    realm: ${opts.token.realm}\n    service: ${opts.token.service}\n    issuer: ${opts.token.issuer}\n    rootcertbundle: ${opts.token.certPath}\n`;
  } else if (opts.auth) {
    const line = execFileSync('htpasswd', ['-Bbn', opts.auth.username, opts.auth.password]).toString().trim();
    writeFileSync(join(dir, 'htpasswd'), `${line}\n`);
    auth = `auth:\n  htpasswd:\n    realm: tsrunc-test\n    path: ${join(dir, 'htpasswd')}\n`;
  }
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${auth}`,
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  process.on('exit', () => child.kill('SIGKILL'));
  killOnSignal(child);
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}:\n${log}`);
    const status = await new Promise<number>((resolve) => {
      const r = request({ host: '127.0.0.1', port, path: '/v2/' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      r.on('error', () => resolve(0));
      r.end();
    });
    if (status === 200 || status === 401) break;
    if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${port} in 20 s:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host: `127.0.0.1:${port}`,
    port,
    dir,
    auth: opts.auth,
    log: () => log,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface TokenRequest {
  account: string | undefined;
  /** the Basic credentials sent, "user:password" */
  basic: string | undefined;
  service: string | null;
  scopes: string[];
}

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certPath: string;
  /** every token request, in order */
  requests: TokenRequest[];
  close(): Promise<void>;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/**
 * A token server as distribution's token auth spec describes it: GET
 * /token?service=&scope=... (Basic credentials or none) answers a JWT
 * signed RS256 with the certificate in x5c, which the registry trusts
 * (rootcertbundle). Anonymous users may pull repositories under library/;
 * `users` may pull and push everything; wrong credentials get 401.
 */
export async function startTokenServer(users: Record<string, string>): Promise<TokenServer> {
  const dir = tempDir('tsrunc-token-');
  const keyPath = join(dir, 'token.key');
  const certPath = join(dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-subj', '/CN=tsrunc-test-token', '-days', '2'], { stdio: 'ignore' });
  const key = readFileSync(keyPath);
  const der = Buffer.from(
    readFileSync(certPath, 'utf8')
      .replace(/-----(BEGIN|END) CERTIFICATE-----/g, '')
      .replace(/\s+/g, ''),
    'base64',
  );
  const service = 'tsrunc-test';
  const issuer = 'tsrunc-test-issuer';
  const requests: TokenRequest[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const authz = req.headers['authorization'];
    const basic = authz?.startsWith('Basic ') ? Buffer.from(authz.slice(6), 'base64').toString('utf8') : undefined;
    const scopes = url.searchParams.getAll('scope');
    requests.push({ account: url.searchParams.get('account') ?? undefined, basic, service: url.searchParams.get('service'), scopes });
    let user: string | undefined;
    if (basic !== undefined) {
      const i = basic.indexOf(':');
      const [u, p] = [basic.slice(0, i), basic.slice(i + 1)];
      if (users[u] !== p) {
        res.writeHead(401, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ details: 'incorrect username or password' }));
      }
      user = u;
    }
    const access = scopes.flatMap((sc) => {
      const [type, name, actions] = sc.split(':');
      if (type !== 'repository' || !name || !actions) return [];
      const granted = actions.split(',').filter((a) => (user ? true : a === 'pull' && name.startsWith('library/')));
      return granted.length ? [{ type, name, actions: granted }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [der.toString('base64')] }));
    const claims = b64url(JSON.stringify({ iss: issuer, sub: user ?? '', aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access }));
    const sig = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(key);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token: `${header}.${claims}.${b64url(sig)}`, expires_in: 300 }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certPath,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface Blob {
  mediaType: string;
  digest: string;
  size: number;
  data: Buffer;
}

export interface BuiltImage {
  /** the OCI layout directory */
  layout: string;
  manifest: Blob;
  config: Blob;
  layers: Array<Blob & { diffId: string }>;
  /** the index when several platforms were built */
  index?: Blob | undefined;
}

function blob(mediaType: string, data: Buffer): Blob {
  return { mediaType, digest: sha(data), size: data.length, data };
}

/** A tar+gzip layer of a directory tree made by fill(dir), reproducibly (GNU tar, sorted, mtime 0, root-owned). */
export function makeLayer(fill: (dir: string) => void): Blob & { diffId: string } {
  const dir = tempDir('tsrunc-layer-');
  fill(dir);
  const tar = execFileSync('tar', ['-C', dir, '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-cf', '-', '.'], { maxBuffer: 64 << 20 });
  rmSync(dir, { recursive: true, force: true });
  return tarLayer(tar);
}

/** A tar+gzip layer of a tar made by the test (exact headers: devices, xattrs, whiteouts). */
export function tarLayer(tar: Buffer): Blob & { diffId: string } {
  const gz = gzipSync(tar, { level: 1 });
  return { ...blob('application/vnd.oci.image.layer.v1.tar+gzip', gz), diffId: sha(tar) };
}

/** A layer with busybox as /bin/busybox and /bin/sh. */
export function busyboxLayer(): Blob & { diffId: string } {
  return makeLayer((d) => {
    mkdirSync(join(d, 'bin'));
    copyFileSync(BUSYBOX, join(d, 'bin', 'busybox'));
    chmodSync(join(d, 'bin', 'busybox'), 0o755);
    symlinkSync('busybox', join(d, 'bin', 'sh'));
  });
}

/** A small layer with one file (for multi-layer images and distinct content). */
export function fileLayer(path: string, content: string): Blob & { diffId: string } {
  return makeLayer((d) => {
    const full = join(d, path);
    mkdirSync(join(full, '..'), { recursive: true });
    writeFileSync(full, content);
  });
}

export interface ImageSpec {
  layers: Array<Blob & { diffId: string }>;
  cmd?: string[];
  /** more of the config's `config` (Entrypoint, Env, WorkingDir, User, ...): replaces the defaults */
  config?: Record<string, unknown>;
  architecture?: string;
  variant?: string;
}

/**
 * Writes an OCI layout with one image (or an index of several, one per
 * spec, each with its platform) tagged `tag`.
 */
export function ociLayout(specs: ImageSpec[], tag = 'latest'): BuiltImage {
  const layout = tempDir('tsrunc-oci-');
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
  const put = (b: Blob): void => writeFileSync(join(layout, 'blobs', 'sha256', b.digest.slice(7)), b.data);
  const built: Array<{ manifest: Blob; config: Blob; spec: ImageSpec }> = [];
  for (const spec of specs) {
    const config = blob(
      'application/vnd.oci.image.config.v1+json',
      Buffer.from(
        JSON.stringify({
          architecture: spec.architecture ?? 'amd64',
          ...(spec.variant ? { variant: spec.variant } : {}),
          os: 'linux',
          config: { Env: ['PATH=/bin'], Cmd: spec.cmd ?? ['/bin/busybox', 'echo', 'Hello from tsrunc'], ...spec.config },
          rootfs: { type: 'layers', diff_ids: spec.layers.map((l) => l.diffId) },
        }),
      ),
    );
    const manifest = blob(
      'application/vnd.oci.image.manifest.v1+json',
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
          layers: spec.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
        }),
      ),
    );
    for (const b of [config, manifest, ...spec.layers]) put(b);
    built.push({ manifest, config, spec });
  }
  let index: Blob | undefined;
  let top: { mediaType: string; digest: string; size: number };
  if (specs.length > 1) {
    index = blob(
      'application/vnd.oci.image.index.v1+json',
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: built.map((b) => ({
            mediaType: b.manifest.mediaType,
            digest: b.manifest.digest,
            size: b.manifest.size,
            platform: { os: 'linux', architecture: b.spec.architecture ?? 'amd64', ...(b.spec.variant ? { variant: b.spec.variant } : {}) },
          })),
        }),
      ),
    );
    put(index);
    top = index;
  } else {
    top = built[0]!.manifest;
  }
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: top.mediaType, digest: top.digest, size: top.size, annotations: { 'org.opencontainers.image.ref.name': tag } }] }),
  );
  return { layout, manifest: built[0]!.manifest, config: built[0]!.config, layers: specs[0]!.layers, index };
}

/**
 * Copies an OCI layout to the registry with skopeo (independent of our
 * push code). format "v2s2" converts to Docker schema2 media types.
 */
export async function skopeoPush(reg: Registry, img: BuiltImage, repoTag: string, opts: { format?: 'oci' | 'v2s2'; tag?: string } = {}): Promise<void> {
  const args = ['copy', '--quiet', '--dest-tls-verify=false'];
  if (img.index) args.push('--all');
  if (opts.format) args.push('--format', opts.format);
  if (reg.auth) args.push('--dest-creds', `${reg.auth.username}:${reg.auth.password}`);
  args.push(`oci:${img.layout}:${opts.tag ?? 'latest'}`, `docker://${reg.host}/${repoTag}`);
  // not synchronous: a token server in this process must answer skopeo
  await execFileAsync('skopeo', args, { env: { ...process.env, REGISTRY_AUTH_FILE: join(reg.dir, 'skopeo-auth.json') } });
}
