// stack/base/stack_mutex.h — the stack's lock, which also knows whether this thread is inside the
// stack. A signal handler that interrupts a thread holding it and calls into the socket API again
// (a send from a SIGALRM handler) must not wait for a lock its own thread holds: the interposer asks
// held_by_this_thread() and lets the kernel serve such a call. The mark is set before locking and
// cleared after unlocking, so no instant exists where the lock is held unmarked. BasicLockable:
// std::lock_guard / std::unique_lock work with it.
#pragma once

#include <mutex>

namespace xmit {

class StackMutex {
 public:
  void lock() {
    ++t_depth;
    mu_.lock();
  }
  bool try_lock() {
    ++t_depth;
    if (mu_.try_lock()) return true;
    --t_depth;
    return false;
  }
  void unlock() {
    mu_.unlock();
    if (--t_depth == 0 && t_after_unlock != nullptr) [[unlikely]] {
      void (*f)() = t_after_unlock;
      t_after_unlock = nullptr;
      f();
    }
  }
  // True while this thread holds (or waits for) a StackMutex.
  static bool held_by_this_thread() { return t_depth != 0; }
  // Has `f` run once this thread is out of the stack (its last unlock): work that must not run
  // under the lock, such as raising a signal whose handler would run inside the stack (and might
  // never return to unlock it). One function per thread; a second call replaces the first.
  static void after_unlock(void (*f)()) { t_after_unlock = f; }

 private:
  std::mutex mu_;
  // initial-exec: one load off the thread pointer, no __tls_get_addr() (libxmit.so is preloaded).
  static inline thread_local __attribute__((tls_model("initial-exec"))) unsigned t_depth = 0;
  static inline thread_local __attribute__((tls_model("initial-exec"))) void (*t_after_unlock)() = nullptr;
};

}  // namespace xmit
