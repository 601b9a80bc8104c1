// The container process: environment, working directory, user and groups,
// umask, rlimits, capabilities, no_new_privs, and which fds it gets.
import t from 'tap';
import { openSync, closeSync, mkdirSync, chownSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle.js';
import { cli, needsRoot, TSRUNC } from '../helpers/cli.js';
import { execa } from 'execa';
import { CAPABILITIES } from '../../src/linux/capabilities.js';

const capHex = (names: string[]) => names.reduce((m, n) => m | (1n << BigInt(CAPABILITIES[n]!)), 0n).toString(16).padStart(16, '0');

t.test('process', { skip: needsRoot }, async (t) => {
  const tsrunc = cli();

  t.test('env exactly as given, HOME from /etc/passwd', async (t) => {
    const b = makeBundle(['env'], (s) => {
      s.process!.env = ['PATH=/bin', 'FOO=bar baz', 'EMPTY='];
    });
    const r = await tsrunc(['run', '-b', b.dir, 'pr1']);
    t.equal(r.exitCode, 0, r.stderr);
    t.same(r.stdout.split('\n').sort(), ['EMPTY=', 'FOO=bar baz', 'HOME=/root', 'PATH=/bin']);
  });

  t.test('args[0] found through the PATH of the container env', async (t) => {
    const b = makeBundle(['busybox', 'echo', 'found'], (s) => (s.process!.env = ['PATH=/nowhere:/bin']));
    t.equal((await tsrunc(['run', '-b', b.dir, 'pr2'])).stdout, 'found');
  });

  t.test('cwd is created and entered', async (t) => {
    const b = makeBundle(['pwd'], (s) => (s.process!.cwd = '/work/deep/dir'));
    const r = await tsrunc(['run', '-b', b.dir, 'pr3']);
    t.equal(r.stdout, '/work/deep/dir');
  });

  t.test('uid, gid, additional groups, and HOME for that user', async (t) => {
    const b = makeBundle(['sh', '-c', 'id; echo $HOME; grep -E "^(Uid|Gid|Groups):" /proc/self/status'], (s) => {
      s.process!.user = { uid: 1000, gid: 1000, additionalGids: [5, 65534] };
      s.process!.cwd = '/tmp';
    });
    const r = await tsrunc(['run', '-b', b.dir, 'pr4']);
    t.equal(r.exitCode, 0, r.stderr);
    const lines = r.stdout.split('\n');
    t.match(lines[0], /^uid=1000\(tester\) gid=1000\(tester\) groups=5,65534\(nogroup\)/);
    t.equal(lines[1], '/home/tester');
    t.match(r.stdout, /^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
    t.match(r.stdout, /^Gid:\s+1000\s+1000\s+1000\s+1000$/m);
    t.match(r.stdout, /^Groups:\s+5 65534\s*$/m);
  });

  t.test('umask: default 0022, and as configured', async (t) => {
    const b = makeBundle(['sh', '-c', 'umask']);
    t.equal((await tsrunc(['run', '-b', b.dir, 'pr5'])).stdout, '0022');
    b.spec.process!.user.umask = 0o077;
    b.save();
    t.equal((await tsrunc(['run', '-b', b.dir, 'pr6'])).stdout, '0077');
  });

  t.test('rlimits', async (t) => {
    const b = makeBundle(['sh', '-c', 'ulimit -n; ulimit -Hn; ulimit -c'], (s) => {
      s.process!.rlimits = [
        { type: 'RLIMIT_NOFILE', soft: 321, hard: 654 },
        { type: 'RLIMIT_CORE', soft: 0, hard: 0 },
      ];
    });
    t.same((await tsrunc(['run', '-b', b.dir, 'pr7'])).stdout.split('\n'), ['321', '654', '0']);
  });

  t.test('an rlimit above the hard limit fails with a clear error', async (t) => {
    // Root here lacks CAP_SYS_RESOURCE: raising nofile beyond the current hard limit fails.
    const { execSync } = await import('node:child_process');
    const hard = Number(execSync('sh -c "ulimit -Hn"').toString());
    const b = makeBundle(['true'], (s) => (s.process!.rlimits = [{ type: 'RLIMIT_NOFILE', soft: hard + 1, hard: hard + 1 }]));
    const r = await tsrunc(['run', '-b', b.dir, 'pr8']);
    if (r.exitCode === 0) {
      t.pass('this machine lets root raise the hard limit (CAP_SYS_RESOURCE), nothing to refuse');
      return;
    }
    t.match(r.stderr, new RegExp(`op \\d+ set RLIMIT_NOFILE to ${hard + 1}:${hard + 1}: EPERM`));
  });

  t.test('capabilities: the spec sets exactly, inheritable empty, bounding dropped', async (t) => {
    const b = makeBundle(['grep', '-E', '^Cap(Inh|Prm|Eff|Bnd|Amb):', '/proc/self/status']);
    const r = await tsrunc(['run', '-b', b.dir, 'pr9']);
    t.equal(r.exitCode, 0, r.stderr);
    const caps = Object.fromEntries(r.stdout.split('\n').map((l) => l.split(/:\s+/)));
    const def = capHex(['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']);
    t.equal(caps['CapEff'], def);
    t.equal(caps['CapPrm'], def);
    t.equal(caps['CapBnd'], def);
    t.equal(caps['CapInh'], '0000000000000000', 'inheritable is never set unless asked (CVE-2022-29162)');
    t.equal(caps['CapAmb'], '0000000000000000');
  });

  t.test('capabilities: ambient for a non-root user', async (t) => {
    const set = ['CAP_NET_BIND_SERVICE', 'CAP_CHOWN'];
    const b = makeBundle(['grep', '-E', '^Cap(Inh|Eff|Amb):', '/proc/self/status'], (s) => {
      s.process!.user = { uid: 1000, gid: 1000 };
      s.process!.capabilities = { bounding: set, effective: set, permitted: set, inheritable: set, ambient: set };
      s.process!.cwd = '/tmp';
    });
    const r = await tsrunc(['run', '-b', b.dir, 'pr10']);
    t.equal(r.exitCode, 0, r.stderr);
    const caps = Object.fromEntries(r.stdout.split('\n').map((l) => l.split(/:\s+/)));
    t.equal(caps['CapAmb'], capHex(set));
    t.equal(caps['CapEff'], capHex(set), 'ambient caps are effective after exec as uid 1000');
  });

  t.test('a dropped CAP_NET_ADMIN makes ip link set fail', async (t) => {
    const b = makeBundle(['sh', '-c', 'ip link set lo up 2>/dev/null && echo added || echo refused']);
    t.equal((await tsrunc(['run', '-b', b.dir, 'pr11'])).stdout, 'refused');
    const all = ['CAP_NET_ADMIN'];
    b.spec.process!.capabilities = { bounding: all, effective: all, permitted: all };
    b.save();
    const r = await tsrunc(['run', '-b', b.dir, 'pr12']);
    t.equal(r.stdout, 'added', r.stderr);
  });

  t.test('noNewPrivileges', async (t) => {
    const b = makeBundle(['grep', 'NoNewPrivs', '/proc/self/status']);
    t.match((await tsrunc(['run', '-b', b.dir, 'pr13'])).stdout, /NoNewPrivs:\s+1/);
    b.spec.process!.noNewPrivileges = false;
    b.save();
    t.match((await tsrunc(['run', '-b', b.dir, 'pr14'])).stdout, /NoNewPrivs:\s+0/);
  });

  t.test('only stdio is open in the container', async (t) => {
    const b = makeBundle(['ls', '/proc/self/fd']);
    const r = await tsrunc(['run', '-b', b.dir, 'pr15']);
    // ls itself opens one fd (the directory) while listing.
    t.same(r.stdout.split('\n'), ['0', '1', '2', '3']);
  });

  t.test('--preserve-fds passes fds 3.. through', async (t) => {
    const b = makeBundle(['sh', '-c', 'ls /proc/self/fd | tr "\\n" " "; echo; readlink /proc/self/fd/3']);
    const extra = join(b.dir, 'passed.txt');
    const fd = openSync(extra, 'w');
    try {
      const r = await execa('node', [TSRUNC, '--root', tsrunc.root, 'run', '--preserve-fds', '1', '-b', b.dir, 'pr16'], {
        reject: false,
        stdio: ['ignore', 'pipe', 'pipe', fd as unknown as 'inherit'],
      });
      t.equal(r.exitCode, 0, String(r.stderr));
      const [fds, target] = String(r.stdout).split('\n');
      t.equal(fds!.trim(), '0 1 2 3 4', 'stdio, the preserved fd, and ls');
      t.equal(target, extra);
    } finally {
      closeSync(fd);
    }
  });

  t.test('stdin is passed through', async (t) => {
    const b = makeBundle(['sh', '-c', 'read line; echo got: $line']);
    const r = await tsrunc(['run', '-b', b.dir, 'pr17'], { input: 'hello\n' });
    t.equal(r.stdout, 'got: hello');
  });

  t.test('the working directory must be inside the container (CVE-2024-21626)', async (t) => {
    // A cwd through a leaked fd would be /proc/self/fd/N: no host fd is open, so it cannot resolve.
    const b = makeBundle(['pwd'], (s) => (s.process!.cwd = '/proc/self/fd/7'));
    const r = await tsrunc(['run', '-b', b.dir, 'pr18']);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /op \d+ (create|change to) the working directory \/proc\/self\/fd\/7/);
  });

  t.test('a cwd owned by the container user', async (t) => {
    const b = makeBundle(['sh', '-c', 'touch here && echo wrote'], (s) => {
      s.process!.user = { uid: 1000, gid: 1000 };
      s.process!.cwd = '/home/tester/work';
      s.root!.readonly = false;
    });
    mkdirSync(join(b.rootfs, 'home/tester/work'), { recursive: true });
    chownSync(join(b.rootfs, 'home/tester/work'), 1000, 1000);
    t.equal((await tsrunc(['run', '-b', b.dir, 'pr19'])).stdout, 'wrote');
  });
});
