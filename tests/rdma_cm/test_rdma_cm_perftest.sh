#!/bin/bash
# perftest's rdma_cm mode (-R) between two namespace guests: the
# connection is made by unmodified librdmacm (REQ/REP/RTU over QP1), the
# QPs move through the states init_qp_attr gives, then data flows.  Each
# pair must exit 0 and print its result line.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/cm_lib.sh"

cm_setup
port=18515
for t in "ib_write_lat -n 1000" "ib_send_bw -n 1000" "ib_read_bw -n 500" \
	"ib_send_lat -n 1000"; do
	# shellcheck disable=SC2206
	cmd=($t -R -p $port)
	name=${cmd[0]}
	server_client "$name" "${cmd[@]}" -- "${cmd[@]}" 10.0.0.1 ||
		fail "$name -R"
	grep -qE '^ *[0-9]+ +[0-9]+ +[0-9.]+' "$RUN_DIR/$name.client.log" ||
		fail "$name -R printed no result"
	pass "$name -R: $(grep -E '^ *[0-9]+ +[0-9]+ +[0-9.]+' \
		"$RUN_DIR/$name.client.log" | head -1 | tr -s ' ')"
	wait_ids 0 || fail "ids left after $name: $(cm_stat ids)"
	port=$((port + 1))
done
vhca_stop || fail "vhcad exited with an error"
