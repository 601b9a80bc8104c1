// dockerd 20.10 for the compat tests, on whichever containerd API socket the
// test brings (containerd 1.6 or tsrund): data-root, exec-root, pid file and
// API socket under the lab, the host flags this VM needs (no iptables, no
// bridge: containers run with `--network none`), and the checks every
// dockerd stack must pass on a running container.
import type { Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { run, runOnTty, said, which, type Daemon, type Lab, type Result } from './lab.js';

/** The client that comes with dockerd 20.10 (a newer one elsewhere on PATH talks to it too). */
export const DOCKER = which('/usr/bin/docker', 'docker')!;

/** What dockerd makes on the host whatever its flags. */
export const DOCKERD_HOST_PATHS = ['/etc/docker', '/etc/docker/key.json', '/run/docker', '/run/docker/plugins'];

export interface Dockerd {
  sock: string;
  daemon: Daemon;
  /** docker -H unix://SOCK ARGS */
  docker(args: string[]): Promise<Result>;
  /** the same on a terminal (script(1)), for -t */
  dockerOnTty(args: string[]): Promise<Result>;
}

export async function startDockerd(lab: Lab, containerdSock: string, extra: string[] = []): Promise<Dockerd> {
  const sock = lab.path('docker.sock');
  const docker = (args: string[]) => run(DOCKER, ['-H', `unix://${sock}`, ...args]);
  writeFileSync(lab.path('daemon.json'), '{}'); // not /etc/docker/daemon.json
  const daemon = await lab.daemon('dockerd', 'dockerd', [
    '--config-file', lab.path('daemon.json'), '--data-root', lab.path('data'), '--exec-root', lab.path('exec'),
    '--pidfile', lab.path('dockerd.pid'), '-H', `unix://${sock}`, '--containerd', containerdSock,
    '--iptables=false', '--ip6tables=false', '--ip-forward=false', '--ip-masq=false', '--bridge=none', '--userland-proxy=false',
    '--storage-driver', 'overlay2', '--log-level', 'warn', ...extra,
  ], async () => (await docker(['version'])).exitCode === 0, 60_000);
  return { sock, daemon, docker, dockerOnTty: (args) => runOnTty(DOCKER, ['-H', `unix://${sock}`, ...args]) };
}

/** exec (output, exit status), exec -t (a terminal, exit status) and top (the init by its host pid) on NAME, which runs `sleep 1000`. */
export async function checkExecAndTop(t: Test, d: Dockerd, name: string, pid: number): Promise<void> {
  const ex = await d.docker(['exec', name, 'sh', '-c', 'echo from-exec; exit 4']);
  t.equal(ex.exitCode, 4, said(ex, 'exec: exit status'));
  t.equal(ex.stdout, 'from-exec');
  const tty = await d.dockerOnTty(['exec', '-t', name, 'sh', '-c', 'tty; exit 6']);
  t.equal(tty.exitCode, 6, 'exec -t: exit status');
  t.match(tty.stdout, /\/dev\/pts\/\d+/, 'exec -t: on a terminal');
  const top = await d.docker(['top', name]);
  t.equal(top.exitCode, 0, said(top, 'top'));
  t.match(top.stdout, new RegExp(`^root\\s+${pid}\\s.*sleep 1000$`, 'm'), 'top lists the init by its host pid');
}

/** `docker run` with a test's own flags (runtime, network) before args. */
export type DockerRun = (...args: string[]) => string[];

/**
 * A container over its 32 MiB limit: docker reports the OOM kill (137,
 * OOMKilled). delay: seconds the hog waits first (containerd's shim watches
 * the OOM counter only after `start` returns).
 */
export async function checkOomKill(t: Test, d: Dockerd, dockerRun: DockerRun, image: string, name: string, delay = 0): Promise<void> {
  const hog = `${delay ? `sleep ${delay}; ` : ''}x=a; while true; do x="$x$x"; done`;
  const r = await d.docker(dockerRun('-d', '--name', name, '-m', '32m', '--memory-swap', '32m', image, 'sh', '-c', hog));
  t.equal(r.exitCode, 0, said(r, 'run -d -m 32m'));
  t.equal((await d.docker(['wait', name])).stdout, '137');
  t.equal((await d.docker(['inspect', '-f', '{{.State.OOMKilled}}', name])).stdout, 'true');
  t.equal((await d.docker(['rm', name])).exitCode, 0);
}

/** `docker run -t`: the process has a terminal, its exit status comes back. */
export async function checkTty(t: Test, d: Dockerd, dockerRun: DockerRun, image: string): Promise<void> {
  const r = await d.dockerOnTty(dockerRun('--rm', '-t', image, 'sh', '-c', 'tty; exit 5'));
  t.equal(r.exitCode, 5, r.stderr);
  t.match(r.stdout, /\/dev\/pts\/\d+/);
}
