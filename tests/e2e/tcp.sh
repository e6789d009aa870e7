#!/usr/bin/env bash
# tests/e2e/tcp.sh CASE — unmodified TCP programs under libxmit.so (XMIT_IFACE=xa) against the
# kernel in namespace b. Every case checks the bytes (sha256) and that namespace a's kernel carried
# none of the connection's segments (its Tcp OutSegs/InSegs move by at most the few segments of
# the readiness probe, which runs before the counters are read).
#   curl-get   curl downloads a file (XMIT_TCP_MB, default 200 MB) from python3 -m http.server
#   curl-put   curl -T uploads a file to a small python3 receiver
#   py-server  a python3 echo server under xmit (listen/accept) answers kernel clients
#   py-reuseport  two SO_REUSEPORT listeners in two threads of one python3 under xmit share 40 kernel clients
#   iperf3     iperf3 -c under xmit -> kernel iperf3 -s, then the reverse (-R): no error
#   loss       curl GET and PUT of 100 MB (XMIT_TCP_LOSS_MB) byte-exact while the kernel side drops
#              2 % of the frames each way and delays 3 % so that later ones overtake them
#              (bed_impair in lib.sh: nftables and HTB; this kernel has no netem)
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
case_=$1
bed_up "tcp-$case_"
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT
MB=${XMIT_TCP_MB:-200}
under_xmit() { ip netns exec "$XMIT_NS_A" env "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$work/xmit-%p.log" LD_PRELOAD="$XMIT_LIB" "$@"; }
counters() { echo "$(snmp "$XMIT_NS_A" Tcp OutSegs) $(snmp "$XMIT_NS_A" Tcp InSegs)"; }
check_kernel_quiet() {  # check_kernel_quiet "OUT0 IN0"
  read -r o0 i0 <<<"$1"; read -r o1 i1 <<<"$(counters)"
  echo "namespace a kernel Tcp: OutSegs +$((o1 - o0)), InSegs +$((i1 - i0))"
  [ $((o1 - o0)) -le 2 ] && [ $((i1 - i0)) -le 2 ] || { cat "$work"/xmit-*.log 2>/dev/null; fail "the kernel carried the connection"; }
}

# serve_py N: $server (python3, under xmit) serves N connections of $client (python3 in b): the
# server writes $work/ready once listening, its stdout goes to $work/server.out.
serve_py() {
  under_xmit "$PY" -c "$server" "$work/ready" "$1" >"$work/server.out" 2>"$work/server.err" &
  BED_PIDS=$!
  for _ in $(seq 100); do [ -e "$work/ready" ] && break; sleep 0.1; done
  out=$(ip netns exec "$XMIT_NS_B" "$PY" -c "$client" "$XMIT_ADDR_A" 2>&1) || { cat "$work"/server.err "$work"/xmit-*.log; fail "client: $out"; }
  echo "$out"
  wait "$BED_PIDS"; BED_PIDS=
}

# serve_get PORT: python3 -m http.server in b serving $work (the file "blob").
serve_get() {
  (cd "$work" && exec ip netns exec "$XMIT_NS_B" "$PY" -m http.server --bind "$XMIT_ADDR_B" "$1" >/dev/null 2>&1) &
  BED_PIDS=$!
  wait_tcp "$XMIT_NS_A" "$XMIT_ADDR_B" "$1" || fail "http.server did not start"
}
# put_blob PORT WHAT: a receiver in b that answers a PUT with the sha256 of its body; curl -T under
# xmit uploads $work/blob to it; the answer must be the file's sha256, and a's kernel carries nothing.
put_blob() {
  local receiver='
import hashlib, http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_PUT(self):
        n = int(self.headers["Content-Length"]); h = hashlib.sha256(); left = n
        while left:
            c = self.rfile.read(min(left, 1 << 16))
            if not c: break
            h.update(c); left -= len(c)
        body = (h.hexdigest() + "\n").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()'
  ip netns exec "$XMIT_NS_B" "$PY" -c "$receiver" "$XMIT_ADDR_B" "$1" >/dev/null 2>&1 &
  BED_PIDS=$!
  wait_tcp "$XMIT_NS_A" "$XMIT_ADDR_B" "$1" || fail "receiver did not start"
  local c0 got want
  c0=$(counters)
  got=$(under_xmit curl -sS -T "$work/blob" "http://$XMIT_ADDR_B:$1/up") || { cat "$work"/xmit-*.log; fail "curl -T failed"; }
  want=$(sha256sum <"$work/blob" | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "uploaded sha256 $got, file $want"
  echo "$2: sha256 matches at the receiver"
  check_kernel_quiet "$c0"
}

case "$case_" in
  curl-get)
    head -c $((MB << 20)) /dev/urandom >"$work/blob"
    serve_get 8080
    c0=$(counters)
    t0=$(date +%s.%N)
    under_xmit curl -sS -o "$work/got" "http://$XMIT_ADDR_B:8080/blob" || { cat "$work"/xmit-*.log; fail "curl failed"; }
    t1=$(date +%s.%N)
    [ "$(sha256sum <"$work/got")" = "$(sha256sum <"$work/blob")" ] || fail "downloaded file differs"
    echo "curl GET $MB MB: sha256 matches, $(echo "$MB / ($t1 - $t0)" | bc -l | cut -c1-6) MB/s"
    check_kernel_quiet "$c0"
    # A refused connection: the kernel peer answers RST.
    out=$(under_xmit curl -sS "http://$XMIT_ADDR_B:8081/" 2>&1); rc=$?
    [ $rc = 7 ] || fail "curl to a closed port: exit $rc ($out), expected 7"
    echo "closed port: curl exit 7 ($out)"
    ;;
  curl-put)
    head -c $((MB << 20)) /dev/urandom >"$work/blob"
    # The segments xmit sends, as namespace b receives them (headers only): none longer than the
    # MSS although the stack hands the device GSO skbs of up to 64 KiB (which the device cuts: the
    # AF_XDP queue during its copy, the software verbs device as IBV_WR_TSO), and nearly all full.
    ip netns exec "$XMIT_NS_B" tcpdump -i xb -s 96 -U -w "$work/put.pcap" \
      "tcp dst port 8080 and src host $XMIT_ADDR_A" >/dev/null 2>"$work/tcpdump.err" &
    dump=$!
    for _ in $(seq 50); do grep -q listening "$work/tcpdump.err" && break; sleep 0.1; done
    put_blob 8080 "curl PUT $MB MB"
    sleep 0.5; kill -INT "$dump"; wait "$dump"
    grep -E 'captured|dropped by kernel' "$work/tcpdump.err"
    "$PY" - "$work/put.pcap" <<'PYEOF' || fail "segments on the wire"
import struct, sys
d = open(sys.argv[1], "rb").read()
off, sizes, mss = 24, [], 0
while off + 16 <= len(d):
    incl = struct.unpack_from("<I", d, off + 8)[0]
    p = d[off + 16:off + 16 + incl]; off += 16 + incl
    ihl = (p[14] & 15) * 4; tot = struct.unpack_from(">H", p, 16)[0]; th = 14 + ihl
    doff = (p[th + 12] >> 4) * 4
    if p[th + 13] & 0x02:  # the SYN: its MSS option
        o = th + 20
        while o < th + doff and p[o] != 0:
            if p[o] == 1: o += 1; continue
            if p[o] == 2: mss = struct.unpack_from(">H", p, o + 2)[0]
            o += p[o + 1]
    n = tot - ihl - doff
    if n > 0: sizes.append(n)
if not sizes or not mss: sys.exit("no data segments or no SYN captured")
top = max(sizes); full = sum(1 for n in sizes if n == top)
print("wire: %d data segments captured, largest payload %d (SYN MSS %d), %.1f %% of them that size"
      % (len(sizes), top, mss, 100.0 * full / len(sizes)))
if top > mss: sys.exit("a segment of %d bytes is longer than the MSS %d" % (top, mss))
if top < mss - 40 or full < 0.9 * len(sizes): sys.exit("segments are not MSS-sized")
PYEOF
    tso=$(sed -nE 's/.*frames sent \(([0-9]+) TSO.*/\1/p; s/.*\(([0-9]+) TSO frames cut into them\).*/\1/p' "$work"/xmit-*.log | head -1)
    echo "xmit's queue: ${tso:-?} TSO frames"
    if [ "${XMIT_VERBS_SW_OFFLOADS:-on}" = off ]; then
      [ "${tso:-x}" = 0 ] || fail "XMIT_VERBS_SW_OFFLOADS=off, yet ${tso:-?} TSO frames"
    else
      [ "${tso:-0}" -gt 0 ] || { cat "$work"/xmit-*.log; fail "the device was given no TSO frame"; }
    fi
    ;;
  py-server)
    server='
import socket, sys, signal
signal.alarm(60)
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", 7000)); l.listen(8)
open(sys.argv[1], "w").close()
for _ in range(int(sys.argv[2])):
    c, a = l.accept()
    n = 0
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d); n += len(d)
    c.close()
print("served")'
    client='
import os, socket, sys, threading
def send(s, data):
    s.sendall(data); s.shutdown(socket.SHUT_WR)
for i in range(3):
    s = socket.create_connection((sys.argv[1], 7000), timeout=20)
    data = os.urandom(1 << 20) * (i + 1)
    t = threading.Thread(target=send, args=(s, data)); t.start()  # the echo comes back meanwhile
    got = b""
    while True:
        d = s.recv(1 << 16)
        if not d: break
        got += d
    t.join()
    if got != data: sys.exit("echo %d differs: %d of %d bytes" % (i, len(got), len(data)))
    s.close()
print("echoed 1+2+3 MiB")'
    c0=$(counters)
    serve_py 3
    [ "$(cat "$work/server.out")" = served ] || { cat "$work/server.err"; fail "server did not finish"; }
    check_kernel_quiet "$c0"
    ;;
  iperf3)
    ip netns exec "$XMIT_NS_B" env -u MALLOC_PERTURB_ iperf3 -s -B "$XMIT_ADDR_B" -p 5201 >/dev/null 2>&1 &
    BED_PIDS=$!
    wait_tcp "$XMIT_NS_A" "$XMIT_ADDR_B" 5201 || fail "iperf3 -s did not start"
    sleep 0.5  # the probe's connection ends at the server before the test's begins
    c0=$(counters)
    for dir in "" -R; do
      under_xmit iperf3 -c "$XMIT_ADDR_B" -p 5201 -t "${XMIT_IPERF_SECS:-5}" $dir -J >"$work/r.json" 2>"$work/r.err" ||
        { cat "$work/r.err" "$work"/xmit-*.log; tail -20 "$work/r.json"; fail "iperf3 $dir failed"; }
      "$PY" - "$work/r.json" "$dir" <<'PYEOF' || fail "iperf3 $dir reported an error"
import json, sys
r = json.load(open(sys.argv[1]))
if "error" in r: sys.exit(r["error"])
e = r["end"]
print("iperf3 %s: sent %.1f Mbit/s, received %.1f Mbit/s, retransmits %s" % (
    sys.argv[2] or "(client sends)", e["sum_sent"]["bits_per_second"] / 1e6,
    e["sum_received"]["bits_per_second"] / 1e6, e["sum_sent"].get("retransmits")))
PYEOF
    done
    check_kernel_quiet "$c0"
    ;;
  py-reuseport)
    # Two threads of one python3 under xmit, each with its own SO_REUSEPORT listener on port 7000;
    # 40 kernel clients each send 64 KiB and read the echo. Every echo must be byte-exact and each
    # listener must have had connections (the 4-tuple hash spreads them).
    server='
import socket, sys, signal, threading
signal.alarm(60)
counts = [0, 0]
ls = []
for k in range(2):
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    l.bind(("0.0.0.0", 7000)); l.listen(64); ls.append(l)
def serve(k, n):
    l = ls[k]; l.settimeout(30)
    while sum(counts) < n:
        try: c, a = l.accept()
        except socket.timeout: break
        while True:
            d = c.recv(65536)
            if not d: break
            c.sendall(d)
        c.close()
        counts[k] += 1  # once served
open(sys.argv[1], "w").close()
ts = [threading.Thread(target=serve, args=(k, int(sys.argv[2])), daemon=True) for k in range(2)]
for t in ts: t.start()
while sum(counts) < int(sys.argv[2]) and any(t.is_alive() for t in ts):
    ts[0].join(0.1)
print("listeners", counts[0], counts[1])'
    client='
import os, socket, sys
for i in range(40):
    s = socket.create_connection((sys.argv[1], 7000), timeout=20)
    data = os.urandom(1 << 16)
    s.sendall(data); s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        d = s.recv(1 << 16)
        if not d: break
        got += d
    if got != data: sys.exit("echo %d differs" % i)
    s.close()
print("40 echoes of 64 KiB byte-exact")'
    c0=$(counters)
    serve_py 40
    read -r _ n0 n1 <"$work/server.out" || { cat "$work/server.err"; fail "server did not finish"; }
    echo "connections per listener: $n0 $n1"
    [ "$n0" -gt 0 ] && [ "$n1" -gt 0 ] && [ $((n0 + n1)) -eq 40 ] || fail "SO_REUSEPORT did not spread 40 connections: $n0 + $n1"
    check_kernel_quiet "$c0"
    ;;
  loss)
    LMB=${XMIT_TCP_LOSS_MB:-100}
    head -c $((LMB << 20)) /dev/urandom >"$work/blob"
    bed_impair 2 3 || fail "cannot impair namespace b (bridge, htb, nftables)"
    serve_get 8080
    c0=$(counters)
    under_xmit curl -sS --retry 0 -o "$work/got" "http://$XMIT_ADDR_B:8080/blob" || { cat "$work"/xmit-*.log; fail "curl GET failed"; }
    [ "$(sha256sum <"$work/got")" = "$(sha256sum <"$work/blob")" ] || fail "downloaded file differs"
    echo "curl GET $LMB MB under 2 % loss and 3 % reordering each way: sha256 matches"
    check_kernel_quiet "$c0"
    kill $BED_PIDS; BED_PIDS=
    put_blob 8081 "curl PUT $LMB MB under 2 % loss and 3 % reordering each way"
    bed_impaired | tee "$work/impaired"
    # Each way must have lost and delayed frames, and b's kernel must have queued segments out of
    # order (the upload's frames overtook each other; the download's reordering shows in xmit's SACKs).
    [ "$(awk '$3 == 0' "$work/impaired" | wc -l)" -eq 0 ] && [ "$(wc -l <"$work/impaired")" -eq 4 ] ||
      fail "an impairment did not act"
    ofo=$(ip netns exec "$XMIT_NS_B" nstat -az TcpExtTCPOFOQueue | awk '/TcpExtTCPOFOQueue/ {print $2}')
    echo "b's kernel TcpExtTCPOFOQueue: $ofo"
    [ "${ofo:-0}" -gt 0 ] || fail "no segment arrived out of order at b"
    ;;
  *) fail "unknown case $case_" ;;
esac
pass "tcp $case_"
