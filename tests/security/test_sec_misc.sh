#!/bin/bash
# Security finding 11: the small ones.  An open command file holds its VF
# and says so; an unprivileged UD QP may not take a controlled Q_Key
# (Linux asks for CAP_NET_RAW); vhcactl refuses a plan with a NUL byte,
# a directory as plan and an empty P_Key in a list, and changes nothing.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/sec_lib.sh"

VHCACTL=$VHCA_BUILD/tools/vhcactl
vhca_start --num-vfs 2

# An open without GET_CONTEXT holds the VF, and the status says so.
# vhca0_vf0's own file, by its ibdev (uverbs numbers depend on what
# other daemons hold, and ls sorts uverbs10 before uverbs8).
cmd=$(dirname "$(grep -lx vhca0_vf0 "$SYSFS_PATH"/class/infiniband_verbs/uverbs*/ibdev)")/vhca_cmd
exec 7<>"$cmd"
show=$("$VHCACTL" show 2>&1)
grep -A12 "vhca0_vf0" <<<"$show" | grep -q "holder.*in use" ||
	fail "an open command file shows as free: $show"
if echo 0 >"$SYSFS_PATH/class/infiniband/vhca0/device/sriov_numvfs" 2>/dev/null; then
	fail "VFs removed under an open command file"
fi
exec 7>&-
wait_until_idle "after closing the command file"
pass "an open command file holds its VF and vhcactl says it is in use"

# Controlled Q_Keys: root may, an unprivileged user may not.
chmod 755 "$RUN_DIR"
lib=$RUN_DIR/lib
mkdir -p "$lib"
cp "$VHCA_BUILD/providers/vhca/libvhca-rdmav34.so" "$ATTACKS" "$lib/"
chmod -R a+rX "$lib"
out=$(RDMAV_DRIVERS=$lib/libvhca "$lib/attacks" qkey vhca0_vf0 0x80000001)
[[ $out == "qkey: 0" ]] || fail "root and a controlled Q_Key: $out"
out=$(RDMAV_DRIVERS=$lib/libvhca setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$lib/attacks" qkey vhca0_vf0 0x80000001)
[[ $out == "qkey: Operation not permitted" ]] || fail "nobody and a controlled Q_Key: $out"
out=$(RDMAV_DRIVERS=$lib/libvhca setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$lib/attacks" qkey vhca0_vf0 0x11111111)
[[ $out == "qkey: 0" ]] || fail "nobody and a plain Q_Key: $out"
pass "controlled Q_Keys need CAP_NET_RAW"

# vhcactl apply: bad plans change nothing.
guid() { sysfs_read "class/infiniband/vhca0/device/sriov/0/node"; }
before=$(guid)
printf 'vf 0 node_guid 02:00:00:00:00:00:00:77\0 garbage\n' >"$RUN_DIR/nul.plan"
! "$VHCACTL" apply "$RUN_DIR/nul.plan" 2>"$RUN_DIR/nul.err" ||
	fail "a plan with a NUL byte applied"
grep -q "NUL" "$RUN_DIR/nul.err" || fail "no word of the NUL byte: $(cat "$RUN_DIR/nul.err")"
mkdir "$RUN_DIR/dir.plan"
! "$VHCACTL" apply "$RUN_DIR/dir.plan" 2>/dev/null ||
	fail "a directory applied as a plan"
! "$VHCACTL" vf 0 set pkeys 0xffff,,0x8001 2>/dev/null ||
	fail "pkeys with an empty element accepted"
[[ $(guid) == "$before" ]] || fail "a refused plan changed the node GUID"
pass "vhcactl refuses NUL bytes, directories and empty P_Keys, changing nothing"
vhca_stop_within 20
