import { containerState } from '../../runtime/container.js';
import type { Globals } from './main.js';
import { out } from '../output.js';

export default function state(g: Globals, id: string): void {
  out(`${JSON.stringify(containerState(g.root, id), null, 2)}\n`);
}
