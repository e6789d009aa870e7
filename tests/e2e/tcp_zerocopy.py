# tests/e2e/tcp_zerocopy.py — one sequence of MSG_ZEROCOPY calls on TCP sockets; prints every return
# value, errno and error-queue record. tcp_zerocopy.sh runs `server` in namespace b and `client` in
# namespace a, once on the kernel and once under xmit, and compares the outputs (only the COPIED
# code may differ where the kernel sent in place) and the server's logs (what arrived, byte-exact).
#
# server: port 7100 reads each connection to EOF, answers "<len> <sha256>" and logs the same line;
# port 7101 waits 2 s before it reads (the client fills its send buffer meanwhile), checks the
# stream against the client's pattern and answers and logs "pattern ok <bool>" and the length
# (answered, not logged: the send buffers differ by design); port 7102 reads one byte and resets
# (SO_LINGER 0); port 7103 accepts and never gets data (tcp_zerocopy.sh drops its data segments).
import errno, fcntl, hashlib, select, socket, struct, sys, time

from errqueue import drain, memlock_limited
from stream_peer import half_close, serve_forever
from call_log import recorder

SO_ZEROCOPY = 60
SO_SNDBUFFORCE = 32
MSG_ZEROCOPY = 0x4000000
SIOCOUTQ = 0x5411
B = "198.18.0.2"
out = []
call = recorder(out)


PERIOD = bytes((i * 7 + 3) & 0xff for i in range(256))
BIG = PERIOD * (4200000 // 256)


KEEP = []  # MSG_ZEROCOPY: the kernel reads a buffer until its completion; none is freed before exit


def pattern(off, n):  # byte i of a stream is (i * 7 + 3) & 0xff
    o = off % 256
    b = BIG[o:o + n]
    KEEP.append(b)
    return b


def outq(s):
    return struct.unpack("i", fcntl.ioctl(s.fileno(), SIOCOUTQ, b"\0" * 4))[0]


def acked(s):  # until everything sent is acknowledged (bounded: 5 s)
    for _ in range(500):
        if outq(s) == 0:
            return True
        time.sleep(0.01)
    return False


def errqueue(s, expect=True):
    """Waits until the sent bytes are ACKed, then (when a notification is expected) up to 2 s for
    POLLERR; prints POLLERR and every record, then EAGAIN."""
    out.append("acked: %s" % acked(s))
    p = select.poll()
    p.register(s, 0)
    ev = p.poll(2000 if expect else 200)
    out.append("poll: POLLERR %d" % any(e & select.POLLERR for _, e in ev))
    recs, stop = drain(s)
    for r in recs:
        out.append("record: len %d errno %d origin %d type %d code %d range %d..%d offender %s level %d type %d flags %#x"
                   % (r["len"], r["errno"], r["origin"], r["ee_type"], r["code"], r["info"], r["data"], r["offender"],
                      r["level"], r["type"], r["flags"] & ~socket.MSG_ERRQUEUE))
    out.append("errqueue: %s" % stop if stop == "EAGAIN" else "errqueue -> %s" % stop)


def connect(port, zc=True):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if zc:
        s.setsockopt(socket.SOL_SOCKET, SO_ZEROCOPY, 1)
    s.connect((B, port))
    return s


def finish(s, sent):
    """Half-closes, reads the server's answer and says whether it got exactly `sent`."""
    want = "%d %s" % (len(sent), hashlib.sha256(sent).hexdigest())
    out.append("peer got every byte: %s" % (half_close(s) == want))


def client():
    # MSG_ZEROCOPY without SO_ZEROCOPY: a plain send, no notification.
    s = connect(7100, zc=False)
    call("getsockopt SO_ZEROCOPY", lambda: s.getsockopt(socket.SOL_SOCKET, SO_ZEROCOPY))
    sent = pattern(0, 1000)
    call("send zc without SO_ZEROCOPY 1000", lambda: s.send(sent, MSG_ZEROCOPY))
    errqueue(s, expect=False)
    call("setsockopt SO_ZEROCOPY 2", lambda: s.setsockopt(socket.SOL_SOCKET, SO_ZEROCOPY, 2))
    call("setsockopt SO_ZEROCOPY 1 (connected)", lambda: s.setsockopt(socket.SOL_SOCKET, SO_ZEROCOPY, 1))
    call("getsockopt SO_ZEROCOPY", lambda: s.getsockopt(socket.SOL_SOCKET, SO_ZEROCOPY))
    # One send, one id; read after each.
    for n in (1, 1448, 3000):
        d = pattern(len(sent), n)
        call("send zc %d" % n, lambda: s.send(d, MSG_ZEROCOPY))
        sent += d
        errqueue(s)
    # Several completions before a read: one coalesced range. Empty and plain sends take no id.
    for n, fl in ((100, MSG_ZEROCOPY), (0, MSG_ZEROCOPY), (70000, MSG_ZEROCOPY), (10, 0), (200, MSG_ZEROCOPY)):
        d = pattern(len(sent), n)
        call("send %s %d" % ("zc" if fl else "plain", n), lambda: s.send(d, fl))
        sent += d
        acked(s)
    parts = [pattern(len(sent), 300), pattern(len(sent) + 300, 5000), pattern(len(sent) + 5300, 7)]
    call("sendmsg zc 3 iovecs", lambda: s.sendmsg(parts, [], MSG_ZEROCOPY))
    sent += b"".join(parts)
    errqueue(s)
    # Corked: sends into the same tail skb share an object (one range when it completes).
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    for n, fl in ((100, MSG_ZEROCOPY), (100, MSG_ZEROCOPY), (100, 0), (100, MSG_ZEROCOPY)):
        d = pattern(len(sent), n)
        call("corked send %s %d" % ("zc" if fl else "plain", n), lambda: s.send(d, fl))
        sent += d
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
    errqueue(s)
    # Past 512 KiB an object is not extended: a new one, a new skb.
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    for n in (1000, 600000):
        d = pattern(len(sent), n)
        call("corked send zc %d" % n, lambda: s.send(d, MSG_ZEROCOPY))
        sent += d
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
    errqueue(s)
    finish(s, sent)

    # Non-blocking sends past the send buffer (the peer does not read for 2 s): every call that
    # took bytes took one id, the EAGAIN none; compared: the shape, not the counts.
    s = connect(7101)
    s.setblocking(False)
    off, calls, last, r = 0, 0, None, None
    for k in range(400):
        try:
            r = s.send(pattern(off, 65536), MSG_ZEROCOPY)
        except OSError as e:
            r = errno.errorcode[e.errno]
            break
        off += r
        calls += 1
        last = "full" if r == 65536 else "partial"
    out.append("fill: %s; last %s; then %s" % ("took bytes" if calls else "took nothing", last, r))
    s.setblocking(True)
    d = pattern(off, 1000)
    call("blocking send zc 1000 after the fill", lambda: s.send(d, MSG_ZEROCOPY) == 1000)
    off += 1000
    calls += 1
    out.append("acked: %s" % acked(s))
    time.sleep(0.2)
    recs, _ = drain(s)
    lo, hi = (recs[0]["info"], recs[-1]["data"]) if recs else (None, None)
    out.append("fill: the records cover ids 0..calls-1: %s" % ((lo, hi) == (0, calls - 1)))
    s.shutdown(socket.SHUT_WR)
    ans = s.recv(200).decode().split()
    out.append("fill: peer %s, got every byte: %s" % (" ".join(ans[:3]), ans[3:] == [str(off)]))
    s.close()

    # The option memory (net.core.optmem_max): corked, a plain MSG_EOR send before each zerocopy
    # one makes every zerocopy send take a new object; the peer (port 7103) drops every data
    # segment, so none completes: ENOBUFS once optmem_max would be passed.
    s = connect(7103)
    s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 16 << 20)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    n, res = 0, None
    for k in range(2000):
        s.send(b"p", socket.MSG_EOR)
        try:
            s.send(pattern(k, 1), MSG_ZEROCOPY | socket.MSG_EOR)
        except OSError as e:
            res = errno.errorcode[e.errno]
            break
        n += 1
    out.append("optmem: %d zerocopy sends took an object each, then %s" % (n, res))
    call("optmem: send plain while full", lambda: s.send(b"q", 0))
    call("optmem: send zc onto the plain tail", lambda: s.send(b"r", MSG_ZEROCOPY))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()

    # RLIMIT_MEMLOCK 64 KiB (16 pages) without CAP_IPC_LOCK: each zerocopy send charges its
    # length's pages + 2 (mm_account_pinned_pages()) until its completion, a new object's and an
    # extension's alike; past the limit ENOBUFS. The peer (port 7103) drops every data segment, so
    # nothing completes and the charges add up whatever the timing.
    s = connect(7103)
    with memlock_limited(65536):
        call("memlock: send zc 100000 (26 pages)", lambda: s.send(pattern(0, 100000), MSG_ZEROCOPY))
        call("memlock: send zc 20000 (6 pages)", lambda: s.send(pattern(0, 20000), MSG_ZEROCOPY))
        call("memlock: send zc 20000 (12 pages)", lambda: s.send(pattern(0, 20000), MSG_ZEROCOPY))
        call("memlock: send zc 20000 (18 pages)", lambda: s.send(pattern(0, 20000), MSG_ZEROCOPY))
        call("memlock: send zc 4000 (14 pages)", lambda: s.send(pattern(0, 4000), MSG_ZEROCOPY))
        call("memlock: send zc 1 (16 pages)", lambda: s.send(pattern(0, 1), MSG_ZEROCOPY))
        call("memlock: send zc 1 (18 pages)", lambda: s.send(pattern(0, 1), MSG_ZEROCOPY))
        call("memlock: send plain 1000", lambda: s.send(pattern(0, 1000), 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()

    # The peer resets: what was ACKed completes; later sends fail and take no id.
    s = connect(7102)
    call("send zc to the resetting peer 100", lambda: s.send(pattern(0, 100), MSG_ZEROCOPY))
    p = select.poll()
    p.register(s, select.POLLIN)
    p.poll(3000)
    time.sleep(0.1)
    call("send zc after the reset", lambda: s.send(pattern(0, 100), MSG_ZEROCOPY | socket.MSG_NOSIGNAL))
    call("send zc again", lambda: s.send(pattern(0, 100), MSG_ZEROCOPY | socket.MSG_NOSIGNAL))
    errqueue(s)
    s.close()

    # Closed right after a zerocopy send: the data still arrives (the server logs it).
    s = connect(7100)
    d = pattern(0, 300000)
    call("send zc 300000 then close", lambda: s.send(d, MSG_ZEROCOPY))
    s.close()
    out.append("closed: expect server line %d %s" % (len(d), hashlib.sha256(d).hexdigest()))
    print("\n".join(out))


def conn(port, c):
    if port == 7103:  # the bed drops its data segments; held until the client resets
        c.recv(1)
        return
    if port == 7102:
        c.recv(1)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
        return
    if port == 7101:
        time.sleep(2.0)
    h, n, ok = hashlib.sha256(), 0, True
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        if port == 7101 and d != pattern(n, len(d)):
            ok = False
        h.update(d)
        n += len(d)
    if port == 7101:
        line = "pattern ok %s" % ok
        c.sendall(("%s %d" % (line, n)).encode())
    else:
        line = "%d %s" % (n, h.hexdigest())
        c.sendall(line.encode())
    c.close()
    print(line, flush=True)


if sys.argv[1] == "server":
    serve_forever((7100, 7101, 7102, 7103), conn)
else:
    client()
