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

py_client_run kernel "$script" 7110 0
py_client_run xmit "$script" 7110 0 "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$work/xmit.log" LD_PRELOAD="$XMIT_LIB"
# SIGPIPE's default action ends the process: splice() from a socket into a pipe without readers,
# a client of its own each way (the server started again).
ip netns exec "$XMIT_NS_B" "$PY" "$script" server >/dev/null 2>&1 &
BED_PIDS=$!
wait_tcp "$XMIT_NS_A" "$XMIT_ADDR_B" 7110 || fail "the server in $XMIT_NS_B did not start again"
for tag in kernel xmit; do
  env=()
  [ "$tag" = xmit ] && env=("${XB[@]}" XMIT_IFACE=xa LD_PRELOAD="$XMIT_LIB")
  rc=0
  timeout 60 ip netns exec "$XMIT_NS_A" env "${env[@]}" "$PY" "$script" sigpipe >"$work/$tag.sigpipe" 2>&1 || rc=$?
  [ "$rc" -eq 141 ] ||
    { cat "$work/$tag.sigpipe"; fail "$tag: the sigpipe client ended with $rc, not by SIGPIPE (141)"; }
  grep -v '^xmit\[' "$work/$tag.sigpipe" | grep -qx connected || fail "$tag: the sigpipe client did not connect"
done
grep -q 'accelerating' "$work/xmit.sigpipe" ||
  { cat "$work/xmit.sigpipe"; fail "the sigpipe client was not under xmit"; }
kill $BED_PIDS 2>/dev/null; wait $BED_PIDS 2>/dev/null
BED_PIDS=

echo "kernel:"; cat "$work/kernel.out"
echo "namespace a kernel Tcp OutSegs during the client: kernel run +$segs_kernel, xmit run +$segs_xmit"
diff "$work/kernel.out" "$work/xmit.out" || { tail -20 "$work/xmit.log"; fail "xmit's results differ from the kernel's"; }
diff "$work/kernel.srv" "$work/xmit.srv" || fail "the server got different data from xmit"
[ "$segs_xmit" -eq 0 ] || fail "a's kernel sent $segs_xmit TCP segments during the xmit run: connections passed through"
[ "$segs_kernel" -gt 100 ] || fail "the kernel run sent only $segs_kernel segments through a's kernel"
pass "TCP sendfile/splice/vmsplice: $(grep -c '' "$work/xmit.out") lines identical to the kernel's, $(grep -c '' "$work/xmit.srv") connections byte-exact at the peer, SIGPIPE's default action ends the process in both"
