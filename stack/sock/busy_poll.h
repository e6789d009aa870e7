// stack/sock/busy_poll.h — busy polling: a blocked receive (or poll/select/epoll) looks at the
// device for up to sk_ll_usec µs before it sleeps, instead of paying a wake-up per reply.
// Kernel counterparts: sk_busy_loop(), sk_can_busy_loop() (include/net/busy_poll.h),
// napi_busy_loop() (net/core/dev.c), SO_BUSY_POLL / SO_PREFER_BUSY_POLL / SO_BUSY_POLL_BUDGET
// (sk_setsockopt(), net/core/sock.c).
#pragma once

#include <sched.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <cstring>

namespace xmit {

// The socket's options as the kernel keeps them (struct sock). The kernel socket behind the fd
// checks every value (EINVAL, EPERM) first; these mirror what it accepted.
struct BusyPollOpts {
  uint32_t sk_ll_usec = 0;            // SO_BUSY_POLL; net.core.busy_read (or XMIT_BUSY_POLL) at creation
  bool sk_prefer_busy_poll = false;   // SO_PREFER_BUSY_POLL: stored (one queue, no interrupt to defer)
  uint16_t sk_busy_poll_budget = 0;   // SO_BUSY_POLL_BUDGET: stored (each look takes the stack's budget)
};

// setsockopt(SOL_SOCKET, `name`) that the kernel socket behind the fd accepted (so `val` holds
// an int in range): the mirrored option updated. False: not one of these options.
inline bool busy_poll_setsockopt(BusyPollOpts* o, int name, const void* val, socklen_t len) {
  if (name != SO_BUSY_POLL && name != SO_PREFER_BUSY_POLL && name != SO_BUSY_POLL_BUDGET) return false;
  int v = 0;
  std::memcpy(&v, val, len < sizeof v ? len : sizeof v);
  if (name == SO_BUSY_POLL) o->sk_ll_usec = static_cast<uint32_t>(v);
  if (name == SO_PREFER_BUSY_POLL) o->sk_prefer_busy_poll = v != 0;
  if (name == SO_BUSY_POLL_BUDGET) o->sk_busy_poll_budget = static_cast<uint16_t>(v);
  return true;
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// kernel: sk_busy_loop() -> napi_busy_loop(): with `lk` held on entry and on return, looks at the
// device (`poll()`, lock held) until `done()` (lock held) or the clock passes `end_ns`. Between
// looks the lock is free — another thread in the stack gets in — and is taken back with try_lock,
// so the spinner never queues behind a thread doing real work (it just looks again later); only
// once the time is up does it wait for the lock. Allocation-free. Returns done().
// `pollers`: the stack's count of threads that take their own frames off the device (the progress
// thread then leaves the device alone rather than wake for each frame the spinner takes anyway).
template <class Lock, class Clock, class Poll, class Done>
bool sk_busy_loop(Lock& lk, std::atomic<int>& pollers, uint64_t end_ns, Clock clock, Poll poll, Done done) {
  pollers.fetch_add(1, std::memory_order_acq_rel);
  struct Leave {
    std::atomic<int>& n;
    ~Leave() { n.fetch_sub(1, std::memory_order_acq_rel); }
  } leave{pollers};
  for (;;) {
    if (done()) return true;
    if (clock() >= end_ns) return false;
    lk.unlock();
    // kernel: napi_busy_loop() stops for need_resched(). The nearest thing here: yield the CPU to
    // whatever else is runnable on it — on a small machine often the very peer whose reply the
    // spinner waits for (woken onto the spinner's CPU by the request it sent). Without anything
    // runnable this returns at once.
    sched_yield();
    bool locked = false;
    while (!locked) {
      cpu_relax();
      locked = lk.try_lock();
      if (!locked && clock() >= end_ns) {
        lk.lock();
        locked = true;
      }
    }
    poll();
  }
}

}  // namespace xmit
