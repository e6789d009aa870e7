#!/usr/bin/env bash
# tests/e2e/tcp_kernel_ports.sh — a connection under xmit continues the host's (issue 6: wrk churning
# under xmit right after a kernel wrk ran at 34-1034 requests/s). A kernel server in b closes every
# connection first, so it keeps each 4-tuple in TIME_WAIT; a's ephemeral range is 32 ports. A kernel
# client in a makes 64 connections, then a client under xmit 16 on the same ports: b must take every
# SYN at once as it does a kernel client's (tcp_timewait_state_process(): the SYN's timestamp newer
# than the TIME_WAIT's), none dropped as PAWS (TcpExtPAWSTimewait +0), because xmit's connect() takes
# the kernel's port and timestamp offset for the 4-tuple (XMIT_TCP_KERNEL_PORTS=off: its own, older
# half the time: each such SYN dropped and sent again 1 s later). The kernel client once more, also
# +0 (with xmit's own timestamps it can lose too: TIME_WAITs that took xmit's newer ones).
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_TCP_AUTOCORK XMIT_LOG XMIT_PCAP XMIT_TCP_KERNEL_PORTS
bed_up kports
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT
here=$(dirname "$0")
ip netns exec "$XMIT_NS_A" sysctl -qw net.ipv4.ip_local_port_range="40000 40031" || fail "cannot narrow a's port range"
paws() { ip netns exec "$XMIT_NS_B" nstat -az TcpExtPAWSTimewait | awk '$1 == "TcpExtPAWSTimewait" {print $2}'; }
ip netns exec "$XMIT_NS_B" "$PY" "$here/tcp_kernel_ports.py" server "$XMIT_ADDR_B" 8080 >"$work/srv" 2>&1 &
BED_PIDS=$!
for _ in $(seq 100); do grep -q listening "$work/srv" && break; sleep 0.1; done
grep -q listening "$work/srv" || fail "the server did not start"
client() {  # client NAME N [ENV...]
  local name=$1 n=$2; shift 2
  local before; before=$(paws)
  timeout 120 ip netns exec "$XMIT_NS_A" env "$@" "$PY" "$here/tcp_kernel_ports.py" client "$XMIT_ADDR_B" 8080 "$n" \
    >"$work/$name" 2>"$work/$name.err" || { cat "$work/$name.err"; fail "$name: the client failed"; }
  [ "$(grep -c . "$work/$name")" = "$n" ] || fail "$name: $(grep -c . "$work/$name") connections, want $n"
  echo $(( $(paws) - before ))
}
k1=$(client kernel1 64) || exit 1
x=$(client xmit 16 "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$work/xmit.log" LD_PRELOAD="$XMIT_LIB") || exit 1
k2=$(client kernel2 16) || exit 1
opens=$(sed -n 's/.*ActiveOpens \([0-9]*\).*/\1/p' "$work/xmit.log" | tail -1)
[ "$opens" = 16 ] || fail "xmit's ActiveOpens '$opens', want 16 (its stack's connections)"
reused=$(grep -cxF -f <(sort -u "$work/kernel1") "$work/xmit")
[ "$reused" -ge 8 ] || fail "only $reused of xmit's 16 connections on a port of the kernel client's: the test proves nothing"
echo "TcpExtPAWSTimewait: kernel client +$k1, xmit client +$x ($reused of its 16 on 4-tuples b holds in TIME_WAIT), kernel client again +$k2"
[ "$x" = 0 ] || fail "xmit's SYNs dropped by b's TIME_WAIT as PAWS ($x): its timestamps are not the host's"
[ "$k2" = 0 ] || fail "the kernel client's SYNs after xmit's dropped by b's TIME_WAIT ($k2)"
pass "16 connections under xmit on 4-tuples b holds in TIME_WAIT from a kernel client: none dropped (PAWS +0), as the kernel's"
