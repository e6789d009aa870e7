#!/usr/bin/env bash
# tests/e2e/udp_splice.sh — splice() from pipes and sendfile() into UDP sockets, differential: udp_splice.py's client
# in namespace a on the kernel and under xmit, its receiver (a kernel socket) in namespace b. Same
# return values, errnos, pipe fills and file positions; the receiver's datagrams (length and sha256) identical; a's
# kernel sent no datagram in the xmit run (the stack carried them, not the kernel socket's splice).
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
bed_up usp
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT
script="$(dirname "$0")/udp_splice.py"

run() {  # TAG env...
  local tag=$1; shift
  ip netns exec "$XMIT_NS_B" "$PY" "$script" server >"$work/$tag.srv" 2>&1 &
  BED_PIDS=$!
  sleep 0.5
  local c0; c0=$(snmp "$XMIT_NS_A" Udp OutDatagrams)
  timeout 60 ip netns exec "$XMIT_NS_A" env "$@" "$PY" "$script" client >"$work/$tag.out" 2>"$work/$tag.err" ||
    { cat "$work/$tag.out" "$work/$tag.err"; fail "$tag: the client failed"; }
  printf -v "dg_$tag" %d $(( $(snmp "$XMIT_NS_A" Udp OutDatagrams) - c0 ))
  wait $BED_PIDS 2>/dev/null
  BED_PIDS=
}
run kernel
run xmit "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$work/xmit.log" LD_PRELOAD="$XMIT_LIB"
echo "kernel:"; cat "$work/kernel.out"; echo "receiver (kernel run):"; cat "$work/kernel.srv"
diff "$work/kernel.out" "$work/xmit.out" || { tail -20 "$work/xmit.log"; fail "xmit's results differ from the kernel's"; }
diff "$work/kernel.srv" "$work/xmit.srv" || fail "the receiver got other datagrams from xmit"
echo "namespace a kernel Udp OutDatagrams: kernel run +$dg_kernel, xmit run +$dg_xmit"
[ "$dg_xmit" -eq 0 ] || fail "a's kernel sent $dg_xmit datagrams during the xmit run: splice went through the kernel socket"
[ "$dg_kernel" -gt 5 ] || fail "the kernel run sent only $dg_kernel datagrams through a's kernel"
pass "UDP splice: $(grep -c '' "$work/xmit.out") lines identical to the kernel's, $(grep -c '' "$work/xmit.srv") datagrams identical at the receiver"
