// preload/nowait_pipe.h — one end of a pipe read or written without ever blocking, for splice()'s
// reads and writes made under the stack's lock (preload/splice.cc).
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdio>

#include "preload/libc.h"

namespace xmit {

// One end of a pipe read or written without ever blocking, whatever its O_NONBLOCK (which the
// open file description shares with other threads and processes, so it is left alone): with
// preadv2()/pwritev2(RWF_NOWAIT), which pipe(2)'s pipes take; a FIFO (or a pipe reopened through
// /proc) does not (EOPNOTSUPP), and is then read or written through a second, non-blocking open of
// the same pipe (/proc/self/fd/N), made once per call — this process already holds that end, so
// the extra reader or writer changes nothing another process could see. -EAGAIN when it would block;
// a write with no reader left is -EPIPE with SIGPIPE raised in this thread, as pipe_write() does.
class NowaitPipe {
 public:
  NowaitPipe(int fd, bool write) : fd_(fd), write_(write) {}
  ~NowaitPipe() {
    if (alt_ >= 0) libc().close(alt_);
  }
  NowaitPipe(const NowaitPipe&) = delete;
  NowaitPipe& operator=(const NowaitPipe&) = delete;

  ssize_t io(void* buf, size_t len) {
    iovec iov{buf, len};
    for (;;) {
      ssize_t n;
      if (alt_ < 0) {
        n = write_ ? ::pwritev2(fd_, &iov, 1, -1, RWF_NOWAIT) : ::preadv2(fd_, &iov, 1, -1, RWF_NOWAIT);
        if (n < 0 && errno == EOPNOTSUPP) {
          if (int err = reopen(); err != 0) return err;
          continue;
        }
      } else {
        n = write_ ? libc().write(alt_, buf, len) : libc().read(alt_, buf, len);
      }
      if (n < 0 && errno == EINTR) continue;
      return n < 0 ? -errno : n;
    }
  }

 private:
  int reopen() {
    char path[40];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd_);
    alt_ = ::open(path, (write_ ? O_WRONLY : O_RDONLY) | O_NONBLOCK | O_CLOEXEC);
    if (alt_ >= 0) return 0;
    if (write_ && errno == ENXIO) {
      // A FIFO's write side with no reader left (the last one went after the caller's wait for
      // space). kernel: pipe_write(), fs/pipe.c — -EPIPE and send_sig(SIGPIPE, current, 0): to
      // this thread, pending while it blocks the signal (splice.cc does, under the stack's lock).
      ::raise(SIGPIPE);
      return -EPIPE;
    }
    return -errno;
  }
  int fd_;
  bool write_;
  int alt_ = -1;
};

}  // namespace xmit
