#!/usr/bin/env bash
# tests/e2e/sndbuf_kernel.sh — the kernel's send-buffer numbers that tests/udp/udp_sndbuf_test.cc
# and tests/ipv4/sk_wmem_test.cc reproduce, measured on the running kernel: a kernel UDP socket in
# namespace a sends into xa, whose qdisc (tbf at 8 bit/s) holds every frame, so each skb stays
# charged to the socket as xmit's stay charged until their completion. Checks, per payload size,
# how many non-blocking datagrams fit under SO_SNDBUF's minimum (and the default) before EAGAIN and
# what SIOCOUTQ says then; ENOBUFS for later fragments past 2 * sk_sndbuf; SO_SNDTIMEO -> EAGAIN;
# MSG_ZEROCOPY's ENOBUFS once its objects fill net.core.optmem_max.
# A failure here means the kernel's truesizes moved (e.g. SKB_SMALL_HEAD_CACHE_SIZE, a config
# matter): update skb_alloc_truesize() and the tables. xmit itself is not involved.
source "$(dirname "$0")/lib.sh"
bed_up sndbuf
ip -n "$XMIT_NS_A" neigh replace "$XMIT_ADDR_B" lladdr "$XMIT_MAC_B" dev xa  # no ARP behind the stall
ip netns exec "$XMIT_NS_A" tc qdisc add dev xa root tbf rate 8bit burst 1600 limit 1000000

out=$(ip netns exec "$XMIT_NS_A" python3 - "$XMIT_ADDR_B" <<'PY'
import errno, fcntl, socket, struct, sys, time
B = sys.argv[1]
def outq(s): return struct.unpack("i", fcntl.ioctl(s, 0x5411, b"\0" * 4))[0]  # SIOCOUTQ
def sock(sndbuf):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if sndbuf: s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    return s
def fill(sndbuf, size):
    s = sock(sndbuf); n = 0
    while n < 1000:
        try: s.sendto(b"x" * size, socket.MSG_DONTWAIT, (B, 9))
        except OSError as e: return "%d %d %s %d" % (s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF), size, errno.errorcode[e.errno], n), s
        n += 1
# The first datagram of each size leaves within tbf's burst: one sacrificial send drains it.
sock(0).sendto(b"x" * 1400, (B, 9)); sock(0).sendto(b"x" * 1400, (B, 9))
for size in (10, 100, 500, 1000, 1472, 1473, 3000):
    r, s = fill(1, size); print("fit", r, outq(s))
r, s = fill(0, 1000); print("fit", r, outq(s))
s = sock(1)
for size in (8000, 5000, 10):
    try: s.sendto(b"x" * size, socket.MSG_DONTWAIT, (B, 9)); print("frag", size, "ok", outq(s))
    except OSError as e: print("frag", size, errno.errorcode[e.errno], outq(s))
s = sock(1); s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 0, 200000))
t = time.monotonic()
try:
    while True: s.sendto(b"x" * 1000, (B, 9))
except OSError as e: print("sndtimeo", errno.errorcode[e.errno], time.monotonic() - t >= 0.2)
# MSG_ZEROCOPY (SO_ZEROCOPY 60, MSG_ZEROCOPY 0x4000000) from a page-aligned buffer: a datagram
# pins the caller's page (4096 charged beside its 832-byte head); each held datagram's object is
# charged to the option memory (SO_SNDBUFFORCE lifts the send buffer out of the way); a corked
# datagram's later sends extend its object.
import mmap
page = memoryview(mmap.mmap(-1, 4096))
ZC = socket.MSG_DONTWAIT | 0x4000000
def zc_sock(sndbuf):
    s = sock(0); s.setsockopt(socket.SOL_SOCKET, 60, 1)
    if sndbuf: s.setsockopt(socket.SOL_SOCKET, 32, sndbuf)  # SO_SNDBUFFORCE
    return s
def zc_fill(s):
    n = 0
    while n < 1000:
        try: s.sendto(page[:10], ZC, (B, 9))
        except OSError as e: return "%s %d" % (errno.errorcode[e.errno], n)
        n += 1
s = zc_sock(0); print("zc sndbuf", zc_fill(s), outq(s))
s = zc_sock(1 << 22); print("zc optmem", zc_fill(s))
# Appends to an skb carrying an object never coalesce (skb_can_coalesce()): one fragment each,
# until MAX_SKB_FRAGS; the failed send drops the corked datagram (udp_flush_pending_frames()),
# whose notification then holds an object's charge beside the next datagram's object.
s = zc_sock(1 << 22); n = 0; why = "-"
while n < 100:
    try: s.sendto(page[:1], ZC | socket.MSG_MORE, (B, 9))
    except OSError as e: why = errno.errorcode[e.errno]; break
    n += 1
s.sendto(page[:1], ZC, (B, 9)); print("zc corked sends before", why, n, "then optmem", zc_fill(s))
PY
)
echo "$out"
# sock_omalloc() takes an object while sk_omem_alloc + 576 <= optmem_max, each one charging 832.
optmem=$(ip netns exec "$XMIT_NS_A" cat /proc/sys/net/core/optmem_max)
zc_objects=$(((optmem - 576) / 832 + 1))
expect="fit 4608 10 EAGAIN 6 4992
fit 4608 100 EAGAIN 6 4992
fit 4608 500 EAGAIN 4 5120
fit 4608 1000 EAGAIN 2 4608
fit 4608 1472 EAGAIN 2 4608
fit 4608 1473 EAGAIN 2 6272
fit 4608 3000 EAGAIN 1 5440
fit 212992 1000 EAGAIN 93 214272
frag 8000 ENOBUFS 0
frag 5000 ok 8192
frag 10 EAGAIN 8192
sndtimeo EAGAIN True
zc sndbuf EAGAIN 44 216832
zc optmem ENOBUFS $zc_objects
zc corked sends before EMSGSIZE 18 then optmem ENOBUFS $((zc_objects - 2))"
[ "$out" = "$expect" ] || fail "the kernel's send buffer moved; expected:
$expect"
pass "sndbuf_kernel: the kernel charges what skb_alloc_truesize() says (832/1280/2304 per skb), and $zc_objects MSG_ZEROCOPY objects fill optmem_max $optmem"
