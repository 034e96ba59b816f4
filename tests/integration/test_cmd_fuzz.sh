#!/bin/bash
# Hostile writes to the command file: exact errnos, nothing changed, the
# daemon survives a bounded random storm.
source "$(dirname "$0")/../lib.sh"

vhca_start --num-vfs 2
"$VHCA_BUILD/tests/cmd_fuzz" vhca0_vf0 "${VHCA_FUZZ_SECONDS:-10}" \
	"${VHCA_FUZZ_SEED:-0x5eed}" || fail "cmd_fuzz"
kill -0 "$VHCAD_PID" || fail "vhcad died"
tool ibv_devinfo -d vhca0_vf0 >/dev/null || fail "device unusable after fuzzing"
vhca_stop || fail "vhcad exit status"
