#!/bin/bash
# The demo: build vhca, start vhcad with two VFs, provision their GUIDs and
# P_Keys with vhcactl, show them to unmodified rdma-core tools, then boot
# two VMs (vhca-cluster up 2), each owning one VF, run unmodified
# ib_write_lat between them and the MPI latency benchmark between them
# (one rank in each VM) over Open MPI + UCX rc_verbs, beside Open MPI over
# TCP between the same two VMs (virtio-net on the cluster's bridge); prints
# the table and the plot's path.
#   --guests  the same MPI comparison between two namespace guests
#             (vhca-guest) instead of VMs, beside TCP loopback
# The whole MPI suite is mpi-tests/run.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=vms
case ${1:-} in
"") ;;
--guests) mode=guests ;;
-h | --help)
	sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "demo.sh: unknown argument '$1' (--guests, --help)" >&2
	exit 2
	;;
esac

bash scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j"$(nproc)" >/dev/null

run_dir=$(mktemp -d /tmp/vhca-demo.XXXXXX)
results=$PWD/results/demo-$(date -u +%Y%m%dT%H%M%SZ)
vhcad=build/release/kernel-shim/vhcad
# shellcheck source=../mpi-tests/mpi-lib.sh
source mpi-tests/mpi-lib.sh
MPI_CLUSTER_DIR=""
cluster=build/release/tools/vhca-cluster
stop() {
	mpi_end_session
	[[ -n $MPI_CLUSTER_DIR ]] && "$cluster" --dir "$MPI_CLUSTER_DIR" down >/dev/null 2>&1
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
mkdir -p "$results"
MPI_BUILD=$PWD/build/release
MPI_RUN_DIR=$run_dir
MPI_TIMEOUT=600
csv=$results/results.csv
port=18515

if [[ $mode == guests ]]; then
	echo "== ib_write_lat -s 2 between vhca0_vf0 and vhca0_vf1 (host processes)"
	ib_write_lat -d vhca0_vf0 -s 2 -n 2000 -F -p "$port" >"$run_dir/server.log" 2>&1 &
	server=$!
	sleep 1
	timeout 120 ib_write_lat -d vhca0_vf1 -s 2 -n 2000 -F -p "$port" localhost |
		tee "$run_dir/client.log" | sed -n '/#bytes/,/^-\+$/p'
	wait "$server"
	echo "== MPI latency between two guests (vhca-guest --vf 0 / --vf 1), Open MPI + UCX rc_verbs"
	MPI_GUESTS=1
	MPI_SHARE=$results	# the ranks write the CSV from their guests
	configs=(ucx-rc tcp)
	for config in "${configs[@]}"; do
		echo "   $config: $(mpi_config_describe "$config")"
		mpi_run "$config" 2 "$results/$config.log" \
			"$MPI_BUILD/mpi-tests/mpi_latency" --min-size 0 --max-size 1M \
			--label "$config" --csv "$csv" --quiet ||
			{ tail -n 30 "$results/$config.log" >&2; exit 1; }
	done
else
	echo "== two VMs, each owning a VF: vhca-cluster up 2"
	MPI_CLUSTER_DIR=$(mktemp -d /tmp/vhca-demo-cluster.XXXXXX)
	start=$SECONDS
	"$cluster" --dir "$MPI_CLUSTER_DIR" --run-dir "$run_dir" up 2
	echo "   up in $((SECONDS - start)) s"
	vm() { "$cluster" --dir "$MPI_CLUSTER_DIR" exec "$@"; }
	echo "== in vm1: ibv_devinfo (the GUIDs vhcactl set)"
	vm 1 'ibv_devinfo -d vhca0_vf1 | grep -E "hca_id|node_guid|state"'
	echo "== ib_write_lat -s 2 between the VMs (server in vm0, client in vm1)"
	vm 0 "timeout 120 ib_write_lat -d vhca0_vf0 -s 2 -n 2000 -F -p $port" >"$run_dir/server.log" 2>&1 &
	server=$!
	# The client retries until the server in vm0 listens.
	vm 1 "for i in \$(seq 60); do timeout 120 ib_write_lat -d vhca0_vf1 -s 2 -n 2000 -F -p $port 10.90.0.10 && exit 0; sleep 1; done; exit 1" \
		2>/dev/null | tee "$run_dir/client.log" | sed -n '/#bytes/,/^-\+$/p'
	wait "$server"
	# 200 iterations a size: under TCG, TCP between VMs takes ~1 ms a
	# round trip, so the default 1000 would make this the demo's bulk.
	echo "== MPI latency between the two VMs: Open MPI + UCX rc_verbs, and Open MPI TCP on the bridge"
	configs=(vm-ucx-rc vm-tcp)
	# A bound, so a hung job ends the demo with its log rather than never.
	MPI_TIMEOUT=600
	for config in "${configs[@]}"; do
		echo "   $config: $(mpi_config_describe "$config")"
		mpi_run "$config" 2 "$results/$config.log" \
			"$MPI_BUILD/mpi-tests/mpi_latency" --min-size 0 --max-size 1M --iters 200 \
			--label "$config" --csv "$MPI_VM_CSV" --quiet && mpi_vm_fetch_csv "$csv" ||
			{ tail -n 30 "$results/$config.log" >&2; exit 1; }
	done
	MPI_ACCEL=$(sed -n 's/^vhca-vm: accelerator \([a-z]*\).*/\1/p' "$MPI_CLUSTER_DIR/vm/0/log" | head -n 1)
	export MPI_ACCEL
fi
bash mpi-tests/report.sh "$csv" "$results" "${configs[@]}" | tee "$results/table.txt"
echo "== results: $results (table.txt, results.csv)"
echo "== plot: $results/latency.png"
echo "== resources held per device"
cat "$SYSFS_PATH/module/vhca/status"
