#!/bin/bash
# Security issue 9: a bounded fuzz of the management inputs beside the
# command fuzz (tests/integration/test_cmd_fuzz.sh): random, boundary and
# partial writes to every writable attribute of the sysfs view, and
# random and mutated RTM_SETLINK records on mgmt.sock (fuzz_mgmt.c).  A
# model predicts every answer; after each request the VFs read back as
# it says (refused: unchanged; accepted: what was asked, in both views).
# vhcad must answer throughout, and a peer that is not root is refused.
#
# Environment: VHCA_FUZZ_SECONDS (default 20), VHCA_FUZZ_SEED (default
# random, printed: set it to replay a failure), VHCA_FUZZ_FULL=1 (read
# everything back after every request).
source "$(dirname "$0")/../lib.sh"

DURATION=${VHCA_FUZZ_SECONDS:-20}
SEED=${VHCA_FUZZ_SEED:-0x$(od -An -N8 -tx8 /dev/urandom | tr -d ' \n')}
echo "management fuzz: seed $SEED for $DURATION s (VHCA_FUZZ_SEED=$SEED replays it)"

vhca_start --num-vfs 4
rc=0
env LD_PRELOAD="$TOOL_PRELOAD" "$VHCA_BUILD/tests/security/fuzz_mgmt" "$DURATION" "$SEED" \
	"$VHCAD_PID" "$RUN_DIR" >"$RUN_DIR/fuzz.log" 2>&1 || rc=$?
grep -E '^(FAIL|  |fuzz_mgmt)' "$RUN_DIR/fuzz.log" | tail -n 25
kill -0 "$VHCAD_PID" 2>/dev/null || fail "vhcad died under the management fuzz (seed $SEED)"
((rc == 0)) || fail "the management fuzz found a fault (seed $SEED, exit $rc): $(grep -m3 '^FAIL' "$RUN_DIR/fuzz.log")"
pass "$(tail -n 1 "$RUN_DIR/fuzz.log")"

# Still a working device: its tools, and a context on a VF.
tool ibv_devinfo -d vhca0 | grep -q PORT_ACTIVE || fail "vhca0 unusable after the fuzz"
grep -E 'AddressSanitizer|runtime error' "$RUN_DIR/vhcad.log" &&
	fail "vhcad log shows memory errors (seed $SEED)"
wait_until_idle "after the management fuzz"
vhca_stop || fail "vhcad exit status after the management fuzz"
pass "vhcad exits cleanly after the management fuzz"
