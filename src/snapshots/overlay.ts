// The overlayfs snapshotter, on containerd's model (snapshots/overlay):
// every snapshot owns <root>/snapshots/<n>/{fs,work}; an active snapshot's
// fs is the overlay upperdir, its parents' fs dirs the lowerdirs (nearest
// first). The records (keys, parents by name, labels, leases) live in the
// metadata store; this module owns the directories and the mounts.
//
// Mounts as containerd 1.6 returns them: no parent -> a bind of the
// snapshot's own fs (rw, or ro for a view); a view of a single layer -> a
// read-only bind of that layer; otherwise an overlay with index=off.
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { failedPrecondition, invalidArgument, isNotFound } from '../errdefs.js';
import type { Metadata } from '../metadata/index.js';
import { SnapshotStore, type ResolvedSnapshot, type SnapshotInfo, type SnapshotKind, type SnapshotOptions } from '../metadata/snapshots.js';

export type { SnapshotInfo, SnapshotKind, SnapshotOptions } from '../metadata/snapshots.js';

/** A mount as containerd.types.Mount carries it. */
export interface SnapshotMount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

export interface Usage {
  /** bytes of disk the snapshot's own layer takes (blocks, hard links once) */
  size: number;
  inodes: number;
}

export const OVERLAYFS = 'overlayfs';

/** Also what the garbage collector needs of a snapshotter (list, remove). */
export class OverlaySnapshotter {
  readonly name = OVERLAYFS;
  private readonly snapshotsDir: string;

  /**
   * root: the snapshotter's directory (<daemon root>/snapshots/overlayfs).
   * Leftovers of a crash (staging and removal dirs) are removed here.
   */
  constructor(
    readonly root: string,
    readonly store: SnapshotStore,
  ) {
    this.snapshotsDir = join(root, 'snapshots');
    mkdirSync(this.snapshotsDir, { recursive: true, mode: 0o700 });
    for (const e of readdirSync(root)) if (e.startsWith('new-') || e.startsWith('rm-')) rmSync(join(root, e), { recursive: true, force: true });
  }

  /** The daemon's snapshotter; directories that a crash left without a record are removed. */
  static open(daemonRoot: string, metadata: Metadata): OverlaySnapshotter {
    const sn = new OverlaySnapshotter(join(daemonRoot, 'snapshots', OVERLAYFS), new SnapshotStore(metadata.db, metadata.namespaces, metadata.leases, OVERLAYFS));
    sn.cleanup();
    return sn;
  }

  /** The directory of a snapshot's files: the upperdir of an active one. */
  upperDir(id: number): string {
    return join(this.snapshotsDir, String(id), 'fs');
  }

  private workDir(id: number): string {
    return join(this.snapshotsDir, String(id), 'work');
  }

  prepare(namespace: string, key: string, parent: string, opts: SnapshotOptions = {}): SnapshotMount[] {
    return this.mountsOf(this.create(namespace, 'active', key, parent, opts));
  }

  /**
   * A directory to write a layer into before its parent is committed (layers
   * unpacked side by side): stage().fs, later made an active snapshot's upper
   * dir by prepareStaged, or removed with dropStaged. A crash leaves it to
   * the next start's cleanup (new-*).
   */
  stage(): { dir: string; fs: string } {
    const dir = mkdtempSync(join(this.root, 'new-'));
    mkdirSync(join(dir, 'fs'), { mode: 0o755 });
    return { dir, fs: join(dir, 'fs') };
  }

  /** prepare, with the staged directory's fs (its layer already written) as the upper dir; the staged dir is used up either way. */
  prepareStaged(namespace: string, key: string, parent: string, staged: string, opts: SnapshotOptions = {}): SnapshotMount[] {
    return this.mountsOf(this.create(namespace, 'active', key, parent, opts, staged));
  }

  dropStaged(staged: string): void {
    rmSync(staged, { recursive: true, force: true });
  }

  view(namespace: string, key: string, parent: string, opts: SnapshotOptions = {}): SnapshotMount[] {
    return this.mountsOf(this.create(namespace, 'view', key, parent, opts));
  }

  /** Mounts of an active snapshot or a view; committed ones have none (containerd: FailedPrecondition). */
  mounts(namespace: string, key: string): SnapshotMount[] {
    const s = this.store.resolve(namespace, key);
    if (s.info.kind === 'committed') throw failedPrecondition(`requested snapshot ${key} not active or view`);
    return this.mountsOf(s);
  }

  /** The snapshot with its upper dir and its parents' dirs (nearest first): for writing a layer into it. */
  resolveDirs(namespace: string, key: string): { snapshot: ResolvedSnapshot; upper: string; parents: string[] } {
    const s = this.store.resolve(namespace, key);
    return { snapshot: s, upper: this.upperDir(s.id), parents: s.parentIds.map((id) => this.upperDir(id)) };
  }

  /** Active key -> committed name; the usage is measured now and kept. */
  commit(namespace: string, name: string, key: string, opts: SnapshotOptions = {}): SnapshotInfo {
    const rec = this.store.get(namespace, key);
    const usage = rec.kind === 'active' ? diskUsage(this.upperDir(rec.id)) : { size: 0, inodes: 0 };
    return this.store.commit(namespace, name, key, usage, opts);
  }

  /** Removes the record (refused while children exist), then the directory. */
  async remove(namespace: string, key: string, lease?: string): Promise<void> {
    const id = this.store.remove(namespace, key, lease);
    this.removeDir(id);
  }

  stat(namespace: string, key: string): SnapshotInfo {
    return this.store.stat(namespace, key);
  }

  update(namespace: string, name: string, labels: Record<string, string>, fieldpaths: readonly string[] = []): SnapshotInfo {
    return this.store.update(namespace, name, labels, fieldpaths);
  }

  async list(namespace: string, filters: readonly string[] = []): Promise<SnapshotInfo[]> {
    return this.store.list(namespace, filters);
  }

  /** Committed snapshots: measured at commit; active ones: measured now; views take nothing. */
  usage(namespace: string, key: string): Usage {
    const rec = this.store.get(namespace, key);
    if (rec.kind === 'committed') return { size: rec.size ?? 0, inodes: rec.inodes ?? 0 };
    if (rec.kind === 'view') return { size: 0, inodes: 0 };
    return diskUsage(this.upperDir(rec.id));
  }

  /** Whether a committed snapshot named key exists in the namespace. */
  async exists(namespace: string, key: string): Promise<boolean> {
    try {
      return this.store.get(namespace, key).kind === 'committed';
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  /** Removes directories that no record names (what a crash between the two left). */
  cleanup(): number {
    const used = this.store.ids();
    let removed = 0;
    for (const e of readdirSync(this.snapshotsDir)) {
      const id = Number(e);
      if (String(id) === e && used.has(id)) continue;
      rmSync(join(this.snapshotsDir, e), { recursive: true, force: true });
      removed++;
    }
    return removed;
  }

  private create(namespace: string, kind: 'active' | 'view', key: string, parent: string, opts: SnapshotOptions, staged?: string): ResolvedSnapshot {
    // made outside the transaction, renamed into place inside it: a failure
    // on either side leaves no directory behind
    const staging = staged ?? mkdtempSync(join(this.root, 'new-'));
    try {
      if (!key) throw invalidArgument('snapshot key must not be empty');
      if (!staged) mkdirSync(join(staging, 'fs'), { mode: 0o755 });
      if (kind === 'active') mkdirSync(join(staging, 'work'), { mode: 0o711 });
      return this.store.create(namespace, kind, key, parent, opts, (id) => renameSync(staging, join(this.snapshotsDir, String(id))));
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }

  private removeDir(id: number): void {
    const dir = join(this.snapshotsDir, String(id));
    if (!existsSync(dir)) return;
    // renamed first so that a crash mid-removal leaves no half snapshot under its number
    const gone = join(this.root, `rm-${id}`);
    renameSync(dir, gone);
    rmSync(gone, { recursive: true, force: true });
  }

  private mountsOf(s: ResolvedSnapshot): SnapshotMount[] {
    const kind = s.info.kind;
    if (s.parentIds.length === 0) {
      return [{ type: 'bind', source: this.upperDir(s.id), options: [kind === 'view' ? 'ro' : 'rw', 'rbind'] }];
    }
    const options = ['index=off'];
    if (kind === 'active') options.push(`workdir=${this.workDir(s.id)}`, `upperdir=${this.upperDir(s.id)}`);
    else if (s.parentIds.length === 1) return [{ type: 'bind', source: this.upperDir(s.parentIds[0]!), options: ['ro', 'rbind'] }];
    options.push(`lowerdir=${s.parentIds.map((id) => this.upperDir(id)).join(':')}`);
    return [{ type: 'overlay', source: 'overlay', options }];
  }
}

/** containerd's fs.DiskUsage: blocks in use (each inode once) and the number of inodes. */
export function diskUsage(dir: string): Usage {
  const seen = new Set<bigint>();
  let size = 0n;
  const walk = (path: string): void => {
    const st = lstatSync(path, { bigint: true });
    if (seen.has(st.ino)) return;
    seen.add(st.ino);
    size += st.blocks * 512n;
    if (st.isDirectory()) for (const e of readdirSync(path)) walk(join(path, e));
  };
  walk(dir);
  return { size: Number(size), inodes: seen.size };
}

/** The kind as snapshots.v1 names it. */
export function kindNumber(kind: SnapshotKind): number {
  return kind === 'view' ? 1 : kind === 'active' ? 2 : 3;
}
