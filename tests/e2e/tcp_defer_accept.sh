#!/usr/bin/env bash
# tests/e2e/tcp_defer_accept.sh — TCP_DEFER_ACCEPT (nginx's `listen ... deferred`, issue 6): a listener
# in namespace a on the kernel, then under libxmit.so, kernel clients in b (tcp_defer_accept.py).
# Asserts in both runs: the listener is not readable after the handshake alone, becomes readable
# with the client's data (accepted with its bytes at once), or at the deferral's end without data;
# the same getsockopt() values; TcpExtTCPDeferAcceptDrop equal to the kernel's (the two handshake
# ACKs dropped); xmit's PassiveOpens 2 (its stack's listeners, not the kernel's).
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_TCP_AUTOCORK XMIT_LOG XMIT_PCAP
bed_up defer
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT
here=$(dirname "$0")
nstat_a() { ip netns exec "$XMIT_NS_A" nstat -az TcpExtTCPDeferAcceptDrop | awk '$1 == "TcpExtTCPDeferAcceptDrop" {print $2}'; }
for side in kernel xmit; do
  mkdir -p "$work/$side"
  env=()
  [ $side = xmit ] && env=("${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$work/$side.log" LD_PRELOAD="$XMIT_LIB")
  before=$(nstat_a)
  ip netns exec "$XMIT_NS_A" env "${env[@]}" "$PY" "$here/tcp_defer_accept.py" server "$work/$side" \
    >"$work/$side.srv" 2>&1 &
  BED_PIDS=$!
  for _ in $(seq 100); do grep -q listening "$work/$side.srv" && break; sleep 0.1; done
  grep -q listening "$work/$side.srv" || { cat "$work/$side.srv"; fail "$side: the listeners did not start"; }
  timeout 60 ip netns exec "$XMIT_NS_B" "$PY" "$here/tcp_defer_accept.py" client "$work/$side" >"$work/$side.cli" 2>&1 ||
    { cat "$work/$side.cli" "$work/$side.srv"; fail "$side: the client failed"; }
  wait $BED_PIDS || { cat "$work/$side.srv"; fail "$side: the server failed"; }
  BED_PIDS=""
  sed "s/^/$side: /" "$work/$side.srv"
  grep -q FAIL "$work/$side.srv" && fail "$side: a wrong observation"
  [ "$(grep -c . "$work/$side.srv")" = 6 ] || fail "$side: $(grep -c . "$work/$side.srv") lines, want 6"
  case $side in
    kernel) drops=$(( $(nstat_a) - before ))
            [ "$drops" -ge 1 ] || fail "kernel: TcpExtTCPDeferAcceptDrop +$drops (the reference did not defer)" ;;
    xmit) xdrops=$(sed -n 's/.*TcpExtTCPDeferAcceptDrop \([0-9]*\).*/\1/p' "$work/xmit.log" | tail -1)
          [ "$xdrops" = "$drops" ] || fail "xmit: TcpExtTCPDeferAcceptDrop '$xdrops', the kernel's $drops"
          opens=$(sed -n 's/.*PassiveOpens \([0-9]*\).*/\1/p' "$work/xmit.log" | tail -1)
          [ "$opens" = 2 ] || fail "xmit: PassiveOpens '$opens', want 2 (its stack's listeners)" ;;
  esac
done
diff "$work/kernel.srv" "$work/xmit.srv" || fail "xmit's observations differ from the kernel's"
pass "TCP_DEFER_ACCEPT as the kernel's: no child for a bare ACK, one with the data or at the deferral's end; TcpExtTCPDeferAcceptDrop $drops both"
