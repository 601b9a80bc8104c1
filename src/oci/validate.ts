// Validation of config.json into a Spec. Every error names the JSON path and
// why, e.g. `process.args: must be a non-empty array`. Unknown properties are
// ignored, as the runtime spec requires.
import { CAPABILITIES } from '../linux/capabilities.js';
import type { Spec, Namespace, NamespaceType, IdMapping, Process } from './spec.js';

/** A config.json that the runtime cannot use; `path` is the JSON path. */
export class ConfigError extends Error {
  readonly path: string;
  readonly reason: string;
  constructor(path: string, reason: string, file = 'config.json') {
    super(path ? `${file}: ${path}: ${reason}` : `${file}: ${reason}`);
    this.name = 'ConfigError';
    this.path = path;
    this.reason = reason;
  }
}

export const NAMESPACE_TYPES: readonly NamespaceType[] = ['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time'];

export const RLIMIT_TYPES: Readonly<Record<string, number>> = {
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
};

export const ROOTFS_PROPAGATIONS = ['private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared', 'unbindable', 'runbindable'];

type Json = unknown;

const isObject = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

function at(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

function object(v: Json, path: string): Record<string, Json> {
  if (!isObject(v)) throw new ConfigError(path, 'must be an object');
  return v;
}

function optObject(o: Record<string, Json>, key: string, path: string): Record<string, Json> | undefined {
  return o[key] === undefined ? undefined : object(o[key], at(path, key));
}

function str(o: Record<string, Json>, key: string, path: string, required = false): string | undefined {
  const v = o[key];
  if (v === undefined) {
    if (required) throw new ConfigError(at(path, key), 'is required');
    return undefined;
  }
  if (typeof v !== 'string') throw new ConfigError(at(path, key), 'must be a string');
  return v;
}

function bool(o: Record<string, Json>, key: string, path: string): boolean | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new ConfigError(at(path, key), 'must be true or false');
  return v;
}

function int(o: Record<string, Json>, key: string, path: string, opts: { required?: boolean; min?: number; max?: number } = {}): number | undefined {
  const v = o[key];
  if (v === undefined) {
    if (opts.required) throw new ConfigError(at(path, key), 'is required');
    return undefined;
  }
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new ConfigError(at(path, key), 'must be an integer');
  if (opts.min !== undefined && v < opts.min) throw new ConfigError(at(path, key), `must be at least ${opts.min}`);
  if (opts.max !== undefined && v > opts.max) throw new ConfigError(at(path, key), `must be at most ${opts.max}`);
  return v;
}

function array(o: Record<string, Json>, key: string, path: string): Json[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new ConfigError(at(path, key), 'must be an array');
  return v;
}

function strings(o: Record<string, Json>, key: string, path: string): string[] | undefined {
  const a = array(o, key, path);
  if (!a) return undefined;
  a.forEach((s, i) => {
    if (typeof s !== 'string') throw new ConfigError(at(at(path, key), i), 'must be a string');
  });
  return a as string[];
}

function absolute(p: string, path: string): void {
  if (!p.startsWith('/')) throw new ConfigError(path, `must be an absolute path, got "${p}"`);
}

/** Parses and validates config.json text. */
export function parseSpec(text: string): Spec {
  let json: Json;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError('', `malformed JSON: ${(e as Error).message}`);
  }
  return validateSpec(json);
}

export function validateSpec(json: Json): Spec {
  const o = object(json, '');
  const version = str(o, 'ociVersion', '', true)!;
  const m = /^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(version);
  if (!m) throw new ConfigError('ociVersion', `"${version}" is not a version (want 1.x.y)`);
  if (m[1] !== '1') throw new ConfigError('ociVersion', `major version ${m[1]} is not supported (want 1.x.y)`);

  const root = object(o['root'] ?? fail('root', 'is required'), 'root');
  str(root, 'path', 'root', true);
  if ((root['path'] as string) === '') throw new ConfigError('root.path', 'must not be empty');
  bool(root, 'readonly', 'root');

  const mounts = array(o, 'mounts', '');
  mounts?.forEach((mt, i) => validateMount(mt, at('mounts', i)));

  if (o['process'] !== undefined) validateProcess(object(o['process'], 'process'), 'process');
  str(o, 'hostname', '');
  str(o, 'domainname', '');

  const hooks = optObject(o, 'hooks', '');
  if (hooks) {
    for (const kind of ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']) {
      array(hooks, kind, 'hooks')?.forEach((h, i) => validateHook(h, at(at('hooks', kind), i)));
    }
  }

  const ann = optObject(o, 'annotations', '');
  if (ann) for (const k of Object.keys(ann)) str(ann, k, 'annotations');

  const linux = optObject(o, 'linux', '');
  if (linux) validateLinux(linux, 'linux');

  const spec = o as unknown as Spec;
  if (spec.hostname && !spec.linux?.namespaces?.some((n) => n.type === 'uts')) {
    throw new ConfigError('hostname', 'needs a uts namespace in linux.namespaces');
  }
  if (spec.domainname && !spec.linux?.namespaces?.some((n) => n.type === 'uts')) {
    throw new ConfigError('domainname', 'needs a uts namespace in linux.namespaces');
  }
  return spec;
}

function fail(path: string, reason: string): never {
  throw new ConfigError(path, reason);
}

function validateMount(v: Json, path: string): void {
  const mt = object(v, path);
  const dest = str(mt, 'destination', path, true)!;
  if (dest === '') throw new ConfigError(at(path, 'destination'), 'must not be empty');
  str(mt, 'type', path);
  str(mt, 'source', path);
  strings(mt, 'options', path);
  array(mt, 'uidMappings', path)?.forEach((x, i) => validateIdMapping(x, at(at(path, 'uidMappings'), i)));
  array(mt, 'gidMappings', path)?.forEach((x, i) => validateIdMapping(x, at(at(path, 'gidMappings'), i)));
}

function validateIdMapping(v: Json, path: string): void {
  const o = object(v, path);
  int(o, 'containerID', path, { required: true, min: 0, max: 0xffffffff });
  int(o, 'hostID', path, { required: true, min: 0, max: 0xffffffff });
  int(o, 'size', path, { required: true, min: 1, max: 0xffffffff });
}

function validateHook(v: Json, path: string): void {
  const o = object(v, path);
  const p = str(o, 'path', path, true)!;
  absolute(p, at(path, 'path'));
  strings(o, 'args', path);
  strings(o, 'env', path);
  int(o, 'timeout', path, { min: 1 });
}

/** A process.json (`exec -p`): the spec's process object on its own. */
export function parseProcess(text: string, file: string): Process {
  try {
    let json: Json;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new ConfigError('', `malformed JSON: ${(e as Error).message}`);
    }
    validateProcess(object(json, ''), '');
    return json as Process;
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(e.path, e.reason, file);
    throw e;
  }
}

function validateProcess(p: Record<string, Json>, path: string): void {
  bool(p, 'terminal', path);
  const cs = optObject(p, 'consoleSize', path);
  if (cs) {
    int(cs, 'height', at(path, 'consoleSize'), { required: true, min: 0 });
    int(cs, 'width', at(path, 'consoleSize'), { required: true, min: 0 });
  }
  const user = object(p['user'] ?? fail(at(path, 'user'), 'is required'), at(path, 'user'));
  const up = at(path, 'user');
  int(user, 'uid', up, { required: true, min: 0, max: 0xfffffffe });
  int(user, 'gid', up, { required: true, min: 0, max: 0xfffffffe });
  int(user, 'umask', up, { min: 0, max: 0o777 });
  array(user, 'additionalGids', up)?.forEach((g, i) => {
    if (typeof g !== 'number' || !Number.isInteger(g) || g < 0) throw new ConfigError(at(at(up, 'additionalGids'), i), 'must be a non-negative integer');
  });
  const args = strings(p, 'args', path);
  if (!args || args.length === 0) throw new ConfigError(at(path, 'args'), 'must be a non-empty array');
  if (args[0] === '') throw new ConfigError(at(path, 'args[0]'), 'must not be empty');
  const env = strings(p, 'env', path);
  env?.forEach((e, i) => {
    if (!e.includes('=') || e.startsWith('=')) throw new ConfigError(at(at(path, 'env'), i), `"${e}" is not of the form KEY=VALUE`);
  });
  const cwd = str(p, 'cwd', path, true)!;
  absolute(cwd, at(path, 'cwd'));
  const caps = optObject(p, 'capabilities', path);
  if (caps) {
    for (const set of ['bounding', 'effective', 'inheritable', 'permitted', 'ambient']) {
      strings(caps, set, at(path, 'capabilities'))?.forEach((name, i) => {
        if (!Object.hasOwn(CAPABILITIES, name.toUpperCase())) {
          throw new ConfigError(at(at(at(path, 'capabilities'), set), i), `unknown capability "${name}"`);
        }
      });
    }
  }
  const seen = new Set<string>();
  array(p, 'rlimits', path)?.forEach((r, i) => {
    const rp = at(at(path, 'rlimits'), i);
    const o = object(r, rp);
    const type = str(o, 'type', rp, true)!;
    if (!Object.hasOwn(RLIMIT_TYPES, type)) throw new ConfigError(at(rp, 'type'), `unknown rlimit type "${type}"`);
    if (seen.has(type)) throw new ConfigError(at(rp, 'type'), `duplicate rlimit type "${type}"`);
    seen.add(type);
    const soft = int(o, 'soft', rp, { required: true, min: 0 })!;
    const hard = int(o, 'hard', rp, { required: true, min: 0 })!;
    if (soft > hard) throw new ConfigError(rp, `soft limit ${soft} is above the hard limit ${hard}`);
  });
  bool(p, 'noNewPrivileges', path);
  str(p, 'apparmorProfile', path);
  int(p, 'oomScoreAdj', path, { min: -1000, max: 1000 });
  str(p, 'selinuxLabel', path);
}

function validateLinux(l: Record<string, Json>, path: string): void {
  const types = new Set<string>();
  array(l, 'namespaces', path)?.forEach((n, i) => {
    const np = at(at(path, 'namespaces'), i);
    const o = object(n, np);
    const type = str(o, 'type', np, true)!;
    if (!NAMESPACE_TYPES.includes(type as NamespaceType)) {
      throw new ConfigError(at(np, 'type'), `unknown namespace type "${type}" (want one of ${NAMESPACE_TYPES.join(', ')})`);
    }
    if (types.has(type)) throw new ConfigError(at(np, 'type'), `duplicate namespace "${type}"`);
    types.add(type);
    const nsPath = str(o, 'path', np);
    if (nsPath !== undefined && nsPath !== '') absolute(nsPath, at(np, 'path'));
  });
  for (const key of ['uidMappings', 'gidMappings']) {
    const maps = array(l, key, path);
    maps?.forEach((x, i) => validateIdMapping(x, at(at(path, key), i)));
    if (maps && maps.length > 0 && !types.has('user')) {
      throw new ConfigError(at(path, key), 'needs a user namespace in linux.namespaces');
    }
  }
  if (types.has('user')) {
    const userNs = (l['namespaces'] as Namespace[]).find((n) => n.type === 'user');
    const joins = userNs?.path;
    if (!joins && (!(l['uidMappings'] as IdMapping[] | undefined)?.length || !(l['gidMappings'] as IdMapping[] | undefined)?.length)) {
      throw new ConfigError(at(path, 'uidMappings'), 'a new user namespace needs linux.uidMappings and linux.gidMappings');
    }
  }
  array(l, 'devices', path)?.forEach((d, i) => {
    const dp = at(at(path, 'devices'), i);
    const o = object(d, dp);
    const type = str(o, 'type', dp, true)!;
    if (!['c', 'b', 'u', 'p'].includes(type)) throw new ConfigError(at(dp, 'type'), `unknown device type "${type}" (want c, b, u or p)`);
    absolute(str(o, 'path', dp, true)!, at(dp, 'path'));
    if (type !== 'p') {
      int(o, 'major', dp, { required: true, min: 0 });
      int(o, 'minor', dp, { required: true, min: 0 });
    }
    int(o, 'fileMode', dp, { min: 0, max: 0o7777 });
    int(o, 'uid', dp, { min: 0 });
    int(o, 'gid', dp, { min: 0 });
  });
  str(l, 'cgroupsPath', path);
  const prop = str(l, 'rootfsPropagation', path);
  if (prop !== undefined && prop !== '' && !ROOTFS_PROPAGATIONS.includes(prop)) {
    throw new ConfigError(at(path, 'rootfsPropagation'), `unknown propagation "${prop}" (want one of ${ROOTFS_PROPAGATIONS.join(', ')})`);
  }
  const sysctl = optObject(l, 'sysctl', path);
  if (sysctl) for (const k of Object.keys(sysctl)) str(sysctl, k, at(path, 'sysctl'));
  for (const key of ['maskedPaths', 'readonlyPaths']) {
    strings(l, key, path)?.forEach((p, i) => absolute(p, at(at(path, key), i)));
  }
  str(l, 'mountLabel', path);
  optObject(l, 'resources', path);
  optObject(l, 'seccomp', path);
}
