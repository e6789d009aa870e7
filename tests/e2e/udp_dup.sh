#!/usr/bin/env bash
# tests/e2e/udp_dup.sh — dup() then close of the first fd (the daemon's "dup2 onto a new number,
# close the old" pattern): the socket lives on through the other fd, and the call it makes on its
# kernel socket (getsockname, setsockopt) reach that socket even after the first number is reused
# by a new socket. An unmodified python3 under libxmit.so in namespace a; a kernel receiver in b
# checks the datagrams, their source port and the TTL set through the dup.
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
bed_up udup
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT

receiver='
import signal, socket, struct, sys
signal.alarm(30)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.0.2", 6000))
s.setsockopt(socket.SOL_IP, 12, 1)  # IP_RECVTTL
open(sys.argv[1], "w").close()
for i in range(3):
    d, anc, _, a = s.recvmsg(2048, 64)
    ttl = [struct.unpack("=i", v)[0] for l, t, v in anc if t == socket.IP_TTL]
    print(d.decode(), a[1], ttl)
'
ip netns exec "$XMIT_NS_B" "$PY" -c "$receiver" "$work/ready" >"$work/recv.out" 2>"$work/recv.err" &
BED_PIDS=$!
for _ in $(seq 50); do [ -e "$work/ready" ] && break; sleep 0.1; done
[ -e "$work/ready" ] || fail "receiver did not start"

out0=$(snmp "$XMIT_NS_A" Udp OutDatagrams)
ip netns exec "$XMIT_NS_A" env "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$work/xmit.log" LD_PRELOAD="$XMIT_LIB" "$PY" -c '
import os, signal, socket, sys
signal.alarm(20)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.0.1", 6100))
s.connect(("198.18.0.2", 6000))
first = s.fileno()
d = os.dup(first)
s.close()
t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
t.bind(("198.18.0.1", 6200))
if t.fileno() != first: sys.exit("the first fd number was not reused (%d, %d)" % (t.fileno(), first))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, fileno=d)
if u.getsockname() != ("198.18.0.1", 6100): sys.exit("getsockname through the dup: %r" % (u.getsockname(),))
u.setsockopt(socket.SOL_IP, socket.IP_TTL, 33)
if u.getsockopt(socket.SOL_IP, socket.IP_TTL) != 33: sys.exit("IP_TTL through the dup")
if t.getsockopt(socket.SOL_IP, socket.IP_TTL) == 33: sys.exit("IP_TTL landed on the socket that reused the number")
for i in range(3): u.send(b"dup-%d" % i)
' 2>"$work/x.err" || { cat "$work/x.err" "$work/xmit.log"; fail "sender failed"; }
wait "$BED_PIDS" || { cat "$work/recv.err" "$work/recv.out" "$work/xmit.log" >&2; fail "receiver failed"; }
BED_PIDS=
printf 'dup-0 6100 [33]\ndup-1 6100 [33]\ndup-2 6100 [33]\n' | diff - "$work/recv.out" || fail "received datagrams differ"
out1=$(snmp "$XMIT_NS_A" Udp OutDatagrams)
[ $((out1 - out0)) -eq 0 ] || fail "a's kernel sent $((out1 - out0)) datagrams; xmit should have"
pass "dup + close of the first fd: 3 datagrams from port 6100 with the TTL set through the dup, through xmit"
