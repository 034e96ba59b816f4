#!/bin/bash
# The verbs-level data-path tests (datapath_test.c): one process opens
# vhca0_vf0 and vhca0_vf1 and connects QPs between them with modify_qp.
# Each sub-test runs in its own process (a crash or REQUIRE in one does not
# hide the others) under a timeout; afterwards the daemon holds nothing for
# the test and stops cleanly.
#
# Environment: VHCA_DATAPATH_SUBTESTS="rc_ops srq ..." runs a subset;
# VHCA_SEED fixes the random seed (printed by each run).
source "$(dirname "$0")/../lib.sh"

DT=$VHCA_BUILD/tests/datapath_test
vhca_start --num-vfs 2

read -r -a only <<<"${VHCA_DATAPATH_SUBTESTS:-}"
run_subtests "$DT" 120 "${only[@]}"
