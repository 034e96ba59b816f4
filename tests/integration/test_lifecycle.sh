#!/bin/bash
# Daemon lifecycle: --stop and SIGTERM clean up; after SIGKILL the next
# start recovers; two daemons never share uverbs numbers or a run dir.
source "$(dirname "$0")/../lib.sh"

vhca_start --num-vfs 2
nodes=$(our_nodes)
[[ $(wc -w <<<"$nodes") == 3 ]] || fail "expected 3 nodes: $nodes"
for n in $nodes; do
	[[ $(stat -c '%t:%T' /dev/infiniband/uverbs$n) == 1:7 ]] ||
		fail "uverbs$n is not the 1:7 marker"
done

# A second daemon on the same run dir is refused at once.
"$VHCAD" --run-dir "$RUN_DIR" --foreground >"$RUN_DIR/second.log" 2>&1 &&
	fail "second daemon on the same run dir started"
grep -q "already running" "$RUN_DIR/second.log" || fail "no clear message"

# Another daemon elsewhere gets other numbers.
OTHER=$(mktemp -d /tmp/vhca-test.XXXXXX)
EXTRA_RUN_DIRS+=("$OTHER")
"$VHCAD" --run-dir "$OTHER" --num-vfs 2 || fail "second daemon (daemonized)"
other_nodes=$(cat "$OTHER/nodes")
for n in $other_nodes; do
	grep -qw "$n" <<<"$nodes" && fail "uverbs$n claimed twice"
done
SYSFS_PATH=$OTHER/sys tool ibv_devices | grep -q vhca0_vf1 ||
	fail "second daemon's devices"
"$VHCAD" --stop --run-dir "$OTHER" || fail "--stop"
is_mounted "$OTHER/sys" && fail "--stop left the mount"
for n in $other_nodes; do
	[[ -e /dev/infiniband/uverbs$n ]] && fail "--stop left uverbs$n"
done
rm -rf "$OTHER"
pass "two daemons, distinct numbers; --stop cleans up"

# SIGKILL leaves the mount and nodes; the next start recovers.
kill -KILL "$VHCAD_PID"
wait "$VHCAD_PID" 2>/dev/null || true
VHCAD_PID=""
vhca_start --num-vfs 2
tool ibv_devices | grep -q vhca0_vf1 || fail "devices after recovery"
for n in $nodes; do
	if ! grep -qw "$n" <<<"$(our_nodes)" && [[ -e /dev/infiniband/uverbs$n ]]; then
		fail "stale uverbs$n left behind"
	fi
done
pass "restart after SIGKILL"

nodes=$(our_nodes)
vhca_stop || fail "SIGTERM exit status"
is_mounted "$RUN_DIR/sys" && fail "SIGTERM left the mount"
for n in $nodes; do
	[[ -e /dev/infiniband/uverbs$n ]] && fail "SIGTERM left uverbs$n"
done
pass "SIGTERM unmounts and removes nodes"

"$VHCAD" --stop --run-dir "$RUN_DIR" 2>/dev/null && fail "--stop of nothing"
"$VHCAD" --num-vfs 1000 --run-dir "$RUN_DIR" 2>/dev/null &&
	fail "--num-vfs 1000 accepted"
"$VHCAD" --bogus 2>/dev/null && fail "unknown option accepted"
pass "bad command lines refused"
