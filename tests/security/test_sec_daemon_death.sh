#!/bin/bash
# Security finding 10: when vhcad dies (SIGKILL), a process blocked in
# ibv_get_cq_event or ibv_get_async_event, or polling a CQ, gets an error
# at once (IBV_EVENT_DEVICE_FATAL on the async fd, EIO from the event
# fds, a negative poll), never a hang or a -1 with errno 0.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/sec_lib.sh"

vhca_start --num-vfs 1
log=$RUN_DIR/death.log
env LD_PRELOAD="$TOOL_PRELOAD" "$ATTACKS" daemon_death vhca0_vf0 >"$log" 2>&1 &
victim=$!
bg_track "$victim"
wait_line "$log" "daemon_death: waiting" "$victim" ||
	fail "set-up: $(cat "$log")"
sleep 0.3
kill -KILL "$VHCAD_PID"
wait "$VHCAD_PID" 2>/dev/null || true
VHCAD_PID=""
rc=0
wait "$victim" || rc=$?
cat "$log"
((rc == 0)) || fail "a waiter did not hear that the device died"
pass "every waiter got an error when vhcad died"
