#!/usr/bin/env bash
# tests/e2e/jumbo_mtu.sh — an interface with jumbo frames (MTU 9000) under xmit. A received frame
# must fit one of the queue's receive buffers. AF_XDP's are 4096-byte UMEM chunks less a 256-byte
# headroom, so xmit's sockets use a smaller MTU (one notice line says which), TCP advertises an MSS
# the kernel peer's segments fit in, and an unfragmented 8000-byte datagram from the peer, which no
# UMEM frame holds, reaches xmit's socket through the kernel (the XDP program passes it). The verbs
# backend's buffers grow to the MTU (16 KiB), so there the MTU stays 9000. Unmodified python3
# under libxmit.so in namespace a against kernel peers in b: 1 MiB echoed byte-exact over TCP with
# xmit as client and as server, 8000-byte UDP datagrams both ways whole, IP_MTU as xmit uses it.
# a's kernel sent nothing.
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
XMIT_BED_MTU=9000 bed_up jumbo
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT
afxdp=1
[ "${XMIT_TEST_BACKEND:-afxdp}" = afxdp ] || afxdp=0

peer='
import signal, socket, sys
signal.alarm(60)
mode = sys.argv[1]
data = bytes((j * 7) & 255 for j in range(1 << 20))
if mode == "tcp-server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("198.18.0.2", 7000)); s.listen(8)
    open(sys.argv[2], "w").close()
    c, _ = s.accept()
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
elif mode == "tcp-client":
    c = socket.create_connection(("198.18.0.1", 7002), timeout=20)
    c.sendall(data); c.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        d = c.recv(65536)
        if not d: break
        got += d
    print("kernel client: %s, mss %d" % ("same" if got == data else "DIFFERENT (%d bytes)" % len(got),
                                         c.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)))
elif mode == "udp":
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("198.18.0.2", 7001))
    open(sys.argv[2], "w").close()
    d, a = u.recvfrom(65536)
    print("kernel got %d bytes %s" % (len(d), "same" if d == data[:8000] else "DIFFERENT"))
    u.sendto(data[:8000], a)
'
xmit_side='
import signal, socket, sys
signal.alarm(60)
mode = sys.argv[1]
data = bytes((j * 7) & 255 for j in range(1 << 20))
if mode == "tcp-client":
    c = socket.create_connection(("198.18.0.2", 7000), timeout=20)
    c.sendall(data); c.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        d = c.recv(65536)
        if not d: break
        got += d
    print("xmit client: %s" % ("same" if got == data else "DIFFERENT (%d bytes)" % len(got)))
elif mode == "tcp-server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("198.18.0.1", 7002)); s.listen(8)
    open(sys.argv[2], "w").close()
    c, _ = s.accept()
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
elif mode == "udp":
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(10)
    m = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); m.connect(("198.18.0.2", 7001))
    print("IP_MTU %d" % m.getsockopt(socket.IPPROTO_IP, 14))
    u.sendto(data[:8000], ("198.18.0.2", 7001))
    d = u.recv(65536)
    print("xmit got %d bytes %s" % (len(d), "same" if d == data[:8000] else "DIFFERENT"))
'
wait_file() { for _ in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.1; done; return 1; }
xrun() { ip netns exec "$XMIT_NS_A" env "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$work/xmit-$1.log" LD_PRELOAD="$XMIT_LIB" "$PY" -c "$xmit_side" "$@"; }
tcp0=$(snmp "$XMIT_NS_A" Tcp OutSegs); udp0=$(snmp "$XMIT_NS_A" Udp OutDatagrams)

ip netns exec "$XMIT_NS_B" "$PY" -c "$peer" tcp-server "$work/r1" 2>"$work/p1.err" &
BED_PIDS=$!
wait_file "$work/r1" || fail "kernel TCP server did not start"
out=$(xrun tcp-client 2>"$work/x1.err") || { cat "$work/x1.err" "$work/xmit-tcp-client.log" >&2; fail "TCP client under xmit failed"; }
echo "$out"
[ "$out" = "xmit client: same" ] || { cat "$work/xmit-tcp-client.log" >&2; fail "TCP client under xmit: $out"; }
wait "$BED_PIDS" || fail "kernel TCP server failed: $(cat "$work/p1.err")"

xrun tcp-server "$work/r2" >"$work/x2.out" 2>"$work/x2.err" &
BED_PIDS=$!
wait_file "$work/r2" || fail "TCP server under xmit did not start"
out=$(ip netns exec "$XMIT_NS_B" "$PY" -c "$peer" tcp-client 2>"$work/p2.err") || {
  cat "$work/p2.err" "$work/xmit-tcp-server.log" >&2; fail "kernel TCP client failed"; }
echo "$out"
case "$out" in "kernel client: same, mss "*) ;; *) cat "$work/xmit-tcp-server.log" >&2; fail "kernel client against xmit's server: $out" ;; esac
wait "$BED_PIDS" || { cat "$work/x2.err" "$work/xmit-tcp-server.log" >&2; fail "TCP server under xmit failed"; }

ip netns exec "$XMIT_NS_B" "$PY" -c "$peer" udp "$work/r3" >"$work/p3.out" 2>"$work/p3.err" &
BED_PIDS=$!
wait_file "$work/r3" || fail "kernel UDP receiver did not start"
out=$(xrun udp 2>"$work/x3.err") || { cat "$work/x3.err" "$work/xmit-udp.log" >&2; fail "UDP under xmit failed"; }
wait "$BED_PIDS" || fail "kernel UDP peer failed: $(cat "$work/p3.err")"
BED_PIDS=
cat "$work/p3.out"; echo "$out"
[ "$(cat "$work/p3.out")" = "kernel got 8000 bytes same" ] || fail "the kernel peer did not get xmit's datagram whole"
[ "$(echo "$out" | tail -1)" = "xmit got 8000 bytes same" ] || fail "xmit's socket did not get the kernel's jumbo datagram: $out"
# IP_MTU on a connected socket says the MTU xmit's sockets use: on AF_XDP as the notice line gives it.
if [ "$afxdp" = 1 ]; then
  grep -h "MTU is 9000, but" "$work/xmit-tcp-client.log" | head -1
  mtu=$(sed -n 's/.*use an MTU of \([0-9]*\).*/\1/p' "$work/xmit-udp.log" | head -1)
else
  ! grep -q "MTU is 9000, but" "$work/xmit-tcp-client.log" || fail "verbs cut the MTU: $(grep -h "MTU is" "$work/xmit-tcp-client.log")"
  mtu=9000
fi
[ -n "$mtu" ] && [ "$(echo "$out" | head -1)" = "IP_MTU $mtu" ] || fail "IP_MTU: $(echo "$out" | head -1), expected MTU ${mtu:-none}"
tcp1=$(snmp "$XMIT_NS_A" Tcp OutSegs); udp1=$(snmp "$XMIT_NS_A" Udp OutDatagrams)
[ $((tcp1 - tcp0)) -eq 0 ] && [ $((udp1 - udp0)) -eq 0 ] ||
  fail "a's kernel sent $((tcp1 - tcp0)) TCP segments and $((udp1 - udp0)) datagrams; xmit should have"
pass "MTU 9000: 1 MiB over TCP each way byte-exact, an 8000-byte datagram out and in, IP_MTU $mtu, all sent by xmit"
