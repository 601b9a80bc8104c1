// The metadata store as the daemon uses it: one database, one store object
// per kind of record.
import { MetadataDB } from './db.js';
import { NamespaceStore } from './namespaces.js';
import { ContainerStore } from './containers.js';

export { MetadataDB } from './db.js';
export { NamespaceStore, type Namespace } from './namespaces.js';
export { ContainerStore, type ContainerRecord, type ContainerInput, type AnyValue } from './containers.js';

export interface Metadata {
  readonly db: MetadataDB;
  readonly namespaces: NamespaceStore;
  readonly containers: ContainerStore;
  close(): Promise<void>;
}

/** Opens <root>/meta.lmdb (creating root with mode 0711). */
export function openMetadata(root: string): Metadata {
  const db = MetadataDB.open(root);
  return {
    db,
    namespaces: new NamespaceStore(db),
    containers: new ContainerStore(db),
    close: () => db.close(),
  };
}
