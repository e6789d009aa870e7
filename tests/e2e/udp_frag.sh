#!/usr/bin/env bash
# tests/e2e/udp_frag.sh — UDP datagrams fragmented by a kernel client in namespace b reach a python3
# server in a bound to 0.0.0.0 with IP_PKTINFO, once on the kernel and once under libxmit.so, with
# the fragments in three orders: as sent, the later fragments delayed (the first one reaches a
# well before them) and the first fragment delayed (it comes last). The server prints each
# datagram's length, CRC, IP_PKTINFO interface, spec_dst and destination, and the source address;
# both runs must print the same lines, every one naming xa. On verbs a flow rule takes each first
# fragment (it carries the ports) and the stack hands it back to the kernel onto xa's receive path,
# where it joins the others: with the later fragments delayed, a hand-back over loopback (the raw
# socket) made the kernel's reassembled datagram say lo (ifindex 1) — the server of udp_server.sh
# then quit on it and its client waited in vain (issue 8).
# XMIT_TEST_RX_INJECT=raw (with verbs-sw): the hand-back's fallback where tcx or CAP_BPF is missing,
# the raw socket over loopback (XMIT_VERBS_RX_INJECT=raw): every datagram still arrives byte-exact
# from the right source, and its IP_PKTINFO says xa or lo (lo where the first fragment completed the
# datagram) — the fallback's documented limit.
source "$(dirname "$0")/lib.sh"
inject=${XMIT_TEST_RX_INJECT:-tcx}
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP XMIT_VERBS_RX_INJECT
bed_up udpf
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT

# b's frames wait in a 5 Mbit/s HTB class (2.4 ms a fragment) when their TOS asks for it: later
# fragments with TOS 0x20, first fragments with TOS 0x40; TOS 0 passes at once.
ip netns exec "$XMIT_NS_B" tc qdisc add dev xb root handle 1: htb default 1 r2q 1000 2>/dev/null
ip netns exec "$XMIT_NS_B" tc class add dev xb parent 1: classid 1:1 htb rate 10gbit 2>/dev/null
ip netns exec "$XMIT_NS_B" tc class add dev xb parent 1: classid 1:2 htb rate 5mbit burst 1600 cburst 1600 2>/dev/null
ip netns exec "$XMIT_NS_B" nft -f - <<'NFT' || fail "nft"
table netdev order {
  chain out {
    type filter hook egress device "xb" priority 0;
    ip dscp cs1 ip frag-off & 0x1fff != 0 meta priority set 1:2 counter
    ip dscp cs2 ip frag-off & 0x3fff == 0x2000 meta priority set 1:2 counter
  }
}
NFT

server='
import signal, socket, struct, sys, zlib
signal.alarm(60)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5353))
s.setsockopt(socket.SOL_IP, 8, 1)  # IP_PKTINFO
open(sys.argv[1], "w").close()
names = {i: n for i, n in socket.if_nameindex()}
while True:
    d, anc, fl, a = s.recvmsg(65536, 64)
    if d == b"stop": break
    pi = [v for l, t, v in anc if (l, t) == (socket.SOL_IP, 8)]
    ifi, spec, dst = struct.unpack("=i4s4s", pi[0])
    print(len(d), "%08x" % zlib.crc32(d), names.get(ifi, ifi), socket.inet_ntoa(spec), socket.inet_ntoa(dst), a[0],
          flush=True)
    s.sendto(b"ok", a)
'
client='
import signal, socket, sys
signal.alarm(60)
n = 0
for tos in (0, 0x20, 0x40):  # as sent, later fragments delayed, first fragment delayed
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.setsockopt(socket.SOL_IP, socket.IP_TOS, tos)
    for rep in range(3):
        for size in (1473, 3000, 9000, 65507):
            c.sendto(bytes((n * 7 + k) & 0xff for k in range(size)), ("198.18.0.1", 5353))
            if c.recvfrom(16)[0] != b"ok": sys.exit("bad reply")
            n += 1
c.sendto(b"stop", ("198.18.0.1", 5353))
print(n)
'
# run TAG [env...]: the server (with env) and the client; $work/TAG.out holds the server's lines.
run() {
  local tag=$1; shift
  rm -f "$work/ready"
  ip netns exec "$XMIT_NS_A" env "$@" "$PY" -c "$server" "$work/ready" >"$work/$tag.out" 2>"$work/$tag.err" &
  BED_PIDS=$!
  for _ in $(seq 50); do [ -e "$work/ready" ] && break; sleep 0.1; done
  [ -e "$work/ready" ] || { cat "$work/$tag.err"; fail "$tag: the server did not start"; }
  ip netns exec "$XMIT_NS_B" "$PY" -c "$client" >"$work/$tag.client" 2>&1 ||
    { cat "$work/$tag.client" "$work/$tag.err" "$work/xmit.log" 2>/dev/null; fail "$tag: the client failed"; }
  wait "$BED_PIDS" || { cat "$work/$tag.err"; fail "$tag: the server failed"; }
  BED_PIDS=
  [ "$(cat "$work/$tag.client")" = 36 ] || fail "$tag: the client sent $(cat "$work/$tag.client")"
}

run kernel
a_in0=$(snmp "$XMIT_NS_A" Udp InDatagrams)
run xmit "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$work/xmit.log" LD_PRELOAD="$XMIT_LIB" XMIT_VERBS_RX_INJECT="$inject"
a_in=$(( $(snmp "$XMIT_NS_A" Udp InDatagrams) - a_in0 ))

ifaces=xa
if [ "$inject" = raw ]; then
  # Compared without the interface, which may say lo.
  for r in kernel xmit; do awk '{$3 = "-"; print}' "$work/$r.out" >"$work/$r.cmp"; done
  ifaces="xa lo"
else
  cp "$work/kernel.out" "$work/kernel.cmp"; cp "$work/xmit.out" "$work/xmit.cmp"
fi
diff "$work/kernel.cmp" "$work/xmit.cmp" >"$work/diff" ||
  { head -20 "$work/diff"; fail "the server's lines differ (< kernel, > xmit)"; }
[ "$(wc -l <"$work/xmit.out")" = 36 ] || fail "$(wc -l <"$work/xmit.out") datagrams, expected 36"
awk -v ifs="$ifaces" 'BEGIN { n = split(ifs, l, " "); for (i = 1; i <= n; i++) ok[l[i]] = 1 }
  !($3 in ok) || $4 != "198.18.0.1" || $5 != "198.18.0.1" || $6 != "198.18.0.2" { bad = 1; print } END { exit bad }' \
  "$work/xmit.out" || fail "a datagram's IP_PKTINFO or source is not the kernel's"
delayed=$(ip netns exec "$XMIT_NS_B" nft list chain netdev order out | grep -o 'packets [0-9]*' |
  awk '{printf "%s%s", sep, $2; sep = " "}')
echo "36 fragmented datagrams, identical lines on the kernel and under xmit$([ "$inject" = raw ] && echo " (interface aside)");" \
  "b's frames delayed (later, first): $delayed"
read -r d_later d_first <<<"$delayed"
[ "${d_later:-0}" -gt 0 ] && [ "${d_first:-0}" -gt 0 ] || fail "b delayed no fragments ($delayed)"
# Every fragmented datagram reached a's kernel socket (the shadow), reassembled there.
[ "$a_in" = 36 ] || fail "a's kernel received $a_in datagrams, expected the 36 fragmented ones"
case "${XMIT_TEST_BACKEND:-afxdp}" in
  verbs-sw) frags=36 ;;  # every first fragment: the flow rule took it, the stack handed it back
  *) frags=0 ;;          # the XDP program leaves every fragment to the kernel
esac
grep -q "fragments to the kernel $frags\$" "$work/xmit.log" ||
  { grep "UDP counters" "$work/xmit.log"; fail "the stack's exit line: expected $frags fragments to the kernel"; }
if [ "$inject" = raw ]; then
  grep -q "raw socket over loopback" "$work/xmit.log" || fail "XMIT_VERBS_RX_INJECT=raw: no fallback line in xmit's log"
  via_lo=$(awk '$3 == "lo"' "$work/xmit.out" | wc -l)
  pass "udp_frag (XMIT_VERBS_RX_INJECT=raw): 36 fragmented datagrams in 3 orders byte-exact as on the kernel," \
    "$frags first fragments handed back over loopback, $via_lo of them said lo in IP_PKTINFO"
fi
if grep -q "raw socket over loopback" "$work/xmit.log"; then fail "the hand-back fell back to loopback"; fi
pass "udp_frag: 36 fragmented datagrams in 3 orders, as on the kernel (IP_PKTINFO xa)," \
  "$frags first fragments handed back"
