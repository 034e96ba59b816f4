#!/bin/bash
# vhcad with 4 VFs: unmodified ibv_devices lists the PF and the VFs with
# distinct GUIDs, and ibv_devinfo -v agrees with the sysfs view.
source "$(dirname "$0")/../lib.sh"

vhca_start --num-vfs 4

devices=$(tool ibv_devices) || fail "ibv_devices failed"
echo "$devices"
for dev in vhca0 vhca0_vf0 vhca0_vf1 vhca0_vf2 vhca0_vf3; do
	grep -qw "$dev" <<<"$devices" || fail "$dev not listed"
done
[[ $(grep -c vhca <<<"$devices") == 5 ]] || fail "expected 5 devices"
guids=$(awk '/vhca/ {print $2}' <<<"$devices")
[[ $(sort -u <<<"$guids" | wc -l) == 5 ]] || fail "GUIDs not distinct: $guids"
pass "ibv_devices lists 5 devices with distinct GUIDs"

info=$(tool ibv_devinfo -v -d vhca0_vf1) || fail "ibv_devinfo failed"
echo "$info"
sysdir=class/infiniband/vhca0_vf1
field() { awk -v k="$1:" '$1 == k {print $2; exit}' <<<"$info"; }

expect() {
	[[ "$2" == "$3" ]] || fail "$1: ibv_devinfo '$2', expected '$3'"
}
expect node_guid "$(field node_guid)" "$(sysfs_read $sysdir/node_guid)"
expect sys_image_guid "$(field sys_image_guid)" \
	"$(sysfs_read $sysdir/sys_image_guid)"
expect fw_ver "$(field fw_ver)" "$(sysfs_read $sysdir/fw_ver)"
expect state "$(field state)" PORT_ACTIVE
expect phys_state "$(field phys_state)" LINK_UP
expect link_layer "$(field link_layer)" InfiniBand
expect active_mtu "$(field active_mtu)" 4096
expect port_lid "$(printf 0x%x "$(field port_lid)")" \
	"$(sysfs_read $sysdir/ports/1/lid)"
expect sm_lid "$(printf 0x%x "$(field sm_lid)")" \
	"$(sysfs_read $sysdir/ports/1/sm_lid)"
[[ $(field port_lid) != 0 ]] || fail "LID is 0"
grep -q "active_width:.*4X" <<<"$info" || fail "active width"
grep -q "active_speed:" <<<"$info" || fail "active speed"
grep -q "max_pkeys:" <<<"$info" || fail "max_pkeys"

gid0=$(awk '/GID\[ *0\]:/ {print $NF; exit}' <<<"$info")
port_guid=$(sysfs_read $sysdir/ports/1/gids/0)
expect "GID 0" "$gid0" "$port_guid"
[[ $gid0 == fe80:0000:0000:0000:* ]] || fail "GID 0 not link local: $gid0"
pass "ibv_devinfo -v agrees with sysfs"

# LIDs are unique and nonzero across all devices.
lids=$(cat "$SYSFS_PATH"/class/infiniband/*/ports/1/lid)
[[ $(sort -u <<<"$lids" | wc -l) == 5 ]] || fail "LIDs not unique: $lids"
grep -qx 0x0 <<<"$lids" && fail "a LID is 0"
[[ $(sysfs_read $sysdir/ports/1/pkeys/0) == 0xffff ]] || fail "P_Key 0"
pass "LIDs unique, P_Key 0 is 0xffff"

"$VHCA_BUILD/tests/attrs_test" || fail "attrs_test"
"$VHCA_BUILD/tests/context_test" 7 || fail "context_test"
vhca_stop || fail "vhcad exit status"
pass "clean stop"
