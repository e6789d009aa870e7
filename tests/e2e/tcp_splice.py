# tests/e2e/tcp_splice.py — one sequence of sendfile(), splice() and vmsplice() calls with TCP
# sockets; prints every return value, errno, file offset and pipe fill. tcp_splice.sh runs `server`
# in namespace b and `client` in namespace a, once on the kernel and once under xmit, and compares
# the outputs and the server's logs (what arrived, byte-exact).
#
# server: port 7110 reads each connection to EOF, answers "<len> <sha256>" and logs the same line;
# port 7111 does the same after a 2 s wait (the client fills its send buffer meanwhile); port 7112
# sends 50000 bytes of the pattern, shuts its side down and waits for the client's EOF; port 7113
# echoes.
import errno, fcntl, os, signal, socket, struct, sys, tempfile, threading, time

from held_fuse import HeldFile
from stream_peer import digest_reply, half_close, serve_forever
from call_log import inq, recorder
from pipe_util import F_SETPIPE_SZ, SPLICE_F_MORE, SPLICE_F_NONBLOCK, vmsplice

B = "198.18.0.2"
SIOCINQ = 0x541B
out = []
call = recorder(out)


PERIOD = bytes((i * 7 + 3) & 0xff for i in range(256))


def pattern(off, n):  # byte i of a stream is (i * 7 + 3) & 0xff
    reps = (off % 256 + n) // 256 + 1
    o = off % 256
    return (PERIOD * reps)[o:o + n]


def connect(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect((B, port))
    return s


def finish(s, name):
    """Half-closes and prints the server's answer (length and sha256 of what it got)."""
    out.append("%s: peer got %s" % (name, half_close(s)))


def client(tmp):
    size = 300000
    path = os.path.join(tmp, "file")
    with open(path, "wb") as f:
        f.write(pattern(0, size))
    fd = os.open(path, os.O_RDONLY)
    wfd = os.open(os.path.join(tmp, "wonly"), os.O_WRONLY | os.O_CREAT)
    pr, pw = os.pipe()
    lsock = socket.socket()

    # sendfile(): offsets, the file's end, counts, and the kernel's argument errors.
    s = connect(7110)
    so = s.fileno()
    call("sendfile offset 0 count 1000", lambda: os.sendfile(so, fd, 0, 1000))
    call("  file position", lambda: os.lseek(fd, 0, os.SEEK_CUR))
    call("sendfile position count 5000", lambda: os.sendfile(so, fd, None, 5000))
    call("  file position", lambda: os.lseek(fd, 0, os.SEEK_CUR))
    call("sendfile offset 299000 count 5000 (past the end)", lambda: os.sendfile(so, fd, 299000, 5000))
    call("sendfile offset past the end", lambda: os.sendfile(so, fd, size + 10, 100))
    call("sendfile count 0", lambda: os.sendfile(so, fd, 10, 0))
    call("sendfile offset -1", lambda: os.sendfile(so, fd, -1, 10))
    call("sendfile in_fd a pipe", lambda: os.sendfile(so, pr, None, 10))
    call("sendfile in_fd a pipe, offset", lambda: os.sendfile(so, pr, 0, 10))
    call("sendfile in_fd a socket", lambda: os.sendfile(so, lsock.fileno(), None, 10))
    call("sendfile in_fd write-only", lambda: os.sendfile(so, wfd, 0, 10))
    call("sendfile in_fd closed", lambda: os.sendfile(so, 999, 0, 10))
    os.lseek(fd, 250000, os.SEEK_SET)
    call("sendfile position huge count", lambda: os.sendfile(so, fd, None, 1 << 40))
    call("  file position", lambda: os.lseek(fd, 0, os.SEEK_CUR))
    # An O_DIRECT file (tmp is on a disk file system): the kernel reads it in rounds of 64 KiB
    # straight from the disk (copy_splice_read()), each round's offset and length aligned or EINVAL.
    dfd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    call("sendfile O_DIRECT offset 0 count 100000", lambda: os.sendfile(so, dfd, 0, 100000))
    call("sendfile O_DIRECT offset 0 count 1000", lambda: os.sendfile(so, dfd, 0, 1000))
    call("sendfile O_DIRECT offset 100 count 5000", lambda: os.sendfile(so, dfd, 100, 5000))
    call("sendfile O_DIRECT offset 4096 count 8192", lambda: os.sendfile(so, dfd, 4096, 8192))
    call("sendfile O_DIRECT position count 200000", lambda: os.sendfile(so, dfd, None, 200000))
    call("  file position", lambda: os.lseek(dfd, 0, os.SEEK_CUR))
    os.close(dfd)

    # splice(): pipe -> socket, partial, what stays in the pipe, errors.
    os.write(pw, pattern(0, 10000))
    call("splice pipe->sock 4000", lambda: os.splice(pr, so, 4000))
    call("  pipe holds", lambda: inq(pr))
    call("splice pipe->sock 100000 (6000 there)", lambda: os.splice(pr, so, 100000, flags=SPLICE_F_MORE))
    call("  pipe holds", lambda: inq(pr))
    call("splice empty pipe NONBLOCK", lambda: os.splice(pr, so, 100, flags=SPLICE_F_NONBLOCK))
    os.set_blocking(pr, False)
    call("splice empty O_NONBLOCK pipe", lambda: os.splice(pr, so, 100))
    os.set_blocking(pr, True)
    os.write(pw, b"x" * 10)
    call("splice offset on the pipe", lambda: os.splice(pr, so, 10, offset_src=0))
    call("splice offset on the socket", lambda: os.splice(pr, so, 10, offset_dst=0))
    call("splice bad flags", lambda: os.splice(pr, so, 10, flags=0x100))
    call("splice count 0", lambda: os.splice(pr, so, 0))
    call("splice closed fd", lambda: os.splice(999, so, 10))
    call("splice pipe write end -> sock", lambda: os.splice(pw, so, 10))
    call("splice file -> sock", lambda: os.splice(fd, so, 10, offset_src=0))
    call("  pipe holds", lambda: inq(pr))
    call("splice pipe->sock 10", lambda: os.splice(pr, so, 10))
    # A blocking splice from an empty pipe waits for the writer (one write of 1000 bytes after 0.3 s).
    t = threading.Thread(target=lambda: (time.sleep(0.3), os.write(pw, pattern(1, 1000))))
    t.start()
    call("splice blocking, empty pipe, a writer later", lambda: os.splice(pr, so, 5000))
    t.join()
    # vmsplice + splice
    call("vmsplice 20000", lambda: vmsplice(pw, pattern(7, 20000)))
    call("splice pipe->sock 20000", lambda: os.splice(pr, so, 20000))
    # A FIFO opened O_RDWR (vmsplice() on it would write, not read).
    fifo = os.path.join(tmp, "fifo")
    os.mkfifo(fifo)
    ff = os.open(fifo, os.O_RDWR)
    os.write(ff, pattern(3, 1000))
    call("splice O_RDWR fifo->sock 5000 (1000 there)", lambda: os.splice(ff, so, 5000))
    call("  fifo holds", lambda: inq(ff))
    os.close(ff)
    finish(s, "sendfile+splice")

    # A pipe whose writer is gone: 0 (end of input).
    r2, w2 = os.pipe()
    os.close(w2)
    s = connect(7110)
    call("splice from a pipe without writers", lambda: os.splice(r2, s.fileno(), 100))
    os.close(r2)
    # A FIFO no writer ever opened (poll() does not say POLLHUP for it): the end too, non-blocking
    # and blocking (the kernel: `!pipe->writers` before SPLICE_F_NONBLOCK and before any wait).
    fifo_nw = os.path.join(tmp, "fifo_nw")
    os.mkfifo(fifo_nw)
    f2 = os.open(fifo_nw, os.O_RDONLY | os.O_NONBLOCK)
    call("splice from a FIFO never written, O_NONBLOCK", lambda: os.splice(f2, s.fileno(), 100))
    os.set_blocking(f2, True)
    call("splice from a FIFO never written, blocking", lambda: os.splice(f2, s.fileno(), 100))
    os.close(f2)
    finish(s, "no writer")

    # Against a full send buffer (the server reads after 2 s): non-blocking counts are partial (they
    # depend on the buffer: only checked for consistency), the offset and the pipe keep exactly what
    # did not go, and the blocking calls after them complete the stream.
    s = connect(7111)
    so = s.fileno()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    s.setblocking(False)
    os.lseek(fd, 0, os.SEEK_SET)
    off, went, eagain = 0, 0, False
    for i in range(200):
        try:
            if i % 2:  # the file position, then an explicit offset: each advances by what went
                n = os.sendfile(so, fd, None, size - off)
            else:
                n = os.sendfile(so, fd, off, size - off)
                os.lseek(fd, n, os.SEEK_CUR)
        except BlockingIOError:
            eagain = True
            break
        off += n
        went += n
        if off == size:
            break
    out.append("sendfile non-blocking: partial %s, then EAGAIN %s, file position == sent %s"
               % (0 < went < size, eagain, os.lseek(fd, 0, os.SEEK_CUR) == went))
    fcntl.fcntl(pw, F_SETPIPE_SZ, 1 << 20)
    os.write(pw, pattern(0, 200000))
    try:
        n = os.splice(pr, so, 200000)
        out.append("splice pipe->full sock: %s, pipe keeps the rest %s" % ("short" if n < 200000 else "all", inq(pr) == 200000 - n))
    except BlockingIOError:
        out.append("splice pipe->full sock: short, pipe keeps the rest %s" % (inq(pr) == 200000))
    s.setblocking(True)
    while off < size:
        off += os.sendfile(so, fd, off, size - off)
    left = inq(pr)
    while left > 0:
        left -= os.splice(pr, so, left)
    out.append("blocking rest: pipe empty %s" % (inq(pr) == 0))
    finish(s, "full buffer")

    # splice(): socket -> pipe (tcp_splice_read()).
    s = connect(7112)
    so = s.fileno()
    for _ in range(500):
        if inq(so) == 50000:
            break
        time.sleep(0.01)
    r3, w3 = os.pipe()
    fcntl.fcntl(w3, F_SETPIPE_SZ, 1 << 20)
    call("splice sock->pipe 30000", lambda: os.splice(so, w3, 30000))
    call("  pipe holds", lambda: inq(r3))
    call("  socket holds", lambda: inq(so))
    call("splice sock->pipe offset on the socket", lambda: os.splice(so, w3, 10, offset_src=0))
    call("splice sock->pipe offset on the pipe", lambda: os.splice(so, w3, 10, offset_dst=0))
    call("splice sock->pipe read end", lambda: os.splice(so, r3, 10))
    call("splice sock->pipe 100000 (20000 there)", lambda: os.splice(so, w3, 100000))
    got = os.read(r3, 1 << 20)
    out.append("pipe got the stream: %d bytes, exact %s" % (len(got), got == pattern(0, 50000)))
    call("splice sock->pipe at EOF", lambda: os.splice(so, w3, 100))
    s.close()
    s = connect(7110)  # nothing comes before our EOF
    s.setblocking(False)
    call("splice sock->pipe O_NONBLOCK socket, nothing queued", lambda: os.splice(s.fileno(), w3, 100))
    s.setblocking(True)
    s.settimeout(None)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 200000))
    call("splice sock->pipe SO_RCVTIMEO 0.2 s, nothing queued", lambda: os.splice(s.fileno(), w3, 100))
    finish(s, "empty")

    # splice(): socket -> a pipe whose readers are gone: EPIPE and SIGPIPE (wait_for_space()) as the
    # signal's disposition makes it — ignored (Python's default), caught, blocked (pending, caught
    # once unblocked); a FIFO whose reader left likewise. (Its default action, which ends the
    # process, is the `sigpipe` run of tcp_splice.sh.)
    caught = []

    def n_caught():  # a Python call: the handler of a signal that arrived has run before it returns
        return len(caught)

    s = connect(7110)
    so = s.fileno()
    r4, w4 = os.pipe()
    os.close(r4)
    call("splice sock->pipe without readers, SIGPIPE ignored", lambda: os.splice(so, w4, 100))
    signal.signal(signal.SIGPIPE, lambda sig, frame: caught.append(sig))
    call("splice sock->pipe without readers, SIGPIPE caught", lambda: os.splice(so, w4, 100))
    out.append("  SIGPIPE caught %d" % n_caught())
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGPIPE])
    call("splice sock->pipe without readers, SIGPIPE blocked", lambda: os.splice(so, w4, 100))
    out.append("  SIGPIPE pending %s, caught %d" % (signal.SIGPIPE in signal.sigpending(), n_caught()))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGPIPE])
    out.append("  unblocked: caught %d" % n_caught())
    fifo2 = os.path.join(tmp, "fifo2")
    os.mkfifo(fifo2)
    fr = os.open(fifo2, os.O_RDONLY | os.O_NONBLOCK)
    fw = os.open(fifo2, os.O_WRONLY)
    os.close(fr)
    call("splice sock->FIFO whose reader left, SIGPIPE caught", lambda: os.splice(so, fw, 100))
    out.append("  SIGPIPE caught %d" % n_caught())
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    os.close(w4)
    os.close(fw)
    finish(s, "reader gone")

    # sendfile() of a file outside the page cache (written, synced, dropped with
    # POSIX_FADV_DONTNEED): its pages come from the disk, read ahead with the stack's lock released.
    cold = os.path.join(tmp, "cold")
    with open(cold, "wb") as f:
        f.write(pattern(5, 3000000))
        f.flush()
        os.fsync(f.fileno())
    cfd = os.open(cold, os.O_RDONLY)
    os.posix_fadvise(cfd, 0, 0, os.POSIX_FADV_DONTNEED)
    s = connect(7110)
    off = 0
    while off < 3000000:
        off += os.sendfile(s.fileno(), cfd, off, 3000000 - off)
    os.close(cfd)
    finish(s, "file outside the page cache")

    # sendfile() from a file whose read blocks (a FUSE file whose first READ is answered only when
    # told, held_fuse.py): another connection's send and recv complete meanwhile, as the kernel
    # reads the file under no socket lock. Without that the echo waits for the read (for the
    # guard's 20 s).
    mnt = os.path.join(tmp, "mnt")
    os.mkdir(mnt)
    held = HeldFile(mnt, "slow", pattern(0, 200000))
    try:
        hfd = os.open(os.path.join(mnt, "slow"), os.O_RDONLY)
        s, e = connect(7110), connect(7113)
        sent = []

        def sendfile_all():
            off = 0
            while off < 200000:
                off += os.sendfile(s.fileno(), hfd, off, 200000 - off)
            sent.append(off)

        t = threading.Thread(target=sendfile_all)
        t.start()
        out.append("sendfile from a FUSE file: its first read reached the server %s" % held.held.wait(20))
        e.sendall(b"ping")
        echo = b""
        while len(echo) < 4:
            echo += e.recv(4 - len(echo))
        out.append("echo %r on another connection while that read is held: %s" % (echo, not held.answered))
        held.release()
        t.join()
        out.append("sendfile from the FUSE file sent %s" % sent)
        os.close(hfd)
        e.close()
        finish(s, "FUSE file")
    finally:
        held.umount()
    for f in (fd, wfd, pr, pw, r3, w3):
        os.close(f)
    lsock.close()
    print("\n".join(out))


def conn(port, c):
    if port == 7113:  # echo
        while True:
            d = c.recv(1 << 16)
            if not d:
                break
            c.sendall(d)
        c.close()
        return
    if port == 7112:
        c.sendall(pattern(0, 50000))
        c.shutdown(socket.SHUT_WR)
        while c.recv(1 << 16):
            pass
        c.close()
        return
    if port == 7111:
        time.sleep(2.0)
    digest_reply(c)


def sigpipe_default():
    """splice() from a socket into a pipe without readers, SIGPIPE's action the default: the
    process ends by the signal before the call returns."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    s = connect(7110)
    r, w = os.pipe()
    os.close(r)
    print("connected", flush=True)
    try:
        print("splice returned %d" % os.splice(s.fileno(), w, 100))
    except OSError as e:
        print("splice -> %s" % errno.errorcode[e.errno])


if sys.argv[1] == "server":
    serve_forever((7110, 7111, 7112, 7113), conn)
elif sys.argv[1] == "sigpipe":
    sigpipe_default()
else:
    with tempfile.TemporaryDirectory() as tmp:
        client(tmp)
