// tests/stack/skb_alloc_test.cc — the fast path allocates nothing: with global operator new replaced
// by a counting one (count_new.cc), N alloc/put/push/frag/clone/free cycles after warm-up count 0.
#include <cstring>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "stack/skb/pool.h"
#include "stack/skb/sk_buff.h"
#include "stack/skb/skb_frame.h"
#include "tests/stack/count_new.h"

namespace xmit {
namespace {

int g_completions = 0;
void on_complete(ubuf_info*, bool) { ++g_completions; }

// One TCP-like transmission: build, attach a pool fragment and a zerocopy fragment, clone for
// the device, hand it the segments, complete, free. Returns false on any failure.
bool cycle(SkbPool* skbs, BufPool* bufs, ubuf_info* uarg, uint8_t* user) {
  sk_buff* skb = skbs->alloc_skb();
  if (skb == nullptr || skb_reserve(skb, 128) != 0) return false;
  uint8_t* p = skb_put(skb, 64);
  if (p == nullptr) return false;
  std::memset(p, 0xAB, 64);
  uint8_t* b = bufs->alloc();
  if (b == nullptr) return false;
  std::memset(b, 0xCD, 1000);
  if (skb_append_frag(skb, skb_frag_pool(bufs, b, 1000)) != 0) return false;
  net_zcopy_get(uarg);
  if (skb_append_frag(skb, skb_frag_user(user, 4000, uarg)) != 0) return false;
  sk_buff* clone = skb_clone(skb);
  if (clone == nullptr) return false;
  if (skb_push(clone, 20) == nullptr || skb_push(clone, 14) == nullptr) return false;
  sk_buff* copy = pskb_copy(clone);  // a retransmission while the first is still in flight
  if (copy == nullptr) return false;
  FrameSeg sg[MAX_SKB_FRAGS + 1];
  TxFrame tx;
  if (skb_to_txframe(copy, absl::MakeSpan(sg), 1, &tx) != 3) return false;
  uint8_t lin[128];
  if (skb_copy_bits(copy, 0, lin, sizeof lin) != 0) return false;
  kfree_skb(clone);
  kfree_skb(copy);
  kfree_skb(skb);
  return true;
}

TEST(SkbAlloc, NoHeapAllocationAfterWarmup) {
  std::unique_ptr<BufPool> bufs;
  std::unique_ptr<SkbPool> skbs;
  ASSERT_EQ(BufPool::create(256, 2048, &bufs), 0);
  ASSERT_EQ(SkbPool::create(64, bufs.get(), &skbs), 0);
  std::vector<uint8_t> user(4096, 0x11);
  ubuf_info uarg;
  ubuf_info_init(&uarg, &on_complete, nullptr);

  size_t construction = testing_support::operator_new_calls();
  EXPECT_GT(construction, 0u);  // the counter works: create() allocated its tables
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(cycle(skbs.get(), bufs.get(), &uarg, user.data()));

  constexpr int kCycles = 10000;
  size_t before = testing_support::operator_new_calls();
  bool ok = true;
  for (int i = 0; i < kCycles && ok; ++i) ok = cycle(skbs.get(), bufs.get(), &uarg, user.data());
  size_t allocations = testing_support::operator_new_calls() - before;
  ASSERT_TRUE(ok);
  EXPECT_EQ(allocations, 0u) << "operator new calls over " << kCycles << " cycles";

  EXPECT_EQ(g_completions, 0);
  net_zcopy_put(&uarg);
  EXPECT_EQ(g_completions, 1);
  EXPECT_EQ(bufs->nr_free(), bufs->nr_bufs());
  EXPECT_EQ(skbs->nr_free(), skbs->nr_skbs());
}

TEST(SkbAlloc, CounterSeesAllocations) {
  size_t before = testing_support::operator_new_calls();
  auto v = std::make_unique<std::vector<int>>(100);
  EXPECT_GE(testing_support::operator_new_calls() - before, 2u);
}

}  // namespace
}  // namespace xmit
