// tests/stream/tcp_socket_test.cc — TCP sockets (stack/stream) on two stack instances joined by the
// in-memory link: the socket calls a program makes (connect, listen, accept, send, recv, shutdown,
// close, getsockopt, poll) through TcpSocket and TcpStack, the protocol underneath, on an injected
// clock. Both ends are xmit's; the kernel peer is the e2e tests' (tests/e2e/tcp.sh).
#include "tests/stream/tcp_socket_bed.h"

#include <netinet/tcp.h>  // after the stack's headers (its macros rename their constants)

namespace xmit {
namespace {

using namespace testing_bed;  // NOLINT: the bed's fixture and helpers
using testing::FakeShadow;

TEST_F(TcpSocketTest, ConnectAcceptMoveBytesBothWaysAndClose) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  std::vector<uint8_t> up(300'000), down(200'000);
  for (size_t i = 0; i < up.size(); ++i) up[i] = static_cast<uint8_t>(i * 7 + 1);
  for (size_t i = 0; i < down.size(); ++i) down[i] = static_cast<uint8_t>(i * 13 + 5);
  // Non-blocking sends: partial counts while the send buffer is full; the reader drains meanwhile.
  size_t sent_up = 0, sent_down = 0;
  std::vector<uint8_t> got_up, got_down;
  uint8_t buf[65536];
  for (int i = 0; i < 5000 && (got_up.size() < up.size() || got_down.size() < down.size()); ++i) {
    if (sent_up < up.size()) {
      ssize_t r = send(c, up.data() + sent_up, up.size() - sent_up);
      ASSERT_TRUE(r > 0 || r == -EAGAIN) << r;
      if (r > 0) sent_up += static_cast<size_t>(r);
    }
    if (sent_down < down.size()) {
      ssize_t r = send(s, down.data() + sent_down, down.size() - sent_down);
      ASSERT_TRUE(r > 0 || r == -EAGAIN) << r;
      if (r > 0) sent_down += static_cast<size_t>(r);
    }
    pump(100'000);
    for (ssize_t r; (r = s->recvmsg(msg(buf, sizeof buf), 0)) > 0;) got_up.insert(got_up.end(), buf, buf + r);
    for (ssize_t r; (r = c->recvmsg(msg(buf, sizeof buf), 0)) > 0;) got_down.insert(got_down.end(), buf, buf + r);
  }
  EXPECT_EQ(got_up, up);
  EXPECT_EQ(got_down, down);
  // The client half-closes: the server reads EOF, answers, closes; the client reads it and EOF.
  ASSERT_EQ(c->shutdown(SHUT_WR), 0);
  EXPECT_EQ(send(c, "x", 1, MSG_NOSIGNAL), -EPIPE);
  bool eof = false;
  EXPECT_TRUE(read_all(s, 1, &eof).empty());
  EXPECT_TRUE(eof);
  ASSERT_EQ(send(s, "bye", 3), 3);
  s->put();  // close(): FIN after the data
  eof = false;
  std::vector<uint8_t> bye = read_all(c, 4, &eof);
  EXPECT_EQ(std::string(bye.begin(), bye.end()), "bye");
  EXPECT_TRUE(eof);
  c->put();
  listener->put();
  // The client sent the first FIN: it is the one in TIME_WAIT, freed 60 s later (TCP_TIMEWAIT_LEN);
  // the server's side is gone once its FIN is acknowledged.
  pump(2'000'000);
  EXPECT_FALSE(b.tcp->has_conns());
  EXPECT_TRUE(a.tcp->has_conns());
  g_now += 61'000'000'000ull;
  pump(1'000'000);
  EXPECT_FALSE(a.tcp->has_conns());
}

TEST_F(TcpSocketTest, ConnectToAPortNoOneListensOnIsRefused) {
  TcpSocket* c = a.socket();
  sockaddr_in to = addr(kB, 7001);
  ASSERT_EQ(c->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, true), -EINPROGRESS);
  EXPECT_EQ(c->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, true), -EALREADY);
  pump();
  EXPECT_EQ(b.tcp->mib.OutRsts, 1u);  // b's stack answered the SYN with a reset
  int wfd;
  EXPECT_TRUE(c->poll_mask(&wfd) & (POLLERR | POLLHUP));
  EXPECT_EQ(so_error(c), ECONNREFUSED);
  EXPECT_EQ(so_error(c), 0);  // consumed
  c->put();
}

TEST_F(TcpSocketTest, PeerResetGivesEconnresetThenEpipe) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  linger lg{1, 0};  // SO_LINGER 0: close() resets
  ASSERT_EQ(s->setsockopt(SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  s->put();
  pump();
  uint8_t buf[16];
  EXPECT_EQ(c->recvmsg(msg(buf, sizeof buf), 0), -ECONNRESET);
  EXPECT_EQ(send(c, "x", 1, MSG_NOSIGNAL), -EPIPE);
  c->put();
  listener->put();
}

TEST_F(TcpSocketTest, StateErrnosAsLinux) {
  TcpSocket* c = a.socket();
  uint8_t buf[4];
  EXPECT_EQ(c->recvmsg(msg(buf, sizeof buf), 0), -ENOTCONN);  // never connected
  EXPECT_EQ(send(c, "x", 1, MSG_NOSIGNAL), -EPIPE);            // kernel: sk_stream_wait_connect()
  EXPECT_EQ(c->shutdown(SHUT_WR), -ENOTCONN);
  sockaddr_in peer{};
  socklen_t plen = sizeof peer;
  EXPECT_EQ(c->getname(reinterpret_cast<sockaddr*>(&peer), &plen, true), -ENOTCONN);
  Socket* none = nullptr;
  EXPECT_EQ(c->accept(&none, nullptr, nullptr, 0), -EINVAL);  // not listening
  sockaddr_in to = addr(kB, 7000);
  EXPECT_EQ(c->connect(reinterpret_cast<sockaddr*>(&to), 4, true), -EINVAL);
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  EXPECT_EQ(c->connect(reinterpret_cast<sockaddr*>(&v6), sizeof v6, true), -EAFNOSUPPORT);
  c->put();
}

TEST_F(TcpSocketTest, OptionsReachTheProtocol) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  int on = 1, v = 0;
  socklen_t l = sizeof v;
  ASSERT_EQ(c->setsockopt(SOL_TCP, TCP_NODELAY, &on, sizeof on), 0);
  ASSERT_EQ(c->getsockopt(SOL_TCP, TCP_NODELAY, &v, &l), -ENOPROTOOPT);  // the fake kernel knows no TCP options
  tcp_info ti{};
  l = sizeof ti;
  ASSERT_EQ(c->getsockopt(SOL_TCP, TCP_INFO, &ti, &l), 0);
  EXPECT_EQ(ti.tcpi_state, TCP_ESTABLISHED);
  EXPECT_EQ(ti.tcpi_snd_mss, 1448u);  // 1500 - 20 - 20 - 12 (timestamps)
  EXPECT_TRUE(ti.tcpi_options & TCPI_OPT_TIMESTAMPS);
  EXPECT_TRUE(ti.tcpi_options & TCPI_OPT_SACK);
  int inq = -1;
  ASSERT_EQ(send(c, "hello", 5), 5);
  pump();
  ASSERT_EQ(s->ioctl(SIOCINQ, &inq), 0);
  EXPECT_EQ(inq, 5);
  c->put();
  s->put();
  listener->put();
}

}  // namespace
}  // namespace xmit
