// preload/poll.cc — poll, ppoll, select and pselect over sets that mix offloaded and kernel fds.
// A set without an offloaded fd goes straight to glibc (one table lookup per fd). Otherwise each
// offloaded fd's readiness is the stack's (Socket::poll_mask(): its queue, send space, held error)
// merged with its kernel socket's (what only the kernel holds: the error queue, datagrams the kernel
// received itself); POLLOUT is the stack's alone. While nothing is ready the thread sleeps in the
// kernel's poll on the kernel fds plus the device's wait fd (readable when frames arrive), in
// slices (wait_slice.h); with net.core.busy_poll (or XMIT_BUSY_POLL) set and a member with
// SO_BUSY_POLL, it first looks again without sleeping for that many µs (busy polling).
// Kernel counterparts: do_sys_poll(), do_select() (fs/select.c); POLLIN_SET, POLLOUT_SET, POLLEX_SET.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/select.h>
#include <time.h>

#include <climits>
#include <cstdint>
#include <memory>
#include <new>

#include "preload/engine.h"
#include "preload/fd_table.h"
#include "preload/libc.h"
#include "preload/wait_slice.h"
#include "preload/workers.h"

#define XMIT_EXPORT extern "C" __attribute__((visibility("default")))

using xmit::g_fds;
using xmit::libc;
using xmit::Socket;

namespace {

constexpr short kOut = POLLOUT | POLLWRNORM | POLLWRBAND;
constexpr int kStackFds = 64;    // sets up to this size need no allocation

bool any_offloaded(const pollfd* fds, nfds_t n) {
  for (nfds_t i = 0; i < n; ++i) {
    if (g_fds.lookup(fds[i].fd) != nullptr) return true;
  }
  return false;
}

// The sleeping part of poll: `timeout_ns` < 0 waits for ever. `sigmask` as ppoll's. Returns what
// poll returns (count, or -1 with errno).
int xmit_poll(pollfd* fds, nfds_t n, int64_t timeout_ns, const sigset_t* sigmask) {
  if (n > static_cast<nfds_t>(INT_MAX) - 1) {
    errno = EINVAL;
    return -1;
  }
  pollfd on_stack[kStackFds + 1];
  std::unique_ptr<pollfd[]> on_heap;
  pollfd* k = on_stack;
  if (n + 1 > kStackFds + 1) {
    on_heap.reset(new (std::nothrow) pollfd[n + 1]);
    if (on_heap == nullptr) {
      errno = ENOMEM;
      return -1;
    }
    k = on_heap.get();
  }
  const xmit::WaitSlices wait(timeout_ns);
  const xmit::BusyWindow busy(xmit::engine_busy_poll_us());
  for (;;) {
    // The stack's view first (each poll_mask() also moves arrived frames into the sockets' queues).
    // Counted as a sleeper from before the look (engine_rx_waiter()): the progress thread then leaves
    // the device to this thread, whose look would otherwise miss what it takes meanwhile.
    xmit::engine_rx_waiter(1);
    int wait_fd = -1;
    bool ready = false, want_space = false, busy_member = false;
    Socket::PollScan scan;
    for (nfds_t i = 0; i < n; ++i) {
      k[i] = {fds[i].fd, fds[i].events, 0};
      Socket* s = g_fds.peek(fds[i].fd);
      if (s == nullptr) continue;
      int dev = -1;
      int m = s->poll_mask_scan(&dev, &scan);
      if (m < 0) continue;  // handed back to the kernel just now: the kernel's answer alone
      if (dev >= 0) wait_fd = dev;
      busy_member |= s->busy_poll_usec() != 0;
      fds[i].revents = static_cast<short>(m & (fds[i].events | POLLERR | POLLHUP));
      k[i].events = static_cast<short>(fds[i].events & ~kOut);
      if (!s->kernel_readiness()) k[i].fd = -1;  // its kernel socket's POLLHUP means nothing
      ready |= fds[i].revents != 0;
      want_space |= (fds[i].events & kOut) && !(m & POLLOUT);
    }
    const int64_t left_ns = wait.left_ns();
    k[n] = {wait_fd, POLLIN, 0};  // a negative fd is ignored by the kernel
    // kernel: do_poll(): with net.core.busy_poll set and a member with SO_BUSY_POLL (sock_poll()'s
    // POLL_BUSY_LOOP), the scan repeats without sleeping until the busy time has passed.
    const bool spin = busy_member && busy.spinning();
    timespec ts = xmit::WaitSlices::next_sleep(left_ns, ready || spin, want_space);
    int r = libc().ppoll(k, n + 1, &ts, sigmask);
    xmit::engine_rx_waiter(-1);
    if (r < 0) return -1;  // EINTR (poll is never restarted), EFAULT, ENOMEM
    int count = 0;
    for (nfds_t i = 0; i < n; ++i) {
      if (g_fds.peek(fds[i].fd) != nullptr) {
        fds[i].revents = static_cast<short>(fds[i].revents | (k[i].revents & ~kOut));
      } else {
        fds[i].revents = k[i].revents;
      }
      count += fds[i].revents != 0;
    }
    if (count > 0 || left_ns == 0) return count;
    for (nfds_t i = 0; i < n; ++i) fds[i].revents = 0;
  }
}

int64_t timespec_ns(const timespec* ts) {
  if (ts == nullptr) return -1;
  return static_cast<int64_t>(ts->tv_sec) * 1'000'000'000 + ts->tv_nsec;
}

// kernel: POLLIN_SET, POLLOUT_SET, POLLEX_SET (fs/select.c)
constexpr short kInSet = POLLRDNORM | POLLRDBAND | POLLIN | POLLHUP | POLLERR;
constexpr short kOutSet = POLLWRBAND | POLLWRNORM | POLLOUT | POLLERR;
constexpr short kExSet = POLLPRI;

// select over a set with an offloaded fd, through xmit_poll(). Returns -2 when the sets hold no
// offloaded fd (the caller passes the call through untouched).
int xmit_select(int nfds, fd_set* r, fd_set* w, fd_set* e, int64_t timeout_ns, const sigset_t* sigmask) {
  if (nfds < 0 || nfds > FD_SETSIZE) return -2;  // the kernel's EINVAL, or sets glibc cannot name
  int n = 0;
  bool offloaded = false;
  for (int fd = 0; fd < nfds; ++fd) {
    if ((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w)) || (e && FD_ISSET(fd, e))) {
      ++n;
      offloaded |= g_fds.lookup(fd) != nullptr;
    }
  }
  if (!offloaded) return -2;
  pollfd p[FD_SETSIZE];
  int i = 0;
  for (int fd = 0; fd < nfds; ++fd) {
    short ev = 0;
    if (r && FD_ISSET(fd, r)) ev |= POLLIN | POLLRDNORM;
    if (w && FD_ISSET(fd, w)) ev |= POLLOUT | POLLWRNORM;
    if (e && FD_ISSET(fd, e)) ev |= POLLPRI;
    if (ev != 0) p[i++] = {fd, ev, 0};
  }
  int rc = xmit_poll(p, static_cast<nfds_t>(n), timeout_ns, sigmask);
  if (rc < 0) return -1;
  for (int j = 0; j < n; ++j) {
    if (p[j].revents & POLLNVAL) {  // kernel: do_select() fails the whole call for a closed fd
      errno = EBADF;
      return -1;
    }
  }
  int count = 0;
  fd_set rr, ww, ee;
  FD_ZERO(&rr);
  FD_ZERO(&ww);
  FD_ZERO(&ee);
  for (int j = 0; j < n; ++j) {
    int fd = p[j].fd;
    if (r && FD_ISSET(fd, r) && (p[j].revents & kInSet)) FD_SET(fd, &rr), ++count;
    if (w && FD_ISSET(fd, w) && (p[j].revents & kOutSet)) FD_SET(fd, &ww), ++count;
    if (e && FD_ISSET(fd, e) && (p[j].revents & kExSet)) FD_SET(fd, &ee), ++count;
  }
  if (r) *r = rr;
  if (w) *w = ww;
  if (e) *e = ee;
  return count;
}

}  // namespace

XMIT_EXPORT int poll(pollfd* fds, nfds_t nfds, int timeout) noexcept {
  xmit::workers_adopt_if_pending();
  if (fds == nullptr || !any_offloaded(fds, nfds)) [[likely]] return libc().poll(fds, nfds, timeout);
  return xmit_poll(fds, nfds, timeout < 0 ? -1 : int64_t{timeout} * 1'000'000, nullptr);
}

XMIT_EXPORT int __poll_chk(pollfd* fds, nfds_t nfds, int timeout, size_t fdslen) noexcept {
  if (fdslen / sizeof(pollfd) < nfds) return libc().__poll_chk(fds, nfds, timeout, fdslen);  // glibc aborts
  return poll(fds, nfds, timeout);
}

XMIT_EXPORT int ppoll(pollfd* fds, nfds_t nfds, const timespec* timeout, const sigset_t* sigmask) noexcept {
  xmit::workers_adopt_if_pending();
  if (fds == nullptr || !any_offloaded(fds, nfds) ||
      (timeout != nullptr && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1'000'000'000)))
      [[likely]] {
    return libc().ppoll(fds, nfds, timeout, sigmask);  // also the kernel's EINVAL for a bad timeout
  }
  return xmit_poll(fds, nfds, timespec_ns(timeout), sigmask);
}

XMIT_EXPORT int __ppoll_chk(pollfd* fds, nfds_t nfds, const timespec* timeout, const sigset_t* ss,
                            size_t fdslen) noexcept {
  if (fdslen / sizeof(pollfd) < nfds) return libc().__ppoll_chk(fds, nfds, timeout, ss, fdslen);
  return ppoll(fds, nfds, timeout, ss);
}

// Linux's select() writes the time not slept back into *timeout, as the kernel does.
XMIT_EXPORT int select(int nfds, fd_set* r, fd_set* w, fd_set* e, timeval* timeout) noexcept {
  xmit::workers_adopt_if_pending();
  if (timeout != nullptr && (timeout->tv_sec < 0 || timeout->tv_usec < 0)) return libc().select(nfds, r, w, e, timeout);
  int64_t t = -1;
  if (timeout != nullptr) {
    // kernel: poll_select_set_timeout() normalises tv_usec >= 1e6 rather than failing.
    t = static_cast<int64_t>(timeout->tv_sec) * 1'000'000'000 + static_cast<int64_t>(timeout->tv_usec) * 1000;
  }
  const uint64_t start = xmit::mono_ns();
  int rc = xmit_select(nfds, r, w, e, t, nullptr);
  if (rc == -2) [[likely]] return libc().select(nfds, r, w, e, timeout);
  if (timeout != nullptr) {
    int64_t left = t - static_cast<int64_t>(xmit::mono_ns() - start);
    if (left < 0) left = 0;
    timeout->tv_sec = left / 1'000'000'000;
    timeout->tv_usec = (left % 1'000'000'000) / 1000;
  }
  return rc;
}

XMIT_EXPORT int pselect(int nfds, fd_set* r, fd_set* w, fd_set* e, const timespec* timeout,
                        const sigset_t* sigmask) noexcept {
  xmit::workers_adopt_if_pending();
  if (timeout != nullptr && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1'000'000'000))
    return libc().pselect(nfds, r, w, e, timeout, sigmask);
  int rc = xmit_select(nfds, r, w, e, timespec_ns(timeout), sigmask);
  if (rc == -2) [[likely]] return libc().pselect(nfds, r, w, e, timeout, sigmask);
  return rc;
}
