#!/usr/bin/env bash
# tests/e2e/udp_server.sh — the reverse direction: an unmodified python3 UDP server in namespace a
# under libxmit.so (XMIT_IFACE=xa) answers a kernel client in namespace b. The server binds
# 0.0.0.0, asks for IP_PKTINFO and replies with sendmsg() naming the address the request came to
# (the DNS-server pattern); the client checks every reply byte for byte and its source address.
# Unfragmented requests must reach the server through xmit's queue (a's kernel Udp InDatagrams
# moves only by the fragmented ones, which the kernel reassembles and the server reads from its
# kernel socket) and no reply may leave through a's kernel (Udp OutDatagrams +0).
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
bed_up udps
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT

a_in0=$(snmp "$XMIT_NS_A" Udp InDatagrams); a_out0=$(snmp "$XMIT_NS_A" Udp OutDatagrams)

server='
import signal, socket, struct, sys
signal.alarm(30)
IP_PKTINFO = 8
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5353))
s.setsockopt(socket.SOL_IP, IP_PKTINFO, 1)
open(sys.argv[1], "w").close()
n = 0
while True:
    d, anc, fl, a = s.recvmsg(65536, 64)
    if d == b"stop": break
    pi = [v for l, t, v in anc if (l, t) == (socket.SOL_IP, IP_PKTINFO)]
    if len(pi) != 1: sys.exit("no IP_PKTINFO: %r" % anc)
    ifi, spec, dst = struct.unpack("=i4s4s", pi[0])
    if socket.inet_ntoa(dst) != "198.18.0.1" or ifi != socket.if_nametoindex("xa"): sys.exit("pktinfo %r" % (pi,))
    # Reply from the address the request was sent to.
    s.sendmsg([b"re:" + d], [(socket.SOL_IP, IP_PKTINFO, struct.pack("=i4s4s", 0, spec, b"\0" * 4))], 0, a)
    n += 1
print(n)
'
ip netns exec "$XMIT_NS_A" env "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$work/xmit.log" LD_PRELOAD="$XMIT_LIB" \
  "$PY" -c "$server" "$work/ready" >"$work/server.out" 2>"$work/server.err" &
BED_PIDS=$!
for _ in $(seq 50); do [ -e "$work/ready" ] && break; sleep 0.1; done
[ -e "$work/ready" ] || { cat "$work/server.err"; fail "server did not start"; }

ip netns exec "$XMIT_NS_B" "$PY" - <<'PYEOF' || { cat "$work/server.err" "$work/xmit.log"; fail "client failed"; }
import signal, socket, sys
signal.alarm(30)
srv = ("198.18.0.1", 5353)
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sizes = [0, 1, 100, 1472, 3000]
for i in range(40):
    p = bytes((i * 31 + k) & 0xff for k in range(sizes[i % len(sizes)]))
    c.sendto(p, srv)
    d, a = c.recvfrom(65536)
    if d != b"re:" + p or a != srv: sys.exit("reply %d: %d bytes from %r" % (i, len(d), a))
c.sendto(b"stop", srv)
print("client: 40 replies byte-exact from 198.18.0.1:5353")
PYEOF
wait "$BED_PIDS" || { cat "$work/server.err"; fail "server failed"; }
BED_PIDS=
[ "$(cat "$work/server.out")" = 40 ] || fail "server answered $(cat "$work/server.out")"
a_in=$(( $(snmp "$XMIT_NS_A" Udp InDatagrams) - a_in0 )); a_out=$(( $(snmp "$XMIT_NS_A" Udp OutDatagrams) - a_out0 ))
echo "a: kernel Udp InDatagrams +$a_in (the 8 requests of 3000 bytes, fragmented), OutDatagrams +$a_out"
[ "$a_in" = 8 ] || fail "a's kernel received $a_in datagrams; only the 8 fragmented ones should reach it"
[ "$a_out" = 0 ] || fail "a's kernel sent $a_out datagrams"
pass "udp_server: 40 requests answered through xmit, replies from the IP_PKTINFO address"
