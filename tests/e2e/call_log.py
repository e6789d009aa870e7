# tests/e2e/call_log.py — the record the differential scripts print and compare (kernel run against
# xmit run): one line per call, its result or the name of its errno.
import errno, fcntl, struct

FIONREAD = 0x541B


def recorder(out):
    """call(name, f): runs f(), appends "name = result" or "name -> ERRNO" to `out`; returns the
    result, or the OSError it raised."""

    def call(name, f):
        try:
            r = f()
            out.append("%s = %r" % (name, r))
            return r
        except OSError as e:
            out.append("%s -> %s" % (name, errno.errorcode[e.errno]))
            return e

    return call


def inq(fd):
    """FIONREAD: the bytes a socket or pipe holds for reading."""
    return struct.unpack("i", fcntl.ioctl(fd, FIONREAD, b"\0" * 4))[0]
