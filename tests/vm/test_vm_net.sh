#!/bin/bash
# vhca-vm --net (docs/vm.md): two VMs on one bridge (made in a network
# namespace of the test's own) get addresses of its subnet, printed on
# stderr, and ping each other; SIGTERM to one of them ends it with its tap
# and its address lease gone.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/vm_lib.sh"

RUN_DIR=$(mktemp -d /tmp/vhca-test.XXXXXX)
ns=vhcavm-test-$$
br=vhcabr$$
net=10.77.$((RANDOM % 200)).
VM_NETNS+=("$ns")
ip netns add "$ns"
ip -n "$ns" link add "$br" type bridge
ip -n "$ns" addr add "${net}1/24" dev "$br"
ip -n "$ns" link set "$br" up
ip -n "$ns" link set lo up

# Each VM pings the other (the first VM gets .100, the next .101) until it
# answers, says so, and stays up long enough to be pinged back.
ping_peer='
	case $VHCA_VM_ADDRESS in *.100) peer=${NET}101 ;; *) peer=${NET}100 ;; esac
	for i in $(seq 150); do
		if busybox ping -c 1 -W 1 "$peer" >/dev/null 2>&1; then
			echo "pinged $peer from $VHCA_VM_ADDRESS"
			exec sleep "$STAY"
		fi
	done
	echo "no answer from $peer" >&2
	exit 1'
start_vm() {
	local name=$1 stay=$2
	NET=$net STAY=$stay ip netns exec "$ns" "$VHCA_VM" --no-vf --run-dir "$RUN_DIR" \
		--net "$br" --env NET --env STAY -- sh -c "$ping_peer" \
		>"$RUN_DIR/$name.out" 2>"$RUN_DIR/$name.err" &
	bg_track $!
}
start_vm a 300
pid_a=$!
wait_for_text "$RUN_DIR/a.err" "network: ${net}100/24 on bridge $br" "$pid_a" ||
	fail "VM a got no address: $(cat "$RUN_DIR/a.err")"
start_vm b 15
pid_b=$!
wait_for_text "$RUN_DIR/b.err" "network: ${net}101/24 on bridge $br" "$pid_b" ||
	fail "VM b got no address: $(cat "$RUN_DIR/b.err")"
wait_for_text "$RUN_DIR/a.out" "pinged ${net}101 from ${net}100" "$pid_a" ||
	fail "VM a did not reach VM b: $(cat "$RUN_DIR/a.out" "$RUN_DIR/a.err")"
wait_for_text "$RUN_DIR/b.out" "pinged ${net}100 from ${net}101" "$pid_b" ||
	fail "VM b did not reach VM a: $(cat "$RUN_DIR/b.out" "$RUN_DIR/b.err")"
pass "two VMs on bridge $br: ${net}100 and ${net}101 (printed on stderr) ping each other"

rc=0
wait "$pid_b" || rc=$?
((rc == 0)) || fail "VM b exited $rc"
taps=$(ip -n "$ns" -o link show | grep -c vhcavm || true)
((taps == 1)) || fail "$taps taps with one VM left: $(ip -n "$ns" -o link show)"
qemu=$(qemu_children "$pid_a")
kill -TERM "$pid_a"
rc=0
wait "$pid_a" || rc=$?
((rc == 143)) || fail "SIGTERM: VM a exited $rc"
! kill -0 "$qemu" 2>/dev/null || fail "QEMU $qemu outlived vhca-vm"
ip -n "$ns" -o link show | grep -q vhcavm && fail "a tap outlived its VM: $(ip -n "$ns" -o link show)"
ls /run/vhca-vm/"$br"-* >/dev/null 2>&1 && fail "address leases left: $(ls /run/vhca-vm)"
no_vm_files "$RUN_DIR"
pass "taps and leases go with their VMs (exit, SIGTERM)"
