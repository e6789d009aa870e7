#!/usr/bin/env bash
# tests/e2e/tcp_splice.sh — sendfile(), splice() and vmsplice() with TCP sockets, differential:
# tcp_splice.py's client in namespace a on the kernel and under xmit, against its server (kernel
# sockets) in namespace b. Same return values, errnos, file offsets and pipe fills; the server's
# lines (length and sha256 of every connection) identical; a's kernel TCP counters show that xmit
# carried the connections (a splice or sendfile into the shadow socket would have gone through a's
# kernel, or failed).
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
bed_up tsp
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT
script="$(dirname "$0")/tcp_splice.py"

one_run() {  # one_run TAG [env...]: a fresh server in b, the client in a
  local tag=$1; shift
  ip netns exec "$XMIT_NS_B" "$PY" "$script" server >"$work/$tag.server" 2>"$work/$tag.server.err" &
  BED_PIDS=$!
  wait_tcp "$XMIT_NS_A" "$XMIT_ADDR_B" 7110 || fail "$tag: the server in $XMIT_NS_B did not start"
  local c0; c0=$(snmp "$XMIT_NS_A" Tcp OutSegs)
  timeout 120 ip netns exec "$XMIT_NS_A" env "$@" "$PY" "$script" client >"$work/$tag.out" 2>"$work/$tag.err" ||
    { cat "$work/$tag.out" "$work/$tag.err"; fail "$tag: the client failed"; }
  printf -v "segs_$tag" %d $(( $(snmp "$XMIT_NS_A" Tcp OutSegs) - c0 ))
  kill $BED_PIDS 2>/dev/null; wait $BED_PIDS 2>/dev/null
  BED_PIDS=
  # wait_tcp's probes to 7110 are connections too (reset at once): their lines are left out.
  grep -v '^0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855$' "$work/$tag.server" >"$work/$tag.srv"
}

one_run kernel
one_run xmit "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$work/xmit.log" LD_PRELOAD="$XMIT_LIB"
echo "kernel:"; cat "$work/kernel.out"
echo "namespace a kernel Tcp OutSegs during the client: kernel run +$segs_kernel, xmit run +$segs_xmit"
diff "$work/kernel.out" "$work/xmit.out" || { tail -20 "$work/xmit.log"; fail "xmit's results differ from the kernel's"; }
diff "$work/kernel.srv" "$work/xmit.srv" || fail "the server got different data from xmit"
[ "$segs_xmit" -eq 0 ] || fail "a's kernel sent $segs_xmit TCP segments during the xmit run: connections passed through"
[ "$segs_kernel" -gt 100 ] || fail "the kernel run sent only $segs_kernel segments through a's kernel"
pass "TCP sendfile/splice/vmsplice: $(grep -c '' "$work/xmit.out") lines identical to the kernel's, $(grep -c '' "$work/xmit.srv") connections byte-exact at the peer"
