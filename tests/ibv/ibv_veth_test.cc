// tests/ibv/ibv_veth_test.cc — IbvNetdev on the software verbs device carried by AF_PACKET over a
// namespace bed's veth (root; suite 'e2e'): UDP frames it sends reach a kernel socket in namespace
// b byte-exact; datagrams b sends to a steered port come back through the queue and, as with a
// NIC's steering, not to namespace a's kernel (the device's tcx divert program); others go to the
// kernel only.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include "tests/xdp/bed.h"
#include "verbs/ibv/ibv_netdev.h"
#include "verbs/ibv/sw/sw_verbs.h"
#include "verbs/xdp/xdp_udp_frame.h"

namespace xmit::ibv {
namespace {

using xdp::testing::BedTest;
constexpr char kAddrA[] = "198.18.0.1";
constexpr char kAddrB[] = "198.18.0.2";
constexpr char kDev[] = "xmit_sw_veth";

uint32_t inaddr(const char* s) {
  uint32_t a = 0;
  inet_pton(AF_INET, s, &a);
  return a;
}

class IbvVethTest : public BedTest {
 protected:
  void SetUp() override {
    BedTest::SetUp();
    if (HasFatalFailure()) return;
    sw::SwDeviceConfig cfg;
    cfg.name = kDev;
    cfg.ifname = if_a_;
    cfg.carrier = sw::SwCarrier::kPacket;
    ASSERT_EQ(sw::sw_add_device(cfg), 0);
    std::string why;
    // The AF_PACKET socket opens with the QP, in this thread's namespace (a).
    ASSERT_EQ(IbvNetdev::open({.ifname = if_a_, .ops = &ibv_sw_ops()}, &dev_, &why), 0) << why;
  }
  void TearDown() override {
    dev_.reset();
    EXPECT_EQ(sw::sw_stats(kDev).live_objects, 0u);
    EXPECT_EQ(sw::sw_remove_all_devices(), 0);
    BedTest::TearDown();
  }
  std::unique_ptr<IbvNetdev> dev_;
};

TEST_F(IbvVethTest, UdpFramesReachTheKernelPeer) {
  int sb = udp_socket_in(ns_b_, kAddrB, 9000);
  ASSERT_GE(sb, 0);
  xdp::UdpEndpoints e;
  memcpy(e.src_mac, dev_->mac(), 6);
  ASSERT_TRUE(xdp::parse_mac(bed_["XMIT_MAC_B"], e.dst_mac));
  e.saddr = inaddr(kAddrA);
  e.daddr = inaddr(kAddrB);
  e.sport = 40000;
  e.dport = 9000;
  constexpr int kFrames = 20;  // more than inline, in place and copied need
  std::vector<std::vector<uint8_t>> frames;
  std::vector<std::string> payloads;
  for (int i = 0; i < kFrames; ++i) {
    payloads.push_back("verbs frame " + std::to_string(i) + std::string(size_t(i) * 61, char('a' + i % 26)));
    frames.push_back(xdp::build_udp_frame(e, payloads.back(), uint16_t(i)));
  }
  std::vector<FrameSeg> segs(kFrames);
  std::vector<TxFrame> tx;
  for (int i = 0; i < kFrames; ++i) {
    segs[size_t(i)] = {frames[size_t(i)].data(), uint32_t(frames[size_t(i)].size())};
    tx.push_back({.segs = absl::MakeConstSpan(&segs[size_t(i)], 1), .cookie = uint64_t(i)});
  }
  ASSERT_EQ(dev_->xmit(absl::MakeConstSpan(tx)), kFrames);
  std::set<uint64_t> cookies;
  EXPECT_TRUE(eventually([&] {
    dev_->poll_tx([&](uint64_t c) { cookies.insert(c); });
    return cookies.size() == kFrames;
  }));
  std::multiset<std::string> got;
  for (int i = 0; i < kFrames; ++i) {
    pollfd p{sb, POLLIN, 0};
    if (poll(&p, 1, 10000) != 1) break;
    char buf[4096];
    ssize_t n = recv(sb, buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    got.insert(std::string(buf, size_t(n)));
  }
  EXPECT_EQ(got, std::multiset<std::string>(payloads.begin(), payloads.end()));
  EXPECT_GT(dev_->stats().tx_inline, 0u);
  EXPECT_GT(dev_->stats().tx_copied, 0u);
  EXPECT_EQ(sw::sw_stats(kDev).tx_frames, uint64_t(kFrames));
  close(sb);
}

TEST_F(IbvVethTest, SteeredDatagramsArriveAtTheQueueOthersDoNot) {
  ASSERT_EQ(dev_->steer({.protocol = IPPROTO_UDP, .local_addr = inaddr(kAddrA), .local_port = htons(7000)}), 0);
  int s1 = udp_socket_in(ns_b_, kAddrB, 0);
  ASSERT_GE(s1, 0);
  auto send_to = [&](uint16_t port, const std::string& payload) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    inet_pton(AF_INET, kAddrA, &to.sin_addr);
    ASSERT_EQ(sendto(s1, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
              ssize_t(payload.size()));
  };
  EXPECT_EQ(sw::sw_stats(kDev).divert_active, 1u) << "tcx ingress program not attached";
  EXPECT_EQ(sw::sw_stats(kDev).diverted_rules, 1u);
  auto before = snmp_in(ns_a_);
  send_to(7001, "not steered");
  for (int i = 0; i < 5; ++i) send_to(7000, "steered " + std::to_string(i));
  // The queue's wait fd (the completion channel) wakes for them.
  pollfd p{dev_->wait_fd(), POLLIN, 0};
  ASSERT_GE(p.fd, 0);
  EXPECT_EQ(poll(&p, 1, 10000), 1);
  std::multiset<std::string> got;
  std::multiset<uint16_t> ports;
  EXPECT_TRUE(eventually([&] {
    dev_->poll_rx(64, [&](const RxFrame& f) {
      xdp::ParsedUdp u;
      if (xdp::parse_udp_frame(f.data, f.len, &u)) {
        got.insert(u.payload);
        ports.insert(u.dport);
      }
      return false;
    });
    return got.size() >= 5;
  }));
  std::multiset<std::string> want;
  for (int i = 0; i < 5; ++i) want.insert("steered " + std::to_string(i));
  EXPECT_EQ(got, want);
  EXPECT_EQ(ports.count(7001), 0u);
  EXPECT_GE(sw::sw_stats(kDev).rx_to_kernel, 1u);  // 7001 and the ARP exchange: no rule matched
  // Namespace a's kernel saw only the unsteered datagram (nobody listens there: NoPorts).
  EXPECT_TRUE(eventually([&] { return snmp_in(ns_a_)["NoPorts"] >= before["NoPorts"] + 1; }));
  EXPECT_EQ(snmp_in(ns_a_)["NoPorts"], before["NoPorts"] + 1);
  EXPECT_EQ(snmp_in(ns_a_)["InDatagrams"], before["InDatagrams"]);
  // Without the rule, the port is the kernel's again.
  ASSERT_EQ(dev_->unsteer({.protocol = IPPROTO_UDP, .local_addr = inaddr(kAddrA), .local_port = htons(7000)}), 0);
  EXPECT_EQ(sw::sw_stats(kDev).diverted_rules, 0u);
  send_to(7000, "after unsteer");
  EXPECT_TRUE(eventually([&] { return snmp_in(ns_a_)["NoPorts"] == before["NoPorts"] + 2; }));
  close(s1);
}

}  // namespace
}  // namespace xmit::ibv
