// preload/fd_table.cc — page allocation for the fd table (mmap, never malloc).
#include "preload/fd_table.h"

#include <sys/mman.h>

namespace xmit {

constinit FdTable g_fds;

std::atomic<Socket*>* FdTable::page_for(int fd) noexcept {
  auto& slot = pages_[fd >> kPageBits];
  std::atomic<Socket*>* page = slot.load(std::memory_order_acquire);
  if (page != nullptr) return page;
  void* mem = mmap(nullptr, sizeof(std::atomic<Socket*>) * kPageSize, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return nullptr;
  auto* fresh = static_cast<std::atomic<Socket*>*>(mem);  // zero-filled: every entry nullptr
  if (slot.compare_exchange_strong(page, fresh, std::memory_order_acq_rel)) return fresh;
  munmap(mem, sizeof(std::atomic<Socket*>) * kPageSize);  // another thread won
  return page;
}

bool FdTable::install(int fd, Socket* s, Socket** old) noexcept {
  if (static_cast<unsigned>(fd) >= static_cast<unsigned>(kMaxFd)) return false;
  std::atomic<Socket*>* page = page_for(fd);
  if (page == nullptr) return false;
  *old = page[fd & (kPageSize - 1)].exchange(s, std::memory_order_acq_rel);
  return true;
}

Socket* FdTable::remove(int fd) noexcept {
  if (static_cast<unsigned>(fd) >= static_cast<unsigned>(kMaxFd)) return nullptr;
  std::atomic<Socket*>* page = pages_[fd >> kPageBits].load(std::memory_order_acquire);
  if (page == nullptr) return nullptr;
  return page[fd & (kPageSize - 1)].exchange(nullptr, std::memory_order_acq_rel);
}

int FdTable::find_other(const Socket* s, int except) const noexcept {
  for (int p = 0; p < kPages; ++p) {
    const std::atomic<Socket*>* page = pages_[p].load(std::memory_order_acquire);
    if (page == nullptr) continue;
    for (int i = 0; i < kPageSize; ++i) {
      int fd = (p << kPageBits) | i;
      if (fd != except && page[i].load(std::memory_order_acquire) == s) return fd;
    }
  }
  return -1;
}

int FdTable::abandon_all() noexcept {
  int n = 0;
  for (auto& slot : pages_) {
    std::atomic<Socket*>* page = slot.load(std::memory_order_acquire);
    if (page == nullptr) continue;
    for (int i = 0; i < kPageSize; ++i) {
      Socket* s = page[i].exchange(nullptr, std::memory_order_acq_rel);
      if (s != nullptr && !s->handed_to_kernel()) ++n;  // the others were kernel sockets already
    }
  }
  return n;
}

}  // namespace xmit
