#!/usr/bin/env bash
# tests/e2e/tcp_urg.sh — urgent data on receive, differential: tcp_urg.py's receiver in namespace
# a, on the kernel and under xmit, against its kernel sender in namespace b (MSG_OOB mixed with
# normal data, step by step). Four receivers each way: with and without SO_OOBINLINE, connecting
# and accepting (SO_OOBINLINE set on the listener: the child inherits it). Every return value,
# errno, byte, msg_flags, SIOCATMARK, SIOCINQ and poll/select/epoll mask identical, and SIGURG (to
# the F_SETOWN owner) in the same steps; a's kernel TCP
# counters show that xmit carried the connections.
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
bed_up turg
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT
script="$(dirname "$0")/tcp_urg.py"
ctl="$work/ctl"
ip netns exec "$XMIT_NS_B" "$PY" "$script" sender "$ctl" >"$work/sender.log" 2>&1 &
BED_PIDS=$!
for _ in $(seq 100); do [ -e "$ctl.ready" ] && break; sleep 0.05; done
[ -e "$ctl.ready" ] || { cat "$work/sender.log"; fail "the sender in $XMIT_NS_B did not start"; }

one_run() {  # one_run TAG INLINE ROLE [env...]
  local tag=$1 inline=$2 role=$3; shift 3
  local c0; c0=$(snmp "$XMIT_NS_A" Tcp OutSegs)
  timeout 60 ip netns exec "$XMIT_NS_A" env "$@" "$PY" "$script" receiver "$ctl" "$inline" "$role" \
    >"$work/$tag.out" 2>"$work/$tag.err" || { cat "$work/$tag.out" "$work/$tag.err" "$work/sender.log"; fail "$tag: the receiver failed"; }
  printf -v "segs_$tag" %d $(( $(snmp "$XMIT_NS_A" Tcp OutSegs) - c0 ))
}

lines=0
for inline in 0 1; do
  for role in connect accept; do
    k=k_${inline}_$role x=x_${inline}_$role
    one_run "$k" "$inline" "$role"
    one_run "$x" "$inline" "$role" "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$work/$x.log" LD_PRELOAD="$XMIT_LIB"
    echo "== SO_OOBINLINE $inline, $role (kernel):"; cat "$work/$k.out"
    diff "$work/$k.out" "$work/$x.out" || { tail -20 "$work/$x.log"; fail "SO_OOBINLINE $inline, $role: xmit's results differ from the kernel's"; }
    grep -q "NOT-ACKED" "$work/$k.out" && fail "SO_OOBINLINE $inline, $role: a step was not acknowledged in the kernel run"
    segs_k=segs_$k segs_x=segs_$x
    [ "${!segs_x}" -eq 0 ] || fail "$x: a's kernel sent ${!segs_x} TCP segments: the connection passed through"
    [ "${!segs_k}" -gt 5 ] || fail "$k: the kernel run sent only ${!segs_k} segments through a's kernel"
    lines=$(( lines + $(grep -c '' "$work/$x.out") ))
  done
done
pass "TCP urgent data on receive: 4 receivers (SO_OOBINLINE off/on, connect/accept), $lines lines identical to the kernel's"
