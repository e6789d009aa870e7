#!/usr/bin/python3
# tests/e2e/echo_peer.py — both ends of the echo tests (afxdp_queues.sh, jumbo_mtu.sh), run by the
# kernel in namespace b or under xmit in a; each prints one line the test compares.
#   tcp-server ADDR PORT N READY        echoes N connections (each in a thread), touches READY first
#   tcp-client ADDR PORT N SIZE         N connections one after another, each SIZE bytes of its own
#                                       pattern, half-closed, its echo read to EOF:
#                                       "tcp-client ok K of N, mss M, IP_MTU U" (the last connection's)
#   udp-server ADDR PORT N READY        echoes N datagrams
#   udp-client ADDR PORT N SIZE         N sockets, each one datagram of SIZE and its echo:
#                                       "udp-client ok K of N, IP_MTU M" (M: a connected socket's)
import signal, socket, sys, threading

signal.alarm(60)
mode, addr, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


def pattern(i, size):
    return bytes((i * 7 + j) & 255 for j in range(size))


def echo(c):
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.close()


if mode == "tcp-server":
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)
    open(sys.argv[5], "w").close()
    ts = []
    for _ in range(n):
        c, _ = s.accept()
        ts.append(threading.Thread(target=echo, args=(c,)))
        ts[-1].start()
    for t in ts:
        t.join()
elif mode == "tcp-client":
    size, ok, mss, mtu = int(sys.argv[5]), 0, 0, 0
    for i in range(n):
        c = socket.create_connection((addr, port), timeout=20)
        data = pattern(i, size)
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            d = c.recv(65536)
            if not d:
                break
            got += d
        ok += got == data
        mss = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
        mtu = c.getsockopt(socket.IPPROTO_IP, 14)  # IP_MTU
        c.close()
    print("tcp-client ok %d of %d, mss %d, IP_MTU %d" % (ok, n, mss, mtu))
elif mode == "udp-server":
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((addr, port))
    open(sys.argv[5], "w").close()
    for _ in range(n):
        d, a = u.recvfrom(65536)
        u.sendto(d, a)
elif mode == "udp-client":
    size, ok = int(sys.argv[5]), 0
    m = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    m.connect((addr, port))
    for i in range(n):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(5)
        u.sendto(pattern(i, size), (addr, port))
        try:
            ok += u.recv(65536) == pattern(i, size)
        except socket.timeout:
            pass
    print("udp-client ok %d of %d, IP_MTU %d" % (ok, n, m.getsockopt(socket.IPPROTO_IP, 14)))
else:
    sys.exit("echo_peer.py: unknown mode " + mode)
