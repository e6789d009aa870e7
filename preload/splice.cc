// preload/splice.cc — sendfile() and splice() through an offloaded socket (see splice.h).
//
// Never lose a byte: the kernel consumes from the pipe (or advances the file offset by) exactly
// what sock_sendmsg() took. Here the socket pulls the bytes itself (stack/ipv4/iov_iter.h's
// PullSource), straight into its payload pages and only once it holds the room for them, so what
// it does not take is never read: it stays in the pipe, or the offset is not advanced past it.
// That is also sendfile's one copy (the file's bytes pread into the skb's page), where reading
// ahead into a buffer would need a second copy and a way to give back what did not go.
// The other way (socket -> pipe) the bytes are peeked, written to the pipe without blocking, and
// only what the pipe took is consumed, all under the stack's lock (TcpSocket::splice_read()).
//
// No kernel call here blocks while the stack's lock is held (it would stop every other thread's
// socket calls and the progress thread's ACKs and timers): a file is read with RWF_NOWAIT under the
// lock and, when its pages are not cached, read ahead into a buffer of ours with the lock released
// (FileSource, file_source.h); pipes are read and written with RWF_NOWAIT or through a non-blocking
// second open (NowaitPipe), and waited for with poll() outside the lock.
#include "preload/splice.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <new>

#include "preload/engine.h"
#include "preload/file_source.h"
#include "preload/libc.h"
#include "preload/nowait_pipe.h"
#include "stack/ipv4/iov_iter.h"
#include "stack/sock/msghdr.h"  // kMaxRwCount
#include "stack/udp/udp_sock.h"  // kPassThrough

namespace xmit {

namespace {

constexpr unsigned kSpliceFAll = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT;

bool is_pipe(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);  // kernel: get_pipe_info(file, true): FIFOs too
}

// A wait the kernel makes interruptible (-ERESTARTSYS): restarted when the handler has SA_RESTART.
bool interrupted_for_good() { return !engine_shadow()->signal_restarts(); }
bool signal_restarts() { return engine_shadow()->signal_restarts(); }

// --- sendfile ------------------------------------------------------------------------------------

// kernel: PIPE_DEF_BUFFERS, the slots of splice_direct_to_actor()'s pipe, and splice_to_socket()'s
// bvec[16]: a round of either is at most 16 pipe buffers.
constexpr size_t kRoundBufs = 16;

size_t page_size() { return static_cast<size_t>(::sysconf(_SC_PAGESIZE)); }

// A socket that takes no pulled bytes (UDP). kernel: splice_direct_to_actor() reads the file in
// rounds of 16 pipe buffers (do_splice_read(): filemap_splice_read() one per page, the first from
// the offset to its page's end; O_DIRECT's copy_splice_read() 16 whole pages) and
// splice_to_socket() sends each round as one sock_sendmsg(), SPLICE_F_MORE (MSG_MORE) while it was
// short of the count left: so sendfile() into a UDP socket sends one datagram of the count (short
// at the file's end; nothing at it), the rounds appended to the cork. A round the datagram cannot
// take ends the call with the rounds before it (their count; EMSGSIZE if none): at a page-aligned
// offset the first round, 65536 bytes, is past a datagram, at an unaligned one the first round is
// shorter and corked and the next overflows (udp_sendmsg(): of at most 65535 bytes it reaches
// ip_append_data(), whose error drops the cork; of more, the cork stays and leaves with the next
// send). Here each round is pread (outside the stack's lock) into a buffer of one round and sent
// as the kernel's. The file position counts exactly what was sent. A read that fails after part of
// a round ends it short (sent with MSG_MORE); the next round's read fails and the call returns the
// count, the datagram left corked; a read of 0 (the file's end) after some rounds pushes it
// (splice_eof() -> udp_splice_eof(): here a zero-length send without MSG_MORE, which pushes the
// cork unless UDP_CORK holds it, as udp_splice_eof() does).
ssize_t sendfile_by_chunks(Socket* s, int out_fd, int in_fd, off64_t* offset, size_t count, bool direct) {
  const off64_t start = offset != nullptr ? *offset : ::lseek64(in_fd, 0, SEEK_CUR);
  if (start < 0) return -errno;
  const size_t page = page_size();
  std::unique_ptr<char[]> mem;
  size_t cap = 0;
  char* const buf = page_aligned(&mem, &cap, kRoundBufs * page);
  if (buf == nullptr) return -ENOMEM;
  size_t bytes = 0;
  ssize_t ret = 0;
  while (bytes < count) {
    const off64_t pos = start + static_cast<off64_t>(bytes);
    const size_t left = count - bytes;
    const size_t want = std::min(left, kRoundBufs * page - (direct ? 0 : static_cast<size_t>(pos) % page));
    size_t got = 0;
    int err = 0;
    while (got < want) {
      ssize_t n = ::pread64(in_fd, buf + got, want - got, pos + static_cast<off64_t>(got));
      if (n < 0 && errno == EINTR && !interrupted_for_good()) continue;
      if (n < 0) err = -errno;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    if (got == 0) {  // kernel: read_failure
      if (err == 0 && bytes > 0) (void)s->sendto(buf, 0, 0, nullptr, 0);  // actor_eof()
      ret = err;
      break;
    }
    ssize_t w = s->sendto(buf, got, got < left ? MSG_MORE : 0, nullptr, 0);
    if (w == kPassThrough && bytes == 0) {  // the socket is the kernel's now
      ssize_t k = libc().sendfile64(out_fd, in_fd, offset, count);
      return k < 0 ? -errno : k;
    }
    if (w <= 0) {
      ret = w;
      break;
    }
    bytes += static_cast<size_t>(w);
  }
  if (bytes > 0) {
    if (offset != nullptr) {
      *offset = start + static_cast<off64_t>(bytes);
    } else {
      (void)::lseek64(in_fd, start + static_cast<off64_t>(bytes), SEEK_SET);
    }
  }
  return bytes > 0 ? static_cast<ssize_t>(bytes) : ret;
}

}  // namespace

// kernel: do_sendfile() -> do_splice_direct() -> splice_direct_to_actor() -> splice_to_socket().
// Every argument check (EBADF, ESPIPE for an offset on a file without pread, EINVAL for an in_fd
// that is not a regular file or block device, a negative offset, O_APPEND, EOVERFLOW at or past
// the size limit) is the kernel's own: a count-0 sendfile() to the shadow socket makes them all
// and moves nothing. Then count is clamped to MAX_RW_COUNT and the socket pulls the file's bytes
// from the offset as it queues them; *offset, or else in_fd's position, advances by exactly the
// count sent. A read error with nothing sent is the result; at the file's end the count is short.
// A non-blocking socket returns what fitted (EAGAIN if nothing: the kernel's MSG_DONTWAIT).
// No read waits under the stack's lock (FileSource): a file outside the page cache is read with
// the lock released, as the kernel reads it under no socket lock.
ssize_t sendfile_to_socket(Socket* s, int out_fd, int in_fd, off64_t* offset, size_t count) noexcept {
  if (libc().sendfile64(out_fd, in_fd, offset, 0) < 0) return -errno;
  if (count == 0) return 0;
  if (count > kMaxRwCount) count = kMaxRwCount;
  const off64_t start = offset != nullptr ? *offset : ::lseek64(in_fd, 0, SEEK_CUR);
  if (start < 0) return -errno;
  FileSource file{.fd = in_fd, .pos = start, .restarts = signal_restarts};
  const int fl = libc().fcntl(in_fd, F_GETFL);
  if (fl >= 0 && (fl & O_DIRECT)) {  // kernel: do_splice_read() -> copy_splice_read() for IOCB_DIRECT
    file.direct = true;
    file.nowait = false;
    file.end = start + static_cast<off64_t>(count);
  }
  PullSource src{.pull = file_pull, .wait = file_wait, .ctx = &file};
  ssize_t w = s->sendmsg_pull(&src, count, 0);
  if (w == -EOPNOTSUPP) return sendfile_by_chunks(s, out_fd, in_fd, offset, count, file.direct);
  if (w == kPassThrough) {  // the socket is the kernel's now
    ssize_t k = libc().sendfile64(out_fd, in_fd, offset, count);
    return k < 0 ? -errno : k;
  }
  if (w > 0) {
    if (offset != nullptr) {
      *offset = start + w;
    } else {
      (void)::lseek64(in_fd, start + w, SEEK_SET);
    }
  }
  return w;
}

// --- splice --------------------------------------------------------------------------------------

namespace {

struct PipeSource {
  int fd;
  bool read_only;  // O_RDONLY: vmsplice() reads from it (an O_RDWR FIFO would be written to)
  NowaitPipe* rw;  // the O_RDWR pipe's reads
};

// Reads from the pipe without ever blocking, whatever the pipe's O_NONBLOCK: vmsplice() on a
// pipe's read-only side copies to user memory (kernel: vmsplice_to_user()) and SPLICE_F_NONBLOCK
// makes an empty pipe -EAGAIN; an O_RDWR pipe (vmsplice() would write to it) through NowaitPipe.
// The socket asks only for bytes FIONREAD said were there; a reader that took them meanwhile makes
// the pull short (the send ends there), never a sleep under the stack's lock.
ssize_t pipe_pull(void* ctx, void* to, size_t len) {
  const auto* p = static_cast<PipeSource*>(ctx);
  size_t done = 0;
  while (done < len) {
    iovec iov{static_cast<char*>(to) + done, len - done};
    ssize_t n;
    if (p->read_only) {
      n = ::vmsplice(p->fd, &iov, 1, SPLICE_F_NONBLOCK);
      if (n < 0) n = errno == EINTR ? -EINTR : -errno;
    } else {
      n = p->rw->io(iov.iov_base, iov.iov_len);
    }
    if (n == -EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

// A pipe of our own (non-blocking, close-on-exec), for tee() to copy into; closed at the scope's end.
struct ScratchPipe {
  int fd[2] = {-1, -1};
  ScratchPipe() { (void)::pipe2(fd, O_NONBLOCK | O_CLOEXEC); }
  ~ScratchPipe() {
    if (fd[0] >= 0) libc().close(fd[0]);
    if (fd[1] >= 0) libc().close(fd[1]);
  }
  ScratchPipe(const ScratchPipe&) = delete;
  ScratchPipe& operator=(const ScratchPipe&) = delete;
  bool ok() const { return fd[0] >= 0; }
};

// Whether an empty pipe has a writer: poll() cannot say for a FIFO that never had one (kernel:
// pipe_poll() reports EPOLLHUP only once a writer has come since the open), so ask tee(), which
// moves nothing: on an empty pipe it returns 0 when there is no writer and -EAGAIN when there is
// one (kernel: link_ipipe_prep()). 1: a writer (or bytes arrived meanwhile), 0: none. When the
// question cannot be asked (no fd left for the scratch pipe, a signal, tee() refused), 1: the
// caller then polls as before, and never returns an errno the kernel's splice() would not.
int pipe_has_writer(int fd) {
  ScratchPipe scratch;
  return scratch.ok() && ::tee(fd, scratch.fd[1], 1, SPLICE_F_NONBLOCK) == 0 ? 0 : 1;
}

// 1 when the pipe holds bytes (*avail), 0 when it is empty with no writer left, -errno:
// -EAGAIN when empty and non-blocking, -EINTR on a signal the caller does not restart after.
// kernel: splice_to_socket()'s wait: an empty pipe without writers is the end (0), also for a
// FIFO no writer ever opened, before SPLICE_F_NONBLOCK's -EAGAIN.
int pipe_wait_readable(int fd, bool nonblock, int* avail) {
  for (;;) {
    if (libc().ioctl(fd, FIONREAD, avail) < 0) return -errno;
    if (*avail > 0) return 1;
    if (pipe_has_writer(fd) == 0) return 0;
    pollfd p{fd, POLLIN, 0};
    int n = libc().poll(&p, 1, nonblock ? 0 : -1);
    if (n < 0) {
      if (errno == EINTR && !interrupted_for_good()) continue;
      return -errno;
    }
    if (n == 0) return -EAGAIN;
    if ((p.revents & POLLHUP) && !(p.revents & POLLIN)) return 0;  // kernel: !pipe->writers
  }
}

// Reads exactly len bytes from a non-blocking pipe of ours that holds them; false if it did not.
bool read_all(int fd, char* to, size_t len) {
  for (size_t got = 0; got < len;) {
    ssize_t k = libc().read(fd, to + got, len - got);
    if (k <= 0) return false;
    got += static_cast<size_t>(k);
  }
  return true;
}

// kernel: splice_to_socket() into a UDP socket: one sock_sendmsg() per round of up to 16 pipe
// buffers (bvec[16]), MSG_MORE while more of len remains and the round stopped at its 16th buffer
// (pipe_occupancy(head, tail) with tail still on that buffer: also when the pipe held no more), or
// for SPLICE_F_MORE; the next round after the pipe is empty is the end. So one splice() sends one
// datagram of what the pipe holds (up to len), the rounds appended to the cork, and a round the
// datagram cannot take ends the call with the rounds before it (their count, or the error if
// none): udp_sendmsg() refuses a round of more than 65535 bytes before it looks at the cork, which
// stays for the next send; a smaller one fails in ip_append_data(), whose error drops the cork.
// A round is found as the kernel forms it: tee() links pipe buffers, not bytes, and stops when its
// destination is full (link_pipe()), so into a pipe of ours of 16 slots it copies exactly the
// round; a one-byte write() then says whether all 16 slots were taken (tee()'s copies cannot be
// merged into). Its bytes are read from there and sent (Socket::sendto(): the datagram's checks
// and errnos, EMSGSIZE, EDESTADDRREQ unconnected, EAGAIN on a full send buffer), and only then
// read off `fd_in`, as the kernel consumes a round the socket took. No call waits under the
// stack's lock (sendto() takes it, the pipe calls are outside it). 0: the pipe was empty.
ssize_t splice_pipe_to_datagram(Socket* s, int fd_in, size_t len, int msg_flags) {
  ScratchPipe round;
  if (!round.ok()) return -errno;
  (void)libc().fcntl(round.fd[1], F_SETPIPE_SZ, static_cast<int>(kRoundBufs * page_size()));
  NowaitPipe rd(fd_in, /*write=*/false);
  size_t spliced = 0;
  ssize_t r = 0;
  while (len > 0) {
    const ssize_t t = ::tee(fd_in, round.fd[1], len, SPLICE_F_NONBLOCK);
    if (t <= 0) {  // empty (emptied by another reader, before the first round): the end
      r = t < 0 && errno != EAGAIN ? -errno : 0;
      break;
    }
    const size_t k = static_cast<size_t>(t);
    const bool all_slots = libc().write(round.fd[1], "", 1) < 0;
    std::unique_ptr<char[]> buf(new (std::nothrow) char[k + 1]);
    if (buf == nullptr) return spliced > 0 ? static_cast<ssize_t>(spliced) : -ENOMEM;
    if (!read_all(round.fd[0], buf.get(), all_slots ? k : k + 1)) {
      return spliced > 0 ? static_cast<ssize_t>(spliced) : -EIO;
    }
    const int fl = msg_flags | (len > k && all_slots ? MSG_MORE : 0);
    r = s->sendto(buf.get(), k, fl, nullptr, 0);
    if (r == kPassThrough && spliced > 0) r = 0;
    if (r <= 0) break;
    for (size_t left = static_cast<size_t>(r); left > 0;) {  // consume what went
      ssize_t n = rd.io(buf.get(), left);
      if (n <= 0) break;
      left -= static_cast<size_t>(n);
    }
    spliced += static_cast<size_t>(r);
    len -= static_cast<size_t>(r);
  }
  return spliced > 0 ? static_cast<ssize_t>(spliced) : r;
}

// kernel: splice_to_socket(), fs/splice.c — wait for the pipe (unless something went already),
// send what it holds (up to len) with MSG_MORE for SPLICE_F_MORE and MSG_DONTWAIT for a
// non-blocking socket, consume what the socket took, again until len is done. The kernel sends up
// to 16 pipe buffers a round (and MSG_MORE when more follow); one round here takes all the pipe
// holds: the same bytes, other segment boundaries.
ssize_t splice_pipe_to_socket(Socket* s, int fd_in, int fd_out, size_t len, unsigned flags, bool sock_nonblock,
                              bool pipe_read_only) {
  const bool pipe_nonblock = (flags & SPLICE_F_NONBLOCK) != 0;
  int msg_flags = (flags & SPLICE_F_MORE) ? MSG_MORE : 0;
  if (sock_nonblock) msg_flags |= MSG_DONTWAIT;
  size_t spliced = 0;
  ssize_t r = 0;
  NowaitPipe rw(fd_in, /*write=*/false);
  while (len > 0) {
    int avail = 0;
    int w = spliced > 0 ? (libc().ioctl(fd_in, FIONREAD, &avail) < 0 ? -errno : avail > 0)
                        : pipe_wait_readable(fd_in, pipe_nonblock, &avail);
    if (w <= 0) {
      r = w;
      break;
    }
    PipeSource pipe{fd_in, pipe_read_only, &rw};
    PullSource src{.pull = pipe_pull, .ctx = &pipe};
    r = s->sendmsg_pull(&src, std::min(len, static_cast<size_t>(avail)), msg_flags);
    if (r == -EOPNOTSUPP && spliced == 0) {  // a datagram socket: all its rounds at once
      r = splice_pipe_to_datagram(s, fd_in, len, msg_flags);
      if (r != 0 && r != kPassThrough) return r;
    }
    if (r == kPassThrough || r == -EOPNOTSUPP) {
      if (spliced > 0) break;
      // The socket is the kernel's: its call.
      ssize_t k = libc().splice(fd_in, nullptr, fd_out, nullptr, len, flags);
      return k < 0 ? -errno : k;
    }
    if (r == 0 && spliced == 0) {
      // The pull came back empty: another reader took the bytes FIONREAD counted. The kernel
      // (which holds the pipe's lock) would have found it empty and waited: so does this.
      if (libc().ioctl(fd_in, FIONREAD, &avail) == 0 && avail == 0) continue;
    }
    if (r <= 0) break;
    spliced += static_cast<size_t>(r);
    len -= static_cast<size_t>(r);
  }
  return spliced > 0 ? static_cast<ssize_t>(spliced) : r;
}

ssize_t pipe_push(void* ctx, const void* from, size_t len) {
  return static_cast<NowaitPipe*>(ctx)->io(const_cast<void*>(from), len);
}

// kernel: splice_file_to_pipe() (wait_for_space(): EPIPE and SIGPIPE without a reader, EAGAIN
// when full and non-blocking, else a wait for a free slot) -> tcp_splice_read(): what the receive
// queue holds, waiting (the socket's O_NONBLOCK and SO_RCVTIMEO) only while nothing was moved;
// 0 at the end of the stream, the socket's error or ENOTCONN as recv() gives them. The socket
// (TcpSocket::splice_read()) peeks, writes to the pipe without blocking a slot (PIPE_BUF) at a time
// and consumes what the pipe took in one hold of the stack's lock. A pipe another writer filled
// between the wait and the write (-EAGAIN) is waited for again, unless non-blocking.
ssize_t splice_socket_to_pipe(Socket* s, int fd_in, int fd_out, size_t len, unsigned flags) {
  const bool pipe_nonblock = (flags & SPLICE_F_NONBLOCK) != 0;
  NowaitPipe out(fd_out, /*write=*/true);
  PushSink sink{.push = pipe_push, .ctx = &out};
  for (;;) {
    for (;;) {  // wait_for_space()
      pollfd p{fd_out, POLLOUT, 0};
      int n = libc().poll(&p, 1, pipe_nonblock ? 0 : -1);
      if (n < 0) {
        if (errno == EINTR && !interrupted_for_good()) continue;
        return -errno;
      }
      if (p.revents & POLLERR) {  // kernel: !pipe->readers
        ::raise(SIGPIPE);
        return -EPIPE;
      }
      if (n == 0) return -EAGAIN;
      if (p.revents & POLLOUT) break;
    }
    // The pipe write runs under the stack's lock; a reader gone since the wait makes it EPIPE with
    // a SIGPIPE, whose handler must not run inside the stack: held back until the lock is let go.
    sigset_t pipe_sig, old_mask;
    sigemptyset(&pipe_sig);
    sigaddset(&pipe_sig, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_sig, &old_mask);
    ssize_t r = s->splice_read(&sink, len, 0);
    pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    if (r == kPassThrough || r == -EOPNOTSUPP) {
      ssize_t k = libc().splice(fd_in, nullptr, fd_out, nullptr, len, flags);
      return k < 0 ? -errno : k;
    }
    if (r == -EAGAIN && !pipe_nonblock) {
      // Either the socket had nothing (non-blocking socket: its EAGAIN) or the pipe filled up.
      pollfd p{fd_out, POLLOUT, 0};
      if (libc().poll(&p, 1, 0) == 1 && (p.revents & POLLOUT)) return r;
      continue;
    }
    // (-EPIPE: the reader left between the wait and the write; the write raised SIGPIPE itself,
    // delivered just above.)
    return r;
  }
}

}  // namespace

// kernel: sys_splice() -> __do_splice() -> do_splice(), fs/splice.c: the checks in their order,
// then the socket end's data path. A pair the kernel moves nothing between (no pipe on the other
// side, both sockets) goes to the kernel, whose answer (EINVAL) does not depend on the socket.
ssize_t splice_socket(Socket* in, int fd_in, loff_t* off_in, Socket* out, int fd_out, loff_t* off_out, size_t len,
                      unsigned int flags) noexcept {
  if (len == 0) return 0;
  if (flags & ~kSpliceFAll) return -EINVAL;
  const int fl_in = libc().fcntl(fd_in, F_GETFL);
  const int fl_out = libc().fcntl(fd_out, F_GETFL);
  if (fl_in < 0 || fl_out < 0) return -EBADF;
  const bool ipipe = in == nullptr && is_pipe(fd_in);
  const bool opipe = out == nullptr && is_pipe(fd_out);
  if (!(out != nullptr && ipipe) && !(in != nullptr && opipe)) {
    ssize_t k = libc().splice(fd_in, off_in, fd_out, off_out, len, flags);
    return k < 0 ? -errno : k;
  }
  // __do_splice(): an offset on the pipe's side.
  if ((ipipe && off_in != nullptr) || (opipe && off_out != nullptr)) return -ESPIPE;
  // do_splice(): FMODE_READ on in, FMODE_WRITE on out.
  if ((fl_in & O_ACCMODE) == O_WRONLY || (fl_out & O_ACCMODE) == O_RDONLY) return -EBADF;
  if (ipipe) {
    if (off_out != nullptr) return -EINVAL;   // a socket has no FMODE_PWRITE
    if (fl_out & O_APPEND) return -EINVAL;
    if (static_cast<ssize_t>(len) < 0) return -EINVAL;  // rw_verify_area()
    if (fl_in & O_NONBLOCK) flags |= SPLICE_F_NONBLOCK;
    return splice_pipe_to_socket(out, fd_in, fd_out, len, flags, (fl_out & O_NONBLOCK) != 0,
                                 (fl_in & O_ACCMODE) == O_RDONLY);
  }
  if (off_in != nullptr) return -EINVAL;  // a socket has no FMODE_PREAD
  int type = 0;
  socklen_t tl = sizeof type;
  if (libc().getsockopt(fd_in, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM) {
    // Not done for UDP: a datagram would have to go whole into the pipe or not at all (the
    // kernel's copy_splice_read() sizes its read to the pipe's free slots, which a writer here
    // cannot see). The kernel socket's splice, as before.
    ssize_t k = libc().splice(fd_in, off_in, fd_out, off_out, len, flags);
    return k < 0 ? -errno : k;
  }
  if (fl_out & O_NONBLOCK) flags |= SPLICE_F_NONBLOCK;
  if (len > kMaxRwCount) len = kMaxRwCount;
  return splice_socket_to_pipe(in, fd_in, fd_out, len, flags);
}

}  // namespace xmit
