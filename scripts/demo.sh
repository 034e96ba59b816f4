#!/bin/bash
# The demo: build vhca, start vhcad with two VFs and show them to
# unmodified rdma-core tools.  Later milestones grow this into GUID/P_Key
# provisioning, ib_write_lat and MPI between two guests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j"$(nproc)" >/dev/null

run_dir=$(mktemp -d /tmp/vhca-demo.XXXXXX)
vhcad=build/release/kernel-shim/vhcad
stop() {
	"$vhcad" --stop --run-dir "$run_dir" || true
	rm -rf "$run_dir"
}
trap stop EXIT

"$vhcad" --run-dir "$run_dir" --num-vfs 2
export SYSFS_PATH=$run_dir/sys
export RDMAV_DRIVERS=$PWD/build/release/providers/vhca/libvhca

echo "== vhcad is up (run dir $run_dir); SYSFS_PATH=$SYSFS_PATH"
echo "== ibv_devices"
ibv_devices
for dev in vhca0_vf0 vhca0_vf1; do
	echo "== ibv_devinfo -d $dev"
	ibv_devinfo -d "$dev"
done
echo "== SR-IOV view of the PF"
for vf in 0 1; do
	dir=$SYSFS_PATH/class/infiniband/vhca0/device/sriov/$vf
	printf 'vf%s node %s port %s policy %s pkey0 %s\n' "$vf" \
		"$(cat "$dir/node")" "$(cat "$dir/port")" \
		"$(cat "$dir/policy")" "$(cat "$dir/pkeys/0")"
done
echo "== resources held per device"
cat "$SYSFS_PATH/module/vhca/status"
