import { execFileSync } from 'node:child_process';
import { containerPids } from '../../runtime/container.js';
import { out } from '../output.js';
import type { Globals } from './main.js';

/**
 * The processes of a container: their host pids (json), or the host's ps
 * output (default `ps -ef`) cut down to them, as runc prints it.
 */
export default function ps(g: Globals, id: string, psArgs: string[], o: { format: 'table' | 'json' }): void {
  const pids = containerPids(g.root, id);
  if (o.format === 'json') {
    out(`${JSON.stringify(pids)}\n`);
    return;
  }
  let text: string;
  try {
    text = execFileSync('ps', psArgs.length ? psArgs : ['-ef'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    throw new Error(`ps ${psArgs.join(' ')}: ${err.code === 'ENOENT' ? 'ps is not installed (procps)' : (err.stderr ?? err.message).trim()}`);
  }
  const lines = text.split('\n');
  const pidIndex = lines[0]!.trim().split(/\s+/).indexOf('PID');
  if (pidIndex < 0) throw new Error(`ps ${psArgs.join(' ')}: no PID column in its output`);
  const wanted = new Set(pids);
  const rows = lines.slice(1).filter((l) => l.trim() && wanted.has(Number(l.trim().split(/\s+/)[pidIndex])));
  out(`${[lines[0], ...rows].join('\n')}\n`);
}
