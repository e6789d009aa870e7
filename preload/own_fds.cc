// preload/own_fds.cc — see own_fds.h.
#include "preload/own_fds.h"

namespace xmit {

constinit OwnFds g_own_fds;

bool OwnFds::add(int fd) noexcept {
  if (fd <= 0 || contains(fd)) return fd > 0;
  for (int i = 0; i < kMax; ++i) {
    int free_slot = 0;
    if (fds_[i].compare_exchange_strong(free_slot, fd, std::memory_order_acq_rel)) {
      int used = used_.load(std::memory_order_relaxed);
      while (used < i + 1 && !used_.compare_exchange_weak(used, i + 1, std::memory_order_release)) {
      }
      count_.fetch_add(1, std::memory_order_release);
      return true;
    }
  }
  return false;
}

int OwnFds::sorted(int (&out)[kMax]) const noexcept {
  int n = 0;
  for (int i = 0; i < kMax; ++i) {
    int fd = fds_[i].load(std::memory_order_acquire);
    if (fd <= 0) continue;
    int j = n++;
    for (; j > 0 && out[j - 1] > fd; --j) out[j] = out[j - 1];  // insertion sort: at most kMax
    out[j] = fd;
  }
  return n;
}

void OwnFds::remove(int fd) noexcept {
  for (auto& f : fds_) {
    int want = fd;
    if (fd > 0 && f.compare_exchange_strong(want, 0, std::memory_order_acq_rel)) {
      count_.fetch_sub(1, std::memory_order_release);
      return;
    }
  }
}

}  // namespace xmit
