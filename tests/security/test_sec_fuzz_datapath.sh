#!/bin/bash
# Security issue 9: a bounded fuzz of the data path beside the command
# fuzz (tests/integration/test_cmd_fuzz.sh).  A hostile tenant on
# vhca0_vf0 (fuzz_datapath.c, raw rings, no provider) writes random WQEs,
# ring contents, indices and doorbells, in rounds of forked children,
# while the clean pair runs on vhca0_vf2 and vhca0_vf3 and is aimed at.
# vhcad must live, the clean pair must stay correct and keep its pace,
# the fuzzer's own checks must hold (memory outside its writable MRs
# untouched, its QPs work or fail with error completions) and each round
# must leave nothing behind.
#
# Environment: VHCA_FUZZ_SECONDS (default 20), VHCA_FUZZ_SEED (default
# random, printed: set it to replay a failure), VHCA_FUZZ_ROUND (one
# round of that seed alone).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/sec_lib.sh"

FUZZ=$VHCA_BUILD/tests/security/fuzz_datapath
DURATION=${VHCA_FUZZ_SECONDS:-20}
SEED=${VHCA_FUZZ_SEED:-0x$(od -An -N8 -tx8 /dev/urandom | tr -d ' \n')}
echo "data-path fuzz: seed $SEED for $DURATION s (VHCA_FUZZ_SEED=$SEED replays it)"

vhca_start --num-vfs 4
# The clean pair outlasts the fuzz (whose last round ends a little late).
bystander_start $((DURATION + 4)) 2000
read -r -a targets <<<"$(sed -n 's/^bystander: targets //p' "$RUN_DIR/bystander.log")"
((${#targets[@]} == 2)) || fail "the clean pair did not say where it is"

rc=0
env LD_PRELOAD="$TOOL_PRELOAD" "$FUZZ" vhca0_vf0 "$DURATION" "$SEED" "$VHCAD_PID" \
	"${targets[@]}" >"$RUN_DIR/fuzz.log" 2>&1 || rc=$?
grep -E '^(FAIL|round [0-9]+: [0-9]+ steps|fuzz_datapath)' "$RUN_DIR/fuzz.log" | tail -n 25
kill -0 "$VHCAD_PID" 2>/dev/null || fail "vhcad died under the data-path fuzz (seed $SEED)"
((rc == 0)) || fail "the data-path fuzz found a fault (seed $SEED, exit $rc): $(grep -m3 '^FAIL' "$RUN_DIR/fuzz.log")"
pass "$(tail -n 1 "$RUN_DIR/fuzz.log")"

bystander_check "beside the data-path fuzz"
wait_until_idle "after the data-path fuzz"
tool ibv_devinfo -d vhca0_vf0 | grep -q PORT_ACTIVE || fail "vhca0_vf0 unusable after the fuzz"
grep -E 'AddressSanitizer|runtime error' "$RUN_DIR/vhcad.log" &&
	fail "vhcad log shows memory errors (seed $SEED)"
vhca_stop_within 20
pass "vhcad exits cleanly after the data-path fuzz"
