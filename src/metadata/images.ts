// Image records per namespace, with containerd's rules (metadata/images.go):
// a name, a target descriptor with a valid digest, a size above zero and a
// media type; labels; the store sets the times. The name is any non-empty
// string (a reference), so keys are [namespace, name].
import { alreadyExists, invalidArgument, notFound } from '../errdefs.js';
import { validateIdentifier, validateLabels } from '../identifiers.js';
import { mapField, parseFilters, stringField, type FieldGetter } from '../events/filters.js';
import { isDigest } from '../content/digest.js';
import { namespaceRange, type MetadataDB, type NamespacedKey } from './db.js';
import type { Database } from 'lmdb';
import type { NamespaceStore } from './namespaces.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations: Record<string, string>;
}

export interface ImageRecord {
  name: string;
  labels: Record<string, string>;
  target: Descriptor;
  createdAt: Date;
  updatedAt: Date;
}

export type ImageInput = Omit<ImageRecord, 'createdAt' | 'updatedAt'>;

export class ImageStore {
  readonly db: Database<ImageRecord, NamespacedKey>;

  constructor(
    private readonly meta: MetadataDB,
    private readonly namespaces: NamespaceStore,
  ) {
    this.db = meta.openNamespaced<ImageRecord>('images', 'images');
  }

  get(namespace: string, name: string): ImageRecord {
    const rec = this.db.get([namespace, name]);
    if (!rec) throw notFound(`image ${JSON.stringify(name)}`);
    return fromStored(rec);
  }

  /** Images of the namespace in name order; filters on name, target.digest, target.mediatype, labels.<k>, annotations.<k>. */
  list(namespace: string, filters: readonly string[] = []): ImageRecord[] {
    const filter = parseFilters(filters);
    const out: ImageRecord[] = [];
    for (const { value } of this.db.getRange(namespaceRange(namespace))) {
      const img = fromStored(value);
      if (filter.match(imageFields(img))) out.push(img);
    }
    return out;
  }

  create(namespace: string, input: ImageInput): ImageRecord {
    try {
      validateIdentifier(namespace);
    } catch (e) {
      throw invalidArgument(`namespace validation: ${(e as { detail?: string }).detail ?? (e as Error).message}`);
    }
    const now = new Date();
    const img: ImageRecord = { ...normalize(input), createdAt: now, updatedAt: now };
    validateImage(img);
    this.meta.update(() => {
      if (this.db.doesExist([namespace, img.name])) throw alreadyExists(`image ${JSON.stringify(img.name)}`);
      this.namespaces.ensure(namespace);
      this.db.putSync([namespace, img.name], img);
    });
    return img;
  }

  /**
   * Applies the field paths of input: labels, labels.<k>, target,
   * annotations, annotations.<k>; none: labels and target.
   */
  update(namespace: string, input: ImageInput, fieldpaths: readonly string[] = []): ImageRecord {
    if (!input.name) throw invalidArgument('image name is required for update');
    const given = normalize(input);
    return this.meta.update(() => {
      const stored = this.db.get([namespace, given.name]);
      if (!stored) throw notFound(`image ${JSON.stringify(given.name)}`);
      const updated = fromStored(stored);
      if (fieldpaths.length === 0) {
        updated.labels = { ...given.labels };
        updated.target = { ...given.target, annotations: { ...given.target.annotations } };
      }
      for (const path of fieldpaths) {
        if (path.startsWith('labels.')) {
          const key = path.slice('labels.'.length);
          setOrDelete(updated.labels, key, given.labels[key]);
          continue;
        }
        if (path.startsWith('annotations.')) {
          const key = path.slice('annotations.'.length);
          setOrDelete(updated.target.annotations, key, given.target.annotations[key]);
          continue;
        }
        switch (path) {
          case 'labels':
            updated.labels = { ...given.labels };
            break;
          case 'target':
            updated.target = { ...given.target, annotations: { ...given.target.annotations } };
            break;
          case 'annotations':
            updated.target.annotations = { ...given.target.annotations };
            break;
          default:
            throw invalidArgument(`cannot update ${JSON.stringify(path)} field on image ${JSON.stringify(given.name)}`);
        }
      }
      validateImage(updated);
      updated.updatedAt = new Date();
      this.db.putSync([namespace, updated.name], updated);
      return updated;
    });
  }

  delete(namespace: string, name: string): void {
    this.meta.update(() => {
      if (!this.db.removeSync([namespace, name])) throw notFound(`image ${JSON.stringify(name)}`);
    });
  }

  /** Every image of every namespace (for the collector). */
  *all(): Generator<{ namespace: string; image: ImageRecord }> {
    for (const { key, value } of this.db.getRange()) yield { namespace: key[0], image: fromStored(value) };
  }
}

function setOrDelete(m: Record<string, string>, key: string, v: string | undefined): void {
  if (v) m[key] = v;
  else delete m[key];
}

export function imageFields(img: ImageRecord): FieldGetter {
  return (path) => {
    switch (path[0]) {
      case 'name':
        return path.length === 1 ? stringField(img.name) : undefined;
      case 'target':
        if (path.length !== 2) return undefined;
        if (path[1] === 'digest') return stringField(img.target.digest);
        if (path[1] === 'mediatype') return stringField(img.target.mediaType);
        return undefined;
      case 'labels':
        return mapField(path.slice(1), img.labels);
      case 'annotations':
        return mapField(path.slice(1), img.target.annotations);
      default:
        return undefined;
    }
  };
}

export function validateImage(img: ImageInput): void {
  if (!img.name) throw invalidArgument('image name must not be empty');
  validateLabels(img.labels, 'image.Labels');
  if (!isDigest(img.target.digest)) throw invalidArgument(`Target.Digest ${JSON.stringify(img.target.digest)} invalid`);
  if (!(img.target.size > 0)) throw invalidArgument('Target.Size must be greater than zero');
  if (!img.target.mediaType) throw invalidArgument('Target.MediaType must be set');
}

function nonEmpty(labels: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) if (v !== '') out[k] = v;
  return out;
}

function normalize(i: ImageInput): ImageInput {
  return {
    name: i.name ?? '',
    labels: nonEmpty(i.labels ?? {}),
    target: {
      mediaType: i.target?.mediaType ?? '',
      digest: i.target?.digest ?? '',
      size: Number(i.target?.size ?? 0),
      annotations: { ...(i.target?.annotations ?? {}) },
    },
  };
}

function fromStored(s: ImageRecord): ImageRecord {
  return {
    name: s.name,
    labels: { ...(s.labels ?? {}) },
    target: { mediaType: s.target.mediaType, digest: s.target.digest, size: s.target.size, annotations: { ...(s.target.annotations ?? {}) } },
    createdAt: new Date(s.createdAt),
    updatedAt: new Date(s.updatedAt),
  };
}
