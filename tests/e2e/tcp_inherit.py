#!/usr/bin/env python3
"""tests/e2e/tcp_inherit.py [fork] — what an accepted connection inherits of its listener's options
(tcp_inherit.sh): a listener on 0.0.0.0:7400 sets 24 options (socket, IP and TCP level), accepts one
connection, and prints getsockopt() of each on the listener and on the accepted socket. "fork": the
listener is made, then a forked child accepts (a pre-fork worker, with XMIT_WORKERS=1 under xmit).
"""
import os
import socket
import struct
import sys

T = socket.IPPROTO_TCP
opts = [
 ("SO_RCVTIMEO", socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 3, 500000), 16),
 ("SO_SNDTIMEO", socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 2, 0), 16),
 ("SO_SNDBUF", socket.SOL_SOCKET, socket.SO_SNDBUF, 50000, None),
 ("SO_RCVBUF", socket.SOL_SOCKET, socket.SO_RCVBUF, 60000, None),
 ("SO_RCVLOWAT", socket.SOL_SOCKET, socket.SO_RCVLOWAT, 7, None),
 ("SO_LINGER", socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 5), 8),
 ("SO_KEEPALIVE", socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1, None),
 ("SO_OOBINLINE", socket.SOL_SOCKET, socket.SO_OOBINLINE, 1, None),
 ("SO_PRIORITY", socket.SOL_SOCKET, socket.SO_PRIORITY, 3, None),
 ("SO_MARK", socket.SOL_SOCKET, socket.SO_MARK, 9, None),
 ("IP_TOS", socket.IPPROTO_IP, socket.IP_TOS, 0x20, None),
 ("IP_TTL", socket.IPPROTO_IP, socket.IP_TTL, 33, None),
 ("TCP_NODELAY", T, socket.TCP_NODELAY, 1, None),
 ("TCP_MAXSEG", T, socket.TCP_MAXSEG, 1000, None),
 ("TCP_KEEPIDLE", T, socket.TCP_KEEPIDLE, 77, None),
 ("TCP_KEEPINTVL", T, socket.TCP_KEEPINTVL, 11, None),
 ("TCP_KEEPCNT", T, socket.TCP_KEEPCNT, 4, None),
 ("TCP_USER_TIMEOUT", T, 18, 12345, None),
 ("TCP_NOTSENT_LOWAT", T, 25, 65536, None),
 ("TCP_LINGER2", T, socket.TCP_LINGER2, 30, None),
 ("TCP_SYNCNT", T, socket.TCP_SYNCNT, 3, None),
 ("TCP_DEFER_ACCEPT", T, 9, 0, None),
 ("TCP_CONGESTION", T, 13, b"reno", 16),
 ("TCP_WINDOW_CLAMP", T, 10, 20000, None),
]
fork = len(sys.argv) > 1 and sys.argv[1] == "fork"
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
for n, l, o, v, sz in opts:
    try:
        ls.setsockopt(l, o, v)
    except OSError as e:
        print("set", n, e)
ls.bind(("0.0.0.0", 7400)); ls.listen(4)
print("listening", flush=True)
if fork:
    pid = os.fork()
    if pid != 0:
        _, st = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(st))
c, _ = ls.accept()
for who, s in (("listener", ls), ("child", c)):
    for n, l, o, v, sz in opts:
        try:
            r = s.getsockopt(l, o, sz) if sz else s.getsockopt(l, o)
            if isinstance(r, bytes):
                r = r.rstrip(b"\0") if n == "TCP_CONGESTION" else r.hex()
        except OSError as e:
            r = "E%d" % e.errno
        print(who, n, r)
c.close()
sys.stdout.flush()
