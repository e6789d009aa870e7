#!/usr/bin/env bash
# tests/e2e/signal_send.sh — signal_send.c under xmit: sends from a SIGALRM handler interrupting
# sends on the same socket neither deadlock nor lose datagrams. Namespace a under libxmit.so, a
# kernel receiver in namespace b counts "m" and "h" datagrams against what the program says it sent.
source "$(dirname "$0")/lib.sh"
prog=$1
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
bed_up sig
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT

receiver='
import signal, socket, sys
signal.alarm(60)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind(("198.18.0.2", 6000))
open(sys.argv[1], "w").close()
c = {b"m": 0, b"h": 0}
s.settimeout(3)
try:
    while True:
        d = s.recv(16)
        c[d] = c.get(d, 0) + 1
except socket.timeout:
    pass
print("got %d %d" % (c[b"m"], c[b"h"]))
'
ip netns exec "$XMIT_NS_B" "$PY" -c "$receiver" "$work/ready" >"$work/recv.out" 2>"$work/recv.err" &
BED_PIDS=$!
for _ in $(seq 50); do [ -e "$work/ready" ] && break; sleep 0.1; done
[ -e "$work/ready" ] || fail "receiver did not start"
out0=$(snmp "$XMIT_NS_A" Udp OutDatagrams)
ip netns exec "$XMIT_NS_A" env XMIT_IFACE=xa XMIT_LOG="info:$work/xmit.log" LD_PRELOAD="$XMIT_LIB" \
  timeout 60 "$prog" 198.18.0.2 6000 20000 >"$work/send.out" 2>"$work/send.err"
rc=$?
[ $rc -eq 0 ] || { cat "$work/send.err" "$work/xmit.log"; fail "sender exit $rc (124: hung)"; }
wait "$BED_PIDS" || { cat "$work/recv.err"; fail "receiver failed"; }
BED_PIDS=
read -r _ m h <"$work/send.out"
read -r _ gm gh <"$work/recv.out"
echo "sender: $m from the loop, $h from the handler; receiver: $gm, $gh"
[ "$h" -gt 0 ] || fail "the handler never sent"
[ "$m" = 20000 ] && [ "$gm" = "$m" ] && [ "$gh" = "$h" ] || fail "datagrams lost or unsent"
# Every datagram went through xmit's queue except those of handlers that interrupted the stack,
# which the kernel sent: the two counts add up, and the kernel's share is the handler's at most.
kernel=$(( $(snmp "$XMIT_NS_A" Udp OutDatagrams) - out0 ))
xmit=$(sed -n 's/.*UDP counters: OutDatagrams \([0-9]*\),.*/\1/p' "$work/xmit.log")
[ -n "$xmit" ] && [ $((xmit + kernel)) -eq $((m + h)) ] && [ "$kernel" -le "$h" ] ||
  { cat "$work/xmit.log"; fail "xmit sent ${xmit:-?}, the kernel $kernel, of $m + $h"; }
pass "sends from a signal handler during sends: $m + $h datagrams ($kernel by the kernel from handlers that interrupted the stack), no hang"
