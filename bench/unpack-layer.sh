#!/bin/bash
# Layer extraction speed: tsrund's applier against GNU tar (see unpack-layer.ts),
# on a tmpfs so that the disk (shared, noisy here) does not decide the figures;
# BENCH_DISK=1 runs it on the disk under /tmp instead.
# Usage (root): bash bench/unpack-layer.sh [files=20000] [rounds=3]
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d /tmp/tsrunc-bench-unpack-build-XXXXXX)
cleanup() {
  mountpoint -q "$out/fs" && umount "$out/fs"
  rm -rf "$out"
}
trap cleanup EXIT
npx esbuild bench/unpack-layer.ts --bundle --platform=node --format=cjs --log-level=error \
  --external:koffi --outfile="$out/unpack-layer.cjs"
mkdir "$out/fs"
if [ -z "${BENCH_DISK:-}" ]; then mount -t tmpfs -o size=3g tsrunc-bench-unpack "$out/fs"; fi
BENCH_DIR="$out/fs" NODE_PATH="$PWD/node_modules" node "$out/unpack-layer.cjs" "$@"
