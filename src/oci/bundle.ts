import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { SyscallError, fromNodeError } from '../linux/syscall-error.js';
import { ConfigError, parseSpec } from './validate.js';
import type { Spec } from './spec.js';

export interface Bundle {
  /** absolute path of the bundle directory */
  dir: string;
  /** absolute path of the root filesystem */
  rootfs: string;
  spec: Spec;
}

/** Reads and validates DIR/config.json; the rootfs must be a directory. */
export function loadBundle(dir: string): Bundle {
  const abs = resolve(dir);
  let text: string;
  try {
    text = readFileSync(join(abs, 'config.json'), 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') {
      const bundleExists = (() => {
        try {
          return statSync(abs).isDirectory();
        } catch {
          return false;
        }
      })();
      throw new ConfigError('', bundleExists ? `not found in bundle ${abs}` : `bundle directory ${abs} does not exist`);
    }
    throw fromNodeError(e, `read ${join(abs, 'config.json')}`);
  }
  const spec = parseSpec(text);
  const rootPath = spec.root!.path;
  const rootfs = isAbsolute(rootPath) ? rootPath : join(abs, rootPath);
  let isDir = false;
  try {
    isDir = statSync(rootfs).isDirectory();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code !== 'ENOENT') throw new SyscallError('stat', err.errno ?? 0, rootfs);
    throw new ConfigError('root.path', `rootfs ${rootfs} does not exist`);
  }
  if (!isDir) throw new ConfigError('root.path', `rootfs ${rootfs} is not a directory`);
  return { dir: abs, rootfs, spec };
}
