// Content digests as go-digest writes them: "<algorithm>:<hex>", with
// sha256 (the canonical one), sha384 and sha512. A valid digest is safe as a
// path component (blobs/<algorithm>/<hex>).
import { createHash, type Hash } from 'node:crypto';
import { invalidArgument } from '../errdefs.js';

const HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };
const DIGEST_RE = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

export interface ParsedDigest {
  algorithm: string;
  hex: string;
}

/** What go-digest's Validate says is wrong with a digest, or undefined if nothing. */
export function digestProblem(digest: string): string | undefined {
  const m = DIGEST_RE.exec(digest);
  if (!m) return 'invalid checksum digest format';
  const want = HEX_LENGTH[m[1]!];
  if (want === undefined) return 'unsupported digest algorithm';
  if (m[2]!.length !== want || !/^[a-f0-9]+$/.test(m[2]!)) return 'invalid checksum digest length';
  return undefined;
}

/** Parses and checks a digest; InvalidArgument names what is wrong with it. */
export function parseDigest(digest: string): ParsedDigest {
  const problem = digestProblem(digest);
  if (problem) throw invalidArgument(`digest ${JSON.stringify(digest)}: ${problem}`);
  const i = digest.indexOf(':');
  return { algorithm: digest.slice(0, i), hex: digest.slice(i + 1) };
}

export function isDigest(s: string): boolean {
  try {
    parseDigest(s);
    return true;
  } catch {
    return false;
  }
}

/** A running hash of the algorithm (sha256 unless told). */
export function newHash(algorithm = 'sha256'): Hash {
  if (!(algorithm in HEX_LENGTH)) throw invalidArgument(`unsupported digest algorithm ${JSON.stringify(algorithm)}`);
  return createHash(algorithm);
}

/** The sha256 digest of bytes. */
export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}
