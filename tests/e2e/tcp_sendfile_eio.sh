#!/usr/bin/env bash
# tests/e2e/tcp_sendfile_eio.sh — sendfile() into TCP from a file whose reads fail partway (a FUSE
# file answering EIO from an offset on), differential: tcp_sendfile_eio.py's client in namespace a
# on the kernel and under xmit, against its server (kernel sockets) in namespace b. The same
# counts, errnos and file positions, the same bytes at the server, and every call returns (before,
# xmit re-read the failed pages for ever). The same file into a connected UDP socket: the short
# round's datagram stays corked after the error and leaves with the next send, as the kernel's (before,
# xmit returned EIO and sent nothing). Skipped without /dev/fuse.
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
[ -c /dev/fuse ] || { echo "SKIP: no /dev/fuse (modprobe fuse): no file to fail reads from"; exit 77; }
bed_up tse
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT
script="$(dirname "$0")/tcp_sendfile_eio.py"

py_client_run kernel "$script" 7120 0
py_client_run xmit "$script" 7120 0 "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$work/xmit.log" LD_PRELOAD="$XMIT_LIB"
echo "kernel:"; cat "$work/kernel.out"
echo "namespace a kernel Tcp OutSegs during the client: kernel run +$segs_kernel, xmit run +$segs_xmit"
diff "$work/kernel.out" "$work/xmit.out" || { tail -20 "$work/xmit.log"; fail "xmit's results differ from the kernel's"; }
diff "$work/kernel.srv" "$work/xmit.srv" || fail "the server got different data from xmit"
grep -q ' = [1-9]' "$work/kernel.out" || fail "no sendfile() sent the bytes before the bad one"
grep -q ' -> EIO' "$work/kernel.out" || fail "no sendfile() returned EIO"
grep -q '^udp 4196 ' "$work/kernel.srv" || fail "the kernel sent no corked short round with the next 100 bytes"
[ "$segs_xmit" -eq 0 ] || fail "a's kernel sent $segs_xmit TCP segments during the xmit run: connections passed through"
pass "sendfile from a file failing with EIO: $(grep -c '' "$work/xmit.out") lines identical to the kernel's"
