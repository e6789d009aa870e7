#!/usr/bin/env bash
# tests/e2e/udp.sh — the UDP vertical slice: an unmodified python3 in namespace a, under libxmit.so
# with XMIT_IFACE=xa, sends datagrams (sendto, connected send, sendmsg with and without IP_TTL,
# IP_TOS and IP_PKTINFO cmsgs, sendmmsg; 1, 100, 1472 bytes and one over the MTU) to a kernel echo
# server in namespace b, and reads the echoes (recvfrom, recv, recvmsg with IP_PKTINFO/IP_RECVTTL,
# recvmmsg). Every datagram must arrive byte-exact, a's
# kernel must not have carried them (Udp OutDatagrams / Ip OutRequests), the queue must have (pcap),
# and every echo must come back to the python socket with the right source address. A socket to
# 127.0.0.1 must still work through the kernel.
# Not covered: poll/select/epoll (not interposed). MSG_MORE/UDP_CORK: udp_diff.sh.
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
bed_up udp
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT

# The kernel peer: records every datagram (hex) and echoes it back to its sender.
ip netns exec "$XMIT_NS_B" "$PY" - "$work/rec" <<'PYEOF' >"$work/echo.log" 2>&1 &
import socket, sys
IP_RECVTTL, IP_RECVTOS = 12, 13  # linux/in.h (Python 3.11 names only some)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 7777))
s.setsockopt(socket.SOL_IP, IP_RECVTTL, 1); s.setsockopt(socket.SOL_IP, IP_RECVTOS, 1)
open(sys.argv[1] + ".ready", "w").close()
with open(sys.argv[1], "w") as out:
    while True:
        d, anc, fl, a = s.recvmsg(70000, 256)
        ttl = tos = -1
        for lvl, typ, data in anc:
            if typ == socket.IP_TTL: ttl = int.from_bytes(data[:4], "little")
            if typ == socket.IP_TOS: tos = data[0]
        out.write("%s:%d %d %d %s\n" % (a[0], a[1], ttl, tos, d.hex())); out.flush()
        s.sendto(d, a)
PYEOF
BED_PIDS=$!
for _ in $(seq 50); do [ -e "$work/rec.ready" ] && break; sleep 0.1; done
[ -e "$work/rec.ready" ] || fail "echo server in $XMIT_NS_B did not start"

a_out0=$(snmp "$XMIT_NS_A" Udp OutDatagrams); a_req0=$(snmp "$XMIT_NS_A" Ip OutRequests)
b_in0=$(snmp "$XMIT_NS_B" Udp InDatagrams)

# The client: deterministic payloads, each echo read back before the next send. It writes what it
# sent (with the TTL and TOS each datagram must carry) to $work/sent, one line per datagram.
client='
import ctypes, os, signal, socket, struct, sys
signal.alarm(30)
IP_PKTINFO, IP_RECVTTL = 8, 12  # linux/in.h (Python 3.11 names only some)
peer = (sys.argv[1], 7777)
sent = open(sys.argv[2], "w")
def payload(i, n):
    return bytes((i * 131 + k * 7 + (k >> 8)) & 0xff for k in range(n))
sizes = [1, 100, 1472, 3000]   # 3000 > MTU 1500: fragmented on the way out and on the way back
i = 0
def note(p, ttl=64, tos=0):
    global i
    sent.write("%d %d %s\n" % (ttl, tos, p.hex())); i += 1
def check_echo(data, addr, want):
    if data != want: sys.exit("echo %d: %d bytes, want %d" % (i, len(data), len(want)))
    if addr != peer: sys.exit("echo %d from %r" % (i, addr))

u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)        # unconnected: sendto
for rep in range(3):
    for n in sizes:
        p = payload(i, n); u.sendto(p, peer); d, a = u.recvfrom(65536); check_echo(d, a, p); note(p)
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)        # connected: send/recv
c.connect(peer)
for rep in range(3):
    for n in sizes:
        p = payload(i, n); c.send(p); d = c.recv(65536); check_echo(d, c.getpeername(), p); note(p)
m = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)        # sendmsg with two pieces, recvmsg
for n in sizes:
    p = payload(i, n); h = len(p) // 2
    m.sendmsg([p[:h], p[h:]], [], 0, peer)
    d, anc, fl, a = m.recvmsg(65536); check_echo(d, a, p); note(p)
# MSG_PEEK leaves the datagram; a short buffer truncates (MSG_TRUNC in recvmsg flags).
p = payload(i, 100); u.sendto(p, peer); note(p)
d1, a1 = u.recvfrom(65536, socket.MSG_PEEK); d2, a2 = u.recvfrom(65536)
if d1 != p or d2 != p or a1 != peer: sys.exit("MSG_PEEK")
p = payload(i, 100); u.sendto(p, peer); note(p)
d, anc, fl, a = u.recvmsg(10)
if d != p[:10] or not (fl & socket.MSG_TRUNC): sys.exit("MSG_TRUNC: %r %x" % (d, fl))
# sendmsg with control messages: IP_TTL and IP_TOS per datagram, IP_PKTINFO choosing the source
# address; the echo comes back with IP_PKTINFO and IP_RECVTTL ancillary data on the receive side.
m.setsockopt(socket.SOL_IP, IP_PKTINFO, 1); m.setsockopt(socket.SOL_IP, IP_RECVTTL, 1)
for ttl, tos in ((7, 0x20), (200, 0xb8)):
    p = payload(i, 100)
    pkt = struct.pack("=i4s4s", 0, socket.inet_aton("198.18.0.1"), socket.inet_aton("0.0.0.0"))
    r = m.sendmsg([p], [(socket.SOL_IP, socket.IP_TTL, struct.pack("i", ttl)),
                        (socket.SOL_IP, socket.IP_TOS, struct.pack("i", tos)),
                        (socket.SOL_IP, IP_PKTINFO, pkt)], 0, peer)
    if r != len(p): sys.exit("sendmsg with cmsgs returned %d" % r)
    d, anc, fl, a = m.recvmsg(65536, 256); check_echo(d, a, p); note(p, ttl, tos)
    got = {(l, t): v for l, t, v in anc}
    if got.get((socket.SOL_IP, socket.IP_TTL)) != struct.pack("i", 64): sys.exit("IP_TTL cmsg: %r" % anc)
    ifi, spec, addr = struct.unpack("=i4s4s", got.get((socket.SOL_IP, IP_PKTINFO), b"\0" * 12))
    if (ifi, spec, addr) != (socket.if_nametoindex("xa"), socket.inet_aton("198.18.0.1"), socket.inet_aton("198.18.0.1")):
        sys.exit("IP_PKTINFO cmsg: %r" % anc)
# sendmmsg and recvmmsg (libc through ctypes: the calls the interposer serves, not Python wrappers).
libc = ctypes.CDLL(None, use_errno=True)
class iovec(ctypes.Structure): _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
class msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(iovec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]
class mmsghdr(ctypes.Structure): _fields_ = [("hdr", msghdr), ("len", ctypes.c_uint)]
N = 8
dst = ctypes.create_string_buffer(struct.pack("=HH4s8x", socket.AF_INET, socket.htons(7777), socket.inet_aton(peer[0])), 16)
ps = [payload(i + k, 10 * (k + 1)) for k in range(N)]
bufs = [ctypes.create_string_buffer(p, len(p)) for p in ps]
iovs = (iovec * N)(*[iovec(ctypes.cast(b, ctypes.c_void_p), len(p)) for b, p in zip(bufs, ps)])
vec = (mmsghdr * N)()
for k in range(N):
    vec[k].hdr.name = ctypes.cast(dst, ctypes.c_void_p); vec[k].hdr.namelen = 16
    vec[k].hdr.iov = ctypes.pointer(iovs[k]); vec[k].hdr.iovlen = 1
r = libc.sendmmsg(u.fileno(), vec, N, 0)
if r != N or [vec[k].len for k in range(N)] != [len(p) for p in ps]: sys.exit("sendmmsg: %d" % r)
for p in ps: note(p)
got = []
rb = [ctypes.create_string_buffer(2048) for _ in range(N)]
riov = (iovec * N)(*[iovec(ctypes.cast(b, ctypes.c_void_p), 2048) for b in rb])
while len(got) < N:
    rv = (mmsghdr * N)()
    for k in range(N): rv[k].hdr.iov = ctypes.pointer(riov[k]); rv[k].hdr.iovlen = 1
    r = libc.recvmmsg(u.fileno(), rv, N - len(got), 0x10000, None)   # MSG_WAITFORONE
    if r <= 0: sys.exit("recvmmsg: %d errno %d" % (r, ctypes.get_errno()))
    got += [rb[k].raw[:rv[k].len] for k in range(r)]
if got != ps: sys.exit("sendmmsg echoes differ")
# An empty queue: EAGAIN without blocking; and after SO_RCVTIMEO on a blocking socket.
try:
    u.recv(100, socket.MSG_DONTWAIT); sys.exit("recv on an empty queue returned data")
except BlockingIOError:
    pass
u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 200000))
try:
    u.recv(100); sys.exit("recv past SO_RCVTIMEO returned data")
except BlockingIOError:
    pass
# The kernel path: a socket to 127.0.0.1 in this namespace passes through.
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); srv.bind(("127.0.0.1", 0))
lo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
lo.sendto(b"through the kernel", srv.getsockname())
d, a = srv.recvfrom(100)
if d != b"through the kernel" or a[1] != lo.getsockname()[1]: sys.exit("loopback: %r %r" % (d, a))
# A socket handed back to the kernel while another thread is blocked in it: the blocked recv goes
# on in the kernel and gets the echo of a datagram the socket then sends through the kernel.
import threading, time
h = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); h.bind(("0.0.0.0", 0))
got = []
t = threading.Thread(target=lambda: got.append(h.recvfrom(100))); t.start()
time.sleep(0.2)
h.sendto(b"to loopback", srv.getsockname())   # 127.0.0.1: the socket passes to the kernel
if srv.recvfrom(100)[0] != b"to loopback": sys.exit("hand-back: loopback datagram")
p = payload(i, 50); h.sendto(p, peer); note(p)
t.join(10)
if t.is_alive() or got != [(p, peer)]: sys.exit("hand-back: the blocked recv got %r" % (got,))
sent.close()
print(i)
'
ip netns exec "$XMIT_NS_A" env "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="debug:$work/xmit.log" XMIT_PCAP="$work/a.pcap" \
  LD_PRELOAD="$XMIT_LIB" "$PY" -c "$client" "$XMIT_ADDR_B" "$work/sent" >"$work/client.out" 2>"$work/client.err" ||
  { cat "$work/client.err" "$work/xmit.log"; fail "client failed"; }
n=$(cat "$work/client.out")
[ "$n" = 41 ] || { cat "$work/client.out" "$work/client.err"; fail "client sent $n datagrams, expected 41"; }
sleep 0.2

a_out=$(( $(snmp "$XMIT_NS_A" Udp OutDatagrams) - a_out0 ))
a_req=$(( $(snmp "$XMIT_NS_A" Ip OutRequests) - a_req0 ))
b_in=$(( $(snmp "$XMIT_NS_B" Udp InDatagrams) - b_in0 ))

# Byte-exact arrival, in order, from 198.18.0.1, with the TTL and TOS each was sent with.
"$PY" - "$work/rec" "$work/sent" <<'PYEOF' || fail "datagrams did not arrive byte-exact"
import sys
want = [l.split() for l in open(sys.argv[2])]
got = [l.split() for l in open(sys.argv[1])]
if len(got) != len(want):
    sys.exit("received %d datagrams, sent %d" % (len(got), len(want)))
for k, (g, w) in enumerate(zip(got, want)):
    a, ttl, tos, data = g[0], g[1], g[2], g[3] if len(g) > 3 else ""
    if not a.startswith("198.18.0.1:"): sys.exit("datagram %d from %s" % (k, a))
    if data != (w[2] if len(w) > 2 else ""): sys.exit("datagram %d: %d bytes differ from the %d sent" % (k, len(data) // 2, len(w[2]) // 2))
    if (ttl, tos) != (w[0], w[1]): sys.exit("datagram %d: ttl %s tos %s, sent with %s %s" % (k, ttl, tos, w[0], w[1]))
print("byte-exact: %d datagrams, TTL and TOS as sent" % len(got))
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
echo "a: Udp OutDatagrams +$a_out, Ip OutRequests +$a_req (2 to 127.0.0.1, 1 after a hand-back); b: Udp InDatagrams +$b_in"
echo "xmit's queue: $tx UDP/IP frames sent, $rx received (pcap)"
[ "$a_out" = 3 ] || fail "a's kernel sent $a_out UDP datagrams; only the 3 of handed-back sockets should go through it"
[ "$a_req" = 3 ] || fail "a's kernel sent $a_req IP datagrams; only the 3 of handed-back sockets should go through it"
[ "$b_in" = 41 ] || fail "b received $b_in datagrams, expected 41"
# 40 datagrams: 33 fit one frame, 7 of 3000 bytes take 3 frames each = 54 frames.
[ "$tx" = 54 ] || fail "xmit's queue sent $tx frames, expected 54"
# Echoes: the 33 unfragmented ones come back on the queue; the fragmented ones reach the kernel (the
# XDP program leaves fragments to it), which reassembles them for the shadow socket. On verbs the
# flow rule also takes the 7 first fragments (they carry the ports), as a NIC's rule does and the
# software device's divert program keeps them from the kernel; the stack hands each back onto xa's
# receive path (verbs/ibv/rx_inject.h), and the kernel then has the whole datagram to reassemble.
case "${XMIT_TEST_BACKEND:-afxdp}" in
  verbs-sw) want_rx=40 frags=7 ;;
  *) want_rx=33 frags=0 ;;
esac
[ "$rx" = "$want_rx" ] || fail "xmit's queue received $rx frames, expected $want_rx"
# The stack's own counters at exit agree: 40 datagrams out, the 33 unfragmented echoes in.
grep -q "UDP counters: OutDatagrams 40, SndbufErrors 0, .*; InDatagrams 33, RcvbufErrors 0, InCsumErrors 0, InErrors 0, NoPorts [0-9]*, fragments to the kernel $frags\$" "$work/xmit.log" ||
  { grep "UDP counters" "$work/xmit.log"; fail "the stack's counters at exit"; }
grep -q "fd [0-9]*: no route to 127.0.0.1 via xa: passes through" "$work/xmit.log" ||
  { cat "$work/xmit.log"; fail "no pass-through line for 127.0.0.1"; }
# Without privilege the queue cannot open: ONE error line naming the reason and the remedy, and every
# socket works through the kernel.
b_in0=$(snmp "$XMIT_NS_B" Udp InDatagrams)
out=$(ip netns exec "$XMIT_NS_A" setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
  env "${XB[@]}" XMIT_IFACE=xa LD_PRELOAD="$XMIT_LIB" "$PY" -c '
import socket
for k in range(3):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"unprivileged", ("198.18.0.2", 7777))
    if s.recvfrom(100)[0] != b"unprivileged": raise SystemExit("echo")
print("ok")' 2>"$work/np.err") || { cat "$work/np.err"; fail "unprivileged client failed"; }
[ "$out" = ok ] || fail "unprivileged client: $out"
case "${XMIT_TEST_BACKEND:-afxdp}" in
  verbs-sw) np_err='error: cannot open the software verbs device on xa (.*); CAP_NET_RAW is missing' ;;
  *) np_err='error: cannot open an AF_XDP queue on xa (socket(AF_XDP): Operation not permitted); run as root' ;;
esac
[ "$(grep -c "$np_err" "$work/np.err")" = 1 ] && [ "$(grep -c '^xmit\[[0-9]*\]: error: ' "$work/np.err")" = 1 ] ||
  { cat "$work/np.err"; fail "expected one error line for the unprivileged run"; }
[ $(( $(snmp "$XMIT_NS_B" Udp InDatagrams) - b_in0 )) = 3 ] || fail "unprivileged datagrams did not arrive"
pass "udp: 40 datagrams (sendto, send, sendmsg with and without cmsgs, sendmmsg) byte-exact through the queue, 40 echoes back"
