#!/bin/bash
# Unmodified perftest between two VFs: server `-d vhca0_vf0 -p PORT`,
# client `-d vhca0_vf1 -p PORT localhost`.  ib_{write,read,send,atomic}_{lat,bw}
# with default options and with -a (all sizes), ib_send_{lat,bw} also over
# UD (-c UD), ib_{write,read,send}_bw with --odp.  Both sides must exit 0.  Result rows go to
# $RUN_DIR/perftest.log (printed; copied to $VHCA_RESULTS_DIR if set).
#
# Flags (perftest 4.5): -F so a CPU-frequency warning is not fatal; no -x
# (GID index) on an InfiniBand link layer; results in MB/sec (no
# --report_gbits).  The atomic tests refuse -a ("Message size cannot be
# changed for Atomic tests", exit 1: they are 8 bytes by definition), so
# they run with default options only.
#
# Environment: VHCA_PERFTEST_QUICK=1 (ctest): -n 1000 for default runs and
# -n 100 for -a runs; VHCA_PERFTEST_EXTRA: extra flags for both sides (for
# example --use_old_post_send to bypass the ibv_wr_* API);
# VHCA_PERFTEST_TIMEOUT per-process timeout (default 120 s, 300 for -a).
source "$(dirname "$0")/../lib.sh"

QUICK=${VHCA_PERFTEST_QUICK:-0}
read -r -a EXTRA <<<"${VHCA_PERFTEST_EXTRA:-}"
T=${VHCA_PERFTEST_TIMEOUT:-}

vhca_start --num-vfs 2
LOG=$RUN_DIR/perftest.log
: >"$LOG"
failures=()

# perf NAME TOOL ARGS...: one server/client run.
perf() {
	local name=$1 prog=$2
	shift 2
	local args=("$@") iters=()
	if [[ $QUICK == 1 ]]; then
		if [[ " ${args[*]} " == *" -a "* ]]; then iters=(-n 100); else iters=(-n 1000); fi
	fi
	PAIR_TIMEOUT=${T:-120}
	[[ " ${args[*]} " == *" -a "* ]] && PAIR_TIMEOUT=${T:-300}
	next_port
	local common=(-p "$PORT" -F "${iters[@]}" "${args[@]}" "${EXTRA[@]}")
	if run_pair "$name" "$PORT" \
		"$prog" -d vhca0_vf0 "${common[@]}" -- \
		"$prog" -d vhca0_vf1 "${common[@]}" localhost; then
		{
			echo "## $name: $prog ${args[*]}"
			# The header and the numeric result rows.
			grep -E '^ *#bytes|^ *[0-9]+ +[0-9]+ ' "$RUN_DIR/$name.client.log"
		} >>"$LOG"
		pass "$name"
	else
		echo "FAIL: $name (exit status server/client: $PAIR_STATUS)" >&2
		show_pair "$name" >&2
		failures+=("$name")
		kill -0 "$VHCAD_PID" 2>/dev/null || fail "vhcad died during $name"
	fi
}

for t in write read send; do
	for kind in lat bw; do
		perf "${t}_${kind}" "ib_${t}_${kind}"
		perf "${t}_${kind}_all" "ib_${t}_${kind}" -a
	done
done
perf atomic_lat ib_atomic_lat
perf atomic_bw ib_atomic_bw
perf atomic_lat_cas ib_atomic_lat -A CMP_AND_SWAP
perf atomic_bw_cas ib_atomic_bw -A CMP_AND_SWAP
# On-demand paging MRs (the whole buffer registered without pinning).
for t in write read send; do
	perf "${t}_bw_odp" "ib_${t}_bw" --odp
done
for kind in lat bw; do
	perf "send_${kind}_ud" "ib_send_${kind}" -c UD
	perf "send_${kind}_ud_all" "ib_send_${kind}" -c UD -a
done

echo "--- perftest results ($LOG) ---"
cat "$LOG"
if [[ -n "${VHCA_RESULTS_DIR:-}" ]]; then
	mkdir -p "$VHCA_RESULTS_DIR"
	cp "$LOG" "$VHCA_RESULTS_DIR/perftest.log"
fi

kill -0 "$VHCAD_PID" 2>/dev/null || fail "vhcad died"
((${#failures[@]} == 0)) || fail "${#failures[@]} runs failed: ${failures[*]}"
vhca_stop || fail "vhcad exit status"
pass "all perftest runs"
