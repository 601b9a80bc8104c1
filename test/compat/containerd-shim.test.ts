// containerd 1.6's own shim (containerd-shim-runc-v2) with tsrunc as its
// runc: a private containerd under a temp dir, `ctr run --runc-binary`, and
// every runtime call the shim makes (create with --log FILE --log-format
// json, start, exec --process --detach, ps --format json, pause, resume,
// kill, delete, delete --force, --console-socket for -t) checked by its
// effect and by the exact command line.
import t from 'tap';
import { busybox } from '../helpers/bundle.js';
import { TSRUNC } from '../helpers/cli.js';
import { busyboxRootfs, CgroupWatch, CONTAINERD_HOST_PATHS, HostPaths, Lab, missing, ociArchive, run, runOnTty, said, startContainerd, type Containerd } from '../helpers/lab.js';

const NS = 'tsrunc-compat';
const IMAGE = 'docker.io/library/tsrunc-busybox:latest';
const skip =
  missing({ containerd: 'containerd', ctr: 'containerd', 'containerd-shim-runc-v2': 'containerd', script: 'bsdutils', tar: 'tar' }) ||
  (busybox() ? false : 'busybox-static is not installed (apt-get install busybox-static)');

t.test('containerd 1.6 shim with tsrunc as its runc', { skip }, async (t) => {
  const lab = new Lab('containerd');
  const host = new HostPaths(CONTAINERD_HOST_PATHS);
  const cgroups = new CgroupWatch(NS);
  let cd: Containerd | undefined;
  t.teardown(async () => {
    if (cd && !cd.daemon.exited()) await cd.clear(NS);
    await lab.cleanup({ host, cgroups });
  });

  cd = await startContainerd(lab);
  const { ctr } = cd;
  const rt = lab.runtimeWrapper();
  const runcRoot = lab.path('runc-root');
  await ociArchive(busyboxRootfs(), IMAGE, lab.path('image.tar'));
  const imp = await ctr(['-n', NS, 'images', 'import', lab.path('image.tar')]);
  t.equal(imp.exitCode, 0, said(imp, 'image imported'));
  const ctrRun = (runtime: string, ...args: string[]) => ['-n', NS, 'run', '--runc-binary', runtime, '--runc-root', runcRoot, ...args];
  const tasks = async () => {
    const out = (await ctr(['-n', NS, 'tasks', 'ls'])).stdout.split('\n').slice(1).filter(Boolean);
    return new Map(out.map((l) => l.trim().split(/\s+/)).map(([id, pid, status]) => [id!, { pid: Number(pid), status: status! }]));
  };
  const calls = (id: string) => lab.calls().filter((l) => l.endsWith(` ${id}`) || l.includes(` ${id} `));

  t.test('run --rm: the output and the exit code (dist/tsrunc.cjs itself as the runc binary)', async (t) => {
    const r = await ctr(ctrRun(TSRUNC, '--rm', IMAGE, 'c1', 'echo', 'hi'));
    t.equal(r.exitCode, 0, said(r, 'run --rm'));
    t.equal(r.stdout, 'hi');
    const e = await ctr(ctrRun(rt, '--rm', IMAGE, 'c1b', 'sh', '-c', 'echo out; echo err >&2; exit 3'));
    t.equal(e.exitCode, 3, 'the exit status comes through');
    t.equal(e.stdout, 'out');
    t.equal(e.stderr, 'err');
    const c = calls('c1b');
    t.match(c[0], /^--root \S+ --log \S+\/c1b\/log\.json --log-format json create --bundle \S+\/c1b --pid-file \S+\/c1b\/init\.pid c1b$/, 'create as the shim calls it');
    t.match(c[1], /--log-format json start c1b$/);
    t.ok(c.some((l) => / delete c1b$/.test(l)), 'delete');
  });

  t.test('run -d, exec, ps, pause, resume, kill, tasks rm', async (t) => {
    const r = await ctr(ctrRun(rt, '-d', IMAGE, 'c2', 'sleep', '1000'));
    t.equal(r.exitCode, 0, said(r, 'run -d'));
    const task = (await tasks()).get('c2');
    t.equal(task?.status, 'RUNNING');
    const pid = task!.pid;

    // The sleep: containerd 1.6 can drop the output of a process that exits right after printing (ctr cancels
    // its copy when the exit arrives; with runc too, e.g. concourse/concourse#6775); one CI run in seven lost it.
    const ex = await ctr(['-n', NS, 'tasks', 'exec', '--exec-id', 'e1', 'c2', 'sh', '-c', 'echo from-exec; sleep 0.3; exit 4']);
    t.equal(ex.exitCode, 4, `exec's exit status ${ex.stderr}`);
    t.equal(ex.stdout, 'from-exec');
    const tty = await runOnTty('ctr', ['--address', cd!.sock, '-n', NS, 'tasks', 'exec', '-t', '--exec-id', 'e2', 'c2', 'sh', '-c', 'tty; exit 6']);
    t.equal(tty.exitCode, 6, 'exec -t: exit status');
    t.match(tty.stdout, /\/dev\/pts\/\d+/, 'exec -t: on a terminal');

    const ps = await ctr(['-n', NS, 'tasks', 'ps', 'c2']);
    t.equal(ps.exitCode, 0, said(ps, 'tasks ps'));
    t.match(ps.stdout, new RegExp(`^${pid}\\s`, 'm'), 'tasks ps lists the init');

    t.equal((await ctr(['-n', NS, 'tasks', 'pause', 'c2'])).exitCode, 0);
    t.equal((await tasks()).get('c2')?.status, 'PAUSED');
    const st = await run(process.execPath, [TSRUNC, '--root', `${runcRoot}/${NS}`, 'state', 'c2']);
    t.equal((JSON.parse(st.stdout) as { status: string }).status, 'paused', "tsrunc's own state agrees");
    t.equal((await ctr(['-n', NS, 'tasks', 'resume', 'c2'])).exitCode, 0);
    t.equal((await tasks()).get('c2')?.status, 'RUNNING');

    t.equal((await ctr(['-n', NS, 'tasks', 'kill', '-s', 'SIGKILL', 'c2'])).exitCode, 0);
    let status: string | undefined;
    for (let i = 0; i < 50 && (status = (await tasks()).get('c2')?.status) !== 'STOPPED'; i++) await new Promise((r) => setTimeout(r, 100));
    t.equal(status, 'STOPPED', 'killed');
    t.equal((await ctr(['-n', NS, 'tasks', 'rm', 'c2'])).exitCode, 0);
    t.equal((await ctr(['-n', NS, 'containers', 'rm', 'c2'])).exitCode, 0);

    const c = calls('c2');
    for (const re of [
      / exec --process \S+ --detach --pid-file \S+\/e1\.pid c2$/,
      / exec --process \S+ --console-socket \S+ --detach --pid-file \S+\/e2\.pid c2$/,
      / ps --format json c2$/,
      / pause c2$/,
      / resume c2$/,
      / kill c2 9$/,
      / delete c2$/,
    ]) {
      t.ok(c.some((l) => re.test(l)), `the shim called ${re.source}`);
    }
  });

  t.test('tasks rm -f of a running task: delete --force', async (t) => {
    t.equal((await ctr(ctrRun(rt, '-d', IMAGE, 'c3', 'sleep', '1000'))).exitCode, 0);
    const r = await ctr(['-n', NS, 'tasks', 'rm', '-f', 'c3']);
    t.equal(r.exitCode, 0, said(r, 'tasks rm -f'));
    t.notOk((await tasks()).has('c3'), 'the task is gone');
    t.ok(calls('c3').some((l) => / delete --force c3$/.test(l)), 'delete --force');
    t.equal((await ctr(['-n', NS, 'containers', 'rm', 'c3'])).exitCode, 0);
  });

  t.test('run -t: a terminal through --console-socket', async (t) => {
    const r = await runOnTty('ctr', ['--address', cd!.sock, ...ctrRun(rt, '-t', '--rm', IMAGE, 'c4', 'sh', '-c', 'tty; exit 5')]);
    t.equal(r.exitCode, 5, r.stderr);
    t.match(r.stdout, /\/dev\/pts\/\d+/);
    t.match(calls('c4')[0], / create --bundle \S+ --pid-file \S+ --console-socket \S+ c4$/);
  });

  t.test('a create that fails: the shim reports the error tsrunc logged as JSON', async (t) => {
    const r = await ctr(ctrRun(rt, '--rm', IMAGE, 'c5', '/nonexistent'));
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /OCI runtime create failed: create c5: op \d+ look up \/nonexistent: ENOENT \(no such file or directory\): unknown/);
    t.notOk((await tasks()).has('c5'));
    t.equal((await ctr(['-n', NS, 'containers', 'ls', '-q'])).stdout, '', 'no container left');
  });

  t.test('nothing left behind: no container in tsrunc, no cgroup', async (t) => {
    const list = await run(process.execPath, [TSRUNC, '--root', `${runcRoot}/${NS}`, 'list', '-q']);
    t.equal(list.stdout, '');
    t.same(cgroups.added(), [], `no /${NS} cgroup in any hierarchy`);
  });
});
