#!/bin/bash
# Data-path benchmark: unmodified perftest between two VFs of a private
# vhcad, once per engine scheduling policy (vhcad --engine
# poll|adaptive|event).  Metrics: ib_write_lat -s 2 and ib_send_lat -s 2
# (t_typical, usec), ib_write_bw -s 65536 and -s 1048576 (BW average,
# Gb/s).  Prints the machine, a policy x metric table, and writes CSV to
# the results dir.  Builds first if needed; always stops its daemon.
#
# Then the speed targets (scripts/bench-targets.sh, docs/speed.md): tail
# percentiles, send against write run after run, UCX am_lat, aggregate
# bandwidth of VF pairs by engine threads (table and scaling.png), the
# control path (bench/ctrl_rate), and a table of figure against target.
#
# Then the same pair by placement, with the default policy: two
# namespace guests (vhca-guest) and two VMs (vhca-vm, each owning a VF,
# their TCP on a bridge in a network namespace of the script's own), in
# the same run, the VMs' accelerator named: ib_write_lat -s 2 and
# ib_write_bw -s 65536, and the cost of a VM's wake-up (one MMIO write,
# tests/vm/mmio_cost).
#
# usage: scripts/bench-datapath.sh [RESULTS_DIR]
# Environment: BENCH_POLICIES (default "poll adaptive event"),
# BENCH_PLACEMENTS (default "ns vm"; "" skips them), BENCH_VM_LAT_ITERS
# (default 1000), BENCH_VM_BW_ITERS (default 200),
# BENCH_LAT_ITERS (default 2000), BENCH_BW_ITERS (default 1000; 1 MiB runs a fifth),
# BENCH_TARGETS (default 1; 0 skips the speed targets: tails, send/write
# ratio, UCX, scaling by engine threads, control path; see
# scripts/bench-targets.sh for their variables),
# VHCA_BUILD (default build/release).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

export VHCA_BUILD=${VHCA_BUILD:-$ROOT/build/release}
if [[ ! -x $VHCA_BUILD/kernel-shim/vhcad || ! -e $VHCA_BUILD/providers/vhca/libvhca-rdmav34.so ]]; then
	cmake -S . -B "$VHCA_BUILD" -DVHCA_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$VHCA_BUILD" -j"$(nproc)" >/dev/null

RESULTS=${1:-$ROOT/results/bench-datapath-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
POLICIES=${BENCH_POLICIES:-poll adaptive event}
LAT_ITERS=${BENCH_LAT_ITERS:-2000}
BW_ITERS=${BENCH_BW_ITERS:-1000}

# shellcheck source=../tests/lib.sh
source "$ROOT/tests/lib.sh"   # vhca_start/stop, run_pair, cleanup trap

{
	echo "date: $(date -u +%FT%TZ)"
	echo "nproc: $(nproc)"
	echo "cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "kernel: $(uname -r)"
	echo "perftest: $(dpkg-query -W -f='${Version}' perftest 2>/dev/null || echo unknown)"
	echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (dirty)')"
} | tee "$RESULTS/machine.txt"

if ! "$VHCAD" --help 2>&1 | grep -q -- --engine; then
	echo "note: this vhcad has no --engine option; measuring its default only"
	POLICIES=default
fi

METRICS=(write_lat_2B send_lat_2B write_bw_64KiB write_bw_1MiB)
UNITS=(usec usec Gb/s Gb/s)
CSV=$RESULTS/bench.csv
echo "policy,metric,value,unit" >"$CSV"
declare -A VAL

# measure POLICY METRIC_INDEX TOOL ARGS...: one perftest pair.
measure() {
	local policy=$1 idx=$2 prog=$3 name value
	shift 3
	name=${policy}_${METRICS[$idx]}
	next_port
	local common=(-p "$PORT" -F "$@")
	value=FAIL
	if PAIR_TIMEOUT=300 run_pair "$name" "$PORT" \
		"$prog" -d vhca0_vf0 "${common[@]}" -- \
		"$prog" -d vhca0_vf1 "${common[@]}" localhost; then
		local log=$RUN_DIR/$name.client.log
		if [[ $prog == *_lat ]]; then
			# #bytes #iterations t_min t_max t_typical t_avg ...
			value=$(awk '/t_typical/ {h = 1; next} h && $1 ~ /^[0-9]+$/ {print $5; exit}' "$log")
		else
			# #bytes #iterations BW_peak BW_average MsgRate
			value=$(awk '/BW average/ {h = 1; next} h && $1 ~ /^[0-9]+$/ {print $4; exit}' "$log")
		fi
		[[ -n $value ]] || value=PARSE_ERROR
	else
		echo "$name failed (exit status server/client: $PAIR_STATUS)" >&2
		show_pair "$name" >&2
	fi
	cp "$RUN_DIR/$name".*.log "$RESULTS/" 2>/dev/null || true
	VAL[$policy,$idx]=$value
	echo "$policy,${METRICS[$idx]},$value,${UNITS[$idx]}" >>"$CSV"
	printf '  %-10s %-16s %s %s\n' "$policy" "${METRICS[$idx]}" "$value" "${UNITS[$idx]}"
}

for policy in $POLICIES; do
	if [[ $policy == default ]]; then
		vhca_start --num-vfs 2
	else
		vhca_start --num-vfs 2 --engine "$policy"
	fi
	measure "$policy" 0 ib_write_lat -s 2 -n "$LAT_ITERS"
	measure "$policy" 1 ib_send_lat -s 2 -n "$LAT_ITERS"
	measure "$policy" 2 ib_write_bw -s 65536 -n "$BW_ITERS" --report_gbits
	measure "$policy" 3 ib_write_bw -s 1048576 -n "$((BW_ITERS / 5 > 5 ? BW_ITERS / 5 : 5))" --report_gbits
	vhca_stop || echo "warning: vhcad ($policy) exit status nonzero" >&2
done

echo
printf '%-10s' policy | tee "$RESULTS/table.txt"
for i in "${!METRICS[@]}"; do printf ' %18s' "${METRICS[$i]}[${UNITS[$i]}]"; done | tee -a "$RESULTS/table.txt"
echo | tee -a "$RESULTS/table.txt"
for policy in $POLICIES; do
	printf '%-10s' "$policy"
	for i in "${!METRICS[@]}"; do printf ' %18s' "${VAL[$policy,$i]}"; done
	echo
done | tee -a "$RESULTS/table.txt"
# ---- the speed targets (scripts/bench-targets.sh) -------------------------------
TARGETS=${BENCH_TARGETS:-1}
if ((TARGETS)); then
	# shellcheck source=bench-targets.sh
	source "$ROOT/scripts/bench-targets.sh"
	bench_tail
	bench_ratio
	bench_ucx
	bench_scaling
	bench_ctrl
fi

# ---- by placement: namespace guests and VMs ------------------------------------
PLACEMENTS=${BENCH_PLACEMENTS-ns vm}
VM_LAT_ITERS=${BENCH_VM_LAT_ITERS:-1000}
VM_BW_ITERS=${BENCH_VM_BW_ITERS:-200}
PL_METRICS=(write_lat_2B write_bw_64KiB)
PL_UNITS=(usec Gb/s)
PL_ARGS=("ib_write_lat -s 2 -n $VM_LAT_ITERS" "ib_write_bw -s 65536 -n $VM_BW_ITERS --report_gbits")
declare -A PL
ACCEL=""
GUEST=$VHCA_BUILD/tools/vhca-guest
VM=$VHCA_BUILD/tools/vhca-vm

# perf_value TOOL LOG: the metric of a perftest client log.
perf_value() {
	if [[ $1 == *_lat ]]; then
		awk '/t_typical/ {h = 1; next} h && $1 ~ /^[0-9]+$/ {print $5; exit}' "$2"
	else
		awk '/BW average/ {h = 1; next} h && $1 ~ /^[0-9]+$/ {print $4; exit}' "$2"
	fi
}

# The client, retried until its server listens (a refusal is at once).
retry_client='for i in $(seq 120); do "$@" && exit 0; sleep 0.5; done; exit 1'

measure_ns() {	# IDX
	local idx=$1 name=ns_${PL_METRICS[$1]} value
	local -a cmd
	read -r -a cmd <<<"${PL_ARGS[$idx]}"
	next_port
	"$GUEST" --run-dir "$RUN_DIR" --vf 0 --net host -- "${cmd[@]}" -p "$PORT" -F \
		>"$RUN_DIR/$name.server.log" 2>&1 &
	local server=$!
	timeout 300 "$GUEST" --run-dir "$RUN_DIR" --vf 1 --net host -- \
		sh -c "$retry_client" - "${cmd[@]}" -p "$PORT" -F localhost \
		>"$RUN_DIR/$name.client.log" 2>&1 || true
	wait "$server" || true
	value=$(perf_value "${cmd[0]}" "$RUN_DIR/$name.client.log")
	PL[ns,$idx]=${value:-FAIL}
}

measure_vm() {	# IDX NS BR NET
	local idx=$1 ns=$2 br=$3 net=$4 name=vm_${PL_METRICS[$1]} value
	local -a cmd
	read -r -a cmd <<<"${PL_ARGS[$idx]}"
	next_port
	ip netns exec "$ns" timeout 600 "$VM" --run-dir "$RUN_DIR" --vf 0 --net "$br" \
		--env RDMAV_DRIVERS -- "${cmd[@]}" -p "$PORT" -F \
		>"$RUN_DIR/$name.server.log" 2>"$RUN_DIR/$name.server.err" &
	local server=$!
	for _ in $(seq 600); do
		grep -q "network: ${net}10/" "$RUN_DIR/$name.server.err" 2>/dev/null && break
		sleep 0.1
	done
	ip netns exec "$ns" timeout 600 "$VM" --run-dir "$RUN_DIR" --vf 1 --net "$br" \
		--env RDMAV_DRIVERS -- sh -c "$retry_client" - "${cmd[@]}" -p "$PORT" -F "${net}10" \
		>"$RUN_DIR/$name.client.log" 2>"$RUN_DIR/$name.client.err" || true
	wait "$server" || true
	[[ -n $ACCEL ]] || ACCEL=$(sed -n 's/^vhca-vm: accelerator \([a-z]*\).*/\1/p' \
		"$RUN_DIR/$name.client.err" | head -n 1)
	value=$(perf_value "${cmd[0]}" "$RUN_DIR/$name.client.log")
	PL[vm,$idx]=${value:-FAIL}
}

if [[ -n $PLACEMENTS ]]; then
	echo
	echo "== by placement (default policy)"
	vhca_start --num-vfs 2
	ns="" br="" net=""
	for placement in $PLACEMENTS; do
		if [[ $placement == vm ]]; then
			ns=vhca-bench-$$ br=vhcabb$$ net=10.79.$((RANDOM % 200)).
			# shellcheck disable=SC2064 # $ns now, not at exit
			trap "ip netns del $ns 2>/dev/null; vhca_cleanup" EXIT
			ip netns add "$ns"
			ip -n "$ns" link add "$br" type bridge
			ip -n "$ns" addr add "${net}1/24" dev "$br"
			ip -n "$ns" link set "$br" up
			ip -n "$ns" link set lo up
		fi
		for i in "${!PL_METRICS[@]}"; do
			if [[ $placement == vm ]]; then
				measure_vm "$i" "$ns" "$br" "$net"
			else
				measure_ns "$i"
			fi
			echo "$placement,${PL_METRICS[$i]},${PL[$placement,$i]},${PL_UNITS[$i]}" >>"$CSV"
			printf '  %-10s %-16s %s %s\n' "$placement" "${PL_METRICS[$i]}" \
				"${PL[$placement,$i]}" "${PL_UNITS[$i]}"
		done
		if [[ $placement == vm ]]; then
			# The provider's wake-up in a VM: one MMIO write.
			MMIO_NS=$(timeout 300 "$VM" --run-dir "$RUN_DIR" --vf 0 -- \
				"$VHCA_BUILD/tests/vm/mmio_cost" 200000 2>/dev/null |
				sed -n 's/^mmio_doorbell_ns //p')
			echo "vm,mmio_doorbell,${MMIO_NS:-FAIL},ns" >>"$CSV"
			printf '  %-10s %-16s %s %s\n' vm mmio_doorbell "${MMIO_NS:-FAIL}" ns
		fi
		[[ -n $ns ]] && ip netns del "$ns"
		ns=""
	done
	cp "$RUN_DIR"/{ns,vm}_*.log "$RESULTS/" 2>/dev/null || true
	vhca_stop || echo "warning: vhcad exit status nonzero" >&2
	{
		echo
		printf '%-26s' placement
		for i in "${!PL_METRICS[@]}"; do printf ' %18s' "${PL_METRICS[$i]}[${PL_UNITS[$i]}]"; done
		echo
		for placement in $PLACEMENTS; do
			case $placement in
			ns) label="namespace guests" ;;
			vm) label="VMs (${ACCEL:-?})" ;;
			*) label=$placement ;;
			esac
			printf '%-26s' "$label"
			for i in "${!PL_METRICS[@]}"; do printf ' %18s' "${PL[$placement,$i]}"; done
			echo
		done
		[[ -n ${MMIO_NS:-} ]] &&
			echo "VM wake-up (one MMIO write to the VF's Doorbell, ${ACCEL:-?}): ${MMIO_NS} ns"
	} | tee -a "$RESULTS/table.txt"
fi

((TARGETS)) && bench_targets_table

echo
echo "results: $RESULTS (bench.csv, table.txt, targets.txt, scaling.png, machine.txt, logs)"
