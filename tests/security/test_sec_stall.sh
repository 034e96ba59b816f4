#!/bin/bash
# Security finding 3: no guest memory access may freeze the device.  An
# attacker's MR over memory whose page faults are slow (a MAP_PRIVATE
# mapping of vhcad's own sysfs view, of a filesystem whose reads stall,
# a userfaultfd range nobody serves) stalls only the attacker's own
# context: the clean pair on other VFs keeps running, other VFs' commands
# answer, and vhcad still stops.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/sec_lib.sh"

# 1. vhcad's own sysfs file: the fault needs vhcad's filesystem, whose
#    workers must not wait for the engine.  16 threads issue commands.
vhca_start --num-vfs 4
bystander_start 6 2000
log=$RUN_DIR/sysfs.log
env LD_PRELOAD="$TOOL_PRELOAD" timeout -k 5 60 "$ATTACKS" stall_map vhca0_vf0 vhca0_vf1 \
	"$SYSFS_PATH/class/infiniband/vhca0/node_desc" 1 >"$log" 2>&1 ||
	fail "stall on vhcad's own file: $(cat "$log")"
cat "$log"
bystander_check "MR over vhcad's own sysfs file"

# 2. A filesystem whose reads stall for 4 s, then answer.
fresh_daemon --num-vfs 4
pass "vhcad stopped after the first"
stall_fs_start
bystander_start 10 2000
log=$RUN_DIR/stallfs.log
env LD_PRELOAD="$TOOL_PRELOAD" timeout -k 5 90 "$ATTACKS" stall_map vhca0_vf0 vhca0_vf1 "$RUN_DIR/stall/f" 10 \
	>"$log" 2>&1 &
attacker=$!
bg_track "$attacker"
sleep 2
# While the attacker's turn waits on its memory: another VF's commands.
elapsed_ms tool ibv_devinfo -d vhca0_vf1 >/dev/null ||
	fail "ibv_devinfo on another VF failed during the stall"
((ELAPSED_MS < 2000)) || fail "ibv_devinfo on another VF took $ELAPSED_MS ms during the stall"
pass "another VF answers in $ELAPSED_MS ms while the attacker's memory stalls"
sleep 2
touch "$RUN_DIR/release"
rc=0
wait "$attacker" || rc=$?
cat "$log"
((rc == 0)) || fail "the stalled attacker never finished"
bystander_check "MR over a stalling filesystem"
# The attacker's own QP failed rather than waiting on that memory again.
grep -q "WRITE success" "$log" && fail "a write that stalled for 4 s completed as a success"
pass "the stalled QP ended in an error completion"

# 3. The same, and the stalling filesystem dies instead of answering.
fresh_daemon --num-vfs 4
pass "vhcad stopped after the second"
stall_fs_start
log=$RUN_DIR/stallkill.log
env LD_PRELOAD="$TOOL_PRELOAD" timeout -k 5 90 "$ATTACKS" stall_map vhca0_vf0 vhca0_vf1 "$RUN_DIR/stall/f" 10 \
	>"$log" 2>&1 &
attacker=$!
bg_track "$attacker"
sleep 2
kill -KILL "$STALL_FS_PID"
wait "$STALL_FS_PID" 2>/dev/null || true
umount -l "$RUN_DIR/stall"
rc=0
wait "$attacker" || rc=$?
cat "$log"
((rc == 0)) || fail "the attacker never finished after its filesystem died"

# 3b. RC flow control towards a stalled receiver: the clean sender's QP
#     that waits for the stalled sink's room fails alone (retry exceeded);
#     its other QP's ping-pong goes on; destroying the waiting QP, then
#     letting the sink drain, is safe.
fresh_daemon --num-vfs 4
pass "the attacker's filesystem died; vhcad stops"
stall_fs_start
log=$RUN_DIR/flow.log
rc=0
env LD_PRELOAD="$TOOL_PRELOAD" timeout -k 5 60 "$VHCA_BUILD/tests/security/flow_attack" \
	vhca0_vf0 vhca0_vf2 vhca0_vf3 "$RUN_DIR/stall/f" "$RUN_DIR/release" >"$log" 2>&1 || rc=$?
cat "$log"
((rc == 0)) || fail "flow control towards a stalled receiver"
pass "a stalled receiver fails only the QP that sends to it"

# 4. userfaultfd: an MR fails at once; a command whose response buffer
#    waits on one waits alone.
fresh_daemon --num-vfs 4
pass "a stall that ends with its filesystem and a stalled receiver; vhcad stops"
bystander_start 8 2000
log=$RUN_DIR/uffd.log
env LD_PRELOAD="$TOOL_PRELOAD" timeout -k 5 60 "$ATTACKS" uffd vhca0_vf0 vhca0_vf1 >"$log" 2>&1 &
attacker=$!
bg_track "$attacker"
wait_line "$log" "uffd: ready" "$attacker" || fail "uffd: $(cat "$log")"
elapsed_ms tool ibv_devinfo -d vhca0_vf1 >/dev/null || fail "ibv_devinfo during the uffd wait"
((ELAPSED_MS < 2000)) || fail "ibv_devinfo on another VF took $ELAPSED_MS ms"
elapsed_ms tool ibv_devinfo -d vhca0_vf0 >/dev/null || fail "ibv_devinfo on the attacker's VF"
((ELAPSED_MS < 2000)) || fail "ibv_devinfo on the attacker's own VF took $ELAPSED_MS ms"
pass "other contexts' commands answer while one waits on a userfaultfd"
rc=0
wait "$attacker" || rc=$?
cat "$log"
((rc == 0)) || fail "userfaultfd attack"
bystander_check "userfaultfd"
wait_until_idle "after the attacks"
vhca_stop_within 20
