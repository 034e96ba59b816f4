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
