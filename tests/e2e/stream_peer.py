# tests/e2e/stream_peer.py — the two ends of the TCP differential tests (tcp_zerocopy.py,
# tcp_splice.py, tcp_sendfile_eio.py): the kernel-side server (a listener on each of their ports, every
# connection served by the test's own handler in a thread of its own; digest_reply() the handler
# most of them use) and the client's end of a connection (half-close, then the server's answer).
import hashlib, socket, sys, threading, time


def serve_forever(ports, conn):
    """Listens on 0.0.0.0:port for each of `ports`; conn(port, c) serves each accepted connection.
    Never returns."""
    def serve(port):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("0.0.0.0", port))
        ls.listen(16)
        while True:
            c, _ = ls.accept()
            threading.Thread(target=conn, args=(port, c), daemon=True).start()

    for p in ports:
        threading.Thread(target=serve, args=(p,), daemon=True).start()
    while True:
        time.sleep(1)


def digest_reply(c):
    """Reads c to EOF, answers "<len> <sha256>" of what it got, closes c and prints the same line
    (the server's log, which the tests compare)."""
    h, n = hashlib.sha256(), 0
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        h.update(d)
        n += len(d)
    line = "%d %s" % (n, h.hexdigest())
    c.sendall(line.encode())
    c.close()
    log_line(line)


def log_line(line):
    """Prints line whole: one write, so lines from the server's threads never interleave."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def half_close(s):
    """Half-closes s, reads the server's answer until its end, closes s; returns the answer."""
    s.shutdown(socket.SHUT_WR)
    ans = b""
    while True:
        d = s.recv(200)
        if not d:
            break
        ans += d
    s.close()
    return ans.decode()
