#!/usr/bin/env bash
# tests/e2e/msg_zerocopy_selftest.sh PROTO — Linux's own MSG_ZEROCOPY selftest
# (tools/testing/selftests/net/msg_zerocopy.c from Debian's linux-source-6.1 package, unmodified,
# built in a temporary directory outside the tree) over IPv4 on the namespace bed: its receiver on
# the kernel in b, its sender in a, once on the kernel and once under xmit, with and without -z
# (MSG_ZEROCOPY), PROTO tcp or udp. The sender sends for 1 s and prints
# "tx=<sends> (<MB> MB) txc=<completions> zc=<y|n>": the counts follow the throughput, so what must
# be the same on both is what the selftest itself checks: with -z every send's completion arrived
# (txc == tx, no "missing notifications", no "serr: inconsistent", exit 0), without -z none; zc=n
# on both (the kernel copies over veth, xmit on AF_XDP into its UMEM) except xmit's TCP -z on the
# verbs backend (XMIT_TEST_BACKEND=verbs-sw): zc=y, its sends read in place (UDP's 65507-byte
# datagrams are IP-fragmented, so copied there too); the TCP receiver got the MB
# the sender sent (the UDP one at most the datagrams sent: it drops some under load, on the kernel's
# run too). a's kernel TCP/UDP counters show xmit carried the traffic.
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
proto=${1:-tcp}
tarball=$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | head -1)
[ -n "$tarball" ] || fail "no /usr/src/linux-source-*.tar.xz (scripts/setup installs linux-source-6.1)"
work=$(mktemp -d)
bed_up mzc
trap 'bed_down; rm -rf "$work"' EXIT
# Built once per tarball (extracting one member decompresses the whole archive: ~30 s) into a
# cache outside the tree, shared by the tcp and udp runs.
cache="${TMPDIR:-/tmp}/xmit-msg_zerocopy-$(stat -c %Y-%s "$tarball")"
if [ ! -x "$cache/msg_zerocopy" ]; then
  member=$(tar tf "$tarball" --wildcards '*/tools/testing/selftests/net/msg_zerocopy.c' 2>/dev/null | head -1)
  [ -n "$member" ] || fail "msg_zerocopy.c is not in $tarball"
  tar xf "$tarball" -C "$work" "$member" || fail "cannot extract $member"
  gcc -O2 -Wall -o "$work/msg_zerocopy" "$work/$member" 2>"$work/cc.err" || { cat "$work/cc.err"; fail "cannot build msg_zerocopy.c"; }
  mkdir -p "$cache" && mv "$work/msg_zerocopy" "$cache/msg_zerocopy.$$" && mv "$cache/msg_zerocopy.$$" "$cache/msg_zerocopy" ||
    fail "cannot keep the binary in $cache"
  echo "built $(basename "$tarball"):$member"
fi
cp "$cache/msg_zerocopy" "$work/msg_zerocopy" || fail "no $cache/msg_zerocopy"

case $proto in
  tcp) counter=(Tcp OutSegs) ;;
  udp) counter=(Udp OutDatagrams) ;;
  *) fail "PROTO $proto (accepted: tcp, udp)" ;;
esac
A=$XMIT_ADDR_A
B=$XMIT_ADDR_B

one() {  # one TAG ZFLAG [env...]: receiver in b, sender in a; leaves TAG.tx and TAG.rx
  local tag=$1 z=$2; shift 2
  ip netns exec "$XMIT_NS_B" "$work/msg_zerocopy" -4 -i xb -t 2 -S "$A" -D "$B" $z -r "$proto" 2>"$work/$tag.rx" &
  local rx=$!
  BED_PIDS=$rx
  sleep 0.3
  timeout 30 ip netns exec "$XMIT_NS_A" env "$@" "$work/msg_zerocopy" -4 -i xa -t 1 -S "$A" -D "$B" $z "$proto" \
    2>"$work/$tag.tx" || { cat "$work/$tag.tx"; fail "$tag: the sender failed"; }
  wait $rx || { cat "$work/$tag.rx"; fail "$tag: the receiver failed"; }
  BED_PIDS=
  grep -h '' "$work/$tag.tx" "$work/$tag.rx" | sed "s/^/$tag: /"
}

check() {  # check TAG ZFLAG: the selftest's own invariants
  local tag=$1 z=$2 line tx mb txc zc rxmb
  line=$(grep -E '^tx=' "$work/$tag.tx") || fail "$tag: no tx= line"
  read -r tx mb txc zc < <(echo "$line" | sed -E 's/^tx=([0-9]+) \(([0-9]+) MB\) txc=([0-9]+) zc=(.)$/\1 \2 \3 \4/')
  grep -q 'inconsistent' "$work/$tag.tx" && fail "$tag: $(grep 'inconsistent' "$work/$tag.tx")"
  local missing=""
  if grep -q 'missing notifications' "$work/$tag.tx"; then
    # The kernel's own UDP run under load sometimes ends a notification or two short (seen twice
    # in CI-like load: 6685 of 6688): the reference is then noted, not failed; xmit never may.
    [ "$tag" = kernel-z ] && [ "$proto" = udp ] || fail "$tag: $(grep 'missing' "$work/$tag.tx")"
    missing=" (the kernel's own run: $(grep -o 'missing notifications.*' "$work/$tag.tx" | head -1))"
  fi
  [ "$tx" -gt 0 ] || fail "$tag: nothing sent"
  if [ -n "$missing" ]; then
    echo "$tag:$missing"
  elif [ -n "$z" ]; then
    [ "$txc" = "$tx" ] || fail "$tag: $txc completions for $tx sends"
  else
    [ "$txc" = 0 ] || fail "$tag: $txc completions without -z"
  fi
  # zc: whether the last completion was copy-free. The kernel copies over veth, and so does xmit
  # on AF_XDP (into its UMEM); on the verbs backend xmit's TCP -z sends go in place (registered).
  # The UDP datagrams (65507 bytes) need IP fragmentation, which __ip_append_data() never sends in
  # place (no CHECKSUM_PARTIAL): copied, zc=n, on a NIC as on veth.
  local want_zc=n
  if [ "${XMIT_TEST_BACKEND:-afxdp}" = verbs-sw ] && [ "${tag#xmit}" != "$tag" ] && [ -n "$z" ] &&
     [ "$proto" = tcp ] && [ "${tag%-nomr}" = "$tag" ]; then
    want_zc=y
  fi
  [ "$zc" = "$want_zc" ] || fail "$tag: zc=$zc (expected $want_zc)"
  read -r rx rxmb < <(sed -nE 's/^rx=([0-9]+) \(([0-9]+) MB\).*/\1 \2/p' "$work/$tag.rx")
  if [ "$proto" = tcp ]; then
    [ "$rxmb" = "$mb" ] || fail "$tag: the receiver got $rxmb MB of $mb"
  else  # the kernel receiver drops datagrams under load (the kernel's own run too)
    [ "$rx" -le "$tx" ] && [ "$rx" -gt 0 ] || fail "$tag: the receiver got $rx datagrams of $tx"
  fi
  summary+=" $tag: tx=$tx txc=$txc (${mb} MB, rx ${rxmb} MB)$missing;"
}

summary=""
for z in "" -z; do
  k0=$(snmp "$XMIT_NS_A" "${counter[@]}")
  one "kernel${z}" "$z"
  k1=$(snmp "$XMIT_NS_A" "${counter[@]}")
  one "xmit${z}" "$z" "${XB[@]}" XMIT_IFACE=xa XMIT_LOG=warn LD_PRELOAD="$XMIT_LIB"
  x1=$(snmp "$XMIT_NS_A" "${counter[@]}")
  check "kernel${z}" "$z"
  check "xmit${z}" "$z"
  [ $((k1 - k0)) -gt 0 ] || fail "kernel${z}: a's kernel ${counter[*]} did not move"
  [ $((x1 - k1)) -eq 0 ] || fail "xmit${z}: a's kernel sent $((x1 - k1)) (${counter[*]}): not carried by xmit"
done
# verbs, TCP: the same -z run with no registration of user memory (XMIT_VERBS_MR_ENTRIES=0, as when
# ibv_reg_mr() is refused): every payload copied, the 64 KiB TSO frames into the bounce buffers;
# each send's completion still arrives, COPIED (zc=n), and the receiver gets every MB.
if [ "${XMIT_TEST_BACKEND:-afxdp}" = verbs-sw ] && [ "$proto" = tcp ]; then
  one xmit-z-nomr -z "${XB[@]}" XMIT_VERBS_MR_ENTRIES=0 XMIT_IFACE=xa XMIT_LOG="info:$work/nomr.log" \
    LD_PRELOAD="$XMIT_LIB"
  check xmit-z-nomr -z
  bounced=$(sed -nE 's/.*, ([0-9]+) TSO frames copied into 64 KiB bounce buffers.*/\1/p' "$work/nomr.log")
  regs=$(sed -nE 's/.* ([0-9]+) user registrations.*/\1/p' "$work/nomr.log")
  [ "${bounced:-0}" -gt 0 ] && [ "$regs" = 0 ] ||
    fail "xmit-z-nomr: $bounced TSO frames bounced, $regs registrations (want > 0 and 0): $(grep 'ibverbs queue' "$work/nomr.log")"
  summary+=" ($bounced TSO frames bounced);"
fi
pass "msg_zerocopy -4 $proto:$summary"
