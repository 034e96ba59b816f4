#!/bin/bash
# Data-path benchmark: unmodified perftest between two VFs of a private
# vhcad, once per engine scheduling policy (vhcad --engine
# poll|adaptive|event).  Metrics: ib_write_lat -s 2 and ib_send_lat -s 2
# (t_typical, usec), ib_write_bw -s 65536 and -s 1048576 (BW average,
# Gb/s).  Prints the machine, a policy x metric table, and writes CSV to
# the results dir.  Builds first if needed; always stops its daemon.
#
# usage: scripts/bench-datapath.sh [RESULTS_DIR]
# Environment: BENCH_POLICIES (default "poll adaptive event"),
# BENCH_LAT_ITERS (default 2000), BENCH_BW_ITERS (default 1000; 1 MiB runs a fifth),
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
echo
echo "results: $RESULTS (bench.csv, table.txt, machine.txt, perftest logs)"
