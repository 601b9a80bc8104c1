#!/usr/bin/env bash
# The VM lane: boots a pure cgroup v2 kernel once (../shared/vm/run-in-vm.sh,
# qemu; software emulation where there is no KVM) and runs the test/vm files
# in it, bundled (test/vm/build.mjs) and run with the built dist/. Ends with
# a `N passed, N failed, N skipped` line.
#   test/vm/run.sh [--timeout SECS] [test/vm/X.test.ts...]   (root; after npm run build)
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout=900
if [ "${1:-}" = --timeout ]; then timeout=$2; shift 2; fi
vm=${RUN_IN_VM:-../shared/vm/run-in-vm.sh}
if [ ! -x "$vm" ]; then
  echo "test/vm/run.sh: $vm not found (the VM lane lives in ../shared/vm beside the checkout)" >&2
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
fi
[ -f dist/tsrunc.cjs ] || { echo "test/vm/run.sh: build first (npm run build)" >&2; exit 1; }
node test/vm/build.mjs "$@"
start=$(date +%s)
set +e
"$vm" --timeout "$timeout" --mem 2G --cpus 2 -- node test/vm/harness.mjs dist/vm-tests/*.test.mjs
rc=$?
set -e
echo "# VM lane: $(( $(date +%s) - start )) s, exit status $rc"
case $rc in
  124) echo "0 passed, 1 failed, 0 skipped  (the VM timed out after ${timeout}s)" ;;
  125) echo "0 passed, 1 failed, 0 skipped  (the VM failed to boot)" ;;
esac
exit $rc
