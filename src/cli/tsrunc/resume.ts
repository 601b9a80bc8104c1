import { resumeContainer } from '../../runtime/cgroups/lifecycle.js';
import type { Globals } from './main.js';

export default function resume(g: Globals, id: string): void {
  resumeContainer(g.root, id);
}
