#!/usr/bin/env bash
# tests/e2e/passthrough.sh CASE — with no XMIT_IFACE, programs under libxmit.so behave exactly as
# without it. CASE: python3 | curl-file | curl-http | git | bash | ctor-signal
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP

case "$1" in
  python3)
    same_behaviour "$PY" -c '
import socket, os, sys
a, b = socket.socketpair()
a.sendall(b"x" * 100000); a.shutdown(socket.SHUT_WR)
got = b""
while True:
    c = b.recv(65536)
    if not c: break
    got += c
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
u.sendto(b"dgram", u.getsockname()); d, _ = u.recvfrom(100)
r, w = os.pipe(); os.write(w, b"pipe"); p = os.read(r, 4)
print(len(got), d, p, sys.version_info[:2])
sys.exit(7)'
    same_behaviour "$PY" -c 'import json; print(json.dumps({"k": list(range(5))}))'
    ;;
  curl-file)
    same_behaviour curl -sS file:///etc/os-release
    same_behaviour curl -sS file:///nonexistent/file
    ;;
  curl-http)
    bed_up http
    dir=$(mktemp -d); head -c 200000 /dev/urandom >"$dir/blob"; echo hello >"$dir/index.html"
    (cd "$dir" && exec ip netns exec "$XMIT_NS_B" "$PY" -m http.server --bind "$XMIT_ADDR_B" 8080 >/dev/null 2>&1) &
    BED_PIDS=$!
    wait_tcp "$XMIT_NS_A" "$XMIT_ADDR_B" 8080 || fail "http.server did not start"
    same_behaviour ip netns exec "$XMIT_NS_A" curl -sS "http://$XMIT_ADDR_B:8080/blob"
    same_behaviour ip netns exec "$XMIT_NS_A" curl -sS -o /dev/null -w '%{http_code}\n' "http://$XMIT_ADDR_B:8080/missing"
    same_behaviour ip netns exec "$XMIT_NS_A" curl -sS "http://$XMIT_ADDR_B:8081/"   # refused
    cmp <(ip netns exec "$XMIT_NS_A" env LD_PRELOAD="$XMIT_LIB" curl -sS "http://$XMIT_ADDR_B:8080/blob") "$dir/blob" \
      || fail "body under xmit differs from the file served"
    rm -rf "$dir"
    ;;
  git)
    same_behaviour git --version
    same_behaviour git -C "$XMIT_SRC" rev-parse --is-inside-work-tree
    ;;
  bash)
    same_behaviour bash -c 'echo hi; ls / | sort | head -3; exit 3'
    same_behaviour bash -c 'x=$(echo sub | tr a-z A-Z); echo "$x" >&2; kill -TERM $$'
    ;;
  ctor-signal)
    prog=$2
    same_behaviour "$prog"
    out=$(LD_PRELOAD="$XMIT_LIB" "$prog" 2>/dev/null) || fail "ctor-signal program failed under xmit: $out"
    echo "$out"
    ;;
  *) fail "unknown case $1" ;;
esac
pass "$1"
