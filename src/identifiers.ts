// Validation of identifiers (namespaces, container ids, topic components) and
// labels, with containerd's rules and messages (identifiers/validate.go,
// labels/validate.go). Valid identifiers are safe as path components.
import { invalidArgument } from './errdefs.js';

const MAX_LENGTH = 76;
const IDENTIFIER_RE = /^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$/;
/** the pattern as containerd prints it in its message */
const IDENTIFIER_RE_TEXT = '^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$';

export function validateIdentifier(s: string): void {
  if (s.length === 0) throw invalidArgument('identifier must not be empty');
  if (s.length > MAX_LENGTH) throw invalidArgument(`identifier ${JSON.stringify(s)} greater than maximum length (${MAX_LENGTH} characters)`);
  if (!IDENTIFIER_RE.test(s)) throw invalidArgument(`identifier ${JSON.stringify(s)} must match ${IDENTIFIER_RE_TEXT}`);
}

export function isValidIdentifier(s: string): boolean {
  return s.length > 0 && s.length <= MAX_LENGTH && IDENTIFIER_RE.test(s);
}

const MAX_LABEL_SIZE = 4096;

/** A label's key and value together must stay under 4096 bytes. */
export function validateLabel(key: string, value: string): void {
  if (Buffer.byteLength(key) + Buffer.byteLength(value) > MAX_LABEL_SIZE) {
    const k = key.length > 10 ? key.slice(0, 10) : key;
    throw invalidArgument(`label key and value greater than maximum size (${MAX_LABEL_SIZE} bytes), key: ${k}`);
  }
}

export function validateLabels(labels: Record<string, string>, what: string): void {
  for (const [k, v] of Object.entries(labels)) {
    try {
      validateLabel(k, v);
    } catch (e) {
      throw invalidArgument(`${what}: ${(e as Error & { detail: string }).detail}`);
    }
  }
}
