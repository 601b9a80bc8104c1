// A lab for the compatibility tests (test/compat): real container engines
// (containerd, dockerd, podman) started by the test with every socket, state
// and storage directory under one temp dir, driving tsrunc as their OCI
// runtime; images built from busybox-static; and a clean-up that stops only
// the processes the lab started, unmounts what is mounted under it and
// removes what the engines left on the host that was not there before.
import { execa, type Options } from 'execa';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeBundle } from './bundle.js';
import { TSRUNC } from './cli.js';

/** The first of NAMES found in PATH (or the system directories), or undefined. */
export function which(...names: string[]): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  for (const n of names) {
    if (n.startsWith('/')) {
      if (existsSync(n)) return n;
      continue;
    }
    for (const d of dirs) if (d && existsSync(join(d, n))) return join(d, n);
  }
  return undefined;
}

/** Why a compat test cannot run here (not root, a tool missing), or false. */
export function missing(tools: Record<string, string>): string | false {
  if (process.geteuid?.() !== 0) return 'compatibility tests start container engines and need root';
  const absent = Object.entries(tools).filter(([bin]) => !which(bin));
  if (absent.length) return `not installed: ${absent.map(([bin, pkg]) => `${bin} (apt-get install ${pkg})`).join(', ')}`;
  return false;
}

/** The environment for daemons and clients: without tap's instrumentation, with node on PATH. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'NODE_OPTIONS' && !k.startsWith('_TAPJS_') && !k.startsWith('TAP')) env[k] = v;
  env['PATH'] = [dirname(process.execPath), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(':');
  return { ...env, ...extra };
}

export interface Result {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; never throws on its exit code. */
export async function run(cmd: string, args: string[], opts: Options = {}): Promise<Result> {
  const stdin = opts.input === undefined ? { stdin: 'ignore' as const } : {};
  const r = await execa(cmd, args, { reject: false, timeout: 60_000, env: cleanEnv(), extendEnv: false, ...stdin, ...opts });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

/** An assertion message that shows the command's stderr only when it failed. */
export function said(r: Result, what: string): string {
  return r.exitCode === 0 ? what : `${what}: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`;
}

const shellQuote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

/** Runs a command on a pseudo-terminal (script(1)), as `-t` needs; stdout has the terminal's output. */
export function runOnTty(cmd: string, args: string[], opts: Options = {}): Promise<Result> {
  return run('script', ['-qec', [cmd, ...args].map(shellQuote).join(' '), '/dev/null'], opts);
}

export interface Daemon {
  name: string;
  pid: number;
  log: string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited */
  stop(graceMs?: number): Promise<void>;
  exited(): boolean;
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4]?.replace(/\\040/g, ' '))
    .filter((m): m is string => !!m && (m === dir || m.startsWith(`${dir}/`)));
}

/** The host paths an engine may create outside its lab: removed again if they did not exist before. */
export class HostPaths {
  private readonly absent: string[];
  constructor(paths: string[]) {
    this.absent = paths.filter((p) => !existsSync(p));
  }
  /** Removes what was absent: files, and directories only when empty (another user may have come since). */
  restore(): string[] {
    const left: string[] = [];
    // deepest first
    for (const p of [...this.absent].sort((a, b) => b.length - a.length)) {
      if (!existsSync(p)) continue;
      try {
        if (statSync(p).isDirectory()) removeEmptyTree(p);
        else rmSync(p);
      } catch {
        left.push(p);
      }
    }
    return left;
  }
}

/** rmdir a tree of empty directories (cgroups, run dirs), deepest first; throws if something is in it. */
export function removeEmptyTree(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeEmptyTree(join(dir, e.name));
  rmdirSync(dir);
}

/** The cgroup directories named NAME in every hierarchy under /sys/fs/cgroup (v1 and v2). */
export function cgroupDirsNamed(name: string): string[] {
  const out: string[] = [];
  for (const h of readdirSync('/sys/fs/cgroup')) {
    const d = join('/sys/fs/cgroup', h, name);
    if (existsSync(d)) out.push(d);
  }
  return out;
}

/** An engine's parent cgroup (/docker, /libpod_parent, a containerd namespace): where it appears after now. */
export class CgroupWatch {
  private readonly before: string[];
  constructor(readonly name: string) {
    this.before = cgroupDirsNamed(name);
  }
  added(): string[] {
    return cgroupDirsNamed(this.name).filter((d) => !this.before.includes(d));
  }
  /** Removes the added trees that are empty (conmon leaves its own cgroup); returns those it could not. */
  remove(): string[] {
    const left: string[] = [];
    for (const d of this.added()) {
      try {
        removeEmptyTree(d);
      } catch {
        left.push(`cgroup left: ${d}`);
      }
    }
    return left;
  }
}

export class Lab {
  readonly dir: string;
  private readonly daemons: Daemon[] = [];
  private readonly children = new Map<number, ChildProcess>();

  constructor(readonly name: string) {
    this.dir = mkdtempSync(join(tmpdir(), `tsrunc-compat-${name}-`));
    chmodSync(this.dir, 0o755);
  }

  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  /**
   * A runtime that logs each command line to calls.log and execs tsrunc: the
   * clients' exact calls, for the test to check (as an argv-logging wrapper of runc would).
   */
  runtimeWrapper(): string {
    const w = this.path('tsrunc');
    writeFileSync(w, `#!/bin/sh\nprintf '%s\\n' "$*" >> ${shellQuote(this.path('calls.log'))}\nexec ${shellQuote(process.execPath)} ${shellQuote(TSRUNC)} "$@"\n`, { mode: 0o755 });
    return w;
  }

  /** The runtime command lines logged so far. */
  calls(): string[] {
    try {
      return readFileSync(this.path('calls.log'), 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  }

  /** Starts a daemon in its own process group, output to NAME.log; waits until `ready` resolves true. */
  async daemon(name: string, cmd: string, args: string[], ready: () => Promise<boolean>, timeoutMs = 30_000): Promise<Daemon> {
    const log = this.path(`${name}.log`);
    const fd = openSync(log, 'a');
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env: cleanEnv() });
    } finally {
      closeSync(fd);
    }
    let gone = false;
    const exit = new Promise<void>((resolve) => {
      child.once('exit', () => {
        gone = true;
        resolve();
      });
      child.once('error', () => {
        gone = true;
        resolve();
      });
    });
    const pid = child.pid ?? -1;
    const d: Daemon = {
      name,
      pid,
      log,
      exited: () => gone,
      stop: async (graceMs = 15_000) => {
        if (gone) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exit;
        clearTimeout(timer);
      },
    };
    this.daemons.push(d);
    this.children.set(pid, child);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (gone) break;
      if (await ready().catch(() => false)) return d;
      await sleep(100);
    }
    const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-15).join('\n') : '';
    throw new Error(`${name} did not come up${gone ? ' (it exited)' : ` within ${timeoutMs} ms`}; the end of ${log}:\n${tail}`);
  }

  /**
   * Stops the daemons (newest first), unmounts what is under the lab, removes
   * it, then what the engines made on the host; says what it could not undo.
   */
  async cleanup(undo: { host?: HostPaths; cgroups?: CgroupWatch } = {}): Promise<void> {
    const problems: string[] = [];
    for (const d of [...this.daemons].reverse()) await d.stop();
    for (const m of mountsUnder(this.dir).sort((a, b) => b.length - a.length)) {
      const r = await run('umount', [m]);
      if (r.exitCode !== 0 && (await run('umount', ['-l', m])).exitCode !== 0) problems.push(`mount ${m}`);
    }
    try {
      rmSync(this.dir, { recursive: true, force: true });
    } catch (e) {
      problems.push(`remove ${this.dir}: ${(e as Error).message}`);
    }
    problems.push(...(undo.host?.restore() ?? []), ...(undo.cgroups?.remove() ?? []));
    if (problems.length) console.error(`# ${this.name} lab clean-up: ${problems.join('; ')}`);
  }
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** A root filesystem from busybox-static: one symlink per applet, /etc/passwd and group. */
export function busyboxRootfs(): string {
  return makeBundle(['sh']).rootfs;
}

/** A tar of ROOTFS, for `docker import` and `podman import`. */
export async function rootfsTar(rootfs: string, out: string): Promise<void> {
  const r = await run('tar', ['--numeric-owner', '-C', rootfs, '-cf', out, '.']);
  if (r.exitCode !== 0) throw new Error(`tar ${rootfs}: ${r.stderr}`);
}

/**
 * An OCI image archive of ROOTFS (one uncompressed layer, amd64, Cmd /bin/sh)
 * named REF, as `ctr images import` and `podman load` read it: oci-layout,
 * index.json (the name in the containerd and OCI ref annotations), blobs.
 */
export async function ociArchive(rootfs: string, ref: string, out: string): Promise<void> {
  const layout = `${out}.d`;
  const blobs = join(layout, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const layerFile = join(layout, 'layer.tar');
  await rootfsTar(rootfs, layerFile);
  const layer = readFileSync(layerFile);
  rmSync(layerFile);
  const put = (b: Buffer) => {
    const digest = sha256(b);
    writeFileSync(join(blobs, digest.slice('sha256:'.length)), b);
    return { digest, size: b.length };
  };
  const layerDesc = put(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'], WorkingDir: '/' },
      rootfs: { type: 'layers', diff_ids: [layerDesc.digest] },
      history: [{ created_by: 'tsrunc test/helpers/lab.ts: busybox-static' }],
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...put(config) },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layerDesc }],
    }),
  );
  const index = {
    schemaVersion: 2,
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        ...put(manifest),
        annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': ref },
      },
    ],
  };
  writeFileSync(join(layout, 'index.json'), JSON.stringify(index));
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const r = await run('tar', ['-C', layout, '-cf', out, 'oci-layout', 'index.json', 'blobs']);
  rmSync(layout, { recursive: true, force: true });
  if (r.exitCode !== 0) throw new Error(`tar ${out}: ${r.stderr}`);
}

/** The hard limit of a resource of this process (/proc/self/limits), for flags that must stay within it. */
export function hardLimit(name: 'Max open files' | 'Max processes'): string {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(name));
  return line?.slice(name.length).trim().split(/\s+/)[1] ?? 'unlimited';
}

export interface Containerd {
  sock: string;
  daemon: Daemon;
  /** ctr --address SOCK ARGS */
  ctr(args: string[], opts?: Options): Promise<Result>;
  /** kills and removes every task and container in NAMESPACE (their shims exit with them) */
  clear(namespace: string): Promise<void>;
}

/** Host paths containerd 1.6 and ctr use whatever the config says (shim sockets in /run/containerd/s, ctr's fifos). */
export const CONTAINERD_HOST_PATHS = ['/run/containerd', '/run/containerd/s', '/run/containerd/fifo', '/run/containerd/runc'];

/** A private containerd: state, root, sockets under the lab, the CRI plugin off. */
export async function startContainerd(lab: Lab): Promise<Containerd> {
  const dir = lab.path('containerd');
  for (const d of ['root', 'state', 'opt']) mkdirSync(join(dir, d), { recursive: true });
  const sock = join(dir, 'containerd.sock');
  writeFileSync(
    join(dir, 'config.toml'),
    [
      'version = 2',
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${sock}"`,
      '[ttrpc]',
      `  address = "${sock}.ttrpc"`,
      '[debug]',
      `  address = "${dir}/debug.sock"`,
      '  level = "info"',
      '[metrics]',
      '  address = ""',
      '[plugins]',
      '  [plugins."io.containerd.internal.v1.opt"]',
      `    path = "${dir}/opt"`,
      '',
    ].join('\n'),
  );
  const ctr = (args: string[], opts: Options = {}) => run('ctr', ['--address', sock, ...args], opts);
  const daemon = await lab.daemon('containerd', 'containerd', ['--config', join(dir, 'config.toml')], async () => (await ctr(['version'], { timeout: 5000 })).exitCode === 0);
  return {
    sock,
    daemon,
    ctr,
    async clear(ns: string) {
      const ls = async (what: string) => (await ctr(['-n', ns, what, 'ls', '-q'])).stdout.split('\n').filter(Boolean);
      for (const id of await ls('tasks')) await ctr(['-n', ns, 'tasks', 'kill', '-s', 'SIGKILL', id]);
      for (const id of await ls('tasks')) await ctr(['-n', ns, 'tasks', 'rm', '-f', id]);
      for (const id of await ls('containers')) await ctr(['-n', ns, 'containers', 'rm', id]);
    },
  };
}
