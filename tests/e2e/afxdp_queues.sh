#!/usr/bin/env bash
# tests/e2e/afxdp_queues.sh — AF_XDP on an interface with several RX queues (a NIC's RSS): the bed's
# veth with 4 queues, so the kernel in b spreads its frames over xa's queues by flow hash. A
# steered flow's frames reach only the AF_XDP socket of the queue they arrive on, so xmit must
# listen on every queue. Unmodified python3 under libxmit.so in namespace a against kernel peers
# in b, each way: 24 TCP connections (client under xmit, then server under xmit) echo 64 KiB
# byte-exact, and 24 UDP sockets get their echoes. ethtool's per-queue XDP counters of xa show that
# more than one queue carried them; a's kernel sent none of it.
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
Q=4
XMIT_BED_QUEUES=$Q bed_up afq
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT
N=24

peer='
import signal, socket, sys, threading
signal.alarm(60)
mode, n = sys.argv[1], int(sys.argv[2])
def echo(c):
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
if mode == "tcp-server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("198.18.0.2", 7000)); s.listen(64)
    open(sys.argv[3], "w").close()
    for _ in range(n):
        c, _ = s.accept(); threading.Thread(target=echo, args=(c,)).start()
elif mode == "udp-server":
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("198.18.0.2", 7001))
    open(sys.argv[3], "w").close()
    for _ in range(n):
        d, a = u.recvfrom(2048); u.sendto(d, a)
elif mode == "tcp-client":
    ok = 0
    for i in range(n):
        c = socket.create_connection(("198.18.0.1", 7002), timeout=10)
        data = bytes((i * 7 + j) & 255 for j in range(65536))
        c.sendall(data); c.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            d = c.recv(65536)
            if not d: break
            got += d
        ok += got == data
        c.close()
    print("tcp-client ok %d of %d" % (ok, n))
'
xmit_side='
import signal, socket, sys, threading
signal.alarm(60)
mode, n = sys.argv[1], int(sys.argv[2])
if mode == "tcp-client":
    ok = 0
    for i in range(n):
        c = socket.create_connection(("198.18.0.2", 7000), timeout=10)
        data = bytes((i * 13 + j) & 255 for j in range(65536))
        c.sendall(data); c.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            d = c.recv(65536)
            if not d: break
            got += d
        ok += got == data
        c.close()
    print("tcp-client ok %d of %d" % (ok, n))
elif mode == "udp-client":
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    ok = 0
    for i, u in enumerate(socks):
        u.settimeout(5)
        u.sendto(b"udp-%d" % i, ("198.18.0.2", 7001))
        try:
            ok += u.recvfrom(2048)[0] == b"udp-%d" % i
        except socket.timeout:
            pass
    print("udp-client ok %d of %d" % (ok, n))
elif mode == "tcp-server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("198.18.0.1", 7002)); s.listen(64)
    open(sys.argv[3], "w").close()
    def echo(c):
        while True:
            d = c.recv(65536)
            if not d: break
            c.sendall(d)
        c.close()
    ts = []
    for _ in range(n):
        c, _ = s.accept(); t = threading.Thread(target=echo, args=(c,)); t.start(); ts.append(t)
    for t in ts: t.join()
    print("tcp-server served %d" % n)
'
wait_file() { for _ in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.1; done; return 1; }
xrun() { ip netns exec "$XMIT_NS_A" env XMIT_IFACE=xa XMIT_LOG="info:$work/xmit-$1.log" LD_PRELOAD="$XMIT_LIB" "$PY" -c "$xmit_side" "$@"; }

tcp0=$(snmp "$XMIT_NS_A" Tcp OutSegs); udp0=$(snmp "$XMIT_NS_A" Udp OutDatagrams)

ip netns exec "$XMIT_NS_B" "$PY" -c "$peer" tcp-server "$N" "$work/r1" 2>"$work/p1.err" &
BED_PIDS=$!
wait_file "$work/r1" || fail "kernel TCP server did not start"
out=$(xrun tcp-client "$N" 2>"$work/x1.err") || { cat "$work/x1.err" "$work/xmit-tcp-client.log" >&2; fail "TCP client under xmit failed"; }
echo "$out"
[ "$out" = "tcp-client ok $N of $N" ] || fail "TCP client under xmit: $out"
wait "$BED_PIDS" || fail "kernel TCP server failed: $(cat "$work/p1.err")"

ip netns exec "$XMIT_NS_B" "$PY" -c "$peer" udp-server "$N" "$work/r2" 2>"$work/p2.err" &
BED_PIDS=$!
wait_file "$work/r2" || fail "kernel UDP server did not start"
out=$(xrun udp-client "$N" 2>"$work/x2.err") || { cat "$work/x2.err" "$work/xmit-udp-client.log" >&2; fail "UDP client under xmit failed"; }
echo "$out"
[ "$out" = "udp-client ok $N of $N" ] || fail "UDP client under xmit: $out"
wait "$BED_PIDS" || fail "kernel UDP server failed: $(cat "$work/p2.err")"

xrun tcp-server "$N" "$work/r3" >"$work/x3.out" 2>"$work/x3.err" &
BED_PIDS=$!
wait_file "$work/r3" || fail "TCP server under xmit did not start"
out=$(ip netns exec "$XMIT_NS_B" "$PY" -c "$peer" tcp-client "$N" 2>"$work/p3.err") || {
  cat "$work/p3.err" "$work/xmit-tcp-server.log" >&2; fail "kernel TCP client failed"; }
echo "$out"
[ "$out" = "tcp-client ok $N of $N" ] || fail "kernel TCP client against xmit's server: $out"
wait "$BED_PIDS" || { cat "$work/x3.err" "$work/xmit-tcp-server.log" >&2; fail "TCP server under xmit failed"; }
BED_PIDS=

grep -q "receiving on all $Q RX queues" "$work/xmit-tcp-client.log" || {
  cat "$work/xmit-tcp-client.log" >&2; fail "xmit did not open a socket on each of xa's $Q RX queues"; }
tcp1=$(snmp "$XMIT_NS_A" Tcp OutSegs); udp1=$(snmp "$XMIT_NS_A" Udp OutDatagrams)
[ $((tcp1 - tcp0)) -eq 0 ] && [ $((udp1 - udp0)) -eq 0 ] ||
  fail "a's kernel sent $((tcp1 - tcp0)) TCP segments and $((udp1 - udp0)) datagrams; xmit should have"
# The kernel's own count of frames its XDP program redirected, per queue of xa.
per_queue=$(ip netns exec "$XMIT_NS_A" ethtool -S xa | awk -F': *' '/rx_queue_[0-9]+_xdp_redirect/ { gsub(/ /, "", $1); printf "%s=%s ", $1, $2 }')
echo "xa: $per_queue"
used=$(echo "$per_queue" | tr ' ' '\n' | awk -F= '$2 > 0' | wc -l)
[ "$used" -ge 2 ] || fail "the frames arrived on $used of xa's $Q queues: the test did not exercise several queues"
pass "$Q RX queues ($used of them carried steered frames): $N TCP connections each way and $N UDP echoes through xmit, byte-exact"
