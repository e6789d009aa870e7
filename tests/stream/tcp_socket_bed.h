// tests/stream/tcp_socket_bed.h — the bed of the stream tests: two stack instances joined by the
// in-memory link, a TcpSocket on each end, an injected clock (pump() moves it and runs the wire and
// both stacks).
#pragma once
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
namespace testing_bed {

using testing::FakeFib;
using testing::FakeShadow;

const be32 kA = make_ipv4_addr(198, 18, 0, 1);
const be32 kB = make_ipv4_addr(198, 18, 0, 2);

inline uint64_t g_now = 1'000'000'000;  // the injected clock, ns
inline uint64_t test_clock() { return g_now; }

// One end: a stack instance on one side of the link, a FIB with the other end on-link.
struct End {
  FakeFib fib;
  // tcp before udp: the instance goes first (its destructor gives the device's completed frames,
  // TCP's among them, back to their pools), then TCP's pools.
  std::unique_ptr<TcpStack> tcp;
  std::unique_ptr<UdpStack> udp;
  std::unique_ptr<FakeShadow> shadow;
  uint32_t optmem_max = 131072;  // net.core.optmem_max for the stack's sockets
  bool autocorking = true;       // net.ipv4.tcp_autocorking
  uint8_t syncookies = 1;        // net.ipv4.tcp_syncookies
  uint32_t fin_timeout = 60;     // net.ipv4.tcp_fin_timeout
  uint32_t max_tw_buckets = 262144;  // net.ipv4.tcp_max_tw_buckets
  uint32_t busy_read = 0;            // net.core.busy_read: a new socket's SO_BUSY_POLL
  void init(Netdev* dev, be32 self, be32 peer, const uint8_t* peer_mac, uint16_t port_high = 60999) {
    fib.routes[peer] = {0, Rtable{.type = RTN_UNICAST, .oif = FakeFib::kIfindex, .prefsrc = self}};
    NeighInfo n{.nud_state = NUD_REACHABLE, .has_ha = true};
    std::memcpy(n.ha.data(), peer_mac, 6);
    fib.kernel[{FakeFib::kIfindex, peer}] = n;
    UdpStackOptions uo;
    uo.clock_ns = test_clock;  // the backlog's TX poll on TCP's clock, as in the engine
    uo.busy_read = busy_read;
    ASSERT_EQ(UdpStack::create(dev, &fib, uo, &udp), 0);
    udp->set_if_addr(self);
    TcpStackOptions o;
    o.clock_ns = test_clock;
    o.tx_skbs = 2048;
    o.tx_pages = 64;
    o.rx_skbs = 1024;
    o.port_high = port_high;
    o.optmem_max = optmem_max;
    o.autocorking = autocorking;
    o.syncookies = syncookies;
    o.fin_timeout = fin_timeout;
    o.max_tw_buckets = max_tw_buckets;
    o.busy_read = busy_read;
    o.syncookie_secret.key[0] = siphash_key_t{{0x5eed0001, 0x5eed0002}};  // a fixed secret: cookies the test can decode
    o.syncookie_secret.key[1] = siphash_key_t{{0x5eed0003, 0x5eed0004}};
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
    cfg.features.sg_user = dev_sg_user;
    cfg.steering = false;  // every frame to the stacks (no kernel behind either end)
    cfg.latency_ns = latency_ns;
    link = std::make_unique<SimLink>(cfg);
    a.init(&link->a(), kA, kB, cfg.mac_b, port_high_);
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
  // `listener`: b listening on `port` (any address).
  void listen_on_b(uint16_t port = 7000) {
    listener = b.socket();
    sockaddr_in l = addr(0, port);
    ASSERT_EQ(listener->bind(reinterpret_cast<sockaddr*>(&l), sizeof l), 0);
    ASSERT_EQ(listener->listen(16), 0);
  }
  // A new socket of a's, its non-blocking connect() to b:port under way.
  TcpSocket* connect_from_a(uint16_t port = 7000) {
    TcpSocket* c = a.socket();
    sockaddr_in to = addr(kB, port);
    EXPECT_EQ(c->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, true), -EINPROGRESS);
    return c;
  }
  // A listener on b:7000 and an established pair (client on a, child on b).
  void connect_pair(TcpSocket** client, Socket** child) {
    listen_on_b();
    *client = connect_from_a();
    pump(2'000'000 + 4 * latency_ns);
    int wfd;
    EXPECT_TRUE((*client)->poll_mask(&wfd) & POLLOUT);
    EXPECT_EQ(so_error(*client), 0);
    sockaddr_in peer{};
    socklen_t plen = sizeof peer;
    ASSERT_EQ(listener->accept(child, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_NONBLOCK), 0);
    ASSERT_NE(*child, nullptr);
    EXPECT_EQ(peer.sin_addr.s_addr, kA);
    EXPECT_EQ(peer.sin_port, local_port(*client));
    EXPECT_GE(ntohs(peer.sin_port), 32768);  // ip_local_port_range's default
    EXPECT_LE(ntohs(peer.sin_port), 60999);
  }
  static be16 local_port(Socket* s) {
    sockaddr_in me{};
    socklen_t len = sizeof me;
    EXPECT_EQ(s->getname(reinterpret_cast<sockaddr*>(&me), &len, false), 0);
    return me.sin_port;
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

  uint64_t latency_ns = 50'000;  // one way; a test's constructor may change it before SetUp()
  uint16_t port_high_ = 60999;   // a's ip_local_port_range is [32768, port_high_]
  SimLinkConfig cfg;
  bool dev_sg_user = false;  // the link reads user memory in place (verbs): MSG_ZEROCOPY not copied
  std::unique_ptr<SimLink> link;
  End a, b;
  TcpSocket* listener = nullptr;
  iovec iov_{};
  msghdr msg_{};
};

}  // namespace testing_bed
}  // namespace xmit
