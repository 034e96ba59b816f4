# Shared by the attack scripts (sourced after ../lib.sh): the attacker
# and the clean pair beside it.  vhcad runs with 4 VFs: the attacker gets
# vhca0_vf0 and vhca0_vf1, the clean pair (the "bystander", another
# tenant) vhca0_vf2 and vhca0_vf3.
ATTACKS=$VHCA_BUILD/tests/security/attacks

# bystander_start SECONDS MAX_MS: the clean pair, in the background.
BYSTANDER_PID=""
bystander_start() {
	local log=$RUN_DIR/bystander.log
	env LD_PRELOAD="$TOOL_PRELOAD" "$ATTACKS" bystander vhca0_vf2 vhca0_vf3 "$1" "$2" >"$log" 2>&1 &
	BYSTANDER_PID=$!
	bg_track "$BYSTANDER_PID"
	for _ in $(seq 400); do
		grep -q "bystander: running" "$log" 2>/dev/null && return 0
		kill -0 "$BYSTANDER_PID" 2>/dev/null || break
		sleep 0.05
	done
	fail "the clean pair did not start: $(cat "$log")"
}

# bystander_check WHAT: it ran clean all along; BYSTANDER_P50 = its median.
BYSTANDER_P50=""
bystander_check() {
	local rc=0
	wait "$BYSTANDER_PID" || rc=$?
	grep "bystander:" "$RUN_DIR/bystander.log" | tail -n 2
	((rc == 0)) || fail "$1: the other tenant's traffic did not run clean"
	BYSTANDER_P50=$(sed -n 's/.* p50 \([0-9]*\) us.*/\1/p' "$RUN_DIR/bystander.log")
	pass "$1: the other tenant ran clean beside it (p50 ${BYSTANDER_P50} us)"
}

# elapsed_ms CMD...: runs CMD, sets ELAPSED_MS; returns its status.
ELAPSED_MS=0
elapsed_ms() {
	local t0 t1 rc=0
	t0=$(date +%s%N)
	"$@" || rc=$?
	t1=$(date +%s%N)
	ELAPSED_MS=$(((t1 - t0) / 1000000))
	return "$rc"
}

# vhca_stop_within SECONDS: SIGTERM, and vhcad must have exited cleanly
# in time (a frozen device would never let it).
vhca_stop_within() {
	local pid=$VHCAD_PID status=0
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq $(($1 * 20))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$pid" 2>/dev/null && fail "vhcad did not stop within $1 s"
	VHCAD_PID=""
	wait "$pid" || status=$?
	((status == 0)) || fail "vhcad exit status $status"
}

# fresh_daemon ARGS...: this test's vhcad must stop cleanly; then a new
# one in a new run dir (the old one removed).
fresh_daemon() {
	local old=$RUN_DIR m
	vhca_stop_within 20
	for m in "${EXTRA_MOUNTS[@]}"; do
		is_mounted "$m" && umount -l "$m"
	done
	EXTRA_MOUNTS=()
	is_mounted "$old/sys" && umount -l "$old/sys"
	rm -rf "$old"
	RUN_DIR=""
	vhca_start "$@"
}

# stall_fs_start: a filesystem whose reads wait for $RUN_DIR/release,
# mounted at $RUN_DIR/stall (file "f").
STALL_FS_PID=""
stall_fs_start() {
	mkdir -p "$RUN_DIR/stall"
	EXTRA_MOUNTS+=("$RUN_DIR/stall")
	"$VHCA_BUILD/tests/security/stall_fs" "$RUN_DIR/stall" "$RUN_DIR/release" \
		>"$RUN_DIR/stall_fs.log" 2>&1 &
	STALL_FS_PID=$!
	bg_track "$STALL_FS_PID"
	wait_line "$RUN_DIR/stall_fs.log" mounted "$STALL_FS_PID" ||
		fail "stall_fs: $(cat "$RUN_DIR/stall_fs.log")"
}
