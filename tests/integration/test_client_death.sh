#!/bin/bash
# A process killed with SIGKILL while holding a context, PDs, MRs and
# completion channels leaves nothing behind in the daemon.
source "$(dirname "$0")/../lib.sh"

vhca_start --num-vfs 2
status=$SYSFS_PATH/module/vhca/status
counts() { awk -v d="$1" '$1 == d {print $4, $6, $8, $10}' "$status"; }

"$VHCA_BUILD/tests/hold_resources" vhca0_vf0 3 50 20 >"$RUN_DIR/h.out" &
holder=$!
for _ in $(seq 200); do grep -q ready "$RUN_DIR/h.out" && break; sleep 0.05; done
grep -q ready "$RUN_DIR/h.out" || fail "holder did not start"
cat "$status"
[[ $(counts vhca0_vf0) == "1 3 50 20" ]] || fail "while held: $(counts vhca0_vf0)"

kill -KILL "$holder"
wait "$holder" 2>/dev/null || true
for _ in $(seq 100); do
	[[ $(counts vhca0_vf0) == "0 0 0 0" ]] && break
	sleep 0.05
done
cat "$status"
[[ $(counts vhca0_vf0) == "0 0 0 0" ]] || fail "left: $(counts vhca0_vf0)"
pass "SIGKILLed holder's resources freed"

# The device keeps serving.
"$VHCA_BUILD/tests/hold_resources" vhca0_vf0 1 1 1 >"$RUN_DIR/h2.out" &
holder=$!
for _ in $(seq 200); do grep -q ready "$RUN_DIR/h2.out" && break; sleep 0.05; done
grep -q ready "$RUN_DIR/h2.out" || fail "second holder did not start"
kill -KILL "$holder"
wait "$holder" 2>/dev/null || true
vhca_stop || fail "vhcad exit status"
