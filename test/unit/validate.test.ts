// config.json validation: every rejection names the JSON path and the reason,
// in the exact words the user will read.
import t from 'tap';
import { parseSpec, validateSpec, ConfigError } from '../../src/oci/validate.js';
import { defaultSpec } from '../../src/oci/default-spec.js';
import type { Spec } from '../../src/oci/spec.js';

/** A JSON-shaped object that tests may bend into any (invalid) form. */
type Loose = Record<string, unknown>;

/** The default spec as plain JSON, with `edit` applied. */
function specWith(edit: (s: Loose) => void): Loose {
  const s = JSON.parse(JSON.stringify(defaultSpec())) as Loose;
  edit(s);
  return s;
}

const obj = (v: unknown): Loose => v as Loose;
const proc = (s: Loose): Loose => obj(s['process']);
const linux = (s: Loose): Loose => obj(s['linux']);
const namespaces = (s: Loose): Loose[] => linux(s)['namespaces'] as Loose[];
const mounts = (s: Loose): Loose[] => s['mounts'] as Loose[];

/** What validateSpec says about `spec`: a ConfigError's message and path, or why not. */
function failure(spec: unknown): { message: string; path: string } | string {
  try {
    validateSpec(spec);
  } catch (e) {
    if (e instanceof ConfigError) return { message: e.message, path: e.path };
    return `not a ConfigError: ${String(e)}`;
  }
  return 'accepted';
}

/** The expected failure: `config.json: PATH: REASON`. */
const bad = (path: string, reason: string) => ({ message: path ? `config.json: ${path}: ${reason}` : `config.json: ${reason}`, path });

t.test('the default spec is valid', (t) => {
  const spec = defaultSpec();
  const out: Spec = validateSpec(JSON.parse(JSON.stringify(spec)));
  t.same(out, spec, 'returns the spec unchanged');
  t.same(parseSpec(JSON.stringify(spec)), spec, 'parseSpec accepts its JSON text');
  t.equal(failure(defaultSpec({ cgroupNamespace: true })), 'accepted');
  t.end();
});

t.test('unknown extra properties are ignored', (t) => {
  const s = specWith((s) => {
    s['vendorThing'] = { nested: [1, 2, 3] };
    proc(s)['someFutureField'] = 'x';
    linux(s)['futureLinuxField'] = 42;
    mounts(s)[0]!['extra'] = true;
    obj(s['root'])['extra'] = null;
    namespaces(s)[0]!['extra'] = 'y';
  });
  t.equal(failure(s), 'accepted');
  t.end();
});

t.test('top level', async (t) => {
  t.test('malformed JSON', (t) => {
    t.throws(() => parseSpec('{"ociVersion": "1.2.1",'), { name: 'ConfigError', path: '', message: /^config\.json: malformed JSON: ./ });
    t.throws(() => parseSpec(''), { name: 'ConfigError', message: /^config\.json: malformed JSON: ./ });
    t.end();
  });

  t.test('not an object', (t) => {
    t.same(failure([]), bad('', 'must be an object'));
    t.same(failure(null), bad('', 'must be an object'));
    t.end();
  });

  t.test('ociVersion', (t) => {
    t.same(failure(specWith((s) => delete s['ociVersion'])), bad('ociVersion', 'is required'));
    t.same(failure(specWith((s) => (s['ociVersion'] = 1))), bad('ociVersion', 'must be a string'));
    t.same(failure(specWith((s) => (s['ociVersion'] = '2.0.0'))), bad('ociVersion', 'major version 2 is not supported (want 1.x.y)'));
    t.same(failure(specWith((s) => (s['ociVersion'] = 'latest'))), bad('ociVersion', '"latest" is not a version (want 1.x.y)'));
    t.same(failure(specWith((s) => (s['ociVersion'] = '1.0'))), bad('ociVersion', '"1.0" is not a version (want 1.x.y)'));
    for (const v of ['1.0.0', '1.0.2-dev', '1.2.1', '1.1.0+dev']) t.equal(failure(specWith((s) => (s['ociVersion'] = v))), 'accepted', `accepts ${v}`);
    t.end();
  });

  t.test('root', (t) => {
    t.same(failure(specWith((s) => delete s['root'])), bad('root', 'is required'));
    t.same(failure(specWith((s) => (s['root'] = 'rootfs'))), bad('root', 'must be an object'));
    t.same(failure(specWith((s) => delete obj(s['root'])['path'])), bad('root.path', 'is required'));
    t.same(failure(specWith((s) => (obj(s['root'])['path'] = ''))), bad('root.path', 'must not be empty'));
    t.same(failure(specWith((s) => (obj(s['root'])['readonly'] = 'yes'))), bad('root.readonly', 'must be true or false'));
    t.end();
  });

  t.test('hostname and domainname need a uts namespace', (t) => {
    const noUts = (s: Loose) => {
      linux(s)['namespaces'] = namespaces(s).filter((n) => n['type'] !== 'uts');
    };
    t.same(failure(specWith(noUts)), bad('hostname', 'needs a uts namespace in linux.namespaces'));
    const domainOnly = specWith((s) => {
      noUts(s);
      delete s['hostname'];
      s['domainname'] = 'example.org';
    });
    t.same(failure(domainOnly), bad('domainname', 'needs a uts namespace in linux.namespaces'));
    const neither = specWith((s) => {
      noUts(s);
      delete s['hostname'];
    });
    t.equal(failure(neither), 'accepted', 'no hostname, no uts namespace needed');
    t.end();
  });
});

t.test('process', async (t) => {
  t.test('args', (t) => {
    t.same(failure(specWith((s) => (proc(s)['args'] = []))), bad('process.args', 'must be a non-empty array'));
    t.same(failure(specWith((s) => delete proc(s)['args'])), bad('process.args', 'must be a non-empty array'));
    t.same(failure(specWith((s) => (proc(s)['args'] = 'sh'))), bad('process.args', 'must be an array'));
    t.same(failure(specWith((s) => (proc(s)['args'] = ['sh', 7]))), bad('process.args[1]', 'must be a string'));
    t.same(failure(specWith((s) => (proc(s)['args'] = ['']))), bad('process.args[0]', 'must not be empty'));
    t.end();
  });

  t.test('user', (t) => {
    t.same(failure(specWith((s) => delete proc(s)['user'])), bad('process.user', 'is required'));
    t.same(failure(specWith((s) => (obj(proc(s)['user'])['uid'] = -1))), bad('process.user.uid', 'must be at least 0'));
    t.same(failure(specWith((s) => (obj(proc(s)['user'])['gid'] = 1.5))), bad('process.user.gid', 'must be an integer'));
    t.same(
      failure(specWith((s) => (obj(proc(s)['user'])['additionalGids'] = [1, -2]))),
      bad('process.user.additionalGids[1]', 'must be a non-negative integer'),
    );
    t.end();
  });

  t.test('cwd', (t) => {
    t.same(failure(specWith((s) => (proc(s)['cwd'] = 'home/user'))), bad('process.cwd', 'must be an absolute path, got "home/user"'));
    t.same(failure(specWith((s) => delete proc(s)['cwd'])), bad('process.cwd', 'is required'));
    t.end();
  });

  t.test('env', (t) => {
    t.same(failure(specWith((s) => (proc(s)['env'] = ['A=1', 'NOVALUE']))), bad('process.env[1]', '"NOVALUE" is not of the form KEY=VALUE'));
    t.same(failure(specWith((s) => (proc(s)['env'] = ['=x']))), bad('process.env[0]', '"=x" is not of the form KEY=VALUE'));
    t.equal(failure(specWith((s) => (proc(s)['env'] = ['EMPTY=', 'A=b=c']))), 'accepted', 'empty values and "=" in values are fine');
    t.end();
  });

  t.test('capabilities', (t) => {
    t.same(
      failure(specWith((s) => (obj(proc(s)['capabilities'])['effective'] = ['CAP_KILL', 'CAP_FLY']))),
      bad('process.capabilities.effective[1]', 'unknown capability "CAP_FLY"'),
    );
    t.same(failure(specWith((s) => (obj(proc(s)['capabilities'])['ambient'] = ['KILL']))), bad('process.capabilities.ambient[0]', 'unknown capability "KILL"'));
    t.end();
  });

  t.test('rlimits', (t) => {
    const rl = (...list: Loose[]) => specWith((s) => (proc(s)['rlimits'] = list));
    t.same(failure(rl({ type: 'RLIMIT_FOO', soft: 1, hard: 1 })), bad('process.rlimits[0].type', 'unknown rlimit type "RLIMIT_FOO"'));
    t.same(
      failure(rl({ type: 'RLIMIT_NOFILE', soft: 1, hard: 1 }, { type: 'RLIMIT_NOFILE', soft: 2, hard: 2 })),
      bad('process.rlimits[1].type', 'duplicate rlimit type "RLIMIT_NOFILE"'),
    );
    t.same(failure(rl({ type: 'RLIMIT_CORE', soft: 10, hard: 5 })), bad('process.rlimits[0]', 'soft limit 10 is above the hard limit 5'));
    t.same(failure(rl({ type: 'RLIMIT_CORE', soft: 1 })), bad('process.rlimits[0].hard', 'is required'));
    t.equal(failure(rl({ type: 'RLIMIT_CORE', soft: 5, hard: 5 }, { type: 'RLIMIT_NPROC', soft: 0, hard: 10 })), 'accepted');
    t.end();
  });

  t.test('an rlimit type named like an Object.prototype member is unknown', (t) => {
    for (const type of ['toString', 'constructor', '__proto__']) {
      const spec = specWith((s) => (proc(s)['rlimits'] = [{ type, soft: 1, hard: 1 }]));
      t.same(failure(spec), bad('process.rlimits[0].type', `unknown rlimit type "${type}"`), type);
    }
    t.end();
  });

  t.test('oomScoreAdj range', (t) => {
    t.same(failure(specWith((s) => (proc(s)['oomScoreAdj'] = 1001))), bad('process.oomScoreAdj', 'must be at most 1000'));
    t.end();
  });
});

t.test('linux', async (t) => {
  t.test('namespaces', (t) => {
    t.same(
      failure(specWith((s) => namespaces(s).push({ type: 'foo' }))),
      bad('linux.namespaces[5].type', 'unknown namespace type "foo" (want one of pid, network, mount, ipc, uts, user, cgroup, time)'),
    );
    t.same(failure(specWith((s) => namespaces(s).push({ type: 'pid' }))), bad('linux.namespaces[5].type', 'duplicate namespace "pid"'));
    t.same(failure(specWith((s) => (namespaces(s)[1]!['path'] = 'proc/1/ns/net'))), bad('linux.namespaces[1].path', 'must be an absolute path, got "proc/1/ns/net"'));
    t.equal(failure(specWith((s) => (namespaces(s)[1]!['path'] = '/proc/1/ns/net'))), 'accepted', 'an absolute path joins');
    t.equal(failure(specWith((s) => (namespaces(s)[1]!['path'] = ''))), 'accepted', 'an empty path means a new namespace');
    t.end();
  });

  t.test('user namespace and id mappings', (t) => {
    const map = [{ containerID: 0, hostID: 1000, size: 1 }];
    t.same(failure(specWith((s) => (linux(s)['uidMappings'] = map))), bad('linux.uidMappings', 'needs a user namespace in linux.namespaces'));
    t.same(failure(specWith((s) => (linux(s)['gidMappings'] = map))), bad('linux.gidMappings', 'needs a user namespace in linux.namespaces'));
    const needsMaps = bad('linux.uidMappings', 'a new user namespace needs linux.uidMappings and linux.gidMappings');
    t.same(failure(specWith((s) => namespaces(s).push({ type: 'user' }))), needsMaps);
    const uidOnly = specWith((s) => {
      namespaces(s).push({ type: 'user' });
      linux(s)['uidMappings'] = map;
    });
    t.same(failure(uidOnly), needsMaps, 'gid mappings are needed too');
    const zeroSize = specWith((s) => {
      namespaces(s).push({ type: 'user' });
      linux(s)['uidMappings'] = [{ containerID: 0, hostID: 1000, size: 0 }];
      linux(s)['gidMappings'] = map;
    });
    t.same(failure(zeroSize), bad('linux.uidMappings[0].size', 'must be at least 1'));
    const ok = specWith((s) => {
      namespaces(s).push({ type: 'user' });
      linux(s)['uidMappings'] = map;
      linux(s)['gidMappings'] = map;
    });
    t.equal(failure(ok), 'accepted');
    t.equal(failure(specWith((s) => namespaces(s).push({ type: 'user', path: '/proc/1/ns/user' }))), 'accepted', 'a joined user namespace needs no mappings');
    t.end();
  });

  t.test('devices', (t) => {
    const dev = { type: 'c', path: '/dev/fuse', major: 10, minor: 229 };
    const devices = (...list: Loose[]) => specWith((s) => (linux(s)['devices'] = list));
    t.same(failure(devices({ ...dev, type: 'x' })), bad('linux.devices[0].type', 'unknown device type "x" (want c, b, u or p)'));
    t.same(failure(devices({ ...dev, path: 'dev/fuse' })), bad('linux.devices[0].path', 'must be an absolute path, got "dev/fuse"'));
    t.same(failure(devices({ type: 'c', path: '/dev/fuse', minor: 229 })), bad('linux.devices[0].major', 'is required'));
    t.same(failure(devices(dev, { ...dev, fileMode: 0o10000 })), bad('linux.devices[1].fileMode', 'must be at most 4095'));
    t.equal(failure(devices(dev, { type: 'p', path: '/dev/fifo' })), 'accepted', 'a fifo needs no numbers');
    t.end();
  });

  t.test('masked and read-only paths', (t) => {
    t.same(failure(specWith((s) => (linux(s)['maskedPaths'] = ['/proc/kcore', 'proc/keys']))), bad('linux.maskedPaths[1]', 'must be an absolute path, got "proc/keys"'));
    t.same(failure(specWith((s) => (linux(s)['readonlyPaths'] = ['sys']))), bad('linux.readonlyPaths[0]', 'must be an absolute path, got "sys"'));
    t.end();
  });

  t.test('rootfsPropagation', (t) => {
    t.same(
      failure(specWith((s) => (linux(s)['rootfsPropagation'] = 'sideways'))),
      bad('linux.rootfsPropagation', 'unknown propagation "sideways" (want one of private, rprivate, slave, rslave, shared, rshared, unbindable, runbindable)'),
    );
    for (const p of ['private', 'rslave', 'shared', 'runbindable']) t.equal(failure(specWith((s) => (linux(s)['rootfsPropagation'] = p))), 'accepted', `accepts ${p}`);
    t.end();
  });
});

t.test('hooks', (t) => {
  const hooks = (h: Loose) => specWith((s) => (s['hooks'] = h));
  t.same(failure(hooks({ prestart: [{ path: 'bin/hook' }] })), bad('hooks.prestart[0].path', 'must be an absolute path, got "bin/hook"'));
  t.same(failure(hooks({ poststop: [{ path: '/bin/true' }, {}] })), bad('hooks.poststop[1].path', 'is required'));
  t.same(failure(hooks({ createRuntime: [{ path: '/bin/true', timeout: 0 }] })), bad('hooks.createRuntime[0].timeout', 'must be at least 1'));
  t.equal(failure(hooks({ startContainer: [{ path: '/bin/true', args: ['true'], timeout: 5 }] })), 'accepted');
  t.end();
});

t.test('mounts', (t) => {
  t.same(failure(specWith((s) => delete mounts(s)[2]!['destination'])), bad('mounts[2].destination', 'is required'));
  t.same(failure(specWith((s) => (mounts(s)[0]!['destination'] = ''))), bad('mounts[0].destination', 'must not be empty'));
  t.same(failure(specWith((s) => (mounts(s)[1]!['options'] = ['nosuid', 5]))), bad('mounts[1].options[1]', 'must be a string'));
  t.same(failure(specWith((s) => (s['mounts'] = [1]))), bad('mounts[0]', 'must be an object'));
  t.end();
});
