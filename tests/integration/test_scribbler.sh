#!/bin/bash
# Hostile guests beside a well-behaved pair.  Scribblers (scribbler.c) on
# vhca0_vf2 and on vhca0_vf0 (the pair's own VF, another process) post
# garbage work requests and write random bytes over their own rings and
# doorbell records (every writable memfd mapping), round after round in
# forked children, while `datapath_test peer` streams verified RC
# RDMA writes and sends between vhca0_vf0 and vhca0_vf1.  The pair must
# finish with every byte correct, the daemon must survive, free the
# scribblers' resources, keep serving, and exit 0 on SIGTERM.
#
# Environment: VHCA_SCRIBBLE_ITERS messages in the stream (default 20000).
source "$(dirname "$0")/../lib.sh"

DT=$VHCA_BUILD/tests/datapath_test
SCRIB=$VHCA_BUILD/tests/scribbler
ITERS=${VHCA_SCRIBBLE_ITERS:-20000}
vhca_start --num-vfs 3

scribs=()
for dev in vhca0_vf2 vhca0_vf0; do
	"$SCRIB" "$dev" 600 >"$RUN_DIR/scribbler.$dev.log" 2>&1 &
	scribs+=($!)
	bg_track $!
done
sleep 1 # the scribblers are at work before the pair starts

dir=$RUN_DIR/pair
mkdir -p "$dir"
timeout -k 5 300 "$DT" peer b vhca0_vf1 "$dir" 0 >"$dir/b.log" 2>&1 &
bpid=$!
bg_track "$bpid"
rc=0
timeout -k 5 300 "$DT" peer a vhca0_vf0 "$dir" "$ITERS" >"$dir/a.log" 2>&1 || rc=$?
brc=0
wait "$bpid" || brc=$?
cat "$dir/a.log" "$dir/b.log"
kill -0 "$VHCAD_PID" 2>/dev/null || fail "vhcad died under the scribblers"
((rc == 0 && brc == 0)) || fail "the pair failed beside the scribblers (a $rc, b $brc)"
grep -q "$ITERS messages verified, 0 bad" "$dir/a.log" || fail "pair a: not all verified"
grep -q " 0 bad" "$dir/b.log" || fail "pair b: bad messages"
pass "pair: $ITERS messages verified beside the scribblers"

for i in "${!scribs[@]}"; do
	kill -TERM "${scribs[$i]}"
	src=0
	wait "${scribs[$i]}" || src=$?
	((src == 0)) || fail "scribbler ${scribs[$i]} exit $src: $(cat "$RUN_DIR"/scribbler.*.log)"
done
cat "$RUN_DIR"/scribbler.*.log
grep -h 'rounds' "$RUN_DIR"/scribbler.*.log | grep -q ' 0 rounds' &&
	fail "a scribbler did no round"
pass "scribblers done"

kill -0 "$VHCAD_PID" 2>/dev/null || fail "vhcad died"
wait_until_idle "after the scribblers" vhca0_vf0 vhca0_vf1 vhca0_vf2
pass "scribblers' resources freed"

# Still serving: the tools and a fresh stream.
tool ibv_devinfo -d vhca0_vf2 | grep -q PORT_ACTIVE || fail "ibv_devinfo after"
dir=$RUN_DIR/after
mkdir -p "$dir"
timeout -k 5 120 "$DT" peer b vhca0_vf2 "$dir" 0 >"$dir/b.log" 2>&1 &
bpid=$!
bg_track "$bpid"
timeout -k 5 120 "$DT" peer a vhca0_vf0 "$dir" 300 >"$dir/a.log" 2>&1 ||
	fail "stream after: $(cat "$dir/a.log" "$dir/b.log")"
wait "$bpid" || fail "stream after (b): $(cat "$dir/b.log")"
pass "the device still serves"

grep -E 'AddressSanitizer|runtime error|segfault' "$RUN_DIR/vhcad.log" &&
	fail "vhcad log shows memory errors"
vhca_stop || fail "vhcad exit status after the scribblers"
pass "vhcad exits 0"
