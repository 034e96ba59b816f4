#!/bin/bash
# The verbs-level data-path tests (datapath_test.c): one process opens
# vhca0_vf0 and vhca0_vf1 and connects QPs between them with modify_qp.
# Each sub-test runs in its own process (a crash or REQUIRE in one does not
# hide the others) under a timeout; afterwards the daemon holds nothing for
# the test and stops cleanly.
#
# Environment: VHCA_DATAPATH_SUBTESTS="rc_ops srq ..." runs a subset;
# VHCA_SEED fixes the random seed (printed by each run).
source "$(dirname "$0")/../lib.sh"

DT=$VHCA_BUILD/tests/datapath_test
vhca_start --num-vfs 2

read -r -a subtests <<<"${VHCA_DATAPATH_SUBTESTS:-$("$DT" --list | tr '\n' ' ')}"
failed=()
for t in "${subtests[@]}"; do
	rc=0
	timeout -k 5 120 "$DT" "$t" >"$RUN_DIR/$t.log" 2>&1 || rc=$?
	if ((rc == 0)); then
		pass "$t ($(grep -E '^ok: ' "$RUN_DIR/$t.log" | sed 's/.*(//; s/)//'))"
	else
		echo "FAIL: $t (exit $rc$( ((rc == 124)) && echo ', timed out'))" >&2
		sed 's/^/    /' "$RUN_DIR/$t.log" | tail -n 25 >&2
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
pass "datapath_test: ${#subtests[@]} sub-tests"
