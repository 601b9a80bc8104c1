#!/usr/bin/env node
// Bundles each test/vm/*.test.ts, tap included, into one ESM file under
// dist/vm-tests/. In the VM lane (software emulation, the checkout on 9p)
// tap's runner and its TypeScript loader take ~2 minutes to start; one
// bundled file starts in about a second.
import { build } from 'esbuild';
import { readdirSync, rmSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = join(root, 'dist', 'vm-tests');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const files = process.argv.slice(2).length
  ? process.argv.slice(2)
  : readdirSync(join(root, 'test', 'vm')).filter((f) => f.endsWith('.test.ts')).map((f) => join('test', 'vm', f));
for (const f of files) {
  await build({
    entryPoints: [join(root, f)],
    // two levels below the root, as test/helpers is: the helpers find dist/ and the repo from there
    outfile: join(out, f.replace(/^.*\//, '').replace(/\.ts$/, '.mjs')),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    // some of tap's dependencies are CommonJS that call require()
    banner: { js: "import { createRequire as __tsruncRequire } from 'node:module'; const require = __tsruncRequire(import.meta.url);" },
    logLevel: 'warning',
  });
}
console.log(`bundled ${files.length} VM test file(s) into ${out}`);
