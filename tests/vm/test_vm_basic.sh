#!/bin/bash
# vhca-vm without a VF (docs/vm.md): a boot and its time, the exit status
# and a death by signal, stdout and stderr apart and byte-exact (1 MiB
# each), --cpus/--mem, the host's root read-only under a writable overlay,
# what the VM does not see of the host, the environment, --accel kvm where
# KVM cannot boot, bad options, and SIGTERM ending QEMU and leaving nothing.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/vm_lib.sh"

RUN_DIR=$(mktemp -d /tmp/vhca-test.XXXXXX)
# Files the VM must see: not in /tmp, which it does not see of the host.
DATA=$(mktemp -d "$VHCA_BUILD/tests/vm-data.XXXXXX")
VM_DIRS+=("$DATA")
opts=(--no-vf --run-dir "$RUN_DIR")

# ---- a boot, timed ----------------------------------------------------------
start=$(date +%s%N)
vm "${opts[@]}" -- true 2>"$RUN_DIR/boot.err" ||
	{ cat "$RUN_DIR/boot.err" >&2; fail "vhca-vm -- true failed"; }
ms=$((($(date +%s%N) - start) / 1000000))
grep -qE '^vhca-vm: accelerator (tcg|kvm) \(.+\)$' "$RUN_DIR/boot.err" ||
	fail "no accelerator line: $(cat "$RUN_DIR/boot.err")"
pass "boot to 'true' and back in $ms ms ($(grep -o 'accelerator [a-z]*' "$RUN_DIR/boot.err"))"
no_vm_files "$RUN_DIR"

# ---- output and exit status -------------------------------------------------
head -c 1048576 /dev/urandom >"$DATA/out.bin"
head -c 1048576 /dev/urandom >"$DATA/err.bin"
rc=0
vm "${opts[@]}" -- sh -c "cat '$DATA/out.bin'; cat '$DATA/err.bin' >&2; exit 7" \
	>"$RUN_DIR/out" 2>"$RUN_DIR/err" || rc=$?
((rc == 7)) || fail "exit 7 came out as $rc"
cmp -s "$RUN_DIR/out" "$DATA/out.bin" || fail "stdout differs from what CMD wrote"
# vhca-vm's accelerator line first, then exactly CMD's bytes.
accel_line=$(head -n 1 "$RUN_DIR/err")
[[ $accel_line == "vhca-vm: accelerator "* ]] || fail "stderr starts with '$accel_line'"
tail -c +$((${#accel_line} + 2)) "$RUN_DIR/err" | cmp -s - "$DATA/err.bin" ||
	fail "stderr differs from what CMD wrote"
pass "exit status 7; 1 MiB of stdout and 1 MiB of stderr apart and byte-exact"

rc=0
vm "${opts[@]}" -- no-such-command-here >"$RUN_DIR/out" 2>"$RUN_DIR/err" || rc=$?
((rc == 127)) || fail "a CMD not found came out as $rc, not 127"
grep -qF "vhca-vm: cannot run no-such-command-here: No such file or directory" "$RUN_DIR/err" ||
	fail "no message for a CMD not found: $(cat "$RUN_DIR/err")"
pass "a CMD not found: 127 and a message"

# ---- resources, filesystem, environment, death by signal ---------------------
echo host >"$DATA/host-file"
rc=0
(cd "$DATA" && VHCA_TEST_VAR=passed NOT_PASSED=1 FROM_ENV=yes \
	vm "${opts[@]}" --cpus 2 --mem 512M --env FROM_ENV --env SET_HERE=set -- sh -c '
	echo "nproc $(nproc)"
	echo "mem $(awk "/MemTotal/ { print \$2 }" /proc/meminfo)"
	echo "cwd $(pwd)"
	echo "guest" >host-file && echo "overlay $(cat host-file)"
	echo "tmp $(ls -A /tmp | wc -l) run $(ls -A /run | wc -l)"
	echo "proc1 $(cat /proc/1/comm)"
	echo "lo $(cat /sys/class/net/lo/operstate)"
	echo "env $VHCA_TEST_VAR ${NOT_PASSED:-unset} $FROM_ENV $SET_HERE $VHCA_VM_ACCEL"
	grep -q " / overlay " /proc/mounts && echo "root overlay"
	modprobe -n uio_pci_generic && echo "modprobe ok"
	kill -USR1 $$') >"$RUN_DIR/out" 2>"$RUN_DIR/err" || rc=$?
((rc == 128 + 10)) || { cat "$RUN_DIR/err" >&2; fail "death by SIGUSR1 came out as $rc, not 138"; }
expect_line() {
	grep -qxF -- "$1" "$RUN_DIR/out" ||
		fail "expected '$1' in the VM's output: $(tr '\n' '|' <"$RUN_DIR/out")"
}
expect_line "nproc 2"
mem=$(awk '/^mem / { print $2 }' "$RUN_DIR/out")
((mem > 400000 && mem <= 524288)) || fail "MemTotal $mem kB with --mem 512M"
expect_line "cwd $DATA"
expect_line "overlay guest"
[[ $(cat "$DATA/host-file") == host ]] || fail "the VM's write reached the host's file"
expect_line "tmp 0 run 0"
expect_line "proc1 vhca-vm"
expect_line "env passed unset yes set tcg"
expect_line "root overlay"
expect_line "modprobe ok"
pass "--cpus 2 --mem 512M (MemTotal $mem kB); death by SIGUSR1 is 138"
pass "host's / read-only under a writable overlay; the host's /tmp and /run unseen; cwd and environment"

# ---- refusals without a boot -------------------------------------------------
refused() {
	local want=$1 err rc=0
	shift
	err=$(timeout 20 "$VHCA_VM" "$@" 2>&1 >/dev/null) || rc=$?
	((rc == 125)) || fail "'vhca-vm $*' exited $rc, not 125"
	grep -qF -- "$want" <<<"$err" || fail "'vhca-vm $*' said: $err"
}
refused "whole MiB from 128M to 3G" "${opts[@]}" --mem 4G -- true
refused "exclude each other" --no-vf --vf 1 -- true
refused "no command given" "${opts[@]}"
refused "--accel 'fast'" "${opts[@]}" --accel fast -- true
if [[ -e /sys/module/kvm_pvm ]] || ! grep -qwE 'vmx|svm' /proc/cpuinfo; then
	refused "--accel kvm:" "${opts[@]}" --accel kvm -- true
	pass "bad options refused; --accel kvm refused at once where KVM cannot boot a kernel"
else
	vm "${opts[@]}" --accel kvm -- true || fail "--accel kvm on a KVM host"
	pass "bad options refused; --accel kvm boots"
fi

# ---- SIGTERM to vhca-vm ------------------------------------------------------
"$VHCA_VM" "${opts[@]}" -- sh -c 'echo up; sleep 300' >"$RUN_DIR/out" 2>&1 &
pid=$!
bg_track "$pid"
wait_for_text "$RUN_DIR/out" up "$pid" || fail "the VM did not come up: $(cat "$RUN_DIR/out")"
qemu=$(qemu_children "$pid")
[[ -n $qemu ]] || fail "no QEMU under vhca-vm"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
((rc == 128 + 15)) || fail "SIGTERM: vhca-vm exited $rc, not 143"
! kill -0 "$qemu" 2>/dev/null || fail "QEMU $qemu outlived vhca-vm"
no_vm_files "$RUN_DIR"
pass "SIGTERM ends the VM: exit 143, QEMU gone, nothing left in the run dir"
