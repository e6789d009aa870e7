# tests/e2e/udp_zerocopy.py — one sequence of MSG_ZEROCOPY calls on a UDP socket; prints every
# return value, errno and error-queue record. udp_zerocopy.sh runs it on the kernel and under xmit
# and compares the two outputs (only the COPIED code may differ where the kernel sent in place).
import errno, select, socket, struct, sys, time

from errqueue import drain

SO_ZEROCOPY = 60
MSG_ZEROCOPY = 0x4000000
dst = ("198.18.0.2", 6000)
out = []

def call(name, f):
    try:
        out.append("%s = %r" % (name, f()))
    except OSError as e:
        out.append("%s -> %s" % (name, errno.errorcode[e.errno]))

def errqueue(s):
    time.sleep(0.3)  # every frame sent and freed
    p = select.poll()
    p.register(s, 0)
    out.append("poll: POLLERR %d" % any(ev & select.POLLERR for _, ev in p.poll(0)))
    recs, stop = drain(s)
    for r in recs:
        out.append("record: len %d flags %#x errno %d origin %d type %d code %d range %d..%d offender %s level %d type %d"
                   % (r["len"], r["flags"] & ~socket.MSG_ERRQUEUE, r["errno"], r["origin"], r["ee_type"], r["code"],
                      r["info"], r["data"], r["offender"], r["level"], r["type"]))
        out.append("record msg_flags has MSG_ERRQUEUE: %d, addr %r" % (bool(r["flags"] & socket.MSG_ERRQUEUE), r["addr"]))
    out.append("errqueue: %s" % stop)

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
call("getsockopt SO_ZEROCOPY", lambda: s.getsockopt(socket.SOL_SOCKET, SO_ZEROCOPY))
call("sendto MSG_ZEROCOPY without SO_ZEROCOPY", lambda: s.sendto(b"a" * 100, MSG_ZEROCOPY, dst))
errqueue(s)
call("setsockopt SO_ZEROCOPY 2", lambda: s.setsockopt(socket.SOL_SOCKET, SO_ZEROCOPY, 2))
call("setsockopt SO_ZEROCOPY 1", lambda: s.setsockopt(socket.SOL_SOCKET, SO_ZEROCOPY, 1))
call("getsockopt SO_ZEROCOPY", lambda: s.getsockopt(socket.SOL_SOCKET, SO_ZEROCOPY))
for n in (1, 100, 1472, 3000, 0):
    call("sendto zc %d" % n, lambda: s.sendto(b"z" * n, MSG_ZEROCOPY, dst))
call("sendto plain 10", lambda: s.sendto(b"p" * 10, 0, dst))
call("sendto zc MSG_MORE 50", lambda: s.sendto(b"m" * 50, MSG_ZEROCOPY | socket.MSG_MORE, dst))
call("sendto zc MSG_MORE 0 (append)", lambda: s.sendto(b"", MSG_ZEROCOPY | socket.MSG_MORE, dst))
call("sendto zc last 60", lambda: s.sendto(b"n" * 60, MSG_ZEROCOPY, dst))
call("sendto zc 70000", lambda: s.sendto(b"x" * 70000, MSG_ZEROCOPY, dst))
call("sendmsg zc 200", lambda: s.sendmsg([b"s" * 200], [], MSG_ZEROCOPY, dst))
errqueue(s)
s.connect(dst)
for i in range(3):
    call("send zc %d" % i, lambda: s.send(b"c" * 500, MSG_ZEROCOPY))
    errqueue(s)
call("send zc after reads", lambda: s.send(b"d" * 10, MSG_ZEROCOPY))
call("send zc after reads", lambda: s.send(b"e" * 10, MSG_ZEROCOPY))
errqueue(s)
print("\n".join(out))
