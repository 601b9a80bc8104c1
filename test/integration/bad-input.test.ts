// Bad input gets a clear error naming what, where and why, a non-zero exit,
// and leaves nothing behind: no state dir, cgroup, mount or process.
import t from 'tap';
import { writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle, type Bundle } from '../helpers/bundle.js';
import { cli, needsRoot } from '../helpers/cli.js';
import { snapshot, leftovers } from '../helpers/leftovers.js';
import type { Spec } from '../../src/oci/spec.js';

interface Case {
  name: string;
  /** an invalid id: only `create` takes it as an id (`run a/b` means the bundle a/b) */
  id?: string;
  mutate?: (s: Spec) => void;
  /** edits to the bundle on disk after the spec is written */
  bundle?: (b: Bundle) => void;
  message: RegExp;
}

const cases: Case[] = [
  { name: 'malformed JSON', bundle: (b) => writeFileSync(join(b.dir, 'config.json'), '{"ociVersion": "1.0.2",'), message: /config\.json: malformed JSON/ },
  { name: 'unknown ociVersion major', mutate: (s) => (s.ociVersion = '2.0.0'), message: /config\.json: ociVersion: major version 2 is not supported/ },
  { name: 'missing root.path', mutate: (s) => (s.root = {} as Spec['root']), message: /config\.json: root\.path: is required/ },
  { name: 'rootfs missing', bundle: (b) => rmSync(b.rootfs, { recursive: true }), message: /config\.json: root\.path: rootfs \S+\/rootfs does not exist/ },
  { name: 'relative cwd', mutate: (s) => (s.process!.cwd = 'home'), message: /config\.json: process\.cwd: must be an absolute path, got "home"/ },
  { name: 'empty process.args', mutate: (s) => (s.process!.args = []), message: /config\.json: process\.args: must be a non-empty array/ },
  {
    name: 'unknown namespace type',
    mutate: (s) => s.linux!.namespaces!.push({ type: 'bogus' as 'pid' }),
    message: /config\.json: linux\.namespaces\[\d+\]\.type: unknown namespace type "bogus"/,
  },
  { name: 'duplicate namespace', mutate: (s) => s.linux!.namespaces!.push({ type: 'pid' }), message: /config\.json: linux\.namespaces\[\d+\]\.type: duplicate namespace "pid"/ },
  {
    name: 'mount inside /proc',
    mutate: (s) => s.mounts!.push({ destination: '/proc/sys/kernel', type: 'tmpfs', source: 'tmpfs' }),
    message: /config\.json: mounts\[\d+\]\.destination: \/proc\/sys\/kernel is inside \/proc/,
  },
  {
    name: 'bind source missing',
    mutate: (s) => s.mounts!.push({ destination: '/data', type: 'bind', source: '/no/such/dir', options: ['bind'] }),
    message: /config\.json: mounts\[\d+\]\.source: bind source \/no\/such\/dir: does not exist/,
  },
  { name: 'relative device path', mutate: (s) => (s.linux!.devices = [{ type: 'c', path: 'dev/x', major: 1, minor: 3 }]), message: /linux\.devices\[0\]\.path: must be an absolute path/ },
  {
    name: 'a failing mount in the middle of the plan',
    mutate: (s) => s.mounts!.splice(3, 0, { destination: '/mnt/x', type: 'nosuchfs', source: 'none' }),
    message: /op \d+ mount nosuchfs on \/mnt\/x: ENODEV/,
  },
  {
    name: 'a mount the kernel refuses (bad tmpfs option)',
    mutate: (s) => s.mounts!.push({ destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['size=lots'] }),
    message: /op \d+ mount tmpfs on \/scratch: EINVAL/,
  },
  { name: 'executable not found', mutate: (s) => (s.process!.args = ['no-such-binary']), message: /op \d+ look up no-such-binary: executable file not found in \$PATH/ },
  {
    name: 'executable not executable',
    mutate: (s) => (s.process!.args = ['/etc/passwd']),
    message: /op \d+ look up \/etc\/passwd: EACCES/,
  },
  {
    name: 'Intel RDT on a host without it (runc\'s message)',
    mutate: (s) => (s.linux!.intelRdt = { closID: 'tsrunc-test' }),
    message: /config\.json: linux\.intelRdt: (intelRdt is specified in config, but Intel RDT is not enabled|Intel RDT: not supported by this version of tsrunc yet)/,
  },
  { name: 'invalid id: contains /', id: 'a/b', message: /invalid container id format: "a\/b"/ },
  { name: 'invalid id: ..', id: '..', message: /invalid container id format: "\.\."/ },
  { name: 'invalid id: too long', id: 'x'.repeat(1025), message: /longer than 1024 bytes/ },
];

t.test('bad input', { skip: needsRoot }, async (t) => {
  const tsrunc = cli();
  let n = 0;
  for (const c of cases) {
    t.test(c.name, async (t) => {
      const b = makeBundle(['true'], c.mutate);
      c.bundle?.(b);
      const id = c.id ?? `bad${n++}`;
      for (const verb of c.id ? (['create'] as const) : (['create', 'run'] as const)) {
        const before = snapshot(tsrunc.root);
        const r = verb === 'create' ? await tsrunc.detached(['create', '-b', b.dir, id]) : await tsrunc(['run', '-b', b.dir, id]);
        t.equal(r.exitCode, 1, `${verb} fails`);
        const last = r.stderr.trim().split('\n').at(-1) ?? '';
        t.match(last, c.message, `${verb}: the last line says what, where and why`);
        t.match(last, new RegExp(`^tsrunc: ${verb} `), `${verb}: the last line names the command`);
        if (c.id) t.same(snapshot(tsrunc.root), before, `${verb}: nothing left behind`);
        else t.same(leftovers(tsrunc.root, before, id), [], `${verb}: nothing left behind`);
      }
    });
  }

  t.test('empty id', async (t) => {
    const b = makeBundle(['true']);
    const r = await tsrunc.detached(['create', '-b', b.dir, '']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /container id cannot be empty/);
  });

  t.test('an id already in use', async (t) => {
    const b = makeBundle(['sleep', '100']);
    t.equal((await tsrunc.detached(['run', '-d', '-b', b.dir, 'dup1'])).exitCode, 0);
    const before = snapshot(tsrunc.root);
    const r = await tsrunc.detached(['create', '-b', b.dir, 'dup1']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /create dup1: container with given ID already exists/);
    t.same(snapshot(tsrunc.root), before, 'the existing container is untouched');
    t.equal(JSON.parse((await tsrunc(['state', 'dup1'])).stdout).status, 'running');
    t.equal((await tsrunc(['delete', '-f', 'dup1'])).exitCode, 0);
  });

  t.test('a bundle directory that does not exist', async (t) => {
    const r = await tsrunc.detached(['create', '-b', '/no/such/bundle', 'nob']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /config\.json: bundle directory \/no\/such\/bundle does not exist/);
  });

  t.test('a bundle without config.json', async (t) => {
    const b = makeBundle(['true']);
    rmSync(join(b.dir, 'config.json'));
    mkdirSync(join(b.dir, 'empty'), { recursive: true });
    const r = await tsrunc.detached(['create', '-b', b.dir, 'nocfg']);
    t.match(r.stderr, new RegExp(`config\\.json: not found in bundle ${b.dir}`));
  });

  t.test('state, kill, delete, start of an unknown container', async (t) => {
    for (const args of [['state', 'ghost'], ['kill', 'ghost'], ['delete', 'ghost'], ['start', 'ghost']]) {
      const r = await tsrunc(args);
      t.equal(r.exitCode, 1, args.join(' '));
      t.match(r.stderr, /container "ghost" does not exist/);
    }
  });

  t.test('unknown command and unknown flag', async (t) => {
    const r = await tsrunc(['frobnicate']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /unknown command 'frobnicate'/);
    const f = await tsrunc(['list', '--bogus']);
    t.equal(f.exitCode, 1);
    t.match(f.stderr, /unknown option '--bogus'/);
  });
});
