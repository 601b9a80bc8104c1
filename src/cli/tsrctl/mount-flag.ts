// `--mount` as docker reads it, turned into runtime-spec mounts:
//   type=bind,source=/host/dir,target=/in/container[,readonly][,bind-propagation=rslave]
//   type=tmpfs,target=/scratch[,tmpfs-size=64m][,tmpfs-mode=1770]
// (src, dst, destination, ro as docker's aliases; a bare key is true).
import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { Mount } from '../../oci/spec.js';

const PROPAGATIONS = new Set(['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave']);

function bool(flag: string, key: string, v: string | undefined): boolean {
  if (v === undefined || v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new Error(`--mount ${JSON.stringify(flag)}: ${key}=${JSON.stringify(v)}: expected true or false`);
}

/** docker's size suffixes (k, m, g; bytes without one). */
function bytes(flag: string, v: string): number {
  const m = /^(\d+)([kmg]?)b?$/i.exec(v);
  if (!m) throw new Error(`--mount ${JSON.stringify(flag)}: tmpfs-size=${JSON.stringify(v)}: expected a size such as 64m`);
  return Number(m[1]) * { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
}

export function parseMountFlag(flag: string): Mount {
  const kv = new Map<string, string | undefined>();
  for (const part of flag.split(',')) {
    if (!part) continue;
    const i = part.indexOf('=');
    const k = (i < 0 ? part : part.slice(0, i)).trim().toLowerCase();
    kv.set({ src: 'source', dst: 'target', destination: 'target', ro: 'readonly' }[k] ?? k, i < 0 ? undefined : part.slice(i + 1));
  }
  const fail = (why: string): never => {
    throw new Error(`--mount ${JSON.stringify(flag)}: ${why}`);
  };
  const type = kv.get('type') ?? 'volume';
  const target = kv.get('target');
  if (!target) fail('target= is required');
  if (!isAbsolute(target!)) fail(`target ${JSON.stringify(target)} must be an absolute path`);
  const ro = kv.has('readonly') && bool(flag, 'readonly', kv.get('readonly'));
  const known = new Set(['type', 'source', 'target', 'readonly', ...(type === 'bind' ? ['bind-propagation'] : type === 'tmpfs' ? ['tmpfs-size', 'tmpfs-mode'] : [])]);
  for (const k of kv.keys()) if (!known.has(k)) fail(`unknown option ${JSON.stringify(k)} for type ${type}`);

  if (type === 'bind') {
    const src = kv.get('source');
    if (!src) fail('source= is required for a bind mount');
    const source = resolve(src!);
    try {
      statSync(source);
    } catch {
      fail(`bind source path does not exist: ${source}`);
    }
    const prop = kv.get('bind-propagation') ?? 'rprivate';
    if (!PROPAGATIONS.has(prop)) fail(`bind-propagation=${JSON.stringify(prop)}: expected one of ${[...PROPAGATIONS].join(', ')}`);
    return { destination: target!, type: 'bind', source, options: ['rbind', prop, ...(ro ? ['ro'] : [])] };
  }
  if (type === 'tmpfs') {
    if (kv.has('source')) fail('a tmpfs mount takes no source');
    const options = ['nosuid', 'nodev'];
    const size = kv.get('tmpfs-size');
    if (size !== undefined) options.push(`size=${bytes(flag, size)}`);
    const mode = kv.get('tmpfs-mode');
    if (mode !== undefined) {
      if (!/^[0-7]{1,4}$/.test(mode)) fail(`tmpfs-mode=${JSON.stringify(mode)}: expected an octal mode such as 1777`);
      options.push(`mode=${mode}`);
    }
    if (ro) options.push('ro');
    return { destination: target!, type: 'tmpfs', source: 'tmpfs', options };
  }
  return fail(`type ${JSON.stringify(type)} is not supported (bind or tmpfs; tsrund has no volumes)`);
}
