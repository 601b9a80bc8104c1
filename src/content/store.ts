// The content store (containerd's content/local + metadata/content.go):
// blobs addressed by digest at <root>/content/blobs/<alg>/<hex>, written
// through ingests at <root>/content/ingest/<hash of namespace/ref>/ (data,
// ref, total, expected, startedat, updatedat) and renamed into place only
// after fsync and the size and digest checks. Blobs are shared on disk; a
// namespace sees a blob only when it has a record of it (size, times,
// labels) in the metadata database, as containerd's namespaced view of its
// one content store. Ingests are recorded per namespace too, with the lease
// that holds them, or an expiry of 24 hours when none does.
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, fsyncSync, mkdirSync, openSync, readdirSync, rmSync, statSync, type ReadStream } from 'node:fs';
import { chmod, open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Database } from 'lmdb';
import { alreadyExists, failedPrecondition, invalidArgument, notFound, unavailable } from '../errdefs.js';
import { validateLabels } from '../identifiers.js';
import { mapField, parseFilters, stringField } from '../events/filters.js';
import { namespaceRange, type NamespacedKey } from '../metadata/db.js';
import type { Metadata } from '../metadata/index.js';
import { newHash, parseDigest } from './digest.js';

export interface ContentInfo {
  digest: string;
  size: number;
  createdAt: Date;
  updatedAt: Date;
  labels: Record<string, string>;
}

export interface IngestStatus {
  ref: string;
  offset: number;
  total: number;
  expected: string;
  startedAt: Date;
  updatedAt: Date;
}

/** A namespace's record of a blob (LMDB "content", [namespace, digest]). */
export interface StoredContent {
  size: number;
  createdAt: Date;
  updatedAt: Date;
  labels: Record<string, string>;
}

/** A namespace's record of an ingest (LMDB "ingests", [namespace, ref]). */
export interface StoredIngest {
  /** directory name under ingest/ */
  dir: string;
  expected: string;
  /** set when no lease holds the ingest: the collector may remove it after this */
  expireAt?: Date;
}

export interface WriterOptions {
  /** total size, when known (checked at commit) */
  total?: number;
  /** expected digest, when known (checked at commit) */
  expected?: string;
  /** the lease (containerd-lease header) that holds what is written */
  lease?: string | undefined;
}

/** Ingests without a lease may be collected after this long (containerd's 24 h). */
export const INGEST_EXPIRY_MS = 24 * 3600 * 1000;

const CONTENT_FIELDS = ['labels'] as const;

/** An ingest's directory under ingest/: from its namespace and ref (the lock key). */
const ingestDirName = (lockKey: string): string => createHash('sha256').update(lockKey).digest('hex');

export class ContentStore {
  readonly root: string;
  readonly records: Database<StoredContent, NamespacedKey>;
  readonly ingests: Database<StoredIngest, NamespacedKey>;
  /** ingests with an open writer: key -> since */
  private readonly locks = new Map<string, Date>();
  /** blobs being committed (on disk, maybe not recorded yet): digest -> how many commits */
  private readonly committing = new Map<string, number>();

  constructor(
    root: string,
    readonly metadata: Metadata,
  ) {
    this.root = root;
    mkdirSync(join(root, 'blobs', 'sha256'), { recursive: true, mode: 0o755 });
    mkdirSync(join(root, 'ingest'), { recursive: true, mode: 0o700 });
    this.records = metadata.db.openNamespaced<StoredContent>('content', 'blobs');
    this.ingests = metadata.db.env.openDB<StoredIngest, NamespacedKey>({ name: 'ingests' });
  }

  /** The absolute path of a committed blob (whether or not it exists). */
  blobPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.root, 'blobs', algorithm, hex);
  }

  /** Whether the blob is on disk (in any namespace). */
  hasBlob(digest: string): boolean {
    try {
      return statSync(this.blobPath(digest)).isFile();
    } catch {
      return false;
    }
  }

  /** Whether the namespace has the blob (a record, and the file). */
  has(namespace: string, digest: string): boolean {
    return this.records.doesExist([namespace, digest]) && this.hasBlob(digest);
  }

  info(namespace: string, digest: string): ContentInfo {
    parseDigest(digest);
    const rec = this.records.get([namespace, digest]);
    if (!rec) throw notFound(`content digest ${digest}`);
    return toInfo(digest, rec);
  }

  /** Blobs of the namespace in digest order; filters on digest, size and labels.<key>. */
  list(namespace: string, filters: readonly string[] = []): ContentInfo[] {
    const filter = parseFilters(filters);
    const out: ContentInfo[] = [];
    for (const { key, value } of this.records.getRange(namespaceRange(namespace))) {
      const info = toInfo(key[1], value);
      const match = filter.match((path) => {
        if (path[0] === 'digest') return path.length === 1 ? stringField(info.digest) : undefined;
        if (path[0] === 'size') return path.length === 1 ? String(info.size) : undefined;
        if (path[0] === 'labels') return mapField(path.slice(1), info.labels);
        return undefined;
      });
      if (match) out.push(info);
    }
    return out;
  }

  /**
   * Updates the labels of a blob: paths "labels" (all of them) or
   * "labels.<key>" (one; an empty value removes it); no paths: all labels.
   */
  update(namespace: string, digest: string, labels: Record<string, string>, fieldpaths: readonly string[] = []): ContentInfo {
    parseDigest(digest);
    return this.metadata.db.update(() => {
      const rec = this.records.get([namespace, digest]);
      if (!rec) throw notFound(`content digest ${digest}`);
      const updated: StoredContent = { ...rec, labels: { ...rec.labels } };
      const paths = fieldpaths.length ? fieldpaths : CONTENT_FIELDS;
      for (const path of paths) {
        if (path.startsWith('labels.')) {
          const key = path.slice('labels.'.length);
          updated.labels[key] = labels[key] ?? '';
          continue;
        }
        if (path === 'labels') {
          updated.labels = { ...labels };
          continue;
        }
        throw invalidArgument(`cannot update ${JSON.stringify(path)} field on content info ${JSON.stringify(digest)}`);
      }
      updated.labels = nonEmpty(updated.labels);
      validateLabels(updated.labels, 'info.Labels');
      updated.updatedAt = new Date();
      this.records.putSync([namespace, digest], updated);
      return toInfo(digest, updated);
    });
  }

  /**
   * Removes the namespace's record of a blob, and the blob itself when no
   * namespace has a record of it any more.
   */
  delete(namespace: string, digest: string): void {
    parseDigest(digest);
    this.metadata.db.update(() => {
      if (!this.records.removeSync([namespace, digest])) throw notFound(`content digest ${digest}`);
    });
    this.removeBlobIfUnreferenced(digest);
  }

  /** Unlinks the blob when no namespace records it; true if it was removed. */
  removeBlobIfUnreferenced(digest: string): boolean {
    if (this.referencedAnywhere(digest) || this.isHeld(digest)) return false;
    try {
      rmSync(this.blobPath(digest));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  /** Whether any namespace records the digest. */
  referencedAnywhere(digest: string): boolean {
    for (const key of this.records.getKeys()) if (key[1] === digest) return true;
    return false;
  }

  /** The digests of every blob on disk (for the collector). */
  *blobsOnDisk(): Generator<string> {
    for (const alg of readdirSync(join(this.root, 'blobs'))) {
      let names: string[];
      try {
        names = readdirSync(join(this.root, 'blobs', alg));
      } catch {
        continue;
      }
      for (const hex of names) yield `${alg}:${hex}`;
    }
  }

  /**
   * A stream of a blob's bytes from offset, size bytes (0 or less: to the
   * end). The namespace must have a record of it.
   */
  readStream(namespace: string, digest: string, offset = 0, size = 0): ReadStream {
    const info = this.info(namespace, digest);
    if (offset < 0 || offset > info.size) throw outOfRange(`read past object length ${info.size} bytes`);
    const end = size > 0 ? Math.min(info.size, offset + size) : info.size;
    const s = createReadStream(this.blobPath(digest), { start: offset, end: Math.max(offset, end) - 1, highWaterMark: 1 << 20 });
    if (end <= offset) s.destroy();
    return s;
  }

  /** Where a blob the namespace has a record of lies on disk (for a reader on another thread). */
  pathOf(namespace: string, digest: string): string {
    this.info(namespace, digest);
    return this.blobPath(digest);
  }

  /** The whole blob (for manifests and configs). */
  async readAll(namespace: string, digest: string): Promise<Buffer> {
    this.info(namespace, digest);
    return readFile(this.blobPath(digest));
  }

  /**
   * Records an existing blob in the namespace (and the lease); content
   * already on disk is shared between namespaces as containerd shares it.
   * Returns false if the namespace had it already.
   */
  link(namespace: string, digest: string, size: number, labels: Record<string, string> = {}, lease?: string): boolean {
    return this.metadata.db.update(() => {
      if (lease) this.metadata.leases.addResource(namespace, lease, { type: 'content', id: digest });
      if (this.records.doesExist([namespace, digest])) return false;
      this.metadata.namespaces.ensure(namespace);
      const now = new Date();
      this.records.putSync([namespace, digest], { size, createdAt: now, updatedAt: now, labels: nonEmpty(labels) });
      return true;
    });
  }

  // ---- ingests ----

  /**
   * Opens (or resumes) the ingest REF. With an expected digest that the
   * namespace already has: AlreadyExists; that another namespace has: the
   * blob is linked here and AlreadyExists too (nothing to write). An ingest
   * with an open writer: Unavailable.
   */
  async writer(namespace: string, ref: string, opts: WriterOptions = {}): Promise<ContentWriter> {
    if (!ref) throw invalidArgument('ref must not be empty');
    const expected = opts.expected ?? '';
    if (opts.lease && !this.metadata.leases.get(namespace, opts.lease)) throw notFound('lease does not exist');
    if (expected) {
      parseDigest(expected);
      if (this.records.doesExist([namespace, expected])) {
        // as containerd: the lease holds it from now on, so that the caller can rely on it
        if (opts.lease) this.metadata.leases.addResource(namespace, opts.lease, { type: 'content', id: expected });
        throw alreadyExists(`content ${expected}`);
      }
      // another namespace's blob: shared, unless the caller expects another size
      const size = this.hasBlob(expected) ? statSync(this.blobPath(expected)).size : -1;
      if (size >= 0 && (!opts.total || opts.total === size)) {
        this.link(namespace, expected, size, {}, opts.lease);
        throw alreadyExists(`content ${expected}`);
      }
    }
    const lockKey = `${namespace}/${ref}`;
    const since = this.locks.get(lockKey);
    if (since) throw unavailable(`ref ${ref} locked (since ${since.toISOString()})`);
    this.locks.set(lockKey, new Date());
    try {
      return await this.openIngest(namespace, ref, opts, expected, () => this.locks.delete(lockKey));
    } catch (e) {
      this.locks.delete(lockKey);
      throw e;
    }
  }

  private async openIngest(namespace: string, ref: string, opts: WriterOptions, expected: string, unlock: () => void): Promise<ContentWriter> {
    const dirName = ingestDirName(`${namespace}/${ref}`);
    const dir = join(this.root, 'ingest', dirName);
    const hash = newHash(expected ? parseDigest(expected).algorithm : 'sha256');
    let total = opts.total ?? 0;
    let offset = 0;
    let startedAt = new Date();
    let resumed = false;
    const rec = this.ingests.get([namespace, ref]);
    if (rec) {
      try {
        const st = await readIngestStatus(join(this.root, 'ingest', rec.dir), ref);
        if (total > 0 && st.total > 0 && total !== st.total) throw invalidArgument(`ingest ${ref}: provided total differs from status: ${total} != ${st.total}`);
        if (expected && rec.expected && expected !== rec.expected) throw invalidArgument(`ingest ${ref}: inconsistent digest provided: ${expected} != ${rec.expected}`);
        total = st.total || total;
        startedAt = st.startedAt;
        // the running digest of what is there (a Hash cannot be saved)
        for await (const chunk of createReadStream(join(this.root, 'ingest', rec.dir, 'data'), { highWaterMark: 1 << 20 })) {
          hash.update(chunk as Buffer);
          offset += (chunk as Buffer).length;
        }
        resumed = true;
      } catch (e) {
        if ((e as { errClass?: string }).errClass) throw e;
        // unreadable: start again
        await rm(join(this.root, 'ingest', rec.dir), { recursive: true, force: true });
      }
    }
    if (!resumed) {
      await rm(dir, { recursive: true, force: true });
      mkdirSync(dir, { mode: 0o700 });
      await writeFile(join(dir, 'ref'), ref);
      await writeFile(join(dir, 'startedat'), startedAt.toISOString());
      await writeFile(join(dir, 'updatedat'), startedAt.toISOString());
      if (total > 0) await writeFile(join(dir, 'total'), String(total));
      if (expected) await writeFile(join(dir, 'expected'), expected);
      await writeFile(join(dir, 'data'), '');
    }
    const actualDir = rec && resumed ? join(this.root, 'ingest', rec.dir) : dir;
    this.metadata.db.update(() => {
      const stored: StoredIngest = { dir: rec && resumed ? rec.dir : dirName, expected: expected || rec?.expected || '' };
      if (opts.lease) this.metadata.leases.addResource(namespace, opts.lease, { type: 'ingests', id: ref });
      else stored.expireAt = new Date(Date.now() + INGEST_EXPIRY_MS);
      this.metadata.namespaces.ensure(namespace);
      this.ingests.putSync([namespace, ref], stored);
    });
    const fh = await open(join(actualDir, 'data'), 'r+');
    return new ContentWriter(this, namespace, ref, actualDir, fh, hash, {
      offset,
      total,
      expected: expected || rec?.expected || '',
      startedAt,
      lease: opts.lease,
      unlock,
    });
  }

  /** The status of an ingest of the namespace. */
  async status(namespace: string, ref: string): Promise<IngestStatus> {
    const rec = this.ingests.get([namespace, ref]);
    if (!rec) throw notFound(`reference ${ref}`);
    const st = await readIngestStatus(join(this.root, 'ingest', rec.dir), ref).catch(() => {
      throw notFound(`reference ${ref}`);
    });
    return { ...st, expected: rec.expected };
  }

  /** Ingests of the namespace; filters on ref and expected. */
  async listStatuses(namespace: string, filters: readonly string[] = []): Promise<IngestStatus[]> {
    const filter = parseFilters(filters);
    const out: IngestStatus[] = [];
    for (const { key } of this.ingests.getRange(namespaceRange(namespace))) {
      let st: IngestStatus;
      try {
        st = await this.status(namespace, key[1]);
      } catch {
        continue;
      }
      const match = filter.match((path) => {
        if (path.length !== 1) return undefined;
        if (path[0] === 'ref') return stringField(st.ref);
        if (path[0] === 'expected') return stringField(st.expected);
        return undefined;
      });
      if (match) out.push(st);
    }
    return out;
  }

  /** Every ingest record: [namespace, ref] and what it says (for the collector). */
  *allIngests(): Generator<{ namespace: string; ref: string; record: StoredIngest }> {
    for (const { key, value } of this.ingests.getRange()) yield { namespace: key[0], ref: key[1], record: value };
  }

  /** Removes an ingest: its directory and its record. */
  async abort(namespace: string, ref: string, lease?: string): Promise<void> {
    if (!this.ingests.doesExist([namespace, ref])) throw notFound(`reference ${ref}`);
    await this.removeIngest(namespace, ref, lease);
  }

  /** Removes an ingest's directory, record and lease entry (abort, a failed commit, the collector). */
  async removeIngest(namespace: string, ref: string, lease: string | undefined): Promise<void> {
    const rec = this.ingests.get([namespace, ref]);
    if (!rec) return;
    await rm(join(this.root, 'ingest', rec.dir), { recursive: true, force: true });
    this.metadata.db.update(() => {
      this.ingests.removeSync([namespace, ref]);
      if (lease && this.metadata.leases.get(namespace, lease)) this.metadata.leases.deleteResource(namespace, lease, { type: 'ingests', id: ref });
    });
  }

  /** Keeps the collector off a blob until the returned function is called. */
  holdBlob(digest: string): () => void {
    this.committing.set(digest, (this.committing.get(digest) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.committing.get(digest) ?? 1) - 1;
      if (n > 0) this.committing.set(digest, n);
      else this.committing.delete(digest);
    };
  }

  /** Whether a commit holds the blob (renamed into place, not yet recorded). */
  isHeld(digest: string): boolean {
    return this.committing.has(digest);
  }

  /** Whether an ingest has a writer open right now. */
  isLocked(namespace: string, ref: string): boolean {
    return this.locks.has(`${namespace}/${ref}`);
  }

  /** Ingest directories with no record (left by a crash); for the collector. */
  orphanIngestDirs(): string[] {
    const known = new Set<string>();
    for (const { value } of this.ingests.getRange()) known.add(value.dir);
    // a writer being opened has made its directory but not yet recorded it
    for (const key of this.locks.keys()) known.add(ingestDirName(key));
    return readdirSync(join(this.root, 'ingest')).filter((d) => !known.has(d)).map((d) => join(this.root, 'ingest', d));
  }

  /** @internal: the commit's metadata part, in one transaction. */
  recordCommit(namespace: string, ref: string, digest: string, size: number, labels: Record<string, string>, lease: string | undefined): boolean {
    return this.metadata.db.update(() => {
      this.ingests.removeSync([namespace, ref]);
      if (lease) this.metadata.leases.deleteResource(namespace, lease, { type: 'ingests', id: ref });
      return this.link(namespace, digest, size, labels, lease);
    });
  }
}

/** What a writer was opened with. */
interface WriterState {
  offset: number;
  total: number;
  expected: string;
  startedAt: Date;
  lease: string | undefined;
  unlock: () => void;
}

/**
 * An open ingest: write() appends and hashes, commit() checks size and
 * digest and moves the data into the blob store. close() (or commit) frees
 * the ref; the ingest stays for a later writer to resume.
 */
export class ContentWriter {
  offset: number;
  total: number;
  expected: string;
  readonly startedAt: Date;
  updatedAt: Date;
  private closed = false;
  private readonly lease: string | undefined;
  private readonly unlock: () => void;

  constructor(
    private readonly store: ContentStore,
    readonly namespace: string,
    readonly ref: string,
    readonly dir: string,
    private fh: FileHandle,
    private hash: ReturnType<typeof newHash>,
    s: WriterState,
  ) {
    this.offset = s.offset;
    this.total = s.total;
    this.expected = s.expected;
    this.startedAt = s.startedAt;
    this.updatedAt = s.startedAt;
    this.lease = s.lease;
    this.unlock = s.unlock;
  }

  status(): IngestStatus {
    return { ref: this.ref, offset: this.offset, total: this.total, expected: this.expected, startedAt: this.startedAt, updatedAt: this.updatedAt };
  }

  /** The digest of what was written so far. */
  digest(): string {
    const alg = this.expected ? parseDigest(this.expected).algorithm : 'sha256';
    return `${alg}:${this.hash.copy().digest('hex')}`;
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.closed) throw failedPrecondition(`ingest ${this.ref}: writer is closed`);
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, this.offset + done);
      done += bytesWritten;
    }
    this.hash.update(data);
    this.offset += data.length;
    this.updatedAt = new Date();
  }

  /** Starts over (only to offset 0, as containerd's writers). */
  async truncate(size: number): Promise<void> {
    if (size !== 0) throw invalidArgument(`ingest ${this.ref}: can only truncate to 0, not ${size}`);
    await this.fh.truncate(0);
    this.hash = newHash(this.expected ? parseDigest(this.expected).algorithm : 'sha256');
    this.offset = 0;
    this.updatedAt = new Date();
  }

  /** Records the total when none was known (a differing one is checked at commit, as containerd does). */
  setTotal(total: number): void {
    if (total > 0 && this.total === 0) {
      this.total = total;
      void writeFile(join(this.dir, 'total'), String(total)).catch(() => {});
    }
  }

  /**
   * fsync, check size (when size > 0) and digest (when expected), rename into
   * the blob store, record it in the namespace (and the lease). Returns the
   * digest. Content the namespace already had: AlreadyExists (the ingest is
   * gone either way).
   */
  async commit(size: number, expected: string, labels: Record<string, string> = {}): Promise<string> {
    if (this.closed) throw failedPrecondition(`ingest ${this.ref}: writer is closed`);
    validateLabels(labels, 'info.Labels');
    if (expected) parseDigest(expected);
    await this.fh.sync();
    const dataPath = join(this.dir, 'data');
    const st = await this.fh.stat();
    if (st.size !== this.offset) throw failedPrecondition(`ingest ${this.ref}: ${dataPath} is ${st.size} bytes, ${this.offset} were written: was it aborted?`);
    // too few bytes: the ingest stays, to be resumed
    if (size > 0 && size > this.offset) throw failedPrecondition(`${JSON.stringify(this.ref)} failed size validation: ${this.offset} != ${size}`);
    const want = expected || this.expected;
    const alg = want ? parseDigest(want).algorithm : 'sha256';
    const digest = `${alg}:${this.hash.copy().digest('hex')}`;
    // too many bytes or the wrong ones: nothing can be resumed, so nothing is kept
    if (size > 0 && size < this.offset) await this.discard(failedPrecondition(`${JSON.stringify(this.ref)} failed size validation: ${this.offset} != ${size}`));
    if (want && digest !== want) await this.discard(failedPrecondition(`unexpected commit digest ${digest}, expected ${want}`));
    await this.fh.close();
    this.closed = true;
    let releaseBlob: (() => void) | undefined;
    try {
      const target = this.store.blobPath(digest);
      const blobDir = join(this.store.root, 'blobs', alg);
      mkdirSync(blobDir, { recursive: true, mode: 0o755 });
      // from here until it is recorded, the collector must not take the blob
      releaseBlob = this.store.holdBlob(digest);
      let exists = false;
      try {
        exists = (await stat(target)).isFile();
      } catch {
        /* not there yet */
      }
      if (!exists) {
        await chmod(dataPath, 0o444);
        await rename(dataPath, target);
        fsyncDir(blobDir);
      }
      const added = this.store.recordCommit(this.namespace, this.ref, digest, this.offset, labels, this.lease);
      await rm(this.dir, { recursive: true, force: true });
      if (!added) throw alreadyExists(`content ${digest}`);
      return digest;
    } finally {
      releaseBlob?.();
      this.unlock();
    }
  }

  /** Closes, removes the ingest (data and record) and throws err. */
  private async discard(err: Error): Promise<never> {
    this.closed = true;
    try {
      await this.fh.close().catch(() => {});
      await this.store.removeIngest(this.namespace, this.ref, this.lease);
    } finally {
      this.unlock();
    }
    throw err;
  }

  /** Frees the ref; the ingest stays (resumable). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.fh.close();
      await writeFile(join(this.dir, 'updatedat'), this.updatedAt.toISOString()).catch(() => {});
    } finally {
      this.unlock();
    }
  }
}

async function readIngestStatus(dir: string, ref: string): Promise<IngestStatus> {
  const read = (name: string) => readFile(join(dir, name), 'utf8').catch(() => '');
  const st = await stat(join(dir, 'data'));
  const total = Number((await read('total')) || 0);
  const started = await read('startedat');
  return {
    ref,
    offset: st.size,
    total: Number.isFinite(total) ? total : 0,
    expected: await read('expected'),
    startedAt: started ? new Date(started) : st.birthtime,
    updatedAt: st.mtime,
  };
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function toInfo(digest: string, rec: StoredContent): ContentInfo {
  return { digest, size: rec.size, createdAt: new Date(rec.createdAt), updatedAt: new Date(rec.updatedAt), labels: { ...rec.labels } };
}

function nonEmpty(labels: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) if (v !== '') out[k] = v;
  return out;
}

/** gRPC OutOfRange (no errdefs class of its own in containerd either). */
export function outOfRange(details: string): Error & { code: number; details: string } {
  return Object.assign(new Error(details), { code: 11, details });
}
