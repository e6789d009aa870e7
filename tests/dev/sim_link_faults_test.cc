// tests/dev/sim_link_faults_test.cc — the seeded fault injector: rates near the configured
// probabilities, every outcome reproducible for a seed, reordering and duplication semantics.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "stack/dev/sim_link.h"
#include "tests/dev/test_frames.h"

namespace xmit {
namespace {

struct Trace {
  std::vector<uint32_t> ids;  // frame numbers in the order they arrived
  SimPipeStats stats;
};

constexpr uint32_t kFrames = 5000;

// Sends kFrames frames a->b in bursts of 50, one burst per 100 ns, and collects what b receives.
Trace pump(uint32_t seed, const SimFaults& faults) {
  SimLinkConfig cfg{.tx_depth = 64, .rx_depth = 1024, .steering = false, .faults_ab = faults,
                    .seed = seed};
  SimLink link(cfg);
  Trace t;
  auto collect = [&](const RxFrame& f) {
    // The frame number rides in the IP id and the first two payload bytes.
    t.ids.push_back(uint32_t{f.data[18]} << 8 | f.data[19] | uint32_t{f.data[42]} << 16);
    return false;
  };
  uint64_t now = 0;
  for (uint32_t i = 0; i < kFrames; now += 100) {
    for (uint32_t k = 0; k < 50 && i < kFrames; ++k, ++i) {
      auto f = testing::make_frame({.payload_len = 8, .payload_seed = 0,
                                    .ip_id = static_cast<uint16_t>(i)});
      f[42] = static_cast<uint8_t>(i >> 16);
      const FrameSeg seg{f.data(), static_cast<uint32_t>(f.size())};
      const TxFrame tx{.segs = {&seg, 1}, .cookie = i};
      EXPECT_EQ(link.a().xmit({&tx, 1}), 1);
    }
    link.run(now);
    link.a().poll_tx([](uint64_t) {});
    link.b().poll_rx(1 << 20, collect);
  }
  link.run(now + 1'000'000);  // land the stragglers
  link.b().poll_rx(1 << 20, collect);
  t.stats = link.a().tx_stats();
  return t;
}

void expect_near(uint64_t got, double p, const char* what) {
  // Within 5 standard deviations of the binomial mean: fails only on a wrong rate.
  const double mean = kFrames * p, sd = std::sqrt(kFrames * p * (1 - p));
  EXPECT_GT(static_cast<double>(got), mean - 5 * sd) << what;
  EXPECT_LT(static_cast<double>(got), mean + 5 * sd) << what;
}

TEST(SimLinkFaults, NoFaultsIsInOrderAndComplete) {
  Trace t = pump(1, {});
  ASSERT_EQ(t.ids.size(), kFrames);
  for (uint32_t i = 0; i < kFrames; ++i) ASSERT_EQ(t.ids[i], i);
}

TEST(SimLinkFaults, DropRate) {
  Trace t = pump(7, {.drop = 0.2});
  expect_near(t.stats.dropped, 0.2, "dropped");
  EXPECT_EQ(t.ids.size() + t.stats.dropped, kFrames);
  EXPECT_TRUE(std::is_sorted(t.ids.begin(), t.ids.end()));
  EXPECT_EQ(t.stats.wire_frames, kFrames);
}

TEST(SimLinkFaults, DuplicatesArriveBackToBack) {
  Trace t = pump(7, {.duplicate = 0.1});
  expect_near(t.stats.duplicated, 0.1, "duplicated");
  EXPECT_EQ(t.ids.size(), kFrames + t.stats.duplicated);
  uint64_t pairs = 0;
  for (size_t i = 1; i < t.ids.size(); ++i) {
    ASSERT_GE(t.ids[i], t.ids[i - 1]);
    pairs += t.ids[i] == t.ids[i - 1];
  }
  EXPECT_EQ(pairs, t.stats.duplicated);
}

TEST(SimLinkFaults, ReorderedFramesArriveLateButAllArrive) {
  // 250 ns late: a reordered frame lands behind the next two or three bursts.
  Trace t = pump(7, {.reorder = 0.1, .reorder_delay_ns = 250});
  expect_near(t.stats.reordered, 0.1, "reordered");
  ASSERT_EQ(t.ids.size(), kFrames);
  // A frame is late if a higher-numbered frame arrived before it.
  uint64_t late = 0;
  uint32_t max_seen = 0;
  for (size_t i = 0; i < t.ids.size(); ++i) {
    if (i != 0 && t.ids[i] < max_seen) ++late;
    max_seen = std::max(max_seen, t.ids[i]);
  }
  EXPECT_GT(late, t.stats.reordered / 2);
  EXPECT_LE(late, t.stats.reordered);
  std::vector<uint32_t> sorted = t.ids;
  std::sort(sorted.begin(), sorted.end());
  for (uint32_t i = 0; i < kFrames; ++i) ASSERT_EQ(sorted[i], i);
}

TEST(SimLinkFaults, SameSeedSameOutcomeOtherSeedOther) {
  const SimFaults all{.drop = 0.1, .reorder = 0.1, .duplicate = 0.1, .reorder_delay_ns = 250};
  Trace x = pump(42, all), y = pump(42, all), z = pump(43, all);
  EXPECT_EQ(x.ids, y.ids);
  EXPECT_EQ(x.stats.dropped, y.stats.dropped);
  EXPECT_EQ(x.stats.duplicated, y.stats.duplicated);
  EXPECT_EQ(x.stats.reordered, y.stats.reordered);
  EXPECT_NE(x.ids, z.ids);
  // The fate of a frame depends on the seed and its position only, so the drop pattern is the
  // same with and without the other faults switched on.
  Trace d = pump(42, {.drop = 0.1});
  EXPECT_EQ(d.stats.dropped, x.stats.dropped);
}

TEST(SimLinkFaults, DirectionsDrawFromDifferentStreams) {
  SimLinkConfig cfg{.steering = false, .faults_ab = {.drop = 0.5}, .faults_ba = {.drop = 0.5}};
  SimLink link(cfg);
  auto f = testing::make_frame({});
  const FrameSeg seg{f.data(), static_cast<uint32_t>(f.size())};
  const TxFrame tx{.segs = {&seg, 1}};
  std::vector<bool> ab, ba;
  for (int i = 0; i < 64; ++i) {
    ASSERT_EQ(link.a().xmit({&tx, 1}), 1);
    ASSERT_EQ(link.b().xmit({&tx, 1}), 1);
    link.run(0);
    link.a().poll_tx([](uint64_t) {});
    link.b().poll_tx([](uint64_t) {});
    ab.push_back(link.b().poll_rx(8, [](const RxFrame&) { return false; }) == 1);
    ba.push_back(link.a().poll_rx(8, [](const RxFrame&) { return false; }) == 1);
  }
  EXPECT_NE(ab, ba);
}

}  // namespace
}  // namespace xmit
