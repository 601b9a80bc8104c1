#!/usr/bin/env bash
# bench/clients.sh [ROUNDS] [RUNS]
#
# tsrunc and tsrund under real container engines, against the runtimes they
# ship with, on the same machine in interleaved rounds (the machines are
# shared and noisy: only ratios taken in the same run mean anything):
#   podman --runtime X run --rm --network none IMAGE true     X = runc, crun, tsrunc
#   docker run --rm --network none --runtime X IMAGE true     X = runc, tsrunc
#     (dockerd 20.10 on a private containerd 1.6, tsrunc added with --add-runtime)
#   docker run --rm --network none IMAGE true                 on a second dockerd
#     whose containerd is tsrund (docker-tsrund)
# ONLY="docker-runc docker-tsrund" times a subset (names as printed).
# Prints pooled medians (ms) and the ratios to runc. Everything lives in a
# temp dir; the daemons it starts are stopped by pid and what they leave on
# the host (mounts, engine cgroups, /run dirs, /etc/docker/key.json) removed.
# Needs root, hyperfine, jq, busybox-static, podman, conmon, runc, dockerd,
# docker, containerd; crun if installed (podman runs it with the cgroup2 mount
# hidden on hybrid hosts, where crun 1.8 refuses to start).
set -euo pipefail
ROUNDS=${1:-5}
RUNS=${2:-10}
HERE=$(cd "$(dirname "$0")" && pwd)
export TSRUNC_JS=${TSRUNC_JS:-$HERE/../dist/tsrunc.cjs}
TSRUND_JS=${TSRUND_JS:-$HERE/../dist/tsrund.cjs}
. "$HERE/lib.sh"
for tool in hyperfine jq podman conmon runc dockerd containerd ctr; do
  command -v "$tool" >/dev/null || { echo "bench/clients.sh needs $tool" >&2; exit 2; }
done
DOCKER=$(command -v /usr/bin/docker || command -v docker)
W=$(mktemp -d /tmp/tsrunc-bench-clients.XXXXXX)
chmod 755 "$W"
IMAGE=tsrunc-bench:latest

# host paths the engines create outside $W: removed at the end if they were not there before
created=()
for p in /etc/docker/key.json /run/docker/plugins /run/docker /run/containerd/s /run/containerd/fifo /run/containerd \
  /run/containers/networks /run/containers /run/tsrunc; do
  [ -e "$p" ] || created+=("$p")
done
cgroups_before=$(engine_cgroups docker libpod_parent)

P=(podman --root "$W/podman/root" --runroot "$W/podman/runroot" --tmpdir "$W/podman/tmp"
   --storage-driver overlay --cgroup-manager cgroupfs --events-backend file)
D=("$DOCKER" -H "unix://$W/docker.sock")
D2=("$DOCKER" -H "unix://$W/docker2.sock")
CSOCK=$W/containerd/containerd.sock
TSOCK=$W/tsrund/tsrund.sock
pids=()

cleanup() {
  set +e
  "${D[@]}" ps -aq 2>/dev/null | xargs -r "${D[@]}" rm -f >/dev/null 2>&1
  "${D2[@]}" ps -aq 2>/dev/null | xargs -r "${D2[@]}" rm -f >/dev/null 2>&1
  "${P[@]}" rm -af -t 0 >/dev/null 2>&1
  for id in $(ctr --address "$CSOCK" -n moby tasks ls -q 2>/dev/null); do ctr --address "$CSOCK" -n moby tasks rm -f "$id" >/dev/null 2>&1; done
  lab_cleanup
  remove_new_cgroups "$cgroups_before" docker libpod_parent
}
trap cleanup EXIT

# The image: a busybox-static root filesystem.
make_bundle "$W/bundle" /bin/true >/dev/null
tar --numeric-owner -C "$W/bundle/rootfs" -cf "$W/rootfs.tar" .

# podman
mkdir -p "$W/podman/tmp"
"${P[@]}" import -q "$W/rootfs.tar" "$IMAGE" >/dev/null
hn=$(ulimit -Hn); hu=$(ulimit -Hu); { [ "$hu" = unlimited ] || [ "$hu" -gt 32768 ]; } && hu=32768
RUNFLAGS="--network none --ulimit nofile=$hn:$hn --ulimit nproc=$hu:$hu"
q() { printf '%q ' "$@"; }
declare -A CMD
CMD[podman-runc]="$(q "${P[@]}") --runtime $(command -v runc) run --rm $RUNFLAGS localhost/$IMAGE true"
CMD[podman-tsrunc]="$(q "${P[@]}") --runtime $TSRUNC_JS run --rm $RUNFLAGS localhost/$IMAGE true"
if command -v crun >/dev/null; then
  hide=""
  if [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
    hide="unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec \"\$0\" \"\$@\"'"
  fi
  CMD[podman-crun]="$hide $(q "${P[@]}") --runtime $(command -v crun) run --rm $RUNFLAGS localhost/$IMAGE true"
fi

# dockerd D on a private containerd, dockerd D2 on tsrund
dockerd_on() { # NAME CONTAINERD_SOCKET [FLAG...]: a private dockerd, API socket $W/NAME.sock
  local n=$1 sock=$2; shift 2
  mkdir -p "$W/$n"
  echo '{}' >"$W/$n/daemon.json"
  dockerd --config-file "$W/$n/daemon.json" --data-root "$W/$n/data" --exec-root "$W/$n/exec" \
    --pidfile "$W/$n/dockerd.pid" -H "unix://$W/$n.sock" --containerd "$sock" \
    --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false --bridge=none --userland-proxy=false \
    --storage-driver overlay2 --log-level warn "$@" >"$W/$n.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 150); do "$DOCKER" -H "unix://$W/$n.sock" version >/dev/null 2>&1 && break; sleep 0.2; done
  "$DOCKER" -H "unix://$W/$n.sock" import "$W/rootfs.tar" "$IMAGE" >/dev/null
}
mkdir -p "$W/docker"
start_containerd "$W"
pids+=("$CONTAINERD_PID")
dockerd_on docker "$CSOCK" --add-runtime "tsrunc=$TSRUNC_JS"
mkdir -p "$W/tsrund"
node "$TSRUND_JS" --address "$TSOCK" --root "$W/tsrund/root" --state "$W/tsrund/state" --log-level warn >"$W/tsrund.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$TSOCK" ] && break; sleep 0.1; done
dockerd_on docker2 "$TSOCK"
CMD[docker-runc]="$(q "${D[@]}") run --rm --network none --runtime runc $IMAGE true"
CMD[docker-tsrunc]="$(q "${D[@]}") run --rm --network none --runtime tsrunc $IMAGE true"
CMD[docker-tsrund]="$(q "${D2[@]}") run --rm --network none $IMAGE true"

NAMES=(podman-runc podman-tsrunc ${CMD[podman-crun]:+podman-crun} docker-runc docker-tsrunc docker-tsrund)
if [ -n "${ONLY:-}" ]; then
  sel=()
  for nm in "${NAMES[@]}"; do [[ " $ONLY " == *" $nm "* ]] && sel+=("$nm"); done
  NAMES=("${sel[@]}")
fi
for nm in "${NAMES[@]}"; do # each must work before it is timed
  eval "${CMD[$nm]}" >/dev/null 2>"$W/check.log" || { echo "$nm failed:" >&2; cat "$W/check.log" >&2; exit 1; }
done
mkdir -p "$W/res"
for r in $(seq "$ROUNDS"); do
  n=${#NAMES[@]}
  for k in $(seq 0 $((n - 1))); do
    nm=${NAMES[$(( (k + r) % n ))]}
    hyperfine --style none --warmup 2 --runs "$RUNS" --export-json "$W/res/$nm-$r.json" "${CMD[$nm]}" >/dev/null 2>>"$W/hyperfine.log"
  done
  echo "# round $r/$ROUNDS done (loadavg $(cut -d' ' -f1 /proc/loadavg))" >&2
done

declare -A MED
echo "## run --rm of true through the engines (ms, pooled over $ROUNDS rounds x $RUNS runs)"
for nm in "${NAMES[@]}"; do
  line=$(pooled_stats "$nm" "$W"/res/"$nm"-*.json); echo "$line"
  MED[$nm]=$(sed -E 's/.*median_ms=([0-9.]+).*/\1/' <<<"$line")
done
ratio() { jq -n "($1 / $2) * 100 | round / 100"; }
if [ -n "${MED[podman-tsrunc]:-}" ] && [ -n "${MED[podman-runc]:-}" ]; then
  echo "## podman: tsrunc / runc = $(ratio "${MED[podman-tsrunc]}" "${MED[podman-runc]}")${MED[podman-crun]:+, tsrunc / crun = $(ratio "${MED[podman-tsrunc]}" "${MED[podman-crun]}")}"
fi
if [ -n "${MED[docker-runc]:-}" ]; then
  [ -z "${MED[docker-tsrunc]:-}" ] || echo "## docker on containerd: tsrunc / runc = $(ratio "${MED[docker-tsrunc]}" "${MED[docker-runc]}")"
  [ -z "${MED[docker-tsrund]:-}" ] || echo "## docker: on tsrund / on containerd+runc = $(ratio "${MED[docker-tsrund]}" "${MED[docker-runc]}")"
fi
