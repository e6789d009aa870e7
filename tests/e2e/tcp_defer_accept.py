#!/usr/bin/env python3
"""tests/e2e/tcp_defer_accept.py — TCP_DEFER_ACCEPT on a listener (tcp_defer_accept.sh).

server DIR: two listeners on 0.0.0.0, port 7300 with TCP_DEFER_ACCEPT 5 and 7301 with 1; prints the
        getsockopt() value of each (the kernel's seconds of its retransmissions), then "listening".
        7300: once the client says it is connected (DIR/c1), the listener must not be readable for
        0.6 s (the handshake's ACK made no child); the server then tells the client to send (DIR/s1),
        the listener becomes readable, the accepted socket holds the 10 bytes at once.
        7301: the client connects (DIR/c2) and sends nothing: the listener becomes readable when
        the deferral ends (a SYN-ACK at 1 s, the client's ACK), the child has no data.
        Prints one line per observation; a line "FAIL ..." for a wrong one.
client DIR: the two connections from namespace b, as above; each waits for the server's EOF.
"""
import os
import select
import socket
import sys
import time

A = "198.18.0.1"
TCP_DEFER_ACCEPT = 9


def wait_file(path, timeout=20):
    end = time.time() + timeout
    while not os.path.exists(path):
        if time.time() > end:
            sys.exit("timed out waiting for " + path)
        time.sleep(0.02)


def accept_now(ls, fail_line):
    """Waits up to 10 s for the listener, accepts, and returns what the connection holds at once
    (b"" for nothing), or None (fail_line printed) when it never became readable."""
    r, _, _ = select.select([ls], [], [], 10)
    if not r:
        print(fail_line)
        return None
    c, _ = ls.accept()
    c.setblocking(False)
    try:
        got = c.recv(100)
    except BlockingIOError:
        got = b""
    c.close()
    return got


def server(d):
    ls = {}
    for port, secs in ((7300, 5), (7301, 1)):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_TCP, TCP_DEFER_ACCEPT, secs)
        s.bind(("0.0.0.0", port))
        s.listen(8)
        print("getsockopt TCP_DEFER_ACCEPT %d -> %d" % (secs, s.getsockopt(socket.IPPROTO_TCP, TCP_DEFER_ACCEPT)))
        ls[port] = s
    print("listening", flush=True)
    wait_file(d + "/c1")
    r, _, _ = select.select([ls[7300]], [], [], 0.6)
    print("7300 before data:", "FAIL readable" if r else "not readable")
    open(d + "/s1", "w").close()
    got = accept_now(ls[7300], "FAIL 7300 not readable after the data")
    if got is not None:
        print("7300 accepted with data at once:", got.decode() if got == b"0123456789" else "FAIL %r" % got)
    wait_file(d + "/c2")
    got = accept_now(ls[7301], "FAIL 7301 not readable when the deferral ended")
    if got is not None:
        print("7301 accepted at the deferral's end:", "no data" if got == b"" else "FAIL data %r" % got)
    sys.stdout.flush()


def client(d):
    c1 = socket.create_connection((A, 7300), timeout=20)
    open(d + "/c1", "w").close()
    wait_file(d + "/s1")
    c1.sendall(b"0123456789")
    if c1.recv(100) != b"":
        sys.exit("7300: data from the server")
    c2 = socket.create_connection((A, 7301), timeout=20)
    open(d + "/c2", "w").close()
    if c2.recv(100) != b"":
        sys.exit("7301: data from the server")
    print("client: both connections ended by the server")


if __name__ == "__main__":
    {"server": server, "client": client}[sys.argv[1]](sys.argv[2])
