// tests/sock/busy_poll_test.cc — sk_busy_loop() (stack/sock/busy_poll.h) with a fake clock and a
// recording lock: it polls until done or the time is up, holds the lock for every poll and done()
// but never between two polls, takes it back with try_lock (a failed try is no poll), counts itself
// among the device's pollers while it runs; and busy_poll_setsockopt()'s mirror.
#include "stack/sock/busy_poll.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>

namespace xmit {
namespace {

struct FakeLock {
  bool held = true;
  int fail_tries = 0;  // the next tries that fail (another thread holds it)
  int unlocks = 0, tries = 0, locks = 0;
  void unlock() {
    EXPECT_TRUE(held);
    held = false;
    ++unlocks;
  }
  bool try_lock() {
    EXPECT_FALSE(held);
    ++tries;
    if (fail_tries > 0) {
      --fail_tries;
      return false;
    }
    held = true;
    return true;
  }
  void lock() {
    EXPECT_FALSE(held);
    held = true;
    ++locks;
  }
};

TEST(SkBusyLoop, PollsUntilDoneWithTheLockHeldForEachLook) {
  FakeLock lk;
  std::atomic<int> pollers{0};
  uint64_t now = 0;
  int polls = 0;
  bool r = sk_busy_loop(
      lk, pollers, 1000, [&] { return now += 10; },
      [&] {
        EXPECT_TRUE(lk.held);
        EXPECT_EQ(pollers.load(), 1);
        ++polls;
      },
      [&] {
        EXPECT_TRUE(lk.held);
        return polls == 3;
      });
  EXPECT_TRUE(r);
  EXPECT_EQ(polls, 3);
  EXPECT_EQ(lk.unlocks, 3);  // free between the looks
  EXPECT_TRUE(lk.held);
  EXPECT_EQ(pollers.load(), 0);
}

TEST(SkBusyLoop, DoneAtOnceNeverLetsGo) {
  FakeLock lk;
  std::atomic<int> pollers{0};
  int polls = 0;
  EXPECT_TRUE(sk_busy_loop(lk, pollers, 1000, [] { return uint64_t{0}; }, [&] { ++polls; }, [] { return true; }));
  EXPECT_EQ(polls, 0);
  EXPECT_EQ(lk.unlocks, 0);
}

TEST(SkBusyLoop, StopsWhenTheTimeIsUp) {
  FakeLock lk;
  std::atomic<int> pollers{0};
  uint64_t now = 0;
  int polls = 0;
  EXPECT_FALSE(sk_busy_loop(lk, pollers, 100, [&] { return now += 10; }, [&] { ++polls; }, [] { return false; }));
  EXPECT_GT(polls, 0);
  EXPECT_LT(polls, 10);
  EXPECT_TRUE(lk.held);
  EXPECT_EQ(pollers.load(), 0);
}

TEST(SkBusyLoop, AFailedTryIsNoLookAndTheEndWaitsForTheLock) {
  FakeLock lk;
  lk.fail_tries = 1000;  // another thread in the stack throughout
  std::atomic<int> pollers{0};
  uint64_t now = 0;
  int polls = 0;
  EXPECT_FALSE(sk_busy_loop(lk, pollers, 100, [&] { return now += 1; }, [&] { ++polls; }, [] { return false; }));
  EXPECT_GT(lk.tries, 1);
  EXPECT_EQ(lk.locks, 1);  // the one blocking lock, once the time was up
  EXPECT_EQ(polls, 1);     // the look after it
  EXPECT_TRUE(lk.held);
}

TEST(BusyPollSetsockopt, MirrorsWhatTheKernelAccepted) {
  BusyPollOpts o;
  int v = 50;
  EXPECT_TRUE(busy_poll_setsockopt(&o, SO_BUSY_POLL, &v, sizeof v));
  EXPECT_EQ(o.sk_ll_usec, 50u);
  v = 7;
  EXPECT_TRUE(busy_poll_setsockopt(&o, SO_PREFER_BUSY_POLL, &v, sizeof v));
  EXPECT_TRUE(o.sk_prefer_busy_poll);
  v = 65535;
  EXPECT_TRUE(busy_poll_setsockopt(&o, SO_BUSY_POLL_BUDGET, &v, sizeof v));
  EXPECT_EQ(o.sk_busy_poll_budget, 65535);
  EXPECT_FALSE(busy_poll_setsockopt(&o, SO_RCVBUF, &v, sizeof v));
  EXPECT_EQ(o.sk_ll_usec, 50u);
}

}  // namespace
}  // namespace xmit
