# tests/e2e/tcp_sendfile_eio.py — sendfile() into a TCP socket from a file whose reads fail partway
# (a FUSE file answering EIO from an offset on, held_fuse.py); prints every return value, errno
# and file position. tcp_sendfile_eio.sh runs `server` in namespace b and `client` in namespace a,
# once on the kernel and once under xmit, and compares the outputs and what the server got.
#
# The kernel (splice_direct_to_actor(), fs/splice.c) returns the bytes it sent before the read
# that failed, and the read's error when nothing went: a short count, then EIO from the next call.
# Under xmit a read that failed after part of its read-ahead used to spin for ever, re-reading the
# same bytes (issue 7): a call that does not return ends the client (the harness's way out).
#
# server: port 7120 reads each connection to EOF, answers "<len> <sha256>" and logs the same line;
# port 7121 (UDP) logs "udp <len> <sha256>" of each datagram.
import hashlib, os, socket, sys, tempfile, threading

from call_log import recorder
from held_fuse import HeldFile
from stream_peer import digest_reply, half_close, log_line, serve_forever

B = "198.18.0.2"
SIZE = 200000
LIMIT = 30  # seconds a call may take before the client gives up on it
out = []
call = recorder(out)


def pattern(n):
    return bytes((i * 7 + 3) & 0xff for i in range(n))


def bounded(name, f, fuse):
    """call(name, f) in a thread; one that has not returned after LIMIT s ends the client (the
    FUSE connection aborted first, or the thread's read would hold the exit for ever)."""
    t = threading.Thread(target=call, args=(name, f), daemon=True)
    t.start()
    t.join(LIMIT)
    if t.is_alive():
        out.append("%s: did not return in %d s" % (name, LIMIT))
        print("\n".join(out), flush=True)
        fuse.abort()
        os._exit(3)


def client(tmp):
    data = pattern(SIZE)
    # The bad byte at the file's first byte, in its second page (the first page arrives), and past
    # the first 64 KiB round (a round, then a short one).
    for i, bad in enumerate((0, 5000, 70000)):
        mnt = os.path.join(tmp, "mnt%d" % i)
        os.mkdir(mnt)
        fuse = HeldFile(mnt, "f", data, hold=False, eio_from=bad)
        try:
            fd = os.open(os.path.join(mnt, "f"), os.O_RDONLY)
            s = socket.create_connection((B, 7120))
            so = s.fileno()
            out.append("EIO from byte %d:" % bad)
            bounded("  sendfile offset 0 count %d" % SIZE, lambda: os.sendfile(so, fd, 0, SIZE), fuse)
            call("  file position", lambda: os.lseek(fd, 0, os.SEEK_CUR))
            bounded("  sendfile position count %d" % SIZE, lambda: os.sendfile(so, fd, None, SIZE), fuse)
            call("  file position", lambda: os.lseek(fd, 0, os.SEEK_CUR))
            bounded("  sendfile position again", lambda: os.sendfile(so, fd, None, SIZE), fuse)
            call("  file position", lambda: os.lseek(fd, 0, os.SEEK_CUR))
            bounded("  sendfile offset 0 count 100 (cached)", lambda: os.sendfile(so, fd, 0, 100), fuse)
            out.append("  peer got %s" % half_close(s))
            # Into a connected UDP socket: one datagram a round, the server logs each.
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.connect((B, 7121))
            uo = u.fileno()
            bounded("  udp sendfile offset 0 count 60000", lambda: os.sendfile(uo, fd, 0, 60000), fuse)
            bounded("  udp sendfile offset 65536 count 60000", lambda: os.sendfile(uo, fd, 65536, 60000), fuse)
            bounded("  udp sendfile offset 0 count 100 (cached)", lambda: os.sendfile(uo, fd, 0, 100), fuse)
            call("  udp send", lambda: u.send(b"end %d" % bad))
            u.close()
            os.close(fd)
        finally:
            fuse.umount()
    print("\n".join(out))


def udp_server():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", 7121))
    while True:
        d = u.recv(1 << 16)
        log_line("udp %d %s" % (len(d), hashlib.sha256(d).hexdigest()))


if sys.argv[1] == "server":
    threading.Thread(target=udp_server, daemon=True).start()
    serve_forever((7120,), lambda port, c: digest_reply(c))
else:
    with tempfile.TemporaryDirectory() as tmp:
        client(tmp)
