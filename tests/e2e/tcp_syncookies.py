#!/usr/bin/env python3
"""tests/e2e/tcp_syncookies.py — a SYN flood, then real connections, to a listener that does not
accept for a while (tcp_syncookies.sh).

server: listens on 0.0.0.0:7200 with backlog `n`, prints "listening", sleeps `hold` seconds without
        accepting, then accepts `n` connections one at a time: reads the client's 20000 bytes
        (its index in the first 4), checks them, answers with 30000 bytes of its own for that
        index, closes; prints "accepted n byte-exact" at the end (or what went wrong).
flood:  sends `f` SYNs to 198.18.0.1:7200 from 198.18.0.100, .101, ... (a raw socket, source
        addresses nobody answers ARP for: their SYN-ACKs never leave, their requests stay queued).
client: `n` threads connect to 198.18.0.1:7200 at once (a barrier before connect()), each sends its
        20000 bytes, reads the answer to EOF and checks it; prints "n connections byte-exact both
        ways" (or what went wrong).
"""
import hashlib
import socket
import struct
import sys
import threading
import time

PORT = 7200
ADDR = "198.18.0.1"


def client_bytes(k):
    return struct.pack("!I", k) + hashlib.shake_256(b"client %d" % k).digest(19996)


def server_bytes(k):
    return hashlib.shake_256(b"server %d" % k).digest(30000)


def recv_exact(c, n):
    b = bytearray()
    while len(b) < n:
        r = c.recv(n - len(b))
        if not r:
            break
        b += r
    return bytes(b)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def flood(f):
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    dst = socket.inet_aton(ADDR)
    for i in range(f):
        src = socket.inet_aton("198.18.0.%d" % (100 + i))
        # TCP SYN, MSS 1460 (no timestamps: a flood tool's bare SYN)
        tcp = struct.pack("!HHIIBBHHH", 20000 + i, PORT, 1000 * i, 0, 6 << 4, 0x02, 64240, 0, 0)
        tcp += struct.pack("!BBH", 2, 4, 1460)
        pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i + 1, 0x4000, 64, socket.IPPROTO_TCP, 0,
                         src, dst)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        r.sendto(ip + tcp, (ADDR, 0))
    print("flooded %d" % f, flush=True)


def server(n, hold):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", PORT))
    ls.listen(n)
    print("listening", flush=True)
    time.sleep(hold)
    ls.settimeout(120)
    seen = set()
    for _ in range(n):
        c, _ = ls.accept()
        c.settimeout(60)
        b = recv_exact(c, 20000)
        k = struct.unpack("!I", b[:4])[0] if len(b) >= 4 else -1
        if b != client_bytes(k) or k in seen:
            print("bad data from connection %d (%d bytes)" % (k, len(b)), flush=True)
            sys.exit(1)
        seen.add(k)
        c.sendall(server_bytes(k))
        c.close()
    print("accepted %d byte-exact" % n, flush=True)


def client(n):
    barrier = threading.Barrier(n)
    errors = []

    def one(k):
        try:
            s = socket.socket()
            s.settimeout(120)
            barrier.wait()
            s.connect((ADDR, PORT))
            s.sendall(client_bytes(k))
            got = recv_exact(s, 30001)
            if got != server_bytes(k):
                errors.append("connection %d: %d bytes, not the server's" % (k, len(got)))
            s.close()
        except Exception as e:  # noqa: BLE001 — reported as the test's failure
            errors.append("connection %d: %r" % (k, e))

    threads = [threading.Thread(target=one, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        print("; ".join(sorted(errors)), flush=True)
        sys.exit(1)
    print("%d connections byte-exact both ways" % n, flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(int(sys.argv[2]), float(sys.argv[3]))
    elif sys.argv[1] == "flood":
        flood(int(sys.argv[2]))
    else:
        client(int(sys.argv[2]))
