// The container's filesystem in its mount namespace: propagation, the rootfs
// bind, spec mounts, /dev, masked and read-only paths, pivot_root, and the
// read-only remounts that come last. Every in-root path is resolved by the
// child with openat2(RESOLVE_IN_ROOT) and mounted through its fd.
import { statSync, statfsSync } from 'node:fs';
import { isAbsolute, join, posix } from 'node:path';
import * as k from '../../linux/constants.js';
import { mountOf } from '../../linux/mountinfo.js';
import { ConfigError } from '../../oci/validate.js';
import type { Mount } from '../../oci/spec.js';
import { op, IGNORE, P, type PlanOp } from './ops.js';
import { parseMountOptions, describeFlags, PROPAGATION, type MountOptions } from './mount-options.js';
import { planDevices } from './devices.js';
import { mountLabelOption } from './security.js';
import type { InitPlanInput } from './context.js';
import type { NamespacePlan } from './namespaces.js';

/** A clean absolute container path: "/a/../b//c/" -> "/b/c". */
export function cleanPath(p: string): string {
  const n = posix.normalize(p.startsWith('/') ? p : `/${p}`);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

// Mount points inside /proc that lxcfs-style setups may cover (runc's list).
const PROC_ALLOWED = new Set([
  '/proc/cpuinfo',
  '/proc/diskstats',
  '/proc/meminfo',
  '/proc/stat',
  '/proc/swaps',
  '/proc/uptime',
  '/proc/loadavg',
  '/proc/slabinfo',
  '/proc/sys/kernel/ns_last_pid',
  '/proc/sys/crypto/fips_enabled',
]);

const under = (p: string, dir: string) => p === dir || p.startsWith(`${dir}/`);

const PROC_SUPER_MAGIC = 0x9fa0;

export interface RootfsOps {
  /** before pivot_root: propagation, rootfs bind, mounts, /dev */
  prepare: PlanOp[];
  /** masked and read-only paths, the last thing before pivot_root */
  protect: PlanOp[];
  /** pivot_root (or its no-pivot and no-mount-namespace variants) and what follows it at once */
  enter: PlanOp[];
  /** the read-only remounts and root propagation that come after the console is set up */
  finalize: PlanOp[];
}

interface MountCtx {
  input: InitPlanInput;
  ns: NamespacePlan;
  /** context="..." for SELinux, added to the data of filesystem mounts */
  label: string | undefined;
  /** remounts deferred until /dev and tmpfs contents are in place */
  deferredReadonly: PlanOp[];
}

function where(i: number): string {
  return `mounts[${i}]`;
}

/** ops that apply propagation and recursive attributes to a mounted target */
function afterMount(dest: string, o: MountOptions): PlanOp[] {
  const ops: PlanOp[] = [];
  for (const p of o.propagation) {
    const name = Object.entries(PROPAGATION).find(([, v]) => v === p)?.[0] ?? String(p);
    ops.push(op('MOUNT', { source: '', target: dest, flags: p, fstype: '', data: '', pflags: 0, guard: '' }, `make ${dest} ${name}`));
  }
  if (o.recSet || o.recClear) {
    ops.push(
      op('MOUNT_SETATTR', { target: dest, set: o.recSet, clear: o.recClear, propagation: 0, pflags: P.RECURSIVE }, `set recursive mount attributes on ${dest}`),
    );
  }
  return ops;
}

function bindSource(m: Mount, i: number, bundle: string): { source: string; isDir: boolean } {
  const raw = m.source;
  if (!raw) throw new ConfigError(`${where(i)}.source`, 'a bind mount needs a source');
  const source = isAbsolute(raw) ? raw : join(bundle, raw);
  try {
    return { source, isDir: statSync(source).isDirectory() };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(`${where(i)}.source`, `bind source ${source}: ${code === 'ENOENT' ? 'does not exist' : code}`);
  }
}

function planBind(ctx: MountCtx, m: Mount, i: number, dest: string, o: MountOptions, guard: string, noSymlinks: number): PlanOp[] {
  const { source, isDir } = bindSource(m, i, ctx.input.bundle);
  const rec = o.flags & k.MS_REC;
  const ops: PlanOp[] = [
    op(
      'MOUNT',
      { source, target: dest, flags: k.MS_BIND | rec, fstype: '', data: '', pflags: P.SRC_OPEN | (isDir ? P.MKDIR : P.MKFILE) | noSymlinks, guard },
      `${rec ? 'rbind' : 'bind'} ${source} on ${dest}`,
    ),
  ];
  // A bind keeps the source's flags until a remount sets the requested ones.
  const extra = o.flags & ~(k.MS_BIND | k.MS_REC | k.MS_REMOUNT);
  if (extra || o.cleared) {
    ops.push(
      op('REMOUNT', { target: dest, flags: k.MS_BIND | extra, pflags: P.KEEP_LOCKED }, `remount ${dest} ${describeFlags(extra) || 'with the requested flags'}`),
    );
  }
  return [...ops, ...afterMount(dest, o)];
}

function planCgroupMount(ctx: MountCtx, m: Mount, i: number, dest: string, o: MountOptions): PlanOp[] {
  const { input, ns } = ctx;
  const mode = input.host.cgroupMode;
  const newCgroupNs = input.spec.linux?.namespaces?.some((n) => n.type === 'cgroup' && !n.path) ?? false;
  const ro = o.flags & k.MS_RDONLY;
  const base = o.flags & ~k.MS_RDONLY;
  if (mode === 'unified') {
    if (ns.inUserNs && !newCgroupNs) {
      // cgroup2 cannot be mounted from a user namespace without its own cgroup namespace.
      const source = input.cgroupDir ?? '/sys/fs/cgroup';
      return planBind(ctx, { ...m, source, options: [...(m.options ?? []), 'rbind'] }, i, dest, { ...o, flags: o.flags | k.MS_BIND | k.MS_REC }, '/proc', 0);
    }
    return [
      op('MOUNT', { source: 'cgroup2', target: dest, flags: o.flags, fstype: 'cgroup2', data: o.data, pflags: P.MKDIR, guard: '/proc' }, `mount cgroup2 on ${dest}`),
      ...afterMount(dest, o),
    ];
  }
  // Hybrid and legacy hosts: a tmpfs with the container's own cgroup2
  // directory (when there is one) at unified/.
  const ops: PlanOp[] = [
    op(
      'MOUNT',
      { source: 'tmpfs', target: dest, flags: base, fstype: 'tmpfs', data: 'mode=755', pflags: P.MKDIR, guard: '/proc' },
      `mount tmpfs on ${dest} (cgroup v1 host layout)`,
    ),
  ];
  if (input.cgroupDir) {
    const u = `${dest}/unified`;
    ops.push(
      op(
        'MOUNT',
        { source: input.cgroupDir, target: u, flags: k.MS_BIND, fstype: '', data: '', pflags: P.SRC_OPEN | P.MKDIR, guard: '/proc' },
        `bind the container's cgroup ${input.cgroupDir} on ${u}`,
      ),
      op('REMOUNT', { target: u, flags: k.MS_BIND | base | ro, pflags: P.KEEP_LOCKED }, `remount ${u} ${describeFlags(base | ro)}`),
    );
  }
  ops.push(...afterMount(dest, o));
  if (ro) ctx.deferredReadonly.push(op('REMOUNT', { target: dest, flags: k.MS_BIND | base | k.MS_RDONLY, pflags: P.KEEP_LOCKED }, `remount ${dest} read-only`));
  return ops;
}

function planMount(ctx: MountCtx, m: Mount, i: number): PlanOp[] {
  const dest = cleanPath(m.destination);
  if (dest === '/') throw new ConfigError(`${where(i)}.destination`, 'mounting on top of the container root is not supported');
  const o = parseMountOptions(m.options);
  const type = m.type ?? '';
  if (o.idmap !== 'none') throw new ConfigError(`${where(i)}.options`, 'idmapped mounts are not supported yet');
  if (o.tmpcopyup) throw new ConfigError(`${where(i)}.options`, 'tmpcopyup is not supported yet');
  if (o.flags & k.MS_REMOUNT) throw new ConfigError(`${where(i)}.options`, '"remount" is not supported in a container mount');

  // Inside /proc only procfs itself and a few lxcfs-style files may be mounted,
  // and never through a symlink (CVE-2019-16884, CVE-2023-27561).
  const inProc = under(dest, '/proc');
  if (inProc && dest !== '/proc' && !PROC_ALLOWED.has(dest)) {
    throw new ConfigError(`${where(i)}.destination`, `${dest} is inside /proc, where only procfs may be mounted`);
  }
  if (dest === '/proc' && type !== 'proc' && !(type === 'bind' || o.flags & k.MS_BIND)) {
    throw new ConfigError(`${where(i)}.type`, `only procfs may be mounted on /proc, not "${type}"`);
  }
  if (dest === '/proc' && (type === 'bind' || o.flags & k.MS_BIND)) {
    // A bind on /proc must bring a procfs (runc's checkProcMount).
    const { source } = bindSource(m, i, ctx.input.bundle);
    if (statfsSync(source).type !== PROC_SUPER_MAGIC) throw new ConfigError(`${where(i)}.source`, `${source} is not a procfs, so it cannot be mounted on /proc`);
  }
  const guard = inProc ? '' : '/proc';
  const noSymlinks = inProc || type === 'proc' || type === 'sysfs' ? P.NO_SYMLINKS : 0;

  if (type === 'bind' || o.flags & k.MS_BIND) return planBind(ctx, m, i, dest, o, guard, noSymlinks);
  if (type === 'cgroup' || type === 'cgroup2') return planCgroupMount(ctx, m, i, dest, o);
  if (!type) throw new ConfigError(`${where(i)}.type`, 'is required for a mount that is not a bind mount');

  // tmpfs and /dev stay writable until their contents are in place.
  const defer = (type === 'tmpfs' || dest === '/dev') && o.flags & k.MS_RDONLY;
  const labelled = ctx.label && type !== 'proc' && type !== 'sysfs' ? [o.data, ctx.label].filter(Boolean).join(',') : o.data;
  const flags = defer ? o.flags & ~k.MS_RDONLY : o.flags;
  const ops: PlanOp[] = [
    op(
      'MOUNT',
      {
        source: m.source || type,
        target: dest,
        flags,
        fstype: type,
        data: labelled,
        pflags: P.MKDIR | noSymlinks | (type === 'tmpfs' ? P.TMPFS_MODE : 0),
        guard,
      },
      `mount ${type} on ${dest}${describeFlags(flags) ? ` (${describeFlags(flags)})` : ''}`,
    ),
    ...afterMount(dest, o),
  ];
  if (defer) {
    ctx.deferredReadonly.push(op('REMOUNT', { target: dest, flags: k.MS_BIND | o.flags, pflags: P.KEEP_LOCKED }, `remount ${dest} read-only`));
  }
  return ops;
}

function rootPropagation(input: InitPlanInput): number {
  const p = input.spec.linux?.rootfsPropagation;
  return p ? PROPAGATION[p]! : 0;
}

/** --no-pivot: hide the host's full procfs and sysfs mounts before MS_MOVE + chroot. */
function hideHostProcAndSys(input: InitPlanInput): PlanOp[] {
  const ops: PlanOp[] = [];
  for (const m of input.host.mounts) {
    if (m.root !== '/' || (m.fsType !== 'proc' && m.fsType !== 'sysfs') || under(m.mountPoint, input.rootfs)) continue;
    ops.push(
      op('MOUNT', { source: '', target: m.mountPoint, flags: k.MS_SLAVE | k.MS_REC, fstype: '', data: '', pflags: P.HOST, guard: '' }, `make ${m.mountPoint} rslave`, IGNORE.ENOENT),
      op('UMOUNT', { path: m.mountPoint, flags: k.MNT_DETACH }, `unmount the host's ${m.fsType} at ${m.mountPoint}`, IGNORE.ENOENT | IGNORE.EINVAL),
    );
  }
  return ops;
}

export function planRootfs(input: InitPlanInput, ns: NamespacePlan): RootfsOps {
  const { spec, rootfs } = input;
  const hasMountNs = spec.linux?.namespaces?.some((n) => n.type === 'mount') ?? false;
  if (!hasMountNs) {
    const needs = (spec.mounts?.length ?? 0) > 0 || spec.linux?.maskedPaths?.length || spec.linux?.readonlyPaths?.length || spec.root?.readonly;
    if (needs) {
      throw new ConfigError('linux.namespaces', 'a mount namespace is needed for mounts, maskedPaths, readonlyPaths or root.readonly');
    }
    return {
      prepare: [op('OPEN_ROOT', { path: rootfs }, `open the rootfs ${rootfs}`), op('OPEN_PROC', { path: '/proc' }, 'keep a handle on /proc')],
      protect: [],
      enter: [op('CHROOT', {}, `chroot into ${rootfs}`)],
      finalize: [],
    };
  }

  const prop = rootPropagation(input);
  const prepare: PlanOp[] = [
    op('MOUNT', { source: '', target: '/', flags: prop || k.MS_SLAVE | k.MS_REC, fstype: '', data: '', pflags: P.HOST, guard: '' }, `make / ${spec.linux?.rootfsPropagation ?? 'rslave'}`),
  ];
  // pivot_root needs the parent of the new root not to be shared, and a
  // shared parent would leak our rootfs bind to the host.
  const parent = mountOf(rootfs, input.host.mounts);
  if (parent) {
    const pflag = prop & k.MS_SLAVE ? k.MS_SLAVE : k.MS_PRIVATE;
    prepare.push(
      op('MOUNT', { source: '', target: parent.mountPoint, flags: pflag, fstype: '', data: '', pflags: P.HOST, guard: '' }, `make ${parent.mountPoint} (parent of the rootfs) ${pflag === k.MS_SLAVE ? 'slave' : 'private'}`),
    );
  }
  const rootOps = [
    op('MOUNT', { source: rootfs, target: rootfs, flags: k.MS_BIND | k.MS_REC, fstype: '', data: '', pflags: P.HOST, guard: '' }, `bind the rootfs ${rootfs} onto itself`),
    op('OPEN_ROOT', { path: rootfs }, `open the rootfs ${rootfs}`),
  ];
  if (ns.inUserNs) {
    // The mapped root is an unprivileged uid on the host.
    for (const o of rootOps) o.hint = "the container's root user must be able to reach the rootfs: check the permissions of its parent directories";
  }
  prepare.push(...rootOps, op('OPEN_PROC', { path: '/proc' }, 'keep a handle on /proc'));

  const ctx: MountCtx = { input, ns, label: mountLabelOption(spec, input.host), deferredReadonly: [] };
  (spec.mounts ?? []).forEach((m, i) => prepare.push(...planMount(ctx, m, i)));

  const setupDev = !(spec.mounts ?? []).some((m) => cleanPath(m.destination) === '/dev' && (m.type === 'bind' || parseMountOptions(m.options).flags & k.MS_BIND));
  if (setupDev) prepare.push(...planDevices(input, ns.inUserNs));

  const protect: PlanOp[] = [];
  for (const p of spec.linux?.maskedPaths ?? []) {
    protect.push(op('MASK_PATH', { path: cleanPath(p) }, `mask ${cleanPath(p)}`, IGNORE.ENOENT));
  }
  for (const raw of spec.linux?.readonlyPaths ?? []) {
    const p = cleanPath(raw);
    protect.push(
      op('MOUNT', { source: p, target: p, flags: k.MS_BIND | k.MS_REC, fstype: '', data: '', pflags: P.SRC_IN_ROOT, guard: '' }, `bind ${p} onto itself`, IGNORE.ENOENT),
      op('REMOUNT', { target: p, flags: k.MS_BIND | k.MS_RDONLY, pflags: P.KEEP_LOCKED }, `remount ${p} read-only`, IGNORE.ENOENT),
    );
  }

  const enter: PlanOp[] = input.noPivot
    ? [...hideHostProcAndSys(input), op('MOVE_ROOT', {}, `move ${rootfs} to / and chroot (--no-pivot)`)]
    : [op('PIVOT_ROOT', {}, `pivot_root into ${rootfs}`)];
  if (prop && !(prop & (k.MS_PRIVATE | k.MS_SLAVE))) {
    enter.push(op('MOUNT', { source: '', target: '/', flags: prop, fstype: '', data: '', pflags: P.HOST, guard: '' }, `make the container root ${spec.linux!.rootfsPropagation}`));
  }
  if (setupDev) enter.push(op('REOPEN_DEVNULL', {}, "point stdio that is /dev/null at the container's /dev/null"));

  const finalize = [...ctx.deferredReadonly];
  if (spec.root?.readonly) {
    finalize.push(op('REMOUNT', { target: '/', flags: k.MS_BIND | k.MS_RDONLY, pflags: P.HOST | P.KEEP_LOCKED }, 'remount the container root read-only'));
  }
  return { prepare, protect, enter, finalize };
}
