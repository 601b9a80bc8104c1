import { pauseContainer } from '../../runtime/cgroups/lifecycle.js';
import type { Globals } from './main.js';

export default function pause(g: Globals, id: string): void {
  pauseContainer(g.root, id);
}
