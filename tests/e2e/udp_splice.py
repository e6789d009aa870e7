# tests/e2e/udp_splice.py — splice() and vmsplice() from pipes, and sendfile(), into UDP sockets;
# prints every return value, errno, pipe fill and file position. udp_splice.sh runs `server` in namespace b (prints the length and
# sha256 of each datagram to port 7120) and `client` in namespace a, once on the kernel and once
# under xmit, and compares both outputs.
import fcntl, hashlib, os, socket, sys, tempfile
from call_log import inq, recorder
from pipe_util import F_SETPIPE_SZ, SPLICE_F_MORE, SPLICE_F_NONBLOCK, vmsplice

B = "198.18.0.2"
out = []
call = recorder(out)


def pattern(off, n):
    return bytes(((off + i) * 7 + 3) & 0xff for i in range(n))


def writes(fd, k, n, seed):
    """k writes of n bytes: each its own pipe buffer when n > 2048 (a write merges into the last
    buffer only if it fits its page)."""
    for i in range(k):
        os.write(fd, pattern(seed + i, n))


def drain(fd):
    while inq(fd) > 0:
        os.read(fd, inq(fd))


def client(tmp):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((B, 7120))
    so = s.fileno()
    pr, pw = os.pipe()
    fcntl.fcntl(pw, F_SETPIPE_SZ, 1 << 20)
    os.write(pw, pattern(0, 1000))
    call("splice 1000 (1000 there)", lambda: os.splice(pr, so, 1000))
    os.write(pw, pattern(1, 3000))
    call("splice 1000 (3000 there)", lambda: os.splice(pr, so, 1000))
    call("  pipe holds", lambda: inq(pr))
    call("splice 5000 (2000 there)", lambda: os.splice(pr, so, 5000))
    os.write(pw, pattern(2, 500))
    call("splice 500 SPLICE_F_MORE", lambda: os.splice(pr, so, 500, flags=SPLICE_F_MORE))
    os.write(pw, pattern(3, 700))
    call("splice 700 (ends the corked datagram)", lambda: os.splice(pr, so, 700))
    call("splice empty pipe NONBLOCK", lambda: os.splice(pr, so, 100, flags=SPLICE_F_NONBLOCK))
    os.write(pw, pattern(4, 70000))
    call("splice 70000 (past a datagram)", lambda: os.splice(pr, so, 70000))
    call("  pipe holds", lambda: inq(pr))
    drain(pr)
    os.write(pw, pattern(5, 65507))
    call("splice 65507", lambda: os.splice(pr, so, 65507))
    call("  pipe holds", lambda: inq(pr))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    os.write(pw, pattern(6, 100))
    call("splice to an unconnected socket", lambda: os.splice(pr, u.fileno(), 100))
    call("  pipe holds", lambda: inq(pr))
    drain(pr)
    u.close()
    call("vmsplice 2000", lambda: vmsplice(pw, pattern(7, 2000)))
    call("splice 2000 (vmspliced)", lambda: os.splice(pr, so, 2000))
    fifo = os.path.join(tmp, "fifo")
    os.mkfifo(fifo)
    ff = os.open(fifo, os.O_RDWR)
    os.write(ff, pattern(8, 300))
    call("splice O_RDWR fifo 1000 (300 there)", lambda: os.splice(ff, so, 1000))
    call("  fifo holds", lambda: inq(ff))
    os.close(ff)
    r2, w2 = os.pipe()
    os.close(w2)
    call("splice from a pipe without writers", lambda: os.splice(r2, so, 100))
    os.close(r2)
    # Many small pipe buffers: splice_to_socket() sends rounds of up to 16 buffers, MSG_MORE while
    # more of the count is in the pipe (or the round stopped at 16 buffers), into the cork. A later
    # round that overflows the datagram is EMSGSIZE: of at most 65535 bytes it reaches
    # ip_append_data(), whose error drops the cork; of more, udp_sendmsg()'s first check refuses it
    # and the cork stays for the next send. splice() returns the rounds taken.
    drain(pr)
    writes(pw, 30, 3000, 10)
    call("splice 90000 (30 buffers of 3000: round 2 overflows)", lambda: os.splice(pr, so, 90000))
    call("  pipe holds", lambda: inq(pr))
    call("send 10 (the dropped cork's bytes not with it)", lambda: s.send(pattern(11, 10)))
    drain(pr)
    writes(pw, 16, 3000, 12)
    os.write(pw, pattern(13, 65536))
    call("splice 200000 (16 buffers of 3000, then 16 pages)", lambda: os.splice(pr, so, 200000))
    call("  pipe holds", lambda: inq(pr))
    call("send 11 (flushes the cork)", lambda: s.send(pattern(14, 11)))
    drain(pr)
    writes(pw, 16, 3000, 15)
    call("splice 50000 (16 buffers of 3000, all the pipe holds)", lambda: os.splice(pr, so, 50000))
    call("  pipe holds", lambda: inq(pr))
    call("send 12 (flushes the cork)", lambda: s.send(pattern(16, 12)))
    writes(pw, 20, 3000, 17)
    call("splice 60000 (20 buffers of 3000: two rounds, one datagram)", lambda: os.splice(pr, so, 60000))
    call("  pipe holds", lambda: inq(pr))
    # sendfile(): one datagram of the count (short at the file's end), the position moving by it.
    path = os.path.join(tmp, "file")
    with open(path, "wb") as f:
        f.write(pattern(0, 300000))
    fd = os.open(path, os.O_RDONLY)
    call("sendfile offset 0 count 1000", lambda: os.sendfile(so, fd, 0, 1000))
    call("sendfile position count 20000", lambda: os.sendfile(so, fd, None, 20000))
    call("  file position", lambda: os.lseek(fd, 0, os.SEEK_CUR))
    call("sendfile count 65507", lambda: os.sendfile(so, fd, 4096, 65507))
    os.lseek(fd, 0, os.SEEK_SET)
    call("sendfile position count 70000 (past a datagram)", lambda: os.sendfile(so, fd, None, 70000))
    call("  file position", lambda: os.lseek(fd, 0, os.SEEK_CUR))
    call("sendfile offset 299500 count 1000 (the file's end)", lambda: os.sendfile(so, fd, 299500, 1000))
    call("sendfile at the file's end", lambda: os.sendfile(so, fd, 300000, 1000))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    call("sendfile to an unconnected socket", lambda: os.sendfile(u.fileno(), fd, 0, 100))
    u.close()
    # An unaligned offset: splice_direct_to_actor()'s first round (16 pages of its pipe) is short
    # of 65536 and goes into the cork with SPLICE_F_MORE; the overflowing round behaves as splice's.
    call("sendfile offset 100 count 70000", lambda: os.sendfile(so, fd, 100, 70000))
    call("send 13 (the dropped cork's bytes not with it)", lambda: s.send(pattern(18, 13)))
    os.lseek(fd, 5000, os.SEEK_SET)
    call("sendfile position 5000 count 200000", lambda: os.sendfile(so, fd, None, 200000))
    call("  file position", lambda: os.lseek(fd, 0, os.SEEK_CUR))
    call("send 14 (flushes the cork)", lambda: s.send(pattern(19, 14)))
    call("sendfile offset 4000 count 65000 (two rounds, one datagram)", lambda: os.sendfile(so, fd, 4000, 65000))
    os.close(fd)
    # O_DIRECT (tmp is on a disk file system): the kernel's rounds read from the disk into its
    # pages, each aligned or EINVAL.
    dfd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    call("sendfile O_DIRECT offset 0 count 8192", lambda: os.sendfile(so, dfd, 0, 8192))
    call("sendfile O_DIRECT offset 0 count 1000", lambda: os.sendfile(so, dfd, 0, 1000))
    call("sendfile O_DIRECT offset 100 count 4096", lambda: os.sendfile(so, dfd, 100, 4096))
    call("sendfile O_DIRECT offset 4096 count 65507", lambda: os.sendfile(so, dfd, 4096, 65507))
    os.close(dfd)
    s.setblocking(False)
    os.write(pw, pattern(9, 1200))
    call("splice 1200 O_NONBLOCK socket", lambda: os.splice(pr, so, 1200))
    s.sendto(b"end", (B, 7120))
    s.close()
    print("\n".join(out))


if sys.argv[1] == "server":
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    r.bind(("0.0.0.0", 7120))
    while True:
        d = r.recv(1 << 17)
        print("%d %s" % (len(d), hashlib.sha256(d).hexdigest()[:16]), flush=True)
        if d == b"end":
            break
else:
    with tempfile.TemporaryDirectory() as tmp:
        client(tmp)
