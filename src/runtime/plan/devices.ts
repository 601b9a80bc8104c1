// /dev in the container: the default nodes runc creates, linux.devices, the
// standard symlinks, and /dev/ptmx pointing at the container's devpts.
import * as k from '../../linux/constants.js';
import type { Device } from '../../oci/spec.js';
import { op, IGNORE, P, type PlanOp } from './ops.js';
import type { InitPlanInput } from './context.js';

const DEFAULT_DEVICES: Device[] = [
  { type: 'c', path: '/dev/null', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 },
  { type: 'c', path: '/dev/zero', major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0 },
  { type: 'c', path: '/dev/full', major: 1, minor: 7, fileMode: 0o666, uid: 0, gid: 0 },
  { type: 'c', path: '/dev/random', major: 1, minor: 8, fileMode: 0o666, uid: 0, gid: 0 },
  { type: 'c', path: '/dev/urandom', major: 1, minor: 9, fileMode: 0o666, uid: 0, gid: 0 },
  { type: 'c', path: '/dev/tty', major: 5, minor: 0, fileMode: 0o666, uid: 0, gid: 0 },
];

/** The devices a container gets: the defaults, overridden or extended by linux.devices. */
export function containerDevices(spec: { linux?: { devices?: Device[] } }): Device[] {
  const own = spec.linux?.devices ?? [];
  const byPath = new Map<string, Device>();
  for (const d of [...DEFAULT_DEVICES, ...own]) byPath.set(d.path, d);
  return [...byPath.values()];
}

function typeBits(type: Device['type']): number {
  return type === 'b' ? k.S_IFBLK : type === 'p' ? k.S_IFIFO : k.S_IFCHR;
}

export function planDevices(input: InitPlanInput, inUserNs: boolean): PlanOp[] {
  const ops: PlanOp[] = [];
  for (const d of containerDevices(input.spec)) {
    if (d.path === '/dev/ptmx') continue; // a symlink into the container's devpts, below
    const mode = (d.fileMode ?? 0o666) & 0o7777;
    if (inUserNs) {
      // mknod is not allowed in a user namespace: bind the host's node instead.
      ops.push(
        op('MOUNT', { source: d.path, target: d.path, flags: k.MS_BIND, fstype: '', data: '', pflags: P.SRC_OPEN | P.MKFILE, guard: '' }, `bind the host's ${d.path}`),
      );
      continue;
    }
    const numbers = d.type === 'p' ? '' : ` ${d.major}:${d.minor}`;
    ops.push(
      op(
        'MKNOD',
        { path: d.path, mode: typeBits(d.type) | mode, dev: d.type === 'p' ? 0 : k.makedev(d.major!, d.minor!), uid: d.uid ?? 0, gid: d.gid ?? 0 },
        `mknod ${d.path} (${d.type}${numbers}, mode ${mode.toString(8).padStart(4, '0')})`,
      ),
    );
  }
  const links: [string, string][] = [
    ['/proc/self/fd', '/dev/fd'],
    ['/proc/self/fd/0', '/dev/stdin'],
    ['/proc/self/fd/1', '/dev/stdout'],
    ['/proc/self/fd/2', '/dev/stderr'],
  ];
  if (input.host.procKcore) links.push(['/proc/kcore', '/dev/core']);
  for (const [target, path] of links) ops.push(op('SYMLINK', { target, path }, `symlink ${path} -> ${target}`, IGNORE.EEXIST));
  ops.push(
    op('UNLINK', { path: '/dev/ptmx' }, 'remove /dev/ptmx', IGNORE.ENOENT),
    op('SYMLINK', { target: 'pts/ptmx', path: '/dev/ptmx' }, 'symlink /dev/ptmx -> pts/ptmx'),
  );
  return ops;
}
