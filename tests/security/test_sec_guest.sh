#!/bin/bash
# Guests as a boundary (issue 9, docs/guests.md "What a guest cannot do"):
# each "cannot" of the list, tried from inside a guest as its tenant
# would, and the daemon's own checks tried from outside with files that
# travelled (inherited fds).  Every probe prints an exact outcome.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/sec_lib.sh"

GUEST_BIN=$VHCA_BUILD/tools/vhca-guest
PROBE=$VHCA_BUILD/tests/security/guest_probe
[[ -x $GUEST_BIN && -x $PROBE ]] || fail "vhca-guest or guest_probe not built"

guest() { tool "$GUEST_BIN" --run-dir "$RUN_DIR" "$@"; }
# expect WHAT WANT CMD...: CMD's output must be exactly WANT.
expect() {
	local what=$1 want=$2 got
	shift 2
	got=$("$@" 2>&1) || true
	[[ $got == "$want" ]] || fail "$what: '$got', expected '$want'"
}

vhca_start --num-vfs 4
MGMT=$RUN_DIR/mgmt.sock
VF1_CMD=$(dirname "$(grep -l '^vhca0_vf1$' "$SYSFS_PATH"/class/infiniband_verbs/uverbs*/ibdev)")/vhca_cmd
VF2_CMD=$(dirname "$(grep -l '^vhca0_vf2$' "$SYSFS_PATH"/class/infiniband_verbs/uverbs*/ibdev)")/vhca_cmd
VF3_CMD=$(dirname "$(grep -l '^vhca0_vf3$' "$SYSFS_PATH"/class/infiniband_verbs/uverbs*/ibdev)")/vhca_cmd

# ---- no privilege ------------------------------------------------------------
caps=$(guest --vf 1 -- grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status |
	awk '{ print $2 }' | sort -u | tr '\n' ' ')
[[ $caps == "0000000000000000 1 " ]] || fail "guest's capabilities: $caps"
# A setuid-root program gains nothing either (no_new_privs, NOROOT).
caps=$(guest --vf 1 -- su -c 'grep CapEff /proc/self/status' root 2>/dev/null |
	awk '{ print $2 }' || true)
[[ -z $caps || $caps == 0000000000000000 ]] || fail "su in a guest: CapEff $caps"
expect "mount in a guest" fail guest --vf 1 -- sh -c \
	'mount -t tmpfs x /mnt 2>/dev/null && echo mounted || echo fail'
expect "unmounting the run dir's cover" fail guest --vf 1 -- sh -c \
	"umount -l '$RUN_DIR' 2>/dev/null && echo unmounted || echo fail"
pass "no capabilities (none to regain by exec), no mounts, the covers stay"

# ---- the host's filesystem: read-only, its sockets and scratch out of sight --
marker=/tmp/vhca-sec-guest.$$
touch "$marker"
expect "host /tmp in a guest" absent guest --vf 1 -- sh -c \
	"test -e '$marker' && echo visible || echo absent"
expect "writing /etc" EROFS guest --vf 1 -- sh -c \
	'touch /etc/vhca-guest-was-here 2>&1 | grep -q "Read-only" && echo EROFS'
expect "writing /proc/sys" EROFS guest --vf 1 -- sh -c \
	'(echo 1 > /proc/sys/vm/drop_caches) 2>&1 | grep -q "Read-only" && echo EROFS'
expect "host's /run" "" guest --vf 1 -- ls -A /run
expect "guest's /dev" "fd full infiniband mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero" \
	guest --vf 1 -- sh -c 'ls /dev | tr "\n" " " | sed "s/ $//"'
expect "the run dir" "sys" guest --vf 1 -- ls -A "$RUN_DIR"
expect "a guest's /tmp is writable" ok guest --vf 1 -- sh -c \
	'echo x > /tmp/f && echo ok'
rm -f "$marker"
pass "host files read-only; host /tmp, /run, devices, mgmt.sock out of sight"

# ---- other processes: their own PID namespace ----------------------------------
started=$RUN_DIR/other.out
env LD_PRELOAD="$TOOL_PRELOAD" VHCA_SECRET=hunter2 "$GUEST_BIN" --run-dir "$RUN_DIR" \
	--vf 3 -- sh -c 'touch /dev/shm/secret; echo ready; exec sleep 60' >"$started" 2>&1 &
other=$!
bg_track "$other"
wait_line "$started" ready "$other" || fail "the other guest did not start"
procs=$(guest --vf 1 -- sh -c 'ls /proc | grep -E "^[0-9]+$" | tr "\n" " "')
# init, sh and the pipeline: nothing else.
[[ $procs == "1 2 "* && $(wc -w <<<"$procs") -le 6 ]] ||
	fail "a guest sees processes: $procs"
expect "vhcad's /proc entry" absent guest --vf 1 -- sh -c \
	"test -e /proc/$VHCAD_PID/root && echo visible || echo absent"
expect "another guest's environment" absent guest --vf 1 -- sh -c \
	'grep -l hunter2 /proc/[0-9]*/environ 2>/dev/null && echo visible || echo absent'
expect "another guest's /dev/shm" absent guest --vf 1 -- sh -c \
	'test -e /dev/shm/secret && echo visible || echo absent'
pass "own PID namespace: no vhcad, no other guest, no other /dev/shm"

# ---- the daemon's checks: files that travelled --------------------------------
# While the guest of vf3 runs, vf3 is its alone, even for the host.
expect "host opens vf3 owned by a guest" EACCES tool "$PROBE" open "$VF3_CMD"
expect "host opens vf2 nobody owns" ok tool "$PROBE" open "$VF2_CMD"
# A guest handed another VF's open command file cannot use it...
exec 7<>"$VF2_CMD"
expect "guest of vf1 with vf2's fd" EACCES guest --vf 1 -- "$PROBE" cmd 7
# ...nor its own VF's file opened outside, while it owns the VF: the
# daemon asks who writes, not who opened.
exec 8<>"$VF1_CMD"
expect "guest of vf1 with its own VF's fd" ENOSPC guest --vf 1 -- "$PROBE" cmd 8
expect "host with vf2's fd" ENOSPC tool "$PROBE" cmd 7
exec 7>&- 8>&-
# ...nor provision: an inherited PF attribute fd refuses its writes.
numvfs=$SYSFS_PATH/class/infiniband/vhca0/device/sriov_numvfs
exec 9>"$numvfs"
expect "guest writes sriov_numvfs" refused guest --vf 1 -- sh -c \
	'echo 0 >&9 2>/dev/null && echo written || echo refused'
exec 9>&-
[[ $(cat "$numvfs") == 4 ]] || fail "sriov_numvfs changed to $(cat "$numvfs")"
pass "owned VFs serve their guest only; travelled fds refused (EACCES)"

# mgmt.sock: CAP_NET_ADMIN, as rtnetlink; a binding names a child of the
# sender that is its namespace's init.
expect "capless root on mgmt.sock" EPERM env LD_PRELOAD="$TOOL_PRELOAD" \
	setpriv --bounding-set=-all --inh-caps=-all --ambient-caps=-all \
	"$PROBE" mgmt "$MGMT"
expect "root on mgmt.sock" ok tool "$PROBE" mgmt "$MGMT"
expect "binding someone else's process" EPERM tool "$PROBE" bind "$MGMT" 0 "$VHCAD_PID"
expect "binding a VF that does not exist" ENODEV tool "$PROBE" bind "$MGMT" 999 1
stop_guest_pid() { kill -TERM "$1" 2>/dev/null; wait "$1" 2>/dev/null || true; }
stop_guest_pid "$other"
expect "host opens vf3 after its guest" ok tool "$PROBE" open "$VF3_CMD"
pass "mgmt.sock needs CAP_NET_ADMIN; bindings cannot be forged; they end with the guest"

# ---- network: private unless asked ------------------------------------------------
next_port
listen_log=$RUN_DIR/listen.out
env LD_PRELOAD="$TOOL_PRELOAD" "$PROBE" listen "$PORT" >"$listen_log" 2>&1 &
listener=$!
bg_track "$listener"
wait_line "$listen_log" listening "$listener" || fail "listener: $(cat "$listen_log")"
expect "private net reaches the host" ECONNREFUSED guest --vf 1 -- "$PROBE" connect "$PORT"
expect "--net host" ok guest --vf 1 --net host -- "$PROBE" connect "$PORT"
wait "$listener" || fail "listener"
pass "own network namespace by default; --net host shares the host's"

# ---- --user, and the guest dies with vhca-guest -------------------------------------
expect "--user nobody" "65534 vhca0_vf1" guest --vf 1 --user nobody -- sh -c \
	'echo "$(id -u) $(ibv_devices | awk "NR == 3 { print \$1 }")"'
started=$RUN_DIR/killed.out
env LD_PRELOAD="$TOOL_PRELOAD" "$GUEST_BIN" --run-dir "$RUN_DIR" --vf 2 -- \
	sh -c 'sleep 300 & echo ready; wait' >"$started" 2>&1 &
victim=$!
wait_line "$started" ready "$victim" || fail "guest of vf2 did not start"
kill -KILL "$victim"
wait "$victim" 2>/dev/null || true
for _ in $(seq 100); do
	vf_lock_held 2 || break
	sleep 0.05
done
! vf_lock_held 2 ||
	fail "processes of a SIGKILLed guest still hold vf2"
pass "--user runs CMD as that user; SIGKILL to vhca-guest ends the whole guest"

vhca_stop || fail "vhcad exit status"
