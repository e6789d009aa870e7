#!/usr/bin/python3
# tests/e2e/tcp_diff.py — the TCP differential test's parts (see tcp_diff.sh):
#   tcp_diff.py server            in namespace b: the kernel peer, one listening port per behaviour
#                                 (PEERS), a thread per connection
#   tcp_diff.py capture OUT.json  in namespace b: every TCP/IPv4 segment from a arriving on xb
#   tcp_diff.py run OUT.json      in namespace a: every case of CASES on a fresh socket; each call's
#                                 return value or errno (with "+SIGPIPE" when the call raised it)
#                                 and the connection's local port
#   tcp_diff.py compare K_RUN K_CAP X_RUN X_CAP    the kernel's run against xmit's
# Segments are compared as (payload length, SYN/FIN/RST/PSH/URG) in order, pure ACKs and
# retransmissions left out (when an ACK leaves, and whether an RTO fires before the peer's delayed
# ACK, are timing, not the send path's segmentation); ports, ISNs, timestamps, windows
# and IP ids are not compared. The SYN's options are compared as kinds in order plus MSS and
# window-scale values.
import ctypes, errno, fcntl, json, os, select, signal, socket, struct, sys, threading, time

A, B = "198.18.0.1", "198.18.0.2"
MARK = 9
SOL_TCP = socket.IPPROTO_TCP
TCP_NODELAY, TCP_MAXSEG, TCP_CORK, TCP_QUICKACK = 1, 2, 3, 12
SIOCOUTQ, SIOCINQ = 0x5411, 0x541B
MSG_CMSG_COMPAT = 0x80000000

# The kernel peer's behaviours, one port each. Port 7002 has no listener (ECONNREFUSED).
PEERS = {
    "read": 7000,    # reads to EOF, then closes
    "delack": 7001,  # TCP_QUICKACK 0 (delayed ACKs: ~40 ms), sends one byte "G", reads to EOF
    "noread": 7003,  # accepts and never reads (the client's send buffer fills)
    "reset": 7004,   # reads one byte, then closes with SO_LINGER 0: an RST
    "fin": 7005,     # sends "G", shutdown(SHUT_WR), reads to EOF
    "send": 7006,    # sends 100 bytes, reads to EOF
}
CLOSED_PORT = 7002


def pattern(n, seed):
    return bytes((seed * 31 + k * 7 + (k >> 8)) & 0xFF for k in range(n))


# ---- the kernel peer (namespace b) ----
def peer(kind, conn):
    try:
        if kind == "reset":
            conn.recv(1)  # the client's first byte: the reset cannot overtake its connect()
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return
        if kind == "noread":
            NOREAD.append(conn)  # kept open (unread) until the server ends
            return
        if kind == "delack":
            conn.setsockopt(SOL_TCP, TCP_QUICKACK, 0)
            conn.send(b"G")
        if kind == "fin":
            conn.send(b"G")
            conn.shutdown(socket.SHUT_WR)
        if kind == "send":
            conn.send(pattern(100, 1))
        while conn.recv(1 << 16):
            if kind == "delack":
                conn.setsockopt(SOL_TCP, TCP_QUICKACK, 0)
        conn.close()
    except OSError:
        conn.close()


NOREAD = []


def server():
    listeners = {}
    for kind, port in PEERS.items():
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((B, port))
        ls.listen(64)
        listeners[ls] = kind
    print("listening", flush=True)
    while True:
        for ls in select.select(list(listeners), [], [])[0]:
            conn, _ = ls.accept()
            threading.Thread(target=peer, args=(listeners[ls], conn), daemon=True).start()


# ---- the capture (namespace b) ----
def capture(out):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("0.0.0.0", MARK))
    ps = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    ps.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 25)
    ps.bind(("xb", 0))
    open(out + ".ready", "w").close()
    signal.alarm(240)
    segs = []
    while True:
        f, _, _, addr = ps.recvmsg(70000)
        if addr[2] == socket.PACKET_OUTGOING or len(f) < 34 or f[12:14] != b"\x08\x00":
            continue
        ip = f[14:]
        if ip[12:16] != socket.inet_aton(A):
            continue
        ihl = (ip[0] & 15) * 4
        tot = struct.unpack_from("!H", ip, 2)[0]
        if ip[9] == 17 and struct.unpack_from("!H", ip, ihl + 2)[0] == MARK and ip[ihl + 8:tot] == b"END":
            break
        if ip[9] != 6:
            continue
        th = ip[ihl:tot]
        sport, dport, seq = struct.unpack_from("!HHI", th)
        doff = (th[12] >> 4) * 4
        segs.append({"sport": sport, "dport": dport, "seq": seq, "flags": th[13], "len": len(th) - doff,
                     "wire": len(f), "opts": th[20:doff].hex(), "urg": struct.unpack_from("!H", th, 18)[0]})
    json.dump(segs, open(out, "w"))


# ---- the client (namespace a): raw calls through libc, as a C program makes them ----
libc = ctypes.CDLL(None, use_errno=True)
SIGPIPES = [0]


class Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class Msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.c_void_p),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p),
                ("controllen", ctypes.c_size_t), ("flags", ctypes.c_int)]


def raw(r):
    return r if r >= 0 else errno.errorcode.get(ctypes.get_errno(), "E%d" % ctypes.get_errno())


def sin(addr, family=socket.AF_INET, pad=16):
    host, port = addr
    b = struct.pack("=H", family) + struct.pack("!H", port) + socket.inet_aton(host)
    return b + b"\0" * (pad - len(b))


def c_send(fd, data, n, flags):
    buf = None if data is None else ctypes.create_string_buffer(data, max(len(data), 1))
    return raw(libc.send(fd, buf, ctypes.c_size_t(n), ctypes.c_int(flags)))


def c_sendto(fd, data, flags, name, namelen):
    buf = ctypes.create_string_buffer(data, max(len(data), 1))
    nb = ctypes.create_string_buffer(name, max(len(name), 1))
    return raw(libc.sendto(fd, buf, ctypes.c_size_t(len(data)), ctypes.c_int(flags), nb, ctypes.c_uint32(namelen)))


def c_sendmsg(fd, pieces, flags):
    bufs = [ctypes.create_string_buffer(p, max(len(p), 1)) for p in pieces]
    iov = (Iovec * max(len(pieces), 1))(*[Iovec(ctypes.cast(b, ctypes.c_void_p), len(p)) for b, p in zip(bufs, pieces)])
    m = Msghdr(None, 0, ctypes.cast(iov, ctypes.c_void_p), len(pieces), None, 0, 0)
    return raw(libc.sendmsg(fd, ctypes.byref(m), ctypes.c_uint(flags & 0xFFFFFFFF)))


def c_writev(fd, pieces):
    bufs = [ctypes.create_string_buffer(p, max(len(p), 1)) for p in pieces]
    iov = (Iovec * len(pieces))(*[Iovec(ctypes.cast(b, ctypes.c_void_p), len(p)) for b, p in zip(bufs, pieces)])
    return raw(libc.writev(fd, iov, len(pieces)))


def c_write(fd, data):
    buf = ctypes.create_string_buffer(data, max(len(data), 1))
    return raw(libc.write(fd, buf, ctypes.c_size_t(len(data))))


def c_recv(fd, n, flags):
    buf = ctypes.create_string_buffer(max(n, 1))
    r = raw(libc.recv(fd, buf, ctypes.c_size_t(n), ctypes.c_int(flags)))
    return r if not isinstance(r, int) or r <= 0 else "%d:%s" % (r, buf.raw[:r][:8].hex())


def c_connect(fd, addr):
    nb = ctypes.create_string_buffer(sin(addr), 16)
    return raw(libc.connect(fd, nb, ctypes.c_uint32(16)))


def c_shutdown(fd, how):
    return raw(libc.shutdown(fd, how))


def c_getint(fd, level, name):
    v, ln = ctypes.c_int(0), ctypes.c_uint32(4)
    r = raw(libc.getsockopt(fd, level, name, ctypes.byref(v), ctypes.byref(ln)))
    return r if r != 0 else v.value


def c_setint(fd, level, name, val):
    v = ctypes.c_int(val)
    return raw(libc.setsockopt(fd, level, name, ctypes.byref(v), ctypes.c_uint32(4)))


def c_ioctl_int(fd, req):
    v = ctypes.c_int(0)
    r = raw(libc.ioctl(fd, ctypes.c_ulong(req), ctypes.byref(v)))
    return r if r != 0 else v.value


class Pollfd(ctypes.Structure):
    _fields_ = [("fd", ctypes.c_int), ("events", ctypes.c_short), ("revents", ctypes.c_short)]


def c_poll(fd, events, timeout_ms):
    p = Pollfd(fd, events, 0)
    r = raw(libc.poll(ctypes.byref(p), 1, timeout_ms))
    return r if r != 1 else "rev=%#x" % (p.revents & 0xFFFF)


# ---- steps: each returns the call's result (a count, a value, or "E<ERRNO>") ----
class Ctx:
    pass


def connect(kind="read"):
    def f(c):
        port = PEERS[kind] if kind in PEERS else CLOSED_PORT
        if kind == "closed":  # bound first: a refused connect gives its port back before getsockname
            nb = ctypes.create_string_buffer(sin(("0.0.0.0", 0)), 16)
            libc.bind(c.fd, nb, ctypes.c_uint32(16))
            c.port = local_port(c.fd)
        if os.environ.get("TCP_DIFF_WRONG_RUN") == "nodelay":  # a deliberately wrong run (see tcp_diff.sh)
            c_setint(c.fd, SOL_TCP, TCP_NODELAY, 1)
        r = c_connect(c.fd, (B, port))
        c.port = c.port or local_port(c.fd)
        c.dport = port
        if r == 0 and kind in ("delack", "fin"):
            return "%s G=%s" % (r, c_recv(c.fd, 1, 0))
        if r == 0 and kind == "reset":
            return "%s sent=%s" % (r, c_send(c.fd, b"!", 1, 0))
        return r
    return f


def local_port(fd):
    b = ctypes.create_string_buffer(16)
    ln = ctypes.c_uint32(16)
    if libc.getsockname(fd, b, ctypes.byref(ln)) != 0:
        return 0
    return struct.unpack_from("!H", b.raw, 2)[0]


def send(n, flags=0):
    return lambda c: c_send(c.fd, pattern(n, c.i), n, flags)


def sends(count, n, flags=0):  # `count` calls of send(n) as fast as they go: one step, results joined
    return lambda c: ",".join(str(c_send(c.fd, pattern(n, c.i + k), n, flags)) for k in range(count))


def nagle_burst(first, count, n):
    """send(first), then `count` sends of n bytes, then whether all of it is still unacknowledged
    (SIOCOUTQ: ACKs only ever lower it). "held": no ACK came during the burst, so Nagle's outcome
    is fixed by the calls alone; otherwise the case is run again (run(), at most 5 times)."""
    def f(c):
        r = [c_send(c.fd, pattern(first, c.i), first, 0)]
        r += [c_send(c.fd, pattern(n, c.i + k), n, 0) for k in range(count)]
        q = c_ioctl_int(c.fd, SIOCOUTQ)
        return "%s %s" % (",".join(map(str, r)), "held" if q == first + count * n else RETRY)
    return f


RETRY = "acked during the burst"


def opt(level, name, val):
    return lambda c: c_setint(c.fd, level, name, val)


def getopt(level, name):
    return lambda c: c_getint(c.fd, level, name)


NODELAY, CORK_ON, CORK_OFF = opt(SOL_TCP, TCP_NODELAY, 1), opt(SOL_TCP, TCP_CORK, 1), opt(SOL_TCP, TCP_CORK, 0)
NOSIG = socket.MSG_NOSIGNAL


def acked(c):
    """Until every byte written is acknowledged (SIOCOUTQ 0; bounded: 3 s): the next step starts
    with nothing in flight, whatever the peer's ACK timing."""
    for _ in range(3000):
        if c_ioctl_int(c.fd, SIOCOUTQ) == 0:
            return "acked"
        time.sleep(0.001)
    return "unacked"


def wait_hup(c):
    """Until the peer's RST has arrived (poll for POLLIN, which the RST raises with POLLHUP and
    POLLERR; bounded: 3 s), then the revents for POLLIN|POLLOUT as the kernel sets them."""
    r = c_poll(c.fd, select.POLLIN, 3000)
    return c_poll(c.fd, select.POLLIN | select.POLLOUT, 0) if r != 0 else "no reset in 3 s"


def wait_in(c):  # until data is readable (bounded: 3 s)
    return c_poll(c.fd, select.POLLIN, 3000)


def fill(mode):
    """Non-blocking writes of 64 KiB against a peer that does not read, until an error (at most 400
    calls). Compared: that some calls took bytes, whether the last one before the error took
    fewer than asked (the partial count), and the error. Not compared: how many calls, and which
    were full or partial before the last: the send buffers differ from the kernel's by design
    (stack/stream/tcp_socket.h) and ACKs free room between calls (kernel runs show
    'full partial full partial EAGAIN' one time and 'partial full partial EAGAIN' another)."""
    def f(c):
        taken, last = 0, None
        for k in range(400):
            if mode == "dontwait":
                r = c_send(c.fd, pattern(65536, k), 65536, socket.MSG_DONTWAIT)
            elif mode == "write":
                r = c_write(c.fd, pattern(65536, k))
            else:
                r = c_send(c.fd, pattern(65536, k), 65536, 0)
            if isinstance(r, str):
                break
            taken += 1
            last = "full" if r == 65536 else "partial" if r > 0 else str(r)
        return "%s; last %s; then %s" % ("took bytes" if taken else "took nothing", last, r)
    return f


def nonblock(c):
    fl = fcntl.fcntl(c.fd, fcntl.F_GETFL)
    fcntl.fcntl(c.fd, fcntl.F_SETFL, fl | os.O_NONBLOCK)
    return 0


def close_linger0(c):
    c_setint_linger(c.fd)
    return close(c)


def c_setint_linger(fd):
    v = struct.pack("ii", 1, 0)
    b = ctypes.create_string_buffer(v, 8)
    return raw(libc.setsockopt(fd, socket.SOL_SOCKET, socket.SO_LINGER, b, ctypes.c_uint32(8)))


def getname(peer):
    """getpeername() (peer) or getsockname(): "ADDR:PORT", the local port as "own" when it is the
    connection's (ports differ between runs)."""
    def f(c):
        b, ln = ctypes.create_string_buffer(16), ctypes.c_uint32(16)
        r = raw((libc.getpeername if peer else libc.getsockname)(c.fd, b, ctypes.byref(ln)))
        if r != 0:
            return r
        port = struct.unpack_from("!H", b.raw, 2)[0]
        return "%s:%s" % (socket.inet_ntoa(b.raw[4:8]), "own" if not peer and port == c.port else port)
    return f


PEERNAME, SOCKNAME = getname(True), getname(False)


def close(c):
    r = raw(libc.close(c.fd))
    c.fd = -1
    return r


CASES = []


def case(name, *steps, segs=True, why=""):
    """segs: compare the connection's segments (False: only the calls' results; `why` says why)."""
    CASES.append({"name": name, "steps": steps, "segs": segs, "why": why})


# Nagle and TCP_NODELAY. Nagle holds a small segment while another small one is unacknowledged; the
# peer delays its ACK (~40 ms) so a burst of writes all fall inside that wait.
case("nodelay_small_10", connect(), NODELAY, sends(10, 100), acked, close)
case("nodelay_small_1", connect(), NODELAY, sends(10, 1), acked, close)
case("nagle_small_10", connect("delack"), nagle_burst(100, 9, 100), acked, close)
case("nagle_small_then_nodelay", connect("delack"), nagle_burst(100, 5, 100), NODELAY, acked, close)
case("nagle_mss_plus_tail", connect("delack"), send(1448 * 3 + 100), acked, close)
case("nagle_small_1", connect("delack"), nagle_burst(1, 20, 1), acked, close)
# (Not a case: a full segment then small writes — the peer ACKs at once once it holds more than one
# MSS (__tcp_ack_snd_check()), so what Nagle holds would depend on that ACK's arrival.)
# TCP_CORK: partial segments wait for the uncork; full ones leave.
case("cork_small", connect(), CORK_ON, sends(5, 100), CORK_OFF, acked, close)
case("cork_full_segment", connect(), CORK_ON, send(1000), send(1000), CORK_OFF, acked, close)
case("cork_5000", connect(), CORK_ON, send(5000), CORK_OFF, acked, close)
case("cork_nodelay", connect(), NODELAY, CORK_ON, sends(3, 200), CORK_OFF, acked, close)
case("cork_then_close", connect(), CORK_ON, send(100), close)
case("cork_get", connect(), getopt(SOL_TCP, TCP_CORK), CORK_ON, getopt(SOL_TCP, TCP_CORK), CORK_OFF,
     getopt(SOL_TCP, TCP_CORK), acked, close)
# MSG_MORE: corks for the one call.
case("more_run", connect(), sends(4, 100, socket.MSG_MORE), send(100), acked, close)
case("more_nodelay", connect(), NODELAY, sends(3, 100, socket.MSG_MORE), send(50), acked, close)
case("more_then_close", connect(), NODELAY, sends(3, 100, socket.MSG_MORE), close)
case("more_large", connect(), NODELAY, send(3000, socket.MSG_MORE), send(3000), acked, close)
# MSG_EOR: the next write does not join the marked skb.
case("eor_corked", connect(), CORK_ON, send(100, socket.MSG_EOR), send(100), CORK_OFF, acked, close)
case("eor_more", connect(), NODELAY, send(100, socket.MSG_EOR | socket.MSG_MORE), send(100), acked, close)
# MSG_ZEROCOPY (SO_ZEROCOPY set first): the bytes go where a copy's would; sends into a corked tail
# share its completion object. (The 512 KiB object limit's PSH, skb_zerocopy_iter_stream()'s
# -EEXIST, is tests/tcp's: a send over 512 KiB waits for send-buffer room, and where the waits cut
# the skbs — short segments with PSH inside the run — follows the kernel's truesize accounting,
# which xmit's payload count does not reproduce, stack/stream/tcp_socket.h.)
ZC_ON, ZC = opt(socket.SOL_SOCKET, 60, 1), 0x4000000  # SO_ZEROCOPY, MSG_ZEROCOPY
case("zc_nodelay", ZC_ON, connect(), NODELAY, sends(5, 100, ZC), acked, close)
case("zc_corked_shared", ZC_ON, connect(), CORK_ON, send(100, ZC), send(100), send(100, ZC), CORK_OFF, acked, close)
case("zc_without_so_zerocopy", connect(), NODELAY, sends(3, 1000, ZC), acked, close)
# writev / sendmsg with several iovecs.
case("writev_small", connect(), NODELAY, lambda c: c_writev(c.fd, [pattern(n, c.i) for n in (100, 200, 300)]), acked, close)
case("sendmsg_iov_5000", connect(), NODELAY, lambda c: c_sendmsg(c.fd, [pattern(1000, c.i)] * 5, 0), acked, close)
# Writes larger than size_goal: sizes compared exactly; a PSH inside the run depends on where the
# skbs were cut (TSO autosizing from the pacing rate, a measurement), so only the last one counts.
# Their sizes can still differ by timing, on either stack: a cut at the peer's window edge
# (tcp_diff.sh says why; a difference in these two cases alone is measured once more).
case("large_100k_nodelay", connect(), NODELAY, send(100000), acked, close)
case("large_100k_nagle", connect(), send(100000), acked, close)
case("large_write_64k", connect(), lambda c: c_write(c.fd, pattern(65536, c.i)), acked, close)
# Non-blocking writes against a full send buffer (the peer does not read).
NOREAD_WHY = "the peer's window and zero-window probes are timing; only the calls' shape is compared"
case("full_nonblock_send", connect("noread"), nonblock, fill("send"), close_linger0,
     segs=False, why=NOREAD_WHY)
case("full_nonblock_write", connect("noread"), nonblock, fill("write"), close_linger0, segs=False, why=NOREAD_WHY)
case("full_dontwait", connect("noread"), fill("dontwait"), close_linger0, segs=False, why=NOREAD_WHY)
case("full_sndbuf_small", opt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096), connect("noread"), nonblock,
     fill("send"), close_linger0, segs=False, why=NOREAD_WHY)
# The peer resets: ECONNRESET first (SO_ERROR or the next call), then EPIPE (+SIGPIPE without MSG_NOSIGNAL).
case("reset_send", connect("reset"), wait_hup, send(10, NOSIG), send(10, NOSIG), send(10),
     getopt(socket.SOL_SOCKET, socket.SO_ERROR), close)
case("reset_so_error", connect("reset"), wait_hup, getopt(socket.SOL_SOCKET, socket.SO_ERROR),
     getopt(socket.SOL_SOCKET, socket.SO_ERROR), send(10), close)
case("reset_recv", connect("reset"), wait_hup, lambda c: c_recv(c.fd, 100, 0), lambda c: c_recv(c.fd, 100, 0),
     send(10, NOSIG), close)
case("reset_write", connect("reset"), wait_hup, lambda c: c_write(c.fd, b"x" * 10),
     lambda c: c_write(c.fd, b"x" * 10), close)
# Shutdown and FIN.
case("shutdown_wr_send", connect(), lambda c: c_shutdown(c.fd, socket.SHUT_WR), send(10, NOSIG), send(10), close)
# After both FINs (recv 0 waits for the peer's) the kernel's socket is CLOSE (TIME_WAIT is a separate
# timewait sock): shutdown ENOTCONN, TCP_INFO's state (the first int's low byte) TCP_CLOSE, recv
# 0 again, poll POLLIN|POLLOUT|POLLHUP.
case("shutdown_after_fins", connect(), lambda c: c_shutdown(c.fd, socket.SHUT_WR), lambda c: c_recv(c.fd, 100, 0),
     lambda c: c_shutdown(c.fd, socket.SHUT_RDWR), getopt(SOL_TCP, socket.TCP_INFO), lambda c: c_recv(c.fd, 100, 0),
     lambda c: c_poll(c.fd, select.POLLIN | select.POLLOUT, 0), send(10, NOSIG), close)
# A connection that has ended (state CLOSE, the fd still open): inet_getname() says ENOTCONN for
# the peer, the local name stays; SO_ERROR, recv and send as the end left them.
case("names_after_fins", connect(), PEERNAME, SOCKNAME, lambda c: c_shutdown(c.fd, socket.SHUT_WR),
     lambda c: c_recv(c.fd, 100, 0), PEERNAME, SOCKNAME, getopt(socket.SOL_SOCKET, socket.SO_ERROR),
     lambda c: c_recv(c.fd, 100, 0), send(10, NOSIG), close)
case("names_after_reset", connect("reset"), wait_hup, PEERNAME, SOCKNAME, getopt(socket.SOL_SOCKET, socket.SO_ERROR),
     PEERNAME, lambda c: c_recv(c.fd, 100, 0), send(10, NOSIG), SOCKNAME, close)
case("recv_after_fin", connect("fin"), lambda c: c_recv(c.fd, 100, 0), lambda c: c_recv(c.fd, 100, 0),
     NODELAY, send(10), acked, close)
case("shutdown_rd", connect(), lambda c: c_shutdown(c.fd, socket.SHUT_RD), lambda c: c_recv(c.fd, 100, 0),
     NODELAY, send(10), acked, close)
case("close_unread_rst", connect("send"), wait_in, lambda c: c_ioctl_int(c.fd, SIOCINQ), close)
case("close_linger0_rst", connect(), NODELAY, send(10), acked, close_linger0)
case("recv_peek_waitall", connect("send"), lambda c: c_recv(c.fd, 10, socket.MSG_PEEK),
     lambda c: c_recv(c.fd, 100, socket.MSG_WAITALL), lambda c: c_recv(c.fd, 10, socket.MSG_DONTWAIT), close)
# Bad arguments and odd flags.
case("null_buffer", connect(), NODELAY, lambda c: c_send(c.fd, None, 10, 0), send(10), acked, close)
case("null_buffer_zero", connect(), NODELAY, lambda c: c_send(c.fd, None, 0, 0), send(0), acked, close)
case("sendto_addr_connected", connect(), NODELAY, lambda c: c_sendto(c.fd, pattern(10, 1), 0, sin((B, 9999)), 16),
     lambda c: c_sendto(c.fd, pattern(10, 2), 0, sin((B, 9999)), 8),
     lambda c: c_sendto(c.fd, pattern(10, 3), 0, sin((B, 9999), pad=129), 129), acked, close)
case("sendmsg_cmsg_compat", connect(), NODELAY, lambda c: c_sendmsg(c.fd, [b"abc"], MSG_CMSG_COMPAT),
     lambda c: c_send(c.fd, b"abc", 3, MSG_CMSG_COMPAT), acked, close)
case("msg_oob", connect(), NODELAY, send(10, socket.MSG_OOB), send(10), acked, close)
# Urgent mode: Nagle does not hold data back while urgent data is unacknowledged; a large MSG_OOB
# write goes in MSS-sized skbs (no GSO size_goal), each pointing at the end of the urgent data.
case("msg_oob_nagle", connect("delack"), send(100), send(10, socket.MSG_OOB), send(10), send(10), acked, close)
case("msg_oob_large", connect(), NODELAY, send(5000, socket.MSG_OOB), send(100), acked, close)
case("msg_confirm_dontroute", connect(), NODELAY, send(10, socket.MSG_CONFIRM), send(10, socket.MSG_DONTROUTE), acked, close)
case("send_zero", connect(), NODELAY, send(0), send(0, socket.MSG_MORE), acked, close)
# Options read back.
case("getsockopt_values", connect(), getopt(SOL_TCP, TCP_NODELAY), NODELAY, getopt(SOL_TCP, TCP_NODELAY),
     getopt(SOL_TCP, TCP_MAXSEG), getopt(socket.SOL_SOCKET, socket.SO_ERROR), getopt(socket.SOL_SOCKET, socket.SO_TYPE),
     lambda c: c_ioctl_int(c.fd, SIOCOUTQ), close)
case("notsent_lowat", connect(), opt(SOL_TCP, socket.TCP_NOTSENT_LOWAT, 16384), getopt(SOL_TCP, socket.TCP_NOTSENT_LOWAT),
     NODELAY, send(5000), acked, lambda c: c_poll(c.fd, select.POLLOUT, 0), close)
case("maxseg_536", opt(SOL_TCP, TCP_MAXSEG, 536), connect(), getopt(SOL_TCP, TCP_MAXSEG), NODELAY, send(2000), acked, close)
# Busy polling (sk_setsockopt(): SO_BUSY_POLL < 0 EINVAL, SO_BUSY_POLL_BUDGET > U16_MAX EINVAL; as
# root no EPERM): values set before and after the connection, read back from the stack's mirror.
SOL_SOCKET, SO_BUSY_POLL, SO_PREFER_BUSY_POLL, SO_BUSY_POLL_BUDGET = socket.SOL_SOCKET, 46, 69, 70
case("busy_poll_opts", getopt(SOL_SOCKET, SO_BUSY_POLL), opt(SOL_SOCKET, SO_BUSY_POLL, -1),
     opt(SOL_SOCKET, SO_BUSY_POLL, 50), getopt(SOL_SOCKET, SO_BUSY_POLL), opt(SOL_SOCKET, SO_PREFER_BUSY_POLL, 1),
     getopt(SOL_SOCKET, SO_PREFER_BUSY_POLL), opt(SOL_SOCKET, SO_BUSY_POLL_BUDGET, 65536),
     opt(SOL_SOCKET, SO_BUSY_POLL_BUDGET, 16), getopt(SOL_SOCKET, SO_BUSY_POLL_BUDGET), connect(), NODELAY,
     send(64), acked, getopt(SOL_SOCKET, SO_BUSY_POLL), opt(SOL_SOCKET, SO_BUSY_POLL, 0),
     getopt(SOL_SOCKET, SO_BUSY_POLL), opt(SOL_SOCKET, SO_PREFER_BUSY_POLL, 0), getopt(SOL_SOCKET, SO_PREFER_BUSY_POLL),
     close)
# Opening.
case("connect_refused", connect("closed"), getopt(socket.SOL_SOCKET, socket.SO_ERROR), send(10, NOSIG))
case("connect_nonblock", nonblock, connect(), lambda c: c_poll(c.fd, select.POLLOUT, 3000),
     getopt(socket.SOL_SOCKET, socket.SO_ERROR), NODELAY, send(10), acked, close)
case("connect_nonblock_refused", nonblock, connect("closed"), lambda c: c_poll(c.fd, select.POLLOUT, 3000),
     getopt(socket.SOL_SOCKET, socket.SO_ERROR), getopt(socket.SOL_SOCKET, socket.SO_ERROR))
case("connect_twice", connect(), connect(), close)
case("unconnected_calls", lambda c: c_shutdown(c.fd, socket.SHUT_RDWR), send(10, NOSIG),
     lambda c: c_recv(c.fd, 10, 0), getopt(SOL_TCP, TCP_MAXSEG), segs=False, why="no connection")

# Known differences: case -> why. Their differences are printed (KNOWN) and not counted; a known
# difference that is gone is printed too (GONE), so the list is kept honest.
# None now: on AF_XDP, on the software verbs device and on it with its offloads off (no TSO: xmit's
# GSO skbs are cut in software on the way to the device, as the kernel's are) TCP builds the
# kernel's GSO skbs, so the PSH __tcp_transmit_skb() forces on each is where the kernel's is.
KNOWN = {}

# Self-tests of the comparison: these kernel-run pairs must differ in their segments, or the
# comparison is blind to what it claims to check.
MUST_DIFFER = [("nagle_small_10", "nodelay_small_10"), ("cork_small", "more_nodelay"),
               ("close_linger0_rst", "null_buffer")]


def run(out):
    signal.signal(signal.SIGPIPE, lambda *_: SIGPIPES.__setitem__(0, SIGPIPES[0] + 1))
    res = {}
    for i, cs in enumerate(CASES):
        for attempt in range(5):
            results, c = run_case(i, cs)
            if not any(RETRY in str(r) for r in results):
                break
            print("case %s: %s, again" % (cs["name"], RETRY), file=sys.stderr, flush=True)
        res[cs["name"]] = {"results": results, "port": [c.port, getattr(c, "dport", 0)]}
    time.sleep(0.2)  # the last case's FIN on the wire before the end marker
    m = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    m.sendto(b"END", (B, MARK))
    json.dump(res, open(out, "w"), indent=0)


def run_case(i, cs):
    c = Ctx()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.fd, c.port = s.detach(), 0
    results = []
    print("case %s" % cs["name"], file=sys.stderr, flush=True)
    for k, step in enumerate(cs["steps"]):
        c.i = i * 16 + k
        before = SIGPIPES[0]
        try:
            r = step(c)
        except OSError as e:
            r = errno.errorcode.get(e.errno, "E%d" % e.errno)
        if SIGPIPES[0] != before:
            r = "%s+SIGPIPE" % r
        results.append(r)
    if c.fd >= 0:
        libc.close(c.fd)
    return results, c


FLAGS = [(0x02, "S"), (0x01, "F"), (0x04, "R"), (0x08, "P"), (0x20, "U")]


def syn_opts(h):
    b, out, k = bytes.fromhex(h), [], 0
    while k < len(b):
        kind = b[k]
        if kind in (0, 1):
            out.append(str(kind)); k += 1; continue
        ln = b[k + 1] if k + 1 < len(b) else 2
        if kind == 2:
            out.append("mss%d" % struct.unpack_from("!H", b, k + 2))
        elif kind == 3:
            out.append("ws")  # its value: compared once, by syn_wscale()
        else:
            out.append("k%d" % kind)
        k += max(ln, 2)
    return " ".join(out)


def segments(cap, port, cs):
    """The case's segments from a (port: [local, remote]): 'LEN FLAGS' each, pure ACKs left out; for runs of full segments
    (large writes) PSH is kept only on the last data segment."""
    out, top = [], None
    for s in cap:
        if [s["sport"], s["dport"]] != port or port[0] == 0:
            continue
        # A retransmission (nothing past what was sent already: the peer's delayed ACK can come
        # after our RTO) is loss recovery's timing, not the send path's segmentation.
        end = (s["seq"] + s["len"] + (s["flags"] & 0x03 != 0)) & 0xFFFFFFFF
        if top is not None and s["len"] + (s["flags"] & 0x03 != 0) > 0 and ((end - top - 1) & 0xFFFFFFFF) >= 0x7FFFFFFF:
            continue
        if s["len"] + (s["flags"] & 0x03 != 0) > 0:
            top = end
        fl = "".join(c for m, c in FLAGS if s["flags"] & m)
        if s["len"] == 0 and not fl.strip("PU"):
            continue
        d = "%d %s" % (s["len"], fl or ".")
        if s["flags"] & 0x20:
            d += " up%d" % s["urg"]
        if s["flags"] & 0x02:
            d += " [%s]" % syn_opts(s["opts"])
        if s["wire"] > 1514:
            d += " OVERSIZE"
        out.append(d)
    if cs["name"].startswith("large_"):
        data = [k for k, d in enumerate(out) if not d.startswith("0 ")]
        for k in data[:-1]:
            n, fl = out[k].split(" ", 1)
            out[k] = "%s %s" % (n, fl.replace("P", "") or ".")
    return out


def syn_wscale(cap):
    ws = set()
    for s in cap:
        if s["flags"] & 0x02:
            b, k = bytes.fromhex(s["opts"]), 0
            while k < len(b):
                if b[k] in (0, 1):
                    k += 1
                    continue
                if b[k] == 3:
                    ws.add(b[k + 2])
                k += max(b[k + 1], 2)
    return sorted(ws)


def case_diffs(cs, kr, kc, xr, xc):
    """One case's differences between the kernel's run and capture and xmit's."""
    n, diffs = cs["name"], []
    if kr[n]["results"] != xr[n]["results"]:
        diffs.append("%s: results kernel %r, xmit %r" % (n, kr[n]["results"], xr[n]["results"]))
    if cs["segs"]:
        ks, xs = segments(kc, kr[n]["port"], cs), segments(xc, xr[n]["port"], cs)
        if ks != xs:
            diffs.append("%s: segments kernel %r, xmit %r" % (n, ks, xs))
    return diffs


def self_test(kr, kc):
    """Every case can fail: the kernel's run against itself is clean, and against a copy with one
    result changed (the last step's), or with the case's last segment one byte longer, is not."""
    bad, nres, nseg = [], 0, 0
    for cs in CASES:
        n = cs["name"]
        if case_diffs(cs, kr, kc, kr, kc):
            bad.append("self-test: %s differs from itself" % n)
        mr = json.loads(json.dumps(kr))
        mr[n]["results"][-1] = "changed"
        if case_diffs(cs, kr, kc, mr, kc):
            nres += 1
        else:
            bad.append("self-test: %s does not see a changed result" % n)
        if cs["segs"]:
            mc = json.loads(json.dumps(kc))
            mine = [sg for sg in mc if [sg["sport"], sg["dport"]] == kr[n]["port"]
                    and (sg["len"] > 0 or sg["flags"] & 0x07)]
            if mine:
                mine[-1]["len"] += 1
            if mine and case_diffs(cs, kr, kc, kr, mc):
                nseg += 1
            else:
                bad.append("self-test: %s does not see a changed segment" % n)
    # Pairs of kernel cases whose segments must differ (Nagle against TCP_NODELAY, ...).
    by = {cs["name"]: cs for cs in CASES}
    for a, b in MUST_DIFFER:
        if segments(kc, kr[a]["port"], by[a]) == segments(kc, kr[b]["port"], by[b]):
            bad.append("self-test: the kernel's %s and %s have the same segments" % (a, b))
    return bad, "self-test: %d/%d cases see a changed result, %d/%d a changed segment, %d pairs differ" % (
        nres, len(CASES), nseg, sum(1 for cs in CASES if cs["segs"]), len(MUST_DIFFER))


def compare(k_run, k_cap, x_run, x_cap):
    kr, kc, xr, xc = (json.load(open(p)) for p in (k_run, k_cap, x_run, x_cap))
    bad, known, nseg, notseg = [], [], 0, []
    for cs in CASES:
        n = cs["name"]
        diffs = case_diffs(cs, kr, kc, xr, xc)
        if not cs["segs"]:
            notseg.append("%s (%s)" % (n, cs["why"]))
        else:
            ks = segments(kc, kr[n]["port"], cs)
            nseg += len(ks)
            if not ks:
                bad.append("%s: the kernel run put no segment of the connection on the wire" % n)
        if n in KNOWN:
            known += ["KNOWN %s [%s]" % (d, KNOWN[n]) for d in diffs] or ["GONE %s: no difference now [%s]" % (n, KNOWN[n])]
        else:
            bad += diffs
    kw, xw = syn_wscale(kc), syn_wscale(xc)
    if kw != xw:  # tcp_select_initial_window() from max(tcp_rmem[2], rmem_max) of the namespace
        bad.append("SYN window scale: kernel %s, xmit %s" % (kw, xw))
    st_bad, st_line = self_test(kr, kc)
    bad += st_bad
    print(st_line)
    for k in known:
        print(k)
    for b in bad:
        print("DIFF " + b)
    print("not compared on the wire: " + "; ".join(notseg))
    print("tcp_diff: %d cases (%d with a known difference), %d kernel segments compared; %s" % (
        len(CASES), len(KNOWN), nseg, "same results and segments" if not bad else "%d differences" % len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2])
    elif sys.argv[1] == "server":
        server()
    elif sys.argv[1] == "capture":
        capture(sys.argv[2])
    elif sys.argv[1] == "compare":
        sys.exit(compare(*sys.argv[2:6]))
    elif sys.argv[1] == "count":
        print(len(CASES))
