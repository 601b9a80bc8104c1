// tsrctl events: Events.Subscribe, printed as ctr prints it
// (`TIME NAMESPACE TOPIC {event as JSON}`) or as JSON lines. Runs until
// interrupted or the daemon stops.
import { toJson, type Registry } from '@bufbuild/protobuf';
import { timestampDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import { Events, type Envelope } from '../../gen/containerd/services/events/v1/events_pb.js';
import { eventRegistry } from '../../events/registry.js';
import { unpackAnyWith } from '../../typeurl.js';
import { out } from '../output.js';
import { withConn } from './common.js';
import type { Globals } from './main.js';

/** Go's time.Time String() in UTC: "2006-01-02 15:04:05.999999999 +0000 UTC". */
export function goTime(ts: Timestamp | undefined): string {
  if (!ts) return '0001-01-01 00:00:00 +0000 UTC';
  const iso = timestampDate(ts).toISOString(); // ms precision; nanos from the timestamp
  const frac = String(ts.nanos).padStart(9, '0').replace(/0+$/, '');
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${frac ? `.${frac}` : ''} +0000 UTC`;
}

/** The event of an envelope as JSON (proto field names), or null when unknown. */
export function eventJson(env: Envelope, registry: Registry): unknown {
  if (!env.event) return null;
  const msg = unpackAnyWith(env.event, registry);
  const desc = msg && registry.getMessage(msg.$typeName);
  if (!msg || !desc) return { type_url: env.event.typeUrl, value: Buffer.from(env.event.value).toString('base64') };
  try {
    return toJson(desc, msg, { useProtoFieldName: true, registry });
  } catch {
    return { type_url: env.event.typeUrl, value: Buffer.from(env.event.value).toString('base64') };
  }
}

export default async function events(g: Globals, filters: string[], o: { format: 'text' | 'json' }): Promise<number> {
  const registry = eventRegistry();
  await withConn(g, async (conn) => {
    const stream = conn.service(Events).subscribe({ filters }, { namespace: '' });
    const stop = (): void => stream.cancel();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      for await (const env of stream) {
        const event = eventJson(env, registry);
        if (o.format === 'json') {
          out(`${JSON.stringify({ timestamp: env.timestamp ? timestampDate(env.timestamp).toISOString() : null, namespace: env.namespace, topic: env.topic, event })}\n`);
        } else {
          out(`${goTime(env.timestamp)} ${env.namespace} ${env.topic} ${JSON.stringify(event)}\n`);
        }
      }
    } catch (e) {
      if ((e as { code?: number }).code !== 1 /* CANCELLED: we stopped it */) throw e;
    }
  });
  return 0;
}
