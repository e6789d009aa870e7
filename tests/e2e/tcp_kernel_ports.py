# tests/e2e/tcp_kernel_ports.py — the halves of tcp_kernel_ports.sh.
#   server ADDR PORT: accepts for ever; each connection gets one byte and is closed at once, so the
#     server closes first and keeps the 4-tuple in TIME_WAIT.
#   client ADDR PORT N: N connections one after the other, each read to its end and closed; prints
#     each connection's local port.
import socket
import sys

mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "server":
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(128)
    print("listening", flush=True)
    while True:
        c, _ = ls.accept()
        c.sendall(b"x")
        c.close()
else:
    for _ in range(int(sys.argv[4])):
        s = socket.socket()
        s.settimeout(30)
        s.connect((addr, port))
        got = b""
        while True:
            b = s.recv(16)
            if not b:
                break
            got += b
        if got != b"x":
            sys.exit(f"port {s.getsockname()[1]}: got {got!r}")
        print(s.getsockname()[1], flush=True)
        s.close()
