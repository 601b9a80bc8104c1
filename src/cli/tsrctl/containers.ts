// tsrctl containers ls | info | rm (rm takes the container's snapshot with it, as ctr's does)
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { Containers, type Container } from '../../gen/containerd/services/containers/v1/containers_pb.js';
import { Snapshots } from '../../gen/containerd/services/snapshots/v1/snapshots_pb.js';
import { statusName } from '../../client/index.js';
import { out, err } from '../output.js';
import { ago, table, withConn } from './common.js';
import type { Globals } from './main.js';

/** A container as JSON, the spec (runtime-spec JSON) decoded when it parses. */
export function containerJson(c: Container): Record<string, unknown> {
  const any = (a: { typeUrl: string; value: Uint8Array } | undefined): unknown =>
    a ? { type_url: a.typeUrl, value: Buffer.from(a.value).toString('base64') } : undefined;
  let spec: unknown = any(c.spec);
  if (c.spec) {
    try {
      spec = JSON.parse(Buffer.from(c.spec.value).toString('utf8'));
    } catch {
      /* not JSON: shown as type_url + base64 */
    }
  }
  return {
    ID: c.id,
    Labels: c.labels,
    Image: c.image,
    Runtime: { Name: c.runtime?.name ?? '', Options: any(c.runtime?.options) },
    SnapshotKey: c.snapshotKey,
    Snapshotter: c.snapshotter,
    CreatedAt: c.createdAt ? timestampDate(c.createdAt).toISOString() : undefined,
    UpdatedAt: c.updatedAt ? timestampDate(c.updatedAt).toISOString() : undefined,
    Extensions: Object.fromEntries(Object.entries(c.extensions).map(([k, v]) => [k, any(v)])),
    Spec: spec,
  };
}

export async function list(g: Globals, filters: string[], o: { format: 'table' | 'json'; quiet?: boolean }): Promise<void> {
  await withConn(g, async (conn) => {
    const cs: Container[] = [];
    for await (const m of conn.service(Containers).listStream({ filters })) if (m.container) cs.push(m.container);
    if (o.quiet) return out(cs.map((c) => `${c.id}\n`).join(''));
    if (o.format === 'json') return out(`${JSON.stringify(cs.map(containerJson), null, 2)}\n`);
    const rows = [['CONTAINER', 'IMAGE', 'RUNTIME', 'CREATED']];
    for (const c of cs) rows.push([c.id, c.image || '-', c.runtime?.name ?? '', c.createdAt ? ago(timestampDate(c.createdAt)) : '']);
    out(table(rows));
  });
}

export async function info(g: Globals, id: string, o: { spec?: boolean }): Promise<void> {
  await withConn(g, async (conn) => {
    const { container } = await conn.service(Containers).get({ id });
    const j = containerJson(container!);
    out(`${JSON.stringify(o.spec ? j['Spec'] : j, null, 4)}\n`);
  });
}

export async function remove(g: Globals, ids: string[]): Promise<number> {
  let failed = 0;
  await withConn(g, async (conn) => {
    for (const id of ids) {
      try {
        const { container } = await conn.service(Containers).get({ id });
        await conn.service(Containers).delete({ id });
        if (container?.snapshotter && container.snapshotKey) {
          await conn
            .service(Snapshots)
            .remove({ snapshotter: container.snapshotter, key: container.snapshotKey })
            .catch((e: unknown) => {
              if (statusName(e) !== 'NOT_FOUND') throw e;
            });
        }
      } catch (e) {
        failed++;
        err(`tsrctl: ${(e as { details?: string }).details ?? (e as Error).message}\n`);
      }
    }
  });
  return failed ? 1 : 0;
}
