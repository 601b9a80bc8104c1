import { features } from '../../runtime/features.js';
import { out } from '../output.js';
import type { Globals } from './main.js';

export default async function featuresVerb(_g: Globals): Promise<void> {
  out(`${JSON.stringify(await features(), null, 4)}\n`);
}
