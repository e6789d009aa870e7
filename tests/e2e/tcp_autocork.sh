#!/usr/bin/env bash
# tests/e2e/tcp_autocork.sh — small writes with TCP_NODELAY (python3: 10000 send()s of 10 bytes)
# from namespace a to a kernel reader in b, on the kernel and under libxmit.so, with autocorking on
# (the sysctl's default) and off (XMIT_TCP_AUTOCORK=off / net.ipv4.tcp_autocorking=0 in a). Asserts
# what is deterministic: every run's bytes arrive byte-exact. Prints, per run, the segments b
# received (its Tcp InSegs, GRO off on xb) and the TcpExtTCPAutoCorking count (the kernel's from a's
# netstat; xmit's from its exit line): how much coalescing happens depends on when TX completions
# come, which is timing, so the counts are reported, not asserted.
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_TCP_AUTOCORK XMIT_LOG XMIT_PCAP
bed_up acork
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT
here=$(dirname "$0")
N=${TCP_AUTOCORK_WRITES:-10000}
ip netns exec "$XMIT_NS_B" ethtool -K xb gro off >/dev/null 2>&1 || true
runs=(kernel kernel-off xmit xmit-off)
ip netns exec "$XMIT_NS_B" "$PY" "$here/tcp_autocork.py" server ${#runs[@]} >"$work/server.out" 2>"$work/server.err" &
BED_PIDS=$!
wait_tcp "$XMIT_NS_A" "$XMIT_ADDR_B" 7100 || fail "the reader in $XMIT_NS_B did not start"
netstat_a() { ip netns exec "$XMIT_NS_A" nstat -az TcpExtTCPAutoCorking | awk '/TcpExtTCPAutoCorking/ {print $2}'; }

report=""
for run in "${runs[@]}"; do
  env=()
  case $run in
    kernel-off|xmit-off) ip netns exec "$XMIT_NS_A" sysctl -qw net.ipv4.tcp_autocorking=0 ;;
    *) ip netns exec "$XMIT_NS_A" sysctl -qw net.ipv4.tcp_autocorking=1 ;;
  esac
  case $run in
    xmit*) env=("${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$work/$run.log" LD_PRELOAD="$XMIT_LIB") ;;
  esac
  s0=$(snmp "$XMIT_NS_B" Tcp InSegs)
  k0=$(netstat_a)
  lines0=$(wc -l <"$work/server.out")
  timeout 120 ip netns exec "$XMIT_NS_A" env "${env[@]}" "$PY" "$here/tcp_autocork.py" client "$N" \
    >"$work/$run.out" 2>"$work/$run.err" || { cat "$work/$run.err"; fail "$run: the client failed"; }
  for _ in $(seq 100); do [ "$(wc -l <"$work/server.out")" -gt "$lines0" ] && break; sleep 0.1; done
  got=$(sed -n "$((lines0 + 1))p" "$work/server.out")
  [ -n "$got" ] || fail "$run: the reader printed nothing"
  [ "$got" = "$(cat "$work/$run.out")" ] || fail "$run: sent '$(cat "$work/$run.out")', arrived '$got'"
  segs=$(( $(snmp "$XMIT_NS_B" Tcp InSegs) - s0 ))
  case $run in
    kernel*) corked=$(( $(netstat_a) - k0 )) ;;
    xmit*) corked=$(sed -n 's/.*TcpExtTCPAutoCorking \([0-9]*\).*/\1/p' "$work/$run.log" | tail -1)
           [ -n "$corked" ] || { tail -5 "$work/$run.log"; fail "$run: no TCP counters line in xmit's log"; } ;;
  esac
  echo "$run: $((10 * N)) bytes byte-exact in $segs segments received by b ($(( 10 * N / (segs > 0 ? segs : 1) )) B/segment), TcpExtTCPAutoCorking $corked"
  case $run in
    xmit*) sed -n 's/.*\(AF_XDP completions behind.*\)/  \1/p' "$work/$run.log" ;;
  esac
  report="$report $run=$segs"
done
ip netns exec "$XMIT_NS_A" sysctl -qw net.ipv4.tcp_autocorking=1
pass "small writes byte-exact in every run; segments:$report"
