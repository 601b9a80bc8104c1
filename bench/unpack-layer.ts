// Layer extraction: tsrund's applier (own tar reader + fd-relative writes)
// against GNU tar on the same layer of many small files, plain and gzip.
// Run as root: bash bench/unpack-layer.sh [files] (builds this with esbuild).
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyLayer, MEDIA_TYPE_LAYER, MEDIA_TYPE_LAYER_GZIP } from '../src/archive/layer.js';

async function main(): Promise<void> {
const files = Number(process.argv[2] ?? 20000);
const rounds = Number(process.argv[3] ?? 3);
const dir = mkdtempSync(join(process.env['BENCH_DIR'] ?? tmpdir(), 'tsrunc-bench-unpack-'));
try {
  const src = join(dir, 'src');
  // a deterministic tree: 100 files per directory, 200 B to 8 KiB each
  let seed = 1;
  const rand = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let i = 0; i < files; i++) {
    const d = join(src, `d${Math.floor(i / 1000)}`, `s${Math.floor(i / 100) % 10}`);
    if (i % 100 === 0) mkdirSync(d, { recursive: true });
    const size = 200 + Math.floor(rand() * 8000);
    const buf = Buffer.alloc(size);
    for (let j = 0; j < size; j += 4) buf.writeUInt32LE((rand() * 0xffffffff) >>> 0, Math.min(j, size - 4));
    writeFileSync(join(d, `f${i}.txt`), buf.toString('base64').slice(0, size));
  }
  const tar = join(dir, 'layer.tar');
  execFileSync('tar', ['-C', src, '--format=posix', '--xattrs', '-cf', tar, '.']);
  execFileSync('sh', ['-c', `gzip -1 -c ${tar} > ${tar}.gz`]);
  const mb = statSync(tar).size / 1e6;
  console.log(`layer: ${files} files, ${mb.toFixed(1)} MB tar, ${(statSync(`${tar}.gz`).size / 1e6).toFixed(1)} MB gz`);

  const time = async (what: string, fn: (dst: string) => Promise<void> | void): Promise<number> => {
    const times: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const dst = join(dir, `dst-${what.replace(/\W/g, '')}-${r}`);
      mkdirSync(dst);
      execFileSync('sync');
      const t0 = process.hrtime.bigint();
      await fn(dst);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      rmSync(dst, { recursive: true, force: true });
    }
    const best = Math.min(...times);
    console.log(`${what.padEnd(28)} best ${best.toFixed(0)} ms of ${times.map((x) => x.toFixed(0)).join(', ')}  (${(mb / (best / 1000)).toFixed(0)} MB/s uncompressed)`);
    return best;
  };
  const gnu = await time('GNU tar -x --xattrs', (dst) => void execFileSync('tar', ['-C', dst, '--xattrs', '--xattrs-include=*', '-xf', tar]));
  const ours = await time('tsrund applyLayer (tar)', async (dst) => void (await applyLayer(createReadStream(tar, { highWaterMark: 1 << 20 }), MEDIA_TYPE_LAYER, { root: dst, whiteouts: 'overlay' })));
  const gnuz = await time('GNU tar -xz --xattrs', (dst) => void execFileSync('tar', ['-C', dst, '--xattrs', '--xattrs-include=*', '-xzf', `${tar}.gz`]));
  const oursz = await time('tsrund applyLayer (gzip)', async (dst) => void (await applyLayer(createReadStream(`${tar}.gz`, { highWaterMark: 1 << 20 }), MEDIA_TYPE_LAYER_GZIP, { root: dst, whiteouts: 'overlay' })));
  console.log(`ratio tsrund/GNU tar: tar ${(ours / gnu).toFixed(2)}x, gzip ${(oursz / gnuz).toFixed(2)}x (below 1 is faster)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
