# shellcheck shell=bash
# The speed targets of scripts/bench-datapath.sh (docs/speed.md), sourced
# by it after tests/lib.sh: each function starts its own vhcad, prints a
# table with the target beside the figure, appends to $CSV
# (section,metric,value,unit) and to $RESULTS/targets.txt.  Not a test:
# a missed target prints "missed", it does not fail the run.
#
# Environment: BENCH_TAIL_ITERS (default 100000), BENCH_RATIO_RUNS (10),
# BENCH_SCALE_THREADS (default "1 2 4"), BENCH_SCALE_PAIRS (4).

TAIL_ITERS=${BENCH_TAIL_ITERS:-100000}
RATIO_RUNS=${BENCH_RATIO_RUNS:-10}
SCALE_THREADS=${BENCH_SCALE_THREADS:-1 2 4}
SCALE_PAIRS=${BENCH_SCALE_PAIRS:-4}
CTRL_RATE=$VHCA_BUILD/bench/ctrl_rate

# verdict VALUE OP LIMIT: "met" or "missed" (OP is <= or >=).
verdict() {
	awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
		if (v !~ /^[0-9.]+$/) { print "no figure"; exit }
		ok = op == "<=" ? v + 0 <= l + 0 : v + 0 >= l + 0
		print ok ? "met" : "missed" }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else print "-" }'; }

# target_row NAME VALUE UNIT OP LIMIT: one line of the targets table.
target_row() {
	local v
	v=$(verdict "$2" "$4" "$5")
	printf '  %-44s %10s %-6s target %s %-6s %s\n' "$1" "$2" "$3" "$4" "$5" "$v" |
		tee -a "$RESULTS/targets.txt"
	echo "target,$1,$2,$3" >>"$CSV"
}

# lat_fields LOG: "typical avg p99 p99.9 max" of a perftest latency log.
lat_fields() {
	awk '/t_typical/ {h = 1; next}
	     h && $1 ~ /^[0-9]+$/ {print $5, $6, $8, $9, $4; exit}' "$1"
}

# lat_pair NAME TOOL ITERS: one perftest latency pair (2 bytes) on the
# running daemon; prints the client log's path, or nothing.
lat_pair() {
	local name=$1 prog=$2 iters=$3
	next_port
	if PAIR_TIMEOUT=300 run_pair "$name" "$PORT" \
		"$prog" -d vhca0_vf0 -p "$PORT" -F -s 2 -n "$iters" -- \
		"$prog" -d vhca0_vf1 -p "$PORT" -F -s 2 -n "$iters" localhost >&2; then
		cp "$RUN_DIR/$name".*.log "$RESULTS/" 2>/dev/null || true
		echo "$RUN_DIR/$name.client.log"
	else
		show_pair "$name" >&2
	fi
}

# ---- tails: average and percentiles against t_typical ------------------------
SEND_TYPICAL=""
declare -A TAIL	# tool -> "typical avg p99 p99.9"
bench_tail() {
	local prog log typ avg p99 p999 max
	echo
	echo "== tails: 2-byte latency, -n $TAIL_ITERS, default engine (us; x = / t_typical)"
	printf '  %-14s %9s %16s %16s %16s %10s\n' tool t_typical average "99th pct" "99.9th pct" t_max
	vhca_start --num-vfs 2
	for prog in ib_write_lat ib_send_lat; do
		log=$(lat_pair "tail_$prog" "$prog" "$TAIL_ITERS")
		if [[ -z $log ]]; then
			printf '  %-14s failed\n' "$prog"
			continue
		fi
		read -r typ avg p99 p999 max < <(lat_fields "$log")
		[[ $prog == ib_send_lat ]] && SEND_TYPICAL=$typ
		printf '  %-14s %9s %9s (%5sx) %9s (%5sx) %9s (%5sx) %10s\n' "$prog" "$typ" \
			"$avg" "$(ratio "$avg" "$typ")" "$p99" "$(ratio "$p99" "$typ")" \
			"$p999" "$(ratio "$p999" "$typ")" "$max"
		echo "tail,${prog}_typical,$typ,usec" >>"$CSV"
		echo "tail,${prog}_avg,$avg,usec" >>"$CSV"
		echo "tail,${prog}_p99,$p99,usec" >>"$CSV"
		echo "tail,${prog}_p99.9,$p999,usec" >>"$CSV"
		TAIL[$prog]="$typ $avg $p99 $p999"
	done
	vhca_stop || echo "warning: vhcad exit status nonzero" >&2
}

# ---- send against write, run after run ---------------------------------------
RATIO_WORST=""
bench_ratio() {
	local run log w s r worst=0
	echo
	echo "== ib_send_lat against ib_write_lat, 2 bytes, t_typical (us), $RATIO_RUNS runs in a row"
	vhca_start --num-vfs 2
	for run in $(seq "$RATIO_RUNS"); do
		log=$(lat_pair "ratio_write_$run" ib_write_lat 20000)
		w=$([[ -n $log ]] && lat_fields "$log" | cut -d' ' -f1)
		log=$(lat_pair "ratio_send_$run" ib_send_lat 20000)
		s=$([[ -n $log ]] && lat_fields "$log" | cut -d' ' -f1)
		r=$(ratio "${s:-x}" "${w:-0}")
		printf '  run %2d  write %7s  send %7s  send/write %s\n' "$run" "${w:-FAIL}" "${s:-FAIL}" "$r"
		echo "ratio,run$run,$r,x" >>"$CSV"
		worst=$(awk -v a="$worst" -v b="$r" 'BEGIN { print (b == "-" ? 99 : (b > a ? b : a)) }')
	done
	RATIO_WORST=$worst
	vhca_stop || echo "warning: vhcad exit status nonzero" >&2
}

# ---- UCX active messages against ib_send_lat ---------------------------------
UCX_MEDIAN=""
bench_ucx() {
	echo
	echo "== UCX am_lat 8 bytes over rc_verbs (ucx_perftest, 20000 iterations)"
	if ! command -v ucx_perftest >/dev/null; then
		echo "  ucx_perftest not installed (ucx-utils)"
		return 0
	fi
	vhca_start --num-vfs 2
	next_port
	UCX_TLS=rc_verbs UCX_NET_DEVICES=vhca0_vf0:1 timeout 120 \
		ucx_perftest -p "$PORT" >"$RUN_DIR/ucx.server.log" 2>&1 &
	local server=$!
	bg_track "$server"
	wait_listen "$PORT" "$server" 200 || echo "  the ucx_perftest server never listened"
	UCX_TLS=rc_verbs UCX_NET_DEVICES=vhca0_vf1:1 timeout 120 \
		ucx_perftest localhost -p "$PORT" -t am_lat -s 8 -n 20000 -x rc_verbs \
		-d vhca0_vf1:1 >"$RUN_DIR/ucx.client.log" 2>&1 || true
	wait "$server" || true
	cp "$RUN_DIR"/ucx.*.log "$RESULTS/" 2>/dev/null || true
	# "Final: iterations typical average overall ..." (latency in us)
	UCX_MEDIAN=$(awk '/^Final:/ {print $3; exit}' "$RUN_DIR/ucx.client.log")
	local avg
	avg=$(awk '/^Final:/ {print $4; exit}' "$RUN_DIR/ucx.client.log")
	printf '  am_lat typical %s us, average %s us; ib_send_lat t_typical %s us\n' \
		"${UCX_MEDIAN:-FAIL}" "${avg:-FAIL}" "${SEND_TYPICAL:-?}"
	echo "ucx,am_lat_typical,${UCX_MEDIAN:-FAIL},usec" >>"$CSV"
	vhca_stop || echo "warning: vhcad exit status nonzero" >&2
}

# ---- aggregate bandwidth of VF pairs by engine threads -----------------------
declare -A SCALE
bench_scaling() {
	local threads p pids=() bw rate n
	echo
	echo "== $SCALE_PAIRS VF pairs at once, ib_write_bw 64 KiB, by engine threads ($(nproc) CPUs)"
	printf '  %-8s %14s %14s\n' threads "sum Gb/s" "sum Mmsg/s"
	for threads in $SCALE_THREADS; do
		vhca_start --num-vfs $((2 * SCALE_PAIRS)) --engine-threads "$threads"
		pids=()
		for p in $(seq 0 $((SCALE_PAIRS - 1))); do
			next_port
			PAIR_TIMEOUT=300 run_pair "scale_${threads}_$p" "$PORT" \
				ib_write_bw -d "vhca0_vf$((2 * p))" -p "$PORT" -F -s 65536 -n 2000 --report_gbits -- \
				ib_write_bw -d "vhca0_vf$((2 * p + 1))" -p "$PORT" -F -s 65536 -n 2000 \
				--report_gbits localhost >/dev/null 2>&1 &
			pids+=($!)
		done
		for p in "${pids[@]}"; do wait "$p" || true; done
		# #bytes #iterations BW_peak BW_average MsgRate[Mpps]
		read -r bw rate n < <(cat "$RUN_DIR"/scale_"${threads}"_*.client.log | awk '
			/BW average/ {h = 1; next}
			h && $1 ~ /^[0-9]+$/ {bw += $4; mr += $5; n++; h = 0}
			END {printf "%.2f %.4f %d\n", bw, mr, n}')
		cp "$RUN_DIR"/scale_"${threads}"_*.log "$RESULTS/" 2>/dev/null || true
		printf '  %-8s %14s %14s%s\n' "$threads" "$bw" "$rate" \
			"$( ((n == SCALE_PAIRS)) || echo "  (only $n of $SCALE_PAIRS pairs reported)")"
		echo "scaling,threads$threads,$bw,Gb/s" >>"$CSV"
		SCALE[$threads]=$bw
		echo "$threads $bw $rate" >>"$RESULTS/scaling.dat"
		vhca_stop || echo "warning: vhcad exit status nonzero" >&2
	done
	command -v gnuplot >/dev/null || return 0
	gnuplot <<EOF
set terminal pngcairo size 900,600 noenhanced
set output '$RESULTS/scaling.png'
set title 'aggregate ib_write_bw 64 KiB of $SCALE_PAIRS VF pairs by engine threads ($(nproc) CPUs)'
set xlabel 'engine threads'
set ylabel 'Gb/s (sum of pairs)'
set y2label 'Mmsg/s'
set y2tics
set grid
set key top left
plot '$RESULTS/scaling.dat' using 1:2 with linespoints title 'bandwidth', \
     '' using 1:3 axes x1y2 with linespoints title 'message rate'
EOF
}

# ---- control path ------------------------------------------------------------
# Each verb is a FUSE round trip: the caller's write wakes a daemon
# thread and sleeps until the reply wakes it.  Where the waking CPU is
# idle that costs its wakeup from halt (about 35 us in a VM without
# guest halt polling), so the path is measured twice: as the machine is,
# and with idle CPUs polling (PM QoS /dev/cpu_dma_latency held at 0 while
# it runs, what tuned's latency-performance profile does; released when
# the fd closes, so nothing is left behind).
declare -A CTRL CTRL_POLL
ctrl_run() {	# LOG
	timeout 300 "$CTRL_RATE" -d 1 vhca0_vf0 vhca0_vf1 >"$1" 2>&1
}
bench_ctrl() {
	local metric value unit qos
	echo
	echo "== control path (bench/ctrl_rate; us and per second)"
	if [[ ! -x $CTRL_RATE ]]; then
		echo "  $CTRL_RATE not built"
		return 0
	fi
	vhca_start --num-vfs 2
	ctrl_run "$RUN_DIR/ctrl.log" || echo "  ctrl_rate failed: $(tail -n 3 "$RUN_DIR/ctrl.log")"
	if [[ -w /dev/cpu_dma_latency ]]; then
		exec {qos}>/dev/cpu_dma_latency
		echo 0 >&"$qos"
		ctrl_run "$RUN_DIR/ctrl_poll.log" ||
			echo "  ctrl_rate (idle polling) failed: $(tail -n 3 "$RUN_DIR/ctrl_poll.log")"
		exec {qos}>&-
	fi
	while read -r metric value unit; do
		CTRL[$metric]=$value
		echo "ctrl,$metric,$value,$unit" >>"$CSV"
	done < <(grep -E '^[a-z0-9_]+ [0-9.]+ ' "$RUN_DIR/ctrl.log")
	while read -r metric value unit; do
		CTRL_POLL[$metric]=$value
		echo "ctrl_idle_poll,$metric,$value,$unit" >>"$CSV"
	done < <(grep -sE '^[a-z0-9_]+ [0-9.]+ ' "$RUN_DIR/ctrl_poll.log")
	printf '  %-22s %14s %18s\n' metric "as is" "idle CPUs poll"
	for metric in cmd_us qp_rate qp_create_us qp_modify_us qp_destroy_us \
		mr4k_fresh_rate mr4k_fresh_reg_us mr4k_fresh_dereg_us mr4k_same_rate \
		mr1g_untouched_rate mr1g_touched_rate; do
		printf '  %-22s %14s %18s\n' "$metric" "${CTRL[$metric]:--}" "${CTRL_POLL[$metric]:--}"
	done
	cp "$RUN_DIR"/ctrl*.log "$RESULTS/" 2>/dev/null || true
	vhca_stop || echo "warning: vhcad exit status nonzero" >&2
}

# ---- the targets, side by side -------------------------------------------------
bench_targets_table() {
	local w s typ avg p99 p999 first
	echo
	echo "== speed targets (issue: speed; docs/speed.md)" | tee -a "$RESULTS/targets.txt"
	target_row "send/write t_typical, worst of $RATIO_RUNS runs" "${RATIO_WORST:-}" x "<=" 1.1
	for w in ib_write_lat ib_send_lat; do
		read -r typ avg p99 p999 <<<"${TAIL[$w]:-- - - -}"
		target_row "$w average / t_typical" "$(ratio "$avg" "$typ")" x "<=" 1.3
		target_row "$w 99th pct / t_typical" "$(ratio "$p99" "$typ")" x "<=" 2
		target_row "$w 99.9th pct / t_typical" "$(ratio "$p999" "$typ")" x "<=" 10
	done
	s=$(ratio "${UCX_MEDIAN:-x}" "${SEND_TYPICAL:-0}")
	target_row "UCX am_lat 8 B / ib_send_lat t_typical" "$s" x "<=" 1.2
	# "Grows with engine threads up to the cores": more than noise.
	first=${SCALE_THREADS%% *}
	target_row "aggregate BW $(nproc) threads / $first" \
		"$(ratio "${SCALE[$(nproc)]:-x}" "${SCALE[$first]:-0}")" x ">=" 1.1
	target_row "QP create+connect+destroy" "${CTRL[qp_rate]:-}" "/s" ">=" 10000
	target_row "  the same, idle CPUs polling" "${CTRL_POLL[qp_rate]:-}" "/s" ">=" 10000
	target_row "ibv_reg_mr+dereg 4 KiB" "${CTRL[mr4k_fresh_rate]:-}" "/s" ">=" 20000
	target_row "  the same, idle CPUs polling" "${CTRL_POLL[mr4k_fresh_rate]:-}" "/s" ">=" 20000
}
