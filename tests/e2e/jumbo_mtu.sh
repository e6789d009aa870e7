#!/usr/bin/env bash
# tests/e2e/jumbo_mtu.sh — an interface with jumbo frames (MTU 9000) under xmit. A received frame
# must fit one of the queue's receive buffers. AF_XDP's are 4096-byte UMEM chunks less a 256-byte
# headroom, so xmit's sockets use a smaller MTU (one notice line says which), TCP advertises an MSS
# the kernel peer's segments fit in, and the kernel peer's unfragmented 8000-byte echo, which no
# UMEM frame holds, reaches xmit's socket through the kernel (the XDP program passes it). The verbs
# backend's buffers grow to the MTU (16 KiB), so there the MTU stays 9000. Unmodified python3
# (echo_peer.py) under libxmit.so in namespace a against kernel peers in b: 1 MiB echoed byte-exact
# over TCP with xmit as client and as server, an 8000-byte datagram echoed, IP_MTU as xmit uses it,
# a's kernel sending nothing.
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
XMIT_BED_MTU=9000 bed_up jumbo
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT
xlog="$work/xmit.log"
TCP_MSS_SEEN= IP_MTU_SEEN= TCP_IP_MTU_SEEN=
echo_runs "$(dirname "$0")/echo_peer.py" 1 $((1 << 20)) 8000 "$xlog"

# IP_MTU on a connected socket and the kernel client's MSS say the MTU xmit's sockets use: on AF_XDP
# the one the notice line gives, on verbs the interface's.
if [ "${XMIT_TEST_BACKEND:-afxdp}" = afxdp ]; then
  grep -h "MTU is 9000, but" "$xlog" | head -1
  mtu=$(sed -n 's/.*use an MTU of \([0-9]*\).*/\1/p' "$xlog" | head -1)
else
  ! grep -q "MTU is 9000, but" "$xlog" || fail "verbs cut the MTU: $(grep -h "MTU is" "$xlog" | head -1)"
  mtu=9000
fi
[ -n "$mtu" ] && [ "$IP_MTU_SEEN" = "$mtu" ] && [ "$TCP_IP_MTU_SEEN" = "$mtu" ] ||
  fail "IP_MTU $IP_MTU_SEEN (UDP), $TCP_IP_MTU_SEEN (TCP), expected ${mtu:-none}"
# The kernel client's MSS: the MTU less 40 bytes of headers and 12 of timestamps.
[ "$TCP_MSS_SEEN" = $((mtu - 52)) ] && [ "$XMIT_MSS_SEEN" = $((mtu - 52)) ] ||
  fail "MSS: the kernel client's towards xmit $TCP_MSS_SEEN, xmit client's $XMIT_MSS_SEEN, expected $((mtu - 52))"
pass "MTU 9000: 1 MiB over TCP each way and an 8000-byte datagram echoed byte-exact, IP_MTU $mtu, MSS $TCP_MSS_SEEN, all sent by xmit"
