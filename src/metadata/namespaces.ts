// Namespaces and their labels, with containerd's rules (metadata/namespaces.go,
// services/namespaces/local.go): names are identifiers; a namespace that was
// never created reads as existing with no labels (dockerd and ctr rely on
// Get answering for it); label updates create it; Delete refuses one that
// still holds objects.
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from '../errdefs.js';
import { validateIdentifier, validateLabels } from '../identifiers.js';
import { parseFilters, mapField, stringField } from '../events/filters.js';
import type { MetadataDB } from './db.js';

export interface NamespaceRecord {
  labels: Record<string, string>;
  createdAt: Date;
}

export interface Namespace {
  name: string;
  labels: Record<string, string>;
}

export class NamespaceStore {
  constructor(private readonly db: MetadataDB) {}

  /** Whether the namespace was created (explicitly or by an object in it). */
  exists(name: string): boolean {
    return this.db.namespaces.doesExist(name);
  }

  /** The namespace's labels; {} for one that does not exist (as containerd). */
  labels(name: string): Record<string, string> {
    return { ...(this.db.namespaces.get(name)?.labels ?? {}) };
  }

  /** Namespaces in name order; filters on name and labels.<key>. */
  list(filters: readonly string[] = []): Namespace[] {
    const filter = parseFilters(filters);
    const out: Namespace[] = [];
    for (const { key, value } of this.db.namespaces.getRange()) {
      const ns = { name: key, labels: { ...value.labels } };
      const match = filter.match((path) => {
        if (path[0] === 'name') return path.length === 1 ? stringField(ns.name) : undefined;
        if (path[0] === 'labels') return mapField(path.slice(1), ns.labels);
        return undefined;
      });
      if (match) out.push(ns);
    }
    return out;
  }

  create(name: string, labels: Record<string, string> = {}): Namespace {
    validateIdentifier(name);
    validateLabels(labels, 'namespace.Labels');
    const kept = nonEmpty(labels);
    this.db.update(() => {
      if (this.db.namespaces.doesExist(name)) throw alreadyExists(`namespace ${JSON.stringify(name)}`);
      this.db.namespaces.putSync(name, { labels: kept, createdAt: new Date() });
    });
    return { name, labels: kept };
  }

  /** Creates the namespace with no labels unless it exists; inside an update(). */
  ensure(name: string): void {
    if (!this.db.namespaces.doesExist(name)) this.db.namespaces.putSync(name, { labels: {}, createdAt: new Date() });
  }

  /**
   * Sets labels: with paths ("labels.<key>" only) just those keys (an
   * absent or empty value removes the key), without paths all of them.
   * A namespace that does not exist is created, as containerd does.
   */
  update(name: string, labels: Record<string, string>, paths: readonly string[] = []): Namespace {
    validateIdentifier(name);
    validateLabels(labels, 'namespace.Labels');
    for (const p of paths) if (!p.startsWith('labels.')) throw invalidArgument(`cannot update ${JSON.stringify(p)} field`);
    return this.db.update(() => {
      const rec = this.db.namespaces.get(name) ?? { labels: {}, createdAt: new Date() };
      let next: Record<string, string>;
      if (paths.length) {
        next = { ...rec.labels };
        for (const p of paths) {
          const key = p.slice('labels.'.length);
          const v = labels[key];
          if (v) next[key] = v;
          else delete next[key];
        }
      } else {
        next = nonEmpty(labels);
      }
      this.db.namespaces.putSync(name, { labels: next, createdAt: rec.createdAt });
      return { name, labels: next };
    });
  }

  delete(name: string): void {
    this.db.update(() => {
      const held = this.db.namespaceContents(name);
      if (held.length) throw failedPrecondition(`namespace ${JSON.stringify(name)} must be empty, but it still has ${held.join(', ')}`);
      if (!this.db.namespaces.doesExist(name)) throw notFound(`namespace ${JSON.stringify(name)}`);
      this.db.namespaces.removeSync(name);
    });
  }
}

function nonEmpty(labels: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) if (v !== '') out[k] = v;
  return out;
}
