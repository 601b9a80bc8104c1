// One layer blob -> one committed snapshot named by its chain ID, as
// containerd's unpacker does it: prepare an active snapshot on the parent
// chain ID (key "extract-<time>-<random> <chainID>"), write the layer into
// its upper dir with overlay whiteouts, commit it as the chain ID. On any
// failure (corrupt archive, disk full, hostile member) the active snapshot
// and everything written into it are removed. If another unpack committed
// the same chain ID first, ours is dropped and theirs reused.
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { isAlreadyExists, wrap } from '../errdefs.js';
import { applyLayer, type LayerResult } from '../archive/layer.js';
import { applyLayerFile, prewarmLayerThreads } from '../archive/layer-thread.js';
import { inheritParentAttributes } from '../archive/apply.js';
import type { OverlaySnapshotter } from './overlay.js';

export const LABEL_SNAPSHOT_REF = 'containerd.io/snapshot.ref';

export interface UnpackLayerOptions {
  namespace: string;
  /** the committed snapshot below (chain ID of the layers under this one); none for the first layer */
  parentChainId: string | undefined;
  chainId: string;
  /** the compressed blob on disk (the content store's blob path) ... */
  blobPath?: string;
  /** ... or a stream of it */
  blob?: Readable;
  mediaType: string;
  /** the lease that holds the new snapshot */
  lease: string | undefined;
  /** checked before commit when given */
  expectedDiffId?: string | undefined;
  signal?: AbortSignal | undefined;
}

/** A layer written into a staged directory (LayerUnpacker.extractStaged). */
export interface StagedLayer {
  dir: string;
  fs: string;
  diffId: string;
  size: number;
  /** directories the layer made implicitly: they take their attributes from the layers below at commit */
  implicitParents: string[];
}

export interface UnpackLayerResult {
  diffId: string;
  /** uncompressed bytes */
  size: number;
  /** another unpack committed the chain ID first: this one was dropped */
  reused: boolean;
}

/** containerd's key of an active snapshot that a layer is written into, and its labels. */
function extractKey(chainId: string): { key: string; labels: Record<string, string> } {
  return { key: `extract-${Date.now()}${randomBytes(4).toString('hex')} ${chainId}`, labels: { [LABEL_SNAPSHOT_REF]: chainId } };
}

/** Layer unpacking bound to one snapshotter (what images/pull takes as its Unpacker). */
export class LayerUnpacker {
  constructor(private readonly sn: OverlaySnapshotter) {}

  get snapshotter(): string {
    return this.sn.name;
  }

  exists(namespace: string, key: string): Promise<boolean> {
    return this.sn.exists(namespace, key);
  }

  async unpackLayer(o: UnpackLayerOptions): Promise<UnpackLayerResult> {
    const { namespace, chainId } = o;
    const { key, labels } = extractKey(chainId);
    this.sn.prepare(namespace, key, o.parentChainId ?? '', { labels, lease: o.lease });
    let r: LayerResult;
    try {
      const { upper, parents } = this.sn.resolveDirs(namespace, key);
      const target = { root: upper, whiteouts: 'overlay' as const, parents };
      r = o.blob
        ? await applyLayer(o.blob, o.mediaType, target, { expectedDiffId: o.expectedDiffId, signal: o.signal })
        : await applyLayerFile({ blobPath: o.blobPath ?? '', mediaType: o.mediaType, target, expectedDiffId: o.expectedDiffId }, { signal: o.signal });
    } catch (e) {
      await this.drop(namespace, key, o.lease);
      throw wrap(e, `unpack layer ${chainId}`);
    }
    return this.commitAs(namespace, chainId, key, o.lease, r, () => {});
  }

  /**
   * Writes a layer into a staged directory, before its parent exists as a
   * snapshot (layers unpacked side by side); commitStaged makes it the
   * chain ID's snapshot once the parent is committed. Nothing is left
   * behind if this throws.
   */
  async extractStaged(o: { blobPath: string; mediaType: string; expectedDiffId?: string | undefined; signal?: AbortSignal | undefined }): Promise<StagedLayer> {
    const { dir, fs } = this.sn.stage();
    try {
      const r = await applyLayerFile(
        { blobPath: o.blobPath, mediaType: o.mediaType, target: { root: fs, whiteouts: 'overlay', deferParentAttributes: true }, expectedDiffId: o.expectedDiffId },
        { signal: o.signal },
      );
      return { dir, fs, diffId: r.diffId, size: r.size, implicitParents: r.stats.implicitParents ?? [] };
    } catch (e) {
      this.sn.dropStaged(dir);
      throw e;
    }
  }

  /** The staged layer as the committed snapshot chainId on its parent (now committed); the staged dir is used up either way. */
  async commitStaged(o: { namespace: string; parentChainId: string | undefined; chainId: string; lease: string | undefined; staged: StagedLayer }): Promise<UnpackLayerResult> {
    const { namespace, chainId, staged } = o;
    const { key, labels } = extractKey(chainId);
    this.sn.prepareStaged(namespace, key, o.parentChainId ?? '', staged.dir, { labels, lease: o.lease });
    try {
      return await this.commitAs(namespace, chainId, key, o.lease, staged, () => {
        const { upper, parents } = this.sn.resolveDirs(namespace, key);
        inheritParentAttributes(upper, staged.implicitParents, parents);
      });
    } catch (e) {
      throw wrap(e, `unpack layer ${chainId}`);
    }
  }

  /**
   * Finishes the active snapshot key (before: the last writes) and commits
   * it as chainId; on failure it goes. If another unpack committed chainId
   * first, ours is dropped and theirs reused.
   */
  private async commitAs(namespace: string, chainId: string, key: string, lease: string | undefined, r: { diffId: string; size: number }, before: () => void): Promise<UnpackLayerResult> {
    try {
      before();
      this.sn.commit(namespace, chainId, key, { labels: extractKey(chainId).labels, lease });
      return { diffId: r.diffId, size: r.size, reused: false };
    } catch (e) {
      await this.drop(namespace, key, lease);
      if (isAlreadyExists(e)) return { diffId: r.diffId, size: r.size, reused: true };
      throw e;
    }
  }

  /** Boots the threads that n layers side by side will use (while their blobs download). */
  prewarmStaged(n: number): void {
    prewarmLayerThreads(n);
  }

  /** A staged layer that will not be committed. */
  discardStaged(staged: StagedLayer): void {
    this.sn.dropStaged(staged.dir);
  }

  private async drop(namespace: string, key: string, lease: string | undefined): Promise<void> {
    await this.sn.remove(namespace, key, lease);
  }
}
