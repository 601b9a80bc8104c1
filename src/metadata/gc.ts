// The garbage collector, on containerd's model (metadata/gc.go and
// gc/gc.go): a mark and sweep over every namespace.
//
// Roots: images (-> their target blob), containers (-> their snapshot),
// leases that have not expired (containerd.io/gc.expire) -> every resource
// they hold (only those, without what they reference, when the lease has
// containerd.io/gc.flat), blobs and snapshots labelled containerd.io/gc.root,
// ingests that have not expired.
// References: labels containerd.io/gc.ref.content[(.|/)<anything>] = <digest>
// and containerd.io/gc.ref.snapshot.<snapshotter>[/<anything>] = <key> on
// images, containers, blobs and snapshots; a snapshot's parent; an ingest's
// expected digest.
// Swept: what no root reaches: the namespace's record of a blob (and the blob
// once no namespace records it), snapshots (children before parents, through
// the snapshotter), ingests, expired leases; blobs and ingest directories on
// disk that nothing records.
//
// The marking and the metadata part of the sweep run in one synchronous LMDB
// transaction, so no call changes references in between; snapshots are
// listed before it and removed after it.
import { rmSync } from 'node:fs';
import type { ContentStore } from '../content/store.js';
import type { Metadata } from './index.js';

export const LABEL_GC_ROOT = 'containerd.io/gc.root';
export const LABEL_GC_EXPIRE = 'containerd.io/gc.expire';
export const LABEL_GC_FLAT = 'containerd.io/gc.flat';
export const LABEL_GC_REF_CONTENT = 'containerd.io/gc.ref.content';
export const LABEL_GC_REF_SNAPSHOT = 'containerd.io/gc.ref.snapshot.';

/** What the collector needs of a snapshotter. */
export interface CollectableSnapshotter {
  /** every snapshot of the namespace: key, parent key, labels */
  list(namespace: string): Promise<Array<{ name: string; parent?: string | undefined; labels: Record<string, string> }>>;
  remove(namespace: string, key: string): Promise<void>;
}

export interface GcResult {
  contentRecords: number;
  blobs: number;
  snapshots: number;
  ingests: number;
  leases: number;
  durationMs: number;
}

export interface CollectorDeps {
  metadata: Metadata;
  content: ContentStore;
  /** the snapshotters by name (may grow after the collector is made) */
  snapshotters: () => ReadonlyMap<string, CollectableSnapshotter>;
  log?: { debug(msg: string, f?: Record<string, unknown>): void; warn(msg: string, f?: Record<string, unknown>): void };
}

type NodeKey = string;
const contentNode = (ns: string, digest: string): NodeKey => `c\0${ns}\0${digest}`;
const snapshotNode = (ns: string, sn: string, key: string): NodeKey => `s\0${ns}\0${sn}\0${key}`;
const ingestNode = (ns: string, ref: string): NodeKey => `i\0${ns}\0${ref}`;

/** The references a set of labels makes (containerd's sendLabelRefs). */
export function labelRefs(ns: string, labels: Record<string, string>): NodeKey[] {
  const out: NodeKey[] = [];
  for (const [k, v] of Object.entries(labels)) {
    // containerd.io/gc.ref.content, or a name after "." or "/" (ignored)
    if (k.startsWith(LABEL_GC_REF_CONTENT) && (k.length === LABEL_GC_REF_CONTENT.length || './'.includes(k[LABEL_GC_REF_CONTENT.length]!))) out.push(contentNode(ns, v));
    else if (k.startsWith(LABEL_GC_REF_SNAPSHOT)) {
      const rest = k.slice(LABEL_GC_REF_SNAPSHOT.length);
      const sn = rest.split('/')[0]!;
      if (sn) out.push(snapshotNode(ns, sn, v));
    }
  }
  return out;
}

function expired(labels: Record<string, string>, now: number): boolean {
  const v = labels[LABEL_GC_EXPIRE];
  if (!v) return false;
  const t = Date.parse(v);
  return Number.isFinite(t) && t <= now;
}

export class GarbageCollector {
  private running: Promise<GcResult> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private interval: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly deps: CollectorDeps) {}

  /** Collects now (after a collection already running, once more); resolves when done. */
  collect(): Promise<GcResult> {
    if (this.running) {
      this.again = true;
      return this.running.then(() => this.collect());
    }
    this.again = false;
    const p = this.run().finally(() => {
      if (this.running === p) this.running = undefined;
    });
    this.running = p;
    return p;
  }

  /** Collects soon (debounced): after a delete without sync. */
  schedule(delayMs = 1000): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.collect().catch((e: unknown) => this.deps.log?.warn('garbage collection failed', { error: (e as Error).message }));
    }, delayMs);
    this.timer.unref();
  }

  /** Collects every periodMs (containerd's scheduler also runs on its own). */
  startPeriodic(periodMs: number): void {
    if (this.interval) clearInterval(this.interval);
    this.interval = setInterval(() => this.schedule(0), periodMs);
    this.interval.unref();
  }

  /** No more scheduled runs; waits for one in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.interval) clearInterval(this.interval);
    this.timer = this.interval = undefined;
    await this.running?.catch(() => {});
  }

  private async run(): Promise<GcResult> {
    const started = Date.now();
    const { metadata, content } = this.deps;
    const snapshotters = this.deps.snapshotters();
    const namespaces = metadata.namespaces.list().map((n) => n.name);

    // snapshots first (async listing), then the synchronous mark and sweep
    const snapshots = new Map<NodeKey, { ns: string; sn: string; key: string; parent: string | undefined; labels: Record<string, string> }>();
    for (const [sn, s] of snapshotters) {
      for (const ns of namespaces) {
        for (const info of await s.list(ns)) snapshots.set(snapshotNode(ns, sn, info.name), { ns, sn, key: info.name, parent: info.parent || undefined, labels: info.labels });
      }
    }

    const result: GcResult = { contentRecords: 0, blobs: 0, snapshots: 0, ingests: 0, leases: 0, durationMs: 0 };
    const toRemove: Array<{ ns: string; sn: string; key: string; parent: string | undefined }> = [];
    const toRemoveIngests: Array<[string, string]> = [];
    metadata.db.update(() => {
      const now = Date.now();
      const marked = new Set<NodeKey>();
      const stack: NodeKey[] = [];
      const mark = (n: NodeKey, follow = true): void => {
        if (marked.has(n)) return;
        marked.add(n);
        if (follow) stack.push(n);
      };
      const expiredLeases: Array<[string, string]> = [];

      for (const ns of namespaces) {
        for (const lease of metadata.leases.list(ns)) {
          if (expired(lease.labels, now)) {
            expiredLeases.push([ns, lease.id]);
            continue;
          }
          const flat = LABEL_GC_FLAT in lease.labels;
          for (const r of metadata.leases.listResources(ns, lease.id)) {
            if (r.type === 'content') mark(contentNode(ns, r.id), !flat);
            else if (r.type === 'ingests') mark(ingestNode(ns, r.id), !flat);
            else if (r.type.startsWith('snapshots/')) mark(snapshotNode(ns, r.type.slice('snapshots/'.length), r.id), !flat);
          }
        }
        for (const img of metadata.images.list(ns)) {
          mark(contentNode(ns, img.target.digest));
          for (const n of labelRefs(ns, img.labels)) mark(n);
        }
        for (const c of metadata.containers.list(ns)) {
          if (c.snapshotter && c.snapshotKey) mark(snapshotNode(ns, c.snapshotter, c.snapshotKey));
          for (const n of labelRefs(ns, c.labels)) mark(n);
        }
      }
      for (const { key, value } of content.records.getRange()) if (LABEL_GC_ROOT in value.labels) mark(contentNode(key[0], key[1]));
      for (const [n, s] of snapshots) if (LABEL_GC_ROOT in s.labels) mark(n);
      for (const { namespace, ref, record } of content.allIngests()) {
        if (record.expireAt && new Date(record.expireAt).getTime() > now) mark(ingestNode(namespace, ref));
      }

      // follow references
      while (stack.length) {
        const n = stack.pop()!;
        const [kind, ns] = n.split('\0') as [string, string];
        if (kind === 'c') {
          const digest = n.split('\0')[2]!;
          const rec = content.records.get([ns, digest]);
          if (rec) for (const r of labelRefs(ns, rec.labels)) mark(r);
        } else if (kind === 'i') {
          // an ingest holds the blob it expects (shared content being written)
          const expected = content.ingests.get([ns, n.split('\0')[2]!])?.expected;
          if (expected) mark(contentNode(ns, expected));
        } else if (kind === 's') {
          const s = snapshots.get(n);
          if (s) {
            if (s.parent) mark(snapshotNode(ns, s.sn, s.parent));
            for (const r of labelRefs(ns, s.labels)) mark(r);
          }
        }
      }

      // sweep the metadata
      for (const { key } of content.records.getRange()) {
        if (marked.has(contentNode(key[0], key[1]))) continue;
        content.records.removeSync(key);
        result.contentRecords++;
      }
      for (const { namespace, ref } of content.allIngests()) {
        if (marked.has(ingestNode(namespace, ref)) || content.isLocked(namespace, ref)) continue;
        toRemoveIngests.push([namespace, ref]);
      }
      for (const [ns, id] of expiredLeases) {
        metadata.leases.delete(ns, id);
        result.leases++;
      }
      for (const [n, s] of snapshots) if (!marked.has(n)) toRemove.push(s);
    });

    // blobs no namespace records any more, and those never recorded. This
    // loop is synchronous, so no commit can record a blob between the check
    // and the unlink; one that has renamed its blob in but not yet recorded
    // it holds it.
    const recorded = new Set<string>();
    for (const key of content.records.getKeys()) recorded.add(key[1]);
    for (const digest of content.blobsOnDisk()) {
      if (recorded.has(digest) || content.isHeld(digest)) continue;
      try {
        rmSync(content.blobPath(digest), { force: true });
        result.blobs++;
      } catch (e) {
        this.deps.log?.warn('gc: cannot remove blob', { digest, error: (e as Error).message });
      }
    }
    for (const [ns, ref] of toRemoveIngests) {
      if (content.isLocked(ns, ref)) continue; // a writer took it up since the mark
      await content.abort(ns, ref).catch(() => {});
      result.ingests++;
    }
    for (const dir of content.orphanIngestDirs()) rmSync(dir, { recursive: true, force: true });

    // snapshots: children before parents
    const pending = [...toRemove];
    while (pending.length) {
      const parents = new Set(pending.map((s) => `${s.ns}\0${s.sn}\0${s.parent ?? ''}`));
      const leaves = pending.filter((s) => !parents.has(`${s.ns}\0${s.sn}\0${s.key}`));
      if (leaves.length === 0) break;
      for (const s of leaves) {
        pending.splice(pending.indexOf(s), 1);
        const sn = snapshotters.get(s.sn);
        if (!sn) continue;
        try {
          await sn.remove(s.ns, s.key);
          result.snapshots++;
        } catch (e) {
          this.deps.log?.warn('gc: cannot remove snapshot', { namespace: s.ns, snapshotter: s.sn, key: s.key, error: (e as Error).message });
        }
      }
    }
    result.durationMs = Date.now() - started;
    this.deps.log?.debug('garbage collected', { ...result });
    return result;
  }
}
