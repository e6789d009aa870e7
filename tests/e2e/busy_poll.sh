#!/usr/bin/env bash
# tests/e2e/busy_poll.sh — busy polling under xmit (XMIT_BUSY_POLL=50): an unmodified python3
# server in namespace a answers a kernel client in b over TCP and UDP, request/response, with
# blocking recv(), then poll() and epoll waits. Checks: SO_BUSY_POLL starts at XMIT_BUSY_POLL on
# offloaded sockets (net.core.busy_read's stand-in), an accepted connection inherits its
# listener's value (set to 30 before the accept, as sk_clone_lock() copies sk_ll_usec), the
# kernel's errnos for bad values; every reply byte-exact; a's kernel carried none of it (Udp and
# Tcp counters). How many frames the spinning receives took is printed (XMIT_LOG=info), not
# asserted: it depends on timing.
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP XMIT_BUSY_POLL
bed_up bpoll
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT

counters() { echo "$(snmp "$XMIT_NS_A" Udp InDatagrams) $(snmp "$XMIT_NS_A" Udp OutDatagrams) $(snmp "$XMIT_NS_A" Tcp InSegs) $(snmp "$XMIT_NS_A" Tcp OutSegs)"; }
c0=$(counters)

server='
import errno, select, signal, socket, sys
signal.alarm(60)
SO_BUSY_POLL, SO_PREFER_BUSY_POLL, SO_BUSY_POLL_BUDGET = 46, 69, 70
def bp(s): return s.getsockopt(socket.SOL_SOCKET, SO_BUSY_POLL)
def check(what, got, want):
    if got != want: sys.exit("%s: %r, want %r" % (what, got, want))
def err(f):
    try: f(); return 0
    except OSError as e: return errno.errorcode[e.errno]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("198.18.0.1", 7002))
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("198.18.0.1", 7001)); ls.listen(4)
check("udp SO_BUSY_POLL at creation", bp(u), int(sys.argv[2]))
check("listener SO_BUSY_POLL at creation", bp(ls), int(sys.argv[2]))
check("SO_BUSY_POLL -1", err(lambda: u.setsockopt(socket.SOL_SOCKET, SO_BUSY_POLL, -1)), "EINVAL")
check("SO_BUSY_POLL short", err(lambda: u.setsockopt(socket.SOL_SOCKET, SO_BUSY_POLL, b"\1")), "EINVAL")
check("SO_BUSY_POLL_BUDGET 65536", err(lambda: u.setsockopt(socket.SOL_SOCKET, SO_BUSY_POLL_BUDGET, 65536)), "EINVAL")
ls.setsockopt(socket.SOL_SOCKET, SO_BUSY_POLL, 30)
ls.setsockopt(socket.SOL_SOCKET, SO_PREFER_BUSY_POLL, 1)
open(sys.argv[1], "w").close()
c, _ = ls.accept()
check("accepted SO_BUSY_POLL (the listener set 30)", bp(c), 30)
check("accepted SO_PREFER_BUSY_POLL", c.getsockopt(socket.SOL_SOCKET, SO_PREFER_BUSY_POLL), 1)
def echo_tcp(n):
    for _ in range(n):
        d = c.recv(65536)
        if not d: sys.exit("tcp: early end")
        c.sendall(d)
def echo_udp(n):
    for _ in range(n):
        d, a = u.recvfrom(65536)
        u.sendto(d, a)
echo_tcp(200)            # blocking recv()
echo_udp(200)            # blocking recvfrom()
p = select.poll(); p.register(c, select.POLLIN); p.register(u, select.POLLIN)
ep = select.epoll(); ep.register(c, select.EPOLLIN); ep.register(u, select.EPOLLIN)
for wait in (lambda: p.poll(5000), lambda: ep.poll(5)):
    for _ in range(100):
        ev = wait()
        if not ev: sys.exit("poll/epoll: timed out")
        for fd, e in ev:
            if fd == c.fileno(): echo_tcp(1)
            else: echo_udp(1)
c.setsockopt(socket.SOL_SOCKET, SO_BUSY_POLL, 0)
check("SO_BUSY_POLL after 0", bp(c), 0)
echo_tcp(10)             # no busy polling: the plain wait
check("tcp end", c.recv(10), b"")
print("ok")
'
ip netns exec "$XMIT_NS_A" env "${XB[@]}" XMIT_IFACE=xa XMIT_BUSY_POLL=${BP_US:-50} XMIT_LOG="info:$work/xmit.log" \
  LD_PRELOAD="$XMIT_LIB" "$PY" -c "$server" "$work/ready" "${BP_US:-50}" >"$work/server.out" 2>"$work/server.err" &
BED_PIDS=$!
for _ in $(seq 100); do [ -e "$work/ready" ] && break; sleep 0.1; done
[ -e "$work/ready" ] || { cat "$work/server.err" "$work/xmit.log"; fail "server did not start"; }

ip netns exec "$XMIT_NS_B" "$PY" - <<'PYEOF' || { cat "$work/server.err" "$work/xmit.log"; fail "client failed"; }
import signal, socket, sys
signal.alarm(60)
t = socket.create_connection(("198.18.0.1", 7001), timeout=5)
t.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5); u.connect(("198.18.0.1", 7002))
def pat(i, n): return bytes((i * 7 + k) & 0xff for k in range(n))
def rr_tcp(i):
    p = pat(i, 1 if i % 2 else 64); t.sendall(p); got = b""
    while len(got) < len(p): got += t.recv(len(p) - len(got))
    if got != p: sys.exit("tcp reply %d differs" % i)
def rr_udp(i):
    p = pat(i, 1 if i % 2 else 64); u.send(p)
    if u.recv(65536) != p: sys.exit("udp reply %d differs" % i)
for i in range(200): rr_tcp(i)
for i in range(200): rr_udp(i)
for i in range(200): (rr_tcp if i % 2 else rr_udp)(i)
for i in range(10): rr_tcp(i)
t.shutdown(socket.SHUT_WR)
print("client: 610 replies byte-exact")
PYEOF
wait "$BED_PIDS" || { cat "$work/server.err" "$work/xmit.log"; fail "server failed"; }
BED_PIDS=
[ "$(cat "$work/server.out")" = "ok" ] || fail "server: $(cat "$work/server.out")"
read -r ui0 uo0 ti0 to0 <<<"$c0"; read -r ui1 uo1 ti1 to1 <<<"$(counters)"
echo "namespace a kernel: Udp InDatagrams +$((ui1 - ui0)) OutDatagrams +$((uo1 - uo0)), Tcp InSegs +$((ti1 - ti0)) OutSegs +$((to1 - to0))"
[ $((ui1 - ui0)) -eq 0 ] && [ $((uo1 - uo0)) -eq 0 ] || fail "a's kernel carried UDP datagrams; xmit should have"
[ $((ti1 - ti0)) -le 2 ] && [ $((to1 - to0)) -le 2 ] || fail "a's kernel carried the TCP connection; xmit should have"
grep -o 'busy polling: .*' "$work/xmit.log" || true
pass "XMIT_BUSY_POLL=50: SO_BUSY_POLL 50 at creation, 30 inherited by the accepted connection, the kernel's errnos; 610 TCP/UDP replies byte-exact through blocking recv, poll and epoll, none through a's kernel"
