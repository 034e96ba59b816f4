#!/bin/bash
# A hostile VM (issue 10, "Bad input and faults"), without QEMU: the
# fake VMs of vm_attacks (tests/security/fake_vm.h) attach VFs through
# mgmt.sock and talk to vhcad as QEMU and a guest driver would, so every
# case runs in seconds on the host.  VFs: vf0 and vf1 the VMs, vf2 and
# vf3 the clean pair (sec_lib.sh), vf4 a host process, vf5 a namespace
# guest.  Each check wants an exact errno, completion status or count.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/sec_lib.sh"

VMA=$VHCA_BUILD/tests/security/vm_attacks
GUEST_BIN=$VHCA_BUILD/tools/vhca-guest
[[ -x $VMA && -x $GUEST_BIN ]] || fail "vm_attacks or vhca-guest not built"
# Run only some sections: VHCA_SEC_VM_SECTIONS="attach garbage ...".
SECTIONS=${VHCA_SEC_VM_SECTIONS:-attach garbage memory datapath kill stop}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }

# As a plain command, so that $! of "${VMAC[@]}" ... & is vm_attacks itself.
VMAC=(env LD_PRELOAD="$TOOL_PRELOAD" "$VMA")
vma() { "${VMAC[@]}" "$@"; }
# vma_bg NAME [PATTERN] ARGS...: a mode in the background (BG = its pid,
# output in $RUN_DIR/NAME.log), waited for until it prints PATTERN.
BG=""
vma_bg() {
	local name=$1 pattern=$2
	shift 2
	"${VMAC[@]}" "$@" >"$RUN_DIR/$name.log" 2>&1 &
	BG=$!
	bg_track "$BG"
	[[ -z $pattern ]] || wait_line "$RUN_DIR/$name.log" "$pattern" "$BG" ||
		fail "$name: $(cat "$RUN_DIR/$name.log")"
}
# vma_run NAME ARGS...: a mode that must exit 0; its output in the log.
vma_run() {
	local name=$1 rc=0
	shift
	timeout -k 5 60 env LD_PRELOAD="$TOOL_PRELOAD" "$VMA" "$@" \
		>"$RUN_DIR/$name.log" 2>&1 || rc=$?
	grep -E "^(FAIL|[a-z_]+:)" "$RUN_DIR/$name.log" | tail -n 12
	((rc == 0)) || fail "$name: exit $rc"
}
# expect_out WHAT WANT ARGS...: the mode's output must be WANT.
expect_out() {
	local what=$1 want=$2 got
	shift 2
	got=$(vma "$@" 2>&1) || true
	[[ $got == "$want" ]] || fail "$what: '$got', expected '$want'"
}
cmd_file() {
	echo "$(dirname "$(grep -l "^$1\$" "$SYSFS_PATH"/class/infiniband_verbs/uverbs*/ibdev)")/vhca_cmd"
}
status_of() { vhca_status | grep "^$1 "; }

vhca_start --num-vfs 6
NUMVFS=$SYSFS_PATH/class/infiniband/vhca0/device/sriov_numvfs

# ---- 6. who may attach, and what an attached VF refuses the host -----------------
if want attach; then
	vma_bg hold "hold: attached" hold "$RUN_DIR" 1
	holder=$BG
	[[ $(status_of vhca0_vf1) == *" open 1 "* ]] ||
		fail "an attached VF does not show as open: $(status_of vhca0_vf1)"
	expect_out "the host opens an attached VF's command file" \
		"write_file: open: EACCES" write_file "$(cmd_file vhca0_vf1)" x
	expect_out "sriov_numvfs 0 under an attached VF" \
		"write_file: write: EBUSY" write_file "$NUMVFS" 0
	[[ $(cat "$NUMVFS") == 6 ]] || fail "sriov_numvfs changed to $(cat "$NUMVFS")"
	expect_out "a second ATTACH_VM of the VF" "attach: -EBUSY" attach "$RUN_DIR" 1
	pass "an attached VF: its command file EACCES, sriov_numvfs EBUSY, a second attach EBUSY"

	# A VF a namespace guest owns, and one whose command file the host holds.
	glog=$RUN_DIR/guest.log
	env LD_PRELOAD="$TOOL_PRELOAD" "$GUEST_BIN" --run-dir "$RUN_DIR" --vf 5 -- \
		sh -c 'echo ready; exec sleep 60' >"$glog" 2>&1 &
	guest=$!
	bg_track "$guest"
	wait_line "$glog" ready "$guest" || fail "vhca-guest: $(cat "$glog")"
	expect_out "ATTACH_VM of a VF vhca-guest owns" "attach: -EBUSY" attach "$RUN_DIR" 5
	kill -TERM "$guest"
	wait "$guest" 2>/dev/null || true
	exec 7<>"$(cmd_file vhca0_vf4)"
	expect_out "ATTACH_VM of a VF whose command file the host holds" \
		"attach: -EBUSY" attach "$RUN_DIR" 4
	exec 7>&-
	# The socket's path taken: the attach fails and leaves the VF free,
	# having closed each of its descriptors once (vhcad's closes traced
	# where strace can attach: a second close of a number may be another
	# thread's new descriptor).
	mkdir "$RUN_DIR/vm/vhca0_vf3.sock"
	tracer=""
	if command -v strace >/dev/null; then
		strace -f -e trace=close -p "$VHCAD_PID" -o "$RUN_DIR/close.trace" \
			2>"$RUN_DIR/strace.err" &
		tracer=$!
		bg_track "$tracer"
		if ! wait_line "$RUN_DIR/strace.err" attached "$tracer" 100; then
			echo "(strace cannot attach to vhcad: closes not traced)"
			kill -INT "$tracer" 2>/dev/null || true
			tracer=""
		fi
	fi
	expect_out "ATTACH_VM whose server socket cannot be bound" \
		"attach: -EADDRINUSE" attach "$RUN_DIR" 3
	if [[ -n $tracer ]]; then
		kill -INT "$tracer"
		wait "$tracer" 2>/dev/null || true
		twice=$(grep EBADF "$RUN_DIR/close.trace" || true)
		[[ -z $twice ]] || fail "a refused ATTACH_VM closed a descriptor twice: $twice"
		pass "a refused ATTACH_VM closed each of its descriptors once"
	fi
	rmdir "$RUN_DIR/vm/vhca0_vf3.sock"
	expect_out "ATTACH_VM of that VF afterwards" "attach: 0" attach "$RUN_DIR" 3
	pass "ATTACH_VM is EBUSY for a VF a guest owns or the host holds open"
	vma_run attach_bad attach_bad "$RUN_DIR" 0 6
	pass "malformed ATTACH_VM requests refused, each with its errno"
	kill -TERM "$holder"
	wait "$holder" 2>/dev/null || true
	wait_until_idle "after the holding VM exited" vhca0_vf1
	expect_out "the VF, its VM gone, attaches again" "attach: 0" attach "$RUN_DIR" 1
	pass "the VF's VM gone, the VF is free again"
fi

# ---- 1. garbage in the mailbox -------------------------------------------------------
if want garbage; then
	vma_run garbage garbage "$RUN_DIR" 0 1 "${VHCA_FUZZ_SEED:-$RANDOM}"
	kill -0 "$VHCAD_PID" || fail "vhcad died of the garbage"
	wait_until_idle "after the garbage" vhca0_vf0 vhca0_vf1
	pass "garbage in the mailbox: -EINVAL each, the device answering, nothing changed"
fi

# ---- 2. memory a VM may not name -------------------------------------------------------
if want memory; then
	vma_run memory memory "$RUN_DIR" 0 "$VHCAD_PID"
	kill -0 "$VHCAD_PID" || fail "vhcad died of the memory attacks"
	wait_until_idle "after the memory attacks" vhca0_vf0
	pass "memory: vhcad's fds, pages outside RAM, bad counts -EINVAL; both budgets -ENOMEM, then accepting again"
fi

# ---- 3. the data path -------------------------------------------------------------------
if want datapath; then
	dir=$RUN_DIR/datapath
	mkdir -p "$dir"
	bystander_start 6 2000
	vma_bg host_target "" host_target vhca0_vf4 "$dir"
	host=$BG
	vma_run datapath datapath "$RUN_DIR" 0 1 "$dir"
	rc=0
	wait "$host" || rc=$?
	cat "$RUN_DIR/host_target.log"
	((rc == 0)) || fail "the host process's canary MR changed"
	bystander_check "the data-path attacks"
	wait_until_idle "after the data-path attacks" vhca0_vf0 vhca0_vf1 vhca0_vf4
	pass "the data path: exact error completions, QPs in ERR, every canary unchanged"
fi

# ---- 4. QEMU killed mid-traffic ----------------------------------------------------------
if want kill; then
	dir=$RUN_DIR/kill
	mkdir -p "$dir"
	vma_bg vm_peer "" vm_peer "$RUN_DIR" 0 "$dir"
	vm=$BG
	vma_bg host_peer "host_peer: traffic" host_peer vhca0_vf4 "$dir"
	host=$BG
	wait_line "$RUN_DIR/vm_peer.log" "vm_peer: traffic" "$vm" ||
		fail "vm_peer: $(cat "$RUN_DIR/vm_peer.log")"
	[[ $(status_of vhca0_vf0) == *" qps 1 "* ]] ||
		fail "the VM's QP is not in the status line: $(status_of vhca0_vf0)"
	kill -KILL "$vm"
	wait "$vm" 2>/dev/null || true
	rc=0
	elapsed_ms wait "$host" || rc=$?
	cat "$RUN_DIR/host_peer.log"
	((rc == 0)) || fail "the host peer of a killed VM did not get RETRY_EXC_ERR in time"
	wait_line "$RUN_DIR/vhcad.log" "vhca0_vf0: its VM is gone" "$VHCAD_PID" ||
		fail "vhcad did not log the VM gone"
	wait_until_idle "after QEMU was killed" vhca0_vf0
	pass "QEMU killed: vhcad freed the VF ($(status_of vhca0_vf0 | cut -d' ' -f3-12)), its peer got RETRY_EXC_ERR ${ELAPSED_MS} ms after the kill"
	vma_run clean_pair clean_pair "$RUN_DIR" 0 1
	wait_until_idle "after the VF was used again" vhca0_vf0 vhca0_vf1
	pass "the VF attached again and used (a WRITE and a READ to another VM)"
fi

# ---- 5. vhcad stopped under an attached VM -------------------------------------------------
if want stop; then
	vma_bg gone_watch "gone_watch: attached" gone_watch "$RUN_DIR" 1
	watcher=$BG
	elapsed_ms vhca_stop_within 5
	stop_ms=$ELAPSED_MS
	rc=0
	wait "$watcher" || rc=$?
	cat "$RUN_DIR/gone_watch.log"
	((rc == 0)) || fail "the VM did not see the device gone"
	pass "vhcad stopped in $stop_ms ms under an attached VM: its BAR says GONE, the mailbox answers nothing"
fi
