import { killContainer } from '../../runtime/container.js';
import { parseSignal } from '../../linux/signals.js';
import type { Globals } from './main.js';

export default function kill(g: Globals, id: string, signal: string, o: { all?: boolean }): void {
  const sig = parseSignal(signal);
  if (sig === undefined) throw new Error(`unknown signal "${signal}"`);
  killContainer(g.root, id, sig, o.all ?? false);
}
