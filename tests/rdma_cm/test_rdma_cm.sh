#!/bin/bash
# rdma_cm between two namespace guests with unmodified librdmacm
# (docs/rdma_cm.md): addresses provisioned through the PF, rping with
# verified data over IPv4 and IPv6, ucmatose, udaddy, rdma_server/
# rdma_client, rstream (rsockets), UCX's sockaddr connection manager,
# mckey (multicast joins) over IPv4 and IPv6, a bounded fuzz of the
# command path, a reject carrying private data both ways, a connect
# nobody listens to, an address nobody holds, hostile raw clients that
# change nothing for others (one holds its domain's 1024 files),
# ADDR_CHANGE when a bound address is taken
# away, and DEVICE_REMOVAL when a VF goes under a bound id.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/cm_lib.sh"

cm_setup

# ---- addresses: validated, all or nothing, visible to the guest -------------
for bad in "10.0.0.3/33" "224.0.0.1/4" "127.0.0.1/8" "0.0.0.0/0" "10.0.0.1/24" \
	"fd00::9/129" "hello" "10.0.0.7/24 10.0.0.7/24"; do
	if echo "$bad" >"$SRIOV/1/ip" 2>/dev/null; then
		fail "address '$bad' was accepted"
	fi
done
[[ $(tr '\n' ' ' <"$SRIOV/1/ip") == "10.0.0.2/24 fd00::2/64 " ]] ||
	fail "a refused write changed vf1's addresses: $(cat "$SRIOV/1/ip")"
pass "bad addresses refused, nothing changed"
CTL=("$VHCA_BUILD/tools/vhcactl" --sysfs "$SYSFS_PATH")
msg=$("${CTL[@]}" vf 1 set ip 10.0.0.300/24 2>&1) && fail "vhcactl took 10.0.0.300"
[[ $msg == *"not an IPv4 or IPv6 address"* ]] || fail "vhcactl said: $msg"
msg=$("${CTL[@]}" vf 1 set ip 10.0.0.1/24 2>&1) && fail "vhcactl took vf0's address"
[[ $msg == *"10.0.0.1/24 for vf 1 is vf 0's"* ]] || fail "vhcactl said: $msg"
printf 'vf 0 ip 10.9.0.1/16\nvf 1 ip 10.9.0.1/16\n' >"$RUN_DIR/plan"
"${CTL[@]}" apply "$RUN_DIR/plan" >/dev/null 2>&1 && fail "a plan gave one address twice"
[[ $(tr '\n' ' ' <"$SRIOV/0/ip") == "10.0.0.1/24 fd00::1/64 " ]] ||
	fail "a refused plan changed vf0: $(cat "$SRIOV/0/ip")"
"${CTL[@]}" show | grep -q "ip         10.0.0.2/24 fd00::2/64" ||
	fail "vhcactl show lacks vf1's addresses"
pass "vhcactl: addresses validated with clear errors, plans all or nothing"
seen=$(in_guest 1 cat "$SYSFS_PATH/class/infiniband/vhca0_vf1/ports/1/ip_addrs")
[[ $seen == $'10.0.0.2/24\nfd00::2/64' ]] || fail "guest sees '$seen'"
node=$(in_guest 1 stat -c '%F' /dev/infiniband/rdma_cm)
[[ $node == "character special file" ]] || fail "guest's rdma_cm node: $node"
pass "the guest sees its addresses and /dev/infiniband/rdma_cm"

# ---- a hostile client first: the rest must not notice --------------------------
"$RAW" hostile "$UCMA_FILE" >"$RUN_DIR/hostile.log" 2>&1 ||
	{ cat "$RUN_DIR/hostile.log" >&2; fail "hostile client"; }
wait_ids 0 || fail "ids left behind by the hostile client: $(cm_stat ids)"
pass "hostile client: $(grep -c '^ok' "$RUN_DIR/hostile.log") checks, nothing left"
"$RAW" mcast "$UCMA_FILE" 10.0.0.1 >"$RUN_DIR/mcast_hostile.log" 2>&1 ||
	{ cat "$RUN_DIR/mcast_hostile.log" >&2; fail "hostile multicast client"; }
wait_ids 0 || fail "ids left behind by the multicast client: $(cm_stat ids)"
[[ $(cm_stat multicast_joins) == 0 ]] ||
	fail "joins left behind: $(cm_stat multicast_joins)"
pass "hostile multicast client: 256 joins a file, others' LEAVE refused, nothing left"
# A bounded fuzz of the command path: random commands, sizes, bodies and
# response pointers; the daemon answers errnos and keeps nothing.
for seed in 1 2 3; do
	timeout 120 "$RAW" fuzz "$UCMA_FILE" 20000 "$seed" >>"$RUN_DIR/fuzz.log" 2>&1 ||
		{ cat "$RUN_DIR/fuzz.log" >&2; fail "ucma fuzz (seed $seed)"; }
	kill -0 "$VHCAD_PID" || fail "vhcad died in the ucma fuzz (seed $seed)"
done
wait_ids 0 || fail "ids left by the fuzz: $(cm_stat ids)"
pass "ucma fuzz: $(awk '{ n += $2 } END { print n }' "$RUN_DIR/fuzz.log") random commands, nothing left"

# A domain's share of files: the host's 1024 held, a guest still connects.
"$RAW" files "$UCMA_FILE" >"$RUN_DIR/files.log" 2>&1 &
files_pid=$!
bg_track "$files_pid"
wait_line "$RUN_DIR/files.log" "holding" "$files_pid" 600 ||
	fail "files: $(cat "$RUN_DIR/files.log")"
server_client rping_full rping -s -a 10.0.0.1 -v -V -C 10 -- \
	rping -c -a 10.0.0.1 -v -V -C 10 || fail "rping beside 1024 held files"
kill -TERM "$files_pid"
wait "$files_pid" || { cat "$RUN_DIR/files.log" >&2; fail "files client"; }
pass "1024 rdma_cm files held by the host, the 1025th refused (EMFILE), guests connect"

# ---- rping, data verified ----------------------------------------------------
server_client rping4 rping -s -a 10.0.0.1 -v -V -C 1000 -S 65535 -- \
	rping -c -a 10.0.0.1 -v -V -C 1000 -S 65535 || fail "rping IPv4"
n=$(grep -c '^ping data: rdma-ping-' "$RUN_DIR/rping4.client.log" || true)
((n == 1000)) || fail "rping IPv4: $n of 1000 pings"
pass "rping 1000 x 64 KiB over IPv4, verified"
server_client rping6 rping -s -a fd00::1 -V -C 100 -S 4096 -- \
	rping -c -a fd00::1 -V -C 100 -S 4096 || fail "rping IPv6"
pass "rping over IPv6"
# Loopback binds and resolves to the guest's own port (cma_bind_loopback()).
in_guest 0 sh -c 'rping -s -a 127.0.0.1 -C 20 -V & s=$!; sleep 1;
	n=$(rping -c -a 127.0.0.1 -C 20 -V -v | grep -c "^ping data");
	wait $s && [ "$n" = 20 ]' \
	>"$RUN_DIR/rping_lo.log" 2>&1 || { cat "$RUN_DIR/rping_lo.log" >&2; fail "rping over 127.0.0.1"; }
pass "rping over 127.0.0.1 inside one guest"
wait_ids 0 || fail "ids left after rping: $(cm_stat ids)"

# ---- the other librdmacm examples -----------------------------------------------
# ucmatose: several RC connections; udaddy: UD through SIDR; rdma_server/
# rdma_client: synchronous ids (MIGRATE_ID to a channel of their own).
server_client ucmatose ucmatose -c 4 -C 10 -- ucmatose -s 10.0.0.1 -c 4 -C 10 ||
	fail "ucmatose"
grep -q 'return status 0' "$RUN_DIR/ucmatose.client.log" || fail "ucmatose status"
server_client udaddy udaddy -c 2 -C 10 -- udaddy -s 10.0.0.1 -c 2 -C 10 ||
	fail "udaddy"
grep -q 'return status 0' "$RUN_DIR/udaddy.client.log" || fail "udaddy status"
server_client rdma_server rdma_server -- rdma_client -s 10.0.0.1 ||
	fail "rdma_server/rdma_client"
grep -q 'rdma_client: end 0' "$RUN_DIR/rdma_server.client.log" ||
	fail "rdma_client did not end 0"
pass "ucmatose (4 connections), udaddy (UD, SIDR), rdma_server/rdma_client"
wait_ids 0 || fail "ids left after the examples: $(cm_stat ids)"
# rsockets (rstream): its service thread takes the connection, and opens
# and fstats an event channel of its own from that thread.
server_client rstream rstream -b 10.0.0.1 -S 4096 -C 100 -- \
	rstream -s 10.0.0.1 -S 4096 -C 100 || fail "rstream (rsockets)"
grep -q '^custom *4k *100 ' "$RUN_DIR/rstream.client.log" ||
	fail "rstream: no transfer line: $(cat "$RUN_DIR/rstream.client.log")"
server_client rstream6 rstream -b fd00::1 -S 65536 -C 20 -- \
	rstream -s fd00::1 -S 65536 -C 20 || fail "rstream over IPv6"
pass "rstream (rsockets) over IPv4 and IPv6"
wait_ids 0 || fail "ids left after rstream: $(cm_stat ids)"

# ---- UCX's sockaddr connection manager -------------------------------------------
# UCX's ucp_client_server (Debian's example, built as it is): a UCP
# endpoint from an IP address.  The guests' network namespaces have
# loopback only, so UCX can connect only through rdma_cm; then 10 tag
# messages.  The server serves clients until it is stopped.
UCS=$VHCA_BUILD/tests/rdma_cm/ucp_client_server
[[ -x $UCS ]] || fail "$UCS not built: libucx-dev missing (scripts/install-deps.sh installs it)"
UCX_ENV=(UCX_TLS=rc_verbs,ud_verbs,self UCX_SOCKADDR_TLS_PRIORITY=rdmacm)
# Not through in_guest: $! must be timeout itself, which passes SIGTERM on.
timeout -k 5 "$CM_TIMEOUT" env LD_PRELOAD="$TOOL_PRELOAD" "$GUEST_BIN" \
	--run-dir "$RUN_DIR" --vf 0 -- env "${UCX_ENV[@]}" "$UCS" -l 10.0.0.1 \
	-c tag -i 10 >"$RUN_DIR/ucx.server.log" 2>&1 &
upid=$!
bg_track "$upid"
wait_listeners 1 "$upid" || { cat "$RUN_DIR/ucx.server.log" >&2; fail "UCX: no listener"; }
in_guest 1 env "${UCX_ENV[@]}" "$UCS" -a 10.0.0.1 -c tag -i 10 \
	>"$RUN_DIR/ucx.client.log" 2>&1 ||
	{ cat "$RUN_DIR/ucx.client.log" >&2; fail "UCX client over rdma_cm"; }
grep -q 'Client: iteration #10' "$RUN_DIR/ucx.client.log" ||
	fail "UCX: the client did not finish its 10 iterations: $(cat "$RUN_DIR/ucx.client.log")"
kill -TERM "$upid"
wait "$upid" 2>/dev/null || true
pass "UCX connects two guests through its rdmacm connection manager (10 tag messages)"
wait_ids 0 || fail "ids left after UCX: $(cm_stat ids)"

# ---- multicast: mckey (JOIN_MCAST, then verbs multicast) -----------------------
# mckeys NAME GROUP: a receiver joins GROUP in a guest of vf1, then a
# sender in a guest of vf0 sends 20 datagrams to it; both must finish.
mckeys() {
	local name=$1 group=$2 rpid r_rc=0 s_rc=0
	in_guest 1 mckey -m "$group" -b "$3" -C 20 >"$RUN_DIR/$name.recv.log" 2>&1 &
	rpid=$!
	bg_track "$rpid"
	# Joined, and its QP attached (librdmacm attaches on the event).
	wait_attached 1 "$rpid" ||
		{ cat "$RUN_DIR/$name.recv.log" >&2; fail "$name: the receiver never joined"; }
	in_guest 0 mckey -m "$group" -b "$4" -s -C 20 >"$RUN_DIR/$name.send.log" 2>&1 || s_rc=$?
	wait "$rpid" || r_rc=$?
	((r_rc == 0 && s_rc == 0)) ||
		{ tail -n 8 "$RUN_DIR/$name".*.log >&2; fail "$name: receiver $r_rc, sender $s_rc"; }
	grep -q "data transfers complete" "$RUN_DIR/$name.recv.log" ||
		fail "$name: the receiver did not get every datagram"
	grep -q "joined dgid: ff12:" "$RUN_DIR/$name.recv.log" ||
		fail "$name: no MGID in the join: $(cat "$RUN_DIR/$name.recv.log")"
}
# wait_attached N PID: until vf1's QPs hold N multicast attachments.
wait_attached() {
	local tries=600
	while ((tries-- > 0)); do
		(($(vhca_status | awk '$1 == "vhca0_vf1" { for (i = 1; i < NF; i++) if ($i == "mcast") print $(i + 1) }') >= $1)) && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
# wait_no_joins: until every join is gone (releases are asynchronous).
wait_no_joins() {
	local tries=200
	while ((tries-- > 0)); do
		(($(cm_stat multicast_joins) == 0)) && return 0
		sleep 0.05
	done
	return 1
}
mckeys mckey4 239.1.2.3 10.0.0.2 10.0.0.1
wait_no_joins || fail "joins left after mckey4: $(cm_stat multicast_joins)"
mckeys mckey6 ff15::1:2 fd00::2 fd00::1
pass "mckey over IPv4 and IPv6 groups: joined (MGID ff12:...), 20 datagrams each, every one received"
wait_ids 0 || fail "ids left after mckey: $(cm_stat ids)"
wait_no_joins || fail "joins left after mckey: $(cm_stat multicast_joins)"

# ---- outcomes ---------------------------------------------------------------
server_client reject "$PROBE" reject-server 10.0.0.1 7471 -- \
	"$PROBE" connect 10.0.0.1 7471 || fail "reject exchange"
grep -q 'CONNECT_REQUEST status 0 data hello' "$RUN_DIR/reject.server.log" ||
	fail "the server did not see the client's private data"
grep -q 'REJECTED status 28 data no-thanks' "$RUN_DIR/reject.client.log" ||
	fail "reject: $(cat "$RUN_DIR/reject.client.log")"
pass "reject with private data both ways (consumer-defined, 28)"

out=$(in_guest 1 "$PROBE" connect 10.0.0.1 7472)
# No listener: the peer's CM answers REJ "invalid service ID" (IBTA 12.6.7).
[[ $out == "event RDMA_CM_EVENT_REJECTED status 8 data -" ]] ||
	fail "connect to nobody: $out"
pass "connect to a port nobody listens on: REJECTED (8)"
out=$(in_guest 1 "$PROBE" resolve 10.0.0.99)
[[ $out == "event RDMA_CM_EVENT_ADDR_ERROR status -113 data -" ]] ||
	fail "resolve of an unheld address: $out"
pass "resolve of an address nobody holds: ADDR_ERROR (EHOSTUNREACH)"
wait_ids 0 || fail "ids left: $(cm_stat ids)"

# ---- the address goes: ADDR_CHANGE -------------------------------------------------
"$RAW" addrchange "$UCMA_FILE" 10.0.0.2 >"$RUN_DIR/addrchange.log" 2>&1 &
apid=$!
bg_track "$apid"
for _ in $(seq 100); do
	grep -qs '^bound' "$RUN_DIR/addrchange.log" && break
	sleep 0.05
done
echo 10.0.0.3/24 >"$SRIOV/1/ip"
wait "$apid" || { cat "$RUN_DIR/addrchange.log" >&2; fail "ADDR_CHANGE"; }
pass "the address of a bound id reprovisioned away: ADDR_CHANGE"

# ---- the VF goes: DEVICE_REMOVAL ------------------------------------------------
"$RAW" removal "$UCMA_FILE" 10.0.0.3 >"$RUN_DIR/removal.log" 2>&1 &
rpid=$!
bg_track "$rpid"
for _ in $(seq 100); do
	grep -qs '^bound' "$RUN_DIR/removal.log" && break
	sleep 0.05
done
echo 0 >"$SYSFS_PATH/class/infiniband/vhca0/device/sriov_numvfs"
wait "$rpid" || { cat "$RUN_DIR/removal.log" >&2; fail "DEVICE_REMOVAL"; }
pass "VF destroyed under a bound id: DEVICE_REMOVAL"
wait_ids 0 || fail "ids left at the end: $(cm_stat ids)"

vhca_stop || fail "vhcad exited with an error"
pass "vhcad stopped cleanly"
