// tests/ibv/mr_cache_test.cc — the MR cache (verbs/ibv/mr_cache.h) against the software verbs
// device: lookups by interval, page rounding, merges, refcounts, deregistration at the last
// reference (default) or LRU eviction of unused entries (keep_unused), invalidation, and the
// device never seeing an MR deregistered under a posted send.
#include "verbs/ibv/mr_cache.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "tests/ibv/sw_fixture.h"

namespace xmit::ibv {
namespace {

using testing::SwDeviceTest;

class MrCacheTest : public SwDeviceTest {
 protected:
  void SetUp() override {
    SwDeviceTest::SetUp();
    void* m = mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(m, MAP_FAILED);
    mem_ = static_cast<uint8_t*>(m);
  }
  void TearDown() override {
    munmap(mem_, kLen);
    SwDeviceTest::TearDown();
  }
  uint32_t live() { return uint32_t(sw::sw_stats(kDev).live_objects); }

  static constexpr size_t kLen = 64 * 4096;
  uint8_t* mem_ = nullptr;
};

TEST_F(MrCacheTest, RegistersWholePagesFindsCoveredRangesAndDeregistersAtTheLastReference) {
  const uint32_t base = live();
  MrCache c(&ops_, pd_, 8);
  const int a = c.get(mem_ + 100, 1000);
  ASSERT_GE(a, 0);
  EXPECT_EQ(live(), base + 1);
  // Anything inside the same page is a hit, with its own reference and the same lkey.
  const int b = c.get(mem_ + 4000, 96);
  EXPECT_EQ(b, a);
  EXPECT_EQ(c.refs(a), 2u);
  EXPECT_EQ(c.stats().hits, 1u);
  EXPECT_EQ(c.stats().registrations, 1u);
  c.put(a);
  EXPECT_EQ(c.entries(), 1u);  // one WR still reads it
  c.put(b);
  EXPECT_EQ(c.entries(), 0u);  // the last: gone (safe by construction, nothing kept after use)
  EXPECT_EQ(live(), base);
  EXPECT_EQ(c.stats().deregistrations, 1u);
  // The next send registers again: nothing was kept that an unmap could have made stale.
  ASSERT_GE(c.get(mem_ + 100, 1000), 0);
  EXPECT_EQ(c.stats().registrations, 2u);
}

// The software device's reg_mr/dereg_mr, counted: calls, bytes registered, and which MRs are live.
struct Counted {
  static inline int regs = 0, deregs = 0;
  static inline size_t reg_bytes = 0;
  static ibv_mr* reg_mr(ibv_pd* pd, void* addr, size_t len, int access) {
    ibv_mr* mr = ibv_sw_ops().reg_mr(pd, addr, len, access);
    if (mr != nullptr) ++regs, reg_bytes += len;
    return mr;
  }
  static int dereg_mr(ibv_mr* mr) {
    ++deregs;
    return ibv_sw_ops().dereg_mr(mr);
  }
  static IbvOps ops() {
    regs = deregs = 0;
    reg_bytes = 0;
    IbvOps o = ibv_sw_ops();
    o.reg_mr = reg_mr;
    o.dereg_mr = dereg_mr;
    return o;
  }
};

// Unused (kept) entries a new range overlaps or touches join its registration.
TEST_F(MrCacheTest, UnusedOverlappingAndAdjacentEntriesMergeIntoOneRegistration) {
  MrCache c(&ops_, pd_, 8, /*keep_unused=*/true);
  const int a = c.get(mem_, 2 * 4096);  // pages 0-1
  ASSERT_GE(a, 0);
  c.put(a);                                       // kept, unused
  const int b = c.get(mem_ + 2 * 4096 + 10, 50);  // page 2: touches a
  ASSERT_GE(b, 0);
  EXPECT_EQ(c.stats().merges, 1u);
  EXPECT_EQ(c.entries(), 1u);  // a went at once: b covers pages 0-2
  EXPECT_EQ(c.get(mem_ + 5, 5), b);
  EXPECT_EQ(c.get(mem_ + 3 * 4096 - 1, 1), b);
  c.put(b);
  c.put(b);
  c.put(b);
  EXPECT_EQ(c.refs(b), 0u);
}

// N sends in flight, each overlapping the one before by a page (a buffer sent piece by piece):
// every range gets an entry of its own, registering its own two pages — no union that pins the
// prefix again at every send and leaves the entry before it behind — so the table holds N entries,
// N registrations of 2 pages; each is deregistered at its own last reference, whatever the order.
TEST_F(MrCacheTest, RangesOverlappingEntriesInUseGetTheirOwnAndNeverPinThePrefixAgain) {
  const IbvOps counted = Counted::ops();
  constexpr int kN = 8;
  MrCache c(&counted, pd_, kN);
  int idx[kN];
  for (int i = 0; i < kN; ++i) {
    idx[i] = c.get(mem_ + i * 4096 + 2048, 4096);  // pages i and i + 1
    ASSERT_GE(idx[i], 0) << i;
    EXPECT_EQ(c.entries(), uint32_t(i + 1));
  }
  EXPECT_EQ(Counted::regs, kN);
  EXPECT_EQ(Counted::reg_bytes, size_t(kN) * 2 * 4096);  // the union would be 2 + 3 + ... + 9 pages
  EXPECT_EQ(c.stats().merges, 0u);
  EXPECT_EQ(c.in_use(), uint32_t(kN));  // nothing superseded and left behind
  // A resend of any of them finds its entry.
  for (int i = 0; i < kN; ++i) EXPECT_EQ(c.get(mem_ + i * 4096 + 2048, 4096), idx[i]);
  EXPECT_EQ(Counted::regs, kN);
  // Completions out of order: each entry goes at its own last reference, no earlier.
  const int order[kN] = {3, 0, 7, 1, 6, 2, 5, 4};
  for (int k = 0; k < kN; ++k) {
    const int i = idx[order[k]];
    c.put(i);
    EXPECT_EQ(Counted::deregs, k);  // one reference left
    EXPECT_EQ(c.refs(i), 1u);
    c.put(i);
    EXPECT_EQ(Counted::deregs, k + 1);
    EXPECT_EQ(c.entries(), uint32_t(kN - k - 1));
  }
  EXPECT_EQ(Counted::regs, Counted::deregs);
}

TEST_F(MrCacheTest, AFullTableOfEntriesInUseRefusesThenFreesAsWRsComplete) {
  MrCache c(&ops_, pd_, 2);
  const int a = c.get(mem_, 10);
  const int b = c.get(mem_ + 10 * 4096, 10);  // not touching a: its own entry
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  EXPECT_EQ(c.get(mem_ + 20 * 4096, 10), -ENOSPC);  // the caller copies instead
  EXPECT_EQ(c.stats().full, 1u);
  c.put(a);
  const int d = c.get(mem_ + 20 * 4096, 10);
  EXPECT_GE(d, 0);
  c.put(b);
  c.put(d);
  EXPECT_EQ(c.in_use(), 0u);
}

TEST_F(MrCacheTest, KeptEntriesAreEvictedLeastRecentlyUsedFirstAndInvalidatedOnUnmap) {
  MrCache c(&ops_, pd_, 2, /*keep_unused=*/true);
  const int a = c.get(mem_, 10);
  c.put(a);
  const int b = c.get(mem_ + 10 * 4096, 10);
  c.put(b);
  EXPECT_EQ(c.entries(), 2u);  // kept after use
  EXPECT_EQ(c.get(mem_ + 5, 5), a);  // a hit on a kept entry: a is now the most recent
  c.put(a);
  const int d = c.get(mem_ + 30 * 4096, 10);  // the table is full: b, least recently used, goes
  EXPECT_EQ(d, b);
  EXPECT_EQ(c.stats().evictions, 1u);
  c.put(d);
  EXPECT_EQ(c.get(mem_ + 5, 5), a);
  // A monitor reports page 0 unmapped while a WR still reads it: no longer found, deregistered at
  // the WR's completion; the unused d goes at once.
  EXPECT_EQ(c.invalidate(mem_, 4096), 1);
  EXPECT_EQ(c.invalidate(mem_ + 30 * 4096, 4096), 1);
  EXPECT_EQ(c.entries(), 1u);
  c.put(d);  // its slot is free: ignored
  EXPECT_EQ(c.entries(), 1u);
  c.put(a);
  EXPECT_EQ(c.entries(), 0u);
  EXPECT_EQ(c.stats().invalidations, 2u);
}

TEST_F(MrCacheTest, UnregistrableMemoryIsAnErrorTheCallerCopiesFor) {
  MrCache c(&ops_, pd_, 4);
  EXPECT_EQ(c.get(nullptr, 10), -EINVAL);  // the device refuses (ibv_reg_mr(3): EINVAL)
  EXPECT_EQ(c.stats().reg_failures, 1u);
  EXPECT_EQ(c.entries(), 0u);
}

}  // namespace
}  // namespace xmit::ibv
