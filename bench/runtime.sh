#!/usr/bin/env bash
# bench/runtime.sh [ROUNDS] [RUNS]
#
# `run` of /bin/true on a busybox bundle: tsrunc against runc, crun and a bare
# `node -e 0`, interleaved in rounds (the machines are shared and noisy: only
# ratios taken in the same run mean anything). Also create, start and delete
# of tsrunc and runc timed separately. Prints medians and the target check:
#   tsrunc run - node -e 0 <= runc run
# Needs root, hyperfine, jq, busybox-static, runc; crun if installed (run with
# the cgroup2 mount hidden on hybrid hosts, where crun 1.8 refuses to start).
set -euo pipefail
ROUNDS=${1:-5}
RUNS=${2:-10}
HERE=$(cd "$(dirname "$0")" && pwd)
export TSRUNC_JS=${TSRUNC_JS:-$HERE/../dist/tsrunc.cjs}
. "$HERE/lib.sh"
W=$(mktemp -d /tmp/tsrunc-bench.XXXXXX)
cleanup() { # the last --prepare leaves a container behind in each split root
  for rt in tsrunc runc; do
    if [ $rt = tsrunc ]; then node "$TSRUNC_JS" --root "$W/root-split-$rt" delete -f s >/dev/null 2>&1 || true
    else runc --root "$W/root-split-$rt" delete -f s >/dev/null 2>&1 || true; fi
  done
  rm -rf "$W"
}
trap cleanup EXIT
B=$W/bundle
make_bundle "$B" /bin/true
mkdir -p "$W/res"

hide_unified() { # crun refuses hybrid cgroups: give it the legacy view in a private mount ns
  [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] && echo "unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec \"\$0\" \"\$@\"'" || true
}

declare -A CMD
CMD[node]="node -e 0"
CMD[runc]="runc --root $W/root-runc run --bundle $B r\$\$"
CMD[tsrunc]="node $TSRUNC_JS --root $W/root-tsrunc run --bundle $B t\$\$"
if command -v crun >/dev/null; then
  CMD[crun]="$(hide_unified) crun --root $W/root-crun run --bundle $B c\$\$"
fi
NAMES=(node runc tsrunc ${CMD[crun]:+crun})

# create / start / delete: the state each step needs is made by --prepare.
declare -A SPLIT
for rt in tsrunc runc; do
  if [ $rt = tsrunc ]; then R="node $TSRUNC_JS --root $W/root-split-$rt"; else R="runc --root $W/root-split-$rt"; fi
  SPLIT[$rt-create]="--prepare '$R delete -f s >/dev/null 2>&1 || true' '$R create --bundle $B s'"
  SPLIT[$rt-start]="--prepare '$R delete -f s >/dev/null 2>&1; $R create --bundle $B s' '$R start s'"
  SPLIT[$rt-delete]="--prepare '$R delete -f s >/dev/null 2>&1; $R create --bundle $B s; $R start s; sleep 0.05' '$R delete s'"
done

for r in $(seq "$ROUNDS"); do
  n=${#NAMES[@]}
  for k in $(seq 0 $((n - 1))); do
    nm=${NAMES[$(( (k + r) % n ))]}
    hyperfine --style none --warmup 2 --runs "$RUNS" --export-json "$W/res/$nm-run-$r.json" "${CMD[$nm]}" >/dev/null 2>>"$W/hyperfine.log"
  done
  for key in "${!SPLIT[@]}"; do
    eval "hyperfine --style none --warmup 1 --runs $RUNS --export-json $W/res/$key-$r.json ${SPLIT[$key]}" >/dev/null 2>>"$W/hyperfine.log"
  done
  echo "# round $r/$ROUNDS done (loadavg $(cut -d' ' -f1 /proc/loadavg))" >&2
done

declare -A MED
echo "## run of /bin/true (ms, pooled over $ROUNDS rounds x $RUNS runs)"
for nm in "${NAMES[@]}"; do
  line=$(pooled_stats "$nm" "$W"/res/"$nm"-run-*.json); echo "$line"
  MED[$nm]=$(sed -E 's/.*median_ms=([0-9.]+).*/\1/' <<<"$line")
done
echo "## create / start / delete (ms)"
for key in tsrunc-create tsrunc-start tsrunc-delete runc-create runc-start runc-delete; do pooled_stats "$key" "$W"/res/"$key"-*.json; done
over=$(jq -n "(${MED[tsrunc]} - ${MED[node]}) * 100 | round / 100")
echo "## tsrunc run - node -e 0 = ${over} ms; runc run = ${MED[runc]} ms; ratio $(jq -n "(${over} / ${MED[runc]}) * 100 | round / 100") (target: <= 1)"
