#!/usr/bin/env bash
# tests/e2e/tcp_diff.sh — TCP differential test: the same table of socket calls (tcp_diff.py CASES:
# small writes with Nagle on and off, TCP_CORK, MSG_MORE, MSG_EOR, writev, writes larger than
# size_goal, non-blocking writes into a full send buffer, sends after the peer's reset and after
# shutdown, bad arguments, options read back, refused and non-blocking connects) is run by an
# unmodified python3 in namespace a against kernel peers in b, once on the kernel and once under
# libxmit.so (XMIT_IFACE=xa). b captures every segment arriving on xb. Per case: the same return
# values/errnos (and SIGPIPEs), the same segment sizes and SYN/FIN/RST/PSH/URG flags in order.
# TCP_DIFF_KEEP=DIR keeps the runs' JSON files and logs there. TCP_DIFF_WRONG=nodelay runs the
# kernel with TCP_NODELAY in place of xmit: the test must then fail (a check of the comparison).
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
bed_up tcpdiff
work=$(mktemp -d)
trap 'bed_down; [ -n "${TCP_DIFF_KEEP:-}" ] && cp "$work"/*.json "$work"/*.log "$TCP_DIFF_KEEP"/ 2>/dev/null; rm -rf "$work"' EXIT
here=$(dirname "$0")
# The wire as a NIC without TSO gives it: the kernel's GSO skbs are cut into MSS segments before
# veth (xmit's AF_XDP frames are segments already); no GRO on b, so the capture sees each segment.
ip netns exec "$XMIT_NS_A" ethtool -K xa tx off tso off >/dev/null || fail "ethtool -K xa tx off tso off"
ip netns exec "$XMIT_NS_B" ethtool -K xb gro off >/dev/null 2>&1 || true

ip netns exec "$XMIT_NS_B" "$PY" "$here/tcp_diff.py" server >"$work/server.log" 2>&1 &
server=$!
BED_PIDS=$server
wait_tcp "$XMIT_NS_A" "$XMIT_ADDR_B" 7000 || fail "the peer in $XMIT_NS_B did not start"

one_run() {  # one_run TAG [env...]: capture in b, the cases in a
  local tag=$1; shift
  rm -f "$work/$tag.cap.json.ready"
  ip netns exec "$XMIT_NS_B" "$PY" "$here/tcp_diff.py" capture "$work/$tag.cap.json" 2>"$work/$tag.cap.log" &
  local cap=$!
  BED_PIDS="$server $cap"
  for _ in $(seq 100); do [ -e "$work/$tag.cap.json.ready" ] && break; sleep 0.05; done
  [ -e "$work/$tag.cap.json.ready" ] || fail "$tag: the capture in $XMIT_NS_B did not start"
  timeout 200 ip netns exec "$XMIT_NS_A" env "$@" "$PY" "$here/tcp_diff.py" run "$work/$tag.run.json" \
    >"$work/$tag.run.log" 2>&1 || { cat "$work/$tag.run.log"; fail "$tag: the cases did not run"; }
  for _ in $(seq 200); do kill -0 "$cap" 2>/dev/null || break; sleep 0.05; done
  wait "$cap" || { cat "$work/$tag.cap.log"; fail "$tag: the capture failed"; }
  BED_PIDS=$server
}

k0=$(snmp "$XMIT_NS_A" Tcp OutSegs)
one_run kernel
k1=$(snmp "$XMIT_NS_A" Tcp OutSegs)
if [ "${TCP_DIFF_WRONG:-}" = nodelay ]; then
  # The comparison's own check: the kernel again with TCP_NODELAY set before every connect, in
  # place of xmit. The Nagle cases must be reported as differences (the test must fail).
  one_run xmit TCP_DIFF_WRONG_RUN=nodelay
else
  one_run xmit "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="debug:$work/xmit.log" LD_PRELOAD="$XMIT_LIB"
fi
x1=$(snmp "$XMIT_NS_A" Tcp OutSegs)
# xmit carried the connections: a's kernel sent none of their segments (it sent the kernel run's).
echo "namespace a kernel Tcp OutSegs: kernel run +$((k1 - k0)), xmit run +$((x1 - k1))"
[ $((k1 - k0)) -gt 100 ] || fail "the kernel run sent only $((k1 - k0)) segments through a's kernel"
[ "${TCP_DIFF_WRONG:-}" = nodelay ] || [ $((x1 - k1)) = 0 ] ||
  fail "a's kernel sent $((x1 - k1)) TCP segments during the xmit run: connections passed through"
compare() { "$PY" "$here/tcp_diff.py" compare "$work/kernel.run.json" "$work/kernel.cap.json" \
  "$work/xmit.run.json" "$work/xmit.cap.json"; }
out=$(compare)
rc=$?
echo "$out"
# The 100 KB writes' segments depend on timing in two ways, on the kernel as on xmit:
# - when the peer's ACKs free send-buffer room (a write that waits pushes its partly filled tail
#   first);
# - where the peer's receive window ends when the sender is window-limited. 100 KB is more than
#   the peer's first window (64 KiB, grown by tcp_grow_window() as segments arrive), so the window,
#   not cwnd, limits a send when b's reader or its ACKs come late. tcp_write_xmit() then cuts at the
#   window's edge (ACK + window << wscale, not an MSS multiple): tcp_mss_split_point() keeps the
#   partial MSS because tcp_nagle_check() lets it go (TCP_NODELAY; with Nagle, no small segment in
#   flight, tcp_minshall_check()), unless tcp_tso_should_defer() waits, which it does not when the
#   room is 1/3 of the window or when the last send was over 1 ms ago (load: "allowing defer only
#   if the last write was recent", which xmit reproduces since this was found). A sub-MSS segment
#   then ends exactly at that edge. With SO_SNDBUF 1 MiB (no send-buffer waits at all) both
#   stacks still do it: in 10 kernel and 18 xmit runs of this case, both directions captured on
#   xb, the kernel cut 488 B (89777..90265, edge 90265) once, xmit 560 B (89777..90337, edge
#   90337) once.
# Under load the kernel's own run was seen to cut a short segment inside the run (32 B, 456 B)
# where other kernel runs do not. Differences in those cases alone are measured again, both runs,
# once; the second comparison decides.
if [ $rc != 0 ] && [ -z "${TCP_DIFF_WRONG:-}" ] &&
   ! echo "$out" | grep '^DIFF ' | grep -qvE '^DIFF large_100k_(nodelay|nagle): segments '; then
  echo "tcp_diff: only the 100 KB writes differ (send-buffer or window timing): both runs again"
  one_run kernel
  one_run xmit "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="debug:$work/xmit.log" LD_PRELOAD="$XMIT_LIB"
  out=$(compare)
  rc=$?
  echo "$out"
fi
[ $rc = 0 ] || { [ -e "$work/xmit.log" ] && tail -20 "$work/xmit.log"; fail "tcp_diff: xmit differs from the kernel"; }
pass "$(echo "$out" | tail -1)"
