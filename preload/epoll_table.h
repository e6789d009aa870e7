// preload/epoll_table.h — epoll fd -> the offloaded members xmit follows in that set (epoll.cc).
// Only sets that ever held an offloaded fd have an entry; closing the epoll fd drops it.
#pragma once

#include <atomic>

namespace xmit {

struct EpollSet;
inline constexpr int kEpollSetFds = 1 << 16;  // epoll fds above this are the kernel's alone
extern std::atomic<EpollSet*> g_epoll_sets[kEpollSetFds];

// The epoll fd is being closed: forget its set. Cheap for every other fd (one load).
void epoll_set_release(int epfd) noexcept;
inline void epoll_fd_closing(int fd) noexcept {
  if (static_cast<unsigned>(fd) < static_cast<unsigned>(kEpollSetFds) &&
      g_epoll_sets[fd].load(std::memory_order_relaxed) != nullptr) [[unlikely]] {
    epoll_set_release(fd);
  }
}

}  // namespace xmit
