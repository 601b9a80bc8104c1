// Test bundles built from Debian's busybox-static: a rootfs with one symlink
// per applet and a config from tsrunc's own default spec.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultSpec } from '../../src/oci/default-spec.js';
import type { Spec } from '../../src/oci/spec.js';

export function busybox(): string | undefined {
  for (const p of ['/bin/busybox', '/usr/bin/busybox']) {
    if (existsSync(p)) {
      const info = execFileSync('file', ['-L', p], { encoding: 'utf8' });
      if (/statically linked|static-pie/.test(info)) return p;
    }
  }
  return undefined;
}

export interface Bundle {
  dir: string;
  rootfs: string;
  spec: Spec;
  /** rewrites config.json from `spec` */
  save(): void;
}

let template: string | undefined;
const toRemove: string[] = [];
process.once('exit', () => {
  for (const dir of toRemove) rmSync(dir, { recursive: true, force: true });
});

function rootfsTemplate(): string {
  if (template) return template;
  const bb = busybox();
  if (!bb) throw new Error('busybox-static is not installed (apt-get install busybox-static)');
  const dir = mkdtempSync(join(tmpdir(), 'tsrunc-rootfs-'));
  chmodSync(dir, 0o755);
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'home/tester', 'var/tmp', 'run']) {
    mkdirSync(join(dir, d), { recursive: true });
  }
  chmodSync(join(dir, 'tmp'), 0o1777);
  cpSync(bb, join(dir, 'bin/busybox'));
  const applets = execFileSync(bb, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const a of applets) if (a !== 'busybox' && !existsSync(join(dir, 'bin', a))) symlinkSync('busybox', join(dir, 'bin', a));
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\ntester:x:1000:1000:tester:/home/tester:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\ntester:x:1000:\nnogroup:x:65534:\n');
  writeFileSync(join(dir, 'etc/hostname'), 'busybox\n');
  template = dir;
  toRemove.push(dir);
  return dir;
}

/** A fresh bundle in its own temp dir: default spec, terminal off, the given args. */
export function makeBundle(args: string[], mutate?: (s: Spec) => void): Bundle {
  const dir = mkdtempSync(join(tmpdir(), 'tsrunc-bundle-'));
  // A user namespace's root (an unprivileged host uid) must reach the rootfs.
  chmodSync(dir, 0o755);
  const rootfs = join(dir, 'rootfs');
  cpSync(rootfsTemplate(), rootfs, { recursive: true, verbatimSymlinks: true });
  const spec = defaultSpec();
  spec.process!.terminal = false;
  spec.process!.args = args;
  mutate?.(spec);
  const bundle: Bundle = {
    dir,
    rootfs,
    spec,
    save() {
      writeFileSync(join(dir, 'config.json'), JSON.stringify(spec, null, 2));
    },
  };
  bundle.save();
  toRemove.push(dir);
  return bundle;
}
