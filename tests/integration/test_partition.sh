#!/bin/bash
# Partitions and Q_Keys enforced by the device, seen by unmodified
# rdma-core examples between vhca0_vf0 (server) and vhca0_vf1 (client):
#  - VF0 only 0x8001, VF1 only 0x8002: ibv_rc_pingpong fails with a
#    transport retry error, ibv_ud_pingpong gets nothing (killed by its
#    timeout), and port_rcv_constraint_errors rises on the receiving VFs;
#  - VF1 then given 0x8001: both pass;
#  - 0x0001 on both (limited members) fails; 0x8001 with 0x0001 passes;
#  - keys_test: Q_Key violations, the controlled Q_Key, a P_Key entry
#    emptied under a live QP, a port that is Down;
#  - a foreign partition's datagrams are dropped at the receiving port,
#    never queued to a context (VHCA_TRACE).
# Every run is bounded by a timeout; "must fail" runs use short ones.
source "$(dirname "$0")/../lib.sh"

VHCACTL="$VHCA_BUILD/tools/vhcactl"
KEYS_TEST="$VHCA_BUILD/tests/keys_test"
SRV_DEV=vhca0_vf0
CLI_DEV=vhca0_vf1
ITERS=200

vhca_start --num-vfs 2

counter() { sysfs_read "class/infiniband/$1/ports/1/counters/$2"; }
rcv_errors() {
	echo $(($(counter vhca0_vf0 port_rcv_constraint_errors) +
		$(counter vhca0_vf1 port_rcv_constraint_errors)))
}
set_pkeys() {
	"$VHCACTL" vf 0 set pkeys "$1" || fail "vf 0 set pkeys $1"
	"$VHCACTL" vf 1 set pkeys "$2" || fail "vf 1 set pkeys $2"
}

# pingpong NAME TOOL [ARGS...]: one server/client run; 0 iff both pass.
pingpong() {
	local name=$1 prog=$2
	shift 2
	next_port
	run_pair "$name" "$PORT" \
		"$prog" -d "$SRV_DEV" -p "$PORT" -i 1 -c -n "$ITERS" "$@" -- \
		"$prog" -d "$CLI_DEV" -p "$PORT" -i 1 -c -n "$ITERS" "$@" localhost
}

must_pass() {
	local name=$1
	PAIR_TIMEOUT=120 pingpong "$@" || {
		show_pair "$name" >&2
		fail "$name: must pass (exit status $PAIR_STATUS)"
	}
	! grep -qiE 'invalid data|fail|couldn' "$RUN_DIR/$name".*.log ||
		{ show_pair "$name" >&2; fail "$name: complaints in the logs"; }
}

# must_fail_rc NAME: ibv_rc_pingpong must end in a retry-exceeded error
# (its QPs use timeout 14, retry_cnt 7: about half a second; the server
# waits for a message that never comes until the timeout ends it).
must_fail_rc() {
	local name=$1 before
	before=$(rcv_errors)
	PAIR_TIMEOUT=15 pingpong "$name" ibv_rc_pingpong && {
		show_pair "$name" >&2
		fail "$name: ibv_rc_pingpong passed across partitions"
	}
	grep -q "Failed status transport retry counter exceeded (12)" \
		"$RUN_DIR/$name".*.log || {
		show_pair "$name" >&2
		fail "$name: no transport retry error (exit status $PAIR_STATUS)"
	}
	(($(rcv_errors) > before)) ||
		fail "$name: port_rcv_constraint_errors did not rise"
}

# must_fail_ud NAME: ibv_ud_pingpong never completes; its timeout ends it.
must_fail_ud() {
	local name=$1 before
	before=$(rcv_errors)
	PAIR_TIMEOUT=15 pingpong "$name" ibv_ud_pingpong && {
		show_pair "$name" >&2
		fail "$name: ibv_ud_pingpong passed across partitions"
	}
	[[ $PAIR_STATUS == "124 124" ]] || {
		show_pair "$name" >&2
		fail "$name: want both sides killed by the timeout, got $PAIR_STATUS"
	}
	(($(rcv_errors) > before)) ||
		fail "$name: port_rcv_constraint_errors did not rise"
}

# ---- different partitions ---------------------------------------------------------
set_pkeys 0x8001 0x8002
must_fail_rc rc_split
must_fail_ud ud_split
pass "0x8001 vs 0x8002: rc retry error, ud silent, constraint errors counted"

set_pkeys 0x8001 0x8001
must_pass rc_joined ibv_rc_pingpong
must_pass ud_joined ibv_ud_pingpong
pass "after vf 1 set pkeys 0x8001: rc and ud pass"

# ---- limited membership (IBTA 10.9.3: two limited members never talk) ----
set_pkeys 0x0001 0x0001
must_fail_rc rc_limited
must_fail_ud ud_limited
pass "0x0001 on both (limited): rc and ud fail"

set_pkeys 0x8001 0x0001
must_pass rc_full_limited ibv_rc_pingpong
must_pass ud_full_limited ibv_ud_pingpong
pass "0x8001 with 0x0001: rc and ud pass"

# The VF that holds the limited key may also be the server.
set_pkeys 0x0001 0x8001
must_pass rc_limited_full ibv_rc_pingpong
pass "0x0001 with 0x8001: rc passes"

# ---- Q_Keys, a P_Key emptied under a live QP, a Down port (keys_test) ----
set_pkeys 0xffff,0x8001 0xffff,0x8001
out=$(timeout -k 5 180 env LD_PRELOAD="$TOOL_PRELOAD" \
	"$KEYS_TEST" "$SRV_DEV" "$CLI_DEV" 2>&1) || {
	echo "$out" >&2
	fail "keys_test"
}
echo "$out"
[[ $("$VHCACTL" show | grep -c "policy     Follow") == 2 ]] ||
	fail "keys_test left a policy changed"
[[ $(sysfs_read class/infiniband/vhca0_vf0/ports/1/pkeys/1) == 0x8001 ]] ||
	fail "keys_test left VF0's table changed"
pass "keys_test"

kill -0 "$VHCAD_PID" 2>/dev/null || fail "vhcad died"
vhca_stop || fail "vhcad exit status"

# ---- where a foreign partition's packets stop: at the port ------------------------
# With VHCA_TRACE the device logs each packet sent and each one a QP's
# turn looks at ("resp: recv", "resp: refused").  Across partitions the
# datagrams must be dropped at the receiving port (IBTA 10.9.2): never
# queued to the context, where a flood of them would take the room its
# own partition's traffic needs.
VHCA_TRACE=1 vhca_start --num-vfs 2
set_pkeys 0x8001 0x8002
before=$(rcv_errors)
PAIR_TIMEOUT=8 pingpong ud_trace ibv_ud_pingpong || true
sent=$(grep -c " send .*UD_SEND_ONLY" "$RUN_DIR/vhcad.log" || true)
seen=$(grep -c "resp: .*UD_SEND_ONLY" "$RUN_DIR/vhcad.log" || true)
((sent > 0)) || fail "ud_trace: no datagram was sent"
((seen == 0)) || fail "ud_trace: $seen of $sent datagrams of another partition reached a QP's turn"
(($(rcv_errors) - before >= sent)) ||
	fail "ud_trace: $sent sent, $(($(rcv_errors) - before)) constraint errors counted"
pass "0x8001 vs 0x8002: all $sent datagrams dropped and counted at the receiving port"
vhca_stop || fail "vhcad exit status"
