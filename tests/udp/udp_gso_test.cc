// tests/udp/udp_gso_test.cc — UDP_SEGMENT (per socket with setsockopt, per call with a cmsg) on a
// device whose TX queue holds fewer frames than the datagram has segments: every segment reaches b,
// in order, and the send reports the whole length with no SndbufErrors. kernel: the qdisc holds the
// GSO skb and requeues the segments the driver refused (sch_direct_xmit() -> dev_requeue_skb()).
#include <netinet/udp.h>

#include <cstring>
#include <vector>

#include "tests/udp/udp_bed.h"

namespace xmit {
namespace {

using namespace udp_testing;  // NOLINT

constexpr uint32_t kDepth = 16;

class UdpGsoTest : public UdpSockTest, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    cfg.tx_depth = kDepth;
    UdpSockTest::SetUp();
  }
  // One send of `p` cut at `gso`: UDP_SEGMENT set on the socket, or (param true) a cmsg.
  ssize_t send_gso(const std::vector<uint8_t>& p, uint16_t gso) {
    if (!GetParam()) {
      int v = gso;
      EXPECT_EQ(sk->setsockopt(SOL_UDP, UDP_SEGMENT, &v, sizeof v), 0);
      return sendto(p, kB, 9000);
    }
    alignas(cmsghdr) uint8_t ctl[CMSG_SPACE(sizeof(uint16_t))] = {};
    auto* c = reinterpret_cast<cmsghdr*>(ctl);
    *c = cmsghdr{.cmsg_len = CMSG_LEN(sizeof gso), .cmsg_level = SOL_UDP, .cmsg_type = UDP_SEGMENT};
    std::memcpy(CMSG_DATA(c), &gso, sizeof gso);
    return sendto(p, kB, 9000, 0, ctl, sizeof ctl);
  }
  // b's frames until nothing waits in the stack or on the device.
  std::vector<std::vector<uint8_t>> drain() {
    std::vector<std::vector<uint8_t>> out;
    for (int i = 0; i < 64; ++i) {
      for (auto& f : at_b()) out.push_back(std::move(f));
      std::lock_guard<StackMutex> g(stack->mu());
      if (stack->tx_backlog() == 0 && stack->tx_in_flight == 0) break;
      stack->poll(now);  // the completions, then the backlog to the device
    }
    return out;
  }
};

TEST_P(UdpGsoTest, ShortDeviceQueueLosesNoSegment) {
  make();
  std::vector<uint8_t> p(40 * 1000);
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>(i * 7 + (i >> 10));
  ASSERT_EQ(send_gso(p, 1000), static_cast<ssize_t>(p.size()));
  {
    std::lock_guard<StackMutex> g(stack->mu());
    EXPECT_EQ(stack->tx_backlog(), 40 - kDepth);  // the device took 16, the rest waits
  }
  auto frames = drain();
  ASSERT_EQ(frames.size(), 40u);
  for (size_t s = 0; s < frames.size(); ++s) {
    const auto& f = frames[s];
    ASSERT_EQ(f.size(), 14u + 20 + 8 + 1000) << "segment " << s;
    ASSERT_TRUE(std::equal(f.begin() + 42, f.end(), p.begin() + static_cast<long>(s * 1000))) << "segment " << s;
  }
  std::lock_guard<StackMutex> g(stack->mu());
  EXPECT_EQ(stack->tx_drops, 0u);
  EXPECT_EQ(stack->udp_mib.SndbufErrors, 0u);
  EXPECT_EQ(stack->udp_mib.OutDatagrams, 1u);
}

INSTANTIATE_TEST_SUITE_P(Gso, UdpGsoTest, ::testing::Values(false, true),
                         [](const auto& info) { return std::string(info.param ? "Cmsg" : "Setsockopt"); });

}  // namespace
}  // namespace xmit
