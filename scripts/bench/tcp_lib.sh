# scripts/bench/tcp_lib.sh — sourced by scripts/bench/tcp_stream and tcp_rr: arguments, the namespace
# bed, the kernel server (tcp_load server in namespace b), one client run per (path, mode, size), and
# the evidence whether xmit really carried the connection.
#
# Paths: kernel (the client as is), afxdp (LD_PRELOAD libxmit.so, XMIT_IFACE=xa, XMIT_BACKEND=afxdp),
# verbs-sw (XMIT_BACKEND=verbs, XMIT_VERBS_DEVICE=software: checksum offload and TSO, as mlx5),
# verbs-sw-off (the same device without offloads: XMIT_VERBS_SW_OFFLOADS=off), afxdp-bp (afxdp with
# XMIT_BUSY_POLL=50: blocked receives spin on the queue for up to 50 µs before they sleep). A connection counts as offloaded only if
# xmit's debug log has no "fd F: ... passes through" line for the client's data socket AND
# namespace a's kernel sent (almost) no TCP segments during the run (/proc/net/snmp Tcp OutSegs: a
# connection xmit carries leaves the kernel's counters alone). Otherwise the run is "passthrough": its
# numbers are the kernel's, and the table says so instead of a ratio.

die() { echo "$bench: $*" >&2; exit 1; }
seconds=3
rounds=1
build=build
paths="kernel afxdp verbs-sw"
sizes=""  # --sizes: tcp_stream's write sizes instead of its own
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=${2:?}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    --paths) paths=${2:?}; shift 2 ;;
    --sizes) sizes=${2:?}; shift 2 ;;
    -*) echo "usage: $0 [--seconds S] [--rounds N] [--paths 'kernel afxdp verbs-sw'] [--sizes 'B...'] [BUILD_DIR]" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
for p in $paths; do
  case "$p" in kernel|afxdp|afxdp-bp|verbs-sw|verbs-sw-off) ;; *) die "unknown path $p (accepted: kernel afxdp afxdp-bp verbs-sw verbs-sw-off)" ;; esac
done
[ "$(id -u)" = 0 ] || die "run as root (namespaces, AF_XDP, the software verbs device)"
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" scripts/bench/tcp_load preload/libxmit.so >/dev/null
load=$(readlink -f "$build/scripts/bench/tcp_load")
lib=$(readlink -f "$build/preload/libxmit.so")

tag="$$-$bench"
work=$(mktemp -d)
server=""
cleanup() {
  local rc=$?
  set +e
  if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; fi
  scripts/netns down "$tag"
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
eval "$(scripts/netns up "$tag")" || die "could not create the namespace bed"
port=9100

ip netns exec "$XMIT_NS_B" "$load" server "$port" >"$work/server.out" 2>&1 &
server=$!
for i in $(seq 300); do
  grep -q ready "$work/server.out" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
grep -q ready "$work/server.out" || die "the server in $XMIT_NS_B did not start: $(cat "$work/server.out")"

tcp_snmp() {  # tcp_snmp NS FIELD: a namespace's kernel Tcp counter
  ip netns exec "$1" awk -v f="$2" '$1 == "Tcp:" { if (!n) { for (i = 2; i <= NF; i++) if ($i == f) c = i; n = 1 } else print $c }' /proc/net/snmp
}
out_segs() { tcp_snmp "$XMIT_NS_A" OutSegs; }

# run PATH MODE SIZE: one client run; appends "PATH MODE SIZE <client line> outsegs N state WHY" to
# $work/results, where state is kernel, offloaded or passthrough and WHY (rest of line) the evidence;
# b_retrans: segments the kernel server in namespace b retransmitted during the run (Tcp RetransSegs:
# what the client's side lost or dropped, and how often the peer had to recover).
run() {
  local path=$1 mode=$2 size=$3 rc=0 o0 o1 env=()
  case "$path" in
    afxdp) env=(XMIT_BACKEND=afxdp) ;;
    afxdp-bp) env=(XMIT_BACKEND=afxdp XMIT_BUSY_POLL=50) ;;
    verbs-sw) env=(XMIT_BACKEND=verbs XMIT_VERBS_DEVICE=software) ;;
    verbs-sw-off) env=(XMIT_BACKEND=verbs XMIT_VERBS_DEVICE=software XMIT_VERBS_SW_OFFLOADS=off) ;;
  esac
  rm -f "$work/xmit.log"
  o0=$(out_segs)
  r0=$(tcp_snmp "$XMIT_NS_B" RetransSegs)
  if [ "$path" = kernel ]; then
    ip netns exec "$XMIT_NS_A" timeout -k 2 $((seconds + 30)) \
      "$load" client "$XMIT_ADDR_B" "$port" "$mode" "$size" "$seconds" >"$work/client.out" 2>"$work/client.err" || rc=$?
  else
    ip netns exec "$XMIT_NS_A" env "${env[@]}" XMIT_IFACE=xa XMIT_LOG="debug:$work/xmit.log" LD_PRELOAD="$lib" \
      timeout -k 2 $((seconds + 30)) \
      "$load" client "$XMIT_ADDR_B" "$port" "$mode" "$size" "$seconds" >"$work/client.out" 2>"$work/client.err" || rc=$?
  fi
  o1=$(out_segs)
  r1=$(tcp_snmp "$XMIT_NS_B" RetransSegs)
  { [ "$rc" = 124 ] || [ "$rc" = 137 ]; } && die "$path $mode $size B: the client hung (no exit within $((seconds + 30)) s)"
  [ "$rc" = 0 ] || die "$path $mode $size B: the client failed ($rc): $(cat "$work/client.err")"
  local line fd state why
  line=$(cat "$work/client.out")
  fd=$(awk '{print $2}' <<<"$line")
  if [ "$path" = kernel ]; then
    state=kernel; why="-"
  else
    local pass backend
    # "fd F: socket(...) passes through: WHY" at socket(), or "fd F: no route to ... passes through"
    # when a connect() hands it back.
    pass=$(grep -m1 -E "fd $fd: .*passes through" "$work/xmit.log" 2>/dev/null | sed 's/^xmit\[[0-9]*\]: //' || true)
    backend=$(grep -m1 -oE "accelerating xa \(ifindex [0-9]+\) through [a-z]+" "$work/xmit.log" 2>/dev/null | awk '{print $NF}' || true)
    if [ -n "$pass" ]; then
      state=passthrough; why="xmit: \"$pass\"; a's kernel sent $((o1 - o0)) segments"
    elif [ $((o1 - o0)) -ge 100 ]; then
      state=passthrough; why="a's kernel sent $((o1 - o0)) TCP segments"
    else
      state=offloaded; why="a's kernel sent $((o1 - o0)) segments"
    fi
    if [ -n "$backend" ]; then
      why="$why; xmit's queue: $backend"
    else
      why="$why; no 'accelerating' line: $(grep -m1 -E 'error|notice' "$work/xmit.log" 2>/dev/null | sed 's/^xmit\[[0-9]*\]: //' || true)"
    fi
  fi
  echo "$path $mode $size $line b_retrans $((r1 - r0)) outsegs $((o1 - o0)) $state $why" >>"$work/results"
}

# rounds_of MODE SIZE...: every path once per size per round, the order rotating between rounds.
rounds_of() {
  local mode=$1 r size p i n ordered
  shift
  read -ra ps <<<"$paths"
  n=${#ps[@]}
  for r in $(seq "$rounds"); do
    for size in "$@"; do
      for i in $(seq 0 $((n - 1))); do
        p=${ps[$(((i + r - 1) % n))]}
        run "$p" "$mode" "$size"
      done
    done
  done
}
