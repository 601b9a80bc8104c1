// OCI image-spec and Docker schema2 media types, the JSON shapes of
// manifests, indexes and configs, and platform matching for the host.
import { invalidArgument } from '../errdefs.js';

export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNonDistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNonDistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** What a registry is asked for when a manifest is resolved (index types first). */
export const MANIFEST_ACCEPT = [MT.dockerManifestList, MT.ociIndex, MT.dockerManifest, MT.ociManifest].join(', ');

export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
}

export interface ImageIndex {
  schemaVersion: number;
  mediaType?: string;
  manifests: OciDescriptor[];
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  schemaVersion: number;
  mediaType?: string;
  config: OciDescriptor;
  layers: OciDescriptor[];
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  config?: {
    User?: string;
    Env?: string[] | null;
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    ExposedPorts?: Record<string, unknown> | null;
    Volumes?: Record<string, unknown> | null;
    StopSignal?: string;
  };
  rootfs?: { type: string; diff_ids: string[] };
  history?: Array<{ created?: string; created_by?: string; empty_layer?: boolean; comment?: string }>;
  created?: string;
}

export const isIndex = (mt: string): boolean => mt === MT.ociIndex || mt === MT.dockerManifestList;
export const isManifest = (mt: string): boolean => mt === MT.ociManifest || mt === MT.dockerManifest;
export const isConfig = (mt: string): boolean => mt === MT.ociConfig || mt === MT.dockerConfig;
export const isLayer = (mt: string): boolean => mt.startsWith('application/vnd.oci.image.layer.') || mt.startsWith('application/vnd.docker.image.rootfs.');

/** The media type of a manifest or index document from its own mediaType, or its shape. */
export function documentMediaType(doc: { mediaType?: string; manifests?: unknown; config?: unknown }, fallback = ''): string {
  if (doc.mediaType) return doc.mediaType;
  if (Array.isArray(doc.manifests)) return MT.ociIndex;
  if (doc.config) return MT.ociManifest;
  return fallback;
}

export function parseJson<T>(data: Buffer | string, what: string): T {
  try {
    return JSON.parse(typeof data === 'string' ? data : data.toString('utf8')) as T;
  } catch (e) {
    throw invalidArgument(`${what}: not valid JSON: ${(e as Error).message}`);
  }
}

const ARCH: Record<string, [string, string]> = {
  x64: ['amd64', ''],
  arm64: ['arm64', 'v8'],
  arm: ['arm', 'v7'],
  ia32: ['386', ''],
  ppc64: ['ppc64le', ''],
  s390x: ['s390x', ''],
  riscv64: ['riscv64', ''],
};

/** This machine's platform: linux/amd64, linux/arm64/v8, ... */
export function hostPlatform(): Platform {
  const [architecture, variant] = ARCH[process.arch] ?? [process.arch, ''];
  return variant ? { os: 'linux', architecture, variant } : { os: 'linux', architecture };
}

/** Parses "linux/amd64", "linux/arm64/v8", "amd64". */
export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.length === 1) return { ...hostPlatform(), architecture: parts[0]!, variant: undefined };
  if (parts.length > 3 || parts.some((p) => !p)) throw invalidArgument(`platform ${JSON.stringify(s)}: expected os/arch[/variant]`);
  return { os: parts[0]!, architecture: parts[1]!, variant: parts[2] };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

function normalizeVariant(arch: string, variant: string | undefined): string {
  const v = variant ?? '';
  if (arch === 'arm64' && (v === '' || v === 'v8')) return 'v8';
  if (arch === 'amd64' && (v === '' || v === 'v1')) return 'v1';
  return v;
}

/**
 * How well a manifest's platform fits the wanted one: -1 no match, higher
 * is better (exact variant beats a lower compatible one). For arm, lower
 * variants run on higher ones (v6 on v7); for amd64 the micro-architecture
 * levels v2..v4 likewise.
 */
export function platformScore(want: Platform, have: Platform | undefined): number {
  if (!have) return -1;
  if (have.os !== want.os || have.architecture !== want.architecture) return -1;
  const w = normalizeVariant(want.architecture, want.variant);
  const h = normalizeVariant(have.architecture, have.variant);
  if (w === h) return 100;
  const level = (v: string) => Number(/^v(\d+)$/.exec(v)?.[1] ?? NaN);
  if (Number.isFinite(level(w)) && Number.isFinite(level(h)) && level(h) < level(w)) return 50 + level(h);
  if (!want.variant) return 10; // none asked: any variant will do
  return -1;
}

/** The manifest of an index for the platform, or undefined. */
export function selectManifest(index: ImageIndex, want: Platform): OciDescriptor | undefined {
  let best: OciDescriptor | undefined;
  let bestScore = -1;
  for (const m of index.manifests ?? []) {
    if (!isManifest(m.mediaType) && !isIndex(m.mediaType)) continue;
    const s = platformScore(want, m.platform);
    if (s > bestScore) {
      best = m;
      bestScore = s;
    }
  }
  return best;
}

/** Layer chain ids: chain[0] = diff[0], chain[i] = sha256(chain[i-1] + " " + diff[i]). */
export function chainIds(diffIds: readonly string[], sha256: (s: string) => string): string[] {
  const out: string[] = [];
  for (const d of diffIds) out.push(out.length === 0 ? d : sha256(`${out[out.length - 1]} ${d}`));
  return out;
}
