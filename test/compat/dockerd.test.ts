// dockerd 20.10 with `--add-runtime tsrunc=PATH` on a private containerd:
// `docker run --runtime tsrunc --network none`, exec, top, pause/unpause,
// logs, stop, rm, -t, and the exit codes docker derives from the runtime's
// errors. Everything lives under a temp dir (data-root, exec-root, sockets);
// the host flags are the ones this VM needs (no iptables, no bridge).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { busybox } from '../helpers/bundle.js';
import {
  busyboxRootfs,
  CgroupWatch,
  CONTAINERD_HOST_PATHS,
  HostPaths,
  Lab,
  missing,
  said,
  rootfsTar,
  startContainerd,
  type Containerd,
} from '../helpers/lab.js';
import { checkExecAndTop, checkOomKill, checkTty, DOCKERD_HOST_PATHS, startDockerd, type Dockerd } from '../helpers/docker.js';
import { readMountInfo } from '../../src/linux/mountinfo.js';
import { cgroupLayout } from '../../src/runtime/cgroups/mode.js';
import { v1Hierarchies } from '../../src/runtime/cgroups/v1.js';

const IMAGE = 'tsrunc-busybox:latest';
const skip =
  missing({ dockerd: 'docker.io', docker: 'docker.io', containerd: 'containerd', ctr: 'containerd', 'containerd-shim-runc-v2': 'containerd', script: 'bsdutils', tar: 'tar' }) ||
  (busybox() ? false : 'busybox-static is not installed (apt-get install busybox-static)');
const mounts = readMountInfo();
const hybridPids = cgroupLayout(mounts).mode === 'hybrid' && v1Hierarchies(mounts).some((h) => h.controllers.includes('pids'));

t.test('dockerd 20.10 with tsrunc as an added runtime', { skip }, async (t) => {
  const lab = new Lab('docker');
  const host = new HostPaths([...CONTAINERD_HOST_PATHS, ...DOCKERD_HOST_PATHS]);
  const cgroups = new CgroupWatch('docker');
  let cd: Containerd | undefined;
  let d: Dockerd | undefined;
  t.teardown(async () => {
    const ids = d ? (await d.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean) : [];
    if (ids.length) await d!.docker(['rm', '-f', ...ids]);
    if (cd && !cd.daemon.exited()) await cd.clear('moby');
    await lab.cleanup({ host, cgroups });
  });

  cd = await startContainerd(lab);
  const rt = lab.runtimeWrapper();
  d = await startDockerd(lab, cd.sock, ['--add-runtime', `tsrunc=${rt}`]);
  const { docker } = d;
  await rootfsTar(busyboxRootfs(), lab.path('rootfs.tar'));
  const imp = await docker(['import', lab.path('rootfs.tar'), IMAGE]);
  t.equal(imp.exitCode, 0, said(imp, 'image imported'));
  const dockerRun = (...args: string[]) => ['run', '--runtime', 'tsrunc', '--network', 'none', ...args];
  const inspect = async (name: string, fmt: string) => (await docker(['inspect', '-f', fmt, name])).stdout;
  const callsFor = (id: string) => lab.calls().filter((l) => l.includes(` ${id}`));

  t.test('run --rm: output and exit codes', async (t) => {
    const r = await docker(dockerRun('--rm', IMAGE, 'echo', 'hi'));
    t.equal(r.exitCode, 0, said(r, 'run --rm'));
    t.equal(r.stdout, 'hi');
    const e = await docker(dockerRun('--rm', IMAGE, 'sh', '-c', 'echo err >&2; exit 3'));
    t.equal(e.exitCode, 3);
    t.equal(e.stderr, 'err');
    const create = lab.calls().find((l) => / create --bundle /.test(l));
    t.match(create, /^--root \S+ --log \S+\/log\.json --log-format json create --bundle \S+ --pid-file \S+\/init\.pid [0-9a-f]{64}$/, 'through the shim, as with runc');
  });

  t.test('run -d, exec, top, pause, unpause, logs, stop, rm', async (t) => {
    const r = await docker(dockerRun('-d', '--name', 'd1', IMAGE, 'sh', '-c', 'echo started; exec sleep 1000'));
    t.equal(r.exitCode, 0, said(r, 'run -d'));
    const id = r.stdout.trim();
    const pid = Number(await inspect('d1', '{{.State.Pid}}'));
    t.ok(pid > 0, 'running');

    await checkExecAndTop(t, d!, 'd1', pid);

    const stats = await docker(['stats', '--no-stream', '--format', '{{.PIDs}}', 'd1']);
    t.equal(stats.stdout, '1', 'stats: the shim reads the cgroups tsrunc put the container in');
    const up = await docker(['update', '--memory', '64m', '--memory-swap', '128m', '--pids-limit', '50', 'd1']);
    t.equal(up.exitCode, 0, said(up, 'update: runc update --resources - on stdin'));
    if (hybridPids) t.equal(readFileSync(`/sys/fs/cgroup/pids/docker/${id}/pids.max`, 'utf8').trim(), '50', 'the new pids limit, in the v1 hierarchy on this hybrid host');

    t.equal((await docker(['pause', 'd1'])).exitCode, 0);
    t.equal(await inspect('d1', '{{.State.Status}}'), 'paused');
    t.equal((await docker(['unpause', 'd1'])).exitCode, 0);
    t.equal(await inspect('d1', '{{.State.Status}}'), 'running');

    const logs = await docker(['logs', 'd1']);
    t.equal(logs.stdout, 'started');

    const stop = await docker(['stop', '-t', '1', 'd1']);
    t.equal(stop.exitCode, 0, said(stop, 'stop'));
    t.equal(await inspect('d1', '{{.State.Status}}'), 'exited');
    t.equal(await inspect('d1', '{{.State.ExitCode}}'), '137', 'sleep ignores SIGTERM as pid 1: killed after the timeout');
    t.equal((await docker(['rm', 'd1'])).exitCode, 0);

    const c = callsFor(id);
    for (const re of [/ update --resources - [0-9a-f]+$/, / start [0-9a-f]+$/, / exec --process \S+ --detach --pid-file \S+ [0-9a-f]+$/, / exec --process \S+ --console-socket \S+ --detach --pid-file \S+/, / ps --format json /, / pause /, / resume /, / kill [0-9a-f]+ 15$/, / kill [0-9a-f]+ 9$/, / delete [0-9a-f]+$/]) {
      t.ok(c.some((l) => re.test(l)), `docker's shim called ${re.source}`);
    }
  });

  t.test('a memory limit: the OOM kill is reported (OOMKilled, 137)', async (t) => {
    // a hog killed before containerd's shim watches (after `start`) goes unseen, as with runc
    await checkOomKill(t, d!, dockerRun, IMAGE, 'd2', 1);
  });

  t.test('run -t: a terminal', async (t) => {
    await checkTty(t, d!, dockerRun, IMAGE);
  });

  t.test('a command that does not exist: 127, and the runtime\'s error', async (t) => {
    const r = await docker(dockerRun('--rm', IMAGE, '/nonexistent'));
    t.equal(r.exitCode, 127, 'docker reads "no such file or directory" in the error as 127');
    t.match(r.stderr, /OCI runtime create failed: create [0-9a-f]{64}: op \d+ look up \/nonexistent: ENOENT \(no such file or directory\)/);
  });

  t.test('nothing left behind', async (t) => {
    t.equal((await docker(['ps', '-aq'])).stdout, '', 'no container');
    t.same(cgroups.added(), [], 'no /docker cgroup in any hierarchy');
  });
});
