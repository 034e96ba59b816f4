#!/bin/bash
# MPI between guests (docs/mpi-tests.md): the benchmarks of mpi-tests/ at
# short sizes over Open MPI + UCX rc_verbs, UCX ud_verbs and the openib btl,
# each rank in its own guest owning one VF, and a 4-rank allreduce in 4
# guests over rc_verbs.  Every byte of every message is checked inside the
# programs; here: exit status 0, the expected CSV rows, traffic on the VFs'
# port counters (so it really went through vhca), nothing left held in the
# daemon afterwards, and --corrupt-for-test must make a run fail (so the
# payload check cannot pass vacuously).  Uses the same mpirun command lines
# as mpi-tests/run (mpi-tests/mpi-lib.sh).
source "$(dirname "$0")/../lib.sh"
repo=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=mpi-tests/mpi-lib.sh
source "$repo/mpi-tests/mpi-lib.sh"

bench_dir=$VHCA_BUILD/mpi-tests
for prog in mpi_latency mpi_bandwidth mpi_bibw mpi_allreduce; do
	[[ -x $bench_dir/$prog ]] ||
		fail "$bench_dir/$prog not built (was MPI found when configuring?)"
done
[[ -x $VHCA_BUILD/tools/vhca-guest ]] || fail "vhca-guest not built"
command -v mpirun >/dev/null || fail "mpirun not installed"

vhca_start --num-vfs 4
MPI_BUILD=$VHCA_BUILD
MPI_RUN_DIR=$RUN_DIR
MPI_GUESTS=1
MPI_TIMEOUT=${VHCA_MPI_TIMEOUT:-180}
MPI_RANK_PRELOAD=$TOOL_PRELOAD	# the ASan runtime in the sanitizer build
# Outside the run dir: guests see the run dir read-only.
out_dir=$(mktemp -d /tmp/vhca-mpi-test.XXXXXX)
# Remove it on exit too; (exit $status) hands vhca_cleanup the real status.
trap 'status=$?; set +e; mpi_end_session; rm -rf "$out_dir"; (exit $status); vhca_cleanup' EXIT
csv=$out_dir/results.csv
MPI_SHARE=$out_dir	# the ranks write the CSV

# Sizes 0 B .. 64 KiB: eager and rendezvous protocols of both UCX and ob1.
SIZES=(--min-size 0 --max-size 64K)
N_SIZES=18	# 0, 1, 2, 4, ..., 64 Ki

xmit_words() {	# port_xmit_data of VF $1 (in 4-byte words, as IB counts)
	sysfs_read "class/infiniband/vhca0_vf$1/ports/1/counters/port_xmit_data"
}

# run CONFIG NRANKS PROGRAM ARGS...: must exit 0.
run() {
	local config=$1 nranks=$2 prog=$3
	shift 3
	local log=$out_dir/$config-$nranks-$prog.log
	if ! mpi_run "$config" "$nranks" "$log" "$bench_dir/$prog" \
		--label "$config" --csv "$csv" --quiet "$@"; then
		tail -n 40 "$log" >&2
		fail "$prog over $config on $nranks ranks failed (log above)"
	fi
	pass "$prog over $config, $nranks ranks in $nranks guests"
}

# rows BENCHMARK LABEL RANKS: the number of CSV rows, each with a positive
# iteration count and a positive latency for non-empty messages.
rows() {
	awk -F, -v b="$1" -v l="$2" -v r="$3" '
		$1 == b && $2 == l && $3 == r {
			n++
			if ($5 <= 0 || ($4 > 0 && $6 <= 0)) bad++
		}
		END { print bad ? -1 : n + 0 }' "$csv"
}

for config in ucx-rc ucx-ud openib; do
	before=("$(xmit_words 0)" "$(xmit_words 1)")
	run "$config" 2 mpi_latency "${SIZES[@]}" --iters 20 --warmup 2
	run "$config" 2 mpi_bandwidth "${SIZES[@]}" --iters 3 --warmup 1 --window 8
	run "$config" 2 mpi_bibw "${SIZES[@]}" --iters 3 --warmup 1 --window 8
	for bench in mpi_latency mpi_bandwidth mpi_bibw; do
		n=$(rows "$bench" "$config" 2)
		[[ $n == "$N_SIZES" ]] ||
			fail "$bench over $config: $n good CSV rows, expected $N_SIZES"
	done
	# Both VFs sent at least the payload of the latency run's largest
	# size once: the traffic went through vhca, not around it.
	for vf in 0 1; do
		sent=$(($(xmit_words "$vf") - before[vf]))
		((sent * 4 >= 65536)) ||
			fail "$config: VF $vf sent only $sent words through vhca"
	done
	pass "$config: $N_SIZES sizes per benchmark in the CSV, traffic on both VFs"
done

run ucx-rc 4 mpi_allreduce --min-size 0 --max-size 4K --iters 10 --warmup 1
n=$(rows mpi_allreduce ucx-rc 4)
[[ $n == 14 ]] || fail "allreduce: $n good CSV rows, expected 14 (0 B .. 4 KiB)"
pass "allreduce: 14 sizes in the CSV"

# The payload check must be able to fail: one flipped byte at the sender.
negative() {
	local config=$1 nranks=$2 prog=$3 status=0
	shift 3
	local log=$out_dir/corrupt-$config-$prog.log
	mpi_run "$config" "$nranks" "$log" "$bench_dir/$prog" --quiet \
		--corrupt-for-test "$@" || status=$?
	((status != 0)) || fail "$prog over $config passed with a corrupted byte"
	((status != 124)) || fail "$prog over $config hung after a corrupted byte"
	grep -q "PAYLOAD MISMATCH" "$log" || {
		tail -n 30 "$log" >&2
		fail "$prog over $config failed (status $status) without reporting the mismatch"
	}
	pass "$prog over $config with --corrupt-for-test fails (status $status) and says where"
}
negative ucx-rc 2 mpi_latency --max-size 64 --iters 5
negative openib 2 mpi_bandwidth --max-size 64 --iters 2 --window 4
negative ucx-ud 2 mpi_bibw --max-size 64 --iters 2 --window 4
negative ucx-rc 4 mpi_allreduce --max-size 64 --iters 5

# Every rank has exited: the daemon holds nothing for them any more.
wait_until_idle "after all ranks exited"
pass "no resources held after the runs"

vhca_stop || fail "vhcad exited with status $?"
pass "vhcad stopped cleanly"
