#!/usr/bin/env node
// Runs bundled test files (test/vm/build.mjs) one after the other with plain
// node, prints their TAP, and ends with one line counted from tap's own
// summaries: `N passed, N failed, N skipped` (as scripts/test.mjs does).
import { spawn } from 'node:child_process';

const counts = { pass: 0, fail: 0, skip: 0, todo: 0 };
let failed = false;
for (const file of process.argv.slice(2)) {
  const started = Date.now();
  process.stdout.write(`# ${file}\n`);
  // tap's own limit for a file run by hand is 30 s: far too short under emulation
  const env = { ...process.env, TAP_TIMEOUT: process.env.TAP_TIMEOUT ?? '600' };
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'], env });
  let tail = '';
  let partial = '';
  child.stdout.on('data', (chunk) => {
    // each top-level subtest stamped with the seconds since the file started (the lane is slow: where does it go?)
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (/^ {0,4}# Subtest/.test(line)) process.stdout.write(`# [${((Date.now() - started) / 1000).toFixed(1)} s]\n`);
      process.stdout.write(`${line}\n`);
    }
    tail = (tail + chunk.toString()).slice(-4096);
  });
  const code = await new Promise((resolve) => child.on('close', (c, sig) => resolve(sig ? 128 : c)));
  if (partial) process.stdout.write(`${partial}\n`);
  // the last lines of a tap file: "# { total: N, pass: N, fail: N, skip: N }"
  const m = /# \{ (total: [^}]*)\}/.exec(tail);
  if (m) {
    for (const part of m[1].split(',')) {
      const [k, v] = part.split(':').map((s) => s.trim());
      if (k in counts) counts[k] += Number(v);
    }
  } else {
    process.stdout.write(`# ${file}: no tap summary (exit status ${code})\n`);
    counts.fail += 1;
  }
  if (code !== 0) failed = true;
  process.stdout.write(`# ${file}: ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}
process.stdout.write(`${counts.pass} passed, ${counts.fail} failed, ${counts.skip + counts.todo} skipped\n`);
process.exit(failed || counts.fail ? 1 : 0);
