# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# shellcheck shell=bash
#
# The MPI configurations of the benchmark suite and how their ranks are
# launched: sourced by mpi-tests/run and tests/integration/test_mpi.sh, so
# both run exactly the same mpirun command lines (docs/mpi-tests.md).
#
# Set before calling mpi_run:
#   MPI_BUILD       build directory (benchmarks, provider, vhca-guest)
#   MPI_RUN_DIR     run directory of the vhcad the ranks use
#   MPI_GUESTS      1: each rank in its own guest (vhca-guest --vf N), the
#                   way VMs own VFs; 0: all ranks on the host, each told
#                   which VF to use (for debugging the guest layer)
#   MPI_TIMEOUT     seconds one mpirun may take (default 600)
#   MPI_RANK_PRELOAD  LD_PRELOAD for the ranks (the ASan runtime in a
#                   VHCA_SANITIZE build, whose provider needs it loaded
#                   first); empty otherwise
#   MPI_CLUSTER_DIR for the vm-* configurations: the directory of a running
#                   vhca-cluster (docs/cluster.md), one rank per VM

MPI_CONFIGS_ALL=(ucx-rc ucx-ud openib tcp vader vm-ucx-rc vm-ucx-ud vm-tcp)
# Where a rank in a VM writes its CSV: the VM's own /tmp (its view of the
# host is read-only); mpi_vm_fetch_csv brings the rows out.
MPI_VM_CSV=/tmp/vhca-mpi.csv

# Open MPI refuses root without these; the suite runs as root because
# vhcad (and so vhca-guest) must.
if [[ $(id -u) == 0 ]]; then
	export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

mpi_config_known() {
	local c
	for c in "${MPI_CONFIGS_ALL[@]}"; do
		[[ $c == "$1" ]] && return 0
	done
	return 1
}

# Configurations whose traffic goes through vhca (and so run in guests).
mpi_config_uses_vhca() {
	case $1 in
	ucx-rc | ucx-ud | openib | vm-ucx-rc | vm-ucx-ud) return 0 ;;
	*) return 1 ;;
	esac
}

# Configurations whose ranks run in the VMs of a vhca-cluster.
mpi_config_in_vm() { [[ $1 == vm-* ]]; }

# One line per configuration, for --help and the docs.
mpi_config_describe() {
	case $1 in
	ucx-rc) echo "Open MPI pml ucx, UCX_TLS=rc_verbs,ud_verbs:aux,self (RC; UD only for wire-up), ranks in guests" ;;
	ucx-ud) echo "Open MPI pml ucx, UCX_TLS=ud_verbs,self (UD only), ranks in guests" ;;
	openib) echo "Open MPI pml ob1, btl openib,self (RC verbs), ranks in guests" ;;
	tcp) echo "baseline: pml ob1, btl tcp,self over loopback (lo), no vhca" ;;
	vader) echo "baseline: pml ob1, btl vader,self (shared memory), no vhca" ;;
	vm-ucx-rc) echo "as ucx-rc, one rank per VM, each VM owning a VF (vhca-cluster)" ;;
	vm-ucx-ud) echo "as ucx-ud, one rank per VM, each VM owning a VF (vhca-cluster)" ;;
	vm-tcp) echo "VM baseline: pml ob1, btl tcp,self between the same VMs over virtio-net on the bridge, no vhca" ;;
	esac
}

# mpi_config_args CONFIG: MPI_CONFIG_ARGS = mpirun options for all ranks
# (MCA parameters), MPI_CONFIG_ENV = NAME=value pairs every rank needs.
# The environment is given to each rank's app context (mpi_run): Open MPI
# 4.1 applies "-x NAME=value" written before the first app context of an
# MPMD command line to that first context only, so rank 1 would silently
# run without it (no UCX_TLS, no provider).
mpi_config_args() {
	MPI_CONFIG_ARGS=()
	MPI_CONFIG_ENV=()
	case ${1#vm-} in
	ucx-rc)
		# rc_verbs needs a transport for its wire-up messages; without
		# ud_verbs as "aux" UCX fails with "no auxiliary transport".
		MPI_CONFIG_ARGS=(--mca pml ucx --mca btl "^openib")
		MPI_CONFIG_ENV=("UCX_TLS=rc_verbs,ud_verbs:aux,self")
		;;
	ucx-ud)
		MPI_CONFIG_ARGS=(--mca pml ucx --mca btl "^openib")
		MPI_CONFIG_ENV=("UCX_TLS=ud_verbs,self")
		;;
	openib)
		# Without allow_ib openib refuses InfiniBand ports (UCX is
		# meant for them).  Our device is in no device-params table,
		# so openib's receive queues are shared ones only, without
		# per-peer credits: a burst can meet an empty SRQ and wait out
		# openib's default RNR timer, 61 ms (docs/decisions.md).  A
		# 10 us timer lets the sender retry as soon as openib has
		# reposted (measured, quick sizes: small-message bandwidth
		# 1.8-2.2x TCP instead of 0.25x at the sizes that hit RNR;
		# per-peer queues instead gave 0.7x).
		MPI_CONFIG_ARGS=(--mca pml ob1 --mca btl "openib,self"
			--mca btl_openib_allow_ib 1
			--mca btl_openib_warn_no_device_params_found 0
			--mca btl_openib_ib_min_rnr_timer 1)
		;;
	tcp)
		MPI_CONFIG_ARGS=(--mca pml ob1 --mca btl "tcp,self")
		# The tcp btl skips loopback unless told to use it; between
		# VMs, vhca-cluster names the bridge's subnet.
		mpi_config_in_vm "$1" || MPI_CONFIG_ARGS+=(--mca btl_tcp_if_include lo)
		;;
	vader)
		MPI_CONFIG_ARGS=(--mca pml ob1 --mca btl "vader,self")
		;;
	*)
		echo "mpi-lib: unknown configuration '$1'" >&2
		return 1
		;;
	esac
	if mpi_config_uses_vhca "$1"; then
		MPI_CONFIG_ENV+=("RDMAV_DRIVERS=$MPI_BUILD/providers/vhca/libvhca")
		if [[ -n ${MPI_RANK_PRELOAD:-} ]]; then
			MPI_CONFIG_ENV+=("LD_PRELOAD=$MPI_RANK_PRELOAD"
				"ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}")
			# Open MPI's memory patcher rewrites malloc/munmap
			# entry points that ASan intercepts: under ASan the
			# openib ranks die in a wild jump without this.
			MPI_CONFIG_ARGS+=(--mca memory "^patcher")
		fi
	fi
}

# mpi_rank_prefix CONFIG VF: RANK_PREFIX = what goes between "-np 1" and
# the program for the rank that owns VF.  The only place that decides how
# a rank reaches its VF: a guest that sees only that VF, or (MPI_GUESTS=0)
# a host process told which device to use.
mpi_rank_prefix() {
	local config=$1 vf=$2
	RANK_PREFIX=()
	mpi_config_uses_vhca "$config" || return 0
	if [[ ${MPI_GUESTS:-1} == 1 ]]; then
		# --net host: a rank reaches its local PMIx server over TCP
		# loopback.  MPI_SHARE: where the ranks write (their
		# filesystem is read-only otherwise).
		RANK_PREFIX=("$MPI_BUILD/tools/vhca-guest" --vf "$vf"
			--run-dir "$MPI_RUN_DIR" --net host
			${MPI_SHARE:+--share "$MPI_SHARE"} --)
	else
		RANK_PREFIX=(-x "SYSFS_PATH=$MPI_RUN_DIR/sys"
			-x "UCX_NET_DEVICES=vhca0_vf$vf:1"
			-x "OMPI_MCA_btl_openib_if_include=vhca0_vf$vf:1")
	fi
}

# mpi_run CONFIG NRANKS LOG PROGRAM ARGS...: runs PROGRAM on NRANKS ranks
# (rank r on VF r for vhca configurations) with mpirun's MPMD form; output
# goes to LOG (and, with MPI_TEE=1, to stdout too).  Returns mpirun's
# status (124 if it timed out).
mpi_run() {
	local config=$1 nranks=$2 log=$3 status=0 r
	shift 3
	local cmd=(mpirun --oversubscribe --bind-to none
		--mca orte_base_help_aggregate 0)
	local env=() e
	mpi_config_args "$config" || return 2
	cmd+=("${MPI_CONFIG_ARGS[@]}")
	for e in "${MPI_CONFIG_ENV[@]}"; do
		env+=(-x "$e")
	done
	# More busy-polling ranks than cores starve each other and the
	# engine; yielding when idle keeps collectives moving.
	if ((nranks > $(nproc))); then
		cmd+=(--mca mpi_yield_when_idle 1)
	fi
	for ((r = 0; r < nranks; r++)); do
		((r > 0)) && cmd+=(:)
		mpi_rank_prefix "$config" "$r"
		cmd+=(-np 1 "${env[@]}" "${RANK_PREFIX[@]}" "$@")
	done
	if mpi_config_in_vm "$config"; then
		# One app context: the VMs are the hosts, one slot each, so
		# no MPMD form and no --oversubscribe (more ranks than VMs
		# must fail at once).
		# --host: orted only in the VMs the ranks use (rank r in VM r).
		local hosts=vhca0-vf0
		for ((r = 1; r < nranks; r++)); do
			hosts+=,vhca0-vf$r
		done
		cmd=("$MPI_BUILD/tools/vhca-cluster" --dir "$MPI_CLUSTER_DIR" mpirun
			-np "$nranks" --host "$hosts" --bind-to none --mca orte_base_help_aggregate 0
			"${MPI_CONFIG_ARGS[@]}" "${env[@]}")
		((nranks > 2)) && cmd+=(--mca mpi_yield_when_idle 1)
		cmd+=("$@")
	fi
	echo "+ ${cmd[*]}" >"$log"
	# Own session: whatever mpirun leaves behind (a rank it could not
	# reap after a timeout, say) is found by session id and ended.
	if [[ ${MPI_TEE:-0} == 1 ]]; then
		setsid timeout -k 10 "${MPI_TIMEOUT:-600}" "${cmd[@]}" \
			> >(tee -a "$log") 2>&1 &
	else
		setsid timeout -k 10 "${MPI_TIMEOUT:-600}" "${cmd[@]}" \
			>>"$log" 2>&1 &
	fi
	MPI_SESSION=$!
	wait "$MPI_SESSION" || status=$?
	mpi_end_session
	return "$status"
}

# mpi_end_session: ends every process left in the session of the last
# mpi_run (by pid: SIGTERM, then SIGKILL after 5 s).  Also for EXIT traps.
MPI_SESSION=""
mpi_end_session() {
	[[ -n $MPI_SESSION ]] || return 0
	local sid=$MPI_SESSION pids tries
	MPI_SESSION=""
	for tries in $(seq 50) kill; do
		pids=$(ps -e -o pid=,sid= | awk -v s="$sid" '$2 == s { print $1 }')
		[[ -n $pids ]] || break
		if [[ $tries == 1 ]]; then
			# shellcheck disable=SC2086
			kill -TERM $pids 2>/dev/null
		elif [[ $tries == kill ]]; then
			# shellcheck disable=SC2086
			kill -KILL $pids 2>/dev/null
		fi
		sleep 0.1
	done
	wait "$sid" 2>/dev/null
	return 0
}

# mpi_vm_fetch_csv CSV: appends the rows rank 0 wrote in its VM (vm0, at
# MPI_VM_CSV) to CSV, without a second header, and removes them there.
mpi_vm_fetch_csv() {
	local csv=$1 rows
	rows=$("$MPI_BUILD/tools/vhca-cluster" --dir "$MPI_CLUSTER_DIR" exec 0 \
		"cat $MPI_VM_CSV 2>/dev/null; rm -f $MPI_VM_CSV") || return 1
	[[ -n $rows ]] || return 1
	if [[ -s $csv ]]; then
		tail -n +2 <<<"$rows" >>"$csv"
	else
		echo "$rows" >"$csv"
	fi
}
