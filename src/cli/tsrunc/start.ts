import { startContainer } from '../../runtime/container.js';
import type { Globals } from './main.js';

export default function start(g: Globals, id: string): void {
  startContainer(g.root, id, g.log);
}
