#!/bin/bash
# Unmodified rdma-core examples between two VFs of one daemon: the server
# on vhca0_vf0 (background), the client on vhca0_vf1 connecting to
# localhost; they exchange LID/QPN over TCP.  ibv_rc_pingpong from 1 B to
# 1 MiB with and without -e, ibv_uc_pingpong, ibv_ud_pingpong (size <=
# 2048 - 40, the GRH) and ibv_srq_pingpong, all with -c (validate received
# buffers).  Every run must exit 0 on both sides within its timeout; the
# "N bytes in X seconds" lines go to $VHCA_RESULTS_DIR/examples.log (or the
# run dir's log, printed at the end).
#
# Environment: VHCA_EXAMPLE_ITERS (default 10000) iterations per run;
# VHCA_EXAMPLE_ITERS_LARGE for the 1 MiB runs (default: the same);
# VHCA_EXAMPLE_TIMEOUT per-process timeout in seconds (default 120).
source "$(dirname "$0")/../lib.sh"

ITERS=${VHCA_EXAMPLE_ITERS:-10000}
ITERS_LARGE=${VHCA_EXAMPLE_ITERS_LARGE:-$ITERS}
PAIR_TIMEOUT=${VHCA_EXAMPLE_TIMEOUT:-120}
SRV_DEV=vhca0_vf0
CLI_DEV=vhca0_vf1

vhca_start --num-vfs 2
LOG=$RUN_DIR/examples.log
printf '%-40s %-6s %14s %10s %12s %12s\n' run side bytes seconds Mbit/s \
	usec/iter >"$LOG"

failures=()

# record NAME: appends both sides' throughput lines to the log.
record() {
	local name=$1 side
	for side in server client; do
		awk -v run="$name" -v side="$side" '
			/bytes in .* seconds =/ { bytes = $1; secs = $4; mbit = $7 }
			/iters in .* seconds =/ { usec = $7 }
			END { if (bytes != "")
				printf "%-40s %-6s %14s %10s %12s %12s\n",
				       run, side, bytes, secs, mbit, usec }' \
			"$RUN_DIR/$name.$side.log" >>"$LOG"
	done
}

# example NAME TOOL ARGS...: one server/client run of TOOL with ARGS.
example() {
	local name=$1 prog=$2
	shift 2
	next_port
	local common=(-p "$PORT" -i 1 -c "$@")
	if run_pair "$name" "$PORT" \
		"$prog" -d "$SRV_DEV" "${common[@]}" -- \
		"$prog" -d "$CLI_DEV" "${common[@]}" localhost &&
		! grep -qiE 'invalid data|fail|couldn' \
			"$RUN_DIR/$name.server.log" "$RUN_DIR/$name.client.log"; then
		record "$name"
		pass "$name"
	else
		echo "FAIL: $name (exit status server/client: $PAIR_STATUS)" >&2
		show_pair "$name" >&2
		failures+=("$name")
		# A dead daemon fails everything after it: stop early.
		kill -0 "$VHCAD_PID" 2>/dev/null || fail "vhcad died during $name"
	fi
}

iters_for() { (($1 >= 1048576)) && echo "$ITERS_LARGE" || echo "$ITERS"; }

for size in 1 4096 65536 1048576; do
	n=$(iters_for $size)
	example "rc_s${size}" ibv_rc_pingpong -s $size -n "$n"
	example "rc_s${size}_events" ibv_rc_pingpong -s $size -n "$n" -e
done
# The extended send API (ibv_wr_*) through the same provider.
example rc_s4096_new_send ibv_rc_pingpong -s 4096 -n "$ITERS" -N
# Extended CQ with completion timestamps (ibv_create_cq_ex, ibv_wc_read_*).
example rc_s4096_ts ibv_rc_pingpong -s 4096 -n "$ITERS" -t
# Device memory (ibv_alloc_dm, ibv_reg_dm_mr, ibv_memcpy_to_dm).
example rc_s4096_dm ibv_rc_pingpong -s 4096 -n "$ITERS" -j
# On-demand paging: explicit (-o), with prefetch (-P), implicit (-O).
example rc_s4096_odp ibv_rc_pingpong -s 4096 -n "$ITERS" -o
example rc_s4096_odp_prefetch ibv_rc_pingpong -s 4096 -n "$ITERS" -o -P
example rc_s4096_implicit_odp ibv_rc_pingpong -s 4096 -n "$ITERS" -O -P

for size in 1 4096 65536 1048576; do
	example "uc_s${size}" ibv_uc_pingpong -s $size -n "$(iters_for $size)"
done
example uc_s4096_events ibv_uc_pingpong -s 4096 -n "$ITERS" -e

# UD: the receive buffer carries 40 bytes of GRH space; 2048 - 40 = 2008.
for size in 1 1024 2008; do
	example "ud_s${size}" ibv_ud_pingpong -s $size -n "$ITERS"
done
example ud_s2008_events ibv_ud_pingpong -s 2008 -n "$ITERS" -e

# SRQ: 16 QPs sharing one SRQ, -n exchanges per QP.
for size in 1 4096 65536; do
	example "srq_s${size}" ibv_srq_pingpong -s $size -n "$ITERS"
done
example srq_s4096_events ibv_srq_pingpong -s 4096 -n "$ITERS" -e

echo "--- throughput log ($LOG) ---"
cat "$LOG"
if [[ -n "${VHCA_RESULTS_DIR:-}" ]]; then
	mkdir -p "$VHCA_RESULTS_DIR"
	cp "$LOG" "$VHCA_RESULTS_DIR/examples.log"
fi

kill -0 "$VHCAD_PID" 2>/dev/null || fail "vhcad died"
((${#failures[@]} == 0)) || fail "${#failures[@]} runs failed: ${failures[*]}"
vhca_stop || fail "vhcad exit status"
pass "all example runs"
