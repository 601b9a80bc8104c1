# Shared helpers for the benchmarks (sourced). Plain bash + hyperfine + jq.

# make_bundle DIR [ARG...]: busybox-static rootfs and a config from `tsrunc spec`,
# terminal off, args (default /bin/true).
make_bundle() {
  local dir=$1; shift
  [ $# -gt 0 ] || set -- /bin/true
  local bb; bb=$(command -v busybox) || { echo "busybox-static is needed (apt-get install busybox-static)" >&2; return 1; }
  rm -rf "$dir"; mkdir -p "$dir/rootfs"/{bin,proc,sys,dev,tmp,etc}
  cp "$bb" "$dir/rootfs/bin/busybox"
  for a in sh true false echo sleep cat; do ln -sf busybox "$dir/rootfs/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$dir/rootfs/etc/passwd"
  printf 'root:x:0:\n' >"$dir/rootfs/etc/group"
  node "$TSRUNC_JS" spec --bundle "$dir"
  local args; args=$(printf '%s\n' "$@" | jq -R . | jq -s -c .)
  # ociVersion 1.0.2: crun 1.8 rejects newer versions, and every peer reads this one.
  jq --argjson a "$args" '.ociVersion="1.0.2" | .process.terminal=false | .process.args=$a' "$dir/config.json" >"$dir/config.json.tmp"
  mv "$dir/config.json.tmp" "$dir/config.json"
}

# pooled_stats NAME FILE...: per-run times (s) from hyperfine JSON files -> one line of ms quantiles
pooled_stats() {
  local name=$1; shift
  jq -s -r --arg n "$name" '
    [.[].results[0].times[]] | sort | length as $l |
    def q(p): .[((($l - 1) * p) | floor)] * 1000 * 100 | round / 100;
    "\($n) n=\($l) median_ms=\(q(0.5)) p10_ms=\(q(0.1)) p90_ms=\(q(0.9))"' "$@"
}

# start_containerd DIR: a private containerd 1.6 (root, state, sockets under
# DIR/containerd, the CRI plugin off) in the background; sets CONTAINERD_PID
# and CSOCK (its socket) and waits until it answers.
start_containerd() {
  local d=$1/containerd
  mkdir -p "$d"/{root,state,opt}
  CSOCK=$d/containerd.sock
  cat >"$d/config.toml" <<CONF
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CSOCK"
[ttrpc]
  address = "$CSOCK.ttrpc"
[debug]
  address = "$d/debug.sock"
  level = "warn"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
CONF
  containerd --config "$d/config.toml" >"$1/containerd.log" 2>&1 &
  CONTAINERD_PID=$!
  wait_daemon "$CSOCK" || { cat "$1/containerd.log" >&2; return 1; }
}

# wait_daemon SOCK: until `ctr version` answers on SOCK (15 s at most)
wait_daemon() {
  for _ in $(seq 150); do ctr --address "$1" version >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "daemon on $1 did not start" >&2
  return 1
}

# lab_cleanup: stops the daemons in the array `pids` (the last started
# first, by pid), unmounts what is mounted under $W, removes $W and the host
# paths listed in `created` (those the run made: empty directories only).
lab_cleanup() {
  local i p
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[$i]}" 2>/dev/null
    for _ in $(seq 150); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.1; done
  done
  grep -o " $W/[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
  if mountpoint -q "$W"; then find "$W" -mindepth 1 -delete 2>/dev/null; else rm -rf "$W"; fi
  for p in "${created[@]}"; do
    if [ -d "$p" ]; then find "$p" -depth -type d -empty -delete 2>/dev/null; else rm -f "$p"; fi
  done
}

# engine_cgroups NAME...: the cgroup directories called NAME in every
# hierarchy now (what a run's engines will make under them goes at the end)
engine_cgroups() {
  local n
  for n in "$@"; do ls -d /sys/fs/cgroup/*/"$n" 2>/dev/null || true; done
}

# remove_new_cgroups BEFORE NAME...: removes each NAME cgroup (and what is
# under it) that was not in BEFORE (engine_cgroups' output at the start)
remove_new_cgroups() {
  local before=$1 d; shift
  for d in $(engine_cgroups "$@"); do
    grep -qx "$d" <<<"$before" || find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
}
