import { listContainers } from '../../runtime/container.js';
import type { Globals } from './main.js';
import { out } from '../output.js';

/** Go's tabwriter as runc configures it: min width 12, padding 3. */
export function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, col) => Math.max(12, ...rows.map((r) => r[col]!.length + 3)));
  return rows.map((r) => r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col]!))).join('') + '\n').join('');
}

export default function list(g: Globals, o: { format: 'table' | 'json'; quiet?: boolean }): void {
  const entries = listContainers(g.root);
  if (o.quiet) {
    out(entries.map((e) => `${e.state.id}\n`).join(''));
    return;
  }
  if (o.format === 'json') {
    out(`${JSON.stringify(entries.map((e) => ({ ...e.state, owner: e.owner })))}\n`);
    return;
  }
  const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER']];
  for (const { state: s, owner } of entries) rows.push([s.id, String(s.pid), s.status, s.bundle, s.created, owner]);
  out(formatTable(rows));
}
