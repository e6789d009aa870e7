#!/usr/bin/env bash
# tests/e2e/badenv.sh VAR VALUE — a bad XMIT_* value gives exactly one error line naming the
# variable and the accepted values, and the program runs on unharmed (everything passes through).
source "$(dirname "$0")/lib.sh"
var=$1 value=$2
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
prog='import socket; a, b = socket.socketpair(); a.send(b"ok"); print(b.recv(2).decode())'
d=$(mktemp -d)
env "$var=$value" "$PY" -c "$prog" >"$d/k.out" 2>"$d/k.err"; krc=$?
env "$var=$value" LD_PRELOAD="$XMIT_LIB" "$PY" -c "$prog" >"$d/x.out" 2>"$d/x.err"; xrc=$?
cat "$d/x.err"
[ "$krc" = "$xrc" ] || fail "exit code $krc without xmit, $xrc with"
cmp -s "$d/k.out" "$d/x.out" || fail "stdout differs"
[ "$(cat "$d/x.out")" = ok ] || fail "program output is '$(cat "$d/x.out")', not ok"
lines=$(grep -c '^xmit\[[0-9]*\]: ' "$d/x.err")
[ "$lines" = 1 ] || fail "expected one xmit line, got $lines"
grep -q "error: $var=" "$d/x.err" || fail "the line does not name $var"
grep -q "accepted: " "$d/x.err" || fail "the line does not list the accepted values"
grep -q "every socket passes through" "$d/x.err" || fail "the line does not say what happens"
rm -rf "$d"
pass "$var=$value"
