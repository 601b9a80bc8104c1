// Snapshot records of one snapshotter, per namespace (containerd's
// metadata/snapshot.go and snapshots/storage together): [namespace, key] ->
// the backend directory number, the kind, the parent's name (in the same
// namespace), labels, times, and for committed snapshots the usage measured
// at commit. Backend numbers come from one counter per snapshotter and are
// never reused. Every change is one write transaction; a lease named by the
// caller gets the snapshot added (and the active key removed at commit), in
// that same transaction.
import type { Database } from 'lmdb';
import { alreadyExists, failedPrecondition, invalidArgument, isNotFound, notFound } from '../errdefs.js';
import { validateLabels } from '../identifiers.js';
import { mapField, parseFilters, type FieldGetter } from '../events/filters.js';
import { namespaceRange, type MetadataDB, type NamespacedKey } from './db.js';
import type { LeaseStore } from './leases.js';
import type { NamespaceStore } from './namespaces.js';

export type SnapshotKind = 'view' | 'active' | 'committed';

export interface StoredSnapshot {
  /** backend directory number: <root>/snapshots/<id> */
  id: number;
  kind: SnapshotKind;
  /** the parent's name in the same namespace, "" for none */
  parent: string;
  labels: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
  /** committed snapshots: usage measured at commit */
  size?: number;
  inodes?: number;
}

export interface SnapshotInfo {
  name: string;
  parent: string;
  kind: SnapshotKind;
  createdAt: Date;
  updatedAt: Date;
  labels: Record<string, string>;
}

/** A snapshot with its whole chain resolved to backend numbers. */
export interface ResolvedSnapshot {
  info: SnapshotInfo;
  id: number;
  /** backend numbers of the parents, nearest first */
  parentIds: number[];
  size?: number;
  inodes?: number;
}

export interface SnapshotOptions {
  labels?: Record<string, string> | undefined;
  /** the containerd-lease of the call: the new snapshot is added to it */
  lease?: string | undefined;
}

/** LMDB keys hold at most 1978 bytes; keep room for the namespace. */
const MAX_KEY_BYTES = 1024;

export class SnapshotStore {
  readonly records: Database<StoredSnapshot, NamespacedKey>;
  private readonly seqKey: string;
  /** the lease resource type: "snapshots/<snapshotter>" */
  readonly resourceType: string;

  constructor(
    private readonly db: MetadataDB,
    private readonly namespaces: NamespaceStore,
    private readonly leases: LeaseStore | undefined,
    readonly snapshotter: string,
  ) {
    this.records = db.openNamespaced<StoredSnapshot>(`snapshots.${snapshotter}`, 'snapshots');
    this.seqKey = `snapshots.${snapshotter}.seq`;
    this.resourceType = `snapshots/${snapshotter}`;
  }

  get(namespace: string, key: string): StoredSnapshot {
    const rec = this.records.get([namespace, key]);
    if (!rec) throw notFound(`snapshot ${key} does not exist`);
    return rec;
  }

  stat(namespace: string, key: string): SnapshotInfo {
    return infoOf(key, this.get(namespace, key));
  }

  /** The snapshot and its parents' backend numbers (nearest first). */
  resolve(namespace: string, key: string): ResolvedSnapshot {
    const rec = this.get(namespace, key);
    const parentIds: number[] = [];
    const seen = new Set<string>([key]);
    for (let p = rec.parent; p; ) {
      if (seen.has(p)) throw new Error(`snapshot ${key}: parent chain loops at ${p}`);
      seen.add(p);
      const parent = this.records.get([namespace, p]);
      if (!parent) throw notFound(`parent snapshot ${p} of ${key} does not exist`);
      parentIds.push(parent.id);
      p = parent.parent;
    }
    return { info: infoOf(key, rec), id: rec.id, parentIds, size: rec.size, inodes: rec.inodes };
  }

  /**
   * Records a new active or view snapshot, in one transaction with
   * placeDir(id) (which moves the prepared directory into place; if it
   * throws, nothing is recorded). The parent must be committed.
   */
  create(namespace: string, kind: 'active' | 'view', key: string, parent: string, opts: SnapshotOptions, placeDir: (id: number) => void): ResolvedSnapshot {
    checkKey(key, 'key');
    const labels = nonEmpty(opts.labels ?? {});
    validateLabels(labels, 'info.Labels');
    return this.db.update(() => {
      if (this.records.doesExist([namespace, key])) throw alreadyExists(`snapshot ${JSON.stringify(key)}`);
      if (parent) {
        const p = this.records.get([namespace, parent]);
        if (!p) throw notFound(`parent snapshot ${parent} does not exist`);
        if (p.kind !== 'committed') throw invalidArgument(`failed to create snapshot: parent ${JSON.stringify(parent)} is not committed snapshot`);
      }
      this.namespaces.ensure(namespace);
      this.addToLease(namespace, opts.lease, key);
      const id = this.nextId();
      const now = new Date();
      this.records.putSync([namespace, key], { id, kind, parent, labels, createdAt: now, updatedAt: now });
      placeDir(id);
      return this.resolve(namespace, key);
    });
  }

  /** Turns active snapshot key into committed snapshot name (same backend directory). */
  commit(namespace: string, name: string, key: string, usage: { size: number; inodes: number }, opts: SnapshotOptions): SnapshotInfo {
    checkKey(name, 'name');
    const labels = nonEmpty(opts.labels ?? {});
    validateLabels(labels, 'info.Labels');
    return this.db.update(() => {
      if (this.records.doesExist([namespace, name])) throw alreadyExists(`snapshot ${JSON.stringify(name)}`);
      const rec = this.records.get([namespace, key]);
      if (!rec) throw notFound(`snapshot ${key} does not exist`);
      if (rec.kind !== 'active') throw failedPrecondition(`failed to commit snapshot ${key}: snapshot ${key} is not active`);
      this.addToLease(namespace, opts.lease, name);
      const now = new Date();
      const committed: StoredSnapshot = { id: rec.id, kind: 'committed', parent: rec.parent, labels, createdAt: now, updatedAt: now, ...usage };
      this.records.putSync([namespace, name], committed);
      this.records.removeSync([namespace, key]);
      this.removeFromLease(namespace, opts.lease, key);
      return infoOf(name, committed);
    });
  }

  /** Removes the record; returns its backend number (the caller removes the directory). */
  remove(namespace: string, key: string, lease?: string): number {
    return this.db.update(() => {
      const rec = this.records.get([namespace, key]);
      if (!rec) throw notFound(`snapshot ${key} does not exist`);
      if (this.hasChildren(namespace, key)) throw failedPrecondition('cannot remove snapshot with child');
      this.records.removeSync([namespace, key]);
      this.removeFromLease(namespace, lease, key);
      return rec.id;
    });
  }

  /**
   * Labels with containerd's field paths: "labels" or none (all of them),
   * "labels.<key>" (that key; an empty value removes it). Nothing else.
   */
  update(namespace: string, name: string, labels: Record<string, string>, fieldpaths: readonly string[] = []): SnapshotInfo {
    if (!name) throw invalidArgument('snapshot name must be set');
    return this.db.update(() => {
      const rec = this.records.get([namespace, name]);
      if (!rec) throw notFound(`snapshot ${name} does not exist`);
      let next: Record<string, string> = { ...rec.labels };
      if (fieldpaths.length === 0) next = { ...labels };
      for (const path of fieldpaths) {
        if (path.startsWith('labels.')) {
          const k = path.slice('labels.'.length);
          next[k] = labels[k] ?? '';
        } else if (path === 'labels') {
          next = { ...labels };
        } else {
          throw invalidArgument(`cannot update ${JSON.stringify(path)} field on snapshot ${JSON.stringify(name)}`);
        }
      }
      next = nonEmpty(next);
      validateLabels(next, 'info.Labels');
      const updated: StoredSnapshot = { ...rec, labels: next, updatedAt: new Date() };
      this.records.putSync([namespace, name], updated);
      return infoOf(name, updated);
    });
  }

  /** Snapshots of a namespace in key order, matching any of the filters (name, parent, kind, labels.<key>). */
  list(namespace: string, filters: readonly string[] = []): SnapshotInfo[] {
    const filter = parseFilters(filters);
    const out: SnapshotInfo[] = [];
    for (const { key, value } of this.records.getRange(namespaceRange(namespace))) {
      const info = infoOf(key[1], value);
      if (filter.match(snapshotFields(info))) out.push(info);
    }
    return out;
  }

  /** Every snapshot of every namespace (for the garbage collector). */
  *all(): Generator<{ namespace: string; info: SnapshotInfo; id: number }> {
    for (const { key, value } of this.records.getRange()) yield { namespace: key[0], info: infoOf(key[1], value), id: value.id };
  }

  /** Backend numbers in use, in every namespace. */
  ids(): Set<number> {
    const out = new Set<number>();
    for (const { value } of this.records.getRange()) out.add(value.id);
    return out;
  }

  hasChildren(namespace: string, key: string): boolean {
    for (const { value } of this.records.getRange(namespaceRange(namespace))) if (value.parent === key) return true;
    return false;
  }

  private nextId(): number {
    const cur = this.db.meta.get(this.seqKey);
    const next = (typeof cur === 'number' ? cur : 0) + 1;
    this.db.meta.putSync(this.seqKey, next);
    return next;
  }

  private addToLease(namespace: string, lease: string | undefined, key: string): void {
    if (!lease) return;
    if (!this.leases) throw failedPrecondition('leases are not available');
    this.leases.addResource(namespace, lease, { id: key, type: this.resourceType });
  }

  private removeFromLease(namespace: string, lease: string | undefined, key: string): void {
    if (!lease || !this.leases) return;
    try {
      this.leases.deleteResource(namespace, lease, { id: key, type: this.resourceType });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}

/** The filterable fields of a snapshot, as containerd's adaptSnapshot. */
export function snapshotFields(info: SnapshotInfo): FieldGetter {
  return (path) => {
    switch (path[0]) {
      case 'kind':
        return path.length === 1 ? info.kind : undefined;
      case 'name':
        return path.length === 1 ? info.name : undefined;
      case 'parent':
        return path.length === 1 ? info.parent : undefined;
      case 'labels':
        return mapField(path.slice(1), info.labels);
      default:
        return undefined;
    }
  };
}

function infoOf(name: string, r: StoredSnapshot): SnapshotInfo {
  return {
    name,
    parent: r.parent,
    kind: r.kind,
    createdAt: new Date(r.createdAt),
    updatedAt: new Date(r.updatedAt),
    labels: { ...r.labels },
  };
}

function checkKey(key: string, what: string): void {
  if (!key) throw invalidArgument(`snapshot ${what} must not be empty`);
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw invalidArgument(`snapshot ${what} is longer than ${MAX_KEY_BYTES} bytes`);
}

function nonEmpty(labels: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) if (v !== '') out[k] = v;
  return out;
}
