#!/bin/bash
# VF provisioning through the PF: sysfs writes (device/sriov/<vf>/...),
# vhcactl (vf set, show, apply, link-set-guid over rtnetlink to
# DIR/mgmt.sock), what libibverbs then sees on the VF, the async events
# every open context of the VF gets, and re-created VFs (defaults again).
source "$(dirname "$0")/../lib.sh"

VHCACTL="$VHCA_BUILD/tools/vhcactl"
PKEY_QUERY="$VHCA_BUILD/tests/pkey_query"

vhca_start --num-vfs 3
sriov=$SYSFS_PATH/class/infiniband/vhca0/device/sriov
ib=$SYSFS_PATH/class/infiniband

# write_attr FILE VALUE: one write(); prints the error of a refused write.
write_attr() { (printf '%s' "$2" >"$1") 2>&1; }
# refused FILE VALUE: the write fails with EINVAL and FILE is unchanged.
refused() {
	local before err
	before=$(cat "$1")
	err=$(write_attr "$1" "$2") && fail "'$2' > $1 accepted"
	grep -q "Invalid argument" <<<"$err" || fail "'$2' > $1: $err"
	[[ $(cat "$1") == "$before" ]] || fail "'$2' changed $1"
}
# sysfs_guid "11:22:..." -> "1122:3344:..." (node_guid style)
sysfs_guid() { local g=${1//:/}; echo "${g:0:4}:${g:4:4}:${g:8:4}:${g:12:4}"; }
vf_state() { sysfs_read "class/infiniband/vhca0_vf$1/ports/1/state"; }

# The defaults, to compare re-created VFs with (numvfs 0 -> N, at the end).
default_ids=$(cat "$sriov/1/node" "$sriov/1/port" "$sriov/1/policy" \
	"$sriov/1/pkeys/0" "$sriov/1/pkeys/1")

# ---- sysfs writes -------------------------------------------------------
[[ $(stat -c %a "$sriov/0/node") == 644 ]] || fail "node not 0644"
[[ $(stat -c %a "$sriov/0/pkeys/3") == 644 ]] || fail "pkeys/3 not 0644"

G1=02:00:00:00:00:00:aa:01
echo "$G1" >"$sriov/0/node" || fail "node write with newline"
[[ $(cat "$sriov/0/node") == "$G1" ]] || fail "sriov/0/node"
[[ $(sysfs_read class/infiniband/vhca0_vf0/node_guid) == $(sysfs_guid $G1) ]] ||
	fail "node_guid not updated"
G2=02:00:00:00:00:00:bb:01
write_attr "$sriov/0/port" "$G2" >/dev/null || fail "port write without newline"
[[ $(sysfs_read class/infiniband/vhca0_vf0/ports/1/gids/0) == "fe80:0000:0000:0000:$(sysfs_guid $G2)" ]] ||
	fail "gids/0 not updated: $(sysfs_read class/infiniband/vhca0_vf0/ports/1/gids/0)"
pass "GUID writes visible at once in node_guid and gids/0"

# (An empty printf makes no write(); a lone newline is the empty value.)
for bad in $'\n' "x" "02:00:00:00:00:00:aa" "02:00:00:00:00:00:aa:1" \
	"02:00:00:00:00:00:aa:011" "02-00-00-00-00-00-aa-01" \
	"0200:0000:0000:aa01" "02:00:00:00:00:00:aa:0g" " 02:00:00:00:00:00:aa:01" \
	"02:00:00:00:00:00:aa:01 " "00:00:00:00:00:00:00:00" \
	"ff:ff:ff:ff:ff:ff:ff:ff" $'02:00:00:00:00:00:aa:01\n\n'; do
	refused "$sriov/0/node" "$bad"
	refused "$sriov/0/port" "$bad"
done
# Duplicates: another VF's node or port GUID, the PF's GUIDs.
refused "$sriov/1/node" "$G1"
refused "$sriov/1/port" "$G2"
pf_node=$(cat "$ib/vhca0/node_guid")
pf_node=${pf_node//:/}
pf_node=$(sed 's/../&:/g; s/:$//' <<<"$pf_node")
refused "$sriov/2/node" "$pf_node"
pass "malformed and duplicate GUIDs refused with EINVAL, nothing changed"

for bad in $'\n' "up" "UP" "Up " "Upp" "Down\n" "0" "Follow,Up"; do
	refused "$sriov/1/policy" "$bad"
done
echo Down >"$sriov/1/policy" || fail "policy Down"
[[ $(vf_state 1) == "1: DOWN" ]] || fail "Down: state $(vf_state 1)"
[[ $(sysfs_read class/infiniband/vhca0_vf1/ports/1/phys_state) == "3: Disabled" ]] ||
	fail "Down: phys_state"
tool ibv_devinfo -d vhca0_vf1 | grep -q "PORT_DOWN" || fail "ibv_devinfo: not PORT_DOWN"
write_attr "$sriov/1/policy" Up >/dev/null || fail "policy Up"
[[ $(vf_state 1) == "4: ACTIVE" ]] || fail "Up: state $(vf_state 1)"
tool ibv_devinfo -d vhca0_vf1 | grep -q "PORT_ACTIVE" || fail "ibv_devinfo: not ACTIVE"
echo Follow >"$sriov/1/policy" || fail "policy Follow"
[[ $(cat "$sriov/1/policy") == Follow && $(vf_state 1) == "4: ACTIVE" ]] ||
	fail "Follow"
grep -q "vhca0_vf1: PORT_ERR" "$RUN_DIR/vhcad.log" &&
	grep -q "vhca0_vf1: PORT_ACTIVE" "$RUN_DIR/vhcad.log" &&
	grep -q "vhca0_vf0: GID_CHANGE" "$RUN_DIR/vhcad.log" ||
	fail "dev_changed hook not called"
pass "policy Down/Up/Follow drives the VF's port state (ibv_devinfo)"

echo 0x8001 >"$sriov/2/pkeys/1" || fail "pkey 0x8001"
write_attr "$sriov/2/pkeys/2" 7002 >/dev/null || fail "pkey 7002"
[[ $(sysfs_read class/infiniband/vhca0_vf2/ports/1/pkeys/1) == 0x8001 ]] ||
	fail "ports/1/pkeys/1"
for bad in $'\n' "0x" "0x8000" "8000" "12345" "0x1g" "-1" "nonE" "0x8001 " \
	"0001" "0x7fff"; do
	# 0001 duplicates 0x8001's partition, 0x7fff the default's (0xffff)
	refused "$sriov/2/pkeys/3" "$bad"
done
refused "$sriov/2/pkeys/3" "0x8001"	# exact duplicate
out=$("$PKEY_QUERY" vhca0_vf2) || fail "pkey_query"
grep -qx "1 0x8001" <<<"$out" || fail "ibv_query_pkey 1: $out"
grep -qx "2 0x7002" <<<"$out" || fail "ibv_query_pkey 2: $out"
echo none >"$sriov/2/pkeys/2" || fail "pkey none"
write_attr "$sriov/2/pkeys/1" 0x0000 >/dev/null || fail "pkey 0x0000"
[[ $(sysfs_read class/infiniband/vhca0_vf2/ports/1/pkeys/1) == 0x0000 ]] ||
	fail "pkey not cleared"
[[ $("$PKEY_QUERY" vhca0_vf2 | grep -c '^[0-9]') == 1 ]] || fail "clear"
grep -q "vhca0_vf2: PKEY_CHANGE" "$RUN_DIR/vhcad.log" || fail "PKEY_CHANGE"
pass "P_Keys: writes, malformed/duplicates refused, visible to ibv_query_pkey"

# ---- vhcactl vf set / show ----------------------------------------------------
G3=02:00:00:00:00:00:cc:01
G4=02:00:00:00:00:00:cc:02
"$VHCACTL" vf 2 set node_guid $G3 port_guid $G4 policy Down pkeys 0xffff,0x8005 ||
	fail "vhcactl vf set"
show=$("$VHCACTL" show) || fail "vhcactl show"
vf2=$(sed -n '/^vhca0_vf2 /,/^vhca0_vf3 /p' <<<"$show")
grep -q "node_guid  $G3" <<<"$vf2" || fail "show node: $vf2"
grep -q "port_guid  $G4" <<<"$vf2" || fail "show port: $vf2"
grep -q "policy     Down" <<<"$vf2" || fail "show policy: $vf2"
grep -q "1: DOWN" <<<"$vf2" || fail "show state: $vf2"
grep -q "\[0\]=0xffff \[1\]=0x8005" <<<"$vf2" || fail "show pkeys: $vf2"
grep -q "holder     0 context" <<<"$vf2" || fail "show holder: $vf2"
pf_show=$(sed -n '/^vhca0 /,/^vhca0_vf0 /p' <<<"$show")
grep -q "node_guid  $pf_node$" <<<"$pf_show" || fail "show PF node: $pf_show"
"$VHCACTL" vf 2 set pkeys 0x8005 || fail "pkeys replace"
[[ $(sysfs_read class/infiniband/vhca0_vf2/ports/1/pkeys/0) == 0x8005 &&
   $(sysfs_read class/infiniband/vhca0_vf2/ports/1/pkeys/1) == 0x0000 ]] ||
	fail "pkeys replaced the table"
"$VHCACTL" vf 2 set pkeys none || fail "pkeys none"
[[ $(sysfs_read class/infiniband/vhca0_vf2/ports/1/pkeys/0) == 0x0000 ]] ||
	fail "pkeys none did not empty the table"
"$VHCACTL" vf 2 set pkeys 0x8005 || fail "pkeys back"
"$VHCACTL" counters vf 2 | grep -q "port_rcv_constraint_errors *0" ||
	fail "counters"
"$VHCACTL" counters | grep -q "qkey_violations *0" || fail "hw_counters"
pass "vhcactl vf set, show, counters"

st=0; "$VHCACTL" vf 2 set node_guid 1:2 2>/dev/null || st=$?
[[ $st == 2 ]] || fail "bad GUID exit $st"
st=0; "$VHCACTL" vf 2 set policy up 2>/dev/null || st=$?
[[ $st == 2 ]] || fail "bad policy exit $st"
st=0; "$VHCACTL" vf x set policy Up 2>/dev/null || st=$?
[[ $st == 2 ]] || fail "bad vf exit $st"
st=0; "$VHCACTL" bogus 2>/dev/null || st=$?
[[ $st == 2 ]] || fail "bad command exit $st"
st=0; err=$("$VHCACTL" vf 9 set policy Up 2>&1) || st=$?
[[ $st == 1 ]] && grep -q "no VF 9" <<<"$err" || fail "vf 9: $st $err"
st=0; "$VHCACTL" vf 1 set node_guid $G3 2>/dev/null || st=$?
[[ $st == 1 && $(cat "$sriov/1/node") != "$G3" ]] || fail "dup via vhcactl"
pass "vhcactl usage errors exit 2, failures 1"

# ---- apply -------------------------------------------------------------------------
snapshot() {
	local vf i
	for vf in 0 1 2; do
		cat "$sriov/$vf/node" "$sriov/$vf/port" "$sriov/$vf/policy"
		for i in 0 1 2 3; do cat "$sriov/$vf/pkeys/$i"; done
	done
}
before=$(snapshot)
plan=$RUN_DIR/plan.txt
cat >"$plan" <<PLAN
# a plan: one VF per line
vf 0 node_guid 02:00:00:00:00:01:00:01 port_guid 02:00:00:00:00:01:00:02 policy Up pkey 0xffff 0x8010

vf 1 node_guid 02:00:00:00:00:01:01:01 policy Down pkey 0x8010 0x8011   # trailing comment
vf 2 port_guid 02:00:00:00:00:01:02:02 pkey 0x8000
PLAN
st=0; err=$("$VHCACTL" apply "$plan" 2>&1) || st=$?
[[ $st == 1 ]] || fail "bad plan exit $st"
grep -q "^$plan:5: " <<<"$err" || fail "bad line not named: $err"
[[ $(snapshot) == "$before" ]] || fail "bad plan changed something"
# A plan whose lines are each fine but clash with each other.
cat >"$plan" <<PLAN
vf 0 node_guid 02:00:00:00:00:01:00:01
vf 1 port_guid 02:00:00:00:00:01:00:01
PLAN
st=0; err=$("$VHCACTL" apply "$plan" 2>&1) || st=$?
[[ $st == 1 ]] && grep -q "^$plan:[12]: " <<<"$err" || fail "clash: $st $err"
[[ $(snapshot) == "$before" ]] || fail "clashing plan changed something"
pass "apply: a bad line is named (FILE:LINE) and nothing changes"

cat >"$plan" <<PLAN
# the good plan
vf 0 node_guid 02:00:00:00:00:01:00:01 port_guid 02:00:00:00:00:01:00:02 policy Up pkey 0xffff 0x8010
vf 1 node_guid 02:00:00:00:00:01:01:01 policy Down pkey 0x8010 0x8011
vf 2 port_guid 02:00:00:00:00:01:02:02 policy Follow pkey 0x7fff
PLAN
"$VHCACTL" apply "$plan" >/dev/null || fail "good plan"
show=$("$VHCACTL" show)
vf0=$(sed -n '/^vhca0_vf0 /,/^vhca0_vf1 /p' <<<"$show")
vf1=$(sed -n '/^vhca0_vf1 /,/^vhca0_vf2 /p' <<<"$show")
vf2=$(sed -n '/^vhca0_vf2 /,$p' <<<"$show")
grep -q "node_guid  02:00:00:00:00:01:00:01" <<<"$vf0" || fail "plan vf0: $vf0"
grep -q "port_guid  02:00:00:00:00:01:00:02" <<<"$vf0" || fail "plan vf0 port"
grep -q "\[0\]=0xffff \[1\]=0x8010$" <<<"$vf0" || fail "plan vf0 pkeys: $vf0"
grep -q "policy     Down" <<<"$vf1" || fail "plan vf1 policy: $vf1"
grep -q "\[0\]=0x8010 \[1\]=0x8011$" <<<"$vf1" || fail "plan vf1 pkeys: $vf1"
grep -q "port_guid  02:00:00:00:00:01:02:02" <<<"$vf2" || fail "plan vf2: $vf2"
grep -q "pkeys      \[0\]=0x7fff$" <<<"$vf2" || fail "plan vf2 pkeys: $vf2"
grep -q "policy     Follow" <<<"$vf2" || fail "plan vf2 policy"
pass "apply: the good plan applies; show prints it"

grep -q "mgmt: request (seq [0-9]*) applied" "$RUN_DIR/vhcad.log" ||
	fail "the plan did not go through mgmt.sock"

# Sequentially impossible (vf1 and vf2 swap node GUIDs): one plan message
# applies it; by sysfs writes the swap fails and the done writes roll back.
n1=$(cat "$sriov/1/node")
n2=$(cat "$sriov/2/node")
cat >"$plan" <<PLAN
vf 0 port_guid 02:00:00:00:00:03:00:02 policy Down
vf 1 node_guid $n2
vf 2 node_guid $n1
PLAN
before=$(snapshot)
st=0; err=$("$VHCACTL" --sysfs-only apply "$plan" 2>&1) || st=$?
[[ $st == 1 ]] && grep -q "rolled back" <<<"$err" || fail "sysfs swap: $st $err"
[[ $(snapshot) == "$before" ]] || fail "sysfs rollback left changes"
"$VHCACTL" apply "$plan" >/dev/null || fail "swap through mgmt.sock"
[[ $(cat "$sriov/1/node") == "$n2" && $(cat "$sriov/2/node") == "$n1" &&
   $(cat "$sriov/0/policy") == Down ]] || fail "swap not applied"
pass "apply: one atomic plan message via mgmt.sock; sysfs path rolls back"

# ---- rtnetlink (libnl-route-3 -> DIR/mgmt.sock) --------------------------------------
[[ $(stat -c %a "$RUN_DIR/mgmt.sock") == 600 ]] || fail "mgmt.sock mode"
"$VHCACTL" link-set-guid --run-dir "$RUN_DIR" vf 1 \
	node_guid 02:00:00:00:00:02:00:01 port_guid 02:00:00:00:00:02:00:02 ||
	fail "link-set-guid"
tool ibv_devinfo -d vhca0_vf1 | grep -q "node_guid:.*0200:0000:0002:0001" ||
	fail "ibv_devinfo: node_guid not set by rtnetlink"
"$PKEY_QUERY" vhca0_vf1 | grep -q "gid0 fe80:0000:0000:0000:0200:0000:0002:0002" ||
	fail "GID not set by rtnetlink"
st=0; err=$("$VHCACTL" link-set-guid --run-dir "$RUN_DIR" vf 0 \
	node_guid 02:00:00:00:00:02:00:01 2>&1) || st=$?
[[ $st == 1 ]] && grep -q "Invalid argument" <<<"$err" || fail "dup via rtnl: $err"
st=0; err=$("$VHCACTL" link-set-guid --run-dir "$RUN_DIR" vf 7 \
	node_guid 02:00:00:00:00:02:00:07 2>&1) || st=$?
[[ $st == 1 ]] && grep -q "No such device" <<<"$err" || fail "vf 7 via rtnl: $err"
"$VHCACTL" link-set-guid --run-dir "$RUN_DIR" vf 1 state enable ||
	fail "link state enable"
[[ $(cat "$sriov/1/policy") == Up && $(vf_state 1) == "4: ACTIVE" ]] ||
	fail "IFLA_VF_LINK_STATE enable"
st=0; "$VHCACTL" link-set-guid vf 1 node_guid 02:00:00:00:00:02:00:09 \
	2>/dev/null || st=$?
[[ $st == 2 ]] || fail "link-set-guid without target exit $st"
pass "rtnetlink RTM_SETLINK through mgmt.sock: GUIDs and link state"

# Root only: even if the socket's mode let others in, SO_PEERCRED does not.
if command -v setpriv >/dev/null; then
	chmod 0755 "$RUN_DIR"
	chmod 0666 "$RUN_DIR/mgmt.sock"
	st=0; err=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$VHCACTL" link-set-guid --run-dir "$RUN_DIR" vf 1 \
		node_guid 02:00:00:00:00:04:00:01 2>&1) || st=$?
	chmod 0600 "$RUN_DIR/mgmt.sock"
	chmod 0700 "$RUN_DIR"
	[[ $st == 1 ]] && grep -q "Operation not permitted" <<<"$err" ||
		fail "non-root request: $st $err"
	[[ $(cat "$sriov/1/node") != 02:00:00:00:00:04:00:01 ]] ||
		fail "non-root request applied"
	pass "mgmt.sock refuses non-root peers (EPERM)"
fi

# The same request to the real kernel: lo has no VFs, so rtnetlink parses
# it and answers EOPNOTSUPP (no ndo_set_vf_guid) - if netlink is usable here.
st=0; err=$("$VHCACTL" link-set-guid --pf-netdev lo vf 0 \
	node_guid 02:00:00:00:00:05:00:01 2>&1) || st=$?
if grep -q "Operation not supported" <<<"$err"; then
	pass "kernel rtnetlink takes the request (lo: EOPNOTSUPP)"
else
	echo "skip: kernel rtnetlink check ($st: $err)"
fi

# ---- async events: every open context of the VF hears every change -------------
# async_events (A: two contexts of vhca0_vf1) answers one command line at a
# time through two FIFOs; B (another process, one context) checks the
# first events on its own.  Changes are posted before the admin's write
# returns, so "quiet" windows are not a race.
EVENTS="$VHCA_BUILD/tests/async_events"
"$VHCACTL" vf 1 set policy Follow pkeys 0xffff || fail "vf 1 reset"
mkfifo "$RUN_DIR/ev.in" "$RUN_DIR/ev.out"
env LD_PRELOAD="$TOOL_PRELOAD" "$EVENTS" vhca0_vf1 2 <"$RUN_DIR/ev.in" >"$RUN_DIR/ev.out" \
	2>"$RUN_DIR/ev.err" &
EV_PID=$!
bg_track "$EV_PID"
exec 7>"$RUN_DIR/ev.in" 8<"$RUN_DIR/ev.out"
EV_ANSWER=""
ev_answer() {
	read -r -t 60 EV_ANSWER <&8 ||
		fail "async_events: no answer to '$1' ($(cat "$RUN_DIR/ev.err"))"
}
ev() {
	echo "$1" >&7
	ev_answer "$1"
	[[ $EV_ANSWER == ok* ]] || fail "async_events '$1': $EV_ANSWER"
}
ev_answer ready
[[ $EV_ANSWER == ready ]] || fail "async_events: $EV_ANSWER"

printf '%s\n' "event PORT_ERR" "event PORT_ACTIVE" "event GID_CHANGE" quit \
	>"$RUN_DIR/evb.script"
env LD_PRELOAD="$TOOL_PRELOAD" "$EVENTS" vhca0_vf1 1 <"$RUN_DIR/evb.script" >"$RUN_DIR/evb.out" 2>&1 &
EVB_PID=$!
bg_track "$EVB_PID"
for _ in $(seq 600); do
	grep -q ready "$RUN_DIR/evb.out" && break
	kill -0 "$EVB_PID" 2>/dev/null || break
	sleep 0.05
done
grep -q ready "$RUN_DIR/evb.out" || fail "second listener: $(cat "$RUN_DIR/evb.out")"

"$VHCACTL" vf 1 set policy Down || fail "policy Down"
ev "event PORT_ERR"
ev "state DOWN"
"$VHCACTL" vf 1 set policy Up || fail "policy Up"
ev "event PORT_ACTIVE"
ev "state ACTIVE"
G5=02:00:00:00:00:00:dd:05
"$VHCACTL" vf 1 set port_guid $G5 || fail "port_guid"
ev "event GID_CHANGE"
ev "gid0 fe80:0000:0000:0000:$(sysfs_guid $G5)"
wait "$EVB_PID" || fail "second process: $(cat "$RUN_DIR/evb.out")"
[[ $(grep -c '^ok$' "$RUN_DIR/evb.out") == 3 ]] ||
	fail "second process: $(cat "$RUN_DIR/evb.out")"
pass "policy Down/Up and port GUID: events on every context of two processes"

# Follow with the PF up is ACTIVE again; no change, no event.
"$VHCACTL" vf 1 set policy Down || fail "policy Down"
ev "event PORT_ERR"
echo Follow >"$sriov/1/policy" || fail "policy Follow"
ev "event PORT_ACTIVE"
ev "state ACTIVE"
"$VHCACTL" vf 1 set policy Up port_guid $G5 pkeys 0xffff || fail "same values"
ev "quiet 200"
# A node GUID is no GID: no event, but ibv_query_device shows it.
G6=02:00:00:00:00:00:dd:06
echo $G6 >"$sriov/1/node" || fail "node GUID"
ev "quiet 200"
ev "node_guid $(sysfs_guid $G6)"
# Another VF's changes are not ours.
"$VHCACTL" vf 0 set policy Down pkeys 0x8009 || fail "vf 0"
"$VHCACTL" vf 0 set policy Follow pkeys 0xffff || fail "vf 0 back"
ev "quiet 200"
pass "Follow; unchanged values, node GUIDs and other VFs raise nothing"

"$VHCACTL" vf 1 set pkeys 0x8001,0x8002 || fail "pkeys"
ev "event PKEY_CHANGE"
ev "pkey 0 0x8001"
ev "pkey 1 0x8002"
echo 0x7003 >"$sriov/1/pkeys/5" || fail "pkeys/5"
ev "event PKEY_CHANGE"
ev "pkey 5 0x7003"
# One plan, three changes: down first, the rest, (up would be last).
G7=02:00:00:00:00:00:dd:07
printf 'vf 1 port_guid %s policy Down pkey 0xffff\n' $G7 >"$RUN_DIR/ev.plan"
"$VHCACTL" apply "$RUN_DIR/ev.plan" >/dev/null || fail "event plan"
ev "event PORT_ERR"
ev "event GID_CHANGE"
ev "event PKEY_CHANGE"
ev "state DOWN"
ev "gid0 fe80:0000:0000:0000:$(sysfs_guid $G7)"
ev "pkey 0 0xffff"
ev "pkey 1 0x0000"
"$VHCACTL" link-set-guid --run-dir "$RUN_DIR" vf 1 state auto \
	port_guid $G5 || fail "link-set-guid"
ev "event GID_CHANGE"
ev "event PORT_ACTIVE"
ev "quiet 200"
pass "P_Key and GUID changes by vhcactl, sysfs, plans and rtnetlink: events"

# VFs in use cannot go away.
st=0; "$VHCACTL" numvfs 0 2>/dev/null || st=$?
[[ $st == 1 ]] || fail "numvfs 0 with open contexts: exit $st"

# A context that never reads: its pipe (one page, 256 records) fills, the
# rest of its events are dropped, and neither the admin nor the other
# context waits for it.
ev shrink
for _ in $(seq 150); do
	echo Down >"$sriov/1/policy" || fail "flood Down"
	echo Up >"$sriov/1/policy" || fail "flood Up"
done
ev drain
[[ $EV_ANSWER == "ok 256 300" ]] || fail "drain: $EV_ANSWER, want ok 256 300"
echo Down >"$sriov/1/policy" || fail "Down after the flood"
ev "event PORT_ERR"
echo Follow >"$sriov/1/policy" || fail "Follow after the flood"
ev "event PORT_ACTIVE"
pass "a full async pipe drops events without blocking anyone"

# A listener killed outright: the daemon keeps going, its context goes.
# (Its stdin is a FIFO we hold open, so it waits for commands forever.)
mkfifo "$RUN_DIR/evc.in"
env LD_PRELOAD="$TOOL_PRELOAD" "$EVENTS" vhca0_vf1 1 <"$RUN_DIR/evc.in" \
	>"$RUN_DIR/evc.out" 2>&1 &
EVC_PID=$!
bg_track "$EVC_PID"
exec 9>"$RUN_DIR/evc.in"
for _ in $(seq 600); do
	grep -q ready "$RUN_DIR/evc.out" && break
	sleep 0.05
done
grep -q "^vhca0_vf1 .* contexts 3 " <<<"$(vhca_status)" ||
	fail "three contexts: $(vhca_status)"
kill -KILL "$EVC_PID"
for _ in $(seq 20); do
	echo Down >"$sriov/1/policy" || fail "Down while dying"
	echo Follow >"$sriov/1/policy" || fail "Follow while dying"
done
wait "$EVC_PID" 2>/dev/null || true
exec 9>&-
for _ in $(seq 200); do
	grep -q "^vhca0_vf1 .* contexts 2 " <<<"$(vhca_status)" && break
	sleep 0.05
done
grep -q "^vhca0_vf1 .* contexts 2 " <<<"$(vhca_status)" ||
	fail "dead listener's context stays: $(vhca_status)"
ev drain
[[ $EV_ANSWER == "ok 40 40" ]] || fail "drain after kill: $EV_ANSWER"
pass "a killed listener's context goes; the others still hear everything"

# Contexts opening and closing while changes are posted to them (the
# sanitizer build catches a context freed under a running notification).
(
	for _ in $(seq 20); do
		env LD_PRELOAD="$TOOL_PRELOAD" "$EVENTS" vhca0_vf1 1 </dev/null \
			>/dev/null 2>&1 || exit 1
	done
) &
CHURN_PID=$!
bg_track "$CHURN_PID"
# At most 100 toggles: 200 events fit the shrunk pipe of context 0.
toggles=0
while kill -0 "$CHURN_PID" 2>/dev/null && ((toggles++ < 100)); do
	echo Down >"$sriov/1/policy" || fail "Down during churn"
	echo Follow >"$sriov/1/policy" || fail "Follow during churn"
done
wait "$CHURN_PID" || fail "a short-lived listener failed"
kill -0 "$VHCAD_PID" || fail "vhcad died during the churn"
ev drain
[[ $EV_ANSWER =~ ^ok\ ([0-9]+)\ ([0-9]+)$ && ${BASH_REMATCH[1]} == "${BASH_REMATCH[2]}" &&
   ${BASH_REMATCH[1]} -ge 2 ]] || fail "drain after churn: $EV_ANSWER"
for _ in $(seq 200); do
	grep -q "^vhca0_vf1 .* contexts 2 " <<<"$(vhca_status)" && break
	sleep 0.05
done
grep -q "^vhca0_vf1 .* contexts 2 " <<<"$(vhca_status)" ||
	fail "contexts left after the churn: $(vhca_status)"
pass "contexts coming and going while events are posted"

echo quit >&7
wait "$EV_PID" || fail "async_events exit status"
exec 7>&- 8<&-

# ---- numvfs; re-created VFs get their default identity ---------------------------
# Provisioning lives and dies with the VF (mlx5 forgets VF GUIDs when the
# VFs are destroyed): after 0 -> N every VF is as a fresh daemon makes it.
"$VHCACTL" vf 1 set node_guid $G6 port_guid $G7 policy Down pkeys 0x8001 ||
	fail "provision before numvfs 0"
"$VHCACTL" numvfs 0 || fail "numvfs 0"
"$VHCACTL" numvfs 2 || fail "numvfs 2"
[[ $("$VHCACTL" show | grep -c "(VF ") == 2 ]] || fail "show after numvfs 2"
now_ids=$(cat "$sriov/1/node" "$sriov/1/port" "$sriov/1/policy" \
	"$sriov/1/pkeys/0" "$sriov/1/pkeys/1")
[[ $now_ids == "$default_ids" ]] ||
	fail "re-created VF not default: $now_ids vs $default_ids"
[[ $(vf_state 1) == "4: ACTIVE" ]] || fail "re-created VF not ACTIVE"
[[ $(sysfs_read class/infiniband/vhca0_vf1/ports/1/counters/port_xmit_constraint_errors) == 0 ]] ||
	fail "re-created VF kept counters"
out=$("$PKEY_QUERY" vhca0_vf1) || fail "pkey_query after re-creation"
grep -qx "0 0xffff" <<<"$out" && [[ $(grep -c '^[0-9]' <<<"$out") == 1 ]] ||
	fail "re-created VF P_Keys: $out"
st=0; "$VHCACTL" numvfs 3 2>/dev/null || st=$?
[[ $st == 1 ]] || fail "numvfs 2 -> 3 exit $st"
pass "vhcactl numvfs"

vhca_stop || fail "vhcad exit status"
