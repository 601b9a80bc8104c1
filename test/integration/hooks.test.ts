// OCI hooks: order, state on stdin, the namespaces each kind runs in, what a
// failure does (fails create/start, or only warns for poststart/poststop),
// timeouts, env.
import t from 'tap';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle, type Bundle } from '../helpers/bundle.js';
import { cli, needsRoot, waitFor } from '../helpers/cli.js';
import { snapshot, leftovers } from '../helpers/leftovers.js';
import type { Hook, Hooks } from '../../src/oci/spec.js';

/** A hook that appends "<name> <net ns> <state on stdin>" to a log file, with the rootfs's busybox sh. */
function recorder(b: Bundle, name: string, log: string, sh = join(b.rootfs, 'bin/sh')): Hook {
  return { path: sh, args: ['sh', '-c', `echo "${name} $(readlink /proc/self/ns/net) $(cat)" >> ${log}`] };
}

function entries(log: string): { name: string; net: string; state: Record<string, unknown> }[] {
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const [name, net, ...rest] = line.split(' ');
      return { name: name!, net: net!, state: JSON.parse(rest.join(' ')) as Record<string, unknown> };
    });
}

t.test('hooks', { skip: needsRoot }, async (t) => {
  const tsrunc = cli();
  const hostNet = readlinkSync('/proc/self/ns/net');

  t.test('every kind, in order, with the state on stdin, in the right namespaces', async (t) => {
    const b = makeBundle(['sh', '-c', 'echo started > /proc/self/fd/1'], (s) => {
      s.annotations = { 'org.example/key': 'value' };
      s.root!.readonly = false;
    });
    const log = join(b.dir, 'hooks.log');
    const hooks: Hooks = {
      prestart: [recorder(b, 'prestart1', log), recorder(b, 'prestart2', log)],
      createRuntime: [recorder(b, 'createRuntime', log)],
      // Before pivot_root, in the container's mount namespace: host paths still resolve.
      createContainer: [recorder(b, 'createContainer', log)],
      // After pivot_root: the path resolves inside the container, the log is in its rootfs.
      startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'echo "startContainer $(readlink /proc/self/ns/net) $(cat)" >> /start.log'] }],
      poststart: [recorder(b, 'poststart1', log), recorder(b, 'poststart2', log)],
      poststop: [recorder(b, 'poststop1', log), recorder(b, 'poststop2', log)],
    };
    b.spec.hooks = hooks;
    b.save();
    t.equal((await tsrunc.detached(['create', '-b', b.dir, 'hk1'])).exitCode, 0);
    const pid: number = JSON.parse((await tsrunc(['state', 'hk1'])).stdout).pid;
    const containerNet = readlinkSync(`/proc/${pid}/ns/net`);
    t.same(entries(log).map((e) => e.name), ['prestart1', 'prestart2', 'createRuntime', 'createContainer'], 'create runs its hooks in order');
    t.equal((await tsrunc(['start', 'hk1'])).exitCode, 0);
    await waitFor(() => existsSync(log) && readFileSync(log, 'utf8').includes('poststart2'));
    t.equal((await tsrunc(['delete', '-f', 'hk1'])).exitCode, 0);

    const all = entries(log);
    t.same(all.map((e) => e.name), ['prestart1', 'prestart2', 'createRuntime', 'createContainer', 'poststart1', 'poststart2', 'poststop1', 'poststop2']);
    for (const e of all) {
      t.equal(e.net, e.name === 'createContainer' ? containerNet : hostNet, `${e.name} runs in the ${e.name === 'createContainer' ? "container's" : "runtime's"} network namespace`);
      t.equal(e.state['id'], 'hk1');
      t.equal(e.state['pid'], pid, `${e.name} gets the init's pid`);
      t.equal(e.state['bundle'], b.dir);
      t.same(e.state['annotations'], { 'org.example/key': 'value' });
    }
    const status = Object.fromEntries(all.map((e) => [e.name, e.state['status']]));
    t.same(
      [status['prestart1'], status['createContainer'], status['poststart1'], status['poststop1']],
      ['creating', 'creating', 'running', 'stopped'],
      'the status each kind sees',
    );
    const start = readFileSync(join(b.rootfs, 'start.log'), 'utf8').trim().split(' ');
    t.equal(start[0], 'startContainer');
    t.equal(start[1], containerNet, "startContainer runs in the container's namespaces");
    t.equal(JSON.parse(start.slice(2).join(' ')).status, 'created');
  });

  t.test('a failing prestart hook fails create and leaves nothing; poststop still runs', async (t) => {
    const b = makeBundle(['sh', '-c', 'touch /output']);
    b.spec.root!.readonly = false;
    const log = join(b.dir, 'hooks.log');
    b.spec.hooks = { prestart: [{ path: join(b.rootfs, 'bin/false'), args: ['false'] }], poststop: [recorder(b, 'poststop', log)] };
    b.save();
    const before = snapshot(tsrunc.root);
    const r = await tsrunc.detached(['create', '-b', b.dir, 'hk2']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, new RegExp(`create hk2: prestart hook 0 \\(${b.rootfs.replace(/[/.]/g, '\\$&')}/bin/false\\) exited with status 1`));
    t.same(leftovers(tsrunc.root, before, 'hk2'), [], 'nothing left behind');
    t.notOk(existsSync(join(b.rootfs, 'output')), 'the process never ran');
    t.same(entries(log).map((e) => e.name), ['poststop']);
  });

  t.test('a failing createContainer hook fails create', async (t) => {
    const b = makeBundle(['true']);
    b.spec.hooks = { createContainer: [{ path: join(b.rootfs, 'bin/sh'), args: ['sh', '-c', 'echo broken >&2; exit 3'] }] };
    b.save();
    const before = snapshot(tsrunc.root);
    const r = await tsrunc(['run', '-b', b.dir, 'hk3']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /run hk3: createContainer hook 0 \(\S+\/bin\/sh\) exited with status 3: broken/);
    t.same(leftovers(tsrunc.root, before, 'hk3'), []);
  });

  t.test('a hook that does not exist', async (t) => {
    const b = makeBundle(['true']);
    b.spec.hooks = { createRuntime: [{ path: '/no/such/hook' }] };
    b.save();
    const r = await tsrunc(['run', '-b', b.dir, 'hk4']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /createRuntime hook 0 \(\/no\/such\/hook\) could not run: ENOENT/);
    b.spec.hooks = { createContainer: [{ path: '/no/such/hook' }] };
    b.save();
    const c = await tsrunc(['run', '-b', b.dir, 'hk5']);
    t.match(c.stderr, /createContainer hook 0 \(\/no\/such\/hook\) could not run: .*ENOENT/);
  });

  t.test('a hook that times out', async (t) => {
    const b = makeBundle(['true']);
    b.spec.hooks = {
      prestart: [{ path: join(b.rootfs, 'bin/sleep'), args: ['sleep', '30'], timeout: 1 }],
    };
    b.save();
    const began = Date.now();
    const before = snapshot(tsrunc.root);
    const r = await tsrunc(['run', '-b', b.dir, 'hk6']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /prestart hook 0 \(\S+\/bin\/sleep\) timed out after 1 s/);
    t.ok(Date.now() - began < 15000, 'the hook was killed, not waited for');
    t.same(leftovers(tsrunc.root, before, 'hk6'), []);
    b.spec.hooks = { createContainer: [{ path: join(b.rootfs, 'bin/sleep'), args: ['sleep', '30'], timeout: 1 }] };
    b.save();
    const c = await tsrunc(['run', '-b', b.dir, 'hk7']);
    t.match(c.stderr, /createContainer hook 0 \(\S+\/bin\/sleep\) timed out after 1 s/);
  });

  t.test('poststart and poststop failures are warnings; the next hooks still run', async (t) => {
    const b = makeBundle(['true']);
    const log = join(b.dir, 'hooks.log');
    b.spec.hooks = {
      poststart: [{ path: join(b.rootfs, 'bin/false'), args: ['false'] }, recorder(b, 'poststart', log)],
      poststop: [{ path: join(b.rootfs, 'bin/false'), args: ['false'] }, recorder(b, 'poststop', log)],
    };
    b.save();
    t.equal((await tsrunc.detached(['create', '-b', b.dir, 'hk8'])).exitCode, 0);
    const s = await tsrunc(['start', 'hk8']);
    t.equal(s.exitCode, 0, 'start succeeds');
    t.match(s.stderr, /warning: poststart hook 0 \(\S+\/bin\/false\) exited with status 1/);
    const d = await tsrunc(['delete', '-f', 'hk8']);
    t.equal(d.exitCode, 0, 'delete succeeds');
    t.match(d.stderr, /warning: poststop hook 0 \(\S+\/bin\/false\) exited with status 1/);
    t.same(entries(log).map((e) => e.name), ['poststart', 'poststop']);
  });

  t.test('env: exactly the hook env when given', async (t) => {
    const b = makeBundle(['true']);
    const out = join(b.dir, 'env.out');
    b.spec.hooks = {
      createRuntime: [{ path: join(b.rootfs, 'bin/sh'), args: ['sh', '-c', `env | sort > ${out}`], env: ['A=1', 'B=two words'] }],
    };
    b.save();
    t.equal((await tsrunc(['run', '-b', b.dir, 'hk9'])).exitCode, 0);
    // busybox sh adds PWD, SHLVL and a default PATH of its own.
    const env = readFileSync(out, 'utf8').trim().split('\n').filter((l) => !/^(PWD|SHLVL)=/.test(l) && l !== 'PATH=/sbin:/usr/sbin:/bin:/usr/bin');
    t.same(env, ['A=1', 'B=two words'], "nothing of the runtime's environment");
  });
});
