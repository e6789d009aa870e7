// tests/stream/tcp_socket_test.cc — TCP sockets (stack/stream) on two stack instances joined by the
// in-memory link: the socket calls a program makes (connect, listen, accept, send, recv, shutdown,
// close, getsockopt, poll) through TcpSocket and TcpStack, the protocol underneath, on an injected
// clock. Both ends are xmit's; the kernel peer is the e2e tests' (tests/e2e/tcp.sh).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <poll.h>

#include <cstring>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "stack/dev/sim_link.h"
#include "stack/stream/tcp_socket.h"
#include "tests/neigh/fake_fib.h"
#include "tests/udp/fake_shadow.h"

#include <netinet/tcp.h>  // after the stack's headers (its macros rename their constants)

namespace xmit {
namespace {

using testing::FakeFib;
using testing::FakeShadow;

const be32 kA = make_ipv4_addr(198, 18, 0, 1);
const be32 kB = make_ipv4_addr(198, 18, 0, 2);

uint64_t g_now = 1'000'000'000;  // the injected clock, ns
uint64_t test_clock() { return g_now; }

// One end: a stack instance on one side of the link, a FIB with the other end on-link.
struct End {
  FakeFib fib;
  // tcp before udp: the instance goes first (its destructor gives the device's completed frames,
  // TCP's among them, back to their pools), then TCP's pools.
  std::unique_ptr<TcpStack> tcp;
  std::unique_ptr<UdpStack> udp;
  std::unique_ptr<FakeShadow> shadow;
  void init(Netdev* dev, be32 self, be32 peer, const uint8_t* peer_mac) {
    fib.routes[peer] = {0, Rtable{.type = RTN_UNICAST, .oif = FakeFib::kIfindex, .prefsrc = self}};
    NeighInfo n{.nud_state = NUD_REACHABLE, .has_ha = true};
    std::memcpy(n.ha.data(), peer_mac, 6);
    fib.kernel[{FakeFib::kIfindex, peer}] = n;
    ASSERT_EQ(UdpStack::create(dev, &fib, UdpStackOptions{}, &udp), 0);
    udp->set_if_addr(self);
    TcpStackOptions o;
    o.clock_ns = test_clock;
    o.tx_skbs = 2048;
    o.tx_pages = 64;
    o.rx_skbs = 1024;
    ASSERT_EQ(TcpStack::create(udp.get(), o, &tcp), 0);
    udp->set_tcp(tcp.get());
    shadow = std::make_unique<FakeShadow>(self);
    shadow->clock = test_clock;
  }
  TcpSocket* socket() {
    std::lock_guard<StackMutex> g(tcp->mu());
    return new TcpSocket(tcp.get(), shadow.get(), 3, /*nonblock=*/true, tcp->conn_alloc());
  }
};

class TcpSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg.ifindex_a = cfg.ifindex_b = FakeFib::kIfindex;
    cfg.features = NetdevFeatures{.max_segs = 16, .mtu = 1500, .max_frame = 1514};
    cfg.steering = false;  // every frame to the stacks (no kernel behind either end)
    cfg.latency_ns = 50'000;
    link = std::make_unique<SimLink>(cfg);
    a.init(&link->a(), kA, kB, cfg.mac_b);
    b.init(&link->b(), kB, kA, cfg.mac_a);
  }
  // Moves the clock by `ns` in 50 µs steps, running the wire and both stacks at each.
  void pump(uint64_t ns = 2'000'000) {
    for (uint64_t t = 0; t < ns; t += 50'000) {
      g_now += 50'000;
      link->run(g_now);
      for (End* e : {&a, &b}) {
        std::lock_guard<StackMutex> g(e->udp->mu());
        e->udp->poll(g_now);
      }
    }
  }
  static sockaddr_in addr(be32 ip, uint16_t port) {
    return sockaddr_in{.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = {ip}};
  }
  int so_error(Socket* s) {
    int e = -1;
    socklen_t l = sizeof e;
    EXPECT_EQ(s->getsockopt(SOL_SOCKET, SO_ERROR, &e, &l), 0);
    return e;
  }
  // A listener on b:7000 and an established pair (client on a, child on b).
  void connect_pair(TcpSocket** client, Socket** child) {
    listener = b.socket();
    sockaddr_in l = addr(0, 7000);
    ASSERT_EQ(listener->bind(reinterpret_cast<sockaddr*>(&l), sizeof l), 0);
    ASSERT_EQ(listener->listen(16), 0);
    *client = a.socket();
    sockaddr_in to = addr(kB, 7000);
    ASSERT_EQ((*client)->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, true), -EINPROGRESS);
    pump();
    int wfd;
    EXPECT_TRUE((*client)->poll_mask(&wfd) & POLLOUT);
    EXPECT_EQ(so_error(*client), 0);
    sockaddr_in peer{};
    socklen_t plen = sizeof peer;
    ASSERT_EQ(listener->accept(child, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_NONBLOCK), 0);
    ASSERT_NE(*child, nullptr);
    EXPECT_EQ(peer.sin_addr.s_addr, kA);
    EXPECT_EQ(ntohs(peer.sin_port), FakeShadow::kAutobindPort);
  }
  // Reads what arrives on `s` (pumping the link) until `n` bytes or EOF.
  std::vector<uint8_t> read_all(Socket* s, size_t n, bool* eof = nullptr) {
    std::vector<uint8_t> got;
    uint8_t buf[65536];
    for (int i = 0; i < 10000 && got.size() < n; ++i) {
      ssize_t r = s->recvmsg(msg(buf, sizeof buf), 0);
      if (r > 0) {
        got.insert(got.end(), buf, buf + r);
        continue;
      }
      if (r == 0) {
        if (eof) *eof = true;
        break;
      }
      EXPECT_EQ(r, -EAGAIN);
      pump(200'000);
    }
    return got;
  }
  msghdr* msg(void* buf, size_t len) {
    iov_ = iovec{buf, len};
    msg_ = msghdr{};
    msg_.msg_iov = &iov_;
    msg_.msg_iovlen = 1;
    return &msg_;
  }
  ssize_t send(Socket* s, const void* buf, size_t len, int flags = 0) { return s->sendto(buf, len, flags, nullptr, 0); }

  SimLinkConfig cfg;
  std::unique_ptr<SimLink> link;
  End a, b;
  TcpSocket* listener = nullptr;
  iovec iov_{};
  msghdr msg_{};
};

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

// fork(): an established connection moves into the kernel socket behind its fd with its unread
// and unacknowledged bytes (TcpSocket::connections_to_kernel(); the fake shadow records the state).
TEST_F(TcpSocketTest, ForkMovesAnEstablishedConnectionIntoTheKernelSocket) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  std::vector<uint8_t> up(20'000), down(12'000);
  for (size_t i = 0; i < up.size(); ++i) up[i] = static_cast<uint8_t>(i * 7 + 1);
  for (size_t i = 0; i < down.size(); ++i) down[i] = static_cast<uint8_t>(i * 13 + 5);
  ASSERT_EQ(send(c, up.data(), up.size()), static_cast<ssize_t>(up.size()));
  pump();  // arrives at s, unread
  ssize_t n = send(s, down.data(), down.size());
  ASSERT_GT(n, 0);
  down.resize(static_cast<size_t>(n));  // queued and sent, not yet acknowledged (the link not run)
  int moved = 0, failed = 0;
  {
    std::lock_guard<StackMutex> g(b.tcp->mu());
    TcpSocket::connections_to_kernel(b.tcp.get(), &moved, &failed);
  }
  EXPECT_EQ(moved, 1);  // the child; the listener is not a connection
  EXPECT_EQ(failed, 0);
  EXPECT_TRUE(s->handed_to_kernel());
  const TcpRepairState& st = b.shadow->repaired;
  EXPECT_EQ(st.saddr, kB);
  EXPECT_EQ(st.daddr, kA);
  EXPECT_EQ(st.sport, 7000);
  EXPECT_EQ(st.dport, FakeShadow::kAutobindPort);
  EXPECT_EQ(b.shadow->repaired_rcvq, up);
  std::vector<uint8_t> queued = b.shadow->repaired_sentq;
  queued.insert(queued.end(), b.shadow->repaired_unsent.begin(), b.shadow->repaired_unsent.end());
  EXPECT_EQ(queued, down);
  EXPECT_FALSE(b.shadow->repaired_sentq.empty());  // the first window went out at once
  EXPECT_TRUE(st.tstamp_ok && st.sack_ok && st.wscale_ok);  // what the two stacks negotiated
  EXPECT_EQ(st.mss_clamp, 1460);
  EXPECT_EQ(st.rcv_wup, st.copied_seq + up.size());  // the window was last updated at rcv_nxt
  // Segments of the moved flow that still reach b's stack (queued before the steering changed) are
  // dropped, not reset: the client's connection lives on.
  ASSERT_EQ(send(c, "more", 4), 4);
  pump(5'000'000);
  EXPECT_EQ(so_error(c), 0);
  EXPECT_EQ(send(c, "again", 5, MSG_NOSIGNAL), 5);
  c->put();
  s->put();
  listener->put();
}

TEST_F(TcpSocketTest, ForkLeavesAConnectionTheKernelRefusesWithTheStack) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  std::vector<uint8_t> up(5'000, 0x5a);
  ASSERT_EQ(send(c, up.data(), up.size()), static_cast<ssize_t>(up.size()));
  pump();
  b.shadow->repair_result = -EPERM;  // no CAP_NET_ADMIN
  int moved = 0, failed = 0;
  {
    std::lock_guard<StackMutex> g(b.tcp->mu());
    TcpSocket::connections_to_kernel(b.tcp.get(), &moved, &failed);
  }
  EXPECT_EQ(moved, 0);
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(b.shadow->repairs, 1);
  EXPECT_FALSE(s->handed_to_kernel());
  EXPECT_EQ(read_all(s, up.size()), up);  // still the stack's
  c->put();
  s->put();
  listener->put();
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
