// tsrctl namespaces ls | create | label | rm
import { Namespaces } from '../../gen/containerd/services/namespaces/v1/namespace_pb.js';
import { out, err } from '../output.js';
import { labelText, parseLabels, table, withConn } from './common.js';
import type { Globals } from './main.js';

export async function list(g: Globals, o: { format: 'table' | 'json'; quiet?: boolean }): Promise<void> {
  await withConn(g, async (conn) => {
    const { namespaces } = await conn.service(Namespaces).list({});
    if (o.quiet) return out(namespaces.map((n) => `${n.name}\n`).join(''));
    if (o.format === 'json') return out(`${JSON.stringify(namespaces.map((n) => ({ name: n.name, labels: n.labels })), null, 2)}\n`);
    out(table([['NAME', 'LABELS'], ...namespaces.map((n) => [n.name, labelText(n.labels)])]));
  });
}

export async function create(g: Globals, name: string, labels: string[]): Promise<void> {
  await withConn(g, (conn) => conn.service(Namespaces).create({ namespace: { name, labels: parseLabels(labels) } }));
}

export async function label(g: Globals, name: string, labels: string[]): Promise<void> {
  const l = parseLabels(labels);
  await withConn(g, (conn) => conn.service(Namespaces).update({ namespace: { name, labels: l }, updateMask: { paths: Object.keys(l).map((k) => `labels.${k}`) } }));
}

export async function remove(g: Globals, names: string[]): Promise<number> {
  let failed = 0;
  await withConn(g, async (conn) => {
    for (const name of names) {
      try {
        await conn.service(Namespaces).delete({ name });
        out(`${name}\n`);
      } catch (e) {
        failed++;
        err(`tsrctl: ${(e as { details?: string }).details ?? (e as Error).message}\n`);
      }
    }
  });
  return failed ? 1 : 0;
}
