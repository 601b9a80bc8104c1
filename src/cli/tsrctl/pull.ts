// tsrctl pull REF: the daemon pulls (tsrund's Transfer service: straight
// into its content store and snapshots) and streams progress, printed as
// docker prints it. Credentials come from ~/.docker/config.json.
import type { Connection } from '../../client/index.js';
import { Transfer, type TransferDone } from '../../gen/tsrund/services/transfer/v1/transfer_pb.js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { RegistryAuthSchema, RegistryOptionsSchema } from '../../gen/tsrund/services/transfer/v1/transfer_pb.js';
import { credentialsFor } from '../../images/registry/credentials.js';
import { parsePlatform } from '../../images/media.js';
import { familiarName, formatReference, parseReference } from '../../images/reference.js';
import { out, err } from '../output.js';
import { withConn } from './common.js';
import type { Globals } from './main.js';
import { ProgressPrinter } from './progress.js';

export interface RegistryFlags {
  insecureRegistry?: string[];
  platform?: string;
}

/** The registry options for a domain: the client's credentials for it, the insecure hosts. */
export function registryOptions(domain: string, flags: RegistryFlags): MessageInitShape<typeof RegistryOptionsSchema> {
  const auth: Array<MessageInitShape<typeof RegistryAuthSchema>> = [];
  const c = credentialsFor(domain);
  if (c) auth.push({ host: domain, username: c.username ?? '', secret: c.secret ?? '', identityToken: c.identityToken ?? '' });
  return { auth, insecure: flags.insecureRegistry ?? [] };
}

export function platformMessage(p: string | undefined) {
  if (!p) return undefined;
  const x = parsePlatform(p);
  return { os: x.os, architecture: x.architecture, variant: x.variant ?? '' };
}

/**
 * Pulls through the daemon, printing progress (on stdout, or on stderr as
 * `run` prints it, docker's way: stdout is the container's); returns what
 * the daemon reports at the end.
 */
export async function pullWithProgress(
  conn: Connection,
  ref: string,
  flags: RegistryFlags & { quiet?: boolean; skipUnpack?: boolean; snapshotter?: string; toStderr?: boolean },
): Promise<TransferDone> {
  const r = parseReference(ref);
  const write = flags.toStderr ? err : out;
  const tty = !flags.quiet && (flags.toStderr ? process.stderr : process.stdout).isTTY === true;
  const printer = new ProgressPrinter(tty, flags.quiet ? () => {} : write);
  let done: TransferDone | undefined;
  const stream = conn.service(Transfer).pull({
    ref: formatReference(r),
    platform: platformMessage(flags.platform),
    registry: registryOptions(r.domain, flags),
    snapshotter: flags.snapshotter ?? '',
    skipUnpack: flags.skipUnpack ?? false,
  });
  for await (const p of stream) {
    if (p.kind.case === 'done') done = p.kind.value;
    else printer.handle(p);
  }
  if (!done) throw new Error(`pull ${ref}: the daemon ended the pull without a result`);
  if (!flags.quiet) {
    write(`Digest: ${done.digest}\n`);
    write(`Status: ${done.updated ? 'Downloaded newer image' : 'Image is up to date'} for ${familiarName(r)}\n`);
  }
  return done;
}

export default async function pull(g: Globals, ref: string, o: RegistryFlags & { quiet?: boolean; unpack?: boolean; snapshotter?: string }): Promise<void> {
  const r = parseReference(ref);
  await withConn(g, async (conn) => {
    if (!o.quiet && !/:[\w][\w.-]*$|@/.test(ref.slice(ref.lastIndexOf('/') + 1))) out(`Using default tag: ${r.tag}\n`);
    await pullWithProgress(conn, ref, { ...o, skipUnpack: o.unpack === false });
    out(`${formatReference(r)}\n`);
  });
}
