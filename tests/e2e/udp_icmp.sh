#!/usr/bin/env bash
# tests/e2e/udp_icmp.sh — ICMP errors on UDP sockets: an unmodified python3 in namespace a connects
# UDP sockets to a closed port of namespace b and runs one script of sends, receives and
# getsockopt(SO_ERROR) around b's ICMP port unreachables, once on the kernel and once under
# libxmit.so (XMIT_IFACE=xa). The two runs must print the same sequence of results (which call
# gets ECONNREFUSED, which consumes it, MSG_PROBE and earlier errors leaving it pending, an
# unconnected socket never seeing it, IP_RECVERR's error queue), b must send the same number of
# ICMP errors, and under xmit a's kernel Udp OutDatagrams must not move (xmit sent the datagrams;
# the ICMP reached the shadow socket and xmit fetched the error from it).
# a resolves b before the runs (a kernel datagram): a neighbour xmit must resolve holds its first datagram until
# the process next enters the stack (xmit has no thread of its own), which would shift the ICMP by
# one call; that is not this test's subject.
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
bed_up udpicmp
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT

# b answers every datagram to a closed port (no ICMP rate limit: both runs see every error).
ip netns exec "$XMIT_NS_B" sysctl -qw net.ipv4.icmp_ratelimit=0 || fail "sysctl icmp_ratelimit in b"
ip netns exec "$XMIT_NS_A" "$PY" -c 'import socket, time
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"arp", ("198.18.0.2", 9)); time.sleep(0.2)' ||
  fail "a cannot send to b"
ip netns exec "$XMIT_NS_A" ip neigh show 198.18.0.2 dev xa | grep -qE "REACHABLE|STALE|DELAY" ||
  fail "a did not resolve b: $(ip netns exec "$XMIT_NS_A" ip neigh show dev xa)"

script='
import errno, signal, socket, struct, sys, time
signal.alarm(30)
B, CLOSED = "198.18.0.2", 9          # nothing listens on b:9
IP_RECVERR, MSG_PROBE = 11, 0x10     # linux/in.h, linux/socket.h
def step(name, f):
    try:
        r = f()
    except OSError as e:
        r = errno.errorcode.get(e.errno, e.errno)
    except socket.timeout:
        r = "timeout"
    print("%-44s %s" % (name, r), flush=True)
def later():
    time.sleep(0.3)                  # the ICMP error arrives meanwhile

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((B, CLOSED))
step("send", lambda: s.send(b"one"))
later()
step("send after the ICMP", lambda: s.send(b"two"))
step("send again (consumed)", lambda: s.send(b"three"))
later()
step("recv MSG_DONTWAIT after the ICMP", lambda: s.recv(100, socket.MSG_DONTWAIT))
step("recv MSG_DONTWAIT again", lambda: s.recv(100, socket.MSG_DONTWAIT))
step("send", lambda: s.send(b"four"))
later()
step("SO_ERROR after the ICMP", lambda: s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
step("SO_ERROR again", lambda: s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
step("send", lambda: s.send(b"five"))
later()
step("send MSG_PROBE after the ICMP", lambda: s.send(b"probe", MSG_PROBE))
step("send 70000 bytes (EMSGSIZE first)", lambda: s.send(bytes(70000)))
step("send", lambda: s.send(b"six"))
step("send (consumed)", lambda: s.send(b"seven"))
s.settimeout(3)
step("recv with a timeout, error arriving meanwhile", lambda: s.recv(100))
s.close()

u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # not connected: no sk_err (no IP_RECVERR)
step("unconnected sendto", lambda: u.sendto(b"u1", (B, CLOSED)))
later()
step("unconnected sendto after the ICMP", lambda: u.sendto(b"u2", (B, CLOSED)))
step("unconnected SO_ERROR", lambda: u.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
u.close()

r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # IP_RECVERR: the error is queued too
r.setsockopt(socket.SOL_IP, IP_RECVERR, 1)
r.connect((B, CLOSED))
step("IP_RECVERR send", lambda: r.send(b"r1"))
later()
step("IP_RECVERR send MSG_PROBE after the ICMP", lambda: r.send(b"probe", MSG_PROBE))
def errqueue():
    d, anc, fl, a = r.recvmsg(100, 256, socket.MSG_ERRQUEUE)
    ee = [struct.unpack("=IBBBB", v[:8]) for l, t, v in anc if (l, t) == (socket.SOL_IP, IP_RECVERR)]
    return (d, ee, fl & socket.MSG_ERRQUEUE != 0)
step("IP_RECVERR recvmsg MSG_ERRQUEUE", errqueue)       # the last ICMP error read: sk_err = 0
step("IP_RECVERR send after reading the queue", lambda: r.send(b"r2"))
later()
step("IP_RECVERR send after the next ICMP", lambda: r.send(b"r3"))
step("IP_RECVERR recvmsg MSG_ERRQUEUE again", errqueue)
step("IP_RECVERR recvmsg MSG_ERRQUEUE, empty", errqueue)
'

one_run() {  # one_run TAG [env...]: the script in a; b's ICMP errors and a's kernel UDP sends counted
  local tag=$1; shift
  local icmp0 out0
  icmp0=$(snmp "$XMIT_NS_B" Icmp OutDestUnreachs); out0=$(snmp "$XMIT_NS_A" Udp OutDatagrams)
  ip netns exec "$XMIT_NS_A" env "$@" "$PY" -c "$script" >"$work/$tag.out" 2>"$work/$tag.err" ||
    { cat "$work/$tag.out" "$work/$tag.err"; fail "$tag: the script failed"; }
  echo $(( $(snmp "$XMIT_NS_B" Icmp OutDestUnreachs) - icmp0 )) >"$work/$tag.icmp"
  echo $(( $(snmp "$XMIT_NS_A" Udp OutDatagrams) - out0 )) >"$work/$tag.udpout"
}

one_run kernel
one_run xmit "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="debug:$work/xmit.log" LD_PRELOAD="$XMIT_LIB"
cat "$work/kernel.out"
diff "$work/kernel.out" "$work/xmit.out" ||
  { [ -e "$work/xmit.log" ] && tail -20 "$work/xmit.log"; fail "xmit's results differ from the kernel's"; }
grep -q "ECONNREFUSED" "$work/kernel.out" || fail "the kernel run saw no ECONNREFUSED: the bed did not answer"
echo "ICMP errors from b: kernel run $(cat "$work/kernel.icmp"), xmit run $(cat "$work/xmit.icmp");" \
  "a's kernel Udp OutDatagrams: kernel run +$(cat "$work/kernel.udpout"), xmit run +$(cat "$work/xmit.udpout")"
[ "$(cat "$work/kernel.icmp")" = "$(cat "$work/xmit.icmp")" ] || fail "b sent a different number of ICMP errors"
[ "$(cat "$work/xmit.udpout")" = 0 ] || fail "a's kernel sent datagrams under xmit"
pass "udp_icmp: $(wc -l <"$work/kernel.out") calls, the same results on the kernel and under xmit"
