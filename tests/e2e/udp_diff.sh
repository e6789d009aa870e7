#!/usr/bin/env bash
# tests/e2e/udp_diff.sh — socket-level differential test: the same table of socket calls
# (udp_diff.py CASES: sizes, MSG_MORE and UDP_CORK sequences, PMTU discovery, TTL/TOS options and
# cmsgs, IP_PKTINFO, bad arguments, connected sends, several iovecs) is run by an unmodified
# python3 in namespace a, once on the kernel and once under libxmit.so (XMIT_IFACE=xa). Namespace
# b captures every frame arriving on xb. Per case: the same return values/errnos, the same frames
# (normalised source ports and IP ids, verified checksums), and under xmit a's kernel counters
# (Udp OutDatagrams, Ip OutRequests) unmoved except for the cases listed as handed to the kernel.
# UDP_DIFF_KEEP=DIR keeps the runs' JSON files there.
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
bed_up udpdiff
work=$(mktemp -d)
trap 'bed_down; [ -n "${UDP_DIFF_KEEP:-}" ] && cp "$work"/*.json "$work"/*.log "$UDP_DIFF_KEEP"/ 2>/dev/null; rm -rf "$work"' EXIT
here=$(dirname "$0")
# Software checksums on a's veth in both runs: the kernel would otherwise hand b CHECKSUM_PARTIAL
# frames whose UDP checksum field is only the pseudo-header sum (xmit's AF_XDP frames are complete);
# and no UDP segmentation offload, so the kernel's UDP_SEGMENT datagrams reach b as segments.
ip netns exec "$XMIT_NS_A" ethtool -K xa tx off tx-udp-segmentation off >/dev/null ||
  fail "ethtool -K xa tx off tx-udp-segmentation off"

# A destination behind a gateway (b; b does not forward, and sends no ICMP for it): the route's
# next hop differs from the destination, and MSG_DONTROUTE/SO_DONTROUTE must refuse it.
ip -n "$XMIT_NS_A" route add 198.19.0.0/24 via "$XMIT_ADDR_B" || fail "ip route add 198.19.0.0/24"

one_run() {  # one_run TAG [env...]: capture in b, the cases in a (pinned to one CPU: frames in order)
  local tag=$1; shift
  rm -f "$work/$tag.cap.json.ready"
  ip netns exec "$XMIT_NS_B" "$PY" "$here/udp_diff.py" capture "$work/$tag.cap.json" 2>"$work/$tag.cap.log" &
  local cap=$!
  BED_PIDS=$cap
  for _ in $(seq 100); do [ -e "$work/$tag.cap.json.ready" ] && break; sleep 0.05; done
  [ -e "$work/$tag.cap.json.ready" ] || fail "$tag: the capture in $XMIT_NS_B did not start"
  ip netns exec "$XMIT_NS_A" env "$@" taskset -c 0 "$PY" "$here/udp_diff.py" run "$work/$tag.run.json" \
    >"$work/$tag.run.log" 2>&1 || { cat "$work/$tag.run.log"; fail "$tag: the cases did not run"; }
  for _ in $(seq 200); do kill -0 "$cap" 2>/dev/null || break; sleep 0.05; done
  wait "$cap" || { cat "$work/$tag.cap.log"; fail "$tag: the capture failed"; }
  BED_PIDS=
}

one_run kernel
one_run xmit XMIT_IFACE=xa XMIT_LOG="debug:$work/xmit.log" LD_PRELOAD="$XMIT_LIB"
out=$("$PY" "$here/udp_diff.py" compare "$work/kernel.run.json" "$work/kernel.cap.json" \
  "$work/xmit.run.json" "$work/xmit.cap.json")
rc=$?
echo "$out"
[ $rc = 0 ] || { [ -e "$work/xmit.log" ] && tail -20 "$work/xmit.log"; fail "udp_diff: xmit differs from the kernel"; }
pass "$(echo "$out" | tail -1)"
