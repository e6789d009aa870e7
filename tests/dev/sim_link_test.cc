// tests/dev/sim_link_test.cc — the in-memory link: byte-exact delivery, queues, completions,
// receive buffers, latency, steering, and the emulated checksum and TSO offloads.
#include "stack/dev/sim_link.h"

#include <arpa/inet.h>

#include <cerrno>
#include <vector>

#include "gtest/gtest.h"
#include "tests/dev/test_frames.h"

namespace xmit {
namespace {

using Bytes = std::vector<uint8_t>;
using testing::L4Spec;
using testing::make_frame;

std::vector<Bytes> rx_all(Netdev& dev) {
  std::vector<Bytes> out;
  dev.poll_rx(1 << 20, [&](const RxFrame& f) {
    out.emplace_back(f.data, f.data + f.len);
    return false;
  });
  return out;
}

std::vector<Bytes> kernel_all(SimEndpoint& dev) {
  std::vector<Bytes> out;
  dev.poll_kernel(1 << 20, [&](const RxFrame& f) { out.emplace_back(f.data, f.data + f.len); });
  return out;
}

std::vector<uint64_t> reap(Netdev& dev) {
  std::vector<uint64_t> done;
  dev.poll_tx([&](uint64_t c) { done.push_back(c); });
  return done;
}

int send(Netdev& dev, const Bytes& f, uint64_t cookie = 0, uint32_t flags = 0) {
  const FrameSeg seg{f.data(), static_cast<uint32_t>(f.size())};
  const uint16_t l4 = static_cast<uint16_t>(testing::l4_offset());
  const TxFrame tx{.segs = {&seg, 1}, .flags = flags, .csum_start = l4,
                   .csum_offset = static_cast<uint16_t>(testing::l4_csum_offset(f[23])),
                   .cookie = cookie};
  return dev.xmit({&tx, 1});
}

SimLinkConfig unsteered() { return {.steering = false}; }

TEST(SimLink, DeliversMultiSegmentFramesByteExactBothWays) {
  SimLink link(unsteered());
  const Bytes f1 = make_frame({.payload_len = 300, .payload_seed = 1});
  const Bytes f2 = make_frame({.protocol = 6, .payload_len = 1000, .payload_seed = 2});
  // Segments in separate buffers with 0xFF guards around them, uneven cut points.
  std::vector<Bytes> pieces = {Bytes(f1.begin(), f1.begin() + 14), Bytes(f1.begin() + 14, f1.begin() + 43),
                               Bytes(f1.begin() + 43, f1.end())};
  std::vector<FrameSeg> segs;
  std::vector<Bytes> guarded;
  for (const Bytes& p : pieces) {
    Bytes g(p.size() + 2, 0xff);
    std::copy(p.begin(), p.end(), g.begin() + 1);
    guarded.push_back(std::move(g));
  }
  for (const Bytes& g : guarded) segs.push_back({g.data() + 1, static_cast<uint32_t>(g.size() - 2)});
  const FrameSeg seg2[] = {{f2.data(), 1}, {f2.data() + 1, static_cast<uint32_t>(f2.size() - 1)}};
  const TxFrame frames[] = {{.segs = segs, .cookie = 1}, {.segs = seg2, .cookie = 2}};

  ASSERT_EQ(link.a().xmit(frames), 2);
  EXPECT_TRUE(rx_all(link.b()).empty());  // nothing leaves before run()
  EXPECT_EQ(link.run(0), 2);
  EXPECT_EQ(rx_all(link.b()), (std::vector<Bytes>{f1, f2}));
  EXPECT_TRUE(rx_all(link.a()).empty());

  ASSERT_EQ(send(link.b(), f2, 9), 1);
  link.run(0);
  EXPECT_EQ(rx_all(link.a()), (std::vector<Bytes>{f2}));
  EXPECT_EQ(link.a().tx_stats().tx_frames, 2u);
  EXPECT_EQ(link.a().tx_stats().tx_bytes, f1.size() + f2.size());
  EXPECT_EQ(link.b().rx_stats().rx_frames, 2u);
  EXPECT_EQ(link.a().rx_stats().rx_frames, 1u);
  EXPECT_EQ(&link.a().tx_stats(), &link.b().rx_stats());
}

TEST(SimLink, FullQueueTakesWhatFitsUntilCompletionsAreReaped) {
  SimLinkConfig cfg = unsteered();
  cfg.tx_depth = 4;
  SimLink link(cfg);
  const Bytes f = make_frame({});
  const FrameSeg seg{f.data(), static_cast<uint32_t>(f.size())};
  std::vector<TxFrame> frames(6, TxFrame{.segs = {&seg, 1}});
  for (int i = 0; i < 6; ++i) frames[i].cookie = 100 + i;
  EXPECT_EQ(link.a().xmit(frames), 4);
  EXPECT_EQ(link.a().xmit(absl::MakeConstSpan(frames.data() + 4, 2)), 0);
  link.run(0);
  // On the wire but not reaped: the slots are still the caller's to reap.
  EXPECT_EQ(link.a().xmit(absl::MakeConstSpan(frames.data() + 4, 2)), 0);
  EXPECT_EQ(reap(link.a()), (std::vector<uint64_t>{100, 101, 102, 103}));
  EXPECT_EQ(link.a().xmit(absl::MakeConstSpan(frames.data() + 4, 2)), 2);
  link.run(0);
  EXPECT_EQ(reap(link.a()), (std::vector<uint64_t>{104, 105}));
  EXPECT_EQ(rx_all(link.b()).size(), 6u);
  EXPECT_EQ(link.a().tx_stats().tx_full, 3u);
}

TEST(SimLink, CompletionsInPostingOrderIncludingDroppedFrames) {
  SimLinkConfig cfg = unsteered();
  cfg.faults_ab.drop = 0.5;
  SimLink link(cfg);
  const Bytes f = make_frame({});
  std::vector<uint64_t> want, got;
  uint64_t cookie = 1;
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < round % 4 + 1; ++i, ++cookie) {
      ASSERT_EQ(send(link.a(), f, cookie * 7), 1);
      want.push_back(cookie * 7);
    }
    if (round % 3 == 0) {
      EXPECT_TRUE(reap(link.a()).empty());  // not before run()
    }
    link.run(round);
    for (uint64_t c : reap(link.a())) got.push_back(c);
  }
  EXPECT_EQ(got, want);
  EXPECT_GT(link.a().tx_stats().dropped, 0u);
}

TEST(SimLink, BadFrameErrors) {
  SimLink link(unsteered());
  Bytes big(1515, 0);
  EXPECT_EQ(send(link.a(), big), -EMSGSIZE);
  const Bytes f = make_frame({});
  EXPECT_EQ(send(link.a(), f, 0, kTxL4Csum), -EINVAL);  // not offered by default
  EXPECT_EQ(link.a().tx_stats().tx_errors, 2u);
  EXPECT_EQ(link.a().tx_stats().tx_frames, 0u);
}

TEST(SimLink, KeptBuffersAndReceiveBufferExhaustion) {
  SimLinkConfig cfg = unsteered();
  cfg.rx_buffers = 2;
  SimLink link(cfg);
  const Bytes f = make_frame({});
  std::vector<uint64_t> kept;
  auto keep = [&](const RxFrame& r) {
    kept.push_back(r.buf_id);
    return true;
  };
  ASSERT_EQ(send(link.a(), f), 1);
  ASSERT_EQ(send(link.a(), f), 1);
  link.run(0);
  EXPECT_EQ(link.b().poll_rx(8, keep), 2);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_NE(kept[0], kept[1]);
  ASSERT_EQ(send(link.a(), f), 1);
  link.run(0);  // both buffers are held by the caller
  EXPECT_EQ(link.a().tx_stats().rx_no_buffer, 1u);
  EXPECT_EQ(link.b().poll_rx(8, keep), 0);
  link.b().rx_recycle(kept[0]);
  link.b().rx_recycle(kept[0]);  // twice: refused and counted
  link.b().rx_recycle(12345);
  EXPECT_EQ(link.b().rx_stats().bad_recycle, 2u);
  ASSERT_EQ(send(link.a(), f), 1);
  link.run(0);
  EXPECT_EQ(rx_all(link.b()), (std::vector<Bytes>{f}));
}

TEST(SimLink, RxQueueOverflow) {
  SimLinkConfig cfg = unsteered();
  cfg.rx_depth = 2;
  SimLink link(cfg);
  const Bytes f = make_frame({});
  for (int i = 0; i < 3; ++i) ASSERT_EQ(send(link.a(), f), 1);
  link.run(0);
  EXPECT_EQ(link.b().rx_stats().rx_overflow, 1u);
  EXPECT_EQ(rx_all(link.b()).size(), 2u);
}

TEST(SimLink, LatencyHoldsFramesOnTheWire) {
  SimLinkConfig cfg = unsteered();
  cfg.latency_ns = 1000;
  SimLink link(cfg);
  ASSERT_EQ(send(link.a(), make_frame({}), 5), 1);
  EXPECT_EQ(link.run(10), 0);
  EXPECT_EQ(reap(link.a()), (std::vector<uint64_t>{5}));  // sent, though not arrived
  EXPECT_EQ(link.in_flight(), 1u);
  EXPECT_EQ(link.run(1009), 0);
  EXPECT_EQ(link.run(5), 0);  // time does not go back
  EXPECT_EQ(link.now(), 1009u);
  EXPECT_EQ(link.run(1010), 1);
  EXPECT_EQ(rx_all(link.b()).size(), 1u);
}

TEST(SimLink, SteeredFlowsToQueueTheRestToKernel) {
  SimLink link({});  // steering on
  const FlowKey udp2000{.protocol = 17, .local_port = htons(2000)};
  ASSERT_EQ(link.b().steer(udp2000), 0);
  EXPECT_EQ(link.b().steer(udp2000), -EEXIST);
  const Bytes mine = make_frame({.dport = 2000});
  const Bytes other_port = make_frame({.dport = 3000});
  const Bytes tcp_same_port = make_frame({.protocol = 6, .dport = 2000});
  Bytes arp = make_frame({});
  arp[13] = 0x06;
  for (const Bytes* f : std::initializer_list<const Bytes*>{&mine, &other_port, &tcp_same_port, &arp}) ASSERT_EQ(send(link.a(), *f), 1);
  link.run(0);
  EXPECT_EQ(rx_all(link.b()), (std::vector<Bytes>{mine}));
  EXPECT_EQ(kernel_all(link.b()), (std::vector<Bytes>{other_port, tcp_same_port, arp}));
  EXPECT_EQ(link.b().rx_stats().to_kernel, 3u);
  // Steering is per receiving endpoint: a's table is empty.
  ASSERT_EQ(send(link.b(), mine), 1);
  link.run(0);
  EXPECT_TRUE(rx_all(link.a()).empty());
  EXPECT_EQ(kernel_all(link.a()).size(), 1u);

  ASSERT_EQ(link.b().unsteer(udp2000), 0);
  EXPECT_EQ(link.b().unsteer(udp2000), -ENOENT);
  ASSERT_EQ(send(link.a(), mine), 1);
  link.run(0);
  EXPECT_TRUE(rx_all(link.b()).empty());
  EXPECT_EQ(kernel_all(link.b()), (std::vector<Bytes>{mine}));
}

TEST(SimLink, KernelQueueOverflowIsCounted) {
  SimLinkConfig cfg;
  cfg.kernel_depth = 1;
  SimLink link(cfg);
  const Bytes f = make_frame({});
  ASSERT_EQ(send(link.a(), f), 1);
  ASSERT_EQ(send(link.a(), f), 1);
  link.run(0);
  EXPECT_EQ(link.b().rx_stats().to_kernel, 2u);
  EXPECT_EQ(link.b().rx_stats().kernel_overflow, 1u);
  EXPECT_EQ(kernel_all(link.b()).size(), 1u);
}

class SimLinkCsumTest : public ::testing::TestWithParam<uint8_t> {};

TEST_P(SimLinkCsumTest, FinishesOffloadedChecksumsLikeHardware) {
  SimLinkConfig cfg = unsteered();
  cfg.features.ip_csum = true;
  cfg.features.l4_csum = true;
  SimLink link(cfg);
  EXPECT_TRUE(link.a().features().l4_csum);
  const uint8_t proto = GetParam();
  const Bytes partial = make_frame({.protocol = proto, .payload_len = 777, .partial_csum = true,
                                    .ip_csum_zero = true});
  const Bytes full = make_frame({.protocol = proto, .payload_len = 777});
  ASSERT_NE(partial, full);
  ASSERT_EQ(send(link.a(), partial, 1, kTxIpCsum | kTxL4Csum), 1);
  ASSERT_EQ(send(link.a(), partial, 2, 0), 1);  // not asked for: untouched
  ASSERT_EQ(send(link.a(), full, 3, 0), 1);
  link.run(0);
  EXPECT_EQ(rx_all(link.b()), (std::vector<Bytes>{full, partial, full}));
}

INSTANTIATE_TEST_SUITE_P(Proto, SimLinkCsumTest, ::testing::Values(6, 17),
                         [](const auto& info) { return info.param == 6 ? "Tcp" : "Udp"; });

TEST(SimLink, TsoFramesArriveAsSegments) {
  SimLinkConfig cfg = unsteered();
  cfg.features.l4_csum = true;
  cfg.features.tso = true;
  cfg.features.tso_max_size = 16384;
  SimLink link(cfg);
  const Bytes big = make_frame({.protocol = 6, .payload_len = 4000, .seq = 5000, .partial_csum = true,
                                .ip_csum_zero = true});
  const FrameSeg seg{big.data(), static_cast<uint32_t>(big.size())};
  const TxFrame tx{.segs = {&seg, 1}, .flags = kTxTso | kTxL4Csum, .csum_start = 34,
                   .csum_offset = 16, .gso_size = 1448, .cookie = 77};
  ASSERT_EQ(link.a().xmit({&tx, 1}), 1);
  link.run(0);
  EXPECT_EQ(reap(link.a()), (std::vector<uint64_t>{77}));
  auto got = rx_all(link.b());
  ASSERT_EQ(got.size(), 3u);
  const uint32_t sizes[] = {1448, 1448, 4000 - 2 * 1448};
  uint32_t seq = 5000;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(got[i].size(), 54 + sizes[i]);
    EXPECT_EQ(testing::be32_at(got[i], 38), seq);
    EXPECT_TRUE(testing::ipv4_csum_ok(got[i]));
    EXPECT_TRUE(testing::l4_csum_ok(got[i]));
    seq += sizes[i];
  }
  EXPECT_EQ(link.a().tx_stats().tx_frames, 1u);
  EXPECT_EQ(link.a().tx_stats().wire_frames, 3u);
}

}  // namespace
}  // namespace xmit
