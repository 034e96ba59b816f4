#!/bin/bash
# A rank killed mid-run (issue 5, faults): two ranks in two guests run the
# latency benchmark over UCX rc_verbs; rank 1 is SIGKILLed (its pid comes
# from the guest's VF lock record, never from a process name).  The job must
# end with an error, not hang; vhcad must survive and free every resource
# the dead rank held on its VF; and the next job on the same VFs must pass.
source "$(dirname "$0")/../lib.sh"
repo=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=mpi-tests/mpi-lib.sh
source "$repo/mpi-tests/mpi-lib.sh"

latency=$VHCA_BUILD/mpi-tests/mpi_latency
[[ -x $latency ]] || fail "$latency not built (was MPI found when configuring?)"
[[ -x $VHCA_BUILD/tools/vhca-guest ]] || fail "vhca-guest not built"

vhca_start --num-vfs 2
MPI_BUILD=$VHCA_BUILD
MPI_RUN_DIR=$RUN_DIR
MPI_GUESTS=1
MPI_TIMEOUT=${VHCA_MPI_TIMEOUT:-180}
MPI_RANK_PRELOAD=$TOOL_PRELOAD
out_dir=$(mktemp -d /tmp/vhca-mpi-fault.XXXXXX)
# set +e: under set -e the trap would stop at "(exit $status)".
trap 'status=$?; set +e; mpi_end_session; rm -rf "$out_dir"; (exit $status); vhca_cleanup' EXIT

lock_record=$RUN_DIR/guests/vhca0_vf1.lock
contexts_of() {	# open contexts on device $1, from the daemon's status view
	vhca_status | awk -v d="$1" '$1 == d { for (i = 1; i < NF; i++)
		if ($i == "contexts") print $(i + 1) }'
}

# kill_rank1: once rank 1 runs (its guest holds vhca0_vf1 and its context
# is open) and traffic flows, SIGKILL it; its pid is in the lock record.
# Runs in the background while the job runs in the foreground, so the EXIT
# trap knows the job's session.
kill_rank1() {
	local victim="" _
	for _ in $(seq 300); do
		if [[ -r $lock_record ]]; then
			victim=$(sed -n 's/.*(pid \([0-9]*\)).*/\1/p' "$lock_record")
			[[ -n $victim && $(contexts_of vhca0_vf1) -ge 1 ]] && break
		fi
		victim=""
		sleep 0.2
	done
	[[ -n $victim ]] || { echo "rank 1 never opened vhca0_vf1"; return 1; }
	sleep 1
	kill -0 "$victim" 2>/dev/null || { echo "rank 1 ended before the kill"; return 1; }
	kill -KILL "$victim"
	echo "killed rank 1 (pid $victim)"
}
kill_rank1 >"$out_dir/killer.log" 2>&1 &
killer=$!
bg_track "$killer"

# Long enough that the kill lands mid-run: 8-byte ping-pong, many times.
status=0
mpi_run ucx-rc 2 "$out_dir/killed.log" "$latency" --min-size 8 \
	--max-size 8 --iters 100000000 --warmup 10 --quiet || status=$?
wait "$killer" || { cat "$out_dir/killer.log" "$out_dir/killed.log" >&2; fail "$(tail -n 1 "$out_dir/killer.log")"; }
pass "rank 1, the guest of vhca0_vf1: $(cat "$out_dir/killer.log") mid-run"
# mpirun notices and ends the job; timeout (124) would mean a hang.
[[ $status != 0 && $status != 124 ]] ||
	{ tail -n 30 "$out_dir/killed.log" >&2; fail "the job ended with status $status, expected an error exit"; }
pass "the job ended with an error (status $status) instead of hanging"

kill -0 "$VHCAD_PID" 2>/dev/null || fail "vhcad died"
wait_until_idle "after the killed job" vhca0_vf0 vhca0_vf1
pass "vhcad survived and holds nothing for either rank"

mpi_run ucx-rc 2 "$out_dir/next.log" "$latency" --min-size 0 --max-size 4K \
	--iters 50 --warmup 5 --quiet ||
	{ tail -n 30 "$out_dir/next.log" >&2; fail "the next job failed"; }
pass "the next job on the same VFs passes its payload checks"
