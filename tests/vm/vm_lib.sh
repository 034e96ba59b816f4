# Helpers of the VM tests (sourced after ../lib.sh).  They boot real VMs
# with vhca-vm, under TCG on a machine whose KVM cannot boot a kernel, so
# each test keeps to a few boots.

VHCA_VM="$VHCA_BUILD/tools/vhca-vm"
# One boot under TCG takes seconds; with other VMs or builds on 2 cores
# it may take ten times as long.
VM_TIMEOUT=${VM_TIMEOUT:-180}

# Directories and network namespaces a test made, removed at exit
# (after its background processes, before lib.sh's cleanup).
VM_DIRS=()
VM_NETNS=()
vm_cleanup() {
	local status=$?
	set +e
	bg_kill_all
	for ns in "${VM_NETNS[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "${VM_DIRS[@]}"
	(exit "$status")
	vhca_cleanup
}
trap vm_cleanup EXIT

[[ -x $VHCA_VM ]] || fail "$VHCA_VM is not built"
[[ $EUID == 0 ]] || fail "the VM tests need root"

# vm [vhca-vm options...] -- CMD...: vhca-vm under a timeout.
vm() { timeout -k 5 "$VM_TIMEOUT" "$VHCA_VM" "$@"; }

# wait_for_text FILE TEXT PID: until FILE holds TEXT while PID lives.
wait_for_text() {
	local file=$1 text=$2 pid=$3 tries=$((VM_TIMEOUT * 10))
	while ((tries-- > 0)); do
		grep -qF -- "$text" "$file" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# QEMU processes whose parent is PID.
qemu_children() { pgrep -P "$1" -f qemu-system || true; }

# no_vm_files DIR: vhca-vm left nothing in DIR/vm (private dirs, logs).
no_vm_files() {
	local left
	left=$(find "$1/vm" -mindepth 1 -not -name '*.sock' 2>/dev/null || true)
	[[ -z $left ]] || fail "vhca-vm left files behind: $left"
}
