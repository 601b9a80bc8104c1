// tsrctl namespaces ls | create | label | rm
import { Namespaces } from '../../gen/containerd/services/namespaces/v1/namespace_pb.js';
import { out, err } from '../output.js';
import { dial, labelText, parseLabels, table } from './common.js';
import type { Globals } from './main.js';

export async function list(g: Globals, o: { format: 'table' | 'json'; quiet?: boolean }): Promise<void> {
  const conn = await dial(g);
  try {
    const { namespaces } = await conn.service(Namespaces).list({});
    if (o.quiet) return out(namespaces.map((n) => `${n.name}\n`).join(''));
    if (o.format === 'json') return out(`${JSON.stringify(namespaces.map((n) => ({ name: n.name, labels: n.labels })), null, 2)}\n`);
    out(table([['NAME', 'LABELS'], ...namespaces.map((n) => [n.name, labelText(n.labels)])]));
  } finally {
    conn.close();
  }
}

export async function create(g: Globals, name: string, labels: string[]): Promise<void> {
  const conn = await dial(g);
  try {
    await conn.service(Namespaces).create({ namespace: { name, labels: parseLabels(labels) } });
  } finally {
    conn.close();
  }
}

export async function label(g: Globals, name: string, labels: string[]): Promise<void> {
  const l = parseLabels(labels);
  const conn = await dial(g);
  try {
    await conn.service(Namespaces).update({ namespace: { name, labels: l }, updateMask: { paths: Object.keys(l).map((k) => `labels.${k}`) } });
  } finally {
    conn.close();
  }
}

export async function remove(g: Globals, names: string[]): Promise<number> {
  const conn = await dial(g);
  let failed = 0;
  try {
    for (const name of names) {
      try {
        await conn.service(Namespaces).delete({ name });
        out(`${name}\n`);
      } catch (e) {
        failed++;
        err(`tsrctl: ${(e as { details?: string }).details ?? (e as Error).message}\n`);
      }
    }
  } finally {
    conn.close();
  }
  return failed ? 1 : 0;
}
