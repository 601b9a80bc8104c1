#!/usr/bin/env node
// Runs the test suites with tap and ends with one line counted from tap's own
// results: `N passed, N failed, N skipped`. Arguments: test dirs or files
// (default: test/unit test/integration test/compat). Integration and
// compatibility tests (real container engines driving tsrunc) need root, and
// the engines' packages; they say why they skip without them.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const targets = process.argv.slice(2).length ? process.argv.slice(2) : ['test/unit', 'test/integration', 'test/compat'];
const tap = join(root, 'node_modules', '.bin', 'tap');
const child = spawn(tap, ['--reporter=tap', '--jobs=2', ...targets], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });

let summary;
let tail = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  tail = (tail + chunk.toString()).slice(-4096);
});
child.on('close', (code) => {
  // tap's last lines hold "# { total: N, pass: N, fail: N, skip: N, todo: N }".
  const m = /# \{ (total: [^}]*)\}/.exec(tail);
  const counts = { total: 0, pass: 0, fail: 0, skip: 0, todo: 0 };
  if (m) for (const part of m[1].split(',')) {
    const [k, v] = part.split(':').map((s) => s.trim());
    if (k in counts) counts[k] = Number(v);
  }
  summary = `${counts.pass} passed, ${counts.fail} failed, ${counts.skip + counts.todo} skipped`;
  if (!m) process.stdout.write('\n# tap printed no summary\n');
  process.stdout.write(`${summary}\n`);
  process.exit(code === 0 && m && counts.fail === 0 ? 0 : 1);
});
