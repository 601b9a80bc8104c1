// dockerd 20.10 with tsrund as its containerd (`dockerd --containerd
// TSRUND_SOCK`): docker run/exec/top/pause/stop/logs/rm on an imported
// busybox image, push and pull through a registry on loopback (dockerd keeps
// manifests in tsrund's content store under leases), the acceptance test
// `docker run 127.0.0.1:PORT/library/hello-world`, both runtimes dockerd
// knows (io.containerd.runc.v2 and the deprecated io.containerd.runtime.v1.linux,
// with their options), and a tsrund restart under a running container.
// dockerd learns exits only from /tasks/exit events, so every exit code here
// went through tsrund's event stream.
import t from 'tap';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { busybox } from '../helpers/bundle.js';
import { startTsrund, TSRCTL, type RunningDaemon } from '../helpers/daemon.js';
import { startRegistry, type Registry } from '../helpers/registry.js';
import { checkExecAndTop, checkOomKill, checkTty, DOCKER, DOCKERD_HOST_PATHS, startDockerd, type Dockerd } from '../helpers/docker.js';
import { busyboxRootfs, cgroupDirsNamed, CgroupWatch, HostPaths, Lab, missing, rootfsTar, run, said } from '../helpers/lab.js';

const IMAGE = 'tsrunc-busybox:latest';
const GREETING = 'Hello from Docker!';
const skip =
  missing({ dockerd: 'docker.io', docker: 'docker.io', 'docker-registry': 'docker-registry', script: 'bsdutils', tar: 'tar' }) ||
  (busybox() ? false : 'busybox-static is not installed (apt-get install busybox-static)');

t.test('dockerd 20.10 with tsrund as its containerd', { skip }, async (t) => {
  const lab = new Lab('docker-tsrund');
  const host = new HostPaths(DOCKERD_HOST_PATHS);
  // Its own parent cgroup: dockerd.test.ts may run at the same time under /docker.
  const CGROUP_PARENT = 'tsrund-docker';
  const cgroups = new CgroupWatch(CGROUP_PARENT);
  const tsrundDir = lab.path('tsrund');
  mkdirSync(tsrundDir);
  let tsrund: RunningDaemon | undefined = await startTsrund({ dir: tsrundDir });
  const tsrctl = (args: string[]) => run(process.execPath, [TSRCTL, '--address', tsrund!.address, '-n', 'moby', ...args]);
  let d: Dockerd | undefined;
  let registry: Registry | undefined;
  t.teardown(async () => {
    if (d && !d.daemon.exited()) {
      const ids = (await d.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
      if (ids.length) await d.docker(['rm', '-f', ...ids]);
      await d.daemon.stop(); // before tsrund, which it would wait for
    }
    await tsrund?.stop();
    await registry?.stop();
    await lab.cleanup({ host, cgroups });
  });

  d = await startDockerd(lab, tsrund.address, ['--add-runtime', `tsrunc=${lab.runtimeWrapper()}`, '--cgroup-parent', `/${CGROUP_PARENT}`]);
  const { docker } = d;
  await rootfsTar(busyboxRootfs(), lab.path('rootfs.tar'));
  const imp = await docker(['import', lab.path('rootfs.tar'), IMAGE]);
  t.equal(imp.exitCode, 0, said(imp, 'image imported'));
  const inspect = async (name: string, fmt: string) => (await docker(['inspect', '-f', fmt, name])).stdout;
  const dockerRun = (...args: string[]) => ['run', '--network', 'none', ...args];

  t.test('docker version names tsrund as the containerd', async (t) => {
    const v = await docker(['version', '--format', '{{range .Server.Components}}{{.Name}}={{.Version}} {{end}}']);
    t.match(v.stdout, /containerd=\d+\.\d+\.\d+/, 'Version.Version answered');
  });

  t.test('run --rm: output and exit codes', async (t) => {
    const r = await docker(dockerRun('--rm', IMAGE, 'echo', 'hi'));
    t.equal(r.exitCode, 0, said(r, 'run --rm'));
    t.equal(r.stdout, 'hi');
    const e = await docker(dockerRun('--rm', IMAGE, 'sh', '-c', 'echo err >&2; exit 3'));
    t.equal(e.exitCode, 3, 'the exit status from /tasks/exit');
    t.equal(e.stderr, 'err');
    t.equal((await tsrctl(['containers', 'ls', '-q'])).stdout, '', 'the container record went with --rm');
  });

  t.test('run -d, exec, top, pause, unpause, logs, stop, rm', async (t) => {
    const r = await docker(dockerRun('-d', '--name', 'd1', IMAGE, 'sh', '-c', 'echo started; exec sleep 1000'));
    t.equal(r.exitCode, 0, said(r, 'run -d'));
    const id = r.stdout.trim();
    const pid = Number(await inspect('d1', '{{.State.Pid}}'));
    t.ok(pid > 0, 'running');
    const task = await tsrctl(['tasks', 'ls']);
    t.match(task.stdout, new RegExp(`^${id}\\s+${pid}\\s+RUNNING$`, 'm'), 'the task is tsrund\'s, with the pid docker shows');

    await checkExecAndTop(t, d!, 'd1', pid);
    const up = await docker(['update', '--memory', '64m', '--memory-swap', '128m', '--pids-limit', '50', 'd1']);
    t.equal(up.exitCode, 0, said(up, 'update: Tasks.Update'));
    const pidsMax = [`/sys/fs/cgroup/${CGROUP_PARENT}/${id}`, ...cgroupDirsNamed(`${CGROUP_PARENT}/${id}`)].map((d) => join(d, 'pids.max')).filter((f) => existsSync(f));
    t.ok(pidsMax.length > 0, 'the container has a pids.max');
    for (const f of pidsMax) t.equal(readFileSync(f, 'utf8').trim(), '50', `the new limit in ${f}`);
    const stats = await docker(['stats', '--no-stream', '--format', '{{.PIDs}} {{.MemUsage}}', 'd1']);
    t.match(stats.stdout, /^1 [1-9][\d.]*[KM]iB \/ 64MiB$/, 'stats (Tasks.Metrics): pids, memory used and the new limit, wherever the host keeps them (v1 hierarchies on hybrid hosts)');

    t.equal((await docker(['pause', 'd1'])).exitCode, 0);
    t.equal(await inspect('d1', '{{.State.Status}}'), 'paused');
    t.match((await tsrctl(['tasks', 'ls'])).stdout, new RegExp(`^${id}\\s+${pid}\\s+PAUSED$`, 'm'));
    t.equal((await docker(['unpause', 'd1'])).exitCode, 0);
    t.equal(await inspect('d1', '{{.State.Status}}'), 'running');

    t.equal((await docker(['logs', 'd1'])).stdout, 'started');
    const stop = await docker(['stop', '-t', '1', 'd1']);
    t.equal(stop.exitCode, 0, said(stop, 'stop'));
    t.equal(await inspect('d1', '{{.State.Status}}'), 'exited');
    t.equal(await inspect('d1', '{{.State.ExitCode}}'), '137', 'sleep ignores SIGTERM as pid 1: killed after the timeout');
    t.equal((await docker(['rm', 'd1'])).exitCode, 0);
    t.notMatch((await tsrctl(['tasks', 'ls'])).stdout, id, 'no task left');
  });

  t.test('a memory limit: the OOM kill is reported (/tasks/oom before /tasks/exit: OOMKilled, 137)', async (t) => {
    await checkOomKill(t, d!, dockerRun, IMAGE, 'oom');
  });

  t.test('run -t: a terminal', async (t) => {
    await checkTty(t, d!, dockerRun, IMAGE);
  });

  t.test('a command that does not exist: 127, and tsrund\'s error', async (t) => {
    const r = await docker(dockerRun('--rm', IMAGE, '/nonexistent'));
    t.equal(r.exitCode, 127, 'docker reads "no such file or directory" in the error as 127');
    t.match(r.stderr, /look up \/nonexistent: ENOENT \(no such file or directory\)/);
    t.equal((await docker(['ps', '-aq'])).stdout, '', 'no container kept');
  });

  t.test('runtimes: io.containerd.runc.v2 with a binary name, io.containerd.runtime.v1.linux', async (t) => {
    // tsrund runs every task through its own launcher: the binary named in the runtime options is not called.
    const r = await docker(dockerRun('--rm', '--runtime', 'tsrunc', IMAGE, 'sh', '-c', 'exit 8'));
    t.equal(r.exitCode, 8, said(r, 'run --runtime tsrunc (Options.binary_name = the wrapper)'));
    t.same(lab.calls(), [], 'the runtime binary dockerd named was not run');
    const v1 = await docker(dockerRun('-d', '--name', 'v1', '--runtime', 'io.containerd.runtime.v1.linux', IMAGE, 'sleep', '1000'));
    t.equal(v1.exitCode, 0, said(v1, 'run --runtime io.containerd.runtime.v1.linux (RuncOptions, CreateOptions)'));
    const info = JSON.parse((await tsrctl(['containers', 'info', v1.stdout.trim()])).stdout || '{}') as { Runtime?: { Name?: string } };
    t.equal(info.Runtime?.Name, 'io.containerd.runtime.v1.linux', 'the runtime dockerd named, kept in the record');
    t.equal((await docker(['exec', 'v1', 'echo', 'v1-exec'])).stdout, 'v1-exec');
    t.equal((await docker(['rm', '-f', 'v1'])).exitCode, 0);
  });

  t.test('a tsrund restart: the container survives, an exit while it was down reaches docker', async (t) => {
    const r = await docker(dockerRun('-d', '--name', 'r1', IMAGE, 'sh', '-c', 'trap "exit 9" TERM; while true; do sleep 0.1; done'));
    t.equal(r.exitCode, 0, said(r, 'run -d'));
    const q = await docker(dockerRun('-d', '--name', 'r2', IMAGE, 'sh', '-c', 'sleep 2; exit 3'));
    t.equal(q.exitCode, 0, said(q, 'run -d'));
    t.equal(await tsrund!.stop(), 0, 'tsrund stopped cleanly');
    tsrund = undefined;
    await new Promise((r) => setTimeout(r, 3000)); // r2 exits meanwhile
    tsrund = await startTsrund({ dir: tsrundDir });
    const w = await run(DOCKER, ['-H', `unix://${d!.sock}`, 'wait', 'r2'], { timeout: 30_000 });
    t.equal(w.stdout, '3', 'docker wait: the exit that happened while tsrund was down');
    const ex = await docker(['exec', 'r1', 'echo', 'alive']);
    t.equal(ex.stdout, 'alive', said(ex, 'exec into the container that outlived tsrund'));
    const stop = await docker(['stop', '-t', '5', 'r1']);
    t.equal(stop.exitCode, 0, said(stop, 'stop'));
    t.equal(await inspect('r1', '{{.State.ExitCode}}'), '9', 'its SIGTERM trap ran');
    t.equal((await docker(['rm', 'r1', 'r2'])).exitCode, 0);
  });

  t.test('push, pull and `docker run 127.0.0.1:PORT/library/hello-world`', async (t) => {
    registry = await startRegistry();
    const ref = `${registry.host}/library/hello-world`;
    // Its own layer (not the one of IMAGE): the pull below has something to download.
    const rootfs = lab.path('hello-rootfs');
    mkdirSync(join(rootfs, 'bin'), { recursive: true });
    await run('cp', [busybox()!, join(rootfs, 'bin', 'echo')]);
    await rootfsTar(rootfs, lab.path('hello.tar'));
    const hi = await docker(['import', '-c', `CMD ["/bin/echo","${GREETING}"]`, lab.path('hello.tar'), `${ref}:latest`]);
    t.equal(hi.exitCode, 0, said(hi, 'hello-world imported'));
    const push = await docker(['push', `${ref}:latest`]);
    t.equal(push.exitCode, 0, said(push, 'docker push (127.0.0.1 is an insecure registry by default)'));
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
    t.ok(digest, 'the manifest digest');
    t.equal((await docker(['rmi', `${ref}:latest`])).exitCode, 0, 'removed, layer too');

    // tsrctl export's archive (OCI layout + docker's manifest.json) as dockerd 20.10's `docker load` takes it
    const ctl = (args: string[]) => run(process.execPath, [TSRCTL, '--address', tsrund!.address, '-n', 'export', ...args]);
    const got = await ctl(['pull', '-q', `${ref}:latest`]);
    t.equal(got.exitCode, 0, said(got, 'tsrctl pull'));
    const exported = await ctl(['export', `${ref}:latest`, lab.path('exported.tar')]);
    t.equal(exported.exitCode, 0, said(exported, 'tsrctl export'));
    const load = await docker(['load', '-i', lab.path('exported.tar')]);
    t.equal(load.exitCode, 0, said(load, 'docker load of the export'));
    t.match(load.stdout, `Loaded image: ${ref}:latest`);
    const loaded = await docker(dockerRun('--rm', `${ref}:latest`));
    t.equal(loaded.stdout, GREETING, said(loaded, 'the loaded image runs'));
    t.equal((await docker(['rmi', `${ref}:latest`])).exitCode, 0, 'the loaded image removed');
    t.equal((await ctl(['images', 'rm', `${ref}:latest`])).exitCode, 0, "tsrctl's copy removed");

    const pull = await docker(['pull', ref]);
    t.equal(pull.exitCode, 0, said(pull, 'docker pull'));
    t.match(pull.stdout, /Pull complete/, 'the layer was downloaded');
    t.match(pull.stdout, `Digest: ${digest}`);
    const blobs = await run('ctr', ['--address', tsrund!.address, '-n', 'moby', 'content', 'ls', '-q'], {});
    if (blobs.exitCode === 0) t.match(blobs.stdout, digest!, 'dockerd stored the manifest in tsrund (Content.Write under a lease)');
    const leases = await run('ctr', ['--address', tsrund!.address, '-n', 'moby', 'leases', 'ls', '-q'], {});
    if (leases.exitCode === 0) t.match(leases.stdout, /^moby-image-sha256:[0-9a-f]{64}$/m, 'the image\'s lease holds it');

    const acc = await docker(['run', '--name', 'hello', ref]);
    t.equal(acc.exitCode, 0, said(acc, `docker run ${ref}`));
    t.equal(acc.stdout, GREETING, 'the greeting');
    t.equal((await docker(['rm', 'hello'])).exitCode, 0);
    t.equal((await docker(['rmi', ref])).exitCode, 0);
    if (leases.exitCode === 0) {
      const after = await run('ctr', ['--address', tsrund!.address, '-n', 'moby', 'leases', 'ls', '-q'], {});
      t.notMatch(after.stdout, /moby-image-/, 'rmi deleted the lease');
    }
  });

  t.test('nothing left behind', async (t) => {
    t.equal((await docker(['ps', '-aq'])).stdout, '', 'no container');
    t.equal((await tsrctl(['tasks', 'ls', '-q'])).stdout, '', 'no task in tsrund');
    t.equal((await tsrctl(['containers', 'ls', '-q'])).stdout, '', 'no container record in tsrund');
    const taskDirs = join(tsrund!.state, 'tasks', 'moby');
    t.same(existsSync(taskDirs) ? readdirSync(taskDirs) : [], [], 'no task directory');
    t.same(cgroups.added(), [], `no /${CGROUP_PARENT} cgroup in any hierarchy`);
  });
});
