#!/usr/bin/env bash
# tests/e2e/udp_poll.sh — readiness under xmit: an unmodified python3 UDP server in namespace a
# under libxmit.so waits with select.poll(), then select.select(), then select.epoll (one socket
# level-, one edge-triggered) on two offloaded UDP sockets and a pipe (a kernel fd) in one set, and answers a kernel client in namespace b. The datagrams
# arrive through xmit's queue (a's kernel Udp InDatagrams does not move), so only the stack's
# readiness can wake the server; the pipe shows kernel fds in the same set still work; an empty
# set times out; POLLOUT is reported for a socket with send space.
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
bed_up upoll
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT

a_in0=$(snmp "$XMIT_NS_A" Udp InDatagrams); a_out0=$(snmp "$XMIT_NS_A" Udp OutDatagrams)

server='
import os, select, signal, socket, sys
signal.alarm(30)
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(("198.18.0.1", 7001))
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.bind(("198.18.0.1", 7002))
r, w = os.pipe()
socks = {a.fileno(): a, b.fileno(): b}
p = select.poll()
for fd in (a.fileno(), b.fileno(), r): p.register(fd, select.POLLIN)
if p.poll(50) != []: sys.exit("poll: readiness before any datagram")
q = select.poll(); q.register(a, select.POLLOUT)
if q.poll(0) != [(a.fileno(), select.POLLOUT)]: sys.exit("poll: no POLLOUT on an idle socket")
if select.select([a, b, r], [], [], 0.05) != ([], [], []): sys.exit("select: readiness before any datagram")
open(sys.argv[1], "w").close()
answered = pipe_seen = 0
def answer(s):
    global answered
    d, addr = s.recvfrom(65536)
    if d == b"stop": return False
    s.sendto(b"re:" + d, addr)
    answered += 1
    if answered == 10: os.write(w, b"k")
    return True
going = True
while going and answered < 20:  # phase 1: poll()
    ev = p.poll(5000)
    if not ev: sys.exit("poll: timed out with %d answered" % answered)
    for fd, e in ev:
        if fd == r: os.read(r, 1); pipe_seen += 1
        elif e & select.POLLIN: going = answer(socks[fd])
while going and answered < 40:  # phase 2: select()
    rd, _, _ = select.select([a, b, r], [], [], 5)
    if not rd: sys.exit("select: timed out with %d answered" % answered)
    for s in rd:
        if s == r: os.read(r, 1); pipe_seen += 1
        elif not answer(s): going = False
ep = select.epoll()  # phase 3: epoll, level-triggered for one socket, edge-triggered for the other
ep.register(a, select.EPOLLIN)
ep.register(b, select.EPOLLIN | select.EPOLLET)
ep.register(r, select.EPOLLIN)
os.write(w, b"k")
while going:
    ev = ep.poll(5)
    if not ev: sys.exit("epoll: timed out with %d answered" % answered)
    for fd, e in ev:
        if fd == r: os.read(r, 1); pipe_seen += 1; continue
        s = socks[fd]
        s.setblocking(False)
        while going:  # edge-triggered: read until EAGAIN
            try: going = answer(s)
            except BlockingIOError: break
        s.setblocking(True)
print(answered, pipe_seen)
'
ip netns exec "$XMIT_NS_A" env "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$work/xmit.log" LD_PRELOAD="$XMIT_LIB" \
  "$PY" -c "$server" "$work/ready" >"$work/server.out" 2>"$work/server.err" &
BED_PIDS=$!
for _ in $(seq 50); do [ -e "$work/ready" ] && break; sleep 0.1; done
[ -e "$work/ready" ] || { cat "$work/server.err" "$work/xmit.log"; fail "server did not start"; }

ip netns exec "$XMIT_NS_B" "$PY" - <<'PYEOF' || { cat "$work/server.err" "$work/xmit.log"; fail "client failed"; }
import signal, socket, sys
signal.alarm(30)
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.settimeout(5)
for i in range(60):
    srv = ("198.18.0.1", 7001 + i % 2)
    p = b"%d:" % i + bytes((i * 7 + k) & 0xff for k in range((i % 40) * 30))
    c.sendto(p, srv)
    d, a = c.recvfrom(65536)
    if d != b"re:" + p or a != srv: sys.exit("reply %d: %d bytes from %r" % (i, len(d), a))
c.sendto(b"stop", ("198.18.0.1", 7001))
print("client: 60 replies byte-exact")
PYEOF
wait "$BED_PIDS" || { cat "$work/server.err"; fail "server failed"; }
BED_PIDS=
[ "$(cat "$work/server.out")" = "60 2" ] || fail "server: answered, pipe events = $(cat "$work/server.out"), want 60 2"
a_in1=$(snmp "$XMIT_NS_A" Udp InDatagrams); a_out1=$(snmp "$XMIT_NS_A" Udp OutDatagrams)
[ $((a_in1 - a_in0)) -eq 0 ] || fail "a's kernel received $((a_in1 - a_in0)) datagrams; xmit should have"
[ $((a_out1 - a_out0)) -eq 0 ] || fail "a's kernel sent $((a_out1 - a_out0)) datagrams; xmit should have"
pass "poll()/select()/epoll on offloaded sockets and a pipe: 60 datagrams answered through xmit, the pipe seen once, a's kernel counters +0"
