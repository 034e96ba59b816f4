# Shared by the rdma_cm tests (sourced after ../lib.sh): two VFs with
# addresses, guests that run unmodified librdmacm tools, and waiting for
# a listener through vhcad's module/vhca/rdma_cm.

GUEST_BIN="$VHCA_BUILD/tools/vhca-guest"
PROBE="$VHCA_BUILD/tests/rdma_cm/cm_probe"
RAW="$VHCA_BUILD/tests/rdma_cm/ucma_raw"
UCMA_FILE=""
CM_TIMEOUT=${VHCA_CM_TIMEOUT:-60}
SRIOV=""

# cm_setup: a daemon with two VFs: vf0 10.0.0.1 and fd00::1 (through
# sysfs), vf1 10.0.0.2 and fd00::2 (through vhcactl).
cm_setup() {
	vhca_start --num-vfs 2
	UCMA_FILE="$SYSFS_PATH/class/misc/rdma_cm/vhca_cmd"
	SRIOV="$SYSFS_PATH/class/infiniband/vhca0/device/sriov"
	echo "10.0.0.1/24 fd00::1/64" >"$SRIOV/0/ip"
	"$VHCA_BUILD/tools/vhcactl" --sysfs "$SYSFS_PATH" vf 1 set \
		ip 10.0.0.2/24,fd00::2/64 || fail "vhcactl vf 1 set ip"
}

# in_guest VF CMD...: CMD in a guest owning VF, bounded.
in_guest() {
	local vf=$1
	shift
	timeout -k 5 "$CM_TIMEOUT" env LD_PRELOAD="$TOOL_PRELOAD" \
		"$GUEST_BIN" --run-dir "$RUN_DIR" --vf "$vf" -- "$@"
}

cm_stat() { awk -v k="$1" '$1 == k { print $2 }' "$SYSFS_PATH/module/vhca/rdma_cm"; }

# wait_listeners N PID: until N ids listen, while PID lives.
wait_listeners() {
	local n=$1 pid=$2 tries=600
	while ((tries-- > 0)); do
		(($(cm_stat listeners) >= n)) && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# wait_ids N: until exactly N ids exist (releases are asynchronous).
wait_ids() {
	local n=$1 tries=200
	while ((tries-- > 0)); do
		(($(cm_stat ids) == n)) && return 0
		sleep 0.05
	done
	return 1
}

# server_client NAME SERVER_CMD... -- CLIENT_CMD...: the server in a guest
# of vf0 (background), the client in a guest of vf1 once it listens.
# 0 iff both exit 0; logs in $RUN_DIR/NAME.{server,client}.log.
server_client() {
	local name=$1 srv=() cli=() spid s_rc=0 c_rc=0
	shift
	while (($#)) && [[ $1 != -- ]]; do
		srv+=("$1")
		shift
	done
	shift
	cli=("$@")
	in_guest 0 "${srv[@]}" >"$RUN_DIR/$name.server.log" 2>&1 &
	spid=$!
	bg_track "$spid"
	if wait_listeners 1 "$spid"; then
		in_guest 1 "${cli[@]}" >"$RUN_DIR/$name.client.log" 2>&1 || c_rc=$?
	else
		echo "(the server never listened)" >"$RUN_DIR/$name.client.log"
		c_rc=255
	fi
	wait "$spid" || s_rc=$?
	if ((s_rc || c_rc)); then
		echo "--- $name: server $s_rc, client $c_rc" >&2
		tail -n 15 "$RUN_DIR/$name.server.log" "$RUN_DIR/$name.client.log" >&2
		return 1
	fi
	return 0
}
