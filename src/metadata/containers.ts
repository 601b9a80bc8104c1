// Container records per namespace, with containerd's rules
// (metadata/containers.go): ids are identifiers, a runtime name and a spec are
// required, the spec is runtime-spec JSON under its type URL, snapshotter and
// runtime name are immutable, timestamps are the store's.
import { alreadyExists, invalidArgument, notFound, wrap } from '../errdefs.js';
import { validateIdentifier, validateLabels } from '../identifiers.js';
import { mapField, parseFilters, stringField, type FieldGetter } from '../events/filters.js';
import { SPEC_TYPE_URL } from '../typeurl.js';
import { namespaceRange, type MetadataDB } from './db.js';
import { NamespaceStore } from './namespaces.js';

/** An Any as stored: the type URL and the encoded value. */
export interface AnyValue {
  typeUrl: string;
  value: Uint8Array;
}

export interface ContainerRecord {
  id: string;
  labels: Record<string, string>;
  image: string;
  runtime: { name: string; options?: AnyValue | undefined };
  spec?: AnyValue | undefined;
  snapshotter: string;
  snapshotKey: string;
  createdAt: Date;
  updatedAt: Date;
  extensions: Record<string, AnyValue>;
}

/** What the caller gives at create and update (the store sets the times). */
export type ContainerInput = Omit<ContainerRecord, 'createdAt' | 'updatedAt'>;

/** The stored form (msgpack in LMDB); version 1. */
export interface StoredContainer {
  id: string;
  labels: Record<string, string>;
  image: string;
  runtime: { name: string; options?: AnyValue };
  spec?: AnyValue;
  snapshotter: string;
  snapshotKey: string;
  createdAt: Date;
  updatedAt: Date;
  extensions: Record<string, AnyValue>;
}

/** Field paths Update accepts (plus labels.<key> and extensions.<key>). */
const UPDATABLE = ['labels', 'spec', 'extensions', 'image', 'snapshotkey'] as const;

export class ContainerStore {
  private readonly namespaces: NamespaceStore;

  constructor(private readonly db: MetadataDB) {
    this.namespaces = new NamespaceStore(db);
  }

  get(namespace: string, id: string): ContainerRecord {
    const rec = this.db.containers.get([namespace, id]);
    if (!rec) throw notFound(`container ${JSON.stringify(id)} in namespace ${JSON.stringify(namespace)}`);
    return fromStored(rec);
  }

  /** Containers of the namespace in id order; filters on id, image, runtime.name, labels.<key>. */
  list(namespace: string, filters: readonly string[] = []): ContainerRecord[] {
    const filter = parseFilters(filters);
    const out: ContainerRecord[] = [];
    for (const { value } of this.db.containers.getRange(namespaceRange(namespace))) {
      const c = fromStored(value);
      if (filter.match(containerFields(c))) out.push(c);
    }
    return out;
  }

  create(namespace: string, input: ContainerInput): ContainerRecord {
    try {
      validateIdentifier(namespace);
    } catch (e) {
      throw wrap(e, 'namespace validation');
    }
    const c: ContainerRecord = { ...normalize(input), createdAt: new Date(), updatedAt: new Date() };
    c.updatedAt = c.createdAt;
    try {
      validateContainer(c);
    } catch (e) {
      throw wrap(e, 'create container failed validation');
    }
    this.db.update(() => {
      if (this.db.containers.doesExist([namespace, c.id])) throw alreadyExists(`container ${JSON.stringify(c.id)}`);
      this.namespaces.ensure(namespace);
      this.db.containers.putSync([namespace, c.id], toStored(c));
    });
    return c;
  }

  /**
   * Applies the field paths of input to the stored container: labels,
   * labels.<key>, spec, extensions, extensions.<key>, image, snapshotkey.
   * No paths: all of those, and snapshotter and runtime name must not change.
   */
  update(namespace: string, input: ContainerInput, fieldpaths: readonly string[] = []): ContainerRecord {
    if (!input.id) throw invalidArgument('must specify a container id');
    const given = normalize(input);
    return this.db.update(() => {
      const stored = this.db.containers.get([namespace, given.id]);
      if (!stored) throw notFound(`container ${JSON.stringify(given.id)}`);
      const updated = fromStored(stored);
      let paths = [...fieldpaths];
      if (paths.length === 0) {
        paths = [...UPDATABLE];
        if (updated.snapshotter !== given.snapshotter) throw invalidArgument('container.Snapshotter field is immutable');
        if (updated.runtime.name !== given.runtime.name) throw invalidArgument('container.Runtime.Name field is immutable');
      }
      for (const path of paths) {
        if (path.startsWith('labels.')) {
          const key = path.slice('labels.'.length);
          const v = given.labels[key];
          if (v) updated.labels[key] = v;
          else delete updated.labels[key];
          continue;
        }
        if (path.startsWith('extensions.')) {
          const key = path.slice('extensions.'.length);
          const v = given.extensions[key];
          if (v) updated.extensions[key] = v;
          else delete updated.extensions[key];
          continue;
        }
        switch (path) {
          case 'labels':
            updated.labels = { ...given.labels };
            break;
          case 'spec':
            updated.spec = given.spec;
            break;
          case 'extensions':
            updated.extensions = { ...given.extensions };
            break;
          case 'image':
            updated.image = given.image;
            break;
          case 'snapshotkey':
            updated.snapshotKey = given.snapshotKey;
            break;
          default:
            throw invalidArgument(`cannot update ${JSON.stringify(path)} field on ${JSON.stringify(given.id)}`);
        }
      }
      try {
        validateContainer(updated);
      } catch (e) {
        throw wrap(e, 'update failed validation');
      }
      updated.updatedAt = new Date();
      this.db.containers.putSync([namespace, updated.id], toStored(updated));
      return updated;
    });
  }

  delete(namespace: string, id: string): void {
    this.db.update(() => {
      if (!this.db.containers.removeSync([namespace, id])) throw notFound(`container ${JSON.stringify(id)} in namespace ${JSON.stringify(namespace)}`);
    });
  }
}

/** The filterable fields of a container, as containerd's adaptContainer. */
export function containerFields(c: ContainerRecord): FieldGetter {
  return (path) => {
    switch (path[0]) {
      case 'id':
        return stringField(c.id);
      case 'image':
        return stringField(c.image);
      case 'runtime':
        return path[1] === 'name' && path.length === 2 ? stringField(c.runtime.name) : undefined;
      case 'labels':
        return mapField(path.slice(1), c.labels);
      default:
        return undefined;
    }
  };
}

export function validateContainer(c: ContainerRecord): void {
  try {
    validateIdentifier(c.id);
  } catch (e) {
    throw wrap(e, 'container.ID');
  }
  for (const k of Object.keys(c.extensions)) {
    if (k === '') throw invalidArgument('container.Extension keys must not be zero-length');
  }
  validateLabels(c.labels, 'containers.Labels');
  if (!c.runtime.name) throw invalidArgument('container.Runtime.Name must be set');
  if (!c.spec) throw invalidArgument('container.Spec must be set');
  validateSpec(c.spec);
  if (c.snapshotKey && !c.snapshotter) throw invalidArgument('container.Snapshotter must be set if container.SnapshotKey is set');
}

/** The spec must be runtime-spec JSON (an object) under its type URL. */
function validateSpec(spec: AnyValue): void {
  if (spec.typeUrl !== SPEC_TYPE_URL) {
    throw invalidArgument(`container.Spec: type URL ${JSON.stringify(spec.typeUrl)} is not ${JSON.stringify(SPEC_TYPE_URL)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(spec.value));
  } catch (e) {
    throw invalidArgument(`container.Spec: value is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalidArgument('container.Spec: value is not a JSON object (a runtime-spec Spec)');
  }
}

function normalize(c: ContainerInput): ContainerInput {
  return {
    id: c.id,
    labels: nonEmpty(c.labels ?? {}),
    image: c.image ?? '',
    runtime: { name: c.runtime?.name ?? '', options: c.runtime?.options },
    spec: c.spec,
    snapshotter: c.snapshotter ?? '',
    snapshotKey: c.snapshotKey ?? '',
    extensions: { ...(c.extensions ?? {}) },
  };
}

function nonEmpty(labels: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) if (v !== '') out[k] = v;
  return out;
}

const anyOut = (a: AnyValue): AnyValue => ({ typeUrl: a.typeUrl, value: new Uint8Array(a.value) });

function toStored(c: ContainerRecord): StoredContainer {
  const s: StoredContainer = {
    id: c.id,
    labels: c.labels,
    image: c.image,
    runtime: { name: c.runtime.name },
    snapshotter: c.snapshotter,
    snapshotKey: c.snapshotKey,
    createdAt: c.createdAt,
    updatedAt: c.updatedAt,
    extensions: Object.fromEntries(Object.entries(c.extensions).map(([k, v]) => [k, anyOut(v)])),
  };
  if (c.runtime.options) s.runtime.options = anyOut(c.runtime.options);
  if (c.spec) s.spec = anyOut(c.spec);
  return s;
}

function fromStored(s: StoredContainer): ContainerRecord {
  return {
    id: s.id,
    labels: { ...(s.labels ?? {}) },
    image: s.image ?? '',
    runtime: { name: s.runtime?.name ?? '', options: s.runtime?.options ? anyOut(s.runtime.options) : undefined },
    spec: s.spec ? anyOut(s.spec) : undefined,
    snapshotter: s.snapshotter ?? '',
    snapshotKey: s.snapshotKey ?? '',
    createdAt: new Date(s.createdAt),
    updatedAt: new Date(s.updatedAt),
    extensions: Object.fromEntries(Object.entries(s.extensions ?? {}).map(([k, v]) => [k, anyOut(v)])),
  };
}
