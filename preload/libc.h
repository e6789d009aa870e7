// preload/libc.h — the real glibc functions behind every interposed symbol, found with
// dlsym(RTLD_NEXT). Safe to use before the library's constructor ran (resolved on first use) and
// from signal handlers once resolved (the constructor resolves them all up front).
#pragma once

#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <fcntl.h>

#include <atomic>

extern "C" {
// Fortified variants (_FORTIFY_SOURCE) that glibc declares only under fortification.
ssize_t __read_chk(int fd, void* buf, size_t nbytes, size_t buflen) noexcept;
ssize_t __recv_chk(int fd, void* buf, size_t len, size_t buflen, int flags) noexcept;
ssize_t __recvfrom_chk(int fd, void* buf, size_t len, size_t buflen, int flags, sockaddr* addr,
                       socklen_t* addrlen) noexcept;
int __poll_chk(pollfd* fds, nfds_t nfds, int timeout, size_t fdslen) noexcept;
int __ppoll_chk(pollfd* fds, nfds_t nfds, const timespec* timeout, const sigset_t* ss, size_t fdslen) noexcept;
}

namespace xmit {

// One entry per interposed symbol: X(name). The type is the glibc declaration's.
#define XMIT_LIBC_FUNCTIONS(X)                                                                  \
  X(socket) X(bind) X(connect) X(listen) X(accept) X(accept4) X(close) X(close_range)           \
  X(closefrom) X(shutdown) X(send) X(sendto) X(sendmsg) X(sendmmsg) X(write) X(writev) X(recv)  \
  X(recvfrom) X(recvmsg) X(recvmmsg) X(read) X(readv) X(setsockopt) X(getsockopt)               \
  X(getsockname) X(getpeername) X(fcntl) X(fcntl64) X(ioctl) X(dup) X(dup2) X(dup3)             \
  X(__read_chk) X(__recv_chk) X(__recvfrom_chk) X(poll) X(ppoll) X(select) X(pselect)          \
  X(__poll_chk) X(__ppoll_chk) X(epoll_ctl) X(epoll_wait) X(epoll_pwait) X(epoll_pwait2)   \
  X(sendfile) X(sendfile64) X(splice)

struct Libc {
#define XMIT_LIBC_MEMBER(name) decltype(&::name) name;
  XMIT_LIBC_FUNCTIONS(XMIT_LIBC_MEMBER)
#undef XMIT_LIBC_MEMBER
};

namespace internal {
extern std::atomic<const Libc*> g_libc;
const Libc& resolve_libc() noexcept;
}  // namespace internal

// The real functions. One load and a predictable branch once resolved.
inline const Libc& libc() noexcept {
  const Libc* l = internal::g_libc.load(std::memory_order_acquire);
  return l ? *l : internal::resolve_libc();
}

}  // namespace xmit
