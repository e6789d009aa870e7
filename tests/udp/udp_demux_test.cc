// tests/udp/udp_demux_test.cc — which socket a received datagram goes to when several share a port:
// the kernel's __udp4_lib_lookup() (a connected socket's peer beats a wildcard; a socket bound to
// the address beats one bound to INADDR_ANY; an SO_REUSEPORT group spreads flows and keeps each
// flow on one member) and steering shared by the sockets of a port.
#include <map>
#include <set>

#include "tests/udp/udp_bed.h"

namespace xmit::udp_testing {
namespace {

class UdpDemuxTest : public UdpSockTest {
 protected:
  void TearDown() override {
    for (UdpSock* s : extra) s->put();
    extra.clear();
    UdpSockTest::TearDown();
  }
  // Another socket on the same stack, with its own fake kernel socket.
  UdpSock* another() {
    shadows.push_back(std::make_unique<FakeShadow>(kA));
    extra.push_back(new UdpSock(stack.get(), shadows.back().get(), 10 + static_cast<int>(extra.size()), true));
    return extra.back();
  }
  static int bind(UdpSock* s, be32 addr, uint16_t port, bool reuseport = false) {
    if (reuseport) {
      int on = 1;
      if (int err = s->setsockopt(SOL_SOCKET, SO_REUSEPORT, &on, sizeof on); err != 0) return err;
    }
    sockaddr_in a{.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = {addr}};
    return s->bind(reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  static int connect(UdpSock* s, be32 addr, uint16_t port) {
    sockaddr_in a{.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = {addr}};
    return s->connect(reinterpret_cast<sockaddr*>(&a), sizeof a, false);
  }
  // The payload s has queued next, or "" when none.
  static std::string take(UdpSock* s) {
    char buf[64];
    iovec iov{buf, sizeof buf};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    ssize_t r = s->recvmsg(&m, MSG_DONTWAIT);
    return r < 0 ? "" : std::string(buf, static_cast<size_t>(r));
  }
  void send_from_b(uint16_t sport, uint16_t dport, const std::string& p) {
    from_b(frame_to_a(cfg, sport, dport, std::vector<uint8_t>(p.begin(), p.end())));
    link->b().poll_tx([](uint64_t) {});  // b's queue: its frames are on the wire
  }

  std::vector<std::unique_ptr<FakeShadow>> shadows;
  std::vector<UdpSock*> extra;
};

TEST_F(UdpDemuxTest, ConnectedPeerBeatsWildcardWhateverTheBindOrder) {
  UdpSock* wild = make();
  ASSERT_EQ(bind(wild, 0, 5000), 0);
  UdpSock* conn = another();
  ASSERT_EQ(bind(conn, 0, 5000), 0);
  ASSERT_EQ(connect(conn, kB, 6000), 0);
  send_from_b(6000, 5000, "to-conn");
  send_from_b(6001, 5000, "to-wild");
  EXPECT_EQ(take(conn), "to-conn");
  EXPECT_EQ(take(wild), "to-wild");
  EXPECT_EQ(take(conn), "");
  EXPECT_EQ(take(wild), "");
}

TEST_F(UdpDemuxTest, BoundAddressBeatsAny) {
  UdpSock* any = make();
  ASSERT_EQ(bind(any, 0, 5001), 0);
  UdpSock* exact = another();
  ASSERT_EQ(bind(exact, kA, 5001), 0);
  send_from_b(6000, 5001, "x");
  EXPECT_EQ(take(exact), "x");
  EXPECT_EQ(take(any), "");
  // With the exact one gone, the wildcard takes it.
  exact->put();
  extra.clear();
  send_from_b(6000, 5001, "y");
  EXPECT_EQ(take(any), "y");
}

TEST_F(UdpDemuxTest, ReuseportGroupSpreadsFlowsAndKeepsEachOnOneMember) {
  std::vector<UdpSock*> group = {make()};
  for (int i = 0; i < 3; ++i) group.push_back(another());
  for (UdpSock* s : group) ASSERT_EQ(bind(s, 0, 5002, /*reuseport=*/true), 0);
  std::map<uint16_t, int> owner;  // source port -> member index
  std::set<int> used;
  for (int round = 0; round < 2; ++round) {
    for (uint16_t sport = 7000; sport < 7064; ++sport) {
      send_from_b(sport, 5002, std::to_string(sport));
      int got = -1;
      for (size_t i = 0; i < group.size(); ++i) {
        std::string p = take(group[i]);
        if (p.empty()) continue;
        EXPECT_EQ(p, std::to_string(sport));
        EXPECT_EQ(got, -1) << "delivered twice";
        got = static_cast<int>(i);
      }
      ASSERT_NE(got, -1) << "flow " << sport << " lost";
      if (round == 0) owner[sport] = got;
      EXPECT_EQ(owner[sport], got) << "flow " << sport << " moved between members";
      used.insert(got);
    }
  }
  EXPECT_GE(used.size(), 3u) << "64 flows over 4 members";
  // A connected member takes its own peer's datagrams; the others still spread.
  ASSERT_EQ(connect(group[1], kB, 7000), 0);
  send_from_b(7000, 5002, "peer");
  EXPECT_EQ(take(group[1]), "peer");
}

TEST_F(UdpDemuxTest, SteeringLastsWhileAnySocketOfThePortIsOpen) {
  UdpSock* a = make();
  ASSERT_EQ(bind(a, 0, 5003), 0);
  UdpSock* b = another();
  ASSERT_EQ(bind(b, 0, 5003), 0);
  FlowKey key{.protocol = IPPROTO_UDP, .local_addr = kA, .local_port = htons(5003), .remote_addr = kB, .remote_port = htons(6000)};
  EXPECT_TRUE(link->a().flows().match(key));
  a->put();
  sk = nullptr;
  EXPECT_TRUE(link->a().flows().match(key)) << "b still listens on the port";
  send_from_b(6000, 5003, "still");
  EXPECT_EQ(take(b), "still");
  b->put();
  extra.clear();
  EXPECT_FALSE(link->a().flows().match(key));
}

// A datagram to a steered port, fragmented by the peer: the queue gets the first fragment (it
// carries the ports; a NIC's flow rule, and the in-memory link's steering, match it), the kernel
// the others. The stack hands the fragment it got to the kernel whole, which reassembles the
// datagram; without a way to (ip_frag_to_kernel null) it is dropped and counted.
class UdpFragmentTest : public UdpSockTest {
 protected:
  void SetUp() override {
    UdpSockTest::SetUp();
    UdpStackOptions o;
    o.ip_frag_to_kernel = [](void* ctx, const uint8_t* frame, uint32_t len) {
      auto* t = static_cast<UdpFragmentTest*>(ctx);
      t->handed.emplace_back(frame, frame + len);
      return t->hand_result;
    };
    o.ip_frag_ctx = this;
    stack.reset();
    ASSERT_EQ(UdpStack::create(&link->a(), &fib, o, &stack), 0);
    stack->set_if_addr(kA);
  }
  // frame_to_a() cut at IP payload offset `off` (a multiple of 8) for `len` bytes, MF as given.
  std::vector<uint8_t> fragment(const std::vector<uint8_t>& whole, uint32_t off, uint32_t len, bool mf) {
    std::vector<uint8_t> f(whole.begin(), whole.begin() + 34);
    f.insert(f.end(), whole.begin() + 34 + off, whole.begin() + 34 + off + len);
    uint8_t* ip = &f[14];
    const uint16_t tot = static_cast<uint16_t>(20 + len), fo = static_cast<uint16_t>((mf ? 0x2000 : 0) | off / 8);
    ip[2] = tot >> 8, ip[3] = tot & 0xff, ip[4] = 0x12, ip[5] = 0x34, ip[6] = fo >> 8, ip[7] = fo & 0xff;
    ip[10] = ip[11] = 0;
    sum16 c = ip_fast_csum(ip, 5);
    std::memcpy(ip + 10, &c, 2);
    return f;
  }
  void poll_stack() {
    std::lock_guard<StackMutex> g(stack->mu());
    stack->poll(++now);
  }
  std::vector<std::vector<uint8_t>> handed;
  int hand_result = 0;
};

TEST_F(UdpFragmentTest, TheFirstFragmentGoesToTheKernelWhole) {
  UdpSock* s = make();
  sockaddr_in a{.sin_family = AF_INET, .sin_port = htons(5000), .sin_addr = {0}};
  ASSERT_EQ(s->bind(reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const auto whole = frame_to_a(cfg, 6000, 5000, std::vector<uint8_t>(3000, 0x5a));
  const auto first = fragment(whole, 0, 1480, true);
  from_b(first);
  from_b(fragment(whole, 1480, 1480, true));
  from_b(fragment(whole, 2960, 48, false));
  link->b().poll_tx([](uint64_t) {});
  poll_stack();
  ASSERT_EQ(handed.size(), 1u);
  EXPECT_EQ(handed[0], first);  // the frame, unchanged
  EXPECT_EQ(stack->rx_frags_to_kernel, 1u);
  EXPECT_EQ(stack->udp_rx_mib.InErrors, 0u);
  EXPECT_EQ(stack->udp_rx_mib.InDatagrams, 0u);
  int kernel = 0;
  link->a().poll_kernel(64, [&](const RxFrame&) { ++kernel; });
  EXPECT_EQ(kernel, 2);  // the later fragments, which carry no ports
  // The kernel refusing it (or no way to reach it): dropped, counted as an error.
  hand_result = -EPERM;
  from_b(first);
  link->b().poll_tx([](uint64_t) {});
  poll_stack();
  EXPECT_EQ(handed.size(), 2u);
  EXPECT_EQ(stack->rx_frags_to_kernel, 1u);
  EXPECT_EQ(stack->udp_rx_mib.InErrors, 1u);
}

// A short first fragment arrives padded to Ethernet's 60 bytes: the kernel gets the frame cut at
// the IP packet's tot_len, as the NIC's copy would reach ip_rcv_core() (pskb_trim_rcsum()).
TEST_F(UdpFragmentTest, APaddedFirstFragmentGoesWithoutItsPadding) {
  UdpSock* s = make();
  sockaddr_in a{.sin_family = AF_INET, .sin_port = htons(5000), .sin_addr = {0}};
  ASSERT_EQ(s->bind(reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const auto whole = frame_to_a(cfg, 6000, 5000, std::vector<uint8_t>(100, 0x5a));
  const auto first = fragment(whole, 0, 8, true);  // the UDP header alone: 42 bytes
  auto padded = first;
  padded.resize(60, 0xee);
  from_b(padded);
  link->b().poll_tx([](uint64_t) {});
  poll_stack();
  ASSERT_EQ(handed.size(), 1u);
  EXPECT_EQ(handed[0], first);
  EXPECT_EQ(stack->rx_frags_to_kernel, 1u);
}

}  // namespace
}  // namespace xmit::udp_testing
