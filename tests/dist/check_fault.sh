#!/usr/bin/env bash
# One rank of a 2-rank run fails (throws, or is killed by SIGKILL) before step 5; the other must
# be ended within 60 s, the job must exit non-zero with a message naming rank 1, and the last
# checkpoint must still load: step 4's, or step 2's when the abort came while rank 0 was still
# writing step 4's (the previous file stays intact until the rename).
# Usage: check_fault.sh <mpirun command...> -- <fault_rank binary> <throw|kill>
set -u
launcher=()
while [ "$1" != "--" ]; do launcher+=("$1"); shift; done
shift
binary=$1 mode=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
start=$SECONDS
timeout 90 "${launcher[@]}" "$binary" "$dir" "$mode" 1 5 >"$dir/log" 2>&1
rc=$?
elapsed=$((SECONDS - start))
cat "$dir/log"
fail() { echo "FAIL: $*"; exit 1; }
[ "$rc" -ne 0 ] || fail "the job exited 0"
[ "$rc" -ne 124 ] || fail "the job hung (killed by timeout after 90 s)"
[ "$elapsed" -le 60 ] || fail "the job took $elapsed s to end"
if [ "$mode" = throw ]; then
  grep -Eq "fault_rank: rank 1 of 2: .*injected failure before step 5" "$dir/log" ||
    fail "no message naming the failed rank"
else
  grep -Eq "rank 1 .*(signal 9|Killed)" "$dir/log" || fail "no message naming the killed rank"
fi
grep -q "rank 0 finished" "$dir/log" && fail "rank 0 ran to the end without its peer"
loaded=$("$binary" --load "$dir/run/checkpoint.bin" 2>&1)
echo "$loaded"
echo "$loaded" | grep -Eq "at step (2|4)$" || fail "the last checkpoint does not load"
echo "PASS: rank 1 ${mode} ended the job in $elapsed s; the last checkpoint loads"
