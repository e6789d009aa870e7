// preload/epoll_table.h — epoll fd -> the offloaded members xmit follows in that set (epoll.cc).
// Only sets that ever held an offloaded fd have an entry; closing the epoll fd drops it.
#pragma once

#include <sys/epoll.h>

#include <atomic>

namespace xmit {

struct EpollSet;
inline constexpr int kEpollSetFds = 1 << 16;  // epoll fds above this are the kernel's alone
extern std::atomic<EpollSet*> g_epoll_sets[kEpollSetFds];

// `fd`, a member of the set `epfd` while it was the kernel's, became offloaded (a pre-fork worker's
// listener adopted late, preload/workers.cc): removed and added again as epoll_ctl() adds an
// offloaded fd (the kernel keeps membership, xmit follows the stack's readiness). 0 or -1 (errno).
// Set by epoll.cc (libxmit.so); null in a program without the interposer (unit tests).
using EpollReaddFn = int (*)(int epfd, int fd, const epoll_event& ev) noexcept;
extern EpollReaddFn g_epoll_readd_offloaded;

// The epoll fd is being closed: forget its set. Cheap for every other fd (one load).
void epoll_set_release(int epfd) noexcept;
inline void epoll_fd_closing(int fd) noexcept {
  if (static_cast<unsigned>(fd) < static_cast<unsigned>(kEpollSetFds) &&
      g_epoll_sets[fd].load(std::memory_order_relaxed) != nullptr) [[unlikely]] {
    epoll_set_release(fd);
  }
}

}  // namespace xmit
