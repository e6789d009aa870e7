#!/usr/bin/python3
# tests/e2e/udp_diff.py — the socket-level differential test's three parts (see udp_diff.sh):
#   udp_diff.py run OUT.json       in namespace a: every case of CASES, each on fresh sockets; writes
#                                  each call's result, whether the socket got a port, and the
#                                  sender's Udp OutDatagrams / Ip OutRequests deltas
#   udp_diff.py capture OUT.json   in namespace b: every UDP/IPv4 frame arriving on xb, cut into
#                                  cases by the marker datagrams (port 9) the runner sends
#   udp_diff.py compare K_RUN K_CAP X_RUN X_CAP    the kernel's run against xmit's
# Frames are compared field by field after normalising only what must differ: source ports become
# letters in order of first appearance; an IP id becomes its datagram's number in the case (0 stays
# 0; the fragments of one datagram share it; connected sockets must count up by one; the datagrams
# one call sends, e.g. a UDP_SEGMENT send's segments, are compared by their id steps, the calls
# being told apart by a STEP marker after each); checksums become "ok" after being verified.
import ctypes, errno, fcntl, hashlib, json, os, socket, struct, sys, time

A, B = "198.18.0.1", "198.18.0.2"
P, P2, MARK = 7000, 7001, 9
SOL_UDP, UDP_CORK, SOL_UDPLITE, UDP_SEGMENT = 17, 1, 136, 103
IP_PKTINFO, IP_RETOPTS, MSG_PROBE = 8, 7, 0x10
IP_MTU_DISCOVER, IP_PMTUDISC_DONT, IP_PMTUDISC_DO, IP_PMTUDISC_PROBE = 10, 0, 2, 3
MSG_CMSG_COMPAT = 0x80000000

# Cases that xmit hands to the kernel on purpose: their kernel counters move in both runs.
KERNEL_SERVED = {
    "cmsg_ip_retopts": "IP options (IP_RETOPTS cmsg): not served, the socket passes to the kernel",
    "dst_loopback": "127.0.0.1 does not leave through the interface",
}


def pattern(n, seed):
    return bytes((seed * 31 + k * 7 + (k >> 8)) & 0xFF for k in range(n))


# ---- raw calls (ctypes: the interposed symbols, as a C program would call them) ----
libc = ctypes.CDLL(None, use_errno=True)


class Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class Msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.c_void_p),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p),
                ("controllen", ctypes.c_size_t), ("flags", ctypes.c_int)]


def sin(addr, family=socket.AF_INET, pad=16):
    host, port = addr
    b = struct.pack("=H", family) + struct.pack("!H", port) + socket.inet_aton(host)
    return b + b"\0" * (pad - len(b))


def raw(r):
    return r if r >= 0 else "E" + errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))


def raw_sendto(s, data, flags, name, namelen):  # data: (bytes or None for NULL, length)
    content, n = data if data is not None else (None, 0)
    buf = None if content is None else ctypes.create_string_buffer(content, max(len(content), 1))
    nb = None if name is None else ctypes.create_string_buffer(name, max(len(name), 1))
    return raw(libc.sendto(s.fileno(), buf, ctypes.c_size_t(n), ctypes.c_int(flags), nb,
                           ctypes.c_uint32(namelen)))


def raw_sendmsg(s, pieces, control, flags, name=None, namelen=None):
    bufs = [ctypes.create_string_buffer(p, max(len(p), 1)) for p in pieces]
    iov = (Iovec * max(len(pieces), 1))(*[Iovec(ctypes.cast(b, ctypes.c_void_p), len(p)) for b, p in zip(bufs, pieces)])
    nb = None if name is None else ctypes.create_string_buffer(name, len(name))
    cb = None if control is None else ctypes.create_string_buffer(control, len(control))
    m = Msghdr(ctypes.cast(nb, ctypes.c_void_p) if nb is not None else None,
               len(name) if namelen is None and name is not None else (namelen or 0),
               ctypes.cast(iov, ctypes.c_void_p), len(pieces),
               ctypes.cast(cb, ctypes.c_void_p) if cb is not None else None,
               0 if control is None else len(control), 0)
    return raw(libc.sendmsg(s.fileno(), ctypes.byref(m), ctypes.c_uint(flags & 0xFFFFFFFF)))


def raw_connect(s, name):
    nb = ctypes.create_string_buffer(name, len(name))
    return raw(libc.connect(s.fileno(), nb, ctypes.c_uint32(len(name))))


def cmsg(level, type_, data, cmsg_len=None):  # one control message, CMSG_SPACE-padded
    ln = 16 + len(data) if cmsg_len is None else cmsg_len
    b = struct.pack("=QiI", ln, level, type_) + data
    return b + b"\0" * ((-len(b)) % 8)


# ---- the cases: each a list of steps run on fresh sockets s (and t when named) ----
def call(fn):  # a call's result: the count/value, or "E<ERRNO>"
    try:
        r = fn()
        return r if r is not None else 0
    except OSError as e:
        return "E" + errno.errorcode.get(e.errno, str(e.errno))


CASES = []


def case(name, *steps, seq=False):
    CASES.append({"name": name, "steps": steps, "seq": seq})


def st_sendto(n, flags=0, addr=(B, P)):
    return lambda c: c.s.sendto(pattern(n, c.i), flags, addr)


def st_send(n, flags=0):
    return lambda c: c.s.send(pattern(n, c.i), flags)


def st_sendmsg(sizes, anc=(), flags=0, addr=(B, P)):
    return lambda c: c.s.sendmsg([pattern(n, c.i + k) for k, n in enumerate(sizes)], list(anc), flags, addr)


def st_opt(level, name, value):
    return lambda c: c.s.setsockopt(level, name, value)


def st_getopt(level, name):
    return lambda c: c.s.getsockopt(level, name)


def st_connect(addr=(B, P)):
    return lambda c: c.s.connect(addr)


def st_unconnect():
    return lambda c: raw_connect(c.s, struct.pack("=H", socket.AF_UNSPEC) + b"\0" * 14)


def st_close():
    return lambda c: c.s.close()


CORK_ON, CORK_OFF = st_opt(SOL_UDP, UDP_CORK, 1), st_opt(SOL_UDP, UDP_CORK, 0)
PKTINFO = lambda spec: cmsg(socket.IPPROTO_IP, IP_PKTINFO, struct.pack("=i4s4s", 0, socket.inet_aton(spec), b"\0" * 4))

for n in (0, 1, 100, 1472, 1473, 3000, 65507, 65508, 65536):
    case("sendto_%d" % n, st_sendto(n))
case("more_3", st_sendto(100, socket.MSG_MORE), st_sendto(201, socket.MSG_MORE), st_sendto(300))
case("more_frag", st_sendto(1000, socket.MSG_MORE), st_sendto(1000, socket.MSG_MORE), st_sendto(1000))
case("more_empty", st_sendto(0, socket.MSG_MORE), st_sendto(0))
case("more_max", st_sendto(65000, socket.MSG_MORE), st_sendto(507))
case("more_overflow", st_sendto(60000, socket.MSG_MORE), st_sendto(6000), st_sendto(10))
case("more_overflow_by_one", st_sendto(65000, socket.MSG_MORE), st_sendto(508), st_sendto(10))
case("more_other_port_ignored", st_sendto(10, socket.MSG_MORE), st_sendto(10, 0, (B, P2)))
case("more_bad_family_ignored", st_sendto(10, socket.MSG_MORE),
     lambda c: raw_sendto(c.s, (pattern(10, c.i), 10), 0, sin((B, P), socket.AF_INET6, 28), 28))
case("more_bad_cmsg_ignored", st_sendto(10, socket.MSG_MORE),
     lambda c: raw_sendmsg(c.s, [pattern(10, c.i)], cmsg(socket.IPPROTO_IP, socket.IP_TTL, b"\0\0", 5), 0))
case("more_then_send_unconnected", st_sendto(10, socket.MSG_MORE), st_send(20))
case("more_then_close", st_sendto(3000, socket.MSG_MORE), st_close())
case("more_probe", st_sendto(10, socket.MSG_MORE | MSG_PROBE), st_sendto(10))
case("more_then_connect", st_sendto(10, socket.MSG_MORE), st_connect((B, P2)), st_send(10))
case("more_then_disconnect_uncork", st_sendto(10, socket.MSG_MORE), st_unconnect(), CORK_OFF)
case("more_then_disconnect_send", st_sendto(10, socket.MSG_MORE), st_unconnect(), st_sendto(10))
case("more_cmsg_ttl_first_only", st_sendmsg([10], [(socket.IPPROTO_IP, socket.IP_TTL, struct.pack("i", 5))], socket.MSG_MORE),
     st_sendmsg([10], [(socket.IPPROTO_IP, socket.IP_TTL, struct.pack("i", 9))]))
case("more_iovecs", st_sendmsg([3, 0, 500], flags=socket.MSG_MORE), st_sendmsg([1, 1600]))
case("more_null_buffer", st_sendto(10, socket.MSG_MORE), lambda c: raw_sendto(c.s, None, socket.MSG_MORE, None, 0),
     lambda c: raw_sendto(c.s, (None, 10), 0, None, 0), st_sendto(5))
case("cork_3", CORK_ON, st_sendto(10), st_sendto(20), st_sendto(30), CORK_OFF)
case("cork_frag", CORK_ON, st_sendto(1000), st_sendto(1000), st_sendto(1000), CORK_OFF, st_sendto(7))
case("cork_then_close", CORK_ON, st_sendto(100), st_close())
case("cork_on_twice", CORK_ON, st_sendto(10), CORK_ON, st_sendto(10), st_getopt(SOL_UDP, UDP_CORK), CORK_OFF,
     st_getopt(SOL_UDP, UDP_CORK))
case("cork_off_empty", CORK_OFF, st_sendto(10))
case("cork_short_optlen", st_opt(SOL_UDP, UDP_CORK, b"\1\0"), st_sendto(10))
case("cork_udplite_level", st_opt(SOL_UDPLITE, UDP_CORK, 1), st_sendto(10), st_sendto(10), st_opt(SOL_UDPLITE, UDP_CORK, 0))
case("cork_and_more", CORK_ON, st_sendto(10, socket.MSG_MORE), st_sendto(10), CORK_OFF)
case("cork_overflow", CORK_ON, st_sendto(65000), st_sendto(600), CORK_OFF, st_sendto(3))
case("pmtu_do_1472", st_opt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO), st_sendto(1472))
case("pmtu_do_1473", st_opt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO), st_sendto(1473))
case("pmtu_do_more", st_opt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO),
     st_sendto(1000, socket.MSG_MORE), st_sendto(1000), st_sendto(20))
case("pmtu_dont_1000", st_opt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT), st_sendto(1000))
case("pmtu_dont_3000", st_opt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT), st_sendto(3000))
case("pmtu_probe_1473", st_opt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE), st_sendto(1473), st_sendto(1472))
# Busy polling (sk_setsockopt()): SO_BUSY_POLL < 0 or shorter than an int EINVAL, SO_BUSY_POLL_BUDGET
# > U16_MAX EINVAL (as root no EPERM); the values read back, the datagram sent as before.
SO_BUSY_POLL, SO_PREFER_BUSY_POLL, SO_BUSY_POLL_BUDGET = 46, 69, 70
case("busy_poll_opts", st_getopt(socket.SOL_SOCKET, SO_BUSY_POLL), st_opt(socket.SOL_SOCKET, SO_BUSY_POLL, -1),
     st_opt(socket.SOL_SOCKET, SO_BUSY_POLL, b"\1"), st_opt(socket.SOL_SOCKET, SO_BUSY_POLL, 50),
     st_getopt(socket.SOL_SOCKET, SO_BUSY_POLL), st_opt(socket.SOL_SOCKET, SO_PREFER_BUSY_POLL, 1),
     st_getopt(socket.SOL_SOCKET, SO_PREFER_BUSY_POLL), st_opt(socket.SOL_SOCKET, SO_BUSY_POLL_BUDGET, 65536),
     st_opt(socket.SOL_SOCKET, SO_BUSY_POLL_BUDGET, 16), st_getopt(socket.SOL_SOCKET, SO_BUSY_POLL_BUDGET),
     st_sendto(10))
case("ttl_opt", st_opt(socket.IPPROTO_IP, socket.IP_TTL, 5), st_sendto(10))
case("ttl_opt_reset", st_opt(socket.IPPROTO_IP, socket.IP_TTL, 5), st_opt(socket.IPPROTO_IP, socket.IP_TTL, -1), st_sendto(10))
case("ttl_opt_zero", st_opt(socket.IPPROTO_IP, socket.IP_TTL, 0), st_sendto(10))
case("tos_opt", st_opt(socket.IPPROTO_IP, socket.IP_TOS, 0x10), st_sendto(10))
case("tos_opt_ecn", st_opt(socket.IPPROTO_IP, socket.IP_TOS, 0x13), st_sendto(3000))
case("cmsg_ttl", st_sendmsg([10], [(socket.IPPROTO_IP, socket.IP_TTL, struct.pack("i", 7))]))
case("cmsg_ttl_zero", st_sendmsg([10], [(socket.IPPROTO_IP, socket.IP_TTL, struct.pack("i", 0))]))
case("cmsg_ttl_short", st_sendmsg([10], [(socket.IPPROTO_IP, socket.IP_TTL, b"\7\0")]))
case("cmsg_tos_int", st_sendmsg([10], [(socket.IPPROTO_IP, socket.IP_TOS, struct.pack("i", 0x28))]))
case("cmsg_tos_byte", st_sendmsg([10], [(socket.IPPROTO_IP, socket.IP_TOS, b"\x48")]))
case("cmsg_ttl_tos_over_opts", st_opt(socket.IPPROTO_IP, socket.IP_TTL, 5), st_opt(socket.IPPROTO_IP, socket.IP_TOS, 0x10),
     st_sendmsg([2000], [(socket.IPPROTO_IP, socket.IP_TTL, struct.pack("i", 200)),
                         (socket.IPPROTO_IP, socket.IP_TOS, struct.pack("i", 0x20))]), st_sendto(10))
case("cmsg_pktinfo_spec_dst", lambda c: raw_sendmsg(c.s, [pattern(10, c.i)], PKTINFO(A), 0, sin((B, P))))
case("cmsg_pktinfo_not_local", lambda c: raw_sendmsg(c.s, [pattern(10, c.i)], PKTINFO("198.18.0.9"), 0, sin((B, P))))
case("cmsg_bad_len", lambda c: raw_sendmsg(c.s, [pattern(10, c.i)], cmsg(socket.IPPROTO_IP, socket.IP_TTL, b"\0" * 8, 12), 0, sin((B, P))))
case("cmsg_ip_retopts", st_sendmsg([10], [(socket.IPPROTO_IP, IP_RETOPTS, b"\1\1\1\0")]))
case("bad_family", lambda c: raw_sendto(c.s, (pattern(10, c.i), 10), 0, sin((B, P), socket.AF_INET6, 28), 28))
case("family_unspec", lambda c: raw_sendto(c.s, (pattern(10, c.i), 10), 0, sin((B, P), socket.AF_UNSPEC), 16))
case("short_namelen", lambda c: raw_sendto(c.s, (pattern(10, c.i), 10), 0, sin((B, P)), 8))
case("sendto_namelen_0", lambda c: raw_sendto(c.s, (pattern(10, c.i), 10), 0, sin((B, P)), 0))
case("sendto_namelen_129", lambda c: raw_sendto(c.s, (pattern(10, c.i), 10), 0, sin((B, P), pad=129), 129))
case("sendmsg_namelen_0", lambda c: raw_sendmsg(c.s, [pattern(10, c.i)], None, 0, sin((B, P)), 0))
case("sendmsg_namelen_129", lambda c: raw_sendmsg(c.s, [pattern(10, c.i)], None, 0, sin((B, P), pad=129), 129))
case("sendmsg_cmsg_compat", lambda c: raw_sendmsg(c.s, [pattern(10, c.i)], None, MSG_CMSG_COMPAT, sin((B, P))))
case("port_zero", st_sendto(10, 0, (B, 0)))
case("unconnected_send", st_send(10))
case("msg_oob", st_sendto(10, socket.MSG_OOB))
case("null_buffer_len", lambda c: raw_sendto(c.s, (None, 10), 0, sin((B, P)), 16))
case("null_buffer_zero", lambda c: raw_sendto(c.s, (None, 0), 0, sin((B, P)), 16))
case("connected_send", st_connect(), st_send(10), st_send(1473), st_send(10), seq=True)
case("connected_sendto_other", st_connect(), st_sendto(10, 0, (B, P2)), st_send(10), seq=True)
case("connected_write", st_connect(), lambda c: os.write(c.s.fileno(), pattern(33, c.i)), seq=True)
case("connected_more", st_connect(), st_send(10, socket.MSG_MORE), st_send(3000), seq=True)
case("iovecs", st_sendmsg([1, 0, 100, 1371]), st_sendmsg([700, 700, 700, 900]))
case("no_check", st_opt(socket.SOL_SOCKET, 11, 1), st_sendto(10))  # SO_NO_CHECK
case("shutdown_wr_connected", st_connect(), lambda c: c.s.shutdown(socket.SHUT_WR), st_send(10))
case("shutdown_wr_unconnected", lambda c: c.s.shutdown(socket.SHUT_WR), st_sendto(10))
case("shutdown_rd", st_connect(), lambda c: c.s.shutdown(socket.SHUT_RD), st_send(10), seq=True)
case("dst_loopback", st_sendto(10, 0, ("127.0.0.1", P)))
GW = "198.19.0.5"  # routed via b
case("gateway", st_sendto(100, 0, (GW, P)), st_sendto(2000, 0, (GW, P)))
case("dontroute_onlink", st_sendto(10, socket.MSG_DONTROUTE))
case("dontroute_gateway", st_sendto(10, socket.MSG_DONTROUTE, (GW, P)), st_sendto(10, 0, (GW, P)))
case("so_dontroute", st_opt(socket.SOL_SOCKET, socket.SO_DONTROUTE, 1), st_sendto(10, 0, (GW, P)), st_sendto(10))
case("dontroute_connected_gateway", st_connect((GW, P)), st_send(10), st_send(10, socket.MSG_DONTROUTE), seq=True)
case("msg_confirm", st_sendto(10, socket.MSG_CONFIRM), st_sendto(10, socket.MSG_CONFIRM, (GW, P)))
# UDP_SEGMENT (GSO): per socket and per call; the device segments nothing here (xa's UDP
# segmentation is off), so both sides put the segments on the wire themselves.
SEG = lambda n: st_opt(SOL_UDP, UDP_SEGMENT, n)
GSO = lambda n: (SOL_UDP, UDP_SEGMENT, struct.pack("H", n))
case("gso_opt_3500_by_1000", SEG(1000), st_sendto(3500), st_sendto(999))
case("gso_opt_exact_multiple", SEG(1400), st_sendto(4200))
case("gso_cmsg", st_sendmsg([2000, 1001], [GSO(500)]))
case("gso_cmsg_zero_over_opt", SEG(500), st_sendmsg([2000], [GSO(0)]))
case("gso_larger_than_payload", SEG(1400), st_sendto(1000))
case("gso_segment_over_mtu", SEG(1473), st_sendto(3000))
case("gso_128_segments", SEG(10), st_sendto(1280))
case("gso_129_segments", SEG(10), st_sendto(1281))
case("gso_65507", SEG(1472), st_sendto(65507))
case("gso_no_check", st_opt(socket.SOL_SOCKET, 11, 1), SEG(100), st_sendto(1000))
case("gso_opt_bad_value", st_opt(SOL_UDP, UDP_SEGMENT, 70000), st_sendto(10))
case("gso_pmtu_do", st_opt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO), SEG(1000), st_sendto(2500))
case("gso_connected", st_connect(), SEG(600), st_send(1500), st_send(1500), seq=True)
case("gso_corked", SEG(700), CORK_ON, st_sendto(1000), st_sendto(1000), CORK_OFF)
# The send buffer, within one call (veth completes the kernel's frames at once, xmit's when the
# queue reports them, so only what one datagram charges is compared): SO_SNDBUF at its minimum
# (4608) lets 5000 bytes (four fragments, 8192 charged) go, not 8000 (ENOBUFS: a later fragment
# would pass 2 * sk_sndbuf). SIOCOUTQNSD is not a UDP ioctl.
case("sndbuf_min", st_opt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1), st_getopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
     st_sendto(8000), st_sendto(5000))
case("sndbuf_siocoutqnsd", lambda c: fcntl.ioctl(c.s, 0x894B, b"\0" * 4), st_sendto(10))


def snmp():
    lines = [l.split() for l in open("/proc/net/snmp")]
    v = {}
    for h, d in zip(lines[::2], lines[1::2]):
        v.update({h[0] + f: int(x) for f, x in zip(h[1:], d[1:])})
    return v["Udp:OutDatagrams"], v["Ip:OutRequests"]


class Ctx:
    pass


def run(out):
    mark = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    res = {}
    for i, cs in enumerate(CASES):
        mark.sendto(b"CASE " + cs["name"].encode(), (B, MARK))
        time.sleep(0.005)
        c = Ctx()
        c.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u0, r0 = snmp()
        results = []
        for k, step in enumerate(cs["steps"]):
            c.i = i * 16 + k
            results.append(call(lambda: step(c)))
            mark.sendto(b"STEP", (B, MARK))  # the frames of one call apart from the next's
        bound = "closed" if c.s.fileno() < 0 else str(c.s.getsockname()[1] != 0)
        u1, r1 = snmp()
        c.s.close()
        time.sleep(0.005)
        res[cs["name"]] = {"results": results, "bound": bound, "udp_out": u1 - u0, "ip_out": r1 - r0}
    mark.sendto(b"END", (B, MARK))
    json.dump(res, open(out, "w"), indent=0)


def capture(out):
    sinks = []
    for port in (P, P2, MARK):  # a socket on every port: no ICMP errors back to the sender
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        u.bind(("0.0.0.0", port))
        sinks.append(u)
    ps = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    ps.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 25)
    ps.setsockopt(263, 8, 1)  # SOL_PACKET, PACKET_AUXDATA: tp_status says whether the sum is partial
    ps.bind(("xb", 0))
    open(out + ".ready", "w").close()
    cases, cur, step = {}, None, 0
    signal_alarm = __import__("signal").alarm
    signal_alarm(120)
    while True:
        f, anc, _, addr = ps.recvmsg(70000, 256)
        if addr[2] == socket.PACKET_OUTGOING or len(f) < 34 or f[12:14] != b"\x08\x00" or f[23] != 17:
            continue
        if f[26:30] != socket.inet_aton(A):
            continue
        partial = any(l == 263 and t == 8 and struct.unpack_from("=I", d)[0] & 8 for l, t, d in anc)
        ihl = (f[14] & 15) * 4
        off = struct.unpack_from("!H", f, 20)[0]
        if (off & 0x1FFF) == 0 and len(f) >= 14 + ihl + 8 and struct.unpack_from("!H", f, 14 + ihl + 2)[0] == MARK:
            body = f[14 + ihl + 8:]
            if body == b"END":
                break
            if body == b"STEP":
                step += 1
                continue
            cur, step = body[5:].decode(), 0
            cases[cur] = []
            continue
        cases.setdefault(cur, []).append({"hex": f.hex(), "partial": partial, "step": step})
    json.dump(cases, open(out, "w"))


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def normalise(frames, seq):
    """Each frame as a dict of the fields compared; source ports and ids as letters."""
    out, ports, dgrams, frag = [], {}, {}, None
    letter = lambda m, v: "0" if v == 0 else m.setdefault(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[len(m) % 26])
    for fr in frames:
        f = bytes.fromhex(fr["hex"])
        ip = f[14:]
        ihl = (ip[0] & 15) * 4
        tot, ident, fo = struct.unpack_from("!HHH", ip, 2)
        # The datagram this frame belongs to: a new one unless it continues the fragments before it.
        # Ids are not compared across datagrams of an unconnected socket: ip_idents_reserve() adds a
        # random step whenever a jiffy passed since the bucket's last use, so whether a UDP_SEGMENT
        # send's segment ids (one id reserved, its segments counting up) are reused by the next
        # datagram depends on the clock, on the kernel as under xmit (the unit tests pin the rule).
        key = (ident, ip[12:16], ip[16:20])
        if not (fo & 0x1FFF and frag and frag[0] == key):
            frag = (key, len(dgrams))
            dgrams[frag[1]] = {}
        dgram = frag[1]
        d = {"eth": f[:14].hex(), "ver_ihl": ip[0], "tos": ip[1], "tot_len": tot,
             "id": "0" if ident == 0 else "D%d" % dgram,
             "df": bool(fo & 0x4000), "mf": bool(fo & 0x2000), "frag_off": (fo & 0x1FFF) * 8, "ttl": ip[8],
             "proto": ip[9], "ip_csum": "ok" if csum(ip[:ihl]) == 0xFFFF else "BAD",
             "src": socket.inet_ntoa(ip[12:16]), "dst": socket.inet_ntoa(ip[16:20]),
             "wire_len": len(f)}
        # The payload: past the UDP header in the first fragment (ports and checksum are below).
        d["payload_sha1"] = hashlib.sha1(ip[ihl + (8 if (fo & 0x1FFF) == 0 else 0):tot]).hexdigest()[:16]
        if fr["partial"]:
            d["partial_csum"] = True  # would be a difference by itself: the test runs with tx csum off
        dgrams[dgram][d["frag_off"]] = (ip[ihl:tot], d)
        if d["frag_off"] == 0:
            sport, dport, ulen = struct.unpack_from("!HHH", ip, ihl)
            d.update({"sport": letter(ports, sport), "dport": dport, "udp_len": ulen})
        out.append(d)
    # The UDP checksum over the reassembled datagram (0: none sent).
    for parts in dgrams.values():
        data, off = b"", 0
        while off in parts:
            data += parts[off][0]
            if not parts[off][1]["mf"]:
                break
            off += len(parts[off][0])
        first = parts.get(0, (None, {}))[1]
        if not first or len(data) < 8:
            continue
        check = struct.unpack_from("!H", data, 6)[0]
        pseudo = (socket.inet_aton(first["src"]) + socket.inet_aton(first["dst"]) +
                  struct.pack("!BBH", 0, 17, len(data)))
        if check == 0:
            first["udp_csum"] = "none"
        else:
            first["udp_csum"] = "ok" if csum(pseudo + data) == 0xFFFF and len(data) == first["udp_len"] else "BAD"
    if seq:  # connected: inet_id counts up by one per datagram
        raw_ids = []
        for fr in frames:
            i = struct.unpack_from("!H", bytes.fromhex(fr["hex"]), 18)[0]
            if not raw_ids or raw_ids[-1] != i:
                raw_ids.append(i)
        out.append({"id_steps": [(b - a) & 0xFFFF for a, b in zip(raw_ids, raw_ids[1:])]})
    else:  # the id steps between the datagrams of one call (a UDP_SEGMENT send's segments count up)
        calls = {}
        for fr in frames:
            f = bytes.fromhex(fr["hex"])
            if struct.unpack_from("!H", f, 20)[0] & 0x1FFF == 0:  # a datagram's first fragment
                calls.setdefault(fr.get("step", 0), []).append(struct.unpack_from("!H", f, 18)[0])
        out.append({"call_id_steps": {k: [(b - a) & 0xFFFF for a, b in zip(v, v[1:])]
                                      for k, v in sorted(calls.items()) if len(v) > 1}})
    return out


def compare(k_run, k_cap, x_run, x_cap):
    kr, kc, xr, xc = (json.load(open(p)) for p in (k_run, k_cap, x_run, x_cap))
    bad, moved, nframes = [], 0, 0
    for cs in CASES:
        n = cs["name"]
        if kr[n]["results"] != xr[n]["results"] or kr[n]["bound"] != xr[n]["bound"]:
            bad.append("%s: results kernel %r bound %s, xmit %r bound %s" % (
                n, kr[n]["results"], kr[n]["bound"], xr[n]["results"], xr[n]["bound"]))
        kf, xf = normalise(kc.get(n, []), cs["seq"]), normalise(xc.get(n, []), cs["seq"])
        nframes += len(kf)
        if kf != xf:
            if len(kf) != len(xf):
                bad.append("%s: %d frames from the kernel, %d from xmit" % (n, len(kf), len(xf)))
            for j, (a, b) in enumerate(zip(kf, xf)):
                if a != b:
                    diff = {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
                    bad.append("%s: frame %d differs (kernel, xmit): %r" % (n, j, diff))
                    break
        for d in kf:
            if d.get("ip_csum") == "BAD" or d.get("udp_csum") == "BAD":
                bad.append("%s: the kernel's frame has a bad checksum: %r" % (n, d))
        delta = xr[n]["udp_out"] + xr[n]["ip_out"]
        if n in KERNEL_SERVED:
            if delta == 0 and kr[n]["udp_out"] + kr[n]["ip_out"] > 0:
                bad.append("%s: listed as served by the kernel, but a's counters did not move" % n)
        else:
            moved += delta
            if delta:
                bad.append("%s: a's kernel counters moved under xmit: Udp OutDatagrams +%d, Ip OutRequests +%d"
                           % (n, xr[n]["udp_out"], xr[n]["ip_out"]))
    ksent = sum(kr[n]["udp_out"] for n in kr)
    if ksent == 0:
        bad.append("the kernel run sent nothing through a's kernel: the comparison would prove nothing")
    for b in bad:
        print("DIFF " + b)
    served = len(CASES) - len(KERNEL_SERVED)
    print("udp_diff: %d cases (%d served by xmit, %d handed to the kernel: %s), %d frames; %s; "
          "kernel counters in a unmoved: +%d" % (
              len(CASES), served, len(KERNEL_SERVED), ", ".join(sorted(KERNEL_SERVED)), nframes,
              "same results and frames" if not bad else "%d differences" % len(bad), moved))
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2])
    elif sys.argv[1] == "capture":
        capture(sys.argv[2])
    elif sys.argv[1] == "compare":
        sys.exit(compare(*sys.argv[2:6]))
    elif sys.argv[1] == "count":
        print(len(CASES))
