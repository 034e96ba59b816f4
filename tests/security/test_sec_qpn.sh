#!/bin/bash
# Security finding 2: no cross-tenant RDMA through a reused QP number.
# QP numbers are random and quarantined after destruction (65536 more
# destructions before one comes back); the responder takes RC/UC packets
# only from its QP's path (the port's SLID and QPN, which guests cannot
# forge) and in PSN sequence; MR keys are random per context.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/sec_lib.sh"

vhca_start --num-vfs 4
dir=$RUN_DIR/qpn
mkdir -p "$dir"
env LD_PRELOAD="$TOOL_PRELOAD" "$ATTACKS" victim vhca0_vf2 vhca0_vf3 "$dir" \
	>"$RUN_DIR/victim.log" 2>&1 &
victim=$!
bg_track "$victim"
for _ in $(seq 600); do
	[[ -s $dir/old_peer.qpn ]] && break
	kill -0 "$victim" 2>/dev/null || fail "victim: $(cat "$RUN_DIR/victim.log")"
	sleep 0.05
done
old=$(cat "$dir/old_peer.qpn")
echo "the victim's destroyed peer had QPN $old"

# An attacker on the destroyed peer's own VF churns QPs for its number.
env LD_PRELOAD="$TOOL_PRELOAD" "$ATTACKS" qpn_churn vhca0_vf3 66000 "$old" \
	>"$RUN_DIR/churn.log" 2>&1 || fail "$(cat "$RUN_DIR/churn.log")"
cat "$RUN_DIR/churn.log"
pass "66000 QPs later the number has not come back; numbers are not sequential"

# An attacker on another VF that knows everything still cannot reach it.
errors() { sysfs_read class/infiniband/vhca0_vf2/ports/1/hw_counters/rcv_source_errors; }
before=$(errors)
env LD_PRELOAD="$TOOL_PRELOAD" "$ATTACKS" source_check vhca0_vf0 "$dir" \
	>"$RUN_DIR/source.log" 2>&1 || fail "$(cat "$RUN_DIR/source.log")"
cat "$RUN_DIR/source.log"
rc=0
wait "$victim" || rc=$?
cat "$RUN_DIR/victim.log"
((rc == 0)) || fail "the victim's memory changed"
after=$(errors)
((after > before)) || fail "rcv_source_errors did not count the stranger's packets ($before -> $after)"
pass "a stranger's RDMA WRITE to the victim's QP is dropped and counted ($before -> $after)"
wait_until_idle "after the attack"
vhca_stop_within 20
