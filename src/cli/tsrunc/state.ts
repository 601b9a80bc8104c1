import { containerState } from '../../runtime/container.js';
import type { Globals } from './main.js';

export default function state(g: Globals, id: string): void {
  process.stdout.write(`${JSON.stringify(containerState(g.root, id), null, 2)}\n`);
}
