import { main } from './main.js';
import { exitNow } from '../exit.js';

void main(process.argv.slice(2)).then(exitNow);
