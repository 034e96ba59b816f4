#!/bin/bash
# A process killed with SIGKILL in the middle of a verified RC stream: its
# peer's QP completes with an error (IBV_WC_RETRY_EXC_ERR, or a flush)
# within the retry budget and never hangs; the daemon frees everything the
# dead process held and keeps serving.  Uses `datapath_test peer` (the
# sides exchange LID/QPN/rkey through files; ACK timeout 16.8 ms, 7
# retries, so the budget is about 8 * 16.8 ms after the last packet, plus
# the 200 ms idle probe interval).
source "$(dirname "$0")/../lib.sh"

DT=$VHCA_BUILD/tests/datapath_test
vhca_start --num-vfs 2

wait_for_line() { # file pattern pid
	for _ in $(seq 600); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# kill_one NAME VICTIM_ROLE: starts both sides, kills the victim mid-stream.
kill_one() {
	local name=$1 victim=$2 survivor dir vpid spid rc=0
	survivor=$([[ $victim == b ]] && echo a || echo b)
	dir=$RUN_DIR/$name
	mkdir -p "$dir"
	declare -A devs=([a]=vhca0_vf0 [b]=vhca0_vf1)

	timeout -k 5 60 "$DT" peer "$survivor" "${devs[$survivor]}" "$dir" 0 \
		expect-death >"$dir/survivor.log" 2>&1 &
	spid=$!
	bg_track "$spid"
	"$DT" peer "$victim" "${devs[$victim]}" "$dir" 0 >"$dir/victim.log" 2>&1 &
	vpid=$!
	bg_track "$vpid"
	wait_for_line "$dir/victim.log" streaming "$vpid" ||
		fail "$name: victim did not start: $(cat "$dir"/*.log)"
	wait_for_line "$dir/survivor.log" streaming "$spid" ||
		fail "$name: survivor did not start: $(cat "$dir"/*.log)"
	sleep 1.5 # mid-transfer
	kill -0 "$vpid" 2>/dev/null || fail "$name: victim exited early: $(cat "$dir/victim.log")"
	echo "$name: victim (side $victim) held: $(held_resources "${devs[$victim]}" | tr '\n' ' ')"
	kill -KILL "$vpid"
	wait "$vpid" 2>/dev/null || true
	wait "$spid" || rc=$?
	cat "$dir/survivor.log"
	((rc != 124)) || fail "$name: the survivor hung (timeout)"
	((rc == 0)) || fail "$name: survivor exit $rc"
	grep -Eq 'error completion (transport retry counter exceeded|Work Request Flushed Error)' \
		"$dir/survivor.log" || fail "$name: no retry-exceeded/flush completion"
	ms=$(sed -n 's/.*) \([0-9]*\) ms after the last progress.*/\1/p' "$dir/survivor.log")
	[[ -n $ms ]] && ((ms < 5000)) || fail "$name: error after ${ms:-?} ms (budget ~350 ms)"
	pass "$name: survivor saw the death after $ms ms"

	wait_until_idle "$name: the dead process's resources" "${devs[$victim]}"
	pass "$name: the dead process's resources are freed"
}

kill_one kill_responder b   # the echoing side dies; the sender notices
kill_one kill_requester a   # the sending side dies; the idle side's probe notices

# The device keeps serving: a short clean stream.
dir=$RUN_DIR/after
mkdir -p "$dir"
timeout -k 5 120 "$DT" peer b vhca0_vf1 "$dir" 0 >"$dir/b.log" 2>&1 &
bpid=$!
bg_track "$bpid"
timeout -k 5 120 "$DT" peer a vhca0_vf0 "$dir" 500 >"$dir/a.log" 2>&1 ||
	fail "stream after the kills: $(cat "$dir/a.log" "$dir/b.log")"
wait "$bpid" || fail "stream after the kills (b): $(cat "$dir/b.log")"
grep -q "500 messages verified, 0 bad" "$dir/a.log" || fail "after: $(cat "$dir/a.log")"
pass "the device still serves after the kills"

# Released asynchronously (the owner's pidfd): b may have exited a moment ago.
wait_until_idle "after the kills" vhca0_vf0 vhca0_vf1
vhca_stop || fail "vhcad exit status"
