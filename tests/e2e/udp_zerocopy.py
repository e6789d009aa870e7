# tests/e2e/udp_zerocopy.py — one sequence of MSG_ZEROCOPY calls on a UDP socket; prints every
# return value, errno and error-queue record. udp_zerocopy.sh runs it on the kernel and under xmit
# and compares the two outputs (only the COPIED code may differ where the kernel sent in place).
import errno, select, socket, struct, sys, time

from errqueue import drain, memlock_limited

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
# RLIMIT_MEMLOCK 32 KiB (8 pages) without CAP_IPC_LOCK: each send charges its length's pages + 2
# until its completion (mm_account_pinned_pages()); past the limit ENOBUFS and no id taken. The
# corked sends stay unsent, so their charges add up whatever the timing. (A socket of its own,
# unconnected: b's ICMP errors do not come back from its sends.)
m = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
m.setsockopt(socket.SOL_SOCKET, SO_ZEROCOPY, 1)
with memlock_limited(32768):
    call("memlock: sendto zc 40000 (11 pages)", lambda: m.sendto(b"l" * 40000, MSG_ZEROCOPY, dst))
    call("memlock: sendto zc 20000 (6 pages)", lambda: m.sendto(b"k" * 20000, MSG_ZEROCOPY, dst))
    errqueue(m)
    call("memlock: corked sendto zc 10000", lambda: m.sendto(b"a" * 10000, MSG_ZEROCOPY | socket.MSG_MORE, dst))
    call("memlock: corked sendto zc 10000 more", lambda: m.sendto(b"b" * 10000, MSG_ZEROCOPY | socket.MSG_MORE, dst))
    call("memlock: corked sendto zc 100 past the limit", lambda: m.sendto(b"c" * 100, MSG_ZEROCOPY | socket.MSG_MORE, dst))
    call("memlock: sendto plain 100 (the datagram goes)", lambda: m.sendto(b"d" * 100, 0, dst))
    errqueue(m)
    call("memlock: sendto zc 20000 after the completions", lambda: m.sendto(b"e" * 20000, MSG_ZEROCOPY, dst))
    errqueue(m)
print("\n".join(out))
