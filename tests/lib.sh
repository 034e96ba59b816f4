# Shared harness of the integration tests (sourced).  Each test starts its
# own vhcad in a private run dir and always stops it, unmounts and removes
# its nodes on exit, pass or fail.
#
# Environment (set by ctest): VHCA_BUILD = the build directory.

set -euo pipefail

: "${VHCA_BUILD:?VHCA_BUILD must point at the build directory}"
VHCAD="$VHCA_BUILD/kernel-shim/vhcad"
export RDMAV_DRIVERS="$VHCA_BUILD/providers/vhca/libvhca"
export IBV_SHOW_WARNINGS=1

# Unmodified tools (ibv_devinfo, …) load our provider; in the sanitizer
# build it needs the ASan runtime loaded first.
TOOL_PRELOAD=""
if [[ -f "$VHCA_BUILD/sanitize.env" ]]; then
	# shellcheck disable=SC1091
	source "$VHCA_BUILD/sanitize.env"
fi

RUN_DIR=""
VHCAD_PID=""
EXTRA_RUN_DIRS=()	# daemons a test started itself (daemonized)
EXTRA_MOUNTS=()		# other filesystems a test mounted (unmounted first)

fail() {
	echo "FAIL: $*" >&2
	if [[ -n "$RUN_DIR" && -f "$RUN_DIR/vhcad.log" ]]; then
		echo "--- vhcad log ---" >&2
		tail -n 40 "$RUN_DIR/vhcad.log" >&2
	fi
	exit 1
}

pass() { echo "ok: $*"; }

# Runs an unmodified rdma-core tool against the test daemon.
tool() { LD_PRELOAD="$TOOL_PRELOAD" "$@"; }

wait_for_file() {
	local file=$1 tries=${2:-200}
	while ((tries-- > 0)); do
		[[ -e "$file" ]] && return 0
		if [[ -n "$VHCAD_PID" ]] && ! kill -0 "$VHCAD_PID" 2>/dev/null; then
			return 1
		fi
		sleep 0.05
	done
	return 1
}

# vhca_start [vhcad options...]: starts a daemon in a new run dir.
vhca_start() {
	[[ -n "$RUN_DIR" ]] || RUN_DIR=$(mktemp -d /tmp/vhca-test.XXXXXX)
	"$VHCAD" --run-dir "$RUN_DIR" --foreground "$@" \
		>>"$RUN_DIR/vhcad.log" 2>&1 &
	VHCAD_PID=$!
	wait_for_file "$RUN_DIR/ready" || fail "vhcad did not become ready"
	export SYSFS_PATH="$RUN_DIR/sys"
}

# vhca_stop: SIGTERM and wait; the exit status must be 0.
vhca_stop() {
	[[ -n "$VHCAD_PID" ]] || return 0
	local pid=$VHCAD_PID status=0
	VHCAD_PID=""
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" || status=$?
	return "$status"
}

is_mounted() { grep -qF " $1 " /proc/self/mountinfo; }

our_nodes() {
	[[ -f "$RUN_DIR/nodes" ]] && cat "$RUN_DIR/nodes" || true
}

vhca_cleanup() {
	local status=$?
	set +e
	bg_kill_all
	for m in "${EXTRA_MOUNTS[@]}"; do
		is_mounted "$m" && umount -l "$m"
	done
	for dir in "${EXTRA_RUN_DIRS[@]}"; do
		"$VHCAD" --stop --run-dir "$dir" >/dev/null 2>&1
		is_mounted "$dir/sys" && umount -l "$dir/sys"
		rm -rf "$dir"
	done
	if [[ -n "$VHCAD_PID" ]]; then
		kill -TERM "$VHCAD_PID" 2>/dev/null
		for _ in $(seq 100); do
			kill -0 "$VHCAD_PID" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$VHCAD_PID" 2>/dev/null
		wait "$VHCAD_PID" 2>/dev/null
	fi
	if [[ -n "$RUN_DIR" ]]; then
		is_mounted "$RUN_DIR/sys" && umount -l "$RUN_DIR/sys"
		for n in $(our_nodes); do
			[[ -c /dev/infiniband/uverbs$n ]] &&
				rm -f "/dev/infiniband/uverbs$n"
		done
		rm -rf "$RUN_DIR"
	fi
	exit "$status"
}
trap vhca_cleanup EXIT

sysfs_read() { tr -d '\n' <"$SYSFS_PATH/$1"; }

# Whether some process holds a guest's VF lock (RUN_DIR/guests/vhca0_vfN.lock),
# read from /proc/locks.  Probing with `flock -n` would take the lock for an
# instant, and a guest starting in that instant is refused as if the VF were
# owned.
vf_lock_held() {
	local lock=$RUN_DIR/guests/vhca0_vf$1.lock dev ino id
	read -r dev ino < <(stat -c '%d %i' "$lock" 2>/dev/null) || return 1
	printf -v id '%02x:%02x:%s' $(((dev >> 8) & 0xfff)) \
		$(((dev & 0xff) | ((dev >> 12) & 0xfff00))) "$ino"
	grep -q " $id " /proc/locks
}

# ---- data-path helpers (additive: used by the data-path tests) ----------

# Background processes a test starts (servers, peers); the EXIT trap kills
# those still running, by pid, before it stops the daemon.
BG_PIDS=()
bg_track() { BG_PIDS+=("$@"); }
bg_kill_all() {
	local pid
	for pid in "${BG_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${BG_PIDS[@]}"; do
		for _ in $(seq 40); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	BG_PIDS=()
	return 0
}

# tcp_port_used PORT [STATE]: a socket on local PORT (in STATE, hex, e.g.
# 0A = LISTEN) exists in /proc/net/tcp{,6}.
tcp_port_used() {
	local hex state=${2:-}
	hex=$(printf '%04X' "$1")
	awk -v p=":$hex" -v st="$state" '
		FNR > 1 && substr($2, length($2) - 4) == p && (st == "" || $4 == st) { f = 1 }
		END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# wait_line FILE PATTERN PID [TRIES]: until FILE has PATTERN while PID lives.
wait_line() {
	local tries=${4:-600}
	while ((tries-- > 0)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# next_port: sets PORT to a TCP port nobody uses, a new one each call.
NEXT_PORT_BASE=""
next_port() {
	[[ -n "$NEXT_PORT_BASE" ]] || NEXT_PORT_BASE=$((20000 + RANDOM % 20000))
	while tcp_port_used "$NEXT_PORT_BASE"; do
		NEXT_PORT_BASE=$((NEXT_PORT_BASE + 1))
	done
	PORT=$NEXT_PORT_BASE
	NEXT_PORT_BASE=$((NEXT_PORT_BASE + 1))
}

# wait_listen PORT PID: waits until something listens on PORT while PID lives.
wait_listen() {
	local port=$1 pid=$2 tries=${3:-600}
	while ((tries-- > 0)); do
		tcp_port_used "$port" 0A && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# run_pair NAME PORT SERVER_CMD... -- CLIENT_CMD...
# Runs an unmodified server/client pair (with `tool`'s preload, so the
# sanitizer build loads ASan first): the server in the background, the
# client once the server listens on PORT, each under `timeout $PAIR_TIMEOUT`
# (default 120 s).  Output: $RUN_DIR/NAME.server.log and NAME.client.log.
# Returns 0 iff both exit 0; PAIR_STATUS = "server_rc client_rc"
# (124 = timed out, 255 = the server never listened).
PAIR_STATUS=""
run_pair() {
	local name=$1 port=$2 srv=() cli=() spid s_rc=0 c_rc=0
	shift 2
	while (($#)) && [[ $1 != -- ]]; do
		srv+=("$1")
		shift
	done
	shift
	cli=("$@")
	local t=${PAIR_TIMEOUT:-120} lb=()
	# Line-buffered output, so a run killed by its timeout still shows
	# how far it got (not with the ASan preload: stdbuf would put its
	# own library first in LD_PRELOAD).
	[[ -z $TOOL_PRELOAD ]] && command -v stdbuf >/dev/null && lb=(stdbuf -oL -eL)
	timeout -k 5 "$t" env LD_PRELOAD="$TOOL_PRELOAD" "${lb[@]}" "${srv[@]}" \
		>"$RUN_DIR/$name.server.log" 2>&1 &
	spid=$!
	bg_track "$spid"
	if wait_listen "$port" "$spid"; then
		timeout -k 5 "$t" env LD_PRELOAD="$TOOL_PRELOAD" "${lb[@]}" "${cli[@]}" \
			>"$RUN_DIR/$name.client.log" 2>&1 || c_rc=$?
	else
		echo "(server never listened on port $port)" \
			>"$RUN_DIR/$name.client.log"
		c_rc=255
		kill -TERM "$spid" 2>/dev/null
	fi
	wait "$spid" || s_rc=$?
	PAIR_STATUS="$s_rc $c_rc"
	[[ $s_rc == 0 && $c_rc == 0 ]]
}

# show_pair NAME: prints the end of both sides' logs (for failure reports).
show_pair() {
	local f
	for f in "$RUN_DIR/$1.server.log" "$RUN_DIR/$1.client.log"; do
		[[ -f $f ]] || continue
		echo "--- $(basename "$f") ---"
		tail -n 30 "$f"
	done
}

# vhca_status: the daemon's per-device resource view.
vhca_status() { cat "$SYSFS_PATH/module/vhca/status"; }

# held_resources [DEV...]: "DEV KIND COUNT" for every count that is not 0
# in the status view, of the devices named (all if none).
held_resources() {
	vhca_status | awk -v devs=" $* " '
		devs == "  " || index(devs, " " $1 " ") {
			for (i = 3; i < NF; i += 2)
				if ($(i + 1) != 0) print $1, $i, $(i + 1)
		}'
}

# wait_until_idle WHAT [DEV...]: waits up to 5 s until the devices (all
# if none) hold nothing; fails "WHAT: ..." naming what is left.
wait_until_idle() {
	local what=$1 left _
	shift
	for _ in $(seq 100); do
		left=$(held_resources "$@")
		[[ -z $left ]] && return 0
		sleep 0.05
	done
	vhca_status >&2
	fail "$what: resources still held: $(tr '\n' ' ' <<<"$left")"
}

# run_subtests PROG TIMEOUT [SUBTEST...]: runs each sub-test of a C test
# program (all that "PROG --list" names if none are given) in its own
# process, so a crash or REQUIRE in one does not hide the others, under
# TIMEOUT seconds; then the daemon must hold nothing and stop cleanly.
run_subtests() {
	local prog=$1 limit=$2 name t rc
	shift 2
	local subtests=("$@") failed=()
	name=$(basename "$prog")
	((${#subtests[@]})) ||
		read -r -a subtests <<<"$("$prog" --list | tr '\n' ' ')"
	for t in "${subtests[@]}"; do
		rc=0
		timeout -k 5 "$limit" "$prog" "$t" >"$RUN_DIR/$t.log" 2>&1 || rc=$?
		if ((rc == 0)); then
			pass "$t ($(grep -E '^ok: ' "$RUN_DIR/$t.log" | sed 's/.*(//; s/)//'))"
			grep -E '^  ' "$RUN_DIR/$t.log" | tail -n 3 || true
		else
			echo "FAIL: $t (exit $rc$( ((rc == 124)) && echo ', timed out'))" >&2
			sed 's/^/    /' "$RUN_DIR/$t.log" | tail -n 30 >&2
			failed+=("$t")
			kill -0 "$VHCAD_PID" 2>/dev/null || fail "vhcad died in $t"
		fi
	done
	# Every process has exited: nothing is left in the daemon.
	wait_until_idle "after the tests"
	((${#failed[@]} == 0)) ||
		fail "${#failed[@]} of ${#subtests[@]} sub-tests failed: ${failed[*]}"
	vhca_stop || fail "vhcad exit status"
	pass "$name: ${#subtests[@]} sub-tests"
}
