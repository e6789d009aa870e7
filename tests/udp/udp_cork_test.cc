// tests/udp/udp_cork_test.cc — corking served by UdpSock (kernel: udp_sendmsg()'s corked path,
// udp_lib_setsockopt(UDP_CORK), udp_destroy_sock()): the frames MSG_MORE sequences and UDP_CORK
// on/off produce on the in-memory link, what later sends ignore, what drops the cork, and what
// connect/disconnect/close/shutdown do to pending data.
#include <netinet/udp.h>

#include <cstring>
#include <vector>

#include "tests/udp/udp_bed.h"

namespace xmit {
namespace {

using namespace udp_testing;  // NOLINT

class UdpCorkTest : public UdpSockTest {
 protected:
  ssize_t send_none(const std::vector<uint8_t>& p, int flags = 0) {  // send(): no address
    return sk->sendto(p.data(), p.size(), flags, nullptr, 0);
  }
  int cork(int on) { return sk->setsockopt(SOL_UDP, UDP_CORK, &on, sizeof on); }
  static std::vector<uint8_t> bytes(size_t n, uint8_t seed) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 13 + (i >> 8));
    return v;
  }
  static uint16_t u16(const std::vector<uint8_t>& f, size_t off) {
    return static_cast<uint16_t>(f[off] << 8 | f[off + 1]);
  }
  // The UDP datagram (header + payload) carried by the frames of one IP datagram, fragments in
  // order; checks each IPv4 header checksum, the shared id and the fragment offsets.
  static std::vector<uint8_t> udp_of(const std::vector<std::vector<uint8_t>>& frames) {
    std::vector<uint8_t> udp;
    for (size_t i = 0; i < frames.size(); ++i) {
      const auto& f = frames[i];
      EXPECT_EQ(ip_fast_csum(&f[14], 5), 0);
      EXPECT_EQ(u16(f, 14 + 4), u16(frames[0], 14 + 4)) << "frame " << i << ": another IP id";
      uint16_t fo = u16(f, 14 + 6);
      EXPECT_EQ((fo & 0x1fff) * 8u, udp.size()) << "frame " << i;
      EXPECT_EQ((fo & IP_MF) != 0, i + 1 < frames.size()) << "frame " << i;
      udp.insert(udp.end(), f.begin() + 34, f.begin() + 14 + u16(f, 14 + 2));
    }
    return udp;
  }
  static bool udp_csum_ok(const std::vector<uint8_t>& udp) {
    return csum_tcpudp_magic(kA, kB, static_cast<uint32_t>(udp.size()), IPPROTO_UDP,
                             csum_partial(udp.data(), static_cast<int>(udp.size()), 0)) == 0;
  }
};

TEST_F(UdpCorkTest, MsgMoreSequenceIsOneDatagram) {
  make();
  auto p1 = bytes(100, 1), p2 = bytes(201, 2), p3 = bytes(300, 3);
  ASSERT_EQ(sendto(p1, kB, 7777, MSG_MORE), 100);
  EXPECT_EQ(sk->pending(), AF_INET);
  ASSERT_EQ(send_none(p2, MSG_MORE), 201);  // no address, not connected: appended all the same
  EXPECT_TRUE(at_b().empty());
  EXPECT_EQ(stack->udp_mib.OutDatagrams, 0u);
  ASSERT_EQ(send_none(p3), 300);
  EXPECT_EQ(sk->pending(), 0);
  auto frames = at_b();
  ASSERT_EQ(frames.size(), 1u);
  auto udp = udp_of(frames);
  ASSERT_EQ(udp.size(), 8u + 601);
  EXPECT_EQ(u16(udp, 0), kPort);
  EXPECT_EQ(u16(udp, 2), 7777);
  EXPECT_EQ(u16(udp, 4), 609);
  EXPECT_TRUE(udp_csum_ok(udp));
  std::vector<uint8_t> want = p1;
  want.insert(want.end(), p2.begin(), p2.end());
  want.insert(want.end(), p3.begin(), p3.end());
  EXPECT_TRUE(std::equal(want.begin(), want.end(), udp.begin() + 8));
  EXPECT_EQ(u16(frames[0], 14 + 6), IP_DF);  // IP_PMTUDISC_WANT, fits the MTU: DF
  EXPECT_EQ(stack->udp_mib.OutDatagrams, 1u);
}

TEST_F(UdpCorkTest, CorkLargerThanTheMtuIsFragmented) {
  make();
  auto p = bytes(1000, 9);
  ASSERT_EQ(sendto(p, kB, 7777, MSG_MORE), 1000);
  ASSERT_EQ(sendto(p, kB, 7777, MSG_MORE), 1000);
  ASSERT_EQ(sendto(p, kB, 7777), 1000);
  auto frames = at_b();
  ASSERT_EQ(frames.size(), 3u);  // 3008 bytes of IP payload: 1480 + 1480 + 48
  EXPECT_EQ(u16(frames[0], 14 + 2), 1500);
  EXPECT_EQ(u16(frames[1], 14 + 2), 1500);
  EXPECT_EQ(u16(frames[2], 14 + 2), 68);
  auto udp = udp_of(frames);
  ASSERT_EQ(udp.size(), 3008u);
  EXPECT_EQ(u16(udp, 4), 3008);
  EXPECT_TRUE(udp_csum_ok(udp));
}

TEST_F(UdpCorkTest, UdpCorkOnSendsOffPushes) {
  make();
  ASSERT_EQ(cork(1), 0);
  for (uint8_t i = 0; i < 3; ++i) ASSERT_EQ(sendto(bytes(10, i), kB, 7777), 10);
  EXPECT_TRUE(at_b().empty());
  EXPECT_EQ(sk->pending(), AF_INET);
  ASSERT_EQ(cork(0), 0);  // kernel: udp_lib_setsockopt() → udp_push_pending_frames()
  EXPECT_EQ(sk->pending(), 0);
  auto frames = at_b();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(udp_of(frames).size(), 8u + 30);
  ASSERT_EQ(sendto(bytes(5, 7), kB, 7777), 5);  // uncorked again: one frame per send
  frames = at_b();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(udp_of(frames).size(), 8u + 5);
  ASSERT_EQ(cork(0), 0);  // nothing pending: nothing sent
  EXPECT_TRUE(at_b().empty());
}

TEST_F(UdpCorkTest, LaterSendsIgnoreTheirAddressAndControlMessages) {
  make();
  ASSERT_EQ(sendto(bytes(10, 1), kB, 7777, MSG_MORE), 10);
  // Through the route off the interface and with a malformed cmsg: neither is looked at.
  std::vector<uint8_t> p = bytes(20, 2);
  sockaddr_in to{.sin_family = AF_INET, .sin_port = htons(1234), .sin_addr = {kOff}};
  iovec iov{p.data(), p.size()};
  alignas(cmsghdr) uint8_t ctl[CMSG_SPACE(sizeof(int))] = {};
  auto* c = reinterpret_cast<cmsghdr*>(ctl);
  c->cmsg_len = 3;  // shorter than a header: -EINVAL if it were parsed
  msghdr m{};
  m.msg_name = &to;
  m.msg_namelen = sizeof to;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctl;
  m.msg_controllen = sizeof ctl;
  ASSERT_EQ(sk->sendmsg(&m, 0), 20);
  EXPECT_TRUE(shadow.passed.empty());
  auto frames = at_b();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(u16(frames[0], 14 + 20 + 2), 7777);
  EXPECT_EQ(udp_of(frames).size(), 8u + 30);
}

TEST_F(UdpCorkTest, AnErrorDropsEverythingPending) {
  make();
  ASSERT_EQ(sendto(bytes(60000, 1), kB, 7777, MSG_MORE), 60000);
  // kernel: __ip_append_data(): cork->length + length > 0xFFFF - 20 → -EMSGSIZE, and
  // udp_sendmsg() flushes the pending frames.
  EXPECT_EQ(sendto(bytes(6000, 2), kB, 7777), -EMSGSIZE);
  EXPECT_EQ(sk->pending(), 0);
  EXPECT_TRUE(at_b().empty());
  ASSERT_EQ(sendto(bytes(10, 3), kB, 7777), 10);
  auto frames = at_b();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(udp_of(frames).size(), 18u);
  // A NULL buffer with a length: -EFAULT, the cork goes too.
  ASSERT_EQ(sendto(bytes(10, 4), kB, 7777, MSG_MORE), 10);
  EXPECT_EQ(sk->sendto(nullptr, 10, 0, nullptr, 0), -EFAULT);
  EXPECT_EQ(sk->pending(), 0);
  EXPECT_TRUE(at_b().empty());
}

TEST_F(UdpCorkTest, ProbeOpensNoCork) {
  make();
  ASSERT_EQ(sendto(bytes(10, 1), kB, 7777, MSG_MORE | kMsgProbe), 10);
  EXPECT_EQ(sk->pending(), 0);
  ASSERT_EQ(sendto(bytes(10, 1), kB, 7777), 10);
  EXPECT_EQ(at_b().size(), 1u);
}

TEST_F(UdpCorkTest, CloseDropsPendingData) {
  make();
  ASSERT_EQ(sendto(bytes(3000, 1), kB, 7777, MSG_MORE), 3000);
  sk->put();  // kernel: udp_destroy_sock() → udp_flush_pending_frames()
  sk = nullptr;
  EXPECT_TRUE(at_b().empty());
  EXPECT_EQ(stack->udp_mib.OutDatagrams, 0u);
}

// kernel: __ip4_datagram_connect() routes into inet->cork.fl.u.ip4, the corked datagram's flow.
TEST_F(UdpCorkTest, ConnectWhilePendingRedirectsTheCork) {
  make();
  ASSERT_EQ(sendto(bytes(10, 1), kB, 7777, MSG_MORE), 10);
  sockaddr_in peer{.sin_family = AF_INET, .sin_port = htons(8888), .sin_addr = {kB}};
  ASSERT_EQ(sk->connect(reinterpret_cast<sockaddr*>(&peer), sizeof peer, true), 0);
  EXPECT_EQ(sk->pending(), AF_INET);
  ASSERT_EQ(send_none(bytes(10, 2)), 10);
  auto frames = at_b();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(u16(frames[0], 14 + 20 + 2), 8888);
  EXPECT_TRUE(udp_csum_ok(udp_of(frames)));
}

// kernel: __udp_disconnect() sets inet_sport to 0 for an autobound socket and leaves the cork:
// udp_send_skb() then writes source port 0.
TEST_F(UdpCorkTest, DisconnectWhilePendingSendsFromPortZero) {
  make();
  ASSERT_EQ(sendto(bytes(10, 1), kB, 7777, MSG_MORE), 10);
  sockaddr unspec{.sa_family = AF_UNSPEC};
  ASSERT_EQ(sk->connect(&unspec, sizeof unspec, true), 0);
  ASSERT_EQ(cork(0), 0);
  auto frames = at_b();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(u16(frames[0], 14 + 20), 0);
  EXPECT_TRUE(udp_csum_ok(udp_of(frames)));
  // The next send autobinds a new port.
  ASSERT_EQ(sendto(bytes(10, 2), kB, 7777), 10);
  frames = at_b();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(u16(frames[0], 14 + 20), kPort + 1);
}

// kernel: inet_shutdown() sets SEND_SHUTDOWN even on an unconnected socket (returning -ENOTCONN);
// sock_alloc_send_skb() then fails with -EPIPE.
TEST_F(UdpCorkTest, ShutdownWriteFailsLaterSendsWithEpipe) {
  make();
  ASSERT_EQ(sk->shutdown(SHUT_WR), 0);  // the fake shadow says 0 where the kernel says -ENOTCONN
  EXPECT_EQ(sendto(bytes(10, 1), kB, 7777), -EPIPE);
  EXPECT_EQ(sendto(bytes(10, 1), kB, 7777, MSG_MORE), -EPIPE);
  EXPECT_EQ(sk->pending(), 0);
  EXPECT_TRUE(at_b().empty());
}

TEST_F(UdpCorkTest, SendtoAddressLengthRules) {
  make();
  std::vector<uint8_t> p = bytes(10, 1);
  sockaddr_storage ss{};
  auto* to = reinterpret_cast<sockaddr_in*>(&ss);
  *to = sockaddr_in{.sin_family = AF_INET, .sin_port = htons(7777), .sin_addr = {kB}};
  // kernel: __sys_sendto(): addrlen 0 is an empty address (udp_sendmsg(): -EINVAL), where
  // sendmsg() would drop the name (-EDESTADDRREQ); over sizeof(sockaddr_storage): -EINVAL.
  EXPECT_EQ(sk->sendto(p.data(), p.size(), 0, reinterpret_cast<sockaddr*>(&ss), 0), -EINVAL);
  EXPECT_EQ(sk->sendto(p.data(), p.size(), 0, reinterpret_cast<sockaddr*>(&ss), sizeof ss + 1), -EINVAL);
  EXPECT_EQ(sk->sendto(p.data(), p.size(), 0, reinterpret_cast<sockaddr*>(&ss), sizeof ss), 10);
  EXPECT_EQ(at_b().size(), 1u);
}

}  // namespace
}  // namespace xmit
