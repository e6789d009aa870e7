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

TEST_F(MrCacheTest, OverlappingAndAdjacentRangesMergeIntoOneRegistration) {
  MrCache c(&ops_, pd_, 8);
  const int a = c.get(mem_, 2 * 4096);            // pages 0-1
  const int b = c.get(mem_ + 2 * 4096 + 10, 50);  // page 2: touches a
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  EXPECT_NE(a, b);
  EXPECT_EQ(c.stats().merges, 1u);
  // a is superseded (its WR keeps its lkey) and b covers pages 0-2: a lookup in page 0 finds b.
  EXPECT_EQ(c.get(mem_ + 5, 5), b);
  EXPECT_EQ(c.entries(), 2u);
  c.put(a);
  EXPECT_EQ(c.entries(), 1u);  // the superseded entry goes at its last reference
  EXPECT_EQ(c.get(mem_ + 3 * 4096 - 1, 1), b);
  c.put(b);
  c.put(b);
  c.put(b);
  EXPECT_EQ(c.entries(), 0u);
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
