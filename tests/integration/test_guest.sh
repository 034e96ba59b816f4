#!/bin/bash
# vhca-guest: a guest sees exactly its VF (ibv_devices, /dev/infiniband, the
# sysfs view under the host's own path), has private IPC, /dev/shm and
# hostname, passes CMD's exit status and death by signal through, owns its
# VF exclusively (a second guest fails at once, with the owner named),
# refuses a VF that does not exist, picks a free VF without --vf, and two
# guests run ibv_rc_pingpong against each other.  Afterwards the host's
# mounts are as before and no guest is left.
source "$(dirname "$0")/../lib.sh"

GUEST_BIN="$VHCA_BUILD/tools/vhca-guest"
[[ -x $GUEST_BIN ]] || fail "$GUEST_BIN not built"

# guest ARGS...: vhca-guest on the test daemon (with `tool`'s ASan preload,
# which CMD inherits through the exec).
guest() { tool "$GUEST_BIN" --run-dir "$RUN_DIR" "$@"; }

# The host mounts a guest could disturb if it leaked a mount (other tests
# on this machine mount and unmount elsewhere concurrently).
guest_relevant_mounts() {
	awk -v rd="$RUN_DIR" '$5 == rd || index($5, rd "/") == 1 ||
		$5 == "/tmp" || $5 == "/run" || $5 == "/proc" ||
	$5 ~ "^/dev(/|$)"' /proc/self/mountinfo
}

# started_guest NAME ARGS...: a guest in the background whose CMD prints
# "ready" once it runs (output in $RUN_DIR/NAME.out); sets GUEST_PID.
GUEST_PID=""
started_guest() {
	local name=$1
	shift
	# A simple command, so $! is the very process that becomes CMD.
	LD_PRELOAD="$TOOL_PRELOAD" "$GUEST_BIN" --run-dir "$RUN_DIR" "$@" \
		>"$RUN_DIR/$name.out" 2>&1 &
	GUEST_PID=$!
	bg_track "$GUEST_PID"
	for _ in $(seq 400); do
		grep -q ready "$RUN_DIR/$name.out" 2>/dev/null && return 0
		kill -0 "$GUEST_PID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$RUN_DIR/$name.out" >&2
	fail "guest $name did not start"
}

stop_guest() {
	kill -TERM "$1" 2>/dev/null
	wait "$1" 2>/dev/null || true
}

# uverbs_of DEV: the uverbs number the host view gives DEV.
uverbs_of() {
	local f
	for f in "$SYSFS_PATH"/class/infiniband_verbs/uverbs*/ibdev; do
		if [[ $(cat "$f") == "$1" ]]; then
			basename "$(dirname "$f")"
			return 0
		fi
	done
	return 1
}

vhca_start --num-vfs 4
mounts_before=$(guest_relevant_mounts)

# ---- what a guest sees ----------------------------------------------------
devices=$(guest --vf 1 -- ibv_devices | awk 'NR > 2 { print $1 }') ||
	fail "ibv_devices in a guest"
[[ $devices == vhca0_vf1 ]] || fail "guest of vf1 lists: $devices"
nodes=$(guest --vf 1 -- ls /dev/infiniband) || fail "ls /dev/infiniband"
# rdma_cm's node is the supervisor's marker (docs/rdma_cm.md).
[[ $nodes == "rdma_cm"$'\n'"$(uverbs_of vhca0_vf1)" ]] ||
	fail "guest's /dev/infiniband: '$nodes', expected rdma_cm $(uverbs_of vhca0_vf1)"
tool ibv_devices | grep -q vhca0_vf0 || fail "host lost its devices"
pass "ibv_devices and /dev/infiniband in the guest show only vhca0_vf1"

# The view replaces the host's own path, and SYSFS_PATH names it even when
# the caller had none.
# shellcheck disable=SC2016 # expanded by the guest's shell
inside=$(env -u SYSFS_PATH LD_PRELOAD="$TOOL_PRELOAD" "$GUEST_BIN" \
	--run-dir "$RUN_DIR" --vf 1 -- sh -c \
	'echo "$SYSFS_PATH"; ls "$0"; ls "$0/sys/class/infiniband"' \
	"$RUN_DIR") || fail "listing the view"
[[ $inside == "$RUN_DIR/sys"$'\n'sys$'\n'vhca0_vf1 ]] ||
	fail "guest's run dir and view: $inside"
guest --vf 1 -- ibv_devinfo -d vhca0_vf1 | grep -q PORT_ACTIVE ||
	fail "ibv_devinfo in a guest"
guest --vf 1 -- ibv_devinfo -d vhca0 >/dev/null 2>&1 &&
	fail "the PF is reachable from a guest"
pass "guest's \$RUN_DIR/sys holds vhca0_vf1 only; the device opens"

# ---- private IPC, /dev/shm, hostname ---------------------------------------
shm_name="vhca-guest-test.$$.$RANDOM"
guest --vf 1 -- sh -c "touch /dev/shm/$shm_name && test -e /dev/shm/$shm_name" ||
	fail "cannot use /dev/shm in a guest"
[[ ! -e /dev/shm/$shm_name ]] || {
	rm -f "/dev/shm/$shm_name"
	fail "guest's /dev/shm file visible on the host"
}
touch "/dev/shm/$shm_name.host"
guest --vf 1 -- test -e "/dev/shm/$shm_name.host" && {
	rm -f "/dev/shm/$shm_name.host"
	fail "host's /dev/shm visible in the guest"
}
rm -f "/dev/shm/$shm_name.host"
pass "/dev/shm is private"

host_ipc=$(readlink /proc/self/ns/ipc)
guest_ipc=$(guest --vf 1 -- readlink /proc/self/ns/ipc)
[[ -n $guest_ipc && $guest_ipc != "$host_ipc" ]] ||
	fail "IPC namespace: host $host_ipc, guest $guest_ipc"
[[ $(guest --vf 1 -- readlink /proc/self/ns/mnt) != "$(readlink /proc/self/ns/mnt)" ]] ||
	fail "same mount namespace"
[[ $(guest --vf 1 -- hostname) == vhca0-vf1 ]] || fail "default hostname"
[[ $(guest --vf 1 --name node-a -- hostname) == node-a ]] || fail "--name"
[[ $(hostname) != node-a ]] || fail "host's hostname changed"
pass "own IPC, mount and UTS namespaces; --name sets the hostname"

# ---- exit status and signals ----------------------------------------------
rc=0
guest --vf 1 -- sh -c 'exit 7' || rc=$?
[[ $rc == 7 ]] || fail "exit 7 came back as $rc"
# In subshells whose stderr is discarded: bash reports a foreground job's
# death by a signal, and that report is no failure here.
rc=0
(guest --vf 1 -- sh -c 'kill -KILL $$') 2>/dev/null || rc=$?
[[ $rc == $((128 + 9)) ]] || fail "SIGKILL came back as $rc"
rc=0
(guest --vf 1 -- sh -c 'kill -TERM $$') 2>/dev/null || rc=$?
[[ $rc == $((128 + 15)) ]] || fail "SIGTERM came back as $rc"
# A signal sent to vhca-guest from outside reaches CMD, and CMD's death by
# it comes back as vhca-guest's own.
started_guest sleeper --vf 1 -- sh -c 'echo ready; exec sleep 60'
kill -USR1 "$GUEST_PID"
rc=0
wait "$GUEST_PID" 2>/dev/null || rc=$?
[[ $rc == $((128 + 10)) ]] || fail "SIGUSR1 to the guest came back as $rc"
rc=0
guest --vf 1 -- /nonexistent/command 2>/dev/null || rc=$?
[[ $rc == 127 ]] || fail "missing command: $rc"
pass "exit status and signals pass through"

# ---- ownership ---------------------------------------------------------------
started_guest holder2 --vf 2 -- sh -c 'echo ready; exec sleep 60'
holder=$GUEST_PID
start=$(date +%s%N)
rc=0
err=$(guest --vf 2 -- true 2>&1) || rc=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
[[ $rc == 125 ]] || fail "second guest on vf2: status $rc ($err)"
grep -q "vhca0_vf2 is owned by guest 'vhca0-vf2' (pid $holder)" <<<"$err" ||
	fail "second guest's message: $err"
((elapsed_ms < 3000)) || fail "second guest took $elapsed_ms ms to fail"
stop_guest "$holder"
guest --vf 2 -- true || fail "vf2 not free after its guest exited"
pass "a held VF is refused at once, naming its owner; free again afterwards"

# refused PATTERN CMD...: CMD must fail with vhca-guest's 125 and a
# message matching PATTERN.
refused() {
	local pattern=$1 rc=0 err
	shift
	err=$("$@" 2>&1) || rc=$?
	[[ $rc == 125 ]] || fail "$*: status $rc ($err)"
	grep -q -- "$pattern" <<<"$err" || fail "$*: message '$err'"
}

refused "VF 99 of vhca0 does not exist" guest --vf 99 -- true
for bad in "" "-1" "1x" "0x1" " 1" "99999999999"; do
	refused "is not a VF number" guest --vf "$bad" -- true
done
for bad in "" "-x" "a_b" "x." "$(printf 'n%.0s' {1..64})"; do
	refused "not a valid host name" guest --name "$bad" -- true
done
refused "run dir $RUN_DIR/none" tool "$GUEST_BIN" --run-dir "$RUN_DIR/none" -- true
refused "no command" guest
refused "needs a value" guest --vf
if command -v setpriv >/dev/null; then
	refused "must run as root" setpriv --reuid=65534 --regid=65534 \
		--clear-groups env LD_PRELOAD="$TOOL_PRELOAD" "$GUEST_BIN" \
		--run-dir "$RUN_DIR" -- true
fi
pass "missing VF, malformed options and non-root refused with a message"

# Without --vf: the lowest VF no guest owns; VHCA_RUN_DIR names the run dir.
started_guest holder0 --vf 0 -- sh -c 'echo ready; exec sleep 60'
holder=$GUEST_PID
# shellcheck disable=SC2016 # expanded by the guest's shell
picked=$(VHCA_RUN_DIR=$RUN_DIR LD_PRELOAD="$TOOL_PRELOAD" "$GUEST_BIN" -- \
	sh -c 'echo "$VHCA_GUEST_DEVICE"; ibv_devices' |
	awk 'NR == 1 || NR > 3 { print $1 }' | tr '\n' ' ')
[[ $picked == "vhca0_vf1 vhca0_vf1 " ]] || fail "no --vf picked: $picked"
stop_guest "$holder"
pass "without --vf the lowest free VF is taken"

# ---- data path between two guests -------------------------------------------
next_port
# No "--" after the guest's options: run_pair splits its arguments there.
# Neither side names a device: each guest has exactly one.  The pingpong
# trades its QP numbers over TCP: --net host.
if ! run_pair guest_rc "$PORT" \
	"$GUEST_BIN" --run-dir "$RUN_DIR" --vf 0 --net host \
	ibv_rc_pingpong -p "$PORT" -n 1000 -c -- \
	"$GUEST_BIN" --run-dir "$RUN_DIR" --vf 1 --net host \
	ibv_rc_pingpong -p "$PORT" -n 1000 -c localhost; then
	show_pair guest_rc >&2
	fail "ibv_rc_pingpong between guests (status $PAIR_STATUS)"
fi
grep -q "1000 iters" "$RUN_DIR/guest_rc.client.log" ||
	fail "ibv_rc_pingpong: $(cat "$RUN_DIR/guest_rc.client.log")"
pass "ibv_rc_pingpong between the guests of vf0 and vf1"

# ---- nothing left behind ------------------------------------------------------
for pid in "${BG_PIDS[@]}"; do
	! kill -0 "$pid" 2>/dev/null || fail "guest $pid still running"
done
for lock in "$RUN_DIR"/guests/*.lock; do
	flock -n "$lock" true || fail "$lock still held after every guest exited"
done
[[ $(guest_relevant_mounts) == "$mounts_before" ]] || {
	diff <(echo "$mounts_before") <(guest_relevant_mounts) >&2
	fail "host mounts changed"
}
for n in $(our_nodes); do
	[[ -c /dev/infiniband/uverbs$n ]] || fail "host lost /dev/infiniband/uverbs$n"
done
pass "host mounts unchanged, no guest left"

vhca_stop || fail "vhcad exit status"
