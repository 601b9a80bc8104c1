#!/usr/bin/env node
// Builds everything `npm ci` needs: native-shims (make), a type check, and one
// esbuild bundle per CLI (CommonJS: loads faster than an ESM graph).
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdirSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });

run('make', ['-s', '-C', 'native-shims']);
if (!process.argv.includes('--no-typecheck')) run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--noEmit']);

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
let commit = process.env.TSRUNC_COMMIT ?? 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
} catch {
  /* not a git checkout */
}

const entries = { tsrunc: 'src/cli/tsrunc/bin.ts', tsrund: 'src/cli/tsrund/bin.ts', tsrctl: 'src/cli/tsrctl/bin.ts' };
mkdirSync(join(root, 'dist'), { recursive: true });
for (const [name, entry] of Object.entries(entries)) {
  const outfile = join(root, 'dist', `${name}.cjs`);
  await build({
    entryPoints: [join(root, entry)],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minifySyntax: true,
    sourcemap: 'linked',
    external: ['koffi'],
    logLevel: 'warning',
    banner: { js: '#!/usr/bin/env node\nconst __import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
    define: {
      'import.meta.url': '__import_meta_url',
      __TSRUNC_VERSION__: JSON.stringify(pkg.version),
      __TSRUNC_COMMIT__: JSON.stringify(commit),
    },
  });
  chmodSync(outfile, 0o755);
}
