// tests/dev/null_netdev_test.cc — the null device: counts, completion order, full ring, errors.
#include "stack/dev/null_netdev.h"

#include <cerrno>
#include <vector>

#include "gtest/gtest.h"

namespace xmit {
namespace {

TEST(NullNetdev, TakesCountsAndCompletesOnNextPoll) {
  NullNetdev dev({.features = {.max_segs = 3}, .ifindex = 7});
  EXPECT_EQ(dev.ifindex(), 7);
  EXPECT_EQ(dev.mac()[0], 0x02);
  uint8_t mem[300] = {};
  FrameSeg s2[] = {{mem, 100}, {mem + 100, 50}};
  FrameSeg s1[] = {{mem, 60}};
  TxFrame frames[] = {{.segs = s2, .cookie = 11}, {.segs = s1, .cookie = 12},
                      {.segs = s2, .cookie = 13}};
  std::vector<uint64_t> done;
  EXPECT_EQ(dev.poll_tx([&](uint64_t c) { done.push_back(c); }), 0);
  EXPECT_EQ(dev.xmit(frames), 3);
  EXPECT_EQ(dev.tx_inflight(), 3u);
  EXPECT_EQ(dev.poll_tx([&](uint64_t c) { done.push_back(c); }), 3);
  EXPECT_EQ(done, (std::vector<uint64_t>{11, 12, 13}));
  EXPECT_EQ(dev.poll_tx([&](uint64_t c) { done.push_back(c); }), 0);
  EXPECT_EQ(dev.stats().tx_frames, 3u);
  EXPECT_EQ(dev.stats().tx_bytes, 150u + 60 + 150);
  EXPECT_EQ(dev.stats().tx_segs, 5u);
  EXPECT_EQ(dev.poll_rx(64, [](const RxFrame&) { return false; }), 0);
}

TEST(NullNetdev, FullRingTakesWhatFits) {
  NullNetdev dev({.tx_depth = 4});
  uint8_t mem[64] = {};
  FrameSeg seg[] = {{mem, 64}};
  std::vector<TxFrame> frames(6, TxFrame{.segs = seg});
  for (int i = 0; i < 6; ++i) frames[i].cookie = i;
  EXPECT_EQ(dev.xmit(frames), 4);
  EXPECT_EQ(dev.xmit(absl::MakeConstSpan(frames.data() + 4, 2)), 0);
  EXPECT_EQ(dev.stats().tx_full, 2u);
  std::vector<uint64_t> done;
  dev.poll_tx([&](uint64_t c) { done.push_back(c); });
  EXPECT_EQ(dev.xmit(absl::MakeConstSpan(frames.data() + 4, 2)), 2);
  dev.poll_tx([&](uint64_t c) { done.push_back(c); });
  EXPECT_EQ(done, (std::vector<uint64_t>{0, 1, 2, 3, 4, 5}));
}

TEST(NullNetdev, BadFrameRefusedFirstEndsBurstLater) {
  NullNetdev dev;
  uint8_t mem[2000] = {};
  FrameSeg ok[] = {{mem, 1514}};
  FrameSeg big[] = {{mem, 1515}};
  TxFrame good{.segs = ok};
  TxFrame too_big{.segs = big};
  TxFrame csum{.segs = ok, .flags = kTxL4Csum};  // device has no l4_csum
  TxFrame burst[] = {good, too_big, good};
  EXPECT_EQ(dev.xmit(burst), 1);
  EXPECT_EQ(dev.xmit(absl::MakeConstSpan(burst + 1, 2)), -EMSGSIZE);
  EXPECT_EQ(dev.xmit({&csum, 1}), -EINVAL);
  EXPECT_EQ(dev.stats().tx_frames, 1u);
  EXPECT_EQ(dev.stats().tx_errors, 3u);
}

TEST(NullNetdev, Steering) {
  NullNetdev dev({.flow_table_size = 1});
  EXPECT_EQ(dev.steer({.protocol = 17, .local_port = 1}), 0);
  EXPECT_EQ(dev.steer({.protocol = 17, .local_port = 1}), -EEXIST);
  EXPECT_EQ(dev.steer({.protocol = 17, .local_port = 2}), -ENOSPC);
  EXPECT_EQ(dev.unsteer({.protocol = 17, .local_port = 2}), -ENOENT);
  EXPECT_EQ(dev.unsteer({.protocol = 17, .local_port = 1}), 0);
}

}  // namespace
}  // namespace xmit
