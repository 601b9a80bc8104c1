// Leases (containerd's metadata/leases.go): named holds on resources
// (content blobs, ingests, snapshots) that keep the garbage collector off
// them while a client works. Each lease is one record, [namespace, id],
// with its labels and the resources it holds.
import { alreadyExists, invalidArgument, notFound, notImplemented } from '../errdefs.js';
import { digestProblem } from '../content/digest.js';
import { validateLabels } from '../identifiers.js';
import { parseFilters, mapField, stringField } from '../events/filters.js';
import { namespaceRange, type MetadataDB } from './db.js';
import type { NamespaceStore } from './namespaces.js';

export interface LeaseResource {
  id: string;
  /** "content", "ingests" or "snapshots/<snapshotter>" */
  type: string;
}

export interface Lease {
  id: string;
  createdAt: Date;
  labels: Record<string, string>;
}

export interface StoredLease {
  createdAt: Date;
  labels: Record<string, string>;
  resources: LeaseResource[];
}

/**
 * containerd's parseLeaseResource: "content" (the id a digest), "ingests",
 * or "snapshots/<snapshotter>"; another type is NotImplemented.
 */
export function validateResource(r: LeaseResource): void {
  const keys = r.type.split('/');
  switch (keys[0]) {
    case 'content':
    case 'ingests':
      if (keys.length !== 1) throw invalidArgument(`invalid resource type ${r.type}`);
      if (keys[0] === 'content') {
        const problem = digestProblem(r.id);
        if (problem) throw invalidArgument(`invalid content resource id ${r.id}: ${problem}`);
      }
      return;
    case 'snapshots':
      if (keys.length !== 2) throw invalidArgument(`invalid snapshot resource type ${r.type}`);
      return;
    default:
      throw notImplemented(`resource type ${r.type} not supported yet`);
  }
}

export class LeaseStore {
  constructor(
    private readonly db: MetadataDB,
    private readonly namespaces: NamespaceStore,
  ) {}

  create(namespace: string, id: string, labels: Record<string, string> = {}): Lease {
    // containerd takes any non-empty id (ctr makes "<ns>-<base64url>", which is no identifier)
    if (id === '') throw invalidArgument('lease id must be provided');
    validateLabels(labels, 'lease.Labels');
    const rec: StoredLease = { createdAt: new Date(), labels: { ...labels }, resources: [] };
    this.db.update(() => {
      if (this.db.leases.doesExist([namespace, id])) throw alreadyExists(`lease ${JSON.stringify(id)}`);
      this.namespaces.ensure(namespace);
      this.db.leases.putSync([namespace, id], rec);
    });
    return { id, createdAt: rec.createdAt, labels: rec.labels };
  }

  delete(namespace: string, id: string): void {
    this.db.update(() => {
      if (!this.db.leases.removeSync([namespace, id])) throw notFound(`lease ${JSON.stringify(id)}`);
    });
  }

  get(namespace: string, id: string): StoredLease | undefined {
    return this.db.leases.get([namespace, id]);
  }

  /** Leases of the namespace; filters on id and labels.<key>. */
  list(namespace: string, filters: readonly string[] = []): Lease[] {
    const filter = parseFilters(filters);
    const out: Lease[] = [];
    for (const { key, value } of this.db.leases.getRange(namespaceRange(namespace))) {
      const lease: Lease = { id: key[1], createdAt: new Date(value.createdAt), labels: { ...value.labels } };
      const match = filter.match((path) => {
        if (path[0] === 'id') return path.length === 1 ? stringField(lease.id) : undefined;
        if (path[0] === 'labels') return mapField(path.slice(1), lease.labels);
        return undefined;
      });
      if (match) out.push(lease);
    }
    return out;
  }

  addResource(namespace: string, id: string, r: LeaseResource): void {
    validateResource(r);
    this.db.update(() => {
      const rec = this.db.leases.get([namespace, id]);
      if (!rec) throw notFound(`lease ${JSON.stringify(id)}`);
      if (rec.resources.some((x) => x.id === r.id && x.type === r.type)) return;
      this.db.leases.putSync([namespace, id], { ...rec, resources: [...rec.resources, { id: r.id, type: r.type }] });
    });
  }

  deleteResource(namespace: string, id: string, r: LeaseResource): void {
    validateResource(r);
    this.db.update(() => {
      const rec = this.db.leases.get([namespace, id]);
      if (!rec) throw notFound(`lease ${JSON.stringify(id)}`);
      this.db.leases.putSync([namespace, id], { ...rec, resources: rec.resources.filter((x) => !(x.id === r.id && x.type === r.type)) });
    });
  }

  listResources(namespace: string, id: string): LeaseResource[] {
    const rec = this.db.leases.get([namespace, id]);
    if (!rec) throw notFound(`lease ${JSON.stringify(id)}`);
    return rec.resources.map((r) => ({ ...r }));
  }
}
