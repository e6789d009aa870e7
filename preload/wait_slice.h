// preload/wait_slice.h — the sleeping loop shared by poll/select (poll.cc) and epoll (epoll.cc):
// the caller's timeout, cut into slices, because a frame for one of the set's offloaded sockets may
// be taken off the device by another thread (the sleeper then looks again within kSliceMs), and send
// space returns when the device completes frames, which no fd signals (kSendSliceMs).
#pragma once

#include <time.h>

#include <cstdint>

namespace xmit {

inline uint64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

class WaitSlices {
 public:
  static constexpr int64_t kSliceNs = 50'000'000;     // waiting for input (the blocking recv's slice too)
  static constexpr int64_t kSendSliceNs = 1'000'000;  // while an offloaded fd waits for send space

  // `timeout_ns` < 0: for ever.
  explicit WaitSlices(int64_t timeout_ns) : start_(mono_ns()), timeout_ns_(timeout_ns) {}

  // Time left of the caller's timeout: -1 for ever, 0 when it has run out.
  int64_t left_ns() const {
    if (timeout_ns_ < 0) return -1;
    uint64_t spent = mono_ns() - start_;
    return spent >= static_cast<uint64_t>(timeout_ns_) ? 0 : timeout_ns_ - static_cast<int64_t>(spent);
  }
  // How long the next kernel wait may sleep, given `left` (from left_ns()): 0 when something is
  // ready already, else up to one slice.
  static timespec next_sleep(int64_t left, bool ready, bool want_space) {
    const int64_t slice = want_space ? kSendSliceNs : kSliceNs;
    const int64_t ns = ready ? 0 : (left < 0 || left > slice ? slice : left);
    return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  }

 private:
  uint64_t start_;
  int64_t timeout_ns_;
};

// The busy-poll time of one poll/select/epoll_wait call (kernel: busy_loop_timeout() from the
// call's first look, net.core.busy_poll µs): while spinning() the caller looks again at once.
class BusyWindow {
 public:
  explicit BusyWindow(uint32_t usec) : end_(usec == 0 ? 0 : mono_ns() + uint64_t{usec} * 1000) {}
  bool spinning() const { return end_ != 0 && mono_ns() < end_; }

 private:
  uint64_t end_;
};

}  // namespace xmit
