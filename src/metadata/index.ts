// The metadata store as the daemon uses it: one database, one store object
// per kind of record.
import { MetadataDB } from './db.js';
import { NamespaceStore } from './namespaces.js';
import { ContainerStore } from './containers.js';
import { LeaseStore } from './leases.js';
import { ImageStore } from './images.js';

export { MetadataDB } from './db.js';
export { NamespaceStore, type Namespace } from './namespaces.js';
export { ContainerStore, type ContainerRecord, type ContainerInput, type AnyValue } from './containers.js';
export { LeaseStore, type Lease, type LeaseResource } from './leases.js';
export { ImageStore, type ImageRecord, type ImageInput, type Descriptor } from './images.js';

export interface Metadata {
  readonly db: MetadataDB;
  readonly namespaces: NamespaceStore;
  readonly containers: ContainerStore;
  readonly leases: LeaseStore;
  readonly images: ImageStore;
  close(): Promise<void>;
}

/** Opens <root>/meta.lmdb (creating root with mode 0711). */
export function openMetadata(root: string): Metadata {
  const db = MetadataDB.open(root);
  const namespaces = new NamespaceStore(db);
  return {
    db,
    namespaces,
    containers: new ContainerStore(db),
    leases: new LeaseStore(db, namespaces),
    images: new ImageStore(db, namespaces),
    close: () => db.close(),
  };
}
