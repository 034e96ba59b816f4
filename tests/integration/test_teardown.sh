#!/bin/bash
# Teardown under traffic and RESIZE_CQ (teardown_test.c): an MR
# deregistered, a QP destroyed, while a peer process streams at it; CQs
# busy while used; CQs resized with completions pending and under traffic.
# Each sub-test runs in its own process under a timeout; afterwards
# the daemon holds nothing for the test and stops cleanly.
#
# Environment: VHCA_TEARDOWN_SUBTESTS="dereg_write ..." runs a subset;
# VHCA_SEED fixes the random seed; VHCA_RACE_ITERS the dereg_race rounds.
source "$(dirname "$0")/../lib.sh"

TT=$VHCA_BUILD/tests/teardown_test
vhca_start --num-vfs 2

read -r -a subtests <<<"${VHCA_TEARDOWN_SUBTESTS:-$("$TT" --list | tr '\n' ' ')}"
failed=()
for t in "${subtests[@]}"; do
	rc=0
	timeout -k 5 180 "$TT" "$t" >"$RUN_DIR/$t.log" 2>&1 || rc=$?
	if ((rc == 0)); then
		pass "$t ($(grep -E '^ok: ' "$RUN_DIR/$t.log" | sed 's/.*(//; s/)//'))"
		grep -E '^  ' "$RUN_DIR/$t.log" | tail -n 3 || true
	else
		echo "FAIL: $t (exit $rc$( ((rc == 124)) && echo ', timed out'))" >&2
		sed 's/^/    /' "$RUN_DIR/$t.log" | tail -n 30 >&2
		failed+=("$t")
		kill -0 "$VHCAD_PID" 2>/dev/null || fail "vhcad died in $t"
	fi
done

# Every process has exited: nothing is left in the daemon.
status=$SYSFS_PATH/module/vhca/status
for _ in $(seq 100); do
	left=$(awk '{for (i = 3; i < NF; i += 2) if ($(i + 1) != 0) print $1, $i, $(i + 1)}' "$status")
	[[ -z $left ]] && break
	sleep 0.05
done
[[ -z $left ]] || fail "resources left after the tests: $left"

((${#failed[@]} == 0)) || fail "${#failed[@]} of ${#subtests[@]} sub-tests failed: ${failed[*]}"
vhca_stop || fail "vhcad exit status"
pass "teardown_test: ${#subtests[@]} sub-tests"
