// `events [--stats] [--interval D] ID`: JSON lines as runc prints them,
// {"type":"stats","id":...,"data":{...}} and {"type":"oom","id":...}.
import { containerStats, watchEvents } from '../../runtime/cgroups/lifecycle.js';
import { toJson } from '../../runtime/cgroups/stats.js';
import { out } from '../output.js';
import type { Globals } from './main.js';

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration ("5s", "1m30s", "250ms") in milliseconds; NaN if malformed. */
export function parseDuration(s: string): number {
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m; (m = re.exec(s)); ) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    matched = re.lastIndex;
  }
  return matched === s.length && matched > 0 ? total : NaN;
}

export default async function events(g: Globals, id: string, o: { stats?: boolean; interval: string }): Promise<void> {
  const ms = parseDuration(o.interval);
  if (Number.isNaN(ms)) throw new Error(`--interval: "${o.interval}" is not a duration like 5s or 500ms`);
  if (ms <= 0) throw new Error('duration interval must be greater than 0');
  if (o.stats) {
    out(`${toJson({ type: 'stats', id, data: containerStats(g.root, id) })}\n`);
    return;
  }
  await watchEvents(g.root, id, {
    intervalMs: ms,
    onEvent: (e) => out(`${toJson(e)}\n`),
    onError: (e) => g.log.warn(e.message),
  });
}
