// tsrctl push REF: the daemon uploads the image named REF (tsrund's
// Transfer service, from its content store) and streams progress, printed
// as docker prints it. Credentials come from ~/.docker/config.json.
import { Transfer } from '../../gen/tsrund/services/transfer/v1/transfer_pb.js';
import { formatReference, parseReference } from '../../images/reference.js';
import { out } from '../output.js';
import { withConn } from './common.js';
import type { Globals } from './main.js';
import { ProgressPrinter } from './progress.js';
import { platformMessage, registryOptions, type RegistryFlags } from './pull.js';

export default async function push(g: Globals, ref: string, o: RegistryFlags & { quiet?: boolean; to?: string }): Promise<void> {
  const name = formatReference(parseReference(ref));
  const dest = parseReference(o.to ?? ref);
  const printer = new ProgressPrinter(!o.quiet && process.stdout.isTTY === true, o.quiet ? () => {} : out);
  await withConn(g, async (conn) => {
    let digest = '';
    const stream = conn.service(Transfer).push({ name, ref: formatReference(dest), platform: platformMessage(o.platform), registry: registryOptions(dest.domain, o) });
    for await (const p of stream) {
      if (p.kind.case === 'done') digest = p.kind.value.digest;
      else printer.handle(p);
    }
    if (!digest) throw new Error(`push ${ref}: the daemon ended the push without a result`);
    if (o.quiet) out(`${digest}\n`);
  });
}
