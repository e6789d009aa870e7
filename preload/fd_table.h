// preload/fd_table.h — fd → offloaded Socket. fd numbers stay the kernel's: an offloaded socket's
// fd is a real kernel "shadow" socket that holds the number (and its local port). A lookup of a
// passthrough fd is a bounds check and two loads; pages of the table are mmap'd on first insert,
// so the table never calls malloc and is constant-initialised (usable before any constructor).
#pragma once

#include <atomic>
#include <cstddef>

#include "stack/base/stack_mutex.h"
#include "stack/sock/socket.h"

namespace xmit {

class FdTable {
 public:
  static constexpr int kPageBits = 12;
  static constexpr int kPageSize = 1 << kPageBits;  // fds per page
  static constexpr int kPages = 1024;               // fds below 4M are covered
  static constexpr int kMaxFd = kPageSize * kPages;

  constexpr FdTable() = default;

  // The socket behind fd, or nullptr for a passthrough fd — also for a socket the stack handed
  // back to the kernel, which stays in the table (so other threads still inside it keep valid
  // memory) until the fd is closed. No reference is taken.
  Socket* peek(int fd) const noexcept {
    if (static_cast<unsigned>(fd) >= static_cast<unsigned>(kMaxFd)) return nullptr;
    const std::atomic<Socket*>* page = pages_[fd >> kPageBits].load(std::memory_order_acquire);
    if (page == nullptr) return nullptr;
    Socket* s = page[fd & (kPageSize - 1)].load(std::memory_order_acquire);
    return s != nullptr && s->handed_to_kernel() ? nullptr : s;
  }

  // Whether fd's slot still holds `s`, handed back to the kernel or not (no reference taken, `s`
  // not dereferenced): false once fd was closed or made to name something else.
  bool holds(int fd, const Socket* s) const noexcept {
    if (static_cast<unsigned>(fd) >= static_cast<unsigned>(kMaxFd)) return false;
    const std::atomic<Socket*>* page = pages_[fd >> kPageBits].load(std::memory_order_acquire);
    return page != nullptr && page[fd & (kPageSize - 1)].load(std::memory_order_acquire) == s;
  }

  // For a socket call: peek(), and also nullptr while this thread is inside the stack — a signal
  // handler that interrupted it calling again (the kernel then serves the call: it cannot wait for
  // the lock its own thread holds). stack/base/stack_mutex.h
  Socket* lookup(int fd) const noexcept {
    Socket* s = peek(fd);
    return s != nullptr && StackMutex::held_by_this_thread() ? nullptr : s;
  }

  // Makes fd name `s`, handing the table one reference; *old receives the socket fd named before
  // (its reference now the caller's) or nullptr. Returns false, taking nothing, when fd is beyond
  // the table or a page cannot be mapped: the fd then stays passthrough.
  bool install(int fd, Socket* s, Socket** old) noexcept;

  // Takes fd out of the table; returns the reference it held, or nullptr.
  Socket* remove(int fd) noexcept;

  // Another fd naming `s` than `except` (the lowest), or -1. Walks the table: for the rare close of
  // one of several dups.
  int find_other(const Socket* s, int except) const noexcept;

  // Empties the table without releasing anything (a forked child, whose sockets must not touch
  // the parent's queue: every fd becomes a plain kernel socket). Returns how many of its fds were
  // still offloaded (not handed to the kernel before).
  int abandon_all() noexcept;

 private:
  std::atomic<Socket*>* page_for(int fd) noexcept;
  std::atomic<std::atomic<Socket*>*> pages_[kPages] = {};
};

// The process's table.
extern FdTable g_fds;

}  // namespace xmit
