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
# Between the two, the kernel client makes 32 connections to a second server in b that waits for
# the client to close first, so a holds a TIME_WAIT on every port of its range (wrk's churn leaves
# that): the kernel's connect() still takes such a port for another destination port (a bind
# bucket that connect() made is shared, __inet_hash_connect()), bind() does not — xmit's connect()
# must get the kernel's choice with the kernel's connect semantics, not bind() a port of its own
# (before: EADDRNOTAVAIL, no port left to bind). Last, a blocking client under xmit forks with its
# connection open: the connection moves into the kernel socket (TCP_REPAIR), which must first give
# up its deferred connect (a SYN_SENT socket cannot be repaired), and both processes echo on it.
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
ip netns exec "$XMIT_NS_B" "$PY" "$here/tcp_kernel_ports.py" sink "$XMIT_ADDR_B" 8081 >"$work/sink" 2>&1 &
BED_PIDS="$BED_PIDS $!"
ip netns exec "$XMIT_NS_B" "$PY" "$here/tcp_kernel_ports.py" echo "$XMIT_ADDR_B" 8082 >"$work/echo" 2>&1 &
BED_PIDS="$BED_PIDS $!"
up() { grep -q listening "$work/srv" && grep -q listening "$work/sink" && grep -q listening "$work/echo"; }
for _ in $(seq 100); do up && break; sleep 0.1; done
up || fail "the servers did not start"
client() {  # client NAME N [ENV...]
  local name=$1 n=$2 mode=client port=8080; shift 2
  [ "$name" = first ] && mode=first port=8081
  local before; before=$(paws)
  timeout 120 ip netns exec "$XMIT_NS_A" env "$@" "$PY" "$here/tcp_kernel_ports.py" $mode "$XMIT_ADDR_B" $port "$n" \
    >"$work/$name" 2>"$work/$name.err" || { cat "$work/$name.err" >&2; fail "$name: the client failed"; }
  [ "$(grep -c . "$work/$name")" = "$n" ] || fail "$name: $(grep -c . "$work/$name") connections, want $n"
  echo $(( $(paws) - before ))
}
k1=$(client kernel1 64) || exit 1
client first 32 >/dev/null || exit 1
tw=$(ip netns exec "$XMIT_NS_A" ss -Htan state time-wait "( dport = :8081 )" | awk '{print $3}' | sed 's/.*://' | sort -u | grep -c .)
[ "$tw" = 32 ] || fail "a holds TIME_WAITs on $tw ports to b:8081, want all 32 of its range"
x=$(client xmit 16 "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$work/xmit.log" LD_PRELOAD="$XMIT_LIB") || exit 1
k2=$(client kernel2 16) || exit 1
opens=$(sed -n 's/.*ActiveOpens \([0-9]*\).*/\1/p' "$work/xmit.log" | tail -1)
[ "$opens" = 16 ] || fail "xmit's ActiveOpens '$opens', want 16 (its stack's connections)"
reused=$(grep -cxF -f <(sort -u "$work/kernel1") "$work/xmit")
[ "$reused" -ge 8 ] || fail "only $reused of xmit's 16 connections on a port of the kernel client's: the test proves nothing"
ip netns exec "$XMIT_NS_A" sysctl -qw net.ipv4.ip_local_port_range="32768 60999" || fail "cannot widen a's port range"
fork_leg() {  # fork_leg NAME [bind0]: the client forks with its connection open; both echo on it
  rm -f "$work/fork.log"
  timeout 60 ip netns exec "$XMIT_NS_A" env "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$work/fork.log" LD_PRELOAD="$XMIT_LIB" \
    "$PY" "$here/tcp_kernel_ports.py" fork "$XMIT_ADDR_B" 8082 "${@:2}" >"$work/fork" 2>"$work/fork.err" ||
    { cat "$work/fork.err" "$work/fork.log" >&2; fail "$1: a connection under xmit did not work on in both processes after fork()"; }
  grep -q "fork(): 1 TCP connection moved into the kernel" "$work/fork.log" ||
    { cat "$work/fork.log" >&2; fail "$1: fork(): the connection did not move into the kernel socket"; }
  echo "fork(), $1: the connection (port $(cat "$work/fork")) moved into its kernel socket and echoed in the child and the parent"
}
fork_leg "deferred connect"
fork_leg "bound to port 0 first" bind0  # the repair binds the port its disconnect freed
# Without client Fast Open xmit chooses the port itself (bound): the move must not trip over the
# Fast Open option the kernel then refuses to touch (EOPNOTSUPP).
ip netns exec "$XMIT_NS_A" sysctl -qw net.ipv4.tcp_fastopen=0 || fail "cannot turn a's client Fast Open off"
fork_leg "net.ipv4.tcp_fastopen=0"
grep -q "not taken (net.ipv4.tcp_fastopen has no 1" "$work/fork.log" || { cat "$work/fork.log" >&2; fail "no log line for client Fast Open off"; }
echo "a: a TIME_WAIT to b:8081 on each of its 32 ports"
echo "TcpExtPAWSTimewait: kernel client +$k1, xmit client +$x ($reused of its 16 on 4-tuples b holds in TIME_WAIT), kernel client again +$k2"
[ "$x" = 0 ] || fail "xmit's SYNs dropped by b's TIME_WAIT as PAWS ($x): its timestamps are not the host's"
[ "$k2" = 0 ] || fail "the kernel client's SYNs after xmit's dropped by b's TIME_WAIT ($k2)"
pass "16 connections under xmit on 4-tuples b holds in TIME_WAIT from a kernel client: none dropped (PAWS +0), as the kernel's"
