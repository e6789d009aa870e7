// tests/udp/udp_sock_test.cc — UdpSock over a UdpStack on a SimLink: frames out (bytes, checksum,
// steering), datagrams in (demux, source address, MSG_PEEK/MSG_TRUNC, EAGAIN, checksum and
// SO_RCVBUF drops), argument errnos, and hand-back to the kernel for routes off the interface.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "stack/base/checksum.h"
#include "stack/dev/sim_link.h"
#include "stack/udp/udp_sock.h"
#include "tests/neigh/fake_fib.h"
#include "tests/udp/fake_shadow.h"

namespace xmit {
namespace {

using testing::FakeFib;
using testing::FakeShadow;

const be32 kA = make_ipv4_addr(198, 18, 0, 1);
const be32 kB = make_ipv4_addr(198, 18, 0, 2);
const be32 kOff = make_ipv4_addr(10, 9, 9, 9);  // routed through another device
constexpr uint16_t kPort = FakeShadow::kAutobindPort;

// A UDP/IPv4 frame from b to a, checksums complete (or a wrong UDP checksum).
std::vector<uint8_t> frame_to_a(const SimLinkConfig& cfg, uint16_t sport, uint16_t dport,
                                const std::vector<uint8_t>& payload, bool bad_csum = false) {
  std::vector<uint8_t> f(14 + 20 + 8 + payload.size(), 0);
  std::memcpy(&f[0], cfg.mac_a, 6);
  std::memcpy(&f[6], cfg.mac_b, 6);
  f[12] = 0x08;
  uint8_t* ip = &f[14];
  ip[0] = 0x45;
  uint16_t tot = static_cast<uint16_t>(20 + 8 + payload.size());
  ip[2] = tot >> 8;
  ip[3] = tot & 0xff;
  ip[8] = 64;
  ip[9] = IPPROTO_UDP;
  std::memcpy(ip + 12, &kB, 4);
  std::memcpy(ip + 16, &kA, 4);
  sum16 ipc = ip_fast_csum(ip, 5);
  std::memcpy(ip + 10, &ipc, 2);
  uint8_t* uh = ip + 20;
  uint16_t ulen = static_cast<uint16_t>(8 + payload.size());
  uh[0] = sport >> 8, uh[1] = sport & 0xff, uh[2] = dport >> 8, uh[3] = dport & 0xff;
  uh[4] = ulen >> 8, uh[5] = ulen & 0xff;
  std::memcpy(uh + 8, payload.data(), payload.size());
  sum16 c = csum_tcpudp_magic(kB, kA, ulen, IPPROTO_UDP, csum_partial(uh, ulen, 0));
  if (c == 0) c = 0xffff;
  if (bad_csum) c = static_cast<sum16>(c ^ 0x0101);
  std::memcpy(uh + 6, &c, 2);
  return f;
}

class UdpSockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg.ifindex_a = FakeFib::kIfindex;
    cfg.features = NetdevFeatures{.max_segs = 16, .mtu = 1500, .max_frame = 1514};
    link = std::make_unique<SimLink>(cfg);
    fib.routes[kB] = {0, Rtable{.type = RTN_UNICAST, .oif = FakeFib::kIfindex, .prefsrc = kA}};
    fib.routes[kOff] = {0, Rtable{.type = RTN_UNICAST, .oif = 99, .prefsrc = make_ipv4_addr(10, 9, 9, 1)}};
    NeighInfo n{.nud_state = NUD_REACHABLE, .has_ha = true};
    std::memcpy(n.ha.data(), cfg.mac_b, 6);
    fib.kernel[{FakeFib::kIfindex, kB}] = n;
    ASSERT_EQ(UdpStack::create(&link->a(), &fib, UdpStackOptions{}, &stack), 0);
    stack->set_if_addr(kA);
  }
  void TearDown() override {
    if (sk != nullptr) sk->put();
    stack.reset();
  }
  UdpSock* make(bool nonblock = true) {
    sk = new UdpSock(stack.get(), &shadow, 3, nonblock);
    return sk;
  }
  ssize_t sendto(const std::vector<uint8_t>& p, be32 daddr, uint16_t dport, int flags = 0) {
    sockaddr_in to{.sin_family = AF_INET, .sin_port = htons(dport), .sin_addr = {daddr}};
    iovec iov{const_cast<uint8_t*>(p.data()), p.size()};
    msghdr m{};
    m.msg_name = &to;
    m.msg_namelen = sizeof to;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    return sk->sendmsg(&m, flags);
  }
  ssize_t recvfrom(std::vector<uint8_t>* buf, sockaddr_in* from, int flags = 0, int* msg_flags = nullptr) {
    iovec iov{buf->data(), buf->size()};
    msghdr m{};
    m.msg_name = from;
    m.msg_namelen = sizeof *from;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    ssize_t r = sk->recvmsg(&m, flags);
    if (msg_flags != nullptr) *msg_flags = m.msg_flags;
    return r;
  }
  // Frames b's kernel got (b steers nothing).
  std::vector<std::vector<uint8_t>> at_b() {
    link->run(++now);
    std::vector<std::vector<uint8_t>> out;
    link->b().poll_kernel(64, [&](const RxFrame& f) { out.emplace_back(f.data, f.data + f.len); });
    return out;
  }
  void from_b(const std::vector<uint8_t>& f) {
    FrameSeg seg{f.data(), static_cast<uint32_t>(f.size())};
    TxFrame tf{.segs = absl::MakeConstSpan(&seg, 1)};
    ASSERT_EQ(link->b().xmit(absl::MakeConstSpan(&tf, 1)), 1);
    link->run(++now);
  }

  SimLinkConfig cfg;
  std::unique_ptr<SimLink> link;
  FakeFib fib;
  FakeShadow shadow{kA};
  std::unique_ptr<UdpStack> stack;
  UdpSock* sk = nullptr;
  uint64_t now = 1;
};

TEST_F(UdpSockTest, SendtoAutobindsSteersAndSendsOneFrame) {
  make();
  std::vector<uint8_t> p(100);
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>(i * 7);
  ASSERT_EQ(sendto(p, kB, 7777), 100);
  EXPECT_EQ(stack->udp_mib.OutDatagrams, 1u);
  auto frames = at_b();
  ASSERT_EQ(frames.size(), 1u);
  const auto& f = frames[0];
  ASSERT_EQ(f.size(), 14u + 20 + 8 + 100);
  EXPECT_EQ(std::memcmp(&f[0], cfg.mac_b, 6), 0);
  EXPECT_EQ(std::memcmp(&f[6], cfg.mac_a, 6), 0);
  EXPECT_EQ(ip_fast_csum(&f[14], 5), 0);
  EXPECT_EQ(std::memcmp(&f[14 + 12], &kA, 4), 0);
  EXPECT_EQ(std::memcmp(&f[14 + 16], &kB, 4), 0);
  EXPECT_EQ(f[34] << 8 | f[35], kPort);
  EXPECT_EQ(f[36] << 8 | f[37], 7777);
  EXPECT_EQ(csum_tcpudp_magic(kA, kB, 108, IPPROTO_UDP, csum_partial(&f[34], 108, 0)), 0);
  EXPECT_EQ(std::memcmp(&f[42], p.data(), 100), 0);
  EXPECT_EQ(link->a().flows().size(), 1u);
}

TEST_F(UdpSockTest, RepliesComeBackWithTheirSourceAddress) {
  make();
  ASSERT_EQ(sendto({1, 2, 3}, kB, 7777), 3);
  from_b(frame_to_a(cfg, 7777, kPort, {9, 8, 7, 6, 5}));
  std::vector<uint8_t> buf(64);
  sockaddr_in from{};
  ASSERT_EQ(recvfrom(&buf, &from, MSG_PEEK), 5);
  ASSERT_EQ(recvfrom(&buf, &from), 5);
  EXPECT_EQ(from.sin_addr.s_addr, kB);
  EXPECT_EQ(ntohs(from.sin_port), 7777);
  EXPECT_EQ(buf[0], 9);
  EXPECT_EQ(buf[4], 5);
  EXPECT_EQ(recvfrom(&buf, &from), -EAGAIN);
  EXPECT_EQ(stack->udp_rx_mib.InDatagrams, 1u);
}

TEST_F(UdpSockTest, TruncationAndBadChecksum) {
  make();
  ASSERT_EQ(sendto({1}, kB, 7777), 1);
  from_b(frame_to_a(cfg, 7777, kPort, std::vector<uint8_t>(50, 0x5a), /*bad_csum=*/true));
  from_b(frame_to_a(cfg, 7777, kPort, std::vector<uint8_t>(50, 0x5a)));
  std::vector<uint8_t> buf(10);
  sockaddr_in from{};
  int fl = 0;
  EXPECT_EQ(recvfrom(&buf, &from, MSG_TRUNC, &fl), 50);  // MSG_TRUNC: the real length
  EXPECT_TRUE(fl & MSG_TRUNC);
  EXPECT_EQ(recvfrom(&buf, &from), -EAGAIN);
  EXPECT_EQ(stack->udp_rx_mib.InCsumErrors, 1u);
  EXPECT_EQ(stack->udp_rx_mib.InDatagrams, 1u);
}

TEST_F(UdpSockTest, ReceiveBufferLimitDrops) {
  shadow.rcvbuf = 4096;  // one RX buffer's truesize
  make();
  ASSERT_EQ(sendto({1}, kB, 7777), 1);
  for (int i = 0; i < 3; ++i) from_b(frame_to_a(cfg, 7777, kPort, {uint8_t(i)}));
  std::vector<uint8_t> buf(10);
  sockaddr_in from{};
  EXPECT_EQ(recvfrom(&buf, &from), 1);
  EXPECT_EQ(recvfrom(&buf, &from), 1);
  EXPECT_EQ(recvfrom(&buf, &from), -EAGAIN);
  EXPECT_EQ(stack->udp_rx_mib.RcvbufErrors, 1u);
  EXPECT_EQ(sk->drops(), 1u);
}

TEST_F(UdpSockTest, ArgumentErrnos) {
  make();
  iovec iov{nullptr, 0};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  EXPECT_EQ(sk->sendmsg(&m, 0), -EDESTADDRREQ);
  EXPECT_EQ(sendto({1}, kB, 7777, MSG_OOB), -EOPNOTSUPP);
  EXPECT_EQ(sendto(std::vector<uint8_t>(65536), kB, 7777), -EMSGSIZE);
  EXPECT_EQ(sendto({1}, kB, 0), -EINVAL);
  EXPECT_EQ(sendto({1}, make_ipv4_addr(203, 0, 113, 1), 7), -ENETUNREACH);  // no route
}

TEST_F(UdpSockTest, RouteOffTheInterfaceHandsBack) {
  make();
  EXPECT_EQ(sendto({1}, kOff, 7777), kPassThrough);
  ASSERT_EQ(shadow.passed.size(), 1u);
  EXPECT_EQ(shadow.passed[0], kOff);
  EXPECT_EQ(sendto({1}, kB, 7777), kPassThrough);  // for good
  EXPECT_EQ(link->a().flows().size(), 0u);          // and unsteered
  EXPECT_TRUE(at_b().empty());
}

TEST_F(UdpSockTest, ConnectedSendAndPeerFilter) {
  make();
  sockaddr_in to{.sin_family = AF_INET, .sin_port = htons(7777), .sin_addr = {kB}};
  ASSERT_EQ(sk->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, true), 0);
  std::vector<uint8_t> p{4, 5, 6};
  iovec iov{p.data(), p.size()};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  ASSERT_EQ(sk->sendmsg(&m, 0), 3);
  auto frames = at_b();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ((frames[0][14 + 4] << 8 | frames[0][14 + 5]), 0x1235);  // inet_id: the random seed + 1
  from_b(frame_to_a(cfg, 9999, kPort, {1}));  // not the peer: a connected socket ignores it
  from_b(frame_to_a(cfg, 7777, kPort, {2}));
  std::vector<uint8_t> buf(10);
  sockaddr_in from{};
  ASSERT_EQ(recvfrom(&buf, &from), 1);
  EXPECT_EQ(buf[0], 2);
  EXPECT_EQ(recvfrom(&buf, &from), -EAGAIN);
  EXPECT_EQ(stack->udp_rx_mib.NoPorts, 1u);
}

}  // namespace
}  // namespace xmit
