#!/bin/bash
# vhca-vm and the VF (docs/vm.md): the VF lock is the one vhca-guest takes,
# so a namespace guest's VF is refused to a VM and a VM's to a namespace
# guest (and to another VM), naming the owner; without --vf a VM takes the
# lowest free VF; the VF's guest driver runs before CMD and a driver that
# fails keeps CMD from running (exit 125, its log on stderr); the lock is
# free once the VM is gone; ibv_rereg_mr in a VM (mr_rereg_test); a QP's
# events against its destroy (qp_events_test).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/vm_lib.sh"

vhca_start --num-vfs 2
GUEST="$VHCA_BUILD/tools/vhca-guest"
env_opts=()
[[ -n $TOOL_PRELOAD ]] && env_opts=(--env "LD_PRELOAD=$TOOL_PRELOAD" --env ASAN_OPTIONS)


# ---- a namespace guest's VF ---------------------------------------------------
"$GUEST" --run-dir "$RUN_DIR" --vf 0 -- sleep 300 &
guest=$!
bg_track "$guest"
for _ in $(seq 100); do vf_lock_held 0 && break; sleep 0.05; done
vf_lock_held 0 || fail "vhca-guest did not take vf0"
rc=0
err=$(timeout 20 "$VHCA_VM" --run-dir "$RUN_DIR" --vf 0 -- true 2>&1) || rc=$?
((rc == 125)) || fail "a VM got vf0 of a guest (exit $rc): $err"
grep -qF "vhca0_vf0 is owned by guest 'vhca0-vf0' (pid $guest)" <<<"$err" ||
	fail "the refusal does not name the guest: $err"
pass "a guest's VF is refused to a VM at once, naming the guest"

# ---- a VM's VF (the lowest free one: vf1) -------------------------------------
"$VHCA_VM" --run-dir "$RUN_DIR" "${env_opts[@]}" -- \
	sh -c 'ibv_devices; echo "sysfs $SYSFS_PATH device $VHCA_VM_DEVICE"; echo up; sleep 300' \
	>"$RUN_DIR/vm.out" 2>"$RUN_DIR/vm.err" &
vm_pid=$!
bg_track "$vm_pid"
if ! wait_for_text "$RUN_DIR/vm.out" up "$vm_pid"; then
	if grep -q "cannot attach VFs to VMs" "$RUN_DIR/vm.err"; then
		echo "skip: this vhcad cannot attach VFs to VMs yet: $(tail -n 1 "$RUN_DIR/vm.err")"
		exit 0
	fi
	fail "the VM of vf1 did not come up: $(cat "$RUN_DIR/vm.out" "$RUN_DIR/vm.err")"
fi
vf_lock_held 1 || fail "the VM does not hold vf1's lock"
grep -qF "sysfs /run/vhca/sys device vhca0_vf1" "$RUN_DIR/vm.out" ||
	fail "the VM's environment: $(cat "$RUN_DIR/vm.out")"
grep -qw vhca0_vf1 "$RUN_DIR/vm.out" || fail "ibv_devices in the VM: $(cat "$RUN_DIR/vm.out")"
rc=0
err=$(timeout 20 "$GUEST" --run-dir "$RUN_DIR" --vf 1 -- true 2>&1) || rc=$?
((rc == 125)) || fail "a guest got vf1 of a VM (exit $rc): $err"
grep -qF "vhca0_vf1 is owned by VM 'vhca0-vf1' (pid $vm_pid)" <<<"$err" ||
	fail "the refusal does not name the VM: $err"
rc=0
err=$(timeout 20 "$VHCA_VM" --run-dir "$RUN_DIR" --vf 1 -- true 2>&1) || rc=$?
((rc == 125)) && grep -qF "owned by VM 'vhca0-vf1'" <<<"$err" ||
	fail "a second VM of vf1 (exit $rc): $err"
pass "a VM takes the lowest free VF (vf1), sees vhca0_vf1; its VF is refused to a guest and a VM"

kill -TERM "$vm_pid"
wait "$vm_pid" || true
vf_lock_held 1 && fail "vf1 still locked after its VM ended"
kill -TERM "$guest"
wait "$guest" || true
pass "the VF is free again once its VM is gone"

# ---- ibv_rereg_mr in a VM: new ranges are guest pages, translated and pinned -------
rc=0
vm --run-dir "$RUN_DIR" --vf 1 "${env_opts[@]}" --env VHCA_DEV_A=vhca0_vf1 \
	--env VHCA_DEV_B=vhca0_vf1 -- "$VHCA_BUILD/tests/mr_rereg_test" all \
	>"$RUN_DIR/rereg.log" 2>&1 || rc=$?
((rc == 0)) && grep -qE '^[0-9]+ passed, 0 failed' "$RUN_DIR/rereg.log" ||
	{ cat "$RUN_DIR/rereg.log" >&2; fail "mr_rereg_test in a VM: exit $rc"; }
pass "ibv_rereg_mr in a VM (access, range, PD, refusals, a move under WRITEs)"

# ---- a QP's events against its destroy, through the VF's event ring -------------
rc=0
vm --run-dir "$RUN_DIR" --vf 1 "${env_opts[@]}" --env VHCA_DEV_A=vhca0_vf1 \
	-- "$VHCA_BUILD/tests/qp_events_test" all >"$RUN_DIR/qpev.log" 2>&1 || rc=$?
((rc == 0)) && grep -qE '^[0-9]+ passed, 0 failed' "$RUN_DIR/qpev.log" ||
	{ cat "$RUN_DIR/qpev.log" >&2; fail "qp_events_test in a VM: exit $rc"; }
pass "a VM's QP events: delivered before its destroy returns, none after"

# ---- a guest driver that fails ----------------------------------------------------
rc=0
VHCA_VM_DRIVER='echo driver says no; exit 3' timeout -k 5 "$VM_TIMEOUT" \
	"$VHCA_VM" --run-dir "$RUN_DIR" --vf 1 -- echo CMD ran >"$RUN_DIR/out" 2>"$RUN_DIR/err" || rc=$?
((rc == 125)) || fail "a failed guest driver: exit $rc"
grep -q "CMD ran" "$RUN_DIR/out" && fail "CMD ran without its driver"
grep -qF "driver says no" "$RUN_DIR/err" || fail "the driver's log is not on stderr: $(cat "$RUN_DIR/err")"
grep -qF "guest driver failed" "$RUN_DIR/err" || fail "no message: $(cat "$RUN_DIR/err")"
pass "a failing guest driver: exit 125, its output on stderr, CMD not run"
no_vm_files "$RUN_DIR"
wait_until_idle "after the VMs"
vhca_stop || fail "vhcad exit status"
