#!/usr/bin/env bash
# tests/e2e/tcp_info.sh — getsockopt(TCP_INFO) differential (issue 5): tcp_info.py client in
# namespace a sends 1 MB to a kernel server in b, reads its 100 KB answer and, at a quiet point,
# reads TCP_INFO; once on the kernel and once under libxmit.so. The fields that the same transfer
# fixes (length 280, state, options, MSS, byte counts, losses) must be equal, the others plausible
# (tcp_info.py compare). xmit must carry the connection (a's kernel sends none of its segments).
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
bed_up tcpinfo
work=$(mktemp -d)
trap 'bed_down; [ -n "${TCP_INFO_KEEP:-}" ] && cp "$work"/*.json "$TCP_INFO_KEEP"/; rm -rf "$work"' EXIT
here=$(dirname "$0")
ip netns exec "$XMIT_NS_B" "$PY" "$here/tcp_info.py" server >"$work/server.log" 2>&1 &
BED_PIDS=$!
wait_tcp "$XMIT_NS_A" "$XMIT_ADDR_B" 7500 || fail "the server in $XMIT_NS_B did not start"
for side in kernel xmit; do
  env=()
  [ $side = xmit ] && env=("${XB[@]}" XMIT_IFACE=xa XMIT_LOG="debug:$work/xmit.log" LD_PRELOAD="$XMIT_LIB")
  s0=$(snmp "$XMIT_NS_A" Tcp OutSegs)
  timeout 60 ip netns exec "$XMIT_NS_A" env "${env[@]}" "$PY" "$here/tcp_info.py" client "$XMIT_ADDR_B" \
    >"$work/$side.json" 2>"$work/$side.err" || { cat "$work/$side.err"; fail "$side: the client failed"; }
  s1=$(snmp "$XMIT_NS_A" Tcp OutSegs)
  echo "$side: a's kernel sent $((s1 - s0)) TCP segments"
  [ $side = kernel ] && [ $((s1 - s0)) -lt 100 ] && fail "the kernel run sent only $((s1 - s0)) segments"
  [ $side = xmit ] && [ $((s1 - s0)) != 0 ] && fail "a's kernel sent $((s1 - s0)) segments during the xmit run"
done
"$PY" "$here/tcp_info.py" compare "$work/kernel.json" "$work/xmit.json" || fail "xmit's TCP_INFO differs from the kernel's"
pass "TCP_INFO under xmit: the kernel's 280 bytes, the same counts for the same transfer"
