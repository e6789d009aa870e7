#!/usr/bin/env bash
# tests/e2e/afxdp_queues.sh — AF_XDP on an interface with several RX queues (a NIC's RSS): the bed's
# veth with 4 queues, so the kernel in b spreads its frames over xa's queues by flow hash. A
# steered flow's frames reach only the AF_XDP socket of the queue they arrive on, so xmit must
# listen on every queue. Unmodified python3 (echo_peer.py) under libxmit.so in namespace a against
# kernel peers in b, each way: 24 TCP connections (client under xmit, then server under xmit) echo
# 64 KiB byte-exact, and 24 UDP sockets get their 1000-byte echoes. ethtool's per-queue XDP counters of xa
# show that more than one queue carried them; a's kernel sent none of it.
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
Q=4
XMIT_BED_QUEUES=$Q bed_up afq
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT
N=24
peer="$(dirname "$0")/echo_peer.py"
xlog="$work/xmit.log"
echo_runs "$peer" "$N" 65536 1000 "$xlog"

grep -q "receiving on all $Q RX queues" "$xlog" || { cat "$xlog" >&2; fail "xmit did not open a socket on each of xa's $Q RX queues"; }
# The kernel's own count of frames its XDP program redirected, per queue of xa.
per_queue=$(ip netns exec "$XMIT_NS_A" ethtool -S xa | awk -F': *' '/rx_queue_[0-9]+_xdp_redirect/ { gsub(/ /, "", $1); printf "%s=%s ", $1, $2 }')
echo "xa: $per_queue"
used=$(echo "$per_queue" | tr ' ' '\n' | awk -F= '$2 > 0' | wc -l)
[ "$used" -ge 2 ] || fail "the frames arrived on $used of xa's $Q queues: the test did not exercise several queues"
pass "$Q RX queues ($used of them carried steered frames): $N TCP connections each way and $N UDP echoes through xmit, byte-exact"
