#!/bin/bash
# Security finding 1: DMA must not follow execve.  An unprivileged owner
# registers memory, keeps its command file open in a forked child and
# execs a setuid-root program that holds a secret at the same address; a
# peer on another VF then RDMA READs and WRITEs that rkey.  The device
# binds transfers to the registering address space, so both fail and the
# secret is neither seen nor changed.
source "$(dirname "$0")/../lib.sh"

vhca_start --num-vfs 2

# Everything the unprivileged owner runs must be reachable by it.
chmod 755 "$RUN_DIR"
lib=$RUN_DIR/lib
mkdir -p "$lib"
cp "$VHCA_BUILD/providers/vhca/libvhca-rdmav34.so" "$lib/"
cp "$VHCA_BUILD/tests/security/exec_attack" "$lib/exec_attack"
install -o root -g root -m 4755 "$VHCA_BUILD/tests/security/exec_attack" \
	"$lib/setuid_target"
chmod -R a+rX "$lib"
dir=$RUN_DIR/exec
mkdir -m 1777 "$dir"

RDMAV_DRIVERS=$lib/libvhca timeout -k 5 60 "$lib/exec_attack" peer vhca0_vf1 "$dir" \
	>"$RUN_DIR/peer.log" 2>&1 &
peer=$!
bg_track "$peer"
RDMAV_DRIVERS=$lib/libvhca timeout -k 5 60 setpriv --reuid=65534 --regid=65534 \
	--clear-groups "$lib/exec_attack" owner vhca0_vf0 "$dir" "$lib/setuid_target" \
	>"$RUN_DIR/owner.log" 2>&1 &
owner=$!
bg_track "$owner"

rc=0
wait "$peer" || rc=$?
cat "$RUN_DIR/peer.log"
grep -q "euid 0" "$dir/target.ready" 2>/dev/null ||
	fail "the target did not run setuid root: $(cat "$RUN_DIR/owner.log" "$dir/target.ready" 2>&1)"
((rc != 2)) || fail "set-up failed: $(cat "$RUN_DIR/owner.log")"
((rc == 0)) || fail "the peer reached the setuid program's memory"
pass "READ and WRITE after the owner's exec are refused; the secret is intact"

wait "$owner" 2>/dev/null || true
wait_until_idle "after the attack"
vhca_stop || fail "vhcad exit status"
