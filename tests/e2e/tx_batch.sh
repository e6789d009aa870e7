#!/usr/bin/env bash
# tests/e2e/tx_batch.sh — XMIT_TX_BATCH (frames per AF_XDP doorbell): a burst's tail held below the
# batch still leaves while the program, after its last sendto(), waits on a pipe and never enters
# the stack again (the engine's flusher thread rings the doorbell); every datagram arrives, in
# order; the xmit side's kernel counted none of them. The sender is released only after the
# receiver has them all, so a held frame that never left fails the test (the receiver's 10 s limit
# is a hang guard, not a latency assertion).
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP XMIT_TX_BATCH
bed_up txb
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT
N=45   # 1 rung at once (first after idle), 32 by the batch, 12 held until the flusher
mkfifo "$work/go"
ip netns exec "$XMIT_NS_B" "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], 9300)); s.settimeout(10)
print("ready", flush=True)
got = []
try:
    while len(got) < int(sys.argv[2]): got.append(int(s.recv(100)))
except socket.timeout:
    pass
print("got", len(got), "in order" if got == sorted(got) else "reordered", flush=True)
' "$XMIT_ADDR_B" $N >"$work/rx.out" 2>&1 &
rx=$!
BED_PIDS="$rx"
for i in $(seq 100); do grep -q ready "$work/rx.out" && break; sleep 0.1; done
# The kernel resolves b's MAC first: a datagram waiting for ARP sits in xmit's neighbour queue,
# which only a later call into the stack sends (a separate gap; this test is about the doorbell).
ip netns exec "$XMIT_NS_A" "$PY" -c 'import socket, sys
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"arp", (sys.argv[1], 9))' "$XMIT_ADDR_B" ||
  fail "a cannot send to b"
for i in $(seq 100); do
  ip netns exec "$XMIT_NS_A" ip neigh show "$XMIT_ADDR_B" dev xa | grep -qE "REACHABLE|STALE|DELAY" && break
  sleep 0.1
done
a0=$(snmp "$XMIT_NS_A" Udp OutDatagrams)
ip netns exec "$XMIT_NS_A" env XMIT_IFACE=xa XMIT_TX_BATCH=32 XMIT_LOG="info:$work/x.log" LD_PRELOAD="$XMIT_LIB" \
  "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[2])): s.sendto(str(i).encode(), (sys.argv[1], 9300))
open(sys.argv[3]).read()   # blocks outside the stack until the test opens the fifo for writing
' "$XMIT_ADDR_B" $N "$work/go" &
tx=$!
BED_PIDS="$rx $tx"
wait "$rx"
echo >"$work/go"
wait "$tx" || fail "the sender failed"
a=$(( $(snmp "$XMIT_NS_A" Udp OutDatagrams) - a0 ))
grep -q "got $N in order" "$work/rx.out" || { cat "$work/rx.out" "$work/x.log"; fail "not every datagram left while the sender waited"; }
[ "$a" = 0 ] || fail "the kernel in namespace a carried $a datagrams"
grep -q "by flush_tx" "$work/x.log" || { cat "$work/x.log"; fail "no doorbell line in the exit log"; }
grep "AF_XDP queue" "$work/x.log" | sed 's/^xmit\[[0-9]*\]: //'
pass "$N datagrams with XMIT_TX_BATCH=32, the tail rung by the flusher while the sender waited"
