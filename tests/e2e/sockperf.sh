#!/usr/bin/env bash
# tests/e2e/sockperf.sh — Debian's sockperf, unmodified: UDP ping-pong with the client under xmit
# against a kernel `sockperf sr`, then the server under xmit against a kernel client; each next to
# the same run kernel to kernel. Every run must complete with no message lost, duplicated or out of
# order, and the xmit side's kernel UDP counters must stay still (the queue carried the traffic).
# Latency figures are printed, never asserted.
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
command -v sockperf >/dev/null || fail "sockperf is not installed (scripts/setup installs it)"
bed_up sp
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT
PORT=11111
SECS=${SOCKPERF_SECS:-2}

udp_total() { echo $(( $(snmp "$1" Udp InDatagrams) + $(snmp "$1" Udp OutDatagrams) )); }

# run NAME SERVER_NS SERVER_ADDR XMIT_SIDE(server|client|none)
run() {
  local name=$1 sns=$2 saddr=$3 side=$4 cns pre_s=() pre_c=()
  [ "$sns" = "$XMIT_NS_A" ] && cns=$XMIT_NS_B || cns=$XMIT_NS_A
  local xenv=(env "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$work/$name.xmit.log" LD_PRELOAD="$XMIT_LIB")
  [ "$side" = server ] && pre_s=("${xenv[@]}")
  [ "$side" = client ] && pre_c=("${xenv[@]}")
  local a0; a0=$(udp_total "$XMIT_NS_A")
  ip netns exec "$sns" timeout $((SECS + 20)) "${pre_s[@]}" sockperf sr -i "$saddr" -p $PORT >"$work/$name.sr" 2>&1 &
  local spid=$!
  sleep 0.5
  ip netns exec "$cns" timeout $((SECS + 15)) "${pre_c[@]}" sockperf pp -i "$saddr" -p $PORT -t "$SECS" \
    >"$work/$name.pp" 2>&1 || { cat "$work/$name.pp" "$work/$name.sr"; fail "$name: sockperf pp failed"; }
  kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
  local a=$(( $(udp_total "$XMIT_NS_A") - a0 ))
  local out="$work/$name.pp"
  grep -q "ReceivedMessages" "$out" || { cat "$out"; fail "$name: no result"; }
  local sent recv
  sent=$(sed -n 's/.*\[Valid Duration\].*SentMessages=\([0-9]*\).*/\1/p' "$out")
  recv=$(sed -n 's/.*\[Valid Duration\].*ReceivedMessages=\([0-9]*\).*/\1/p' "$out")
  grep -q "# dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0" "$out" ||
    { cat "$out"; fail "$name: lost, duplicated or reordered messages"; }
  [ -n "$sent" ] && [ "$sent" -gt 100 ] && [ "$sent" = "$recv" ] || { cat "$out"; fail "$name: sent $sent, received $recv"; }
  local p50 p99
  p50=$(sed -n 's/.*percentile 50.000 = *\([0-9.]*\).*/\1/p' "$out")
  p99=$(sed -n 's/.*percentile 99.000 = *\([0-9.]*\).*/\1/p' "$out")
  printf '%-28s %8s round trips  p50 %8s us  p99 %9s us  kernel UDP datagrams in namespace a: +%s\n' \
    "$name" "$recv" "$p50" "$p99" "$a"
  if [ "$side" != none ]; then
    [ "$a" = 0 ] || { cat "$work/$name.xmit.log"; fail "$name: the kernel in namespace a carried $a UDP datagrams"; }
    grep -q "UDP stack on xa" "$work/$name.xmit.log" || { cat "$work/$name.xmit.log"; fail "$name: the stack did not open"; }
  fi
}

run kernel-client-kernel-server "$XMIT_NS_B" "$XMIT_ADDR_B" none
run xmit-client-kernel-server "$XMIT_NS_B" "$XMIT_ADDR_B" client
run kernel-client-kernel-server2 "$XMIT_NS_A" "$XMIT_ADDR_A" none
run kernel-client-xmit-server "$XMIT_NS_A" "$XMIT_ADDR_A" server
pass "sockperf: ping-pong complete both ways under xmit, no loss, namespace a's kernel UDP counters still"
