# tests/e2e/errqueue.py — the error-queue reader of the zerocopy differential tests
# (udp_zerocopy.py, tcp_zerocopy.py): every sock_extended_err record waiting on a socket; and
# memlock_limited(), the locked-memory limit MSG_ZEROCOPY's pages are charged to.
import contextlib, ctypes, errno, resource, socket, struct

CAP_IPC_LOCK = 14
_libc = ctypes.CDLL(None, use_errno=True)


def _caps():
    hdr = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = (ctypes.c_uint32 * 6)()  # two __user_cap_data_struct: effective, permitted, inheritable
    if _libc.capget(hdr, data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    return hdr, data


@contextlib.contextmanager
def memlock_limited(limit):
    """RLIMIT_MEMLOCK's soft limit at `limit` bytes and CAP_IPC_LOCK out of this thread's effective
    set (it stays permitted: both come back at the end), so that MSG_ZEROCOPY's pages count against
    the limit (the kernel's mm_account_pinned_pages() skips a task with CAP_IPC_LOCK)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    hdr, data = _caps()
    eff = data[0]
    data[0] = eff & ~(1 << CAP_IPC_LOCK)
    if _libc.capset(hdr, data) != 0:
        raise OSError(ctypes.get_errno(), "capset")
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (soft, hard))
        data[0] = eff
        _libc.capset(hdr, data)


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
