// podman 4.3 (through conmon) with `--runtime tsrunc`: run --rm, -d, exec,
// logs, top, pause/unpause, stop, ps, rm, -t, the exit codes podman derives
// from the runtime's errors, and podman's default pids limit applied (on a
// hybrid host: in the v1 pids hierarchy, as runc does). Storage, run root and
// temp files under a temp dir; the flags are the ones this VM needs
// (cgroupfs manager, events to a file, rlimits within the hard limits).
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { busybox } from '../helpers/bundle.js';
import { TSRUNC } from '../helpers/cli.js';
import { busyboxRootfs, cgroupDirsNamed, CgroupWatch, cleanEnv, hardLimit, HostPaths, Lab, missing, ociArchive, run, runOnTty, said } from '../helpers/lab.js';
import { readMountInfo } from '../../src/linux/mountinfo.js';
import { cgroupLayout } from '../../src/runtime/cgroups/mode.js';
import { v1Hierarchies } from '../../src/runtime/cgroups/v1.js';

const IMAGE = 'docker.io/library/tsrunc-busybox:latest';
const skip =
  missing({ podman: 'podman', conmon: 'conmon', script: 'bsdutils', tar: 'tar' }) || (busybox() ? false : 'busybox-static is not installed (apt-get install busybox-static)');

t.test('podman 4.3 with --runtime tsrunc', { skip }, async (t) => {
  const lab = new Lab('podman');
  // what podman and conmon create outside their --root/--runroot (tsrunc's default root: podman passes no --root)
  const host = new HostPaths(['/run/containers', '/run/containers/networks', '/var/lib/containers', '/var/lib/containers/cache', '/var/lib/containers/cache/blob-info-cache-v1.boltdb', '/run/tsrunc']);
  const cgroups = new CgroupWatch('libpod_parent');
  const env = cleanEnv({ TMPDIR: lab.path('tmp') });
  const rt = lab.runtimeWrapper();
  const base = (runtime: string) => [
    '--root', lab.path('root'), '--runroot', lab.path('runroot'), '--tmpdir', lab.path('tmp'),
    '--storage-driver', 'overlay', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--runtime', runtime,
  ];
  const podman = (args: string[], runtime = rt) => run('podman', [...base(runtime), ...args], { env });
  // podman's default rlimits for root exceed this VM's hard limits: stay within them
  const nofile = hardLimit('Max open files');
  const hardNproc = hardLimit('Max processes');
  const nproc = hardNproc === 'unlimited' || Number(hardNproc) > 32768 ? '32768' : hardNproc;
  const RUN = ['--network', 'none', '--ulimit', `nofile=${nofile}:${nofile}`, '--ulimit', `nproc=${nproc}:${nproc}`];
  t.teardown(async () => {
    await podman(['rm', '-af', '-t', '0']);
    // conmon leaves its own cgroup (libpod_parent/conmon) behind: removed too if this test made it
    await lab.cleanup({ host, cgroups });
  });

  await ociArchive(busyboxRootfs(), IMAGE, lab.path('image.tar'));
  const load = await podman(['load', '-i', lab.path('image.tar')]);
  t.equal(load.exitCode, 0, said(load, 'image loaded'));

  t.test('run --rm: output and exit codes (dist/tsrunc.cjs itself as the runtime)', async (t) => {
    const r = await podman(['run', '--rm', ...RUN, IMAGE, 'echo', 'hi'], TSRUNC);
    t.equal(r.exitCode, 0, said(r, 'run --rm'));
    t.equal(r.stdout, 'hi');
    const e = await podman(['run', '--rm', ...RUN, IMAGE, 'sh', '-c', 'echo err >&2; exit 7']);
    t.equal(e.exitCode, 7);
    t.equal(e.stderr, 'err');
    const i = await run('podman', [...base(rt), 'run', '--rm', '-i', ...RUN, IMAGE, 'cat'], { env, input: 'from stdin\n' });
    t.equal(i.stdout, 'from stdin', '-i: stdin reaches the container');
    const calls = lab.calls();
    t.ok(calls.some((l) => /^create --bundle \S+\/userdata --pid-file \S+\/userdata\/pidfile [0-9a-f]{64}$/.test(l)), "conmon's create");
    t.ok(calls.some((l) => /^start [0-9a-f]{64}$/.test(l)), "podman's start");
    t.ok(calls.some((l) => /^delete --force [0-9a-f]{64}$/.test(l)), "podman's delete --force");
    t.notOk(calls.some((l) => / create /.test(l) && /--log /.test(l)), 'podman reads errors from stderr, not a log file');
  });

  t.test('run -d, ps, exec, logs, top, pause, unpause, stop, rm', async (t) => {
    const r = await podman(['run', '-d', '--name', 'p1', ...RUN, IMAGE, 'sh', '-c', 'echo started; exec sleep 1000']);
    t.equal(r.exitCode, 0, said(r, 'run -d'));
    const id = r.stdout.trim();
    const ps = await podman(['ps', '--format', '{{.Names}} {{.Status}}']);
    t.match(ps.stdout, /^p1 Up /m, 'ps: up');

    const ex = await podman(['exec', 'p1', 'sh', '-c', 'echo from-exec; exit 4']);
    t.equal(ex.exitCode, 4, ex.stderr);
    t.equal(ex.stdout, 'from-exec');
    const tty = await runOnTty('podman', [...base(rt), 'exec', '-t', 'p1', 'sh', '-c', 'tty; exit 6'], { env });
    t.match(tty.stdout, /\/dev\/pts\/\d+/, 'exec -t: on a terminal');
    t.equal(tty.exitCode, 6, 'exec -t: exit status');

    const logs = await podman(['logs', 'p1']);
    t.equal(logs.stdout, 'started');
    const top = await podman(['top', 'p1']);
    t.equal(top.exitCode, 0, said(top, 'top'));
    t.match(top.stdout, /sleep 1000/);

    const layout = cgroupLayout(readMountInfo());
    if (layout.mode === 'hybrid' && v1Hierarchies(readMountInfo()).some((h) => h.controllers.includes('pids'))) {
      const pidsMax = join('/sys/fs/cgroup/pids/libpod_parent', `libpod-${id}`, 'pids.max');
      t.equal(existsSync(pidsMax) && readFileSync(pidsMax, 'utf8').trim(), '2048', "podman's default pids limit, in the v1 pids hierarchy as runc puts it");
    }

    const stats = await podman(['stats', '--no-stream', '--format', '{{.PIDs}}', 'p1']);
    t.equal(stats.stdout, '1', 'stats: podman reads the cgroups tsrunc put the container in');

    t.equal((await podman(['pause', 'p1'])).exitCode, 0);
    t.equal((await podman(['inspect', '-f', '{{.State.Status}}', 'p1'])).stdout, 'paused');
    t.equal((await podman(['unpause', 'p1'])).exitCode, 0);
    t.equal((await podman(['inspect', '-f', '{{.State.Status}}', 'p1'])).stdout, 'running');

    const stop = await podman(['stop', '-t', '1', 'p1']);
    t.equal(stop.exitCode, 0, said(stop, 'stop'));
    t.equal((await podman(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'p1'])).stdout, 'exited 137', 'sleep ignores SIGTERM as pid 1: killed after the timeout');
    t.equal((await podman(['rm', 'p1'])).exitCode, 0);

    const calls = lab.calls().filter((l) => l.includes(id));
    for (const re of [
      /^exec --pid-file \S+ --process \S+ --detach [0-9a-f]{64}$/,
      /^exec --pid-file \S+ --process \S+ --detach --tty --console-socket \S+ [0-9a-f]{64}$/,
      /^pause [0-9a-f]{64}$/,
      /^resume [0-9a-f]{64}$/,
      /^kill [0-9a-f]{64} 15$/,
      /^kill [0-9a-f]{64} 9$/,
    ]) {
      t.ok(calls.some((l) => re.test(l)), `podman/conmon called ${re.source}`);
    }
  });

  t.test('run -t: a terminal through conmon\'s console socket', async (t) => {
    const r = await runOnTty('podman', [...base(rt), 'run', '--rm', '-t', ...RUN, IMAGE, 'sh', '-c', 'tty; exit 5'], { env });
    t.equal(r.exitCode, 5, r.stderr);
    t.match(r.stdout, /\/dev\/pts\/\d+/);
    t.ok(lab.calls().some((l) => /^create --bundle \S+ --pid-file \S+ --console-socket \S+ [0-9a-f]{64}$/.test(l)), 'create --console-socket');
  });

  t.test('a command that does not exist: 127, and the runtime\'s error', async (t) => {
    const r = await podman(['run', '--rm', ...RUN, IMAGE, '/nonexistent']);
    t.equal(r.exitCode, 127, 'podman reads "no such file or directory" in the error as 127');
    t.match(r.stderr, /create [0-9a-f]{64}: op \d+ look up \/nonexistent: ENOENT \(no such file or directory\): OCI runtime attempted to invoke a command that was not found/);
    t.notMatch(r.stderr, /level=error/, 'no error from the clean-up (delete --force of what is gone succeeds)');
  });

  t.test('nothing left behind', async (t) => {
    t.equal((await podman(['ps', '-aq'])).stdout, '', 'no container');
    const left = cgroupDirsNamed('libpod_parent').flatMap((d) => readdirSync(d).filter((n) => n.startsWith('libpod-')));
    t.same(left, [], 'no container cgroup in any hierarchy');
  });
});
