#!/usr/bin/env bash
# tests/e2e/tcp_inherit.sh — an accepted connection inherits its listener's options (issue 6): the
# kernel's child is a clone of the listener (sk_clone_lock()), so a program that sets SO_RCVTIMEO,
# SO_SNDBUF, SO_LINGER, TCP_KEEPIDLE, TCP_CONGESTION... on its listener finds them on every
# accepted socket. tcp_inherit.py in namespace a, a kernel client from b; on the kernel and under
# libxmit.so, the listener accepting itself and (with "fork") a forked child accepting (under xmit
# with XMIT_WORKERS=1: the child adopts the inherited listener, preload/workers.cc). Asserts: every
# getsockopt() answer of the listener and the accepted socket is the kernel's; xmit's stack accepted
# the connection (PassiveOpens 1).
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_TCP_AUTOCORK XMIT_LOG XMIT_PCAP XMIT_WORKERS
bed_up inherit
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT
here=$(dirname "$0")
for mode in plain fork; do
  arg=(); [ $mode = fork ] && arg=(fork)
  for side in kernel xmit; do
    run=$side-$mode
    env=()
    if [ $side = xmit ]; then
      env=("${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$work/$run.%p.log" LD_PRELOAD="$XMIT_LIB")
      [ $mode = fork ] && env+=(XMIT_WORKERS=1)
    fi
    ip netns exec "$XMIT_NS_A" env "${env[@]}" "$PY" "$here/tcp_inherit.py" "${arg[@]}" >"$work/$run.out" 2>&1 &
    BED_PIDS=$!
    for _ in $(seq 100); do grep -q listening "$work/$run.out" && break; sleep 0.1; done
    grep -q listening "$work/$run.out" || { cat "$work/$run.out"; fail "$run: no listener"; }
    sleep 0.2  # the forked child in accept()
    ip netns exec "$XMIT_NS_B" "$PY" -c "import socket, time; c = socket.create_connection(('$XMIT_ADDR_A', 7400)); time.sleep(0.5)" ||
      fail "$run: the client failed"
    wait $BED_PIDS || { cat "$work/$run.out"; fail "$run: the listener failed"; }
    BED_PIDS=""
    [ "$(grep -c '^child ' "$work/$run.out")" = 24 ] || { cat "$work/$run.out"; fail "$run: not 24 answers for the child"; }
  done
  diff "$work/kernel-$mode.out" "$work/xmit-$mode.out" || { cat "$work"/xmit-$mode.*.log | tail -5; fail "$mode: xmit's answers differ from the kernel's"; }
  opens=$(cat "$work"/xmit-$mode.*.log | sed -n 's/.*PassiveOpens \([0-9]*\).*/\1/p' | sort -n | tail -1)
  [ "$opens" = 1 ] || fail "$mode: xmit's PassiveOpens '$opens', want 1 (its stack accepted the connection)"
  echo "$mode: the listener's and the accepted socket's answers (24 options each) are the kernel's"
done
pass "an accepted socket inherits its listener's options as the kernel's, also in a pre-fork worker"
