// tsrund's configuration: defaults, then a --config FILE (TOML when it ends
// in .toml, JSON otherwise; laid out like containerd's config.toml: root,
// state, [grpc] address, [debug] level), then the command-line flags.
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { isLogLevel, type LogLevel } from './log.js';

export interface DaemonConfig {
  /** unix socket to serve on */
  address: string;
  /** persistent state: meta.lmdb, uuid, later content and snapshots */
  root: string;
  /** volatile state: task bundles, shim sockets */
  state: string;
  logLevel: LogLevel;
}

export const DEFAULT_CONFIG: DaemonConfig = {
  address: '/run/tsrund/tsrund.sock',
  root: '/var/lib/tsrund',
  state: '/run/tsrund',
  logLevel: 'info',
};

export type ConfigOverrides = Partial<DaemonConfig>;

/**
 * Reads a config file, JSON or (*.toml) TOML:
 *   { "root": "/var/lib/tsrund", "state": "/run/tsrund",
 *     "grpc": { "address": "/run/tsrund/tsrund.sock" }, "debug": { "level": "info" } }
 *   root = "/var/lib/tsrund"  /  [grpc] address = "..."  /  [debug] level = "info"
 * Unknown keys (containerd's others: plugins, ...) are reported through
 * warn; wrong types are errors.
 */
export function readConfigFile(path: string, warn: (msg: string) => void = () => {}): ConfigOverrides {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`--config ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const toml = path.endsWith('.toml');
  let doc: unknown;
  try {
    doc = toml ? parseToml(text) : JSON.parse(text);
  } catch (e) {
    throw new Error(`--config ${path}: not valid ${toml ? 'TOML' : 'JSON'}: ${(e as Error).message.split('\n')[0]}`);
  }
  return parseConfig(doc, path, warn);
}

export function parseConfig(doc: unknown, where: string, warn: (msg: string) => void = () => {}): ConfigOverrides {
  const out: ConfigOverrides = {};
  if (!isObject(doc)) throw new Error(`${where}: the configuration must be an object`);
  const str = (v: unknown, key: string): string => {
    if (typeof v !== 'string' || v === '') throw new Error(`${where}: ${key} must be a non-empty string`);
    return v;
  };
  for (const [k, v] of Object.entries(doc)) {
    switch (k) {
      case 'version':
        break;
      case 'root':
        out.root = str(v, 'root');
        break;
      case 'state':
        out.state = str(v, 'state');
        break;
      case 'grpc':
        if (!isObject(v)) throw new Error(`${where}: grpc must be an object`);
        for (const [gk, gv] of Object.entries(v)) {
          if (gk === 'address') out.address = str(gv, 'grpc.address');
          else warn(`${where}: unknown key grpc.${gk} ignored`);
        }
        break;
      case 'debug':
        if (!isObject(v)) throw new Error(`${where}: debug must be an object`);
        for (const [dk, dv] of Object.entries(v)) {
          if (dk === 'level') out.logLevel = logLevel(str(dv, 'debug.level'), `${where}: debug.level`);
          else warn(`${where}: unknown key debug.${dk} ignored`);
        }
        break;
      default:
        warn(`${where}: unknown key ${k} ignored`);
    }
  }
  return out;
}

export function logLevel(s: string, what: string): LogLevel {
  if (!isLogLevel(s)) throw new Error(`${what}: "${s}" is not a log level (trace, debug, info, warn, error, fatal, panic)`);
  return s;
}

/** Defaults < file < flags; paths made absolute. */
export function resolveConfig(file: ConfigOverrides, flags: ConfigOverrides): DaemonConfig {
  const c: DaemonConfig = { ...DEFAULT_CONFIG, ...defined(file), ...defined(flags) };
  for (const k of ['address', 'root', 'state'] as const) {
    let v = c[k];
    if (k === 'address') v = v.replace(/^unix:\/\//, '').replace(/^unix:/, '');
    c[k] = isAbsolute(v) ? v : resolve(v);
  }
  return c;
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
