#!/bin/bash
# Teardown under traffic and RESIZE_CQ (teardown_test.c): an MR
# deregistered, a QP destroyed, while a peer process streams at it; CQs
# busy while used; CQs resized with completions pending and under traffic.
# Each sub-test runs in its own process under a timeout; afterwards
# the daemon holds nothing for the test and stops cleanly.
#
# Environment: VHCA_TEARDOWN_SUBTESTS="dereg_write ..." runs a subset;
# VHCA_SEED fixes the random seed; VHCA_RACE_ITERS the dereg_race rounds.
source "$(dirname "$0")/../lib.sh"

TT=$VHCA_BUILD/tests/teardown_test
vhca_start --num-vfs 2

read -r -a only <<<"${VHCA_TEARDOWN_SUBTESTS:-}"
run_subtests "$TT" 180 "${only[@]}"
