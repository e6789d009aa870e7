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
echo "kernel:"; cat "$work/kernel.out"
echo "namespace a kernel Tcp OutSegs during the client: kernel run +$segs_kernel, xmit run +$segs_xmit"
diff "$work/kernel.out" "$work/xmit.out" || { tail -20 "$work/xmit.log"; fail "xmit's results differ from the kernel's"; }
diff "$work/kernel.srv" "$work/xmit.srv" || fail "the server got different data from xmit"
[ "$segs_xmit" -eq 0 ] || fail "a's kernel sent $segs_xmit TCP segments during the xmit run: connections passed through"
[ "$segs_kernel" -gt 100 ] || fail "the kernel run sent only $segs_kernel segments through a's kernel"
pass "TCP sendfile/splice/vmsplice: $(grep -c '' "$work/xmit.out") lines identical to the kernel's, $(grep -c '' "$work/xmit.srv") connections byte-exact at the peer"
