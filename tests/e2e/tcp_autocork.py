#!/usr/bin/env python3
"""tests/e2e/tcp_autocork.py — the small-writes case of autocorking (tcp_autocork.sh).

server: accepts one connection on port 7100 at a time, reads it to EOF, prints the byte count and
        the sha256 of what arrived (one line per connection), for `count` connections.
client: connects to 198.18.0.2:7100, sets TCP_NODELAY, writes N (default 10000) chunks of 10
        bytes with send(), then closes; prints the bytes it wrote and their sha256.
"""
import hashlib
import socket
import sys

PORT = 7100
ADDR = "198.18.0.2"


def chunk(i):
    return b"%010d" % (i % 10**10)


def server(count):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", PORT))
    ls.listen(8)
    done = 0
    while done < count:
        c, _ = ls.accept()
        h = hashlib.sha256()
        n = 0
        while True:
            b = c.recv(65536)
            if not b:
                break
            h.update(b)
            n += len(b)
        c.close()
        if n == 0:
            continue  # the script's readiness probe
        print(n, h.hexdigest(), flush=True)
        done += 1


def client(n):
    s = socket.create_connection((ADDR, PORT))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    h = hashlib.sha256()
    for i in range(n):
        b = chunk(i)
        s.sendall(b)
        h.update(b)
    s.close()
    print(10 * n, h.hexdigest(), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(int(sys.argv[2]))
    else:
        client(int(sys.argv[2]) if len(sys.argv) > 2 else 10000)
