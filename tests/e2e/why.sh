#!/usr/bin/env bash
# tests/e2e/why.sh XMIT_RUN — at debug level, every socket xmit does not serve gets one line saying
# why; xmit-run's options set the XMIT_* variables.
source "$(dirname "$0")/lib.sh"
xmit_run=$1
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
prog='
import socket
socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
socket.socket(socket.AF_INET, socket.SOCK_STREAM)
socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
print("done")'
err=$(mktemp)
expect() { grep -q -- "$1" "$err" || { cat "$err"; fail "missing: $1"; }; }

# Unset XMIT_IFACE: one notice, and each socket says so at debug level.
out=$("$xmit_run" --log debug -- "$PY" -c "$prog" 2>"$err") || fail "program failed"
[ "$out" = done ] || fail "stdout: $out"
expect "XMIT_IFACE is unset: every socket passes through"
[ "$(grep -c 'passes through: XMIT_IFACE is unset' "$err")" = 5 ] || { cat "$err"; fail "expected 5 socket lines"; }

# An interface (lo exists in every namespace), UDP switched off by xmit-run --no-udp.
out=$("$xmit_run" --iface lo --no-udp --log debug -- "$PY" -c "$prog" 2>"$err") || fail "program failed"
[ "$out" = done ] || fail "stdout: $out"
expect "accelerating lo (ifindex 1) through afxdp (auto: lo has no RDMA device (/sys/class/net/lo/device/infiniband does not exist)); UDP off, TCP on"
expect "socket(2, 0x80002, 0) passes through: UDP is off (XMIT_UDP=off)"
expect "socket(10, 0x80002, 0) passes through: address family AF_INET6"
expect "socket(1, 0x80001, 0) passes through: address family AF_UNIX"
expect "socket(2, 0x80003, 1) passes through: socket type or protocol not served"
# The TCP socket is served: the stack opened for it (the sockets it makes for itself say so at debug
# level too), and no line says it passes through.
expect "UDP stack on lo queue 0 (AF_XDP"
! grep -q "socket(2, 0x80001, 0) passes through" "$err" || { cat "$err"; fail "the TCP socket passed through"; }

# TCP switched off too (xmit-run --no-tcp): its socket says so.
out=$("$xmit_run" --iface lo --no-udp --no-tcp --log debug -- "$PY" -c "$prog" 2>"$err") || fail "program failed"
[ "$out" = done ] || fail "stdout: $out"
expect "socket(2, 0x80001, 0) passes through: TCP is off (XMIT_TCP=off)"
[ "$(grep -c 'passes through: ' "$err")" = 5 ] || { cat "$err"; fail "expected exactly one line per socket"; }

# --backend verbs where no RDMA device exists: one error line, then everything passes through.
out=$("$xmit_run" --iface lo --backend verbs -- "$PY" -c "$prog" 2>"$err") || fail "program failed"
[ "$out" = done ] || fail "stdout: $out"
expect "error: XMIT_BACKEND=verbs, but lo has no RDMA device (/sys/class/net/lo/device/infiniband does not exist); use the interface of an RDMA NIC, XMIT_BACKEND=afxdp or auto, or XMIT_VERBS_DEVICE=software; every socket passes through"
[ "$(grep -c '^xmit\[[0-9]*\]: ' "$err")" = 1 ] || { cat "$err"; fail "expected exactly one xmit line"; }

# The software verbs device (--verbs-device software), asked for and under auto; UDP and TCP off,
# so no socket opens it: the line says which backend and why.
out=$("$xmit_run" --iface lo --backend verbs --verbs-device software --no-udp --no-tcp -- "$PY" -c "$prog" 2>"$err") ||
  fail "program failed"
[ "$out" = done ] || fail "stdout: $out"
expect "accelerating lo (ifindex 1) through verbs (XMIT_BACKEND=verbs: the software verbs device over lo (XMIT_VERBS_DEVICE=software)); UDP off, TCP off"
out=$("$xmit_run" --iface lo --verbs-device software --no-udp --no-tcp -- "$PY" -c "$prog" 2>"$err") || fail "program failed"
expect "accelerating lo (ifindex 1) through verbs (auto: the software verbs device over lo (XMIT_VERBS_DEVICE=software)); UDP off, TCP off"
# auto, verbs chosen but it cannot open (unprivileged: no CAP_NET_RAW for the device's AF_PACKET
# socket): one notice line says so and AF_XDP is tried instead, which cannot open either: one error
# line, and the program runs on through the kernel.
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
  "$xmit_run" --iface lo --verbs-device software -- "$PY" -c 'import socket
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 9))
print("done")' 2>"$err") || { cat "$err"; fail "program failed"; }
[ "$out" = done ] || fail "stdout: $out"
expect "]: auto: cannot open the software verbs device on lo (.*); CAP_NET_RAW is missing: run as root or give the program CAP_NET_RAW; AF_XDP instead"
expect "error: cannot open an AF_XDP queue on lo (socket(AF_XDP): Operation not permitted); run as root"
[ "$(grep -c '^xmit\[[0-9]*\]: error: ' "$err")" = 1 ] || { cat "$err"; fail "expected one error line"; }

# The default level (notice) prints no per-socket lines; XMIT_LOG to a file with %p.
log=$(mktemp -u /tmp/xmit-why-XXXXXX)
out=$("$xmit_run" --log "debug:$log-%p.log" -- "$PY" -c "$prog" 2>"$err") || fail "program failed"
[ ! -s "$err" ] || { cat "$err"; fail "stderr should be empty when logging to a file"; }
ls "$log"-*.log >/dev/null 2>&1 || fail "no log file $log-PID.log"
grep -q "passes through: XMIT_IFACE is unset" "$log"-*.log || fail "log file lacks the socket lines"
rm -f "$log"-*.log "$err"
pass why
