// tests/xdp/xdp_steer_test.cc — the steering program (verbs/xdp/xmit_xdp.bpf.c) beyond queue 0 and
// one owner: frames arriving on every RX queue of a multi-queue veth reach poll_rx(), and a pre-fork
// worker's port keeps the kernel's connections (xmit_kernel_flows) and, once the worker stops
// accepting (xmit_no_accept), hands new connections back to the kernel's listener.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <net/if.h>

#include "tests/xdp/bed.h"
#include "verbs/xdp/xdp_netdev.h"

namespace xmit::xdp::testing {
namespace {

uint32_t inaddr(const char* s) {
  uint32_t a = 0;
  inet_pton(AF_INET, s, &a);
  return a;
}

sockaddr_in sin_of(const char* addr, uint16_t port) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  inet_pton(AF_INET, addr, &sin.sin_addr);
  return sin;
}

// An IPv4 TCP or UDP frame's protocol, destination port (host order) and TCP flags; false otherwise.
struct L4 {
  uint8_t protocol = 0;
  uint16_t dport = 0;
  uint8_t tcp_flags = 0;
};
bool parse_l4(const RxFrame& f, L4* out) {
  if (f.len < 14 + 20 || f.data[12] != 0x08 || f.data[13] != 0x00) return false;
  const uint8_t* ip = f.data + 14;
  uint32_t ihl = (ip[0] & 0xf) * 4u;
  out->protocol = ip[9];
  if (out->protocol != IPPROTO_TCP && out->protocol != IPPROTO_UDP) return false;
  if (f.len < 14 + ihl + (out->protocol == IPPROTO_TCP ? 14 : 8)) return false;
  const uint8_t* l4 = ip + ihl;
  out->dport = uint16_t(l4[2] << 8 | l4[3]);
  out->tcp_flags = out->protocol == IPPROTO_TCP ? l4[13] : 0;
  return true;
}

// Frames poll_rx() hands over now (each recycled at once) that are `protocol` to `dport`.
int drain(XdpNetdev& dev, uint8_t protocol, uint16_t dport, std::vector<L4>* seen = nullptr) {
  int n = 0;
  dev.poll_rx(256, [&](const RxFrame& f) {
    L4 l4;
    if (parse_l4(f, &l4) && l4.protocol == protocol && l4.dport == dport) {
      ++n;
      if (seen) seen->push_back(l4);
    }
    return false;
  });
  return n;
}

bool writable(int fd) {
  pollfd p{fd, POLLOUT, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLOUT);
}

uint16_t local_port(int fd) {
  sockaddr_in sin{};
  socklen_t len = sizeof sin;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  return ntohs(sin.sin_port);
}

class XdpSteerProgTest : public BedTest {
 protected:
  bool ip(const std::string& args) { return system(("ip " + args + " >/dev/null 2>&1").c_str()) == 0; }
  // A TCP socket in `ns` connecting to addr:port, non-blocking; -1 on failure.
  static int tcp_connect_in(const std::string& ns, const char* addr, uint16_t port) {
    int fd = -1;
    run_in_ns(ns, [&] {
      fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      sockaddr_in to = sin_of(addr, port);
      if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0 && errno != EINPROGRESS) {
        close(fd);
        fd = -1;
      }
    });
    return fd;
  }
};

// (1) A second veth pair between the namespaces with three queues each way: b's end picks the queue
// a frame arrives on at a's by the flow hash (veth_xmit(): the TX queue is the peer's RX queue), so
// datagrams from many source ports land on several queues, and each queue's socket delivers them.
// Fails if XdpNetdev served queue 0 only (the others' frames then XDP_PASS to a's kernel).
TEST_F(XdpSteerProgTest, EveryRxQueueDelivers) {
  constexpr char kQa[] = "198.19.0.1", kQb[] = "198.19.0.2";
  ASSERT_TRUE(ip("-n " + ns_a_ + " link add qa numtxqueues 3 numrxqueues 3 type veth peer name qb netns " + ns_b_ +
                 " numtxqueues 3 numrxqueues 3"));
  ASSERT_TRUE(ip("-n " + ns_a_ + " addr add " + kQa + "/24 dev qa") && ip("-n " + ns_b_ + " addr add " + kQb + "/24 dev qb"));
  ASSERT_TRUE(ip("-n " + ns_a_ + " link set qa up") && ip("-n " + ns_b_ + " link set qb up"));
  std::unique_ptr<XdpNetdev> dev;
  std::string why;
  ASSERT_EQ(XdpNetdev::open(XdpOptions{.ifname = "qa"}, &dev, &why), 0) << why;
  ASSERT_EQ(dev->rx_queues(), 3u);
  ASSERT_EQ(dev->steer(FlowKey{.protocol = IPPROTO_UDP, .local_addr = inaddr(kQa), .local_port = htons(7100)}), 0);

  constexpr int kSockets = 48;  // source ports; all on one of three queues: 3 * 3^-48
  std::vector<int> fds;
  for (int i = 0; i < kSockets; ++i) fds.push_back(udp_socket_in(ns_b_, kQb, 0));
  const sockaddr_in to = sin_of(kQa, 7100);
  for (int fd : fds) {
    ASSERT_GE(fd, 0);
    ASSERT_EQ(sendto(fd, "q", 1, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to), 1) << strerror(errno);
  }
  int got = 0;
  eventually([&] { return (got += drain(*dev, IPPROTO_UDP, 7100)) >= kSockets; });
  EXPECT_EQ(got, kSockets) << "datagrams missing from poll_rx()";
  const XdpStats& st = dev->stats();
  int queues_delivered = 0;
  uint64_t sum = 0;
  for (uint32_t q = 0; q < XdpNetdev::kMaxRxQueues; ++q) {
    if (st.rx_queue_frames[q] != 0) ++queues_delivered;
    if (q >= 3) {
      EXPECT_EQ(st.rx_queue_frames[q], 0u) << q;
    }
    sum += st.rx_queue_frames[q];
  }
  EXPECT_GE(queues_delivered, 2) << "queues 0/1/2: " << st.rx_queue_frames[0] << "/" << st.rx_queue_frames[1] << "/"
                                 << st.rx_queue_frames[2];
  EXPECT_EQ(sum, st.rx_frames);
  xdp_statistics ks{};
  ASSERT_EQ(dev->kernel_stats(&ks), 0);
  EXPECT_EQ(ks.rx_dropped + ks.rx_ring_full + ks.rx_fill_ring_empty_descs, 0u);
  for (int fd : fds) close(fd);
  dev.reset();
  ASSERT_TRUE(ip("-n " + ns_a_ + " link del qa"));
}

// (2) Pre-fork workers: the master's program steers :8080 before any worker has a socket, so the
// kernel's listener accepts a connection (remembered in xmit_kernel_flows). A worker starting then
// takes new connections only: the old one's data still reaches the kernel's socket. Once the
// worker's last listener is unsteered (xmit_no_accept), new SYNs are the kernel's again.
TEST_F(XdpSteerProgTest, KernelFlowsStayAndNoAcceptQueuesPass) {
  constexpr char kA[] = "198.18.0.1";
  constexpr uint16_t kPort = 8080;
  std::unique_ptr<XdpProg> prog;
  std::string why;
  ASSERT_EQ(XdpProg::open(int(if_nametoindex(if_a_.c_str())), XdpMode::kAuto, &prog, &why), 0) << why;
  const FlowKey port{.protocol = IPPROTO_TCP, .local_addr = inaddr(kA), .local_port = htons(kPort)};
  ASSERT_EQ(prog->steer(port), 0);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);  // namespace a's kernel
  ASSERT_GE(lfd, 0);
  const int on = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in la = sin_of(kA, kPort);
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&la), sizeof la), 0) << strerror(errno);
  ASSERT_EQ(listen(lfd, 16), 0);
  auto accept_now = [&] { return accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC); };

  // No AF_XDP socket serves queue 0 yet: the SYN is the kernel's, and so is the connection.
  int c1 = tcp_connect_in(ns_b_, kA, kPort);
  ASSERT_GE(c1, 0);
  int k1 = -1;
  ASSERT_TRUE(eventually([&] { return (k1 = accept_now()) >= 0; })) << "the kernel's listener got no connection";
  ASSERT_TRUE(eventually([&] { return writable(c1); }));

  std::unique_ptr<XdpNetdev> dev;
  ASSERT_EQ(XdpNetdev::open(XdpOptions{.ifname = if_a_, .shared_prog = prog.get(), .slot = 0, .slots = 1}, &dev, &why),
            0)
      << why;
  ASSERT_EQ(dev->steer(port), 0) << "the master's rule serves the worker";

  // The kernel's connection carries on in the kernel (xmit_kernel_flows).
  ASSERT_EQ(send(c1, "old", 3, MSG_NOSIGNAL), 3);
  char buf[16] = {};
  pollfd pk{k1, POLLIN, 0};
  EXPECT_EQ(poll(&pk, 1, 10000), 1) << "the kernel's connection lost its data to the worker's queue";
  EXPECT_EQ(recv(k1, buf, sizeof buf, MSG_DONTWAIT), 3);
  EXPECT_STREQ(buf, "old");
  EXPECT_EQ(drain(*dev, IPPROTO_TCP, kPort), 0);

  // A new connection is the worker's: its SYN reaches poll_rx(), the kernel's listener never sees it.
  int c2 = tcp_connect_in(ns_b_, kA, kPort);
  ASSERT_GE(c2, 0);
  std::vector<L4> seen;
  EXPECT_TRUE(eventually([&] {
    drain(*dev, IPPROTO_TCP, kPort, &seen);
    return !seen.empty();
  })) << "the new connection's SYN did not reach the worker";
  for (const L4& l4 : seen) EXPECT_EQ(l4.tcp_flags & 0x12, 0x02) << "a SYN";
  errno = 0;
  EXPECT_LT(accept_now(), 0);
  EXPECT_EQ(errno, EAGAIN);
  close(c2);  // no retransmitted SYN of it may reach the kernel's listener below
  drain(*dev, IPPROTO_TCP, kPort);

  // The worker's last listener closes: its queue takes no new connections (xmit_no_accept).
  ASSERT_EQ(dev->unsteer(port), 0);
  int c3 = tcp_connect_in(ns_b_, kA, kPort);
  ASSERT_GE(c3, 0);
  int k3 = -1;
  EXPECT_TRUE(eventually([&] { return (k3 = accept_now()) >= 0; })) << "the SYN did not reach the kernel's listener";
  sockaddr_in peer{};
  socklen_t plen = sizeof peer;
  if (k3 >= 0) {
    getpeername(k3, reinterpret_cast<sockaddr*>(&peer), &plen);
    EXPECT_EQ(ntohs(peer.sin_port), local_port(c3)) << "the kernel accepted the new connection";
  }
  EXPECT_EQ(drain(*dev, IPPROTO_TCP, kPort), 0);

  for (int fd : {c1, k1, c3, k3, lfd})
    if (fd >= 0) close(fd);
  dev.reset();
  prog.reset();
}

}  // namespace
}  // namespace xmit::xdp::testing
