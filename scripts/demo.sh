#!/bin/bash
# The demo: build vhca, start vhcad with two VFs, provision their GUIDs and
# P_Keys with vhcactl, show them to unmodified rdma-core tools, run
# unmodified ib_write_lat between them, then the MPI latency benchmark
# between two guests (one rank in each, each guest owning one VF) over Open
# MPI + UCX rc_verbs, beside Open MPI over TCP loopback; prints the table
# and the plot's path.  The whole MPI suite is mpi-tests/run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j"$(nproc)" >/dev/null

run_dir=$(mktemp -d /tmp/vhca-demo.XXXXXX)
results=$PWD/results/demo-$(date -u +%Y%m%dT%H%M%SZ)
vhcad=build/release/kernel-shim/vhcad
# shellcheck source=../mpi-tests/mpi-lib.sh
source mpi-tests/mpi-lib.sh
stop() {
	mpi_end_session
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
echo "== provisioning the VFs through the PF"
vhcactl=build/release/tools/vhcactl
cat >"$run_dir/plan" <<'PLAN'
# one partition (0x8001) shared by both VFs, full members
vf 0 node_guid 02:00:00:00:00:00:a0:00 port_guid 02:00:00:00:00:00:a0:01 policy Up pkey 0xffff 0x8001
vf 1 node_guid 02:00:00:00:00:00:a1:00 port_guid 02:00:00:00:00:00:a1:01 policy Up pkey 0xffff 0x8001
PLAN
"$vhcactl" apply "$run_dir/plan"
"$vhcactl" show
echo "== SR-IOV view of the PF"
for vf in 0 1; do
	dir=$SYSFS_PATH/class/infiniband/vhca0/device/sriov/$vf
	printf 'vf%s node %s port %s policy %s pkey0 %s\n' "$vf" \
		"$(cat "$dir/node")" "$(cat "$dir/port")" \
		"$(cat "$dir/policy")" "$(cat "$dir/pkeys/0")"
done
echo "== ib_write_lat -s 2 between vhca0_vf0 and vhca0_vf1"
port=18515
ib_write_lat -d vhca0_vf0 -s 2 -n 2000 -F -p "$port" >"$run_dir/server.log" 2>&1 &
server=$!
sleep 1
timeout 120 ib_write_lat -d vhca0_vf1 -s 2 -n 2000 -F -p "$port" localhost |
	tee "$run_dir/client.log" | sed -n '/#bytes/,/^-\+$/p'
wait "$server"

echo "== MPI latency between two guests (vhca-guest --vf 0 / --vf 1), Open MPI + UCX rc_verbs"
mkdir -p "$results"
MPI_BUILD=$PWD/build/release
MPI_RUN_DIR=$run_dir
MPI_GUESTS=1
MPI_TIMEOUT=600
csv=$results/results.csv
MPI_SHARE=$results	# the ranks write the CSV from their guests
for config in ucx-rc tcp; do
	echo "   $config: $(mpi_config_describe "$config")"
	mpi_run "$config" 2 "$results/$config.log" \
		"$MPI_BUILD/mpi-tests/mpi_latency" --min-size 0 --max-size 1M \
		--label "$config" --csv "$csv" --quiet ||
		{ tail -n 30 "$results/$config.log" >&2; exit 1; }
done
bash mpi-tests/report.sh "$csv" "$results" ucx-rc tcp | tee "$results/table.txt"
echo "== results: $results (table.txt, results.csv)"
echo "== plot: $results/latency.png"
echo "== resources held per device"
cat "$SYSFS_PATH/module/vhca/status"
