#!/usr/bin/env bash
# tests/e2e/udp.sh — the UDP vertical slice: an unmodified python3 in namespace a, under libxmit.so
# with XMIT_IFACE=xa, sends datagrams (sendto, connected send, sendmsg; 1, 100, 1472 bytes and one
# over the MTU) to a kernel echo server in namespace b. Every datagram must arrive byte-exact, a's
# kernel must not have carried them (Udp OutDatagrams / Ip OutRequests), the queue must have (pcap),
# and every echo must come back to the python socket with the right source address. A socket to
# 127.0.0.1 must still work through the kernel.
# Not covered: poll/select/epoll (not interposed). MSG_MORE/UDP_CORK: udp_diff.sh.
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
bed_up udp
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT

# The kernel peer: records every datagram (hex) and echoes it back to its sender.
ip netns exec "$XMIT_NS_B" "$PY" - "$work/rec" <<'PYEOF' >"$work/echo.log" 2>&1 &
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 7777))
open(sys.argv[1] + ".ready", "w").close()
with open(sys.argv[1], "w") as out:
    while True:
        d, a = s.recvfrom(70000)
        out.write("%s:%d %s\n" % (a[0], a[1], d.hex())); out.flush()
        s.sendto(d, a)
PYEOF
BED_PIDS=$!
for _ in $(seq 50); do [ -e "$work/rec.ready" ] && break; sleep 0.1; done
[ -e "$work/rec.ready" ] || fail "echo server in $XMIT_NS_B did not start"

snmp() {  # snmp NS PROTO FIELD
  ip netns exec "$1" awk -v p="$2:" -v f="$3" '$1 == p { if (!n) { for (i = 2; i <= NF; i++) if ($i == f) c = i; n = 1 } else print $c }' /proc/net/snmp
}
a_out0=$(snmp "$XMIT_NS_A" Udp OutDatagrams); a_req0=$(snmp "$XMIT_NS_A" Ip OutRequests)
b_in0=$(snmp "$XMIT_NS_B" Udp InDatagrams)

# The client: deterministic payloads, each echo read back before the next send.
client='
import os, signal, socket, sys
signal.alarm(30)
peer = (sys.argv[1], 7777)
def payload(i, n):
    return bytes((i * 131 + k * 7 + (k >> 8)) & 0xff for k in range(n))
sizes = [1, 100, 1472, 3000]   # 3000 > MTU 1500: fragmented on the way out and on the way back
i = 0
def check_echo(data, addr, want):
    if data != want: sys.exit("echo %d: %d bytes, want %d" % (i, len(data), len(want)))
    if addr != peer: sys.exit("echo %d from %r" % (i, addr))

u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)        # unconnected: sendto
for rep in range(3):
    for n in sizes:
        p = payload(i, n); u.sendto(p, peer); d, a = u.recvfrom(65536); check_echo(d, a, p); i += 1
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)        # connected: send/recv
c.connect(peer)
for rep in range(3):
    for n in sizes:
        p = payload(i, n); c.send(p); d = c.recv(65536); check_echo(d, c.getpeername(), p); i += 1
m = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)        # sendmsg with two pieces, recvmsg
for n in sizes:
    p = payload(i, n); h = len(p) // 2
    m.sendmsg([p[:h], p[h:]], [], 0, peer)
    d, anc, fl, a = m.recvmsg(65536); check_echo(d, a, p); i += 1
# MSG_PEEK leaves the datagram; a short buffer truncates (MSG_TRUNC in recvmsg flags).
p = payload(i, 100); u.sendto(p, peer); i += 1
d1, a1 = u.recvfrom(65536, socket.MSG_PEEK); d2, a2 = u.recvfrom(65536)
if d1 != p or d2 != p or a1 != peer: sys.exit("MSG_PEEK")
p = payload(i, 100); u.sendto(p, peer); i += 1
d, anc, fl, a = u.recvmsg(10)
if d != p[:10] or not (fl & socket.MSG_TRUNC): sys.exit("MSG_TRUNC: %r %x" % (d, fl))
# An empty queue: EAGAIN without blocking.
try:
    u.recv(100, socket.MSG_DONTWAIT); sys.exit("recv on an empty queue returned data")
except BlockingIOError:
    pass
# The kernel path: a socket to 127.0.0.1 in this namespace passes through.
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); srv.bind(("127.0.0.1", 0))
lo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
lo.sendto(b"through the kernel", srv.getsockname())
d, a = srv.recvfrom(100)
if d != b"through the kernel" or a[1] != lo.getsockname()[1]: sys.exit("loopback: %r %r" % (d, a))
print(i)
'
ip netns exec "$XMIT_NS_A" env XMIT_IFACE=xa XMIT_LOG="debug:$work/xmit.log" XMIT_PCAP="$work/a.pcap" \
  LD_PRELOAD="$XMIT_LIB" "$PY" -c "$client" "$XMIT_ADDR_B" >"$work/client.out" 2>"$work/client.err" ||
  { cat "$work/client.err" "$work/xmit.log"; fail "client failed"; }
n=$(cat "$work/client.out")
[ "$n" = 30 ] || { cat "$work/client.out" "$work/client.err"; fail "client sent $n datagrams, expected 30"; }
sleep 0.2

a_out=$(( $(snmp "$XMIT_NS_A" Udp OutDatagrams) - a_out0 ))
a_req=$(( $(snmp "$XMIT_NS_A" Ip OutRequests) - a_req0 ))
b_in=$(( $(snmp "$XMIT_NS_B" Udp InDatagrams) - b_in0 ))

# Byte-exact arrival, in order, and from the sockets' own ports.
"$PY" - "$work/rec" "$n" <<'PYEOF' || fail "datagrams did not arrive byte-exact"
import sys
def payload(i, n):
    return bytes((i * 131 + k * 7 + (k >> 8)) & 0xff for k in range(n))
sizes = [1, 100, 1472, 3000]
want = [payload(i, sizes[i % 4]) for i in range(24)] + [payload(24 + j, sizes[j]) for j in range(4)]
want += [payload(28, 100), payload(29, 100)]
got = [l.split() for l in open(sys.argv[1])]
got = [(a, bytes.fromhex(h[0]) if h else b"") for a, *h in got]
if len(got) != len(want):
    sys.exit("received %d datagrams, sent %d" % (len(got), len(want)))
for k, ((a, d), w) in enumerate(zip(got, want)):
    if not a.startswith("198.18.0.1:"): sys.exit("datagram %d from %s" % (k, a))
    if d != w: sys.exit("datagram %d: %d bytes differ from the %d sent" % (k, len(d), len(w)))
print("byte-exact: %d datagrams" % len(got))
PYEOF

# What the queue carried (XMIT_PCAP): frames out from 198.18.0.1, echoes in from 198.18.0.2.
read -r tx rx < <("$PY" - "$work/a.pcap" <<'PYEOF'
import struct, sys
b = open(sys.argv[1], "rb").read(); off = 24; tx = rx = 0
while off + 16 <= len(b):
    _, _, incl, _ = struct.unpack_from("<IIII", b, off); f = b[off + 16: off + 16 + incl]; off += 16 + incl
    if len(f) >= 34 and f[12:14] == b"\x08\x00" and f[23] == 17:
        if f[26:30] == bytes([198, 18, 0, 1]): tx += 1
        if f[26:30] == bytes([198, 18, 0, 2]): rx += 1
print(tx, rx)
PYEOF
)
echo "a: Udp OutDatagrams +$a_out, Ip OutRequests +$a_req (the one 127.0.0.1 datagram); b: Udp InDatagrams +$b_in"
echo "xmit's queue: $tx UDP/IP frames sent, $rx received (pcap)"
[ "$a_out" = 1 ] || fail "a's kernel sent $a_out UDP datagrams; only the 127.0.0.1 one should go through it"
[ "$a_req" = 1 ] || fail "a's kernel sent $a_req IP datagrams; only the 127.0.0.1 one should go through it"
[ "$b_in" = 30 ] || fail "b received $b_in datagrams, expected 30"
# 30 datagrams: 23 fit one frame, 7 of 3000 bytes take 3 frames each = 44 frames.
[ "$tx" = 44 ] || fail "xmit's queue sent $tx frames, expected 44"
# Echoes: the 23 unfragmented ones come back on the queue; the fragmented ones reach the kernel (the
# XDP program leaves fragments to it), which reassembles them for the shadow socket.
[ "$rx" = 23 ] || fail "xmit's queue received $rx frames, expected 23"
grep -q "fd [0-9]*: no route to 127.0.0.1 via xa: passes through" "$work/xmit.log" ||
  { cat "$work/xmit.log"; fail "no pass-through line for 127.0.0.1"; }
# Without privilege the queue cannot open: ONE error line naming the reason and the remedy, and every
# socket works through the kernel.
b_in0=$(snmp "$XMIT_NS_B" Udp InDatagrams)
out=$(ip netns exec "$XMIT_NS_A" setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
  env XMIT_IFACE=xa LD_PRELOAD="$XMIT_LIB" "$PY" -c '
import socket
for k in range(3):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"unprivileged", ("198.18.0.2", 7777))
    if s.recvfrom(100)[0] != b"unprivileged": raise SystemExit("echo")
print("ok")' 2>"$work/np.err") || { cat "$work/np.err"; fail "unprivileged client failed"; }
[ "$out" = ok ] || fail "unprivileged client: $out"
[ "$(grep -c 'error: cannot open an AF_XDP queue on xa (socket(AF_XDP): Operation not permitted); run as root' "$work/np.err")" = 1 ] ||
  { cat "$work/np.err"; fail "expected one error line for the unprivileged run"; }
[ $(( $(snmp "$XMIT_NS_B" Udp InDatagrams) - b_in0 )) = 3 ] || fail "unprivileged datagrams did not arrive"
pass "udp: 30 datagrams byte-exact through the queue, 30 echoes back"
