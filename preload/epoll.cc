// preload/epoll.cc — epoll over sets that mix offloaded and kernel fds. The kernel's epoll set stays
// the authority for membership and errnos: an offloaded fd is registered there too (its kernel
// socket: errors, its error queue, datagrams the kernel received itself), minus EPOLLOUT, which is
// the stack's. Beside it, xmit keeps the set's offloaded members (EpollSet) and asks the stack for
// their readiness (Socket::poll_mask()) on every epoll_wait; the device's wait fd sits in the kernel
// set under a tag no program can use (the address of g_dev_tag), so frames arriving wake the
// sleeper. Sleeps are sliced as poll's (wait_slice.h) for frames another thread took off the device,
// and come after net.core.busy_poll's (XMIT_BUSY_POLL's) µs of looking again without sleeping.
// Simplifications, each named: edge-triggered entries report a rising readiness bit (a second
// datagram queued behind an unread one raises none; the kernel wakes again); when offloaded members
// fill maxevents, kernel members wait for the next call; EPOLLEXCLUSIVE wakes every waiter. A
// member is followed by fd number without a reference (as the fd table's lookups; issue 6), and is
// dropped once its fd no longer names it (closed: the kernel drops it when the last dup closes).
// Kernel counterparts: do_epoll_ctl(), do_epoll_wait(), ep_send_events() (fs/eventpoll.c).
#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

#include "preload/engine.h"
#include "preload/epoll_table.h"
#include "preload/fd_table.h"
#include "preload/libc.h"
#include "preload/wait_slice.h"
#include "preload/workers.h"

#define XMIT_EXPORT extern "C" __attribute__((visibility("default")))

using xmit::g_fds;
using xmit::libc;
using xmit::Socket;

namespace xmit {

constinit std::atomic<EpollSet*> g_epoll_sets[kEpollSetFds] = {};

struct EpEntry {
  int fd;
  Socket* sock;      // no reference: checked against the fd table before each use
  uint32_t events;   // as the program asked (EPOLLET, EPOLLONESHOT included)
  epoll_data_t data;
  uint32_t last = 0; // edge-triggered: the bits seen at the last scan
  uint64_t last_seq = 0;  // edge-triggered: the socket's poll_seq() at the last scan
  bool disabled = false;  // EPOLLONESHOT fired; EPOLL_CTL_MOD re-arms
};

struct EpollSet {
  std::mutex mu;
  std::vector<EpEntry> entries;
  int dev_fd = -1;  // the device's wait fd, while registered in the kernel set
};

void epoll_set_release(int epfd) noexcept {
  if (static_cast<unsigned>(epfd) >= static_cast<unsigned>(kEpollSetFds)) return;
  delete g_epoll_sets[epfd].exchange(nullptr, std::memory_order_acq_rel);
}

}  // namespace xmit

using xmit::EpEntry;
using xmit::EpollSet;
using xmit::g_epoll_sets;

namespace {

char g_dev_tag;  // its address tags the device's wait fd in a program's epoll set
constexpr uint32_t kOut = EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND;

EpollSet* set_of(int epfd) {
  if (static_cast<unsigned>(epfd) >= static_cast<unsigned>(xmit::kEpollSetFds)) return nullptr;
  return g_epoll_sets[epfd].load(std::memory_order_acquire);
}

EpollSet* set_for(int epfd) {
  EpollSet* s = set_of(epfd);
  if (s != nullptr || static_cast<unsigned>(epfd) >= static_cast<unsigned>(xmit::kEpollSetFds)) return s;
  auto* fresh = new (std::nothrow) EpollSet;
  if (fresh == nullptr) return nullptr;
  if (g_epoll_sets[epfd].compare_exchange_strong(s, fresh, std::memory_order_acq_rel)) return fresh;
  delete fresh;  // another thread made it
  return s;
}

// With set->mu held: the last offloaded member left, so the device's fd leaves the kernel set too
// (nothing would drain the device for this set's sleeper, which would then wake for ever).
void drop_dev_if_empty(int epfd, EpollSet* set) {
  if (!set->entries.empty() || set->dev_fd < 0) return;
  (void)libc().epoll_ctl(epfd, EPOLL_CTL_DEL, set->dev_fd, nullptr);
  set->dev_fd = -1;
}

EpEntry* find(EpollSet* set, int fd) {
  for (EpEntry& e : set->entries) {
    if (e.fd == fd) return &e;
  }
  return nullptr;
}

// One epoll_wait(): the stack's ready members first, then the kernel's events in the rest of
// `out`. Returns the count, or -1 with errno. `timeout_ns` < 0: for ever.
int xmit_epoll_wait(int epfd, EpollSet* set, epoll_event* out, int maxevents, int64_t timeout_ns,
                    const sigset_t* sigmask) {
  const xmit::WaitSlices wait(timeout_ns);
  const xmit::BusyWindow busy(xmit::engine_busy_poll_us());
  for (;;) {
    // A sleeper from before the look at the members, as poll's (preload/poll.cc).
    xmit::engine_rx_waiter(1);
    struct Done { ~Done() { xmit::engine_rx_waiter(-1); } } done;
    int n = 0, dev_fd = -1;
    bool want_space = false;
    Socket::PollScan scan;
    {
      std::lock_guard<std::mutex> g(set->mu);
      for (size_t i = 0; i < set->entries.size();) {
        EpEntry& e = set->entries[i];
        if (g_fds.peek(e.fd) != e.sock) {
          // Handed back to the kernel (still in its slot): from now on the kernel's registration
          // alone, given back its EPOLLOUT. Closed (or its number now another file's): nothing to
          // give back — the kernel dropped the registration with the file, and a registration the
          // program made since for a new file under that number is the program's (not a failed
          // syscall per closed connection, nor that registration overwritten with this one's).
          if (g_fds.holds(e.fd, e.sock)) {
            epoll_event full{e.events, e.data};
            (void)libc().epoll_ctl(epfd, EPOLL_CTL_MOD, e.fd, &full);
          }
          set->entries.erase(set->entries.begin() + static_cast<long>(i));
          continue;
        }
        ++i;
        if (e.disabled || n == maxevents) continue;
        int dev = -1;
        int m = e.sock->poll_mask_scan(&dev, &scan);
        if (m < 0) continue;
        if (dev >= 0) dev_fd = dev;
        uint32_t r = static_cast<uint32_t>(m) & (e.events | EPOLLERR | EPOLLHUP);
        want_space |= (e.events & kOut) && !(m & EPOLLOUT);
        if (e.events & EPOLLET) {
          // A rising bit, or anything the kernel would have woken the entry for since the last
          // scan (kernel: ep_poll_callback() queues the item, ep_send_events() reports its whole
          // current mask).
          uint32_t rising = r & ~e.last;
          uint64_t seq = e.sock->poll_seq();
          if (seq != e.last_seq) rising = r;
          e.last = r;
          e.last_seq = seq;
          r = rising;
        }
        if (r == 0) continue;
        if (e.events & EPOLLONESHOT) e.disabled = true;
        out[n++] = {r, e.data};
      }
      drop_dev_if_empty(epfd, set);
      if (dev_fd >= 0 && set->dev_fd < 0) {
        epoll_event dev{EPOLLIN, {}};
        dev.data.ptr = &g_dev_tag;
        if (libc().epoll_ctl(epfd, EPOLL_CTL_ADD, dev_fd, &dev) == 0 || errno == EEXIST) set->dev_fd = dev_fd;
      }
    }
    const int64_t left_ns = wait.left_ns();
    int k = 0;
    if (n < maxevents) {
      // kernel: ep_poll() -> ep_busy_loop(): with net.core.busy_poll set and a member that
      // receives through the device (its NAPI id), no sleep until the busy time has passed.
      const bool spin = dev_fd >= 0 && busy.spinning();
      timespec ts = xmit::WaitSlices::next_sleep(left_ns, n > 0 || spin, want_space);
      k = libc().epoll_pwait2(epfd, out + n, maxevents - n, &ts, sigmask);
      if (k < 0) return n > 0 && errno == EINTR ? n : -1;
    }
    // Drop the device's tag; fold a kernel event for an offloaded member into the stack's one.
    int total = n;
    for (int i = n; i < n + k; ++i) {
      if (out[i].data.ptr == &g_dev_tag) continue;
      epoll_event ev = out[i];
      bool merged = false;
      {
        std::lock_guard<std::mutex> g(set->mu);
        for (const EpEntry& e : set->entries) {
          if (e.data.u64 != ev.data.u64) continue;
          ev.events &= ~kOut;  // an offloaded member's send space is the stack's
          if (!e.sock->kernel_readiness()) ev.events = 0;
          for (int j = 0; j < n; ++j) {
            if (out[j].data.u64 == ev.data.u64) {
              out[j].events |= ev.events;
              merged = true;
            }
          }
          break;
        }
      }
      if (!merged && ev.events != 0) out[total++] = ev;
    }
    if (total > 0 || left_ns == 0) return total;
  }
}

}  // namespace

namespace {
int epoll_ctl_impl(int epfd, int op, int fd, epoll_event* event) {
  Socket* s = g_fds.lookup(fd);
  if (s == nullptr) [[likely]] {
    xmit::workers_epoll_ctl(epfd, op, fd, event);
    if (op == EPOLL_CTL_DEL) {
      if (EpollSet* set = set_of(epfd)) {
        std::lock_guard<std::mutex> g(set->mu);
        std::erase_if(set->entries, [fd](const EpEntry& e) { return e.fd == fd; });
        drop_dev_if_empty(epfd, set);
      }
    }
    return libc().epoll_ctl(epfd, op, fd, event);
  }
  // The kernel decides every errno (EBADF, EINVAL, EEXIST, ENOENT, EFAULT, ELOOP) on the kernel socket.
  epoll_event k{};
  if (op != EPOLL_CTL_DEL && event != nullptr) {
    k = *event;
    k.events &= ~kOut;
    // A TCP connection's kernel socket says nothing about the connection: closed, it reports POLLHUP
    // for ever; in its deferred connect (TcpSocket::kernel_hash_connect()), POLLOUT, and POLLHUP
    // once that is undone. Edge-triggered and asking for nothing, it wakes the set at most once per
    // change (dropped below), not on every wait.
    if (!s->kernel_readiness()) k.events = EPOLLET;
  }
  int r = libc().epoll_ctl(epfd, op, fd, op != EPOLL_CTL_DEL && event != nullptr ? &k : event);
  if (r != 0) return r;
  EpollSet* set = set_for(epfd);
  if (set == nullptr) {
    // No room to follow it (epfd beyond the table, or out of memory): the kernel's view alone.
    if (op != EPOLL_CTL_DEL) (void)libc().epoll_ctl(epfd, EPOLL_CTL_MOD, fd, event);
    return 0;
  }
  std::lock_guard<std::mutex> g(set->mu);
  EpEntry* e = find(set, fd);
  if (op == EPOLL_CTL_DEL) {
    if (e != nullptr) set->entries.erase(set->entries.begin() + (e - set->entries.data()));
    drop_dev_if_empty(epfd, set);
    return 0;
  }
  if (e == nullptr) {
    set->entries.push_back({fd, s, event->events, event->data});
  } else {
    *e = {fd, s, event->events, event->data};
  }
  return 0;
}
}  // namespace

int epoll_readd_offloaded(int epfd, int fd, const epoll_event& ev) noexcept {
  epoll_event e = ev;
  (void)epoll_ctl_impl(epfd, EPOLL_CTL_DEL, fd, nullptr);
  return epoll_ctl_impl(epfd, EPOLL_CTL_ADD, fd, &e);
}
[[maybe_unused]] const bool g_readd_set = (xmit::g_epoll_readd_offloaded = &epoll_readd_offloaded, true);

XMIT_EXPORT int epoll_ctl(int epfd, int op, int fd, epoll_event* event) noexcept {
  xmit::workers_adopt_if_pending();
  return epoll_ctl_impl(epfd, op, fd, event);
}


XMIT_EXPORT int epoll_pwait2(int epfd, epoll_event* events, int maxevents, const timespec* timeout,
                             const sigset_t* sigmask) noexcept {
  xmit::workers_adopt_if_pending();
  EpollSet* set = xmit::StackMutex::held_by_this_thread() ? nullptr : set_of(epfd);
  if (set == nullptr || maxevents <= 0 || events == nullptr ||
      (timeout != nullptr && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1'000'000'000)))
      [[likely]] {
    return libc().epoll_pwait2(epfd, events, maxevents, timeout, sigmask);
  }
  int64_t t = timeout == nullptr ? -1 : static_cast<int64_t>(timeout->tv_sec) * 1'000'000'000 + timeout->tv_nsec;
  return xmit_epoll_wait(epfd, set, events, maxevents, t, sigmask);
}

XMIT_EXPORT int epoll_pwait(int epfd, epoll_event* events, int maxevents, int timeout, const sigset_t* sigmask) noexcept {
  xmit::workers_adopt_if_pending();
  EpollSet* set = xmit::StackMutex::held_by_this_thread() ? nullptr : set_of(epfd);
  if (set == nullptr || maxevents <= 0 || events == nullptr) [[likely]] {
    return libc().epoll_pwait(epfd, events, maxevents, timeout, sigmask);
  }
  return xmit_epoll_wait(epfd, set, events, maxevents, timeout < 0 ? -1 : int64_t{timeout} * 1'000'000, sigmask);
}

XMIT_EXPORT int epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout) noexcept {
  xmit::workers_adopt_if_pending();
  EpollSet* set = xmit::StackMutex::held_by_this_thread() ? nullptr : set_of(epfd);
  if (set == nullptr || maxevents <= 0 || events == nullptr) [[likely]] {
    return libc().epoll_wait(epfd, events, maxevents, timeout);
  }
  return xmit_epoll_wait(epfd, set, events, maxevents, timeout < 0 ? -1 : int64_t{timeout} * 1'000'000, nullptr);
}
