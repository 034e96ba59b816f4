#!/bin/bash
# Security findings 4, 5, 6 and 9: no tenant may exhaust a resource of
# the daemon that the others need.  Each function (PF, VF) has a share of
# vhcad's mappings, fds and memory: an attacker that takes all of its own
# is refused (ENOMEM, EUSERS), and another VF still opens contexts,
# creates queues and answers commands at once.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/sec_lib.sh"

shmem_kib() { awk '/^RssShmem:/ {print $2}' "/proc/$VHCAD_PID/status"; }

# holding_attack NAME ARGS...: runs an attack that holds what it took.
holding_attack() {
	local name=$1 log=$RUN_DIR/$1.log
	shift
	env LD_PRELOAD="$TOOL_PRELOAD" "$ATTACKS" "$name" "$@" >"$log" 2>&1 &
	ATTACKER=$!
	bg_track "$ATTACKER"
	wait_line "$log" "holding" "$ATTACKER" 1200 || fail "$name: $(cat "$log")"
	cat "$log"
}

vhca_start --num-vfs 4 --queue-memory 256 --max-contexts 64

# Finding 4: CQs (a mapping each) until the function's share is used.
holding_attack cq_flood vhca0_vf0 70000
grep -q "then Cannot allocate memory" "$RUN_DIR/cq_flood.log" ||
	fail "the CQ flood was not stopped by the VF's quota"
env LD_PRELOAD="$TOOL_PRELOAD" "$ATTACKS" cq_flood vhca0_vf1 200 >"$RUN_DIR/cq_other.log" 2>&1 &
other=$!
bg_track "$other"
wait_line "$RUN_DIR/cq_other.log" "holding" "$other" || fail "other VF"
grep -q "200 CQs" "$RUN_DIR/cq_other.log" || fail "another VF: $(cat "$RUN_DIR/cq_other.log")"
pass "CQ flood stopped at its VF's quota; another VF creates CQs"
bg_kill_all
wait_until_idle "after the CQ flood"

# Finding 9: contexts until the function's share.
holding_attack context_flood vhca0_vf0 1000
grep -q "64 contexts, then Too many users" "$RUN_DIR/context_flood.log" ||
	fail "the context flood was not stopped by the VF's quota"
elapsed_ms tool ibv_devinfo -d vhca0_vf1 >/dev/null || fail "ibv_devinfo on another VF"
((ELAPSED_MS < 2000)) || fail "another VF took $ELAPSED_MS ms"
pass "context flood stopped at 64; another VF opens at once ($ELAPSED_MS ms)"
bg_kill_all
wait_until_idle "after the context flood" vhca0_vf0

# Finding 6: sparse 64 MiB rings whose heads are bumped: the queue memory
# a VF maps is charged to it (--queue-memory 256).
before=$(shmem_kib)
holding_attack ring_amplify vhca0_vf0 24
grep -q "then Cannot allocate memory" "$RUN_DIR/ring_amplify.log" ||
	fail "the rings were not stopped by the VF's queue memory"
sleep 1
after=$(shmem_kib)
echo "vhcad shared memory: ${before} KiB before, ${after} KiB after"
((after - before < 300 * 1024)) || fail "vhcad's shared memory grew by $((after - before)) KiB"
bystander_start 2 2000
bystander_check "beside the ring attack"
pass "queue memory charged to the VF: growth $(((after - before) / 1024)) MiB <= 256 MiB"
bg_kill_all

# Finding 5: 16 threads waiting for channel refills that never come.
log=$RUN_DIR/channel_starve.log
env LD_PRELOAD="$TOOL_PRELOAD" "$ATTACKS" channel_starve vhca0_vf0 16 >"$log" 2>&1 &
attacker=$!
bg_track "$attacker"
wait_line "$log" "16 threads" "$attacker" || fail "channel_starve: $(cat "$log")"
sleep 0.5
elapsed_ms tool ibv_devinfo -d vhca0_vf1 >/dev/null || fail "ibv_devinfo on another VF"
((ELAPSED_MS < 1000)) || fail "ibv_devinfo on another VF took $ELAPSED_MS ms (was 19 s)"
pass "another VF answers in $ELAPSED_MS ms while 16 commands wait for refills"
wait "$attacker" || fail "channel_starve: $(cat "$log")"
cat "$log"

bg_kill_all
wait_until_idle "after the attacks"
vhca_stop_within 20
