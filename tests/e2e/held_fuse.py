# tests/e2e/held_fuse.py — a one-file FUSE file system served by a thread of the test itself, whose
# first READ is answered only when the test says so: a file whose read blocks (slow storage, a FUSE
# or NFS server) without timing; or whose READs fail with EIO from an offset on (a bad sector).
# Speaks the kernel's FUSE protocol on /dev/fuse directly (include/uapi/linux/fuse.h; no libfuse).
# Needs CAP_SYS_ADMIN; mount in a private mount namespace (`ip netns exec` gives its command one),
# the mount goes with it.
import ctypes, errno, os, stat, struct, tempfile, threading

FUSE_LOOKUP, FUSE_FORGET, FUSE_GETATTR, FUSE_OPEN, FUSE_READ = 1, 2, 3, 14, 15
FUSE_RELEASE, FUSE_FLUSH, FUSE_INIT, FUSE_INTERRUPT, FUSE_DESTROY, FUSE_BATCH_FORGET = 18, 25, 26, 36, 38, 42
IN_HEADER = struct.Struct("<IIQQIIIHH")  # fuse_in_header
OUT_HEADER = struct.Struct("<IiQ")  # fuse_out_header
ATTR = struct.Struct("<QQQQQQIIIIIIIIII")  # fuse_attr
FILE_NODE = 2
_libc = ctypes.CDLL(None, use_errno=True)


class HeldFile:
    """Mounts at `mnt` a file `name` holding `data`. The first READ waits until release() (or
    `guard` seconds, a failing test's way out); held is set while it waits. hold=False answers it
    at once. With eio_from, a READ that reaches that offset (or past it) is answered EIO, as a disk
    fails a request that covers a bad sector: the kernel's page cache then reads page by page, and
    the pages before the bad one arrive."""

    def __init__(self, mnt, name, data, guard=20.0, hold=True, eio_from=None):
        self.name, self.data, self.guard, self.eio_from = name.encode(), data, guard, eio_from
        self.held = threading.Event()
        self._release = threading.Event()
        self.answered = False  # the first READ was answered
        self._first = hold
        self.eio_reads = 0  # READs answered EIO
        self.fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        opts = "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other" % self.fd
        if _libc.mount(b"xmitheld", mnt.encode(), b"fuse", ctypes.c_ulong(6), opts.encode()) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "mount fuse: " + os.strerror(e))
        self.mnt = mnt
        threading.Thread(target=self._serve, daemon=True).start()
        dev = os.stat(mnt).st_dev
        self.conn = (os.major(dev) << 20) | os.minor(dev)  # the kernel's dev_t: fusectl's name

    def release(self):
        self._release.set()

    def released(self):
        return self._release.is_set()

    def umount(self):
        self._release.set()
        _libc.umount2(self.mnt.encode(), 2)  # MNT_DETACH

    def abort(self):
        """Ends the connection (fusectl's abort, mounted on a directory of its own): every request
        fails, also one the server thread took and has not answered. A process that exits while one
        of its threads waits for an answer from a server thread of its own never finishes without
        it (the kernel waits out a request userspace has read)."""
        ctl = tempfile.mkdtemp()
        try:
            if _libc.mount(b"fusectl", ctl.encode(), b"fusectl", ctypes.c_ulong(0), None) == 0:
                try:
                    with open(os.path.join(ctl, str(self.conn), "abort"), "w") as f:
                        f.write("1")
                finally:
                    _libc.umount2(ctl.encode(), 2)
        finally:
            os.rmdir(ctl)

    def _attr(self, node):
        if node == FILE_NODE:
            return ATTR.pack(node, len(self.data), (len(self.data) + 511) // 512, 0, 0, 0, 0, 0, 0,
                             stat.S_IFREG | 0o444, 1, 0, 0, 0, 4096, 0)
        return ATTR.pack(node, 0, 0, 0, 0, 0, 0, 0, 0, stat.S_IFDIR | 0o755, 2, 0, 0, 0, 4096, 0)

    def _reply(self, unique, err=0, body=b""):
        os.write(self.fd, OUT_HEADER.pack(OUT_HEADER.size + len(body), -err, unique) + body)

    def _serve(self):
        while True:
            try:
                req = os.read(self.fd, 1 << 18)
            except OSError as e:
                if e.errno in (errno.EINTR, errno.ENOENT):  # ENOENT: an interrupted request
                    continue
                return  # ENODEV: unmounted
            _, op, unique, node = IN_HEADER.unpack_from(req)[:4]
            arg = req[IN_HEADER.size:]
            if op in (FUSE_FORGET, FUSE_BATCH_FORGET, FUSE_INTERRUPT):
                continue  # no answer
            if op == FUSE_INIT:
                major, minor, readahead, flags = struct.unpack_from("<IIII", arg)
                self._reply(unique, 0, struct.pack("<IIIIHHIIHHII6I", 7, 31, 131072, 0, 16, 12, 131072, 1, 32, 0, 0,
                                                   0, 0, 0, 0, 0, 0, 0))
            elif op == FUSE_LOOKUP:
                if node == 1 and arg.rstrip(b"\0") == self.name:
                    self._reply(unique, 0, struct.pack("<QQQQII", FILE_NODE, 0, 3600, 3600, 0, 0) + self._attr(FILE_NODE))
                else:
                    self._reply(unique, errno.ENOENT)
            elif op == FUSE_GETATTR:
                self._reply(unique, 0, struct.pack("<QII", 3600, 0, 0) + self._attr(node))
            elif op == FUSE_OPEN:
                self._reply(unique, 0, struct.pack("<QIi", 0, 0, 0))
            elif op == FUSE_READ:
                _, off, size = struct.unpack_from("<QQI", arg)
                if self._first:
                    self._first = False
                    self.held.set()
                    self._release.wait(self.guard)
                    self.answered = True  # before the answer that lets the reader go on
                if self.eio_from is not None and off + size > self.eio_from and off < len(self.data):
                    self.eio_reads += 1
                    self._reply(unique, errno.EIO)
                else:
                    self._reply(unique, 0, self.data[off:off + size])
            elif op in (FUSE_RELEASE, FUSE_FLUSH, FUSE_DESTROY):
                self._reply(unique)
            else:
                self._reply(unique, errno.ENOSYS)
