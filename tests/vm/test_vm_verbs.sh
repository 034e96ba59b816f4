#!/bin/bash
# The VF in a VM (issue 10, docs/vm.md): unmodified rdma-core examples and
# perftest between two VMs, each owning a VF, and between a VM and a
# namespace guest; ibv_devinfo -v in a VM shows the GUIDs vhcactl set on
# the host; a vhcactl change while the VM runs reaches ibv_asyncwatch in
# it; P_Keys keep VMs of different partitions apart.  The VMs' TCP (the
# programs' QP exchange) runs on a bridge in a network namespace of the
# test's own.
#
# One VM runs the servers one after another, the other the clients, each
# retried until its server listens: a handful of boots under TCG.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/vm_lib.sh"

vhca_start --num-vfs 3
VHCACTL=$VHCA_BUILD/tools/vhcactl
GUEST=$VHCA_BUILD/tools/vhca-guest
env_opts=(--env RDMAV_DRIVERS)
[[ -n $TOOL_PRELOAD ]] && env_opts+=(--env "LD_PRELOAD=$TOOL_PRELOAD" --env ASAN_OPTIONS)

ns=vhcavm-verbs-$$
br=vhcabr$$
net=10.78.$((RANDOM % 200)).
VM_NETNS+=("$ns")
ip netns add "$ns"
ip -n "$ns" link add "$br" type bridge
ip -n "$ns" addr add "${net}1/24" dev "$br"
ip -n "$ns" link set "$br" up
ip -n "$ns" link set lo up

# vm_in_ns NAME VF CMD...: a VM owning VF on the test's bridge, output in
# $RUN_DIR/NAME.{out,err}, in the background (VM_PID).
VM_PID=""
vm_in_ns() {
	local name=$1 vf=$2
	shift 2
	ip netns exec "$ns" timeout -k 5 "$VM_TIMEOUT" "$VHCA_VM" \
		--run-dir "$RUN_DIR" --vf "$vf" --net "$br" "${env_opts[@]}" \
		--env PEER -- "$@" >"$RUN_DIR/$name.out" 2>"$RUN_DIR/$name.err" &
	VM_PID=$!
	bg_track "$VM_PID"
}

show_vm() {
	echo "--- $1 ---" >&2
	cat "$RUN_DIR/$1.out" "$RUN_DIR/$1.err" >&2
}

# The programs, server side and client side; "%s" is the server's address.
PROGRAMS=(
	"rc ibv_rc_pingpong -n 100 -c"
	"ud ibv_ud_pingpong -n 100 -c"
	"srq ibv_srq_pingpong -n 100 -c"
	"write_lat ib_write_lat -n 200 -F"
	"read_lat ib_read_lat -n 200 -F"
	"send_lat ib_send_lat -n 200 -F"
	"atomic_lat ib_atomic_lat -n 200 -F"
	"write_bw ib_write_bw -n 200 -F"
	"send_bw_ud ib_send_bw -c UD -n 200 -F"
)

# The servers, each waiting for its client, in order; port 19100 + i.
servers_script() {
	local i=0 entry name cmd
	for entry in "${PROGRAMS[@]}"; do
		read -r name cmd <<<"$entry"
		echo "timeout 90 $cmd -p $((19100 + i)) >/tmp/$name.log 2>&1; echo \"server $name \$?\"; tail -n 3 /tmp/$name.log"
		i=$((i + 1))
	done
}

# The clients: each tried until its server is up (a refused connection
# fails at once), at most a minute.
clients_script() {
	local i=0 entry name cmd
	for entry in "${PROGRAMS[@]}"; do
		read -r name cmd <<<"$entry"
		cat <<-EOF
		rc=1; for try in \$(seq 120); do
			timeout 90 $cmd -p $((19100 + i)) \$PEER >/tmp/$name.log 2>&1 && { rc=0; break; }
			grep -q -i -e "couldn't connect" -e "connection refused" -e "Unable to" /tmp/$name.log || break
			sleep 0.5
		done
		echo "client $name \$rc"; tail -n 3 /tmp/$name.log
		EOF
		i=$((i + 1))
	done
}

# check_pair SERVER CLIENT WHAT: every program passed on both sides.
check_pair() {
	local entry name
	for entry in "${PROGRAMS[@]}"; do
		read -r name _ <<<"$entry"
		grep -qx "server $name 0" "$RUN_DIR/$1.out" && grep -qx "client $name 0" "$RUN_DIR/$2.out" ||
			{ show_vm "$1"; show_vm "$2"; fail "$3: $name failed"; }
	done
	grep -q "iters" "$RUN_DIR/$2.out" || fail "$3: no pingpong output"
}

# ---- identity: what vhcactl set on the host, inside the VM --------------------
"$VHCACTL" vf 0 set node_guid 02:00:00:00:00:00:a0:01 \
	port_guid 02:00:00:00:00:00:a0:02 >/dev/null || fail "vhcactl vf set"
out=$(timeout -k 5 "$VM_TIMEOUT" "$VHCA_VM" --run-dir "$RUN_DIR" --vf 0 \
	"${env_opts[@]}" -- ibv_devinfo -v 2>&1) || fail "ibv_devinfo -v in a VM: $out"
grep -q "hca_id:.*vhca0_vf0" <<<"$out" || fail "the VM lists: $out"
grep -q "node_guid:.*0200:0000:0000:a001" <<<"$out" || fail "node GUID in the VM: $out"
grep -q "GID\[  0\]:.*fe80:0000:0000:0000:0200:0000:0000:a002" <<<"$out" ||
	fail "port GUID (GID 0) in the VM: $out"
grep -q "PORT_ACTIVE" <<<"$out" || fail "port state in the VM: $out"
pass "ibv_devinfo -v in a VM: vhca0_vf0 with the GUIDs vhcactl set on the host"

# ---- events: a change while the VM runs ------------------------------------------
timeout -k 5 "$VM_TIMEOUT" "$VHCA_VM" --run-dir "$RUN_DIR" --vf 0 "${env_opts[@]}" -- \
	sh -c 'echo watching; exec timeout 60 ibv_asyncwatch -d vhca0_vf0' \
	>"$RUN_DIR/watch.out" 2>"$RUN_DIR/watch.err" &
watch=$!
bg_track "$watch"
wait_for_text "$RUN_DIR/watch.out" watching "$watch" || fail "ibv_asyncwatch in a VM did not start"
sleep 3	# ibv_asyncwatch opened its device
"$VHCACTL" vf 0 set port_guid 02:00:00:00:00:00:a0:03 >/dev/null ||
	fail "vhcactl vf set (port GUID)"
"$VHCACTL" vf 0 set pkeys 0xffff,0x8001 >/dev/null ||
	fail "vhcactl vf set (P_Keys)"
for _ in $(seq 100); do
	grep -q PKEY_CHANGE "$RUN_DIR/watch.out" && break
	sleep 0.2
done
grep -q "GID_CHANGE" "$RUN_DIR/watch.out" && grep -q "PKEY_CHANGE" "$RUN_DIR/watch.out" ||
	{ show_vm watch; fail "the VM's ibv_asyncwatch did not see GID_CHANGE and PKEY_CHANGE"; }
kill -TERM "$watch"
wait "$watch" 2>/dev/null || true
pass "vhcactl changes on the host raise GID_CHANGE and PKEY_CHANGE in the VM (ibv_asyncwatch)"

# ---- two VMs -----------------------------------------------------------------------
PEER=${net}10
export PEER
vm_in_ns servers 0 sh -c "$(servers_script)"
servers=$VM_PID
wait_for_text "$RUN_DIR/servers.err" "network: ${net}10/24" "$servers" ||
	{ show_vm servers; fail "the servers' VM got no address"; }
vm_in_ns clients 1 sh -c "$(clients_script)"
clients=$VM_PID
wait "$clients" || true
wait "$servers" || true
check_pair servers clients "VM to VM"
grep -A2 "client write_lat" "$RUN_DIR/clients.out" | tail -n 1 | sed 's/^/  VM-VM ib_write_lat: /'
pass "between two VMs: rc, ud, srq pingpong (-c), write/read/send/atomic lat, write_bw, send_bw UD"

# ---- a VM and a namespace guest (the guest runs the clients) ----------------------
vm_in_ns servers2 0 sh -c "$(servers_script)"
servers=$VM_PID
wait_for_text "$RUN_DIR/servers2.err" "network: ${net}10/24" "$servers" ||
	{ show_vm servers2; fail "the servers' VM got no address"; }
ip netns exec "$ns" env LD_PRELOAD="$TOOL_PRELOAD" "$GUEST" --run-dir "$RUN_DIR" --vf 2 \
	--net host -- sh -c "$(clients_script)" >"$RUN_DIR/guest.out" 2>"$RUN_DIR/guest.err" || true
wait "$servers" || true
check_pair servers2 guest "VM to namespace guest"
pass "between a VM and a namespace guest: the same programs"

# ---- partitions: VMs in different partitions cannot talk ------------------------
"$VHCACTL" vf 0 set pkeys 0x8001 >/dev/null &&
	"$VHCACTL" vf 1 set pkeys 0x8002 >/dev/null ||
	fail "vhcactl: separate partitions"
PROGRAMS=("rc ibv_rc_pingpong -n 10 -c")
vm_in_ns part_s 0 sh -c "$(servers_script)"
servers=$VM_PID
wait_for_text "$RUN_DIR/part_s.err" "network: ${net}10/24" "$servers" ||
	{ show_vm part_s; fail "the servers' VM got no address"; }
vm_in_ns part_c 1 sh -c "$(clients_script)"
wait "$VM_PID" || true
wait "$servers" || true
grep -qx "client rc 0" "$RUN_DIR/part_c.out" &&
	{ show_vm part_c; fail "VMs in partitions 0x8001 and 0x8002 exchanged data"; }
pass "VMs in different partitions (0x8001, 0x8002) cannot exchange data"

no_vm_files "$RUN_DIR"
wait_until_idle "after the VMs"
vhca_stop || fail "vhcad exit status"
