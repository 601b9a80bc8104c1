#!/usr/bin/env bash
# bench/pull.sh [ROUNDS]
#
# Cold pull + unpack from a local registry: tsrund (through `tsrctl pull`
# and through `ctr images pull --plain-http` against it) against containerd
# 1.6 (`ctr images pull --plain-http`), in interleaved rounds on the same
# machine (only ratios taken in the same run mean anything here), of
#   busybox  one layer: busybox-static and its applet links
#   big      4 layers, ~160 MB (~110 MB gz) with many small files: the busybox
#            rootfs, 64 MB random (8 files), 4000 x 8 KiB text files, a copy
#            of /usr/lib/python3.11 (or $REAL_DIR)
# Both images are built here (GNU tar, gzip) as OCI layouts and pushed with
# skopeo to Debian's docker-registry on 127.0.0.1:<free port>, storage in
# the temp dir. Before each run the image goes with `ctr images rm --sync`
# (content and snapshots collected: checked), so every run is cold.
# Then, for where the time goes, `ctr content fetch` (download only) against
# both daemons.
# RESTART=1 restarts both daemons before each round (containerd's pulls get
# slower over one daemon's life here: 2.1 s -> 6.7 s over 9 rounds, its CPU alike).
# ONLY="tsrctl ctr-tsrund" runs just those on the big image (no summary);
# TSRUND_NODE_ARGS passes node flags to tsrund (--cpu-prof ...), for diagnosis.
# Needs root, docker-registry, skopeo, containerd (ctr), busybox-static, jq,
# python3. Everything lives in a temp dir; daemons are stopped by pid and
# what they leave on the host removed.
set -euo pipefail
ROUNDS=${1:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
. "$HERE/lib.sh"
for tool in docker-registry skopeo containerd ctr jq busybox python3 gzip; do
  command -v "$tool" >/dev/null || { echo "bench/pull.sh needs $tool" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "bench/pull.sh needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "bench/pull.sh needs root (overlay snapshots)" >&2; exit 2; }
REAL_DIR=${REAL_DIR:-/usr/lib/python3.11}
[ -d "$REAL_DIR" ] || REAL_DIR=/usr/share/doc

W=$(mktemp -d /tmp/tsrunc-bench-pull.XXXXXX)
# TMPFS=1: everything (registry, both daemons' roots) on a tmpfs, so that the
# disk's state (this VM's file creations slow down 10x after some churn)
# does not decide the figures: what is left is CPU, as on a quiet disk.
[ -z "${TMPFS:-}" ] || mount -t tmpfs -o size=6g tsrunc-bench-pull "$W"
chmod 755 "$W"
created=()
for p in /run/containerd/s /run/containerd/fifo /run/containerd; do [ -e "$p" ] || created+=("$p"); done
pids=()
cleanup() {
  set +e
  lab_cleanup
  if [ -n "${TMPFS:-}" ]; then umount "$W" && rmdir "$W"; fi
}
trap cleanup EXIT

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---- images --------------------------------------------------------------
# layer SRC_DIR LAYOUT: a reproducible tar+gzip layer of SRC_DIR into the
# layout's blobs; prints "<gz digest> <gz size> <tar digest> <tar size>"
layer() {
  local src=$1 layout=$2 tmp=$2/tmp-layer
  tar -C "$src" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$tmp.tar" .
  gzip -n -6 -c "$tmp.tar" >"$tmp.gz"
  local gd td gs ts
  gd=$(sha "$tmp.gz"); td=$(sha "$tmp.tar"); gs=$(stat -c %s "$tmp.gz"); ts=$(stat -c %s "$tmp.tar")
  mv "$tmp.gz" "$layout/blobs/sha256/$gd"
  rm -f "$tmp.tar"
  echo "$gd $gs $td $ts"
}
# image NAME SRC_DIR...: an OCI layout $W/img/NAME of one layer per source dir
image() {
  local name=$1; shift
  local layout=$W/img/$name
  mkdir -p "$layout/blobs/sha256"
  local layers='[]' diffs='[]' gz=0 raw=0
  for src in "$@"; do
    read -r gd gs td ts < <(layer "$src" "$layout")
    layers=$(jq -c --arg d "sha256:$gd" --argjson s "$gs" '. + [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $d, size: $s}]' <<<"$layers")
    diffs=$(jq -c --arg d "sha256:$td" '. + [$d]' <<<"$diffs")
    gz=$((gz + gs)); raw=$((raw + ts))
  done
  jq -cn --argjson d "$diffs" '{architecture: "amd64", os: "linux", config: {Env: ["PATH=/bin"], Cmd: ["/bin/sh"]}, rootfs: {type: "layers", diff_ids: $d}}' >"$layout/config"
  local cd cs; cd=$(sha "$layout/config"); cs=$(stat -c %s "$layout/config"); mv "$layout/config" "$layout/blobs/sha256/$cd"
  jq -cn --arg c "sha256:$cd" --argjson cs "$cs" --argjson l "$layers" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs}, layers: $l}' >"$layout/manifest"
  local md ms; md=$(sha "$layout/manifest"); ms=$(stat -c %s "$layout/manifest"); mv "$layout/manifest" "$layout/blobs/sha256/$md"
  jq -cn --arg d "sha256:$md" --argjson s "$ms" '{schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s, annotations: {"org.opencontainers.image.ref.name": "latest"}}]}' >"$layout/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  echo "$gz $raw" >"$W/img/$name.size"
}

echo "# building images in $W" >&2
S=$W/src
mkdir -p "$S/busybox/bin" "$S/random/data" "$S/small/data" "$S/real/data"
cp "$(command -v busybox)" "$S/busybox/bin/busybox"
for a in $("$S/busybox/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$S/busybox/bin/$a"; done
for i in 1 2 3 4 5 6 7 8; do head -c $((8 << 20)) /dev/urandom >"$S/random/data/blob$i.bin"; done
python3 - "$S/small/data" <<'EOF'
import base64, os, sys
root = sys.argv[1]
for n in range(4000):
    d = os.path.join(root, f"d{n % 40}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{n}.txt"), "w") as f:
        f.write(base64.encodebytes(os.urandom(6144)).decode())
EOF
cp -a "$REAL_DIR/." "$S/real/data/"
image busybox "$S/busybox"
image big "$S/busybox" "$S/random" "$S/small" "$S/real"
rm -rf "$S"

# ---- registry and daemons ------------------------------------------------
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
cat >"$W/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $W/registry
  delete:
    enabled: true
http:
  addr: $REG
EOF
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do python3 -c "import urllib.request; urllib.request.urlopen('http://$REG/v2/')" 2>/dev/null && break; sleep 0.1; done
for n in busybox big; do
  skopeo copy --quiet --dest-tls-verify=false "oci:$W/img/$n:latest" "docker://$REG/bench/$n:latest"
done

TSOCK=$W/tsrund.sock
start_daemons() {
  # shellcheck disable=SC2086 # TSRUND_NODE_ARGS: node flags for diagnosis (--cpu-prof --cpu-prof-dir=DIR)
  node ${TSRUND_NODE_ARGS:-} "$REPO/dist/tsrund.cjs" --address "$TSOCK" --root "$W/tsrund/root" --state "$W/tsrund/state" --log-level warn >>"$W/tsrund.log" 2>&1 &
  pids+=($!)
  TSRUND_PID=$!
  local ok=1
  start_containerd "$W" || ok=0
  pids+=("$CONTAINERD_PID")
  [ "$ok" = 1 ] || exit 1
  wait_daemon "$TSOCK" || { cat "$W/tsrund.log" >&2; exit 1; }
}
stop_daemons() {
  local p
  for p in "$TSRUND_PID" "$CONTAINERD_PID"; do
    kill "$p" 2>/dev/null
    for _ in $(seq 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
}
start_daemons

# ---- runs ----------------------------------------------------------------
TSRCTL=(node "$REPO/dist/tsrctl.cjs" --address "$TSOCK" -n bench)
declare -A SOCK=([tsrctl]=$TSOCK [ctr-tsrund]=$TSOCK [containerd]=$CSOCK [fetch-tsrund]=$TSOCK [fetch-containerd]=$CSOCK [tsrctl-fetch]=$TSOCK)
pull() { # WHO REF
  case $1 in
    tsrctl) "${TSRCTL[@]}" pull -q "$2" ;;
    tsrctl-fetch) "${TSRCTL[@]}" pull -q --no-unpack "$2" ;;
    ctr-tsrund | containerd) ctr --address "${SOCK[$1]}" -n bench images pull --plain-http "$2" ;;
    fetch-*) ctr --address "${SOCK[$1]}" -n bench content fetch --plain-http "$2" ;;
  esac
}
cold() { # WHO REF: nothing of the image left, checked
  local c=(ctr --address "${SOCK[$1]}" -n bench)
  "${c[@]}" images rm --sync "$2" >/dev/null 2>&1 || true
  # content fetch may leave blobs no image holds until a later collection
  "${c[@]}" content ls -q 2>/dev/null | xargs -r "${c[@]}" content rm >/dev/null 2>&1 || true
  local left; left=$( { "${c[@]}" content ls -q; "${c[@]}" snapshots ls | tail -n +2; } 2>/dev/null | wc -l)
  [ "$left" = 0 ] || { echo "not cold: $left blobs/snapshots left in $1" >&2; exit 1; }
  sync
}
mkdir -p "$W/res"
# CPU seconds (user + system, ticks of 10 ms) a daemon has used so far
cpu_ms() { awk '{print ($14 + $15) * 10}' "/proc/$1/stat"; }
timed() { # WHO REF: one cold run; appends "wall_ms daemon_cpu_ms client_cpu_ms" to res/NAME-WHO
  local who=$1 ref=$2 n=$3 dpid
  case ${SOCK[$who]} in "$TSOCK") dpid=$TSRUND_PID ;; *) dpid=$CONTAINERD_PID ;; esac
  cold "$who" "$ref"
  local c0 t0 t1 c1
  c0=$(cpu_ms "$dpid"); t0=$(now_ms)
  /usr/bin/time -f '%U %S' -o "$W/last.time" bash -c "$(declare -f pull); $(declare -p SOCK TSRCTL); pull $who $ref" >"$W/last.log" 2>&1 || { cat "$W/last.log" >&2; exit 1; }
  t1=$(now_ms); c1=$(cpu_ms "$dpid")
  echo "$((t1 - t0)) $((c1 - c0)) $(awk '{printf "%d", ($1 + $2) * 1000}' "$W/last.time")" >>"$W/res/$n-$who"
}
WHO=(tsrctl ctr-tsrund containerd)
EXTRA=(tsrctl-fetch fetch-tsrund fetch-containerd)
if [ -n "${ONLY:-}" ]; then # ONLY="tsrctl ...": just those, for diagnosis (no summary)
  for r in $(seq "$ROUNDS"); do for who in $ONLY; do timed "$who" "$REG/bench/big:latest" big; done; done
  for who in $ONLY; do echo "$who: $(tr '\n' ';' <"$W/res/big-$who")"; done
  exit 0
fi
for r in $(seq "$ROUNDS"); do
  if [ -n "${RESTART:-}" ] && [ "$r" -gt 1 ]; then stop_daemons; start_daemons; fi
  for n in busybox big; do
    for k in 0 1 2; do timed "${WHO[$(( (k + r) % 3 ))]}" "$REG/bench/$n:latest" "$n"; done
    for k in 0 1 2; do timed "${EXTRA[$(( (k + r) % 3 ))]}" "$REG/bench/$n:latest" "$n"; done
  done
  echo "# round $r/$ROUNDS done (loadavg $(cut -d' ' -f1 /proc/loadavg))" >&2
done
for who in "${WHO[@]}" "${EXTRA[@]}"; do cold "$who" "$REG/bench/busybox:latest"; cold "$who" "$REG/bench/big:latest"; done

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
col() { awk -v c="$2" '{print $c}' "$1" | median; }
label() {
  case $1 in
    tsrctl) echo 'tsrctl pull (tsrund)' ;;
    ctr-tsrund) echo 'ctr images pull -> tsrund' ;;
    containerd) echo 'ctr images pull -> containerd' ;;
    tsrctl-fetch) echo 'tsrctl pull --no-unpack' ;;
    fetch-tsrund) echo 'ctr content fetch -> tsrund' ;;
    fetch-containerd) echo 'ctr content fetch -> containerd' ;;
  esac
}
echo "## cold pull + unpack from docker-registry on 127.0.0.1 (medians of $ROUNDS interleaved runs; MB/s of the uncompressed layers; CPU ms of the daemon and of the client)"
for n in busybox big; do
  read -r gz raw <"$W/img/$n.size"
  printf '%s: %.1f MB gz, %.1f MB uncompressed\n' "$n" "$(jq -n "$gz / 1e6")" "$(jq -n "$raw / 1e6")"
  printf '  %-32s %8s %9s %11s %11s  %s\n' '' wall_ms MB/s daemon_cpu client_cpu 'runs (wall ms)'
  for who in "${WHO[@]}" "${EXTRA[@]}"; do
    f=$W/res/$n-$who
    m=$(col "$f" 1)
    printf '  %-32s %8s %9.1f %11s %11s  %s\n' "$(label "$who")" "$m" "$(jq -n "$raw / 1e6 / ($m / 1000)")" "$(col "$f" 2)" "$(col "$f" 3)" "$(awk '{printf "%s ", $1}' "$f")"
  done
  c=$(col "$W/res/$n-containerd" 1)
  printf '  throughput ratio tsrund/containerd: tsrctl pull %.2f, ctr pull %.2f\n' "$(jq -n "$c / $(col "$W/res/$n-tsrctl" 1)")" "$(jq -n "$c / $(col "$W/res/$n-ctr-tsrund" 1)")"
done
