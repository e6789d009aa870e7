// tests/udp/udp_sock_test.cc — UdpSock over a UdpStack on a SimLink: frames out (bytes, checksum,
// steering), datagrams in (demux, source address, MSG_PEEK/MSG_TRUNC, EAGAIN, checksum and
// SO_RCVBUF drops), argument errnos, and hand-back to the kernel for routes off the interface.
#include <cstring>
#include <vector>

#include "tests/udp/udp_bed.h"

namespace xmit {
namespace {

using namespace udp_testing;  // NOLINT

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
  make();
  const int half = 2048;  // the kernel doubles it: one RX buffer's truesize
  ASSERT_EQ(sk->setsockopt(SOL_SOCKET, SO_RCVBUF, &half, sizeof half), 0);
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
