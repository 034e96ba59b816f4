#!/bin/bash
# Faults of a VM's VF (issue 10, docs/prm.md "The VF in a VM"): QEMU killed
# (SIGKILL) in the middle of traffic frees everything of its VM in vhcad,
# the host peer that was writing to it gets an error completion instead
# of hanging, and the VF works again for the next VM; vhcad stopped while
# a VM uses its VF makes the VM's verbs fail with an error, and nothing
# in the VM hangs.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/vm_lib.sh"

vhca_start --num-vfs 2
env_opts=(--env RDMAV_DRIVERS)
[[ -n $TOOL_PRELOAD ]] && env_opts+=(--env "LD_PRELOAD=$TOOL_PRELOAD" --env ASAN_OPTIONS)

ns=vhcavm-faults-$$
br=vhcabf$$
net=10.80.$((RANDOM % 200)).
VM_NETNS+=("$ns")
ip netns add "$ns"
ip -n "$ns" link add "$br" type bridge
ip -n "$ns" addr add "${net}1/24" dev "$br"
ip -n "$ns" link set "$br" up
ip -n "$ns" link set lo up

status_of() { grep "^vhca0_vf$1 " "$SYSFS_PATH/module/vhca/status"; }
# holds_nothing VF: no context, QP, CQ, MR or queue memory left.
holds_nothing() {
	local l
	l=$(status_of "$1")
	for field in contexts qps cqs mrs dctxs queue_kib; do
		[[ " $l " == *" $field 0 "* ]] || return 1
	done
}

# ---- QEMU killed while a host QP writes to the VM's ------------------------------
next_port
ip netns exec "$ns" timeout -k 5 "$VM_TIMEOUT" "$VHCA_VM" --run-dir "$RUN_DIR" \
	--vf 0 --net "$br" "${env_opts[@]}" -- \
	sh -c "echo serving; exec ib_write_bw -p $PORT -F -D 60" \
	>"$RUN_DIR/victim.out" 2>"$RUN_DIR/victim.err" &
victim=$!
bg_track "$victim"
wait_for_text "$RUN_DIR/victim.out" serving "$victim" || fail "the VM did not start"
# The host writes for 60 s; once its traffic runs, QEMU dies.
# (retried until the VM's server listens: a refusal comes at once)
ip netns exec "$ns" env LD_PRELOAD="$TOOL_PRELOAD" timeout -k 5 180 sh -c '
	for i in $(seq 120); do
		stdbuf -oL -eL ib_write_bw -d vhca0_vf1 -p "$1" -F -D 60 "$2"
		rc=$?
		grep -q "#bytes" "$3" 2>/dev/null && exit $rc
		sleep 0.5
	done; exit 1' - "$PORT" "${net}10" "$RUN_DIR/writer.log" \
	>"$RUN_DIR/writer.log" 2>&1 &
writer=$!
bg_track "$writer"
wait_for_text "$RUN_DIR/writer.log" "#bytes" "$writer" ||
	fail "the host writer did not start: $(cat "$RUN_DIR/writer.log" "$RUN_DIR/victim.out" "$RUN_DIR/victim.err")"
sleep 2
# $victim is timeout(1) (ip netns exec execs it); vhca-vm is its child.
vm_pid=$(pgrep -P "$victim" | head -n 1)
qemu=$(qemu_children "$vm_pid")
[[ -n $qemu ]] || fail "no QEMU under vhca-vm $vm_pid"
kill -KILL "$qemu"
start=$(date +%s)
rc=0
wait "$writer" || rc=$?
elapsed=$(($(date +%s) - start))
((rc != 0 && rc != 124)) || fail "the host writer: exit $rc after QEMU died ($(tail -n 5 "$RUN_DIR/writer.log"))"
((elapsed < 30)) || fail "the host writer took $elapsed s to see its peer gone"
grep -qiE "error|status 12|retry" "$RUN_DIR/writer.log" ||
	fail "the host writer's error does not say why: $(tail -n 5 "$RUN_DIR/writer.log")"
wait "$victim" 2>/dev/null || true
for _ in $(seq 100); do
	holds_nothing 0 && break
	sleep 0.1
done
holds_nothing 0 ||
	fail "vhcad still holds the dead VM's resources: $(status_of 0)"
pass "QEMU killed mid-traffic: the host writer failed in ${elapsed} s ($(grep -m1 -ioE "[a-z ]*error[a-z ]*" "$RUN_DIR/writer.log")), vhcad freed the VM"

out=$(timeout -k 5 "$VM_TIMEOUT" "$VHCA_VM" --run-dir "$RUN_DIR" --vf 0 \
	"${env_opts[@]}" -- ibv_devinfo 2>&1) || fail "the VF after its VM was killed: $out"
grep -q PORT_ACTIVE <<<"$out" || fail "the next VM's device: $out"
pass "the VF works for the next VM"

# ---- vhcad stops while a VM uses its VF --------------------------------------------
timeout -k 5 "$VM_TIMEOUT" "$VHCA_VM" --run-dir "$RUN_DIR" --vf 0 "${env_opts[@]}" -- \
	sh -c 'ibv_devinfo >/dev/null && echo up
		for i in $(seq 600); do ibv_devinfo >/dev/null 2>&1 || break; sleep 0.1; done
		echo "verbs failed after $i tries"
		timeout 30 ibv_devinfo; echo "then: $?"' \
	>"$RUN_DIR/orphan.out" 2>"$RUN_DIR/orphan.err" &
orphan=$!
bg_track "$orphan"
wait_for_text "$RUN_DIR/orphan.out" up "$orphan" || fail "the VM did not start: $(cat "$RUN_DIR/orphan.err")"
vhca_stop || fail "vhcad did not stop cleanly with a VM attached"
rc=0
wait "$orphan" || rc=$?
grep -q "verbs failed after" "$RUN_DIR/orphan.out" ||
	fail "the VM's verbs did not fail: $(cat "$RUN_DIR/orphan.out" "$RUN_DIR/orphan.err")"
grep -q "then: [1-9]" "$RUN_DIR/orphan.out" ||
	fail "a verb after vhcad stopped: $(cat "$RUN_DIR/orphan.out")"
((rc != 124)) || fail "the VM hung after vhcad stopped"
pass "vhcad stopped under a VM: its verbs fail at once, nothing hangs"
