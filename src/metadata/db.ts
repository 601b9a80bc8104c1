// The metadata database: one LMDB environment (<root>/meta.lmdb) holding
// what containerd keeps in bolt. Each kind of object is a named database;
// namespaced objects use [namespace, key] keys so that a namespace's objects
// are one key range. Writes go through update(): one synchronous LMDB write
// transaction, committed and synced before it returns, rolled back whole if
// the callback throws — so a crash leaves either all of a change or none.
//
// Adding a kind (images, leases, content labels): open its database in the
// constructor (or with openNamespaced) and it counts for "namespace must be
// empty" checks; write a store class beside containers.ts.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { NamespaceRecord } from './namespaces.js';
import type { StoredContainer } from './containers.js';
import type { StoredLease } from './leases.js';

/** Bumped when the stored layout changes; open() refuses newer ones. */
export const SCHEMA_VERSION = 1;

export type NamespacedKey = [namespace: string, key: string];

interface Namespaced {
  /** what containerd calls it in "namespace X must be empty, but it still has ..." */
  what: string;
  db: Database<unknown, NamespacedKey>;
}

export class MetadataDB {
  readonly env: RootDatabase;
  readonly meta: Database<unknown, string>;
  readonly namespaces: Database<NamespaceRecord, string>;
  readonly containers: Database<StoredContainer, NamespacedKey>;
  readonly leases: Database<StoredLease, NamespacedKey>;
  private readonly namespaced: Namespaced[] = [];
  private closed = false;

  private constructor(readonly path: string) {
    this.env = open({ path, maxDbs: 32, noSubdir: true });
    this.meta = this.env.openDB<unknown, string>({ name: 'meta' });
    this.namespaces = this.env.openDB<NamespaceRecord, string>({ name: 'namespaces' });
    this.containers = this.openNamespaced<StoredContainer>('containers', 'containers');
    this.leases = this.openNamespaced<StoredLease>('leases', 'leases');
    const version = this.meta.get('schema');
    if (version === undefined) {
      this.update(() => this.meta.putSync('schema', SCHEMA_VERSION));
    } else if (typeof version !== 'number' || version > SCHEMA_VERSION) {
      const v = JSON.stringify(version);
      this.env.close().catch(() => {});
      throw new Error(`${path}: metadata schema version ${v} is newer than this tsrund understands (${SCHEMA_VERSION})`);
    }
  }

  /** Opens (creating) <dir>/meta.lmdb; dir is created with mode 0711. */
  static open(dir: string): MetadataDB {
    mkdirSync(dir, { recursive: true, mode: 0o711 });
    return new MetadataDB(join(dir, 'meta.lmdb'));
  }

  /** Opens a database of per-namespace objects ([namespace, key] keys). */
  openNamespaced<V>(name: string, what: string): Database<V, NamespacedKey> {
    const db = this.env.openDB<V, NamespacedKey>({ name });
    this.namespaced.push({ what, db: db as Database<unknown, NamespacedKey> });
    return db;
  }

  /**
   * Runs fn in one write transaction: its puts and removes (use the Sync
   * variants) commit together and are on disk when update returns; if fn
   * throws, nothing of it is kept and the error propagates.
   */
  update<T>(fn: () => T): T {
    if (this.closed) throw new Error('metadata database is closed');
    return this.env.transactionSync(fn);
  }

  /** The kinds of objects a namespace still holds ("containers", ...). */
  namespaceContents(namespace: string): string[] {
    const out: string[] = [];
    for (const { what, db } of this.namespaced) {
      for (const _ of db.getKeys({ ...namespaceRange(namespace), limit: 1 })) {
        out.push(what);
        break;
      }
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.env.close();
  }
}

/** The key range of one namespace's objects in a namespaced database. */
export function namespaceRange(namespace: string): { start: NamespacedKey | [string]; end: NamespacedKey } {
  // keys are identifiers (ASCII), so U+FFFF sorts after every one of them
  return { start: [namespace], end: [namespace, '\uffff'] };
}
