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
