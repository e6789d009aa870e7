// tests/dev/udp_gso_queue_test.cc — a UDP_SEGMENT datagram meeting a full device queue, sent as
// udp_sendmsg() sends it (ip_make_skb(), udp_send_skb()) onto a UdpStack over a SimLink whose TX
// queue holds kDepth frames. The kernel enqueues the GSO skb on the qdisc whole and requeues the
// segments the driver refused (sch_direct_xmit() -> dev_requeue_skb()), so every segment leaves,
// in order; only a full qdisc refuses the packet, whole (pfifo_fast_enqueue() -> NET_XMIT_DROP:
// -ENOBUFS, SndbufErrors).
#include <arpa/inet.h>

#include <cstring>
#include <memory>
#include <ostream>
#include <vector>

#include "gtest/gtest.h"
#include "stack/dev/sim_link.h"
#include "stack/ipv4/iov_iter.h"
#include "stack/ipv4/ip_output.h"
#include "stack/ipv4/udp_send.h"
#include "stack/udp/udp_stack.h"
#include "tests/dev/test_frames.h"
#include "tests/neigh/fake_fib.h"

namespace xmit {
namespace {

using testing::FakeFib;

constexpr uint32_t kDepth = 16;
constexpr uint16_t kSport = 40000, kDport = 9000;

struct Shape {
  const char* name;
  NetdevFeatures features;
};
void PrintTo(const Shape& s, std::ostream* os) { *os << s.name; }

// One datagram as b received it: its IP id and UDP payload.
struct Rx {
  uint16_t id;
  std::vector<uint8_t> payload;
};

class UdpGsoQueueTest : public ::testing::TestWithParam<Shape> {
 protected:
  void SetUp() override {
    cfg.ifindex_a = FakeFib::kIfindex;
    cfg.features = GetParam().features;
    cfg.steering = false;  // every frame to b's poll_rx()
    cfg.tx_depth = kDepth;
    link = std::make_unique<SimLink>(cfg);
    fib.routes[daddr] = {0, Rtable{.type = RTN_UNICAST, .oif = FakeFib::kIfindex, .prefsrc = saddr}};
    NeighInfo n{.nud_state = NUD_REACHABLE, .has_ha = true};
    std::memcpy(n.ha.data(), testing::kMacB, 6);
    fib.kernel[{FakeFib::kIfindex, daddr}] = n;
    UdpStackOptions opt;
    opt.nr_skbs = 2048;  // room for a full backlog (kTxBacklogMax frames) and more
    ASSERT_EQ(UdpStack::create(&link->a(), &fib, opt, &stack), 0);
    inet.inet_saddr = saddr;
    inet.inet_sport = cpu_to_be16(kSport);
    inet.sk_sndbuf = 1u << 30;  // the send buffer is not what this test fills
  }
  void TearDown() override {
    drain();
    stack.reset();
    inet_sock_destruct(&inet);
  }

  // udp_sendmsg()'s uncorked path: `len` bytes (byte i is seed + i), UDP_SEGMENT `gso_size`.
  int send(uint32_t len, uint16_t gso_size, uint8_t seed) {
    std::vector<uint8_t> p(len);
    for (uint32_t i = 0; i < len; ++i) p[i] = static_cast<uint8_t>(seed + i);
    iovec iov{p.data(), p.size()};
    IovIter it;
    if (int err = iov_iter_init(&it, absl::MakeConstSpan(&iov, 1)); err != 0) return err;
    IpcmCookie ipc;
    ipcm_init_sk(&ipc, inet);
    ipc.gso_size = gso_size;
    Flowi4 fl4{.daddr = daddr, .saddr = saddr, .fl4_sport = cpu_to_be16(kSport), .fl4_dport = cpu_to_be16(kDport)};
    Ipv4Route rt{.oif = FakeFib::kIfindex, .saddr = saddr, .daddr = daddr, .nexthop = daddr, .dev = &cfg.features};
    IpOutCtx c = stack->out_ctx(t_);
    InetCork cork;
    sk_buff* skb = nullptr;
    int err = ip_make_skb(c, &inet, fl4, rt, &it, static_cast<int>(len + 8), 8, ipc, &cork, 0, &skb);
    if (err != 0 || skb == nullptr) return err;
    return udp_send_skb(c, &inet, &mib, skb, fl4, cork);
  }

  // The wire and the stack until nothing waits or is in flight: b's datagrams in arrival order.
  void drain() {
    for (int i = 0; i < 4096 && (stack->tx_backlog() != 0 || stack->tx_in_flight != 0); ++i) {
      t_ += 1000;
      link->run(t_);
      link->b().poll_rx(1024, [&](const RxFrame& f) {
        const uint8_t* ip = f.data + 14;
        rx.push_back(Rx{static_cast<uint16_t>(ip[4] << 8 | ip[5]), std::vector<uint8_t>(ip + 28, f.data + f.len)});
        return false;
      });
      stack->poll(t_);  // reaps the completions, then the backlog goes to the device
    }
  }

  // rx[from, from + n) are the n segments of one send of `len` bytes cut at `gso_size`, in order:
  // the payload whole, the IP ids consecutive.
  void expect_datagram(size_t from, uint32_t len, uint16_t gso_size, uint8_t seed) {
    const size_t n = (len + gso_size - 1) / gso_size;
    ASSERT_GE(rx.size(), from + n);
    for (size_t s = 0; s < n; ++s) {
      const Rx& d = rx[from + s];
      EXPECT_EQ(d.id, static_cast<uint16_t>(rx[from].id + s)) << "segment " << s;
      const uint32_t off = static_cast<uint32_t>(s) * gso_size;
      std::vector<uint8_t> want(std::min<uint32_t>(gso_size, len - off));
      for (uint32_t i = 0; i < want.size(); ++i) want[i] = static_cast<uint8_t>(seed + off + i);
      ASSERT_EQ(d.payload, want) << "segment " << s;
    }
  }

  // kDepth frames on the device, `waiting` in the backlog (a GSO send, then single datagrams).
  void fill(uint32_t waiting) {
    ASSERT_EQ(send((kDepth + 4) * 100, 100, 1), 0);
    ASSERT_EQ(stack->tx_backlog(), 4u);
    while (stack->tx_backlog() < waiting) ASSERT_EQ(send(10, 0, 2), 0);
    ASSERT_EQ(stack->tx_backlog(), waiting);
  }

  const be32 saddr = htonl(testing::kAddrA);
  const be32 daddr = htonl(testing::kAddrB);
  SimLinkConfig cfg;
  std::unique_ptr<SimLink> link;
  FakeFib fib;
  std::unique_ptr<UdpStack> stack;
  InetSock inet;
  UdpMib mib;
  std::vector<Rx> rx;
  uint64_t t_ = 1000;
};

// 40 segments onto a queue of 16: the device takes 16, the other 24 wait and follow in order.
// Before: the segment the full queue refused was dropped with the 23 after it, and the send
// reported success (-ENOBUFS hidden without IP_RECVERR).
TEST_P(UdpGsoQueueTest, ShortDeviceQueueLosesNoSegment) {
  ASSERT_EQ(send(40 * 1000, 1000, 7), 0);
  EXPECT_EQ(link->a().tx_stats().tx_frames, kDepth);
  EXPECT_EQ(stack->tx_backlog(), 40 - kDepth);
  drain();
  ASSERT_EQ(rx.size(), 40u);
  expect_datagram(0, 40 * 1000, 1000, 7);
  EXPECT_EQ(stack->tx_drops, 0u);
  EXPECT_EQ(stack->tx_requeued, 40 - kDepth);
  EXPECT_EQ(mib.SndbufErrors, 0u);
  EXPECT_EQ(mib.OutDatagrams, 1u);
  EXPECT_EQ(stack->mib.OutDiscards, 0u);
}

// The backlog 5 frames short of its limit: the qdisc's limit admits a packet, not frames, so all
// 10 segments join it. Before: 5 joined, 5 were dropped, and the send reported success.
TEST_P(UdpGsoQueueTest, NearlyFullBacklogTakesTheWholeDatagram) {
  fill(UdpStack::kTxBacklogMax - 5);
  const size_t before = UdpStack::kTxBacklogMax - 5 + kDepth;
  ASSERT_EQ(send(10 * 500, 500, 9), 0);
  EXPECT_EQ(stack->tx_backlog(), UdpStack::kTxBacklogMax + 5);
  drain();
  ASSERT_EQ(rx.size(), before + 10);
  expect_datagram(before, 10 * 500, 500, 9);
  EXPECT_EQ(stack->tx_drops, 0u);
  EXPECT_EQ(mib.SndbufErrors, 0u);
}

// A full backlog refuses the datagram whole, counted once: the qdisc's drop (tx_drops), the
// kernel's ENOBUFS (OutDiscards, SndbufErrors; hidden from the caller without IP_RECVERR).
TEST_P(UdpGsoQueueTest, FullBacklogRefusesTheWholeDatagram) {
  fill(UdpStack::kTxBacklogMax);
  const size_t before = UdpStack::kTxBacklogMax + kDepth;
  EXPECT_EQ(send(10 * 500, 500, 9), 0);
  EXPECT_EQ(stack->tx_backlog(), UdpStack::kTxBacklogMax);
  EXPECT_EQ(stack->tx_drops, 1u);
  EXPECT_EQ(mib.SndbufErrors, 1u);
  EXPECT_EQ(stack->mib.OutDiscards, 1u);
  inet.recverr = true;
  EXPECT_EQ(send(10 * 500, 500, 9), -ENOBUFS);
  EXPECT_EQ(stack->tx_drops, 2u);
  drain();
  EXPECT_EQ(rx.size(), before);  // nothing of either datagram
}

// A datagram of one frame meeting a full device queue and an empty backlog: after one more try
// (the doorbell rung, completions reaped: none came) it is dropped as a full qdisc drops it
// (tx_drops; ENOBUFS, SndbufErrors, hidden from the caller without IP_RECVERR); the queued
// frames still leave. (UdpStack::xmit_one(), the one-frame path of queue_xmit().)
TEST_P(UdpGsoQueueTest, FullDeviceQueueDropsASingleFrame) {
  for (uint32_t i = 0; i < kDepth; ++i) ASSERT_EQ(send(10, 0, 3), 0);
  EXPECT_EQ(stack->tx_in_flight, kDepth);
  EXPECT_EQ(send(10, 0, 4), 0);
  EXPECT_EQ(stack->tx_drops, 1u);
  EXPECT_EQ(mib.SndbufErrors, 1u);
  EXPECT_EQ(stack->mib.OutDiscards, 1u);
  inet.recverr = true;
  EXPECT_EQ(send(10, 0, 5), -ENOBUFS);
  EXPECT_EQ(stack->tx_drops, 2u);
  EXPECT_EQ(stack->tx_backlog(), 0u);
  drain();
  ASSERT_EQ(rx.size(), kDepth);
  EXPECT_EQ(rx.back().payload, std::vector<uint8_t>({3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
}

constexpr NetdevFeatures kNoOffloads{.max_segs = 18, .mtu = 1500, .max_frame = 1514};
constexpr NetdevFeatures kCsum{.ip_csum = true, .l4_csum = true, .max_segs = 18, .mtu = 1500, .max_frame = 1514};
// UDP GSO is cut in software on every device (none has NETIF_F_GSO_UDP_L4), TSO or not.
constexpr NetdevFeatures kTso{.ip_csum = true, .l4_csum = true, .tso = true, .tso_max_size = 65536, .max_segs = 18,
                              .mtu = 1500, .max_frame = 1514};

INSTANTIATE_TEST_SUITE_P(Devices, UdpGsoQueueTest,
                         ::testing::Values(Shape{"NoOffloads", kNoOffloads}, Shape{"Csum", kCsum},
                                           Shape{"Tso", kTso}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace xmit
