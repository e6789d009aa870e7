# tests/e2e/tcp_urg.py — urgent data on receive, differential: a kernel sender sends a scripted mix
# of normal and MSG_OOB data, step by step; the receiver runs the same scripted calls after each
# step — recv with and without MSG_OOB (MSG_PEEK, MSG_TRUNC, MSG_WAITALL, several iovecs, a zero
# length), SIOCATMARK, SIOCINQ, poll/select/epoll readiness (POLLPRI) — and prints every result
# (return value, errno, bytes, msg_flags). tcp_urg.sh runs `sender` in namespace b and `receiver`
# in namespace a, on the kernel and under xmit, with and without SO_OOBINLINE, the receiver
# connecting or accepting; the outputs must be identical.
#
# Steps are in lockstep over a Unix socket (pathname sockets cross network namespaces; xmit does
# not serve them): the receiver asks for step i, the sender makes its sends, waits until they are
# all acknowledged (SIOCOUTQ 0: everything is in the receiver's stack) and answers.
import errno, fcntl, os, select, signal, socket, struct, sys, time

A, B = "198.18.0.1", "198.18.0.2"
PORT_B, PORT_A = 7300, 7301
SIOCINQ, SIOCOUTQ, SIOCATMARK = 0x541B, 0x5411, 0x8905
OOB, PEEK, TRUNC, WAITALL, DONTWAIT = socket.MSG_OOB, socket.MSG_PEEK, socket.MSG_TRUNC, socket.MSG_WAITALL, socket.MSG_DONTWAIT

# Each step: the sender's sends (bytes, flags) — "FIN" for shutdown(SHUT_WR) — then the
# receiver's calls.
STEPS = [
    ([], ["opt", "atmark", "inq", "poll", ("recv", 1, OOB), ("recv", 10, DONTWAIT)]),
    ([(b"hello", 0), (b"X", OOB), (b"world", 0)],
     ["poll", "select", "epoll", "atmark", "inq", ("recv", 100, 0), "atmark", "inq", "poll",
      ("recv", 1, OOB | PEEK), ("recv", 1, OOB), ("recv", 1, OOB), "poll", "select", "epoll",
      ("recv", 100, DONTWAIT), "atmark", "inq", ("recv", 1, OOB)]),
    ([(b"ab", 0), (b"Y", OOB)],
     ["inq", "poll", ("recv", 100, 0), "atmark", "poll", "inq", ("recv", 100, DONTWAIT), ("recv", 1, OOB),
      "atmark"]),
    ([(b"Z", OOB)],
     [("recvv", [0], OOB), ("recv", 1, OOB), "atmark", "inq", ("recv", 100, DONTWAIT), "atmark"]),
    ([(b"A", OOB), (b"B", OOB)],
     ["atmark", "inq", "poll", ("recv", 1, OOB), ("recv", 100, DONTWAIT), ("recv", 100, DONTWAIT)]),
    ([(b"12345", 0), (b"U", OOB), (b"678", 0)],
     [("recv", 2, 0), ("recv", 10, WAITALL), "atmark", "inq", ("recvv", [1, 10], DONTWAIT), "atmark",
      ("recv", 1, OOB), ("recv", 100, DONTWAIT)]),
    ([(b"V", OOB), (b"w", 0)],
     [("recvv", [1], OOB | TRUNC), ("recv", 1, OOB), "inq", ("recv", 100, DONTWAIT)]),
    ([(b"plain", 0)], ["atmark", ("recv", 100, DONTWAIT), ("recv", 1, OOB)]),
    ([(b"W", OOB), "FIN"],
     ["poll", "inq", "atmark", ("recv", 1, OOB | PEEK), ("recv", 1, OOB), ("recv", 1, OOB), "poll",
      ("recv", 100, 0), ("recv", 100, 0), ("recv", 1, OOB), "atmark"]),
]

out = []
sigurg = [0]


def err(e):
    return "-> %s" % errno.errorcode.get(e.errno, e.errno)


def ioctl_int(s, req):
    try:
        return struct.unpack("i", fcntl.ioctl(s.fileno(), req, b"\0" * 4))[0]
    except OSError as e:
        return err(e)


def flags_str(f):
    names = [n for n, b in (("OOB", socket.MSG_OOB), ("TRUNC", socket.MSG_TRUNC), ("EOR", socket.MSG_EOR)) if f & b]
    rest = f & ~(socket.MSG_OOB | socket.MSG_TRUNC | socket.MSG_EOR)
    return "|".join(names + (["%#x" % rest] if rest else [])) or "0"


def mask_str(m):
    bits = (("IN", select.POLLIN), ("PRI", select.POLLPRI), ("OUT", select.POLLOUT), ("ERR", select.POLLERR),
            ("HUP", select.POLLHUP), ("RDHUP", 0x2000))
    return "|".join(n for n, b in bits if m & b) or "0"


def recvv(s, sizes, flags):
    bufs = [bytearray(b"." * n) for n in sizes]
    try:
        n, anc, mf, addr = s.recvmsg_into(bufs, 0, flags)
    except OSError as e:
        return err(e)
    return "%d %r flags %s" % (n, b"|".join(bytes(b) for b in bufs), flags_str(mf))


def op(s, o):
    if o == "opt":
        return "SO_OOBINLINE %d" % s.getsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE)
    if o == "atmark":
        return "SIOCATMARK %s" % ioctl_int(s, SIOCATMARK)
    if o == "inq":
        return "SIOCINQ %s" % ioctl_int(s, SIOCINQ)
    if o == "poll":
        p = select.poll()
        p.register(s, select.POLLIN | select.POLLPRI | select.POLLOUT | 0x2000)
        return "poll %s" % mask_str(sum(e for _, e in p.poll(0)))
    if o == "select":
        r, w, x = select.select([s], [s], [s], 0)
        return "select r%d w%d x%d" % (len(r), len(w), len(x))
    if o == "epoll":
        ep = select.epoll()
        ep.register(s.fileno(), select.EPOLLIN | select.EPOLLPRI)
        ev = sum(e for _, e in ep.poll(0))
        ep.close()
        return "epoll %s" % mask_str(ev)
    if o[0] == "recv":
        return "recv(%d, %#x): %s" % (o[1], o[2], recvv(s, [o[1]], o[2]))
    if o[0] == "recvv":
        return "recvmsg(%s, %#x): %s" % (o[1], o[2], recvv(s, o[1], o[2]))
    raise ValueError(o)


def line(f):
    return f.readline().decode().strip()


def receiver(ctl_path, inline, role):
    ctl = socket.socket(socket.AF_UNIX)
    ctl.connect(ctl_path)
    f = ctl.makefile("rb")
    out.append("receiver: SO_OOBINLINE %d, %s" % (inline, role))
    if role == "connect":
        s = socket.socket()
        if inline:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
        ctl.sendall(b"accept\n")
        s.connect((B, PORT_B))
    else:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if inline:
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)  # the child inherits it
        ls.bind((A, PORT_A))
        ls.listen(1)
        ctl.sendall(b"connect\n")
        s, _ = ls.accept()
        out.append("listener: %s | %s | %s" % (op(ls, ("recv", 1, OOB)), op(ls, "atmark"), op(ls, "inq")))
        ls.close()
    assert line(f) == "connected"
    # SIGURG for each new urgent pointer (sk_send_sigurg()) to the F_SETOWN owner. Signals of one
    # step may merge (a standard signal does not queue): whether any came is printed.
    signal.signal(signal.SIGURG, lambda n, fr: sigurg.__setitem__(0, sigurg[0] + 1))
    fcntl.fcntl(s.fileno(), fcntl.F_SETOWN, os.getpid())
    for i, (_, calls) in enumerate(STEPS):
        ctl.sendall(b"step %d\n" % i)
        ok = line(f)
        out.append("step %d: sender %s, SIGURG %s" % (i, ok, "yes" if sigurg[0] else "no"))
        sigurg[0] = 0
        for c in calls:
            out.append("  " + op(s, c))
    s.close()
    ctl.sendall(b"done\n")
    print("\n".join(out))


def sender(ctl_path):
    try:
        os.unlink(ctl_path)
    except FileNotFoundError:
        pass
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((B, PORT_B))
    ls.listen(8)
    cl = socket.socket(socket.AF_UNIX)
    cl.bind(ctl_path)
    cl.listen(1)
    open(ctl_path + ".ready", "w").close()
    while True:
        ctl, _ = cl.accept()
        f = ctl.makefile("rb")
        how = line(f)
        if how == "accept":
            s, _ = ls.accept()
        else:
            s = socket.create_connection((A, PORT_A))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one segment per send
        ctl.sendall(b"connected\n")
        while True:
            cmd = line(f)
            if not cmd.startswith("step "):
                break
            for item in STEPS[int(cmd.split()[1])][0]:
                if item == "FIN":
                    s.shutdown(socket.SHUT_WR)
                else:
                    s.send(item[0], item[1])
            acked = False
            for _ in range(1000):  # all acknowledged: the receiver's stack has every byte (bounded: 5 s)
                if struct.unpack("i", fcntl.ioctl(s.fileno(), SIOCOUTQ, b"\0" * 4))[0] == 0:
                    acked = True
                    break
                time.sleep(0.005)
            time.sleep(0.02)  # and the segments after the last ACKed one (none expected) have landed
            outq = struct.unpack("i", fcntl.ioctl(s.fileno(), SIOCOUTQ, b"\0" * 4))[0]
            ctl.sendall(b"acked\n" if acked else b"NOT-ACKED (SIOCOUTQ %d)\n" % outq)
        s.close()
        ctl.close()


if __name__ == "__main__":
    if sys.argv[1] == "sender":
        sender(sys.argv[2])
    else:
        receiver(sys.argv[2], int(sys.argv[3]), sys.argv[4])
