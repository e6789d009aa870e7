// tests/udp/udp_err_test.cc — the control-plane cadence of UdpStack (ControlOps read at most once per
// interval, or when asked) and socket errors the kernel posts on the shadow (ICMP: sk_err): returned
// and consumed by the next send or receive where the kernel's would, and by getsockopt(SO_ERROR).
// kernel: sock_alloc_send_pskb() (net/core/sock.c), __skb_recv_udp() (net/ipv4/udp.c), sk_getsockopt().
#include <cstring>
#include <vector>

#include "tests/udp/udp_bed.h"

namespace xmit {
namespace {

using namespace udp_testing;  // NOLINT

constexpr uint64_t kMs = 1'000'000;

// ControlOps with the kernel faked: `errored` are the shadow fds the next look reports (EPOLLERR).
class FakeControl final : public ControlOps {
 public:
  void poll_changes(uint64_t now, NeighTable&, absl::FunctionRef<void(int)> on_shadow_error) override {
    looks.push_back(now);
    std::vector<int> fds;
    fds.swap(errored);
    for (int fd : fds) on_shadow_error(fd);
  }
  void watch_shadow(int fd) override { watched.push_back(fd); }
  void unwatch_shadow(int fd) override { unwatched.push_back(fd); }

  std::vector<uint64_t> looks;
  std::vector<int> errored;
  std::vector<int> watched, unwatched;
};

class UdpErrTest : public UdpSockTest {
 protected:
  void SetUp() override {
    UdpSockTest::SetUp();
    stack->set_control(&ctl);
  }
  void connect_to_b() {
    sockaddr_in to{.sin_family = AF_INET, .sin_port = htons(7777), .sin_addr = {kB}};
    ASSERT_EQ(sk->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, false), 0);
  }
  ssize_t send(const std::vector<uint8_t>& p, int flags = 0) {
    iovec iov{const_cast<uint8_t*>(p.data()), p.size()};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    return sk->sendmsg(&m, static_cast<int>(flags));
  }
  // The kernel posts `err` on the shadow (an ICMP error arrived); the control plane is next read
  // `after` ns later.
  void icmp_error(int err, uint64_t after = kMs) {
    shadow.so_error = err;
    ctl.errored.push_back(3);
    shadow.clock_ns += after;
  }
  int so_error() {
    int v = -1;
    socklen_t l = sizeof v;
    EXPECT_EQ(sk->getsockopt(SOL_SOCKET, SO_ERROR, &v, &l), 0);
    EXPECT_EQ(l, sizeof v);
    return v;
  }

  FakeControl ctl;
};

TEST_F(UdpErrTest, TheControlPlaneIsReadAtMostOncePerIntervalOrWhenAsked) {
  make();
  const uint64_t t0 = shadow.clock_ns;
  for (int i = 0; i < 100; ++i) ASSERT_EQ(sendto({1}, kB, 7777), 1);
  EXPECT_EQ(ctl.looks, std::vector<uint64_t>{t0});
  shadow.clock_ns = t0 + kControlIntervalNs - 1;
  ASSERT_EQ(sendto({1}, kB, 7777), 1);
  EXPECT_EQ(ctl.looks.size(), 1u);
  shadow.clock_ns = t0 + kControlIntervalNs;
  ASSERT_EQ(sendto({1}, kB, 7777), 1);
  ASSERT_EQ(sendto({1}, kB, 7777), 1);
  EXPECT_EQ(ctl.looks, (std::vector<uint64_t>{t0, t0 + kControlIntervalNs}));
  // A failed route lookup asks for a look at the next poll (a route may be on its way).
  EXPECT_EQ(sendto({1}, make_ipv4_addr(198, 51, 100, 1), 7777), -ENETUNREACH);
  ASSERT_EQ(sendto({1}, kB, 7777), 1);
  EXPECT_EQ(ctl.looks.size(), 3u);
  EXPECT_EQ(ctl.watched, std::vector<int>{3});
}

TEST_F(UdpErrTest, TheNextSendReturnsTheErrorOnceAndSendsNothing) {
  make();
  connect_to_b();
  ASSERT_EQ(send({1, 2, 3}), 3);
  icmp_error(ECONNREFUSED, kMs / 2);
  ASSERT_EQ(send({1, 2, 3}), 3) << "not read yet: within one control interval";
  shadow.clock_ns += kMs / 2;
  const uint64_t out = stack->udp_mib.OutDatagrams;
  EXPECT_EQ(send({1, 2, 3}), -ECONNREFUSED);
  EXPECT_EQ(stack->udp_mib.OutDatagrams, out);
  EXPECT_EQ(shadow.so_error, 0) << "fetched from the shadow";
  EXPECT_EQ(send({1, 2, 3}), 3) << "consumed";
  EXPECT_EQ(at_b().size(), 3u);
}

// kernel: the route and length checks come before sock_alloc_send_pskb(); MSG_PROBE stops before it.
TEST_F(UdpErrTest, EarlierSendErrorsAndMsgProbeLeaveTheErrorPending) {
  make();
  connect_to_b();
  icmp_error(ECONNREFUSED);
  EXPECT_EQ(send(std::vector<uint8_t>(65508)), -EMSGSIZE);
  EXPECT_EQ(send({1}, kMsgProbe), 1);
  EXPECT_EQ(sk->sk_err(), ECONNREFUSED);
  EXPECT_EQ(send({1}, MSG_MORE), -ECONNREFUSED) << "the corked path allocates its first packet too";
  EXPECT_EQ(sk->pending(), 0);
  EXPECT_EQ(send({1}), 1);
}

TEST_F(UdpErrTest, ARecvReturnsTheErrorBeforeQueuedData) {
  make();
  connect_to_b();
  ASSERT_EQ(send({1}), 1);
  from_b(frame_to_a(cfg, 7777, kPort, {9, 8, 7}));
  icmp_error(ECONNREFUSED);
  std::vector<uint8_t> buf(16);
  sockaddr_in from{};
  EXPECT_EQ(recvfrom(&buf, &from), -ECONNREFUSED);
  EXPECT_EQ(recvfrom(&buf, &from), 3);
  EXPECT_EQ(recvfrom(&buf, &from), -EAGAIN);
}

TEST_F(UdpErrTest, SoErrorReportsTheHeldErrorOrANewerOneAndConsumesIt) {
  make();
  connect_to_b();
  icmp_error(ECONNREFUSED);
  ASSERT_EQ(send({1}, kMsgProbe), 1);  // a poll: the error is now held by the socket
  ASSERT_EQ(sk->sk_err(), ECONNREFUSED);
  EXPECT_EQ(so_error(), ECONNREFUSED);
  EXPECT_EQ(so_error(), 0);

  icmp_error(ECONNREFUSED);
  ASSERT_EQ(send({1}, kMsgProbe), 1);
  shadow.so_error = EHOSTUNREACH;  // newer, still on the shadow: the kernel's one sk_err holds it
  EXPECT_EQ(so_error(), EHOSTUNREACH);
  EXPECT_EQ(sk->sk_err(), 0);
  EXPECT_EQ(send({1}), 1);

  icmp_error(ECONNREFUSED);
  ASSERT_EQ(send({1}, kMsgProbe), 1);
  char small[2] = {};
  socklen_t l = sizeof small;
  ASSERT_EQ(sk->getsockopt(SOL_SOCKET, SO_ERROR, small, &l), 0);  // cut to optlen, still consumed
  EXPECT_EQ(l, 2u);
  EXPECT_EQ(small[0], ECONNREFUSED);
  EXPECT_EQ(so_error(), 0);
}

TEST_F(UdpErrTest, AHandBackSendReturnsTheHeldErrorFirst) {
  make();
  connect_to_b();
  icmp_error(ECONNREFUSED);
  EXPECT_EQ(sendto({1}, kOff, 7777), -ECONNREFUSED);
  EXPECT_EQ(sendto({1}, kOff, 7777), kPassThrough);
  EXPECT_EQ(ctl.unwatched, std::vector<int>{3});
}

TEST_F(UdpErrTest, CloseUnwatchesTheShadow) {
  make();
  ASSERT_EQ(sendto({1}, kB, 7777), 1);
  sk->put();
  sk = nullptr;
  EXPECT_EQ(ctl.watched, std::vector<int>{3});
  EXPECT_EQ(ctl.unwatched, std::vector<int>{3});
}

}  // namespace
}  // namespace xmit
