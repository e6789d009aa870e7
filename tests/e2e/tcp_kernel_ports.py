# tests/e2e/tcp_kernel_ports.py — the halves of tcp_kernel_ports.sh.
#   server ADDR PORT: accepts for ever; each connection gets one byte and is closed at once, so the
#     server closes first and keeps the 4-tuple in TIME_WAIT.
#   sink ADDR PORT: accepts for ever; each connection gets one byte and is read to its end before
#     the server closes, so the client closes first and keeps the 4-tuple in TIME_WAIT.
#   client ADDR PORT N: N connections one after the other, each read to its end and closed; prints
#     each connection's local port.
#   first ADDR PORT N: as client, but each connection is closed after its byte, before the server.
#   echo ADDR PORT: echoes each connection (one at a time) until its end.
#   fork ADDR PORT [bind0]: one blocking connection to an echo server (bind0: bound to port 0
#     first), a round trip, fork(), a round trip in the child and then one in the parent; prints
#     its port.
import os
import socket
import sys

mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

def round_trip(s, m):
    s.sendall(m)
    got = b""
    while len(got) < len(m):
        b = s.recv(100)
        if not b:
            sys.exit(f"{m!r}: the connection ended after {got!r}")
        got += b
    if got != m:
        sys.exit(f"{m!r}: echoed {got!r}")


def listening():
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(128)
    print("listening", flush=True)
    return ls


if mode == "echo":
    ls = listening()
    while True:
        c, _ = ls.accept()
        while b := c.recv(100):
            c.sendall(b)
        c.close()
elif mode == "fork":
    s = socket.socket()  # blocking: connect() sets O_NONBLOCK on its kernel socket for the call only
    if sys.argv[4:] == ["bind0"]:
        s.bind(("", 0))  # a port the kernel chose: not locked, a disconnect frees it
    s.connect((addr, port))
    round_trip(s, b"before fork")
    pid = os.fork()
    if pid == 0:
        round_trip(s, b"in the child")
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        sys.exit(f"the child failed: {status}")
    round_trip(s, b"in the parent after")
    print(s.getsockname()[1], flush=True)
    s.close()
elif mode in ("server", "sink"):
    ls = listening()
    while True:
        c, _ = ls.accept()
        c.sendall(b"x")
        if mode == "sink":
            c.settimeout(30)
            while c.recv(16):
                pass
        c.close()
else:
    for _ in range(int(sys.argv[4])):
        s = socket.socket()
        s.settimeout(30)
        s.connect((addr, port))
        got = b""
        while mode == "first" and not got:
            b = s.recv(1)
            if not b:
                break
            got += b
        while mode == "client":
            b = s.recv(16)
            if not b:
                break
            got += b
        if got != b"x":
            sys.exit(f"port {s.getsockname()[1]}: got {got!r}")
        print(s.getsockname()[1], flush=True)
        s.close()
