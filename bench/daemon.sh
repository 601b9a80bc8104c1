#!/usr/bin/env bash
# bench/daemon.sh [ROUNDS] [RUNS] [HOLD]
#
# tsrund against containerd 1.6 + runc, on the same machine in interleaved
# rounds (only ratios taken in the same run mean anything here):
#   1. lifecycle through the API: Containers.Create, Tasks.Create/Start/Wait/
#      Delete, Containers.Delete of /bin/true in a prepared rootfs, by the same
#      client (bench/lifecycle.ts) against both daemons; per-call medians;
#      and the same from an image imported into both (`ctr images import`):
#      Snapshots.Prepare on its chain ID first, Snapshots.Remove last
#   2. `ctr run --rm --rootfs DIR ID /bin/true` and `ctr run --rm IMAGE ID
#      /bin/true` against both (ctr's own cost in)
#   3. memory per running container: RSS/PSS of tsrunc-shim against
#      containerd-shim-runc-v2 and (podman, if installed) conmon, 10 `sleep`s
#   4. tsrund's own RSS growth per container with HOLD (default 1000) running
# Needs root, hyperfine, jq, busybox-static, containerd (ctr), runc; podman and
# conmon for the conmon figure. Everything lives in a temp dir; the daemons are
# stopped by pid and what they leave on the host removed.
set -euo pipefail
ROUNDS=${1:-3}
RUNS=${2:-20}
HOLD=${3:-1000}
NCTR=${NCTR:-10}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
export TSRUNC_JS=${TSRUNC_JS:-$REPO/dist/tsrunc.cjs}
. "$HERE/lib.sh"
for tool in hyperfine jq containerd ctr runc; do
  command -v "$tool" >/dev/null || { echo "bench/daemon.sh needs $tool" >&2; exit 2; }
done
W=$(mktemp -d /tmp/tsrunc-bench-daemon.XXXXXX)
chmod 755 "$W"
created=()
for p in /run/containerd/s /run/containerd/fifo /run/containerd /run/containers; do [ -e "$p" ] || created+=("$p"); done
cgroups_before=$(engine_cgroups bench libpod_parent)
TSOCK=$W/tsrund.sock
CSOCK=$W/containerd/containerd.sock
P=(podman --root "$W/podman/root" --runroot "$W/podman/runroot" --tmpdir "$W/podman/tmp"
   --storage-driver overlay --cgroup-manager cgroupfs --events-backend file --runtime "$(command -v runc)")
pids=()
holder=

remove_all() { # every task and container in namespace bench of daemon $1
  local c=(ctr --address "$1" -n bench)
  for id in $("${c[@]}" tasks ls -q 2>/dev/null); do "${c[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  for id in $("${c[@]}" tasks ls -q 2>/dev/null); do
    for _ in 1 2 3 4 5 6 7 8 9 10; do "${c[@]}" tasks rm -f "$id" >/dev/null 2>&1 && break; sleep 0.2; done
  done
  for id in $("${c[@]}" containers ls -q 2>/dev/null); do "${c[@]}" containers rm "$id" >/dev/null 2>&1 || true; done
}
cleanup() {
  set +e
  [ -n "$holder" ] && kill "$holder" 2>/dev/null
  command -v podman >/dev/null && "${P[@]}" rm -af -t 0 >/dev/null 2>&1
  remove_all "$TSOCK"
  remove_all "$CSOCK"
  lab_cleanup
  remove_new_cgroups "$cgroups_before" bench libpod_parent
}
trap cleanup EXIT

make_bundle "$W/bundle" /bin/true >/dev/null
ROOTFS=$W/bundle/rootfs
"$REPO/node_modules/.bin/esbuild" "$HERE/lifecycle.ts" --bundle --platform=node --format=cjs --log-level=error --outfile="$W/lifecycle.cjs"
LC=(node "$W/lifecycle.cjs")

node "$REPO/dist/tsrund.cjs" --address "$TSOCK" --root "$W/tsrund/root" --state "$W/tsrund/state" --log-level warn >"$W/tsrund.log" 2>&1 &
pids+=($!)
TSRUND_PID=$!
start_containerd "$W"
pids+=("$CONTAINERD_PID")
wait_daemon "$TSOCK" || { cat "$W/tsrund.log" >&2; exit 1; }

declare -A ADDR=([tsrund]=$TSOCK [containerd]=$CSOCK)
NAMES=(tsrund containerd)
mkdir -p "$W/res"

# The bundle's rootfs as a one-layer OCI image, imported (and unpacked) by
# `ctr images import` into both daemons: the parent of the image runs.
oci=$W/oci
mkdir -p "$oci/blobs/sha256"
tar -C "$ROOTFS" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$W/layer.tar" .
CHAIN=sha256:$(sha256sum "$W/layer.tar" | cut -d' ' -f1)
gzip -n -c "$W/layer.tar" >"$W/layer.tgz"
blob() { local d; d=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" "$oci/blobs/sha256/$d"; echo "$d $(stat -c %s "$oci/blobs/sha256/$d")"; }
read -r ld ls < <(blob "$W/layer.tgz")
jq -cn --arg c "$CHAIN" '{architecture: "amd64", os: "linux", config: {Cmd: ["/bin/true"]}, rootfs: {type: "layers", diff_ids: [$c]}}' >"$W/config.json"
read -r cd cs < <(blob "$W/config.json")
jq -cn --arg c "sha256:$cd" --argjson cs "$cs" --arg l "sha256:$ld" --argjson ls "$ls" \
  '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs}, layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l, size: $ls}]}' >"$W/manifest.json"
read -r md ms < <(blob "$W/manifest.json")
jq -cn --arg d "sha256:$md" --argjson s "$ms" '{schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s, annotations: {"org.opencontainers.image.ref.name": "latest"}}]}' >"$oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
tar -C "$oci" -cf "$W/image.tar" .
for nm in "${NAMES[@]}"; do
  ctr --address "${ADDR[$nm]}" -n bench images import --index-name bench/busybox:latest "$W/image.tar" >/dev/null
  ctr --address "${ADDR[$nm]}" -n bench snapshots ls | grep -q "^$CHAIN " || { echo "no snapshot $CHAIN in $nm after the import" >&2; exit 1; }
done
for r in $(seq "$ROUNDS"); do
  for k in 0 1; do
    nm=${NAMES[$(( (k + r) % 2 ))]}
    "${LC[@]}" lifecycle "${ADDR[$nm]}" "$ROOTFS" "$RUNS" "$nm" >"$W/res/api-$nm-$r.json"
    "${LC[@]}" image "${ADDR[$nm]}" "$CHAIN" "$RUNS" "$nm" >"$W/res/img-$nm-$r.json"
    hyperfine --style none --warmup 2 --runs "$RUNS" --export-json "$W/res/ctr-$nm-$r.json" \
      "ctr --address ${ADDR[$nm]} -n bench run --rm --rootfs $ROOTFS c\$\$ /bin/true" >/dev/null 2>>"$W/hyperfine.log"
    hyperfine --style none --warmup 2 --runs "$RUNS" --export-json "$W/res/ctri-$nm-$r.json" \
      "ctr --address ${ADDR[$nm]} -n bench run --rm bench/busybox:latest i\$\$ /bin/true" >/dev/null 2>>"$W/hyperfine.log"
  done
  echo "# round $r/$ROUNDS done (loadavg $(cut -d' ' -f1 /proc/loadavg))" >&2
done

median() { jq -s 'sort | .[(length - 1) / 2 | floor] * 100 | round / 100'; }
ratio() { jq -n "($1 / $2) * 100 | round / 100"; }
# phase_table KIND TITLE OUT: per daemon the median total and per-call medians
# of res/KIND-*.json (bench/lifecycle.ts output); totals into the array OUT
phase_table() {
  local kind=$1 nm p phases
  local -n out=$3
  echo "## $2"
  printf '%-12s %8s' daemon total
  phases=$(jq -r '.phases | keys_unsorted[]' "$W/res/$kind-tsrund-1.json")
  for p in $phases; do printf ' %16s' "$p"; done; echo
  for nm in "${NAMES[@]}"; do
    out[$nm]=$(jq '.total_ms[]' "$W"/res/"$kind"-"$nm"-*.json | median)
    printf '%-12s %8s' "$nm" "${out[$nm]}"
    for p in $phases; do printf ' %16s' "$(jq ".phases.$p[]" "$W"/res/"$kind"-"$nm"-*.json | median)"; done; echo
  done
}
# ctr_table KIND TITLE OUT: pooled hyperfine medians of res/KIND-*.json per daemon into the array OUT
ctr_table() {
  local kind=$1 nm line
  local -n out=$3
  echo "## $2"
  for nm in "${NAMES[@]}"; do
    line=$(pooled_stats "$kind-$nm" "$W"/res/"$kind"-"$nm"-*.json); echo "$line"
    out[$nm]=$(sed -E 's/.*median_ms=([0-9.]+).*/\1/' <<<"$line")
  done
}
declare -A API IMG CTR CTRI
phase_table api "lifecycle through the API (ms, medians over $ROUNDS rounds x $RUNS runs)" API
phase_table img "the same from an image (Snapshots.Prepare on its chain ID, mounts to Tasks.Create, Snapshots.Remove) (ms)" IMG
ctr_table ctr "ctr run --rm --rootfs of /bin/true (ms)" CTR
ctr_table ctri "ctr run --rm IMAGE /bin/true (ms)" CTRI
prep=$(jq '.phases.snapshot_prepare[]' "$W"/res/img-tsrund-*.json | median)
echo "## an image's run through tsrund's API: ${IMG[tsrund]} ms; allowed (issue 6): half of containerd's ctr run --rm IMAGE + one prepare = $(jq -n "(${CTRI[containerd]} / 2 + $prep) * 100 | round / 100") ms"
echo "## ratios tsrund / containerd: API lifecycle $(ratio "${API[tsrund]}" "${API[containerd]}"), from an image $(ratio "${IMG[tsrund]}" "${IMG[containerd]}"), ctr run --rm $(ratio "${CTR[tsrund]}" "${CTR[containerd]}")"

rss_pss() { # pid -> "rss_kb pss_kb"
  echo "$(awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0) $(awk '/^Pss:/{print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0)"
}
sum_mem() { # NAME PID... -> one line of per-process RSS/PSS
  local name=$1 n=0 rss=0 pss=0 r s; shift
  for p in "$@"; do read -r r s < <(rss_pss "$p"); rss=$((rss + r)); pss=$((pss + s)); n=$((n + 1)); done
  [ "$n" -gt 0 ] || { echo "$name: no process found"; return; }
  echo "$name processes=$n rss_kb_each=$((rss / n)) pss_kb_each=$((pss / n))"
}
echo "## memory per running container ($NCTR sleeps each)"
for nm in "${NAMES[@]}"; do
  for i in $(seq "$NCTR"); do ctr --address "${ADDR[$nm]}" -n bench run -d --rootfs "$ROOTFS" "m$i" /bin/sleep 100000 >/dev/null; done
done
sleep 1
# shellcheck disable=SC2046
sum_mem tsrunc-shim $(pgrep -f -- "^$REPO/native-shims/build/tsrunc-shim .*$W/" || true)
# shellcheck disable=SC2046
sum_mem containerd-shim-runc-v2 $(pgrep -f -- "containerd-shim-runc-v2 .*-address $CSOCK( |$)" || true)
remove_all "$TSOCK"
remove_all "$CSOCK"
if command -v podman >/dev/null && command -v conmon >/dev/null; then
  mkdir -p "$W/podman/tmp"
  hn=$(ulimit -Hn); hu=$(ulimit -Hu); { [ "$hu" = unlimited ] || [ "$hu" -gt 32768 ]; } && hu=32768
  for i in $(seq "$NCTR"); do
    "${P[@]}" run -d --network none --ulimit "nofile=$hn:$hn" --ulimit "nproc=$hu:$hu" --name "m$i" --rootfs "$ROOTFS" /bin/sleep 100000 >/dev/null
  done
  sleep 1
  # shellcheck disable=SC2046
  sum_mem conmon $(pgrep -f -- "^/usr/bin/conmon .*$W/" || true)
  "${P[@]}" rm -af -t 0 >/dev/null 2>&1 || true
else
  echo "conmon: podman or conmon not installed, not measured"
fi

echo "## tsrund's own memory with $HOLD running containers"
read -r base _ < <(rss_pss "$TSRUND_PID")
coproc HOLDER { "${LC[@]}" hold "$TSOCK" "$ROOTFS" "$HOLD"; }
holder=$HOLDER_PID
read -r line <&"${HOLDER[0]}"
[ "$line" = ready ] || { echo "hold: $line" >&2; exit 1; }
running=$(ctr --address "$TSOCK" -n bench tasks ls -q | wc -l)
read -r full _ < <(rss_pss "$TSRUND_PID")
echo "tsrund rss_kb before=$base with_${running}_running=$full growth_per_container_kb=$(jq -n "(($full - $base) / $running) * 10 | round / 10")"
echo done >&"${HOLDER[1]}"
read -r line <&"${HOLDER[0]}" || true
wait "$holder" 2>/dev/null || true
holder=
