# tests/e2e/errqueue.py — the error-queue reader of the zerocopy differential tests
# (udp_zerocopy.py, tcp_zerocopy.py): every sock_extended_err record waiting on a socket.
import errno, socket, struct


def drain(s):
    """Reads s's error queue with MSG_DONTWAIT until it fails. Returns (records, stop): each record
    is a dict of the read's data length, msg_flags and address, the cmsg's level and type, and
    struct sock_extended_err's fields (offender: the 16 bytes after it, hex); stop is the errno name
    that ended the read (EAGAIN once the queue is empty)."""
    recs = []
    while True:
        try:
            data, anc, flags, addr = s.recvmsg(64, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
        except OSError as e:
            return recs, errno.errorcode[e.errno]
        for level, typ, v in anc:
            ee_errno, origin, ee_type, code, _pad, info, dat = struct.unpack("=IBBBBII", v[:16])
            recs.append(dict(len=len(data), flags=flags, addr=addr, level=level, type=typ, errno=ee_errno,
                             origin=origin, ee_type=ee_type, code=code, info=info, data=dat,
                             offender=v[16:32].hex()))
