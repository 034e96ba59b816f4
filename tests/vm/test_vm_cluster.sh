#!/bin/bash
# vhca-cluster (docs/cluster.md): refusals of bad input at once; up 2 (VMs
# owning VFs 0 and 1 on a bridge in the cluster's network namespace);
# exec's output, stdin and exit status; the agent refuses a wrong key;
# unmodified mpirun runs the latency, bandwidth and allreduce benchmarks
# over UCX rc_verbs with one rank per VM, every byte checked; more ranks
# than VMs fail at once; a rank killed mid-job and a VM killed mid-job end
# the job with an error within a bound; restart brings the VM back and
# the next job runs; up 4 and the allreduce with a rank in each of the
# four VMs; down leaves no namespace, process, lease or mount.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/vm_lib.sh"

CLUSTER=$VHCA_BUILD/tools/vhca-cluster
BENCH=$VHCA_BUILD/mpi-tests
[[ -x $CLUSTER && -x $VHCA_BUILD/tools/vhca-agent ]] || fail "vhca-cluster is not built"
[[ -x $BENCH/mpi_latency ]] || fail "the MPI benchmarks are not built (Open MPI?)"
# How long a job may take to end after a rank or a VM died.
FAULT_BOUND=60

vhca_start --num-vfs 4
DIR=$RUN_DIR/cluster
cl() { timeout -k 5 "$VM_TIMEOUT" "$CLUSTER" --dir "$DIR" --run-dir "$RUN_DIR" "$@"; }
# The cluster's VMs are nobody's children (setsid): down, then their pids.
cluster_cleanup() {
	local status=$? f
	set +e
	if [[ -d $DIR ]]; then
		"$CLUSTER" --dir "$DIR" down >/dev/null 2>&1
		for f in "$DIR"/vm/*/pid; do
			[[ -f $f ]] && kill -KILL "$(<"$f")" 2>/dev/null
		done
		[[ -f $DIR/config ]] && ip netns del "$(sed -n 's/^NETNS=//p' "$DIR/config")" 2>/dev/null
	fi
	(exit "$status")
	vm_cleanup
}
trap cluster_cleanup EXIT

# refused CMD... -- TEXT: the command fails at once, saying TEXT.
refused() {
	local args=() out start=$SECONDS
	while [[ $1 != -- ]]; do args+=("$1"); shift; done
	shift
	out=$(cl "${args[@]}" 2>&1) && fail "vhca-cluster ${args[*]} succeeded: $out"
	grep -qF -- "$1" <<<"$out" || fail "vhca-cluster ${args[*]}: '$out' does not say '$1'"
	((SECONDS - start < 10)) || fail "vhca-cluster ${args[*]} took $((SECONDS - start)) s to refuse"
}
refused exec 0 true -- "no cluster in"
refused up -- "up needs the number of VMs"
refused up 0 -- "is not a count of VMs"
refused up two -- "is not a count of VMs"
refused up 5 -- "vhca0 has 4 VFs"
refused up 2 --mem lots -- "a size like 512M"
refused up 2 --cpus 0 -- "1 to 64"
refused frobnicate -- "unknown command"
out=$("$CLUSTER" --dir /var/tmp/vhca-cluster-test up 1 2>&1) && fail "--dir /var/tmp accepted"
grep -q "must be under /run or /tmp" <<<"$out" || fail "--dir /var/tmp: $out"
[[ -e /var/tmp/vhca-cluster-test ]] && fail "--dir /var/tmp: created it anyway"
pass "bad input refused at once with a clear error"

# ---- up ---------------------------------------------------------------------------
start=$SECONDS
cl up 2 >"$RUN_DIR/up.log" 2>&1 || { cat "$RUN_DIR/up.log" >&2; fail "up 2"; }
echo "  up 2: $((SECONDS - start)) s"
grep -q "^vm0 .*10.90.0.10 .*vhca0_vf0 .*running" "$RUN_DIR/up.log" &&
	grep -q "^vm1 .*10.90.0.11 .*vhca0_vf1 .*running" "$RUN_DIR/up.log" ||
	{ cat "$RUN_DIR/up.log" >&2; fail "up 2 lists: $(cat "$RUN_DIR/up.log")"; }
source "$DIR/config"	# NETNS, BRIDGE
ip netns list | grep -qw "$NETNS" || fail "no network namespace $NETNS"
out=$("$VHCA_BUILD/tools/vhca-guest" --run-dir "$RUN_DIR" --vf 1 -- true 2>&1) &&
	fail "a namespace guest took VF 1 from the cluster's VM"
grep -q "owned by VM" <<<"$out" || fail "VF 1's refusal: $out"
pass "up 2: VMs owning vhca0_vf0 and vhca0_vf1 at 10.90.0.10 and .11 in $NETNS"

# ---- exec --------------------------------------------------------------------------
out=$(cl exec vhca0-vf1 'hostname; echo "$SYSFS_PATH"') || fail "exec: $out"
[[ $out == $'vhca0-vf1\n/run/vhca/sys' ]] || fail "exec printed: $out"
status=0
cl exec 0 'echo out; echo err >&2; exit 7' >"$RUN_DIR/x.out" 2>"$RUN_DIR/x.err" || status=$?
((status == 7)) || fail "exec: exit status $status, not 7"
[[ $(<"$RUN_DIR/x.out") == out && $(<"$RUN_DIR/x.err") == err ]] ||
	fail "exec: stdout '$(<"$RUN_DIR/x.out")', stderr '$(<"$RUN_DIR/x.err")'"
[[ $(printf 'a\nb\n' | cl exec vm1 'wc -l') == 2 ]] || fail "exec: stdin did not arrive"
status=0
cl exec 9 true 2>/dev/null || status=$?
((status == 255)) || fail "exec to no VM: exit $status, not 255"
pass "exec: output apart, stdin, exit status 7; 255 for a VM that is not there"

# The agent refuses whoever lacks the VM's key, and runs nothing for them.
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RUN_DIR/wrong.key"
status=0
out=$(ip netns exec "$NETNS" "$VHCA_BUILD/tools/vhca-agent" exec --key-file "$RUN_DIR/wrong.key" \
	10.90.0.10 'touch /tmp/pwned' 2>&1) || status=$?
((status == 255)) && grep -q "refused our key" <<<"$out" || fail "a wrong key: exit $status: $out"
[[ $(cl exec 0 'ls /tmp/pwned 2>/dev/null | wc -l') == 0 ]] || fail "a wrong key ran a command"
grep -q "wrong key" "$DIR/vm/0/log" || fail "the agent did not log the refusal"
pass "the agent refuses a wrong key and runs nothing"

# ---- MPI, one rank per VM -----------------------------------------------------------
export UCX_TLS=rc_verbs,ud_verbs:aux,self
# A job's bound: under TCG on 2 loaded cores a short job has taken 20 s
# to 3 minutes (its MPI_Finalize the slowest part at times).
MPI_JOB_TIMEOUT=${MPI_JOB_TIMEOUT:-300}
# The sanitizer build's provider needs the ASan runtime first in the
# ranks (and Open MPI's memory patcher off, as mpi-lib.sh says).
rank_env=()
[[ -n $TOOL_PRELOAD ]] && rank_env=(-x "LD_PRELOAD=$TOOL_PRELOAD" \
	-x "ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}" --mca memory ^patcher)
mpi() { timeout -k 10 "$MPI_JOB_TIMEOUT" "$CLUSTER" --dir "$DIR" mpirun --mca pml ucx \
	--mca btl ^openib -x UCX_TLS "${rank_env[@]}" "$@"; }
# VHCA_CLUSTER_MPI=0 skips the complete jobs (the faults below need none).
CLUSTER_MPI=${VHCA_CLUSTER_MPI:-1}
((CLUSTER_MPI)) || echo "  (the complete MPI jobs are skipped: VHCA_CLUSTER_MPI=0)"
for prog in "mpi_latency --max-size 64K --iters 50" "mpi_bandwidth --max-size 64K --iters 5 --window 16" \
	"mpi_allreduce --max-size 16K --iters 20"; do
	((CLUSTER_MPI)) || break
	name=${prog%% *}
	status=0
	mpi -np 2 $BENCH/$prog >"$RUN_DIR/$name.log" 2>&1 || status=$?
	((status == 0)) ||
		{ cat "$RUN_DIR/$name.log" >&2; fail "$name over UCX rc_verbs between the VMs: mpirun exit $status"; }
	grep -q "ranks=2" "$RUN_DIR/$name.log" && grep -qE '^ +65536 |^ +16384 ' "$RUN_DIR/$name.log" ||
		{ cat "$RUN_DIR/$name.log" >&2; fail "$name: no results"; }
	grep -q MISMATCH "$RUN_DIR/$name.log" && fail "$name: payload mismatch"
done
if ((CLUSTER_MPI)); then
	grep -E '^ +8 ' "$RUN_DIR/mpi_latency.log" | awk '{ print "  8 B latency VM-VM over UCX rc_verbs: " $3 " us" }'
	pass "latency, bandwidth, allreduce over UCX rc_verbs, one rank in each VM, every byte checked"
fi

start=$SECONDS
status=0
out=$(mpi -np 3 $BENCH/mpi_latency --max-size 8 2>&1) || status=$?
((status != 0 && SECONDS - start < 30)) || fail "3 ranks on 2 VMs: exit $status after $((SECONDS - start)) s"
grep -qi "not enough slots" <<<"$out" || fail "3 ranks on 2 VMs: $out"
pass "more ranks than VMs: Open MPI's error at once"

# fault WHAT KILL: a long job; KILL ends part of it; the job must end
# with an error within FAULT_BOUND.
fault() {
	local what=$1 kill_cmd=$2 job status=0 start
	mpi -np 2 $BENCH/mpi_latency --max-size 1K --iters 1000000 >"$RUN_DIR/fault.log" 2>&1 &
	job=$!
	bg_track "$job"
	for _ in $(seq 300); do
		cl exec 1 'pidof mpi_latency' >/dev/null 2>&1 && break
		kill -0 "$job" 2>/dev/null || break
		sleep 0.5
	done
	sleep 2
	kill -0 "$job" 2>/dev/null ||
		{ cat "$RUN_DIR/fault.log" >&2; fail "$what: the job ended before the fault"; }
	eval "$kill_cmd"
	start=$SECONDS
	while kill -0 "$job" 2>/dev/null && ((SECONDS - start < FAULT_BOUND)); do sleep 0.2; done
	kill -0 "$job" 2>/dev/null && fail "$what: the job still runs $FAULT_BOUND s later"
	wait "$job" || status=$?
	((status != 0)) || { cat "$RUN_DIR/fault.log" >&2; fail "$what: the job ended with status 0"; }
	echo "  $what: the job ended after $((SECONDS - start)) s, mpirun exit $status"
}
fault "a rank killed" "cl exec 1 'kill -KILL \$(pidof mpi_latency)'"
grep -q "exited on signal 9" "$RUN_DIR/fault.log" || fail "a killed rank: $(tail "$RUN_DIR/fault.log")"
[[ -z $(cl exec 0 'pidof mpi_latency orted') ]] || fail "ranks left in vm0 after the job"
pass "a rank killed mid-job ends the job with Open MPI's error; nothing left in the VMs"

fault "a VM killed" 'kill -KILL "$(<"$DIR/vm/1/pid")"'
# The job ended; vhca-vm's QEMU may take a moment longer to go.
for _ in $(seq 50); do cl status >/dev/null || break; sleep 0.2; done
cl status >/dev/null && fail "status says every VM runs 10 s after one was killed"
cl restart 1 >/dev/null 2>&1 || fail "restart 1"
if ((CLUSTER_MPI)); then
	mpi -np 2 $BENCH/mpi_latency --max-size 1K --iters 20 >"$RUN_DIR/next.log" 2>&1 ||
		{ cat "$RUN_DIR/next.log" >&2; fail "the job after restart"; }
	pass "a VM killed mid-job ends the job with an error; restart; the next job runs"
else
	cl exec 1 "LD_PRELOAD=$TOOL_PRELOAD ibv_devices" | grep -q vhca0_vf1 ||
		fail "VM 1 after restart has no vhca0_vf1"
	pass "a VM killed mid-job ends the job with an error; restart brings VM 1 back with its VF"
fi

# ---- four VMs: the allreduce with a rank in each -------------------------------------
# A VF owned by a namespace guest: up refuses at once, naming the owner,
# and starts nothing.
"$VHCA_BUILD/tools/vhca-guest" --run-dir "$RUN_DIR" --vf 3 -- sleep 300 &
guest=$!
bg_track "$guest"
for _ in $(seq 100); do vf_lock_held 3 && break; sleep 0.05; done
vf_lock_held 3 || fail "vhca-guest did not take vf3"
start=$SECONDS
out=$(cl up 4 2>&1) && fail "up 4 with VF 3 owned by a guest succeeded: $out"
((SECONDS - start < 30)) || fail "up 4: refused only after $((SECONDS - start)) s"
grep -q "vhca0_vf3.*owned by\|owned by.*vhca0_vf3\|VF 3.*owned\|owned.*guest" <<<"$out" ||
	fail "up 4: the refusal does not name the owner: $out"
cl status >"$RUN_DIR/status4.log" 2>&1 || true
grep -q "^vm2 .*running\|^vm3 .*running" "$RUN_DIR/status4.log" &&
	fail "up 4 refused but left VMs running: $(cat "$RUN_DIR/status4.log")"
kill -TERM "$guest"
wait "$guest" || true
pass "up 4 with a VF owned by a guest: refused at once, naming it; nothing started"

if ((CLUSTER_MPI)); then
	start=$SECONDS
	cl up 4 >"$RUN_DIR/up4.log" 2>&1 || { cat "$RUN_DIR/up4.log" >&2; fail "up 4"; }
	echo "  up 4 (two more VMs): $((SECONDS - start)) s"
	mpi -np 4 $BENCH/mpi_allreduce --max-size 4K --iters 10 >"$RUN_DIR/allreduce4.log" 2>&1 ||
		{ cat "$RUN_DIR/allreduce4.log" >&2; fail "mpi_allreduce on 4 VMs"; }
	grep -q "ranks=4" "$RUN_DIR/allreduce4.log" && grep -qE '^ +4096 ' "$RUN_DIR/allreduce4.log" ||
		{ cat "$RUN_DIR/allreduce4.log" >&2; fail "mpi_allreduce on 4 VMs: no results"; }
	grep -q MISMATCH "$RUN_DIR/allreduce4.log" && fail "mpi_allreduce on 4 VMs: mismatch"
	for vf in 0 1 2 3; do
		n=$(sysfs_read "class/infiniband/vhca0_vf$vf/ports/1/counters/port_xmit_packets")
		((n > 0)) || fail "vhca0_vf$vf sent nothing"
	done
	pass "allreduce over UCX rc_verbs with a rank in each of 4 VMs, every byte checked, traffic on each VF"
fi

# ---- down ---------------------------------------------------------------------------
pids=$(cat "$DIR"/vm/*/pid)
cl down >/dev/null || fail "down"
for pid in $pids; do
	kill -0 "$pid" 2>/dev/null && fail "vhca-vm $pid still runs after down"
	[[ -z $(qemu_children "$pid") ]] || fail "QEMU of $pid still runs after down"
done
ip netns list | grep -qw "$NETNS" && fail "network namespace $NETNS left behind"
[[ -e $DIR ]] && fail "$DIR left behind"
ls /run/vhca-vm/"$BRIDGE"-* 2>/dev/null && fail "address leases of $BRIDGE left behind"
grep -qF "$RUN_DIR/vm" /proc/self/mountinfo && fail "mounts left behind"
"$VHCA_BUILD/tools/vhca-guest" --run-dir "$RUN_DIR" --vf 1 -- true || fail "VF 1 not free after down"
pass "down: no VM, QEMU, namespace, lease, mount or directory left; the VFs free"
no_vm_files "$RUN_DIR"
wait_until_idle "after the cluster"
vhca_stop || fail "vhcad exit status"
