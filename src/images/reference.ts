// Image references as Docker users type them, normalised as
// distribution/reference's ParseNormalizedNamed does: "hello-world" ->
// docker.io/library/hello-world:latest, "user/app" -> docker.io/user/app,
// "127.0.0.1:5000/app:v1", "localhost/app", "app@sha256:...", "app:tag@sha256:...".
// A first component with a "." or ":" or "localhost" is a registry host.
import { invalidArgument } from '../errdefs.js';
import { parseDigest } from '../content/digest.js';

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';
const DEFAULT_TAG = 'latest';
const NAME_TOTAL_LENGTH_MAX = 255;

const COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;

export interface Reference {
  /** registry host[:port], "docker.io" for Docker Hub */
  domain: string;
  /** repository path in the registry ("library/busybox") */
  path: string;
  tag?: string | undefined;
  digest?: string | undefined;
}

const bad = (ref: string, why = ''): Error => invalidArgument(`${JSON.stringify(ref)}: invalid reference format${why ? `: ${why}` : ''}`);

/** Parses a reference as a user types it, filling docker.io, library/ and :latest. */
export function parseReference(input: string): Reference {
  const s = input.trim();
  if (!s) throw bad(input, 'empty reference');
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    try {
      parseDigest(digest);
    } catch (e) {
      throw bad(input, (e as { detail?: string }).detail ?? 'bad digest');
    }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw bad(input, `bad tag ${JSON.stringify(tag)}`);
  }
  if (!rest) throw bad(input);
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.toLowerCase() !== first) {
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  if (!DOMAIN_RE.test(domain)) throw bad(input, `bad registry host ${JSON.stringify(domain)}`);
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (path !== path.toLowerCase()) throw bad(input, 'repository name must be lowercase');
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_PREFIX + path;
  for (const c of path.split('/')) if (!COMPONENT_RE.test(c)) throw bad(input, `bad path component ${JSON.stringify(c)}`);
  if (`${domain}/${path}`.length > NAME_TOTAL_LENGTH_MAX) throw bad(input, `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  if (!tag && !digest) tag = DEFAULT_TAG;
  return { domain, path, tag, digest };
}

/** The repository: "docker.io/library/busybox". */
export function repositoryName(r: Reference): string {
  return `${r.domain}/${r.path}`;
}

/** The full normalised string: "docker.io/library/busybox:latest", with "@digest" when there is one. */
export function formatReference(r: Reference): string {
  return `${repositoryName(r)}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/** Parses and formats: the name an image record gets. */
export function normalizeReference(input: string): string {
  return formatReference(parseReference(input));
}

/** As docker shows it: "busybox:latest", "user/app:v1", "127.0.0.1:5000/app:v1". */
export function familiarName(r: Reference | string): string {
  const ref = typeof r === 'string' ? parseReference(r) : r;
  let name = repositoryName(ref);
  if (ref.domain === DEFAULT_DOMAIN) {
    name = ref.path.startsWith(OFFICIAL_PREFIX) ? ref.path.slice(OFFICIAL_PREFIX.length) : ref.path;
  }
  return `${name}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** The path docker prints after "Pulling from": "library/busybox" (the repository without the host of Docker Hub). */
export function familiarRepository(r: Reference): string {
  return r.domain === DEFAULT_DOMAIN ? r.path : `${r.domain}/${r.path}`;
}

/** The host that serves a domain's API (Docker Hub's is registry-1.docker.io). */
export function apiHost(domain: string): string {
  return domain === DEFAULT_DOMAIN ? 'registry-1.docker.io' : domain;
}

/** Whether a host is this machine (plain HTTP allowed without asking). */
export function isLocalHost(host: string): boolean {
  // "[v6]:port", a bare v6 address (several colons), or "name:port"
  const h = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.split(':').length > 2 ? host : host.replace(/:\d+$/, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}
