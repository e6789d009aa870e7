#!/usr/bin/env bash
# tests/e2e/fork.sh — fork() under xmit (README, "fork and exec"). An unmodified python3 in namespace
# a under libxmit.so sends UDP to a kernel receiver in namespace b:
#  1. The parent sends through xmit's queue; its forked child sends on the inherited socket and on a
#     new one: those go through the kernel (the queue stays the parent's). Then the parent, still on
#     xmit, closes every fd above 2 with os.closerange() (close_range(), as daemons do at start) and
#     sends on a new socket: xmit's own fds survived. a's kernel UDP counters move by the child's
#     datagrams exactly (on verbs the child's new socket gets a QP of its own: see below).
#  2. daemon(): the parent sends, forks and exits; the child, once the parent is gone, opens the
#     stack afresh and sends through xmit. The kernel counters do not move. (The kernel releases the
#     parent's AF_XDP queue a little after the exit; the child's first socket may find it busy, and
#     the child retries a second later: its second socket, made after that, must be served.)
# The receiver checks every datagram's content and the total.
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
bed_up fork
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT

receiver='
import signal, socket, sys
signal.alarm(60)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.0.2", 6000))
open(sys.argv[1], "w").close()
got = []
while True:
    d, a = s.recvfrom(65536)
    if d == b"stop": break
    got.append(d.decode())
print("\n".join(sorted(got)))
'
ip netns exec "$XMIT_NS_B" "$PY" -c "$receiver" "$work/ready" >"$work/recv.out" 2>"$work/recv.err" &
BED_PIDS=$!
for _ in $(seq 50); do [ -e "$work/ready" ] && break; sleep 0.1; done
[ -e "$work/ready" ] || fail "receiver did not start"

run_a() {  # run_a LOG SCRIPT [ARG]: python3 under xmit in namespace a
  local log=$1 script=$2; shift 2
  ip netns exec "$XMIT_NS_A" env "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$log" LD_PRELOAD="$XMIT_LIB" "$PY" -c "$script" "$@"
}

out0=$(snmp "$XMIT_NS_A" Udp OutDatagrams)
run_a "$work/x1.log" '
import os, signal, socket, sys
signal.alarm(30)
dst = ("198.18.0.2", 6000)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(dst)
for i in range(5): s.send(b"parent-a-%d" % i)
pid = os.fork()
if pid == 0:
    for i in range(3): s.send(b"child-inherited-%d" % i)
    t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(2): t.sendto(b"child-new-%d" % i, dst)
    os._exit(0)
_, st = os.waitpid(pid, 0)
if st != 0: sys.exit("child failed: %d" % st)
for i in range(5): s.send(b"parent-b-%d" % i)
os.closerange(3, 4096)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5): u.sendto(b"parent-c-%d" % i, dst)
' || { cat "$work/x1.log"; fail "fork run failed"; }
out1=$(snmp "$XMIT_NS_A" Udp OutDatagrams)
# AF_XDP: the interface's queue 0 is the parent's until it exits, so the child's new socket passes
# through too (5 by the kernel). Verbs: the child opens a QP of its own at once (a device serves many
# QPs, each process steering its own ports), so only the inherited socket's 3 go by the kernel.
case "${XMIT_TEST_BACKEND:-afxdp}" in
  verbs-sw) want_child=3 child_line="\]: UDP stack on xa (ibverbs" ;;
  *) want_child=5 child_line="\]: .*after fork(): .*the parent process still holds the queue" ;;
esac
[ $((out1 - out0)) -eq "$want_child" ] ||
  { cat "$work/x1.log"; fail "a's kernel sent $((out1 - out0)) datagrams, want the child's $want_child"; }
grep -q "fork(): this child passes its 1 inherited offloaded socket to the kernel" "$work/x1.log" ||
  { cat "$work/x1.log"; fail "no fork line in the child's log"; }
child_pid=$(sed -n 's/^xmit\[\([0-9]*\)\]: fork(): this child.*/\1/p' "$work/x1.log")
grep -q "^xmit\[$child_pid$child_line" "$work/x1.log" ||
  { cat "$work/x1.log"; fail "the child's new socket: no line '$child_line'"; }
echo "fork: parent 15 datagrams through xmit (5 after close_range of every fd above 2), child $want_child through the kernel"

run_a "$work/x2.log" '
import os, socket, sys, time
dst = ("198.18.0.2", 6000)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"daemon-parent-0", dst)
parent = os.getpid()
if os.fork() != 0: os._exit(0)
os.setsid()
for _ in range(300):
    if os.getppid() != parent: break
    time.sleep(0.01)
t0 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # may find the queue not yet released
time.sleep(1.1)  # the kernel frees the parent AF_XDP queue asynchronously; a child retries each second
t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5): t.sendto(b"daemon-child-%d" % i, dst)
open(sys.argv[1], "w").close()
' "$work/daemon.done" || fail "daemon run failed"
for _ in $(seq 100); do [ -e "$work/daemon.done" ] && break; sleep 0.1; done
[ -e "$work/daemon.done" ] || { cat "$work/x2.log" >&2; fail "the daemon child did not finish"; }
out2=$(snmp "$XMIT_NS_A" Udp OutDatagrams)
[ "$out2" -eq "$out1" ] || { cat "$work/x2.log" >&2; fail "a's kernel sent $((out2 - out1)) datagrams of the daemon's, want 0"; }

ip netns exec "$XMIT_NS_A" "$PY" -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"stop", ("198.18.0.2", 6000))'
wait "$BED_PIDS" || { cat "$work/recv.err"; fail "receiver failed"; }
BED_PIDS=
want=$( { for i in 0 1 2 3 4; do echo "parent-a-$i"; echo "parent-b-$i"; echo "parent-c-$i"; echo "daemon-child-$i"; done
          for i in 0 1 2; do echo "child-inherited-$i"; done; echo child-new-0; echo child-new-1; echo daemon-parent-0; } | sort)
diff <(echo "$want") "$work/recv.out" || fail "the receiver's datagrams differ"
pass "fork: 26 datagrams byte-exact; a's kernel carried only the forked child's $want_child"
