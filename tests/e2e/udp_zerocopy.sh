#!/usr/bin/env bash
# tests/e2e/udp_zerocopy.sh — MSG_ZEROCOPY on UDP, differential: udp_zerocopy.py on a kernel socket
# and on an xmit socket in namespace a, sending to namespace b. Same return values, errnos and
# error-queue records (ids, coalesced ranges, origin, offender), with the COPIED code normalised
# only when the kernel reports a copy-free send (xmit over AF_XDP always copies, and says so); a's
# kernel UDP counters show the xmit run's datagrams did not go through the kernel.
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
bed_up uzc
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT
script="$(dirname "$0")/udp_zerocopy.py"
# b answers every datagram to its closed port with an ICMP error: without its rate limit (1 s per
# peer after a burst, the state shared by the two runs) which connected send reports
# ECONNREFUSED would depend on the timing.
ip netns exec "$XMIT_NS_B" sysctl -qw net.ipv4.icmp_ratelimit=0

ip netns exec "$XMIT_NS_A" "$PY" "$script" >"$work/kernel.out" 2>"$work/kernel.err" || { cat "$work/kernel.err"; fail "kernel run"; }
out0=$(snmp "$XMIT_NS_A" Udp OutDatagrams)
ip netns exec "$XMIT_NS_A" env "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$work/xmit.log" LD_PRELOAD="$XMIT_LIB" \
  "$PY" "$script" >"$work/xmit.out" 2>"$work/xmit.err" || { cat "$work/xmit.err" "$work/xmit.log"; fail "xmit run"; }
out1=$(snmp "$XMIT_NS_A" Udp OutDatagrams)
# The COPIED codes as each backend gives them: lib.sh's zc_normalise.
zc_normalise "$work"
diff "$work/kernel.norm" "$work/xmit.norm" || { cat "$work/xmit.log"; fail "xmit differs from the kernel"; }
# Datagrams sent: 1 + 4 + 1 + 1 (corked pair) + 1 + 3 + 2 = 13; all through xmit.
[ $((out1 - out0)) -eq 0 ] || fail "a's kernel sent $((out1 - out0)) datagrams during the xmit run"
grep -c '^record:' "$work/xmit.out" >/dev/null || fail "no error-queue record at all"
echo "kernel:"; cat "$work/kernel.out"
pass "MSG_ZEROCOPY: $(grep -c '' "$work/xmit.out") lines identical to the kernel's ($(grep -c '^record:' "$work/xmit.out") error-queue records)"
