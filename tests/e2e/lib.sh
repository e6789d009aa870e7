# tests/e2e/lib.sh — shared helpers for the end-to-end shell tests. Sourced, not run.
# Expects XMIT_LIB (path of libxmit.so) and XMIT_SRC (source root) in the environment (meson sets them).
set -uo pipefail
PY=/usr/bin/python3   # Debian's python3, not a shim that runs other programs first
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "PASS: $*"; exit 0; }
# The backend the namespace tests run xmit on: XMIT_TEST_BACKEND=afxdp (the default: XMIT_BACKEND
# left unset, auto picks AF_XDP on the bed's veth) or verbs-sw (XMIT_BACKEND=verbs on the software
# verbs device over the same veth). Scripts put "${XB[@]}" into the environment of xmit's runs.
case "${XMIT_TEST_BACKEND:-afxdp}" in
  afxdp) XB=() ;;
  verbs-sw) XB=(XMIT_BACKEND=verbs XMIT_VERBS_DEVICE=software) ;;
  *) fail "XMIT_TEST_BACKEND=$XMIT_TEST_BACKEND (accepted: afxdp, verbs-sw)" ;;
esac

# The lines xmit itself writes, which are the only difference a passthrough run may show; and
# elapsed times programs print in their errors (curl: "after 0 ms"), which vary from run to run.
strip_xmit() { { grep -v '^xmit\[[0-9]*\]: ' || true; } | sed -E 's/after [0-9]+ ms/after N ms/'; }

# run_pair OUTDIR CMD...: runs CMD without and with libxmit.so, leaving out/err/rc of each in OUTDIR.
run_pair() {
  local dir=$1; shift
  "$@" >"$dir/k.out" 2>"$dir/k.err"; echo $? >"$dir/k.rc"
  LD_PRELOAD="$XMIT_LIB" "$@" >"$dir/x.out" 2>"$dir/x.err"; echo $? >"$dir/x.rc"
}

# same_behaviour CMD...: stdout, exit code and (xmit's own lines aside) stderr are identical.
same_behaviour() {
  local d; d=$(mktemp -d)
  run_pair "$d" "$@"
  cmp -s "$d/k.out" "$d/x.out" || { diff "$d/k.out" "$d/x.out" | head -20; fail "stdout differs: $*"; }
  cmp -s "$d/k.rc" "$d/x.rc" || fail "exit code $(cat "$d/k.rc") vs $(cat "$d/x.rc"): $*"
  diff <(strip_xmit <"$d/k.err") <(strip_xmit <"$d/x.err") >/dev/null || {
    diff <(strip_xmit <"$d/k.err") <(strip_xmit <"$d/x.err") | head -20; fail "stderr differs: $*"; }
  echo "same: $* (exit $(cat "$d/k.rc"), $(wc -c <"$d/k.out") bytes of stdout)"
  rm -rf "$d"
}

# bed_up SUFFIX: a namespace bed owned by this shell, removed when it exits however it exits.
bed_up() {
  BED_TAG="$$-$1"
  trap 'bed_down' EXIT
  trap 'exit 130' INT TERM
  eval "$("$XMIT_SRC/scripts/netns" up "$BED_TAG")" || fail "cannot create the namespace bed"
}
bed_down() {
  [ -n "${BED_PIDS:-}" ] && kill $BED_PIDS 2>/dev/null
  "$XMIT_SRC/scripts/netns" down "$BED_TAG"
}

# snmp NS PROTO FIELD: one counter of /proc/net/snmp in namespace NS (e.g. snmp "$XMIT_NS_A" Udp OutDatagrams).
snmp() {  # snmp NS PROTO FIELD
  ip netns exec "$1" awk -v p="$2:" -v f="$3" '$1 == p { if (!n) { for (i = 2; i <= NF; i++) if ($i == f) c = i; n = 1 } else print $c }' /proc/net/snmp
}

# wait_tcp NS ADDR PORT: until something listens (bounded: 10 s).
wait_tcp() {
  local i
  for i in $(seq 100); do
    ip netns exec "$1" "$PY" -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('$2',$3)))" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# py_client_run TAG SCRIPT PORT SETTLE [env...]: one run of a differential TCP test — a fresh
# `SCRIPT server` (kernel sockets) in namespace b, then `SCRIPT client` in a with env (none: the
# kernel's run), SETTLE seconds for its last data to reach the server. Leaves $work/TAG.out (the
# client's lines), $work/TAG.srv (the server's, without wait_tcp's probe connections to PORT) and
# segs_TAG, what a's kernel sent meanwhile (Tcp OutSegs).
py_client_run() {
  local tag=$1 script=$2 port=$3 settle=$4; shift 4
  ip netns exec "$XMIT_NS_B" "$PY" "$script" server >"$work/$tag.server" 2>"$work/$tag.server.err" &
  BED_PIDS=$!
  wait_tcp "$XMIT_NS_A" "$XMIT_ADDR_B" "$port" || fail "$tag: the server in $XMIT_NS_B did not start"
  local c0; c0=$(snmp "$XMIT_NS_A" Tcp OutSegs)
  timeout 120 ip netns exec "$XMIT_NS_A" env "$@" "$PY" "$script" client >"$work/$tag.out" 2>"$work/$tag.err" ||
    { cat "$work/$tag.out" "$work/$tag.err"; fail "$tag: the client failed"; }
  sleep "$settle"
  printf -v "segs_$tag" %d $(( $(snmp "$XMIT_NS_A" Tcp OutSegs) - c0 ))
  kill $BED_PIDS 2>/dev/null; wait $BED_PIDS 2>/dev/null
  BED_PIDS=
  # A probe's line: 0 bytes, the sha256 of nothing.
  grep -v '^0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855$' "$work/$tag.server" >"$work/$tag.srv"
}

# bed_impair LOSS REORDER: namespace b drops LOSS % of the frames each way and delays REORDER % of
# them each way so that the frames behind overtake them (this kernel has no netem). b's address
# moves behind a bridge inside b: xb -- br0 -- xb2 ~ xc, xc holding 198.18.0.2. A delayed frame waits
# in a 20 Mbit/s HTB class (on xb2 towards b's stack, on xc towards a) while the rest pass at
# 10 Gbit/s. Drops: nftables numgen on xb's ingress (from a) and xc's egress (to a). `bed_impaired`
# prints the counters of both.
bed_impair() {
  local ns=$XMIT_NS_B loss=$1 reorder=$2 d
  ip -n "$ns" addr del "$XMIT_ADDR_B/24" dev xb
  ip -n "$ns" link add xb2 type veth peer name xc
  ip -n "$ns" link add br0 type bridge
  ip netns exec "$ns" sysctl -qw net.ipv4.conf.br0.arp_ignore=1  # br0 has no address: no ARP answers
  ip -n "$ns" link set xb master br0
  ip -n "$ns" link set xb2 master br0
  ip -n "$ns" addr add "$XMIT_ADDR_B/24" dev xc
  ip netns exec "$ns" ethtool -K xc tx off >/dev/null  # complete checksums, as on xb (scripts/netns)
  for d in br0 xb2 xc; do ip -n "$ns" link set "$d" up; done
  for d in xb2 xc; do
    ip netns exec "$ns" tc qdisc add dev "$d" root handle 1: htb default 1 r2q 1000 2>/dev/null
    ip netns exec "$ns" tc class add dev "$d" parent 1: classid 1:1 htb rate 10gbit 2>/dev/null
    ip netns exec "$ns" tc class add dev "$d" parent 1: classid 1:2 htb rate 20mbit
  done
  # Bridged frames skip the netdev egress hook: the bridge's forward hook picks them (from xb).
  ip netns exec "$ns" nft -f - <<NFT
table bridge delay {
  chain to_b { type filter hook forward priority 0; iifname "xb" numgen random mod 100 < $reorder meta priority set 1:2 counter; }
}
table netdev impair {
  chain from_a { type filter hook ingress device "xb" priority 0; numgen random mod 100 < $loss counter drop; }
  chain to_a { type filter hook egress device "xc" priority 0; numgen random mod 100 < $loss counter drop; numgen random mod 100 < $reorder meta priority set 1:2 counter; }
}
NFT
}
bed_impaired() {
  ip netns exec "$XMIT_NS_B" nft list ruleset | awk '
    /chain to_b/ {c = "a->b delayed"} /chain from_a/ {c = "a->b dropped"} /chain to_a/ {c = "b->a"}
    /counter packets/ { n = $0; sub(/.*counter packets /, "", n); sub(/ .*/, "", n)
      w = c; if (c == "b->a") w = (/drop/ ? "b->a dropped" : "b->a delayed"); printf "%s %s\n", w, n }'
}

# zc_normalise DIR: DIR/kernel.out and DIR/xmit.out (errqueue.py's MSG_ZEROCOPY records) become
# DIR/kernel.norm and DIR/xmit.norm for diff. The kernel over veth copies (veth orphans the user
# pages: COPIED, code 1) except where a send put no user page on the wire (code 0). xmit on AF_XDP
# copies every send into its UMEM and says so: the kernel's code-0 records become code 1. On the
# verbs backend xmit reads the caller's pages in place (registered, code 0), as the kernel would
# over a NIC with SG: the code is left out of both sides, and xmit must have sent some in place.
zc_normalise() {
  local d=$1
  if [ "${XMIT_TEST_BACKEND:-afxdp}" = verbs-sw ]; then
    sed -E 's/origin 5 type 0 code [01] /origin 5 type 0 code - /' "$d/kernel.out" >"$d/kernel.norm"
    sed -E 's/origin 5 type 0 code [01] /origin 5 type 0 code - /' "$d/xmit.out" >"$d/xmit.norm"
    grep -q 'origin 5 type 0 code 0 ' "$d/xmit.out" ||
      fail "verbs: no MSG_ZEROCOPY record without COPIED (nothing went in place)"
  else
    sed 's/origin 5 type 0 code 0 /origin 5 type 0 code 1 /' "$d/kernel.out" >"$d/kernel.norm"
    cp "$d/xmit.out" "$d/xmit.norm"
  fi
}

# echo_runs PEER N TCP_SIZE UDP_SIZE XLOG: echo_peer.py's runs on the bed — N TCP connections of
# TCP_SIZE bytes with the client under xmit (in a) and a kernel server (b), the same with the roles
# swapped, and N UDP datagrams of UDP_SIZE from xmit echoed by the kernel; fails unless every echo came back byte-exact and
# a's kernel sent nothing (Tcp OutSegs, Udp OutDatagrams). xmit's info lines go to XLOG; sets
# TCP_MSS_SEEN (the kernel client's TCP_MAXSEG towards xmit's server), XMIT_MSS_SEEN and
# TCP_IP_MTU_SEEN (TCP_MAXSEG and IP_MTU of xmit's TCP client connection, after it ended) and IP_MTU_SEEN (of xmit's connected UDP socket).
echo_runs() {
  local peer=$1 n=$2 size=$3 usize=$4 xlog=$5 w out tcp0 udp0 tcp1 udp1
  w=$(mktemp -d)
  local xm=(ip netns exec "$XMIT_NS_A" env "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$xlog" LD_PRELOAD="$XMIT_LIB" "$PY" "$peer")
  local km=(ip netns exec "$XMIT_NS_B" "$PY" "$peer")
  ready() { local i; for i in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.1; done; fail "$2 did not start"; }
  tcp0=$(snmp "$XMIT_NS_A" Tcp OutSegs); udp0=$(snmp "$XMIT_NS_A" Udp OutDatagrams)

  "${km[@]}" tcp-server 198.18.0.2 7000 "$n" "$w/r1" 2>"$w/k1.err" &
  BED_PIDS=$!; ready "$w/r1" "the kernel TCP server"
  out=$("${xm[@]}" tcp-client 198.18.0.2 7000 "$n" "$size" 2>"$w/x1.err") || { cat "$w/x1.err" "$xlog" >&2; fail "TCP client under xmit failed"; }
  echo "xmit $out"
  case "$out" in "tcp-client ok $n of $n, "*) TCP_IP_MTU_SEEN=${out##*IP_MTU } XMIT_MSS_SEEN=${out#*mss }; XMIT_MSS_SEEN=${XMIT_MSS_SEEN%%,*} ;; *) cat "$xlog" >&2; fail "TCP client under xmit: $out" ;; esac
  wait "$BED_PIDS" || fail "the kernel TCP server failed: $(cat "$w/k1.err")"

  "${xm[@]}" tcp-server 198.18.0.1 7002 "$n" "$w/r2" 2>"$w/x2.err" &
  BED_PIDS=$!; ready "$w/r2" "the TCP server under xmit"
  out=$("${km[@]}" tcp-client 198.18.0.1 7002 "$n" "$size" 2>"$w/k2.err") || { cat "$w/k2.err" "$xlog" >&2; fail "kernel TCP client failed"; }
  echo "kernel $out"
  case "$out" in "tcp-client ok $n of $n, mss "*) TCP_MSS_SEEN=${out#*mss }; TCP_MSS_SEEN=${TCP_MSS_SEEN%%,*} ;; *) cat "$xlog" >&2; fail "kernel TCP client against xmit's server: $out" ;; esac
  wait "$BED_PIDS" || { cat "$w/x2.err" "$xlog" >&2; fail "TCP server under xmit failed"; }

  "${km[@]}" udp-server 198.18.0.2 7001 "$n" "$w/r3" 2>"$w/k3.err" &
  BED_PIDS=$!; ready "$w/r3" "the kernel UDP server"
  out=$("${xm[@]}" udp-client 198.18.0.2 7001 "$n" "$usize" 2>"$w/x3.err") || { cat "$w/x3.err" "$xlog" >&2; fail "UDP client under xmit failed"; }
  echo "xmit $out"
  case "$out" in "udp-client ok $n of $n, IP_MTU "*) IP_MTU_SEEN=${out##*IP_MTU } ;; *) cat "$xlog" >&2; fail "UDP client under xmit: $out" ;; esac
  wait "$BED_PIDS" || fail "the kernel UDP server failed: $(cat "$w/k3.err")"
  BED_PIDS=

  tcp1=$(snmp "$XMIT_NS_A" Tcp OutSegs); udp1=$(snmp "$XMIT_NS_A" Udp OutDatagrams)
  [ $((tcp1 - tcp0)) -eq 0 ] && [ $((udp1 - udp0)) -eq 0 ] ||
    fail "a's kernel sent $((tcp1 - tcp0)) TCP segments and $((udp1 - udp0)) datagrams; xmit should have"
  rm -rf "$w"
}
