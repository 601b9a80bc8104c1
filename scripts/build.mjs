#!/usr/bin/env node
// Builds everything `npm ci` needs: native-shims (make), the protobuf code in
// src/gen (buf generate, from proto/), a type check, and one esbuild bundle
// per CLI (CommonJS: loads faster than an ESM graph).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, chmodSync, rmSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });

run('make', ['-s', '-C', 'native-shims']);
generateProtos();
if (!process.argv.includes('--no-typecheck')) run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--noEmit']);

// proto/ -> src/gen (protobuf-es v2, `buf generate`): only when a .proto or
// the buf config is newer than the last generation (buf takes ~10 s here).
function generateProtos() {
  const protoDir = join(root, 'proto');
  const stamp = join(root, 'src', 'gen', '.stamp');
  const newest = (dir) =>
    readdirSync(dir, { withFileTypes: true, recursive: true })
      .filter((e) => e.isFile() && (e.name.endsWith('.proto') || e.name.startsWith('buf.')))
      .reduce((m, e) => Math.max(m, statSync(join(e.parentPath ?? e.path, e.name)).mtimeMs), 0);
  let done = 0;
  try {
    done = statSync(stamp).mtimeMs;
  } catch {
    /* never generated */
  }
  if (done && done >= newest(protoDir) && !process.argv.includes('--protos')) return;
  execFileSync(join(root, 'node_modules', '.bin', 'buf'), ['generate'], { cwd: protoDir, stdio: 'inherit' });
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
}

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
let commit = process.env.TSRUNC_COMMIT ?? 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
} catch {
  /* not a git checkout */
}

// commander requires child_process at load time for executable subcommands,
// which we never use: load it only if touched (saves ~3 ms per command).
const lazyChildProcess = {
  name: 'lazy-child-process',
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      args.importer.includes(`${join('node_modules', 'commander')}`) ? { path: 'child_process', namespace: 'lazy' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy' }, () => ({
      contents: 'module.exports = new Proxy({}, { get: (_, k) => require("node:child_process")[k] });',
      loader: 'js',
    }));
  },
};

// apply-worker: tsrund's layer applier thread (src/archive/layer-thread.ts)
const entries = { tsrunc: 'src/cli/tsrunc/bin.ts', tsrund: 'src/cli/tsrund/bin.ts', tsrctl: 'src/cli/tsrctl/bin.ts', 'apply-worker': 'src/archive/apply-worker.ts' };
mkdirSync(join(root, 'dist'), { recursive: true });
const loader = readFileSync(join(root, 'scripts', 'loader.cjs'), 'utf8');
for (const [name, entry] of Object.entries(entries)) {
  const outfile = join(root, 'dist', `${name}.bundle.cjs`);
  await build({
    entryPoints: [join(root, entry)],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: !process.env.TSRUNC_NO_MINIFY, // TSRUNC_NO_MINIFY=1: readable names in profiles
    keepNames: false,
    plugins: [lazyChildProcess],
    sourcemap: 'linked',
    // native parts stay in node_modules: koffi's platform package, lmdb (tsrund)
    external: ['@koromix/*', 'lmdb'],
    logLevel: 'warning',
    banner: { js: 'const __import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
    define: {
      'import.meta.url': '__import_meta_url',
      __TSRUNC_VERSION__: JSON.stringify(pkg.version),
      __TSRUNC_COMMIT__: JSON.stringify(commit),
    },
  });
  // dist/NAME.cjs: the bin, a loader that runs the bundle with V8's code cache.
  const bin = join(root, 'dist', `${name}.cjs`);
  writeFileSync(bin, loader.replaceAll('__NAME__', name));
  chmodSync(bin, 0o755);
  rmSync(`${outfile}.cache`, { force: true });
}

// The code cache: a run of the CLI's warm-up (no root, no side effects) with
// the loader told to save what V8 compiled.
execFileSync(process.execPath, [join(root, 'dist', 'tsrunc.cjs')], { env: { ...process.env, TSRUNC_BUILD_CODE_CACHE: '1' }, stdio: 'inherit' });
