# tests/e2e/prefork_client.py ADDR PHASE N [GO_FILE] — the kernel-side clients of tests/e2e/prefork_echo.py
# (tcp_programs.sh py-prefork, py-prefork-fork): N connections to ADDR:9500, each echoing 64 KiB of
# random bytes, checked byte-exact. PHASE "early": connect all N now, print "connected N", echo once
# GO_FILE exists; "late": connect all N, then echo; "fork": one connection at a time, 100 bytes
# echoed first (the worker forks after its first read), then the 64 KiB.
import os
import socket
import sys
import time

addr, phase, n = sys.argv[1], sys.argv[2], int(sys.argv[3])


def echo(c, size, what):
    data = os.urandom(size)
    c.sendall(data)
    got = b""
    while len(got) < len(data):
        b = c.recv(65536)
        if not b:
            sys.exit("%s: EOF after %d bytes" % (what, len(got)))
        got += b
    if got != data:
        sys.exit("%s: echo differs" % what)


if phase == "fork":
    for i in range(n):
        c = socket.create_connection((addr, 9500), timeout=10)
        echo(c, 100, "connection %d" % i)
        echo(c, 65536, "connection %d" % i)
        c.close()
    print(n, "connections, each moved into the kernel at a worker's fork: 64 KiB echoed byte-exact")
    sys.exit(0)
conns = [socket.create_connection((addr, 9500), timeout=10) for _ in range(n)]
if phase == "early":
    print("connected", n, flush=True)
    while not os.path.exists(sys.argv[4]):
        time.sleep(0.05)
for i, c in enumerate(conns):
    echo(c, 65536, "connection %d" % i)
for c in conns:
    c.close()
print(phase, n, "connections echoed 64 KiB byte-exact", flush=True)
