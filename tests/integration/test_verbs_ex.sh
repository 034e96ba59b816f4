#!/bin/bash
# The extended verbs (verbs_ex_test.c).  Extended CQs: ibv_create_cq_ex,
# the start/next/end poll API and its accessors on an RC exchange between
# two VFs, completion timestamps against the clock read around the
# traffic, the device clock (ibv_query_rt_values_ex), and the flags vhca
# must refuse; QP create flags (0 accepted, the rest EOPNOTSUPP); device
# memory; ODP.  Then ibv_rereg_mr (mr_rereg_test.c): access, range and PD
# changed under a peer's RDMA, the refusals, and a move under a stream of
# WRITEs.  Then the async events of QPs against their destroy
# (qp_events_test.c).  Each sub-test in its own process; afterwards the
# daemon holds nothing.
source "$(dirname "$0")/../lib.sh"

vhca_start --num-vfs 2
run_subtests "$VHCA_BUILD/tests/verbs_ex_test" 60
vhca_start --num-vfs 2
run_subtests "$VHCA_BUILD/tests/mr_rereg_test" 60
vhca_start --num-vfs 2
run_subtests "$VHCA_BUILD/tests/qp_events_test" 60
# UD multicast (mcast_test.c): vhca0_vf2 in another partition.
vhca_start --num-vfs 3
"$VHCA_BUILD/tools/vhcactl" vf 2 set pkeys 0x8002 || fail "vhcactl vf 2 set pkeys"
run_subtests "$VHCA_BUILD/tests/mcast_test" 60
