#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# report.sh CSV OUTDIR CONFIG...: the comparison table (stdout) and the
# PNG plots (OUTDIR/*.png) of a results CSV written by the benchmarks
# (header: benchmark,label,ranks,size_bytes,iterations,latency_us,
# min_latency_us,max_latency_us,bandwidth_MBps,bandwidth_Gbps).
# Columns appear in CONFIG order; every cell also shows its ratio to the
# "tcp" configuration (loopback TCP) at the same size, when there is one.
set -euo pipefail

(($# >= 3)) || { echo "usage: report.sh CSV OUTDIR CONFIG..." >&2; exit 2; }
csv=$1 out=$2
shift 2
configs=("$@")
mkdir -p "$out/data"

# table BENCHMARK RANKS FIELD TITLE: one row per size, one column per config.
table() {
	local bench=$1 ranks=$2 field=$3 title=$4 sizes
	sizes=$(awk -F, -v b="$bench" -v r="$ranks" \
		'NR > 1 && $1 == b && $3 == r { print $4 }' "$csv" | sort -n -u)
	[[ -n $sizes ]] || return 0
	echo
	echo "== $title"
	awk -F, -v b="$bench" -v r="$ranks" -v f="$field" \
		-v configs="${configs[*]}" -v sizes="$(tr "\n" " " <<<"$sizes")" '
	NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$1 == b && $3 == r { value[$2, $4] = $(col[f]) }
	END {
		# Only configurations with results for this benchmark.
		nall = split(configs, all, " ")
		nc = 0
		for (c = 1; c <= nall; c++)
			for (s in value) {
				split(s, key, SUBSEP)
				if (key[1] == all[c]) { cfg[++nc] = all[c]; break }
			}
		ns = split(sizes, sz, " ")
		line = sprintf("%10s", "size")
		for (c = 1; c <= nc; c++)
			line = line sprintf(" %19s", cfg[c])
		print line
		for (s = 1; s <= ns; s++) {
			line = sprintf("%10s", sz[s])
			for (c = 1; c <= nc; c++) {
				if (!((cfg[c], sz[s]) in value)) {
					line = line sprintf(" %19s", "-")
					continue
				}
				v = value[cfg[c], sz[s]]
				ratio = ""
				# VMs are compared with TCP between the same VMs.
				ref = cfg[c] ~ /^vm-/ ? "vm-tcp" : "tcp"
				if (cfg[c] != ref && ((ref, sz[s]) in value) &&
				    value[ref, sz[s]] + 0 > 0)
					ratio = sprintf("(%.2fx)", v / value[ref, sz[s]])
				line = line sprintf(" %10.2f %8s", v, ratio)
			}
			print line
		}
	}' "$csv"
}

echo "vhca MPI benchmarks: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -n), $(nproc) cores${MPI_ACCEL:+, VMs under $MPI_ACCEL}"
echo "(x) = value / tcp loopback value at the same size (vm-* columns: / vm-tcp,"
echo "TCP between the same VMs): for latency >1 is slower than TCP, for bandwidth"
echo ">1 is faster.  1 MB/s = 10^6 bytes/s; Gb/s = MB/s x 0.008."
table mpi_latency 2 latency_us "latency: one-way ping-pong, us (lower is better)"
table mpi_bandwidth 2 bandwidth_MBps "bandwidth: uni-directional, windowed, MB/s (higher is better)"
table mpi_bibw 2 bandwidth_MBps "bi-directional bandwidth: both directions summed, MB/s (higher is better)"
for ranks in $(awk -F, 'NR > 1 && $1 == "mpi_allreduce" { print $3 }' "$csv" | sort -n -u); do
	table mpi_allreduce "$ranks" latency_us "allreduce, $ranks ranks: mean time per call, us (lower is better)"
done

# ---- the speed targets (docs/speed.md) -----------------------------------------
# target BENCH SIZE CONFIG FIELD OP LIMIT TEXT: CONFIG's figure over tcp's.
target() {
	awk -F, -v b="$1" -v sz="$2" -v c="$3" -v f="$4" -v op="$5" -v l="$6" -v t="$7" '
	NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$1 == b && $3 == 2 && $4 == sz { v[$2] = $(col[f]) }
	END {
		if (!(c in v) || !("tcp" in v) || v["tcp"] <= 0) exit
		r = v[c] / v["tcp"]
		ok = op == "<=" ? r <= l : r >= l
		printf "  %-44s %6.2fx  target %s %sx  %s\n", t, r, op, l, ok ? "met" : "missed"
	}' "$csv"
}
if grep -q '^mpi_latency,tcp,2,8,' "$csv"; then
	echo
	echo "== speed targets: vhca over TCP loopback on this machine"
	target mpi_latency 8 ucx-rc latency_us "<=" 1.0 "ucx-rc 8 B latency / tcp"
	target mpi_bandwidth 1048576 ucx-rc bandwidth_MBps ">=" 1.5 "ucx-rc 1 MiB bandwidth / tcp"
	target mpi_bandwidth 1048576 ucx-ud bandwidth_MBps ">=" 1.0 "ucx-ud 1 MiB bandwidth / tcp"
fi

# ---- plots --------------------------------------------------------------------
# plot NAME BENCHMARK RANKS FIELD YLABEL TITLE; size 0 has no place on a
# log axis, so it is left out.
plot() {
	local name=$1 bench=$2 ranks=$3 field=$4 ylabel=$5 title=$6 c plots=()
	for c in "${configs[@]}"; do
		local data=$out/data/$name-$c.dat
		awk -F, -v b="$bench" -v r="$ranks" -v l="$c" -v f="$field" '
			NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
			$1 == b && $3 == r && $2 == l && $4 > 0 && $(col[f]) > 0 {
				print $4, $(col[f]) }' "$csv" | sort -n >"$data"
		[[ -s $data ]] && plots+=("'$data' using 1:2 with linespoints title '$c'")
	done
	((${#plots[@]})) || return 0
	local joined
	joined=$(printf '%s, ' "${plots[@]}")
	gnuplot <<EOF
set terminal pngcairo size 1000,650 noenhanced
set output '$out/$name.png'
set title '$title'
set logscale xy 2
set logscale y 10
set format x '%.0b%BB'
set xlabel 'message size (bytes)'
set ylabel '$ylabel'
set grid
set key top left
plot ${joined%, }
EOF
}
plot latency mpi_latency 2 latency_us "one-way latency (us)" "MPI ping-pong latency vs message size"
plot bandwidth mpi_bandwidth 2 bandwidth_MBps "bandwidth (MB/s)" "MPI uni-directional bandwidth vs message size"
plot bibw mpi_bibw 2 bandwidth_MBps "bandwidth, both directions (MB/s)" "MPI bi-directional bandwidth vs message size"
plot allreduce mpi_allreduce 4 latency_us "time per call (us)" "MPI_Allreduce, 4 ranks, vs message size"
