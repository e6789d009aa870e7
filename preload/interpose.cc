// preload/interpose.cc — the exported socket API. Each call looks its fd up once: a passthrough
// fd goes straight to glibc (errno untouched, nothing allocated or logged); an offloaded fd goes to
// its Socket (stack/sock/socket.h), and a -errno result becomes errno here and nowhere else.
// glibc redirects fcntl to fcntl64 under _FILE_OFFSET_BITS=64; this file defines both by name.
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdarg>
#include <mutex>
#include <new>
#include <climits>

#include "preload/engine.h"
#include "preload/epoll_table.h"
#include "preload/fd_table.h"
#include "preload/libc.h"
#include "preload/log.h"
#include "preload/own_fds.h"
#include "preload/runtime.h"
#include "preload/splice.h"
#include "preload/workers.h"
#include "stack/stream/tcp_socket.h"

#define XMIT_EXPORT extern "C" __attribute__((visibility("default")))

using xmit::g_fds;
using xmit::libc;
using xmit::Socket;

namespace {

// The one place where the stack's -errno becomes errno.
template <typename T>
T ret(T r) noexcept {
  if (r < 0) {
    errno = static_cast<int>(-r);
    return -1;
  }
  return r;
}

// Returns the stack's result (-errno or xmit::kPassThrough); callers apply ret().
ssize_t sock_recvmsg(Socket* s, void* buf, size_t len, int flags, sockaddr* from,
                     socklen_t* fromlen) noexcept {
  iovec iov{buf, len};
  msghdr msg{};
  msg.msg_name = from;
  msg.msg_namelen = fromlen ? *fromlen : 0;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ssize_t r = s->recvmsg(&msg, flags);
  if (r >= 0 && fromlen != nullptr) *fromlen = msg.msg_namelen;
  return r;
}

// `fd` no longer names `s` (closed, or dup2'ed over): its reference goes; a socket other fds still
// name is told which one to use from now on.
void release_fd(Socket* s, int fd) noexcept {
  if (s->shared()) {
    int other = g_fds.find_other(s, fd);
    if (other >= 0) s->fd_moved(fd, other);
  }
  s->put();
}

// After the kernel gave `newfd` the same open file as `oldfd` (dup, dup2, dup3, F_DUPFD): newfd
// names the same Socket, and whatever newfd named before is released.
void dup_socket(int oldfd, int newfd) noexcept {
  Socket* s = g_fds.peek(oldfd);
  Socket* old = nullptr;
  if (s != nullptr) {
    s->get();
    if (!g_fds.install(newfd, s, &old)) {
      s->put();
      xmit::logf(xmit::LogLevel::kWarn, "fd %d: beyond xmit's fd table; the dup passes to the kernel", newfd);
    }
  } else {
    old = g_fds.remove(newfd);
  }
  if (old != nullptr) release_fd(old, newfd);
}

void forget_fd(int fd) noexcept {
  xmit::epoll_fd_closing(fd);
  xmit::workers_fd_closing(fd);
  if (g_fds.peek(fd) == nullptr) [[likely]] return;  // passthrough fds never write the table
  if (Socket* s = g_fds.remove(fd)) release_fd(s, fd);
}

// The stack handed the socket back to the kernel (xmit::kPassThrough): the call is made again on
// the kernel socket, and every fd naming it passes through from now on (FdTable::peek()). The
// object stays in the table until its fds are closed, so a thread still inside it (a blocked recv)
// is not left with freed memory.
bool handed_back(int, long r) noexcept { return r == xmit::kPassThrough; }

// XMIT_BUSY_POLL stands for net.core.busy_read: an offloaded socket's kernel socket starts with it
// (kernel: sock_init_data()), as the stack's side does (UdpStackOptions::busy_read), so a socket
// handed back to the kernel, and a getsockopt() the kernel socket answers, keep it.
void busy_read_default(int fd) noexcept {
  if (const int us = xmit::runtime()->config.busy_poll; us >= 0) {
    (void)libc().setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &us, sizeof us);
  }
}

}  // namespace

XMIT_EXPORT int socket(int domain, int type, int protocol) noexcept {
  int fd = libc().socket(domain, type, protocol);
  if (fd < 0) return fd;
  int saved = errno;
  const char* why = xmit::why_not_offloaded(domain, type, protocol);
  Socket* s = nullptr;
  if (why == nullptr && (type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) == SOCK_STREAM) {
    // An offloaded TCP socket: the kernel socket just made is its shadow.
    if (xmit::TcpStack* tcp = xmit::engine_tcp(*xmit::runtime(), &why)) {
      busy_read_default(fd);
      std::lock_guard<xmit::StackMutex> g(tcp->mu());
      xmit::TcpConn* c = tcp->conn_alloc();  // wakes the progress thread if it is the first (wake_progress())
      if (c != nullptr) s = new (std::nothrow) xmit::TcpSocket(tcp, xmit::engine_shadow(), fd, (type & SOCK_NONBLOCK) != 0, c);
      if (s == nullptr) {
        if (c != nullptr) tcp->conn_free(c);
        why = "out of memory";
      }
    }
  } else if (why == nullptr) {
    // An offloaded UDP socket: the kernel socket just made is its shadow.
    if (xmit::UdpStack* udp = xmit::engine_udp(*xmit::runtime(), &why)) {
      busy_read_default(fd);
      s = new (std::nothrow) xmit::UdpSock(udp, xmit::engine_shadow(), fd, (type & SOCK_NONBLOCK) != 0);
      if (s == nullptr) why = "out of memory";
    }
  }
  if (s != nullptr) {
    Socket* old = nullptr;
    if (!g_fds.install(fd, s, &old)) {
      s->put();
      why = "fd beyond xmit's fd table";
    } else {
      if (old != nullptr) old->put();
      errno = saved;
      return fd;
    }
  }
  if (why != nullptr && xmit::log_enabled(xmit::LogLevel::kDebug)) {
    xmit::logf(xmit::LogLevel::kDebug, "fd %d: socket(%d, %#x, %d) passes through: %s", fd,
               domain, type, protocol, why);
  }
  errno = saved;
  return fd;
}

XMIT_EXPORT int bind(int fd, const sockaddr* addr, socklen_t len) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().bind(fd, addr, len);
  int r = s->bind(addr, len);
  if (handed_back(fd, r)) return libc().bind(fd, addr, len);
  return ret(r);
}

XMIT_EXPORT int connect(int fd, const sockaddr* addr, socklen_t len) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().connect(fd, addr, len);
  int fl = libc().fcntl(fd, F_GETFL);
  int r = s->connect(addr, len, fl >= 0 && (fl & O_NONBLOCK));
  if (handed_back(fd, r)) return libc().connect(fd, addr, len);
  return ret(r);
}

XMIT_EXPORT int listen(int fd, int backlog) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] {
    int r = libc().listen(fd, backlog);
    if (r == 0 && xmit::runtime() != nullptr && xmit::runtime()->config.workers > 0) [[unlikely]] {
      int saved = errno;
      xmit::workers_note_listen(fd, backlog);
      errno = saved;
    }
    return r;
  }
  int r = s->listen(backlog);
  if (handed_back(fd, r)) return libc().listen(fd, backlog);
  return ret(r);
}

XMIT_EXPORT int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) noexcept {
  xmit::workers_adopt_if_pending();
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().accept4(fd, addr, len, flags);
  if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) return ret(-EINVAL);
  Socket* child = nullptr;
  int r = s->accept(&child, addr, len, flags);
  if (handed_back(fd, r)) return libc().accept4(fd, addr, len, flags);
  if (r < 0) return ret(r);
  if (child == nullptr) return r;  // a connection the kernel socket accepted itself: its fd
  // The accepted socket's fd number: a kernel shadow socket that holds it.
  int nfd = libc().socket(AF_INET, SOCK_STREAM | flags, 0);
  Socket* old = nullptr;
  if (nfd < 0 || !g_fds.install(nfd, child, &old)) {
    int err = nfd < 0 ? errno : EMFILE;
    if (nfd >= 0) libc().close(nfd);
    child->put();
    return ret(-err);
  }
  if (old != nullptr) old->put();
  child->adopt_fd(nfd);
  return nfd;
}

XMIT_EXPORT int accept(int fd, sockaddr* addr, socklen_t* len) noexcept {
  xmit::workers_adopt_if_pending();
  if (g_fds.lookup(fd) == nullptr) [[likely]] return libc().accept(fd, addr, len);
  return accept4(fd, addr, len, 0);
}

XMIT_EXPORT int close(int fd) noexcept {
  if (xmit::g_own_fds.contains(fd)) [[unlikely]] {  // xmit's own: not open, as far as the program knows
    errno = EBADF;
    return -1;
  }
  forget_fd(fd);  // before the number can be reused by another thread's open()
  return libc().close(fd);
}

namespace {

// close_range() over [first, last] minus xmit's own fds (own_fds.h): one call per gap between them.
int close_range_around_own(unsigned first, unsigned last, int flags) noexcept {
  int own[xmit::OwnFds::kMax];
  int n = xmit::g_own_fds.sorted(own);
  unsigned lo = first;
  for (int i = 0; i < n; ++i) {
    auto o = static_cast<unsigned>(own[i]);
    if (o < lo || o > last) continue;
    if (o > lo) {
      if (int r = libc().close_range(lo, o - 1, flags); r != 0) return r;
    }
    lo = o + 1;
  }
  if (lo > last || lo < first) return 0;  // the range ended on an own fd (lo < first: wrapped)
  return libc().close_range(lo, last, flags);
}

}  // namespace

XMIT_EXPORT int close_range(unsigned first, unsigned last, int flags) noexcept {
  // Bad arguments go to the kernel whole, for its EINVAL.
  bool valid = first <= last && (flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC)) == 0;
  int r = valid ? close_range_around_own(first, last, flags) : libc().close_range(first, last, flags);
  if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC)) {
    unsigned end = last < static_cast<unsigned>(xmit::FdTable::kMaxFd) ? last : xmit::FdTable::kMaxFd - 1;
    for (unsigned fd = first; fd <= end && fd >= first; ++fd) forget_fd(static_cast<int>(fd));
  }
  return r;
}

XMIT_EXPORT void closefrom(int lowfd) noexcept {
  int own[xmit::OwnFds::kMax];
  int n = xmit::g_own_fds.sorted(own);
  int lo = lowfd < 0 ? 0 : lowfd;
  for (int i = 0; i < n; ++i) {
    if (own[i] < lo) continue;
    if (own[i] > lo) (void)libc().close_range(static_cast<unsigned>(lo), static_cast<unsigned>(own[i] - 1), 0);
    lo = own[i] + 1;
  }
  libc().closefrom(lo);
  for (int fd = lowfd < 0 ? 0 : lowfd; fd < xmit::FdTable::kMaxFd; ++fd) {
    forget_fd(fd);
  }
}

XMIT_EXPORT int shutdown(int fd, int how) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().shutdown(fd, how);
  return ret(s->shutdown(how));
}

XMIT_EXPORT ssize_t send(int fd, const void* buf, size_t len, int flags) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().send(fd, buf, len, flags);
  ssize_t r = s->sendto(buf, len, flags, nullptr, 0);
  if (handed_back(fd, r)) return libc().send(fd, buf, len, flags);
  return ret(r);
}

XMIT_EXPORT ssize_t sendto(int fd, const void* buf, size_t len, int flags, const sockaddr* to,
                           socklen_t tolen) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().sendto(fd, buf, len, flags, to, tolen);
  ssize_t r = s->sendto(buf, len, flags, to, tolen);
  if (handed_back(fd, r)) return libc().sendto(fd, buf, len, flags, to, tolen);
  return ret(r);
}

XMIT_EXPORT ssize_t sendmsg(int fd, const msghdr* msg, int flags) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().sendmsg(fd, msg, flags);
  ssize_t r = s->sendmsg(msg, flags);
  if (handed_back(fd, r)) return libc().sendmsg(fd, msg, flags);
  return ret(r);
}

// kernel: __sys_sendmmsg(): stops at the first error; returns the count if any datagram went.
XMIT_EXPORT int sendmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().sendmmsg(fd, vec, vlen, flags);
  if (vlen > UIO_MAXIOV) vlen = UIO_MAXIOV;
  unsigned int sent = 0;
  for (; sent < vlen; ++sent) {
    ssize_t r = s->sendmsg(&vec[sent].msg_hdr, flags);
    if (sent == 0 && handed_back(fd, r)) return libc().sendmmsg(fd, vec, vlen, flags);
    if (r == xmit::kPassThrough) return static_cast<int>(sent);  // the rest go through the kernel next call
    if (r < 0) return sent > 0 ? static_cast<int>(sent) : ret(static_cast<int>(r));
    vec[sent].msg_len = static_cast<unsigned int>(r);
  }
  return static_cast<int>(sent);
}

XMIT_EXPORT ssize_t write(int fd, const void* buf, size_t len) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().write(fd, buf, len);
  ssize_t r = s->sendto(buf, len, 0, nullptr, 0);
  if (handed_back(fd, r)) return libc().write(fd, buf, len);
  return ret(r);
}

XMIT_EXPORT ssize_t writev(int fd, const iovec* iov, int iovcnt) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().writev(fd, iov, iovcnt);
  if (iovcnt < 0 || iovcnt > UIO_MAXIOV) return ret(-EINVAL);
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = static_cast<size_t>(iovcnt);
  ssize_t r = s->sendmsg(&msg, 0);
  if (handed_back(fd, r)) return libc().writev(fd, iov, iovcnt);
  return ret(r);
}

XMIT_EXPORT ssize_t sendfile64(int out_fd, int in_fd, off64_t* offset, size_t count) noexcept {
  Socket* s = g_fds.lookup(out_fd);
  if (s == nullptr) [[likely]] return libc().sendfile64(out_fd, in_fd, offset, count);
  return ret(xmit::sendfile_to_socket(s, out_fd, in_fd, offset, count));
}

// off_t is off64_t on the 64-bit targets xmit builds for.
static_assert(sizeof(off_t) == sizeof(off64_t));
XMIT_EXPORT ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count) noexcept {
  Socket* s = g_fds.lookup(out_fd);
  if (s == nullptr) [[likely]] return libc().sendfile(out_fd, in_fd, offset, count);
  return ret(xmit::sendfile_to_socket(s, out_fd, in_fd, reinterpret_cast<off64_t*>(offset), count));
}

// splice() with an offloaded socket at either end (preload/splice.h). vmsplice() and tee() take
// pipes only: on a socket fd the kernel's answer is the same for the shadow.
XMIT_EXPORT ssize_t splice(int fd_in, loff_t* off_in, int fd_out, loff_t* off_out, size_t len,
                           unsigned int flags) noexcept {
  Socket* in = g_fds.lookup(fd_in);
  Socket* out = g_fds.lookup(fd_out);
  if (in == nullptr && out == nullptr) [[likely]] return libc().splice(fd_in, off_in, fd_out, off_out, len, flags);
  return ret(xmit::splice_socket(in, fd_in, off_in, out, fd_out, off_out, len, flags));
}

XMIT_EXPORT ssize_t recv(int fd, void* buf, size_t len, int flags) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().recv(fd, buf, len, flags);
  ssize_t r = sock_recvmsg(s, buf, len, flags, nullptr, nullptr);
  if (handed_back(fd, r)) return libc().recv(fd, buf, len, flags);
  return ret(r);
}

XMIT_EXPORT ssize_t recvfrom(int fd, void* buf, size_t len, int flags, sockaddr* from,
                             socklen_t* fromlen) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().recvfrom(fd, buf, len, flags, from, fromlen);
  ssize_t r = sock_recvmsg(s, buf, len, flags, from, fromlen);
  if (handed_back(fd, r)) return libc().recvfrom(fd, buf, len, flags, from, fromlen);
  return ret(r);
}

XMIT_EXPORT ssize_t recvmsg(int fd, msghdr* msg, int flags) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().recvmsg(fd, msg, flags);
  ssize_t r = s->recvmsg(msg, flags);
  if (handed_back(fd, r)) return libc().recvmsg(fd, msg, flags);
  return ret(r);
}

// kernel: do_recvmmsg(). The timeout is checked between datagrams, as the kernel does.
XMIT_EXPORT int recvmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags, timespec* timeout) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().recvmmsg(fd, vec, vlen, flags, timeout);
  if (vlen > UIO_MAXIOV) vlen = UIO_MAXIOV;
  unsigned int got = 0;
  for (; got < vlen; ++got) {
    int f = flags & ~MSG_WAITFORONE;
    if (got > 0 && (flags & MSG_WAITFORONE)) f |= MSG_DONTWAIT;
    ssize_t r = s->recvmsg(&vec[got].msg_hdr, f);
    if (got == 0 && handed_back(fd, r)) return libc().recvmmsg(fd, vec, vlen, flags, timeout);
    if (r == xmit::kPassThrough) return static_cast<int>(got);
    if (r < 0) return got > 0 ? static_cast<int>(got) : ret(static_cast<int>(r));
    vec[got].msg_len = static_cast<unsigned int>(r);
  }
  return static_cast<int>(got);
}

XMIT_EXPORT ssize_t read(int fd, void* buf, size_t len) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().read(fd, buf, len);
  ssize_t r = sock_recvmsg(s, buf, len, 0, nullptr, nullptr);
  if (handed_back(fd, r)) return libc().read(fd, buf, len);
  return ret(r);
}

XMIT_EXPORT ssize_t readv(int fd, const iovec* iov, int iovcnt) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().readv(fd, iov, iovcnt);
  if (iovcnt < 0 || iovcnt > UIO_MAXIOV) return ret(-EINVAL);
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = static_cast<size_t>(iovcnt);
  ssize_t r = s->recvmsg(&msg, 0);
  if (handed_back(fd, r)) return libc().readv(fd, iov, iovcnt);
  return ret(r);
}

XMIT_EXPORT ssize_t __read_chk(int fd, void* buf, size_t len, size_t buflen) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr || len > buflen) [[likely]] return libc().__read_chk(fd, buf, len, buflen);
  ssize_t r = sock_recvmsg(s, buf, len, 0, nullptr, nullptr);
  if (handed_back(fd, r)) return libc().__read_chk(fd, buf, len, buflen);
  return ret(r);
}

XMIT_EXPORT ssize_t __recv_chk(int fd, void* buf, size_t len, size_t buflen, int flags) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr || len > buflen) [[likely]] return libc().__recv_chk(fd, buf, len, buflen, flags);
  ssize_t r = sock_recvmsg(s, buf, len, flags, nullptr, nullptr);
  if (handed_back(fd, r)) return libc().__recv_chk(fd, buf, len, buflen, flags);
  return ret(r);
}

XMIT_EXPORT ssize_t __recvfrom_chk(int fd, void* buf, size_t len, size_t buflen, int flags,
                                   sockaddr* from, socklen_t* fromlen) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr || len > buflen) [[likely]] {
    return libc().__recvfrom_chk(fd, buf, len, buflen, flags, from, fromlen);
  }
  ssize_t r = sock_recvmsg(s, buf, len, flags, from, fromlen);
  if (handed_back(fd, r)) return libc().__recvfrom_chk(fd, buf, len, buflen, flags, from, fromlen);
  return ret(r);
}

XMIT_EXPORT int setsockopt(int fd, int level, int name, const void* val, socklen_t len) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().setsockopt(fd, level, name, val, len);
  int r = s->setsockopt(level, name, val, len);
  if (handed_back(fd, r)) return libc().setsockopt(fd, level, name, val, len);
  return ret(r);
}

XMIT_EXPORT int getsockopt(int fd, int level, int name, void* val, socklen_t* len) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().getsockopt(fd, level, name, val, len);
  return ret(s->getsockopt(level, name, val, len));
}

XMIT_EXPORT int getsockname(int fd, sockaddr* addr, socklen_t* len) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().getsockname(fd, addr, len);
  return ret(s->getname(addr, len, false));
}

XMIT_EXPORT int getpeername(int fd, sockaddr* addr, socklen_t* len) noexcept {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().getpeername(fd, addr, len);
  return ret(s->getname(addr, len, true));
}

namespace {

// fcntl on any fd: the kernel keeps the shadow socket's flags; xmit follows O_NONBLOCK and dups.
int do_fcntl(decltype(&::fcntl) real, int fd, int cmd, void* arg) noexcept {
  int r = real(fd, cmd, arg);
  if (r < 0) return r;
  if ((cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && g_fds.peek(fd) != nullptr) dup_socket(fd, r);
  if (cmd == F_SETFL) {
    if (Socket* s = g_fds.peek(fd)) s->set_nonblock(reinterpret_cast<intptr_t>(arg) & O_NONBLOCK);
  }
  return r;
}

}  // namespace

XMIT_EXPORT int fcntl(int fd, int cmd, ...) noexcept {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);  // as glibc does: every fcntl argument fits a pointer
  va_end(ap);
  return do_fcntl(libc().fcntl, fd, cmd, arg);
}

XMIT_EXPORT int fcntl64(int fd, int cmd, ...) noexcept {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return do_fcntl(libc().fcntl64, fd, cmd, arg);
}

XMIT_EXPORT int ioctl(int fd, unsigned long request, ...) noexcept {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] return libc().ioctl(fd, request, arg);
  switch (request) {
    case FIONREAD:  // == SIOCINQ
    case SIOCOUTQ:
    case SIOCOUTQNSD:
    case SIOCATMARK:
    {
      int r = s->ioctl(request, arg);
      if (handed_back(fd, r)) return libc().ioctl(fd, request, arg);
      return ret(r);
    }
    case FIONBIO: {
      int r = libc().ioctl(fd, request, arg);
      if (r == 0 && arg != nullptr) s->set_nonblock(*static_cast<int*>(arg) != 0);
      return r;
    }
    default:
      return libc().ioctl(fd, request, arg);
  }
}

XMIT_EXPORT int dup(int fd) noexcept {
  int r = libc().dup(fd);
  if (r >= 0 && g_fds.peek(fd) != nullptr) dup_socket(fd, r);
  return r;
}

XMIT_EXPORT int dup2(int oldfd, int newfd) noexcept {
  int r = libc().dup2(oldfd, newfd);
  if (r >= 0 && oldfd != newfd) dup_socket(oldfd, newfd);
  return r;
}

XMIT_EXPORT int dup3(int oldfd, int newfd, int flags) noexcept {
  int r = libc().dup3(oldfd, newfd, flags);
  if (r >= 0) dup_socket(oldfd, newfd);
  return r;
}
