// What the tsrctl verbs share: the connection, tables, labels, times.
import { connect, type Connection } from '../../client/index.js';
import type { Globals } from './main.js';

async function dial(g: Globals): Promise<Connection> {
  const conn = connect(g.address, { namespace: g.namespace });
  try {
    await conn.ready(5000);
  } catch (e) {
    conn.close();
    throw new Error(`cannot connect to tsrund at ${g.address}: ${(e as Error).message.replace(/^failed to dial "[^"]*": /, '')}`);
  }
  return conn;
}

/** Connects, runs `fn`, closes. */
export async function withConn<T>(g: Globals, fn: (conn: Connection) => Promise<T>): Promise<T> {
  const conn = await dial(g);
  try {
    return await fn(conn);
  } finally {
    conn.close();
  }
}

/** Columns padded to the widest cell plus 3 spaces, as docker prints tables. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length)) + 3);
  return rows.map((r) => r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col]!))).join('').trimEnd() + '\n').join('');
}

export function parseLabels(args: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const a of args) {
    const i = a.indexOf('=');
    if (i <= 0) throw new Error(`label ${JSON.stringify(a)}: expected KEY=VALUE`);
    labels[a.slice(0, i)] = a.slice(i + 1);
  }
  return labels;
}

export function labelText(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

/** "5 minutes ago", as docker prints creation times. */
export function ago(d: Date, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - d.getTime()) / 1000));
  const unit = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'} ago`;
  if (s < 1) return 'Less than a second ago';
  if (s < 60) return unit(s, 'second');
  if (s < 3600) return unit(Math.round(s / 60), 'minute');
  if (s < 86400) return unit(Math.round(s / 3600), 'hour');
  return unit(Math.round(s / 86400), 'day');
}
