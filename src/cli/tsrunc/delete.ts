import { deleteContainer } from '../../runtime/container.js';
import type { Globals } from './main.js';

export default function del(g: Globals, id: string, o: { force?: boolean }): void {
  deleteContainer(g.root, id, o.force ?? false, g.log);
}
