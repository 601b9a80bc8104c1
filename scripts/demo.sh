#!/usr/bin/env bash
# Sets up what tsrunc needs on a Debian or Ubuntu machine, builds a busybox
# bundle from Debian's busybox-static, and runs it with `tsrunc run`.
# Run as root: sudo bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (containers need it): sudo bash $0" >&2; exit 1; }

major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 20 ]; then
  echo "demo: Node.js 20 or newer is needed (found: $(node --version 2>/dev/null || echo none))." >&2
  echo "      e.g. https://github.com/nodesource/distributions, or the Vagrantfile in this repository." >&2
  exit 1
fi
if ! command -v busybox >/dev/null || ! command -v make >/dev/null || ! command -v gcc >/dev/null; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends busybox-static gcc make libc6-dev
fi
[ -f dist/tsrunc.cjs ] && [ -f native-shims/build/libtsrunc.so ] || npm install --no-audit --no-fund

B=${DEMO_BUNDLE:-/tmp/tsrunc-demo}
rm -rf "$B"
mkdir -p "$B/rootfs"/{bin,etc,proc,sys,dev,tmp,root}
cp "$(command -v busybox)" "$B/rootfs/bin/busybox"
for a in $("$B/rootfs/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$B/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$B/rootfs/etc/passwd"
echo 'root:x:0:' >"$B/rootfs/etc/group"
node dist/tsrunc.cjs spec --bundle "$B"
# A one-shot command instead of the interactive shell of the default spec.
node -e '
  const fs = require("fs"); const f = process.argv[1] + "/config.json";
  const s = JSON.parse(fs.readFileSync(f, "utf8"));
  s.process.terminal = false;
  s.process.args = ["sh", "-c", "echo \"Hello from a tsrunc container: $(hostname), pid $$, user $(id -un)\"; uname -sr; ls /"];
  fs.writeFileSync(f, JSON.stringify(s, null, 2));' "$B"
echo "+ tsrunc run $B/"
exec node dist/tsrunc.cjs run "$B/"
