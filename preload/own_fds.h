// preload/own_fds.h — the fds xmit opened for itself (the AF_XDP socket, the XDP program's link
// and maps, rtnetlink sockets, the control epoll set, log and pcap files). A program cannot see
// them: close() on one fails with EBADF as on an fd that is not open, closefrom()/close_range()
// close around them (daemons close every fd above 2 at start-up), and a forked child closes its
// copies. OpenOnload protects its stack fds the same way.
//
// Lock-free: fds are added while the stack opens (one thread), looked up from any thread.
#pragma once

#include <atomic>

namespace xmit {

class OwnFds {
 public:
  // The AF_XDP backend alone has one socket per RX queue (up to 64) beside its epoll set and the
  // XDP program's fds.
  static constexpr int kMax = 128;

  // Marks fd as xmit's own. False when the registry is full (the fd is then unprotected).
  bool add(int fd) noexcept;
  bool contains(int fd) const noexcept {
    if (count_.load(std::memory_order_acquire) == 0) [[likely]] return false;
    const int used = used_.load(std::memory_order_acquire);
    for (int i = 0; i < used; ++i) {
      if (fds_[i].load(std::memory_order_relaxed) == fd) return true;
    }
    return false;
  }
  // Fills out[] with the registered fds in ascending order; returns how many.
  int sorted(int (&out)[kMax]) const noexcept;
  // Forgets fd (a forked child after closing it).
  void remove(int fd) noexcept;

 private:
  std::atomic<int> fds_[kMax] = {};  // 0: a free slot (fd 0 is never xmit's own)
  std::atomic<int> count_{0};
  std::atomic<int> used_{0};  // slots [used_, kMax) have never held an fd: contains() stops there
};

extern OwnFds g_own_fds;

}  // namespace xmit
