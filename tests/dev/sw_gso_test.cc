// tests/dev/sw_gso_test.cc — software GSO at the device-independent xmit path: a 64 KiB TCP GSO
// skb handed to IP (ip_queue_xmit(), as TCP hands it) over a device without TSO reaches the wire as
// the segments the kernel's tcp_gso_segment()/inet_gso_segment() make of it. The expected frames are
// built byte by byte by tests/dev/test_frames (not by stack/dev/sw_offload) from those functions'
// rules: segment n carries payload bytes [n * mss, (n + 1) * mss), seq + n * mss, IP id + n
// ("iph->id = htons(id++)"), its own tot_len and both checksums; FIN and PSH only on the last
// segment ("th->fin = th->psh = 0" on every one before it), CWR only on the first
// ("th->cwr &= ecn_cwr_mask" after it); options and the other fields as in the GSO skb.
#include <arpa/inet.h>

#include <cstring>
#include <ostream>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "stack/dev/sim_link.h"
#include "stack/ipv4/ip_output.h"
#include "stack/skb/pool.h"
#include "stack/udp/udp_stack.h"
#include "tests/dev/test_frames.h"
#include "tests/neigh/fake_fib.h"
#include "tests/udp/udp_bed.h"

namespace xmit {
namespace {

using testing::FakeFib;
using testing::L4Spec;
using testing::make_frame;

constexpr uint16_t kMss = 1448;
constexpr uint32_t kSeq = 0x7ffff000;  // the sequence numbers wrap inside the skb
constexpr uint16_t kIpId = 0xfff0;     // and so do the IP ids
constexpr uint8_t kSeed = 7;
constexpr uint8_t kAck = 0x10, kPsh = 0x08, kFin = 0x01, kCwr = 0x80;
// NOP, NOP, timestamps (kind 8, length 10): what a Linux TCP header carries (doff 8).
const std::vector<uint8_t> kTsOpt = {1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78};

struct Shape {
  const char* name;
  NetdevFeatures features;
  uint32_t payload;         // TCP payload of the GSO skb
  uint32_t linear_payload;  // of it, in the skb's head after the headers (TCP's own skbs: 0)
  uint32_t tx_depth = 64;
};
void PrintTo(const Shape& s, std::ostream* os) { *os << s.name; }

class SwGsoTest : public ::testing::TestWithParam<Shape> {
 protected:
  void SetUp() override {
    const Shape& p = GetParam();
    cfg.ifindex_a = FakeFib::kIfindex;
    cfg.features = p.features;
    cfg.steering = false;  // every frame to b's poll_rx()
    cfg.tx_depth = p.tx_depth;
    link = std::make_unique<SimLink>(cfg);
    tap = std::make_unique<udp_testing::TxTap>(&link->a());
    tap->completion_wakes = completion_wakes;
    fib.routes[daddr] = {0, Rtable{.type = RTN_UNICAST, .oif = FakeFib::kIfindex, .prefsrc = saddr}};
    NeighInfo n{.nud_state = NUD_REACHABLE, .has_ha = true};
    std::memcpy(n.ha.data(), testing::kMacB, 6);
    fib.kernel[{FakeFib::kIfindex, daddr}] = n;
    ASSERT_EQ(UdpStack::create(tap.get(), &fib, stack_opt, &stack), 0);
    ASSERT_EQ(BufPool::create(128, 512, &heads), 0);
    ASSERT_EQ(BufPool::create(8, 32768, &pages), 0);
    ASSERT_EQ(SkbPool::create(128, heads.get(), &skbs), 0);
  }

  // A TCP GSO skb as TCP's __tcp_transmit_skb() hands it to IP: the TCP header pushed in the head
  // (with kTsOpt), `linear` payload bytes after it, the rest in fragments of 32 KiB pages (cut at
  // page ends, so some segments span two fragments), CHECKSUM_PARTIAL over the pseudo-header,
  // gso_size kMss. Payload byte i is (kSeed + i) & 0xff.
  sk_buff* gso_skb(uint32_t payload, uint32_t linear, uint8_t flags) {
    sk_buff* skb = skbs->alloc_skb();
    EXPECT_NE(skb, nullptr);
    EXPECT_EQ(skb_reserve(skb, 160), 0);
    uint8_t* lin = skb_put(skb, linear);
    for (uint32_t i = 0; i < linear; ++i) lin[i] = static_cast<uint8_t>(kSeed + i);
    for (uint32_t off = linear; off < payload;) {
      uint8_t* page = pages->alloc();
      EXPECT_NE(page, nullptr);
      const uint32_t n = std::min<uint32_t>(32768, payload - off);
      for (uint32_t i = 0; i < n; ++i) page[i] = static_cast<uint8_t>(kSeed + off + i);
      EXPECT_EQ(skb_fill_frag(skb, skb_frag_pool(pages.get(), page, n)), 0);
      off += n;
    }
    const uint32_t thlen = 20 + static_cast<uint32_t>(kTsOpt.size());
    uint8_t* th = skb_push(skb, thlen);
    skb_reset_transport_header(skb);
    std::memset(th, 0, thlen);
    store_be16(th, kSport);
    store_be16(th + 2, kDport);
    store_be32(th + 4, kSeq);
    store_be32(th + 8, 1);
    th[12] = static_cast<uint8_t>((thlen / 4) << 4);
    th[13] = flags;
    store_be16(th + 14, 65535);
    std::memcpy(th + 20, kTsOpt.data(), kTsOpt.size());
    skb->ip_summed = CHECKSUM_PARTIAL;
    skb->csum_start = skb->transport_header;
    skb->csum_offset = 16;
    store_raw16(th + 16, static_cast<sum16>(~csum_tcpudp_magic(saddr, daddr, skb->len, IPPROTO_TCP, 0)));
    skb_shinfo(skb)->gso_size = kMss;
    skb_shinfo(skb)->gso_segs = static_cast<uint16_t>((payload + kMss - 1) / kMss);
    return skb;
  }

  // ip_queue_xmit() of the skb as a connected TCP socket's, then the wire: b's frames.
  int send(sk_buff* skb, std::vector<std::vector<uint8_t>>* frames) {
    InetSock inet;
    inet.sk_protocol = IPPROTO_TCP;
    inet.pmtudisc = IP_PMTUDISC_DO;
    inet.inet_saddr = saddr;
    inet.inet_daddr = daddr;
    inet.inet_id = kIpId;  // ip_select_ident_segs(): the first segment's id
    Ipv4Route rt{.oif = FakeFib::kIfindex, .saddr = saddr, .daddr = daddr, .nexthop = daddr, .dev = &cfg.features};
    int err = ip_queue_xmit(stack->out_ctx(1000), &inet, rt, skb);
    link->run(2000);
    link->b().poll_rx(1024, [&](const RxFrame& f) {
      frames->emplace_back(f.data, f.data + f.len);
      return false;
    });
    stack->poll(3000);  // reaps the completions: the segments are freed
    return err;
  }

  // Segment n of `payload` bytes cut at kMss, as the kernel's GSO makes it.
  static std::vector<uint8_t> kernel_segment(uint32_t payload, uint32_t n, uint8_t flags) {
    const uint32_t nsegs = (payload + kMss - 1) / kMss;
    const uint32_t off = n * kMss;
    uint8_t f = flags;
    if (n + 1 != nsegs) f &= static_cast<uint8_t>(~(kFin | kPsh));
    if (n != 0) f &= static_cast<uint8_t>(~kCwr);
    return make_frame(L4Spec{.protocol = 6,
                             .sport = kSport,
                             .dport = kDport,
                             .payload_len = std::min<uint32_t>(kMss, payload - off),
                             .payload_seed = static_cast<uint8_t>(kSeed + off),
                             .ip_id = static_cast<uint16_t>(kIpId + n),
                             .seq = kSeq + off,
                             .tcp_flags = f,
                             .tcp_options = kTsOpt});
  }

  static constexpr uint16_t kSport = 40000, kDport = 5201;
  const be32 saddr = htonl(testing::kAddrA);
  const be32 daddr = htonl(testing::kAddrB);
  SimLinkConfig cfg;
  std::unique_ptr<SimLink> link;
  std::unique_ptr<udp_testing::TxTap> tap;  // link->a() (as a device whose completions wake, if asked)
  bool completion_wakes = false;            // set before SetUp()
  UdpStackOptions stack_opt;                // set before SetUp()
  FakeFib fib;
  std::unique_ptr<UdpStack> stack;
  std::unique_ptr<BufPool> heads, pages;
  std::unique_ptr<SkbPool> skbs;
};

TEST_P(SwGsoTest, WireHasTheKernelsSegments) {
  const Shape& p = GetParam();
  const uint8_t flags = kAck | kPsh | kFin | kCwr;
  std::vector<std::vector<uint8_t>> frames;
  ASSERT_EQ(send(gso_skb(p.payload, p.linear_payload, flags), &frames), 0);
  const uint32_t nsegs = (p.payload + kMss - 1) / kMss;
  ASSERT_EQ(frames.size(), nsegs);
  for (uint32_t n = 0; n < nsegs; ++n) {
    ASSERT_EQ(frames[n], kernel_segment(p.payload, n, flags)) << "segment " << n;
  }
  // Where the device has TSO it gets the GSO skb whole (one frame posted), else one per segment.
  EXPECT_EQ(link->a().tx_stats().tx_frames, p.features.tso ? 1u : nsegs);
  EXPECT_EQ(stack->tx_drops, 0u);
  EXPECT_EQ(stack->tx_in_flight, 0u);
  // Every segment and the GSO skb were freed; the pages are back (no reference left behind).
  EXPECT_EQ(skbs->nr_free(), skbs->nr_skbs());
  EXPECT_EQ(heads->nr_free(), heads->nr_bufs());
  EXPECT_EQ(pages->nr_free(), pages->nr_bufs());
}

// The socket's charge (TCP's tcp_wfree(), which autocorking reads) goes when the device completes
// the last segment, not when the GSO skb is cut and freed: kernel tcp_gso_segment()'s
// copy_destructor. Once, with the GSO skb's truesize.
struct Charge {
  int calls = 0;
  uint32_t truesize = 0;
};
static void count_wfree(sk_buff* skb) {
  auto* c = static_cast<Charge*>(skb->sk);
  ++c->calls;
  c->truesize += skb->truesize;
}

TEST_P(SwGsoTest, SocketIsUnchargedAtTheLastSegmentsCompletion) {
  const Shape& p = GetParam();
  Charge charge;
  sk_buff* skb = gso_skb(p.payload, p.linear_payload, kAck);
  skb->sk = &charge;
  skb->destructor = count_wfree;
  skb->truesize = 1280 + p.payload;
  InetSock inet;
  inet.sk_protocol = IPPROTO_TCP;
  inet.pmtudisc = IP_PMTUDISC_DO;
  inet.inet_saddr = saddr;
  inet.inet_daddr = daddr;
  Ipv4Route rt{.oif = FakeFib::kIfindex, .saddr = saddr, .daddr = daddr, .nexthop = daddr, .dev = &cfg.features};
  ASSERT_EQ(ip_queue_xmit(stack->out_ctx(1000), &inet, rt, skb), 0);
  EXPECT_EQ(charge.calls, 0);  // every segment (or the TSO frame) still at the device
  link->run(2000);
  stack->poll(3000);  // the completions
  EXPECT_EQ(charge.calls, 1);
  EXPECT_EQ(charge.truesize, 1280 + p.payload);
  EXPECT_EQ(skbs->nr_free(), skbs->nr_skbs());
}

// A device queue shorter than the skb's segment count (it takes k = tx_depth of the n segments):
// the rest wait in the stack's backlog (the kernel's qdisc: dev_requeue_skb()) and go, in order, as
// completions make room — none dropped. The socket's charge (the GSO skb's, carried by its last
// segment) stays until that segment's completion.
class SwGsoShortQueueTest : public SwGsoTest {
 protected:
  // Runs the wire and the stack until the backlog is empty and nothing is in flight (at most
  // `rounds` times): b's frames in arrival order.
  void drain(std::vector<std::vector<uint8_t>>* frames, Charge* charge = nullptr, int rounds = 64) {
    for (int i = 0; i < rounds && (stack->tx_backlog() != 0 || stack->tx_in_flight != 0); ++i) {
      if (charge != nullptr) {
        EXPECT_EQ(charge->calls, 0) << "round " << i;  // the last segment is not done
      }
      t_ += 1000;
      link->run(t_);
      link->b().poll_rx(1024, [&](const RxFrame& f) {
        frames->emplace_back(f.data, f.data + f.len);
        return false;
      });
      stack->poll(t_);  // reaps the completions, then the backlog goes to the device
    }
  }
  int queue(sk_buff* skb) {
    InetSock inet;
    inet.sk_protocol = IPPROTO_TCP;
    inet.pmtudisc = IP_PMTUDISC_DO;
    inet.inet_saddr = saddr;
    inet.inet_daddr = daddr;
    inet.inet_id = kIpId;
    Ipv4Route rt{.oif = FakeFib::kIfindex, .saddr = saddr, .daddr = daddr, .nexthop = daddr, .dev = &cfg.features};
    return ip_queue_xmit(stack->out_ctx(t_), &inet, rt, skb);
  }
  uint64_t t_ = 1000;
};

TEST_P(SwGsoShortQueueTest, FullDeviceQueueHoldsTheRestAndSendsItInOrder) {
  const Shape& p = GetParam();
  const uint32_t n = (p.payload + kMss - 1) / kMss;
  Charge charge;
  sk_buff* skb = gso_skb(p.payload, p.linear_payload, kAck | kPsh);
  skb->sk = &charge;
  skb->destructor = count_wfree;
  skb->truesize = 1280 + p.payload;
  ASSERT_EQ(queue(skb), 0);
  EXPECT_EQ(link->a().tx_stats().tx_frames, p.tx_depth);  // the device took k
  EXPECT_EQ(stack->tx_backlog(), n - p.tx_depth);         // the rest waits, none dropped
  std::vector<std::vector<uint8_t>> frames;
  drain(&frames, &charge);
  ASSERT_EQ(frames.size(), n);
  for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(frames[i], kernel_segment(p.payload, i, kAck | kPsh)) << "segment " << i;
  EXPECT_EQ(stack->tx_drops, 0u);
  EXPECT_EQ(stack->tx_requeued, n - p.tx_depth);
  EXPECT_EQ(charge.calls, 1);  // uncharged once, at the last segment's completion
  EXPECT_EQ(charge.truesize, 1280 + p.payload);
  EXPECT_EQ(skbs->nr_free(), skbs->nr_skbs());
  EXPECT_EQ(heads->nr_free(), heads->nr_bufs());
  EXPECT_EQ(pages->nr_free(), pages->nr_bufs());
}

// A frame sent while segments wait goes behind them (a qdisc is FIFO), even when the device has
// room for it by then: a second GSO skb's segments arrive after every one of the first's.
TEST_P(SwGsoShortQueueTest, LaterFramesQueueBehindTheBacklog) {
  const Shape& p = GetParam();
  const uint32_t n = (p.payload + kMss - 1) / kMss;
  ASSERT_EQ(queue(gso_skb(p.payload, p.linear_payload, kAck)), 0);
  ASSERT_GT(stack->tx_backlog(), 0u);
  t_ += 1000;
  link->run(t_);  // the device completes its k frames; nobody has reaped them yet
  ASSERT_EQ(queue(gso_skb(p.payload, p.linear_payload, kAck | kFin)), 0);
  std::vector<std::vector<uint8_t>> frames;
  drain(&frames);
  ASSERT_EQ(frames.size(), 2 * n);
  for (uint32_t i = 0; i < n; ++i) {
    ASSERT_EQ(frames[i], kernel_segment(p.payload, i, kAck)) << "first skb, segment " << i;
    ASSERT_EQ(frames[n + i], kernel_segment(p.payload, i, kAck | kFin)) << "second skb, segment " << i;
  }
  EXPECT_EQ(stack->tx_drops, 0u);
  EXPECT_EQ(skbs->nr_free(), skbs->nr_skbs());
  EXPECT_EQ(pages->nr_free(), pages->nr_bufs());
}

// The stack goes away with segments still waiting: they are freed, the socket uncharged once.
TEST_P(SwGsoShortQueueTest, BacklogIsFreedWithTheStack) {
  const Shape& p = GetParam();
  Charge charge;
  sk_buff* skb = gso_skb(p.payload, p.linear_payload, kAck);
  skb->sk = &charge;
  skb->destructor = count_wfree;
  skb->truesize = 1280 + p.payload;
  ASSERT_EQ(queue(skb), 0);
  ASSERT_GT(stack->tx_backlog(), 0u);
  link->run(t_ + 1000);  // the device completes what it took (the destructor reaps it)
  stack.reset();
  EXPECT_EQ(charge.calls, 1);
  EXPECT_EQ(skbs->nr_free(), skbs->nr_skbs());
  EXPECT_EQ(pages->nr_free(), pages->nr_bufs());
}

// A device with TSO takes the GSO skb whole; with its queue full (one frame), the next GSO skbs
// wait in the backlog whole and follow in order (kernel: the qdisc holds them while the driver's
// ring is full, sch_direct_xmit() -> dev_requeue_skb()). Before: refused with -ENOBUFS and freed.
class TsoShortQueueTest : public SwGsoShortQueueTest {};

TEST_P(TsoShortQueueTest, FullDeviceQueueHoldsTheGsoSkbWhole) {
  const Shape& p = GetParam();
  const uint32_t n = (p.payload + kMss - 1) / kMss;
  const uint8_t flags[3] = {kAck, kAck | kPsh, kAck | kFin};
  for (uint8_t f : flags) ASSERT_EQ(queue(gso_skb(p.payload, p.linear_payload, f)), 0);
  EXPECT_EQ(link->a().tx_stats().tx_frames, 1u);
  EXPECT_EQ(stack->tx_backlog(), 2u);  // two GSO skbs, each one frame for the device
  std::vector<std::vector<uint8_t>> frames;
  drain(&frames);
  ASSERT_EQ(frames.size(), 3 * n);
  for (uint32_t k = 0; k < 3; ++k) {
    for (uint32_t i = 0; i < n; ++i) {
      ASSERT_EQ(frames[k * n + i], kernel_segment(p.payload, i, flags[k])) << "skb " << k << ", segment " << i;
    }
  }
  EXPECT_EQ(stack->tx_drops, 0u);
  EXPECT_EQ(skbs->nr_free(), skbs->nr_skbs());
  EXPECT_EQ(pages->nr_free(), pages->nr_bufs());
}

// The backlog sets its own TX poll deadline: the frames it holds leave at the next completion
// without anyone sending again. The stack's owner (the engine's progress thread) is played by a
// loop that does only what the stack asks for: woken by the TX poll hook, it reaps
// (tx_complete_now()) at next_timer_ns() on the stack's injected clock. Before, nothing asked: the
// frames waited for the program's next call into the stack (or a TCP timer, up to 100 ms), and
// with no TCP connection the progress thread slept on its futex for good.
uint64_t g_clock = 0;  // the stack's clock (UdpStackOptions::clock_ns)
uint64_t fake_clock() { return g_clock; }
std::vector<uint64_t> g_hook;  // each TX poll hook call's deadline
void record_hook(uint64_t deadline) { g_hook.push_back(deadline); }

class SwGsoBacklogDeadlineTest : public SwGsoShortQueueTest {
 protected:
  void SetUp() override {
    g_clock = 1'000'000;
    g_hook.clear();
    stack_opt.clock_ns = fake_clock;
    SwGsoShortQueueTest::SetUp();
    stack->set_tx_poll_hook(record_hook);
  }
  void TearDown() override {
    std::vector<std::vector<uint8_t>> rest;
    wire(&rest);
    stack->tx_complete_now();
    stack.reset();  // before the pools its skbs come from
  }
  // The progress thread: at each deadline the stack names, the wire runs (the device completes what
  // it put on it) and the completions are reaped. No send. Returns the rounds it took.
  int progress(std::vector<std::vector<uint8_t>>* frames, int max_rounds = 64) {
    int rounds = 0;
    while (stack->next_timer_ns() != UINT64_MAX && rounds < max_rounds) {
      ++rounds;
      g_clock = stack->next_timer_ns();
      wire(frames);
      stack->tx_complete_now();
    }
    wire(frames);
    return rounds;
  }
  void wire(std::vector<std::vector<uint8_t>>* frames) {
    t_ += 1000;
    link->run(t_);
    link->b().poll_rx(1024, [&](const RxFrame& f) {
      frames->emplace_back(f.data, f.data + f.len);
      return false;
    });
  }
};

TEST_P(SwGsoBacklogDeadlineTest, HeldFramesLeaveAtTheDeadlineWithoutAnotherSend) {
  const Shape& p = GetParam();
  const uint32_t n = (p.payload + kMss - 1) / kMss;
  ASSERT_EQ(queue(gso_skb(p.payload, p.linear_payload, kAck | kPsh)), 0);
  ASSERT_EQ(stack->tx_backlog(), n - p.tx_depth);  // the device took k, the rest waits
  ASSERT_EQ(g_hook.size(), 1u);  // the sleeper is woken once, when the wait begins
  EXPECT_EQ(g_hook[0], 1'000'000 + UdpStack::kTxPollMinNs);
  EXPECT_EQ(stack->next_timer_ns(), g_hook[0]);

  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t left = n - p.tx_depth; left != 0;) {  // a queue's worth per completion
    ASSERT_NE(stack->next_timer_ns(), UINT64_MAX);
    g_clock = stack->next_timer_ns();
    wire(&frames);
    stack->tx_complete_now();
    left -= std::min(left, p.tx_depth);
    ASSERT_EQ(stack->tx_backlog(), left);  // the count kept as frames leave (qdisc_run())
  }
  EXPECT_EQ(progress(&frames), 0);
  ASSERT_EQ(frames.size(), n);
  for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(frames[i], kernel_segment(p.payload, i, kAck | kPsh)) << "segment " << i;
  EXPECT_EQ(stack->tx_backlog(), 0u);
  EXPECT_EQ(stack->tx_drops, 0u);
  EXPECT_EQ(stack->next_timer_ns(), UINT64_MAX);  // nothing waits: no deadline, no wake-ups
  EXPECT_EQ(g_hook.size(), 1u);
  stack->tx_complete_now();  // the last completions (the wire ran)
  EXPECT_EQ(skbs->nr_free(), skbs->nr_skbs());

  // A skb the device takes whole asks for nothing.
  ASSERT_EQ(queue(gso_skb(p.tx_depth * kMss, 0, kAck)), 0);
  EXPECT_EQ(stack->tx_backlog(), 0u);
  EXPECT_EQ(stack->next_timer_ns(), UINT64_MAX);
}

// Completions that do not come: the deadline backs off (doubling to kTxPollMaxNs) instead of
// spinning, and the frames still leave once they come.
TEST_P(SwGsoBacklogDeadlineTest, DeadlineBacksOffWhileNoCompletionComes) {
  const Shape& p = GetParam();
  const uint32_t n = (p.payload + kMss - 1) / kMss;
  ASSERT_EQ(queue(gso_skb(p.payload, p.linear_payload, kAck)), 0);
  uint64_t gap = UdpStack::kTxPollMinNs;
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(stack->next_timer_ns(), g_clock + gap) << "round " << i;
    g_clock = stack->next_timer_ns();
    stack->tx_complete_now();  // the device completed nothing (the wire did not run)
    gap = std::min(gap * 2, UdpStack::kTxPollMaxNs);
  }
  EXPECT_EQ(stack->next_timer_ns(), g_clock + UdpStack::kTxPollMaxNs);
  EXPECT_EQ(stack->tx_backlog(), n - p.tx_depth);
  EXPECT_EQ(g_hook.size(), 1u);
  std::vector<std::vector<uint8_t>> frames;
  EXPECT_GT(progress(&frames), 0);
  EXPECT_EQ(frames.size(), n);
  EXPECT_EQ(stack->next_timer_ns(), UINT64_MAX);
}

// The backlog emptied by a later send (queue_xmit() runs it first): the deadline goes with it.
TEST_P(SwGsoBacklogDeadlineTest, BacklogEmptiedBySendClearsTheDeadline) {
  const Shape& p = GetParam();
  const uint32_t n = (p.payload + kMss - 1) / kMss;
  ASSERT_EQ(queue(gso_skb(p.payload, p.linear_payload, kAck)), 0);
  ASSERT_NE(stack->next_timer_ns(), UINT64_MAX);
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t i = 0; i < n && stack->tx_backlog() != 0; ++i) {
    wire(&frames);  // completions, which the send below reaps (dev_xmit_list()'s retry)
    ASSERT_EQ(queue(gso_skb(2 * kMss, 0, kAck)), 0);
  }
  EXPECT_EQ(stack->tx_backlog(), 0u);
  EXPECT_EQ(stack->next_timer_ns(), UINT64_MAX);
}

// A device whose completions wake its wait fd (verbs): no deadline, but the sleeper is still woken
// (deadline UINT64_MAX: it waits on the device), and each completion then moves the backlog on.
class SwGsoBacklogWakingDeviceTest : public SwGsoBacklogDeadlineTest {
 protected:
  void SetUp() override {
    completion_wakes = true;
    SwGsoBacklogDeadlineTest::SetUp();
  }
};

TEST_P(SwGsoBacklogWakingDeviceTest, HookWakesTheSleeperWithoutADeadline) {
  const Shape& p = GetParam();
  const uint32_t n = (p.payload + kMss - 1) / kMss;
  ASSERT_EQ(queue(gso_skb(p.payload, p.linear_payload, kAck)), 0);
  ASSERT_EQ(g_hook.size(), 1u);
  EXPECT_EQ(g_hook[0], UINT64_MAX);
  EXPECT_EQ(stack->next_timer_ns(), UINT64_MAX);
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t i = 0; i < n && stack->tx_backlog() != 0; ++i) {  // each completion wakes the thread
    wire(&frames);
    stack->tx_complete_now();
    EXPECT_EQ(stack->next_timer_ns(), UINT64_MAX);
  }
  wire(&frames);
  EXPECT_EQ(stack->tx_backlog(), 0u);
  EXPECT_EQ(frames.size(), n);
  EXPECT_EQ(g_hook.size(), 1u);
}

constexpr NetdevFeatures kNoOffloads{.max_segs = 18, .mtu = 1500, .max_frame = 1514};
constexpr NetdevFeatures kCsumNoTso{.ip_csum = true, .l4_csum = true, .max_segs = 18, .mtu = 1500, .max_frame = 1514};
constexpr NetdevFeatures kTso{.ip_csum = true, .l4_csum = true, .tso = true, .tso_max_size = 65536, .max_segs = 18,
                              .mtu = 1500, .max_frame = 1514};

// 65483 bytes: the largest payload of one IPv4 packet with a 32-byte TCP header (45 full segments
// and one of 323 bytes); 65160: the kernel's 64 KiB size_goal at mss 1448 (45 full segments; a
// TSO device takes no more than 64 KiB frames).
INSTANTIATE_TEST_SUITE_P(
    Devices, SwGsoTest,
    ::testing::Values(Shape{"NoOffloads", kNoOffloads, 65483, 0}, Shape{"NoOffloadsGoal", kNoOffloads, 65160, 0},
                      Shape{"NoOffloadsLinear", kNoOffloads, 65483, 300}, Shape{"CsumNoTso", kCsumNoTso, 65483, 0},
                      Shape{"Tso", kTso, 65160, 0}),
    [](const auto& info) { return std::string(info.param.name); });
INSTANTIATE_TEST_SUITE_P(Devices, SwGsoShortQueueTest,
                         ::testing::Values(Shape{"NoOffloads", kNoOffloads, 65483, 0, 16},
                                           Shape{"CsumNoTso", kCsumNoTso, 65483, 0, 16}),
                         [](const auto& info) { return std::string(info.param.name); });

INSTANTIATE_TEST_SUITE_P(Devices, TsoShortQueueTest, ::testing::Values(Shape{"Tso", kTso, 65160, 0, 1}),
                         [](const auto& info) { return std::string(info.param.name); });
INSTANTIATE_TEST_SUITE_P(Devices, SwGsoBacklogDeadlineTest,
                         ::testing::Values(Shape{"NoOffloads", kNoOffloads, 65483, 0, 16},
                                           Shape{"CsumNoTso", kCsumNoTso, 65483, 0, 16}),
                         [](const auto& info) { return std::string(info.param.name); });
INSTANTIATE_TEST_SUITE_P(Devices, SwGsoBacklogWakingDeviceTest,
                         ::testing::Values(Shape{"NoOffloads", kNoOffloads, 65483, 0, 16}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace xmit
