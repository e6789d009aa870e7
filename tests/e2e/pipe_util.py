# tests/e2e/pipe_util.py — what the splice scripts need beyond Python's os module: the fcntl and
# splice flag values, and vmsplice(2) through ctypes.
import ctypes, os

F_SETPIPE_SZ = 1031
SPLICE_F_NONBLOCK = 2
SPLICE_F_MORE = 4

_libc = ctypes.CDLL(None, use_errno=True)


class IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


KEEP = []  # vmsplice()d buffers: the pipe references their pages until read


def vmsplice(fd, data, flags=0):
    buf = ctypes.create_string_buffer(data, len(data))
    KEEP.append(buf)
    iov = IOVec(ctypes.cast(buf, ctypes.c_void_p), len(data))
    r = _libc.vmsplice(fd, ctypes.byref(iov), ctypes.c_ulong(1), ctypes.c_uint(flags))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r
