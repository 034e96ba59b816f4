#!/bin/bash
# sriov_numvfs follows the kernel's rules; malformed writes to sysfs
# attributes are EINVAL and change nothing.
source "$(dirname "$0")/../lib.sh"

vhca_start --num-vfs 2
numvfs=$SYSFS_PATH/class/infiniband/vhca0/device/sriov_numvfs

count_devices() { tool ibv_devices | grep -c vhca0_vf || true; }

# write_attr FILE VALUE: prints the shell's error for a refused write.
write_attr() { (printf '%s' "$2" >"$1") 2>&1; }

[[ $(sysfs_read class/infiniband/vhca0/device/sriov_totalvfs) -ge 8 ]] ||
	fail "sriov_totalvfs"
[[ $(cat "$numvfs") == 2 ]] || fail "initial numvfs"

err=$(write_attr "$numvfs" 8) && fail "2 -> 8 accepted"
grep -q "Device or resource busy" <<<"$err" || fail "2 -> 8: $err"
for bad in "abc" "-1" "8x" "0x4" " 4" "99999999999999999999" "4 " \
	$'\n'; do
	err=$(write_attr "$numvfs" "$bad") && fail "'$bad' accepted"
	grep -q "Invalid argument" <<<"$err" || fail "'$bad': $err"
	[[ $(cat "$numvfs") == 2 ]] || fail "'$bad' changed numvfs"
done
# Two lines in one write() (printf would split them into two writes; dd
# needs fullblock, or it may copy what one read of the pipe got: "4\n").
err=$( (printf '4\n5' | dd of="$numvfs" bs=64 count=1 iflag=fullblock status=none) 2>&1) &&
	fail "two values in one write accepted"
grep -q "Invalid argument" <<<"$err" || fail "two values: $err"
[[ $(cat "$numvfs") == 2 ]] || fail "two values changed numvfs"
pass "malformed numvfs writes refused with EINVAL"

echo 0 >"$numvfs" || fail "2 -> 0"
[[ $(count_devices) == 0 ]] || fail "VFs still listed after 0"
[[ ! -e $SYSFS_PATH/class/infiniband/vhca0_vf0 ]] || fail "vf0 dir stays"
echo 8 >"$numvfs" || fail "0 -> 8"
[[ $(count_devices) == 8 ]] || fail "expected 8 VFs: $(count_devices)"
[[ -d $SYSFS_PATH/class/infiniband/vhca0/device/sriov/7 ]] ||
	fail "sriov/7 missing"
pass "0 -> 8 gives 8 VFs seen by a new ibv_devices"

err=$(write_attr "$numvfs" 200) && fail "200 accepted"
grep -q "Invalid argument" <<<"$err" || fail "200: $err"
[[ $(cat "$numvfs") == 8 ]] || fail "200 changed numvfs"
echo 0 >"$numvfs"
err=$(write_attr "$numvfs" 200) && fail "0 -> 200 accepted"
[[ $(cat "$numvfs") == 0 ]] || fail "0 -> 200 changed numvfs"
echo 4 >"$numvfs" || fail "0 -> 4"
pass "above sriov_totalvfs refused"

# Per-VF provisioning attributes exist and are readable.
for vf in 0 1 2 3; do
	dir=$SYSFS_PATH/class/infiniband/vhca0/device/sriov/$vf
	node=$(cat "$dir/node") || fail "sriov/$vf/node"
	[[ $node =~ ^([0-9a-f]{2}:){7}[0-9a-f]{2}$ ]] || fail "node '$node'"
	port=$(cat "$dir/port") || fail "sriov/$vf/port"
	[[ $port =~ ^([0-9a-f]{2}:){7}[0-9a-f]{2}$ ]] || fail "port '$port'"
	sys_guid=$(sysfs_read class/infiniband/vhca0_vf$vf/node_guid)
	[[ ${node//:/} == "${sys_guid//:/}" ]] ||
		fail "sriov/$vf/node $node vs node_guid $sys_guid"
	policy=$(cat "$dir/policy")
	[[ $policy =~ ^(Up|Down|Follow)$ ]] || fail "policy '$policy'"
	[[ $(cat "$dir/pkeys/0") == 0xffff ]] || fail "sriov/$vf/pkeys/0"
done
pass "sriov/<vf>/ attributes readable and consistent"

# Read-only attributes refuse writes.
write_attr "$SYSFS_PATH/class/infiniband/vhca0/node_guid" x >/dev/null &&
	fail "node_guid writable"
write_attr "$SYSFS_PATH/class/infiniband_verbs/abi_version" 7 >/dev/null &&
	fail "abi_version writable"
[[ $(sysfs_read class/infiniband_verbs/abi_version) == 6 ]] ||
	fail "abi_version changed"

# A VF with an open context cannot be torn out from under its guest.
"$VHCA_BUILD/tests/hold_resources" vhca0_vf1 1 1 1 >"$RUN_DIR/holder.out" &
holder=$!
wait_for_file_content() {
	for _ in $(seq 200); do grep -q ready "$1" 2>/dev/null && return 0; sleep 0.05; done
	return 1
}
wait_for_file_content "$RUN_DIR/holder.out" || fail "holder not ready"
err=$(write_attr "$numvfs" 0) && fail "0 accepted while vf1 in use"
grep -q "Device or resource busy" <<<"$err" || fail "busy: $err"
[[ $(cat "$numvfs") == 4 ]] || fail "numvfs changed while busy"
kill -KILL "$holder"
wait "$holder" 2>/dev/null || true
for _ in $(seq 100); do
	write_attr "$numvfs" 0 >/dev/null && break
	sleep 0.05
done
[[ $(cat "$numvfs") == 0 ]] || fail "VFs not released after holder died"
pass "VF in use refuses removal; freed once its holder dies"

vhca_stop || fail "vhcad exit status"
