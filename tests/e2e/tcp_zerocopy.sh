#!/usr/bin/env bash
# tests/e2e/tcp_zerocopy.sh — MSG_ZEROCOPY on TCP, differential: tcp_zerocopy.py's client in
# namespace a on the kernel and under xmit, against its server (kernel sockets) in namespace b.
# Same return values, errnos and error-queue records (ids, coalesced ranges, origin), with the
# COPIED code normalised only where the kernel reports a copy-free send (xmit on AF_XDP copies
# into its UMEM, and says so), or left out on the verbs backend, which sends in place (code 0);
# the server's lines (length and sha256 of every connection, the filled one's pattern check)
# identical, and the closed connection's data arrived whole; a's kernel
# TCP counters show that xmit carried the connections.
source "$(dirname "$0")/lib.sh"
unset XMIT_IFACE XMIT_BACKEND XMIT_VERBS_DEVICE XMIT_UDP XMIT_TCP XMIT_LOG XMIT_PCAP
bed_up tzc
work=$(mktemp -d)
trap 'bed_down; rm -rf "$work"' EXIT
script="$(dirname "$0")/tcp_zerocopy.py"
# Port 7103's data segments never arrive (the SYN and pure ACKs do): the optmem case's objects all
# stay live.
ip netns exec "$XMIT_NS_B" nft -f - <<'NFT' || fail "nft: the drop rule for port 7103"
table ip tcp_zerocopy {
  chain in {
    type filter hook input priority 0;
    tcp dport 7103 tcp flags & syn == 0 ip length > 52 drop
  }
}
NFT

py_client_run kernel "$script" 7102 0.5
py_client_run xmit "$script" 7102 0.5 "${XB[@]}" XMIT_IFACE=xa XMIT_LOG="info:$work/xmit.log" LD_PRELOAD="$XMIT_LIB"
echo "kernel:"; cat "$work/kernel.out"
echo "namespace a kernel Tcp OutSegs during the client: kernel run +$segs_kernel, xmit run +$segs_xmit"
# The COPIED codes as each backend gives them: lib.sh's zc_normalise.
zc_normalise "$work"
diff "$work/kernel.norm" "$work/xmit.norm" || { tail -20 "$work/xmit.log"; fail "xmit's results differ from the kernel's"; }
diff "$work/kernel.srv" "$work/xmit.srv" || fail "the server got different data from xmit"
want=$(sed -n 's/^closed: expect server line //p' "$work/xmit.out")
grep -qx "$want" "$work/xmit.srv" || fail "the data sent before close() did not arrive whole"
[ "$segs_xmit" -eq 0 ] || fail "a's kernel sent $segs_xmit TCP segments during the xmit run: connections passed through"
[ "$segs_kernel" -gt 100 ] || fail "the kernel run sent only $segs_kernel segments through a's kernel"
grep -q '^record:' "$work/xmit.out" || fail "no error-queue record at all"
pass "TCP MSG_ZEROCOPY: $(grep -c '' "$work/xmit.out") lines identical to the kernel's ($(grep -c '^record:' "$work/xmit.out") error-queue records), $(grep -c '' "$work/xmit.srv") connections byte-exact at the peer"
