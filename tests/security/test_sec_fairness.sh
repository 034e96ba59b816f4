#!/bin/bash
# Security findings 7 and 8: one tenant's work cannot starve another's.
# Turns have a budget (64 KiB, 64 packets), so back-to-back 256 MiB
# WRITEs interleave with other contexts' turns, and a context woken by a
# doorbell or a packet runs before the busy ones; RC flow control keeps
# the WRITEs lossless, so the attack runs at full speed throughout (it
# used to die of retry exceeded, which let this test pass unloaded);
# timers and idle contexts cost nothing to others (no scan of all QPs or
# contexts).  The clean
# pair's median round trip beside each attack stays within a small
# factor of its median alone, and no round trip waits long.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/sec_lib.sh"

# The attacker's VF0 data sent, in MiB (port_xmit_data counts 4-byte words).
attacker_xmit_mib() {
	echo $(($(sysfs_read class/infiniband/vhca0_vf0/ports/1/counters/port_xmit_data) / 262144))
}

# beside NAME MIN_MIB ATTACK ARGS...: the clean pair beside ATTACK,
# compared.  The attack must last the whole run and, over it, send at
# least MIN_MIB from its VF0: an attack that died (a 256 MiB WRITE that
# failed with retry exceeded) or stalled proves nothing.
beside() {
	local name=$1 min_mib=$2 log=$RUN_DIR/$1.log attacker before sent
	shift 2
	env LD_PRELOAD="$TOOL_PRELOAD" "$ATTACKS" "$@" >"$log" 2>&1 &
	attacker=$!
	bg_track "$attacker"
	wait_line "$log" "holding\|running" "$attacker" 2400 || fail "$name: $(cat "$log")"
	before=$(attacker_xmit_mib)
	bystander_start 4 1000
	bystander_check "$name"
	kill -0 "$attacker" 2>/dev/null ||
		fail "$name: the attack ended before the clean pair did: $(cat "$log")"
	sent=$(($(attacker_xmit_mib) - before))
	((sent >= min_mib)) ||
		fail "$name: the attack sent $sent MiB beside the clean pair, not $min_mib"
	echo "the attack sent $sent MiB beside the clean pair"
	[[ $name == "256 MiB RDMA WRITEs" ]] && check_rt_budget "$name"
	# Generous: a 2-core machine shares its CPUs with the attack itself.
	((BYSTANDER_P50 <= 4 * BASE_P50 + 200)) ||
		fail "$name: median round trip $BYSTANDER_P50 us against $BASE_P50 us alone"
	pass "$name: median $BYSTANDER_P50 us against $BASE_P50 us alone"
	bg_kill_all
	head -n 3 "$log"
}

# The scheduling policies of vhcad's engine threads, one per line (0
# SCHED_OTHER, 1 SCHED_FIFO: the 41st field of their stat).
engine_policies() {
	local t
	for t in /proc/"$VHCAD_PID"/task/*; do
		[[ $(cat "$t/comm" 2>/dev/null) == vhca-engine ]] || continue
		sed 's/^.*) //' "$t/stat" 2>/dev/null | awk '{ print $39 }'
	done
}

# Engine threads run SCHED_FIFO within a budget (half a CPU, 2 ms
# bursts): a tenant that keeps them busy must send them back to
# SCHED_OTHER part of the time, or it would take whole CPUs from every
# other task on the host.  Samples the policies while @1 runs.
check_rt_budget() {
	local name=$1 other=0 fifo=0 i p
	((RT_CHECKED)) || return 0
	for i in $(seq 300); do
		for p in $(engine_policies); do
			case $p in 0) other=$((other + 1)) ;; 1) fifo=$((fifo + 1)) ;; esac
		done
		sleep 0.01
	done
	((other > 0)) ||
		fail "$name: the engine threads stayed SCHED_FIFO all along ($fifo samples)"
	echo "$name: engine threads sampled $fifo times SCHED_FIFO, $other times SCHED_OTHER"
}

vhca_start --num-vfs 4
RT_CHECKED=0
if engine_policies | grep -qx 1; then
	RT_CHECKED=1
else
	echo "note: SCHED_FIFO refused here (policies: $(engine_policies | tr '\n' ' ')); the engine's RT budget is not checked"
fi
bystander_start 3 1000
bystander_check "alone"
BASE_P50=$BYSTANDER_P50

beside "256 MiB RDMA WRITEs" 256 big_writes vhca0_vf0 vhca0_vf1 60
# As many as each VF's share allows (the quota stops the rest).
beside "thousands of QPs waiting for ACKs" 0 qp_timers vhca0_vf0 vhca0_vf1 16000 60
beside "hundreds of idle contexts" 0 idle_contexts vhca0_vf0 1200 60

wait_until_idle "after the attacks"
if ((RT_CHECKED)); then
	# Idle again, every thread waits for its next wakeup as FIFO.
	sleep 0.1
	[[ -z $(engine_policies | grep -vx 1) ]] ||
		fail "idle engine threads not SCHED_FIFO: $(engine_policies | tr '\n' ' ')"
	pass "idle engine threads are SCHED_FIFO again"
fi
vhca_stop_within 20
