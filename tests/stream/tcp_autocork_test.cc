// tests/stream/tcp_autocork_test.cc — autocorking (tcp_should_autocork(), stack/tcp/tcp_tsq.h) on
// two stack instances over the in-memory link, whose frames stay at the device (uncompleted) until
// the link runs: a small write behind an earlier segment still at the device waits in the tail skb,
// later writes join it, and the completion of that segment sends it (tcp_wfree() -> the TSQ
// handler), with no ACK from the peer. TCP_NODELAY throughout, so Nagle holds nothing back.
#include "tests/dev/forwarding_netdev.h"
#include "tests/stream/tcp_socket_bed.h"

#include <numeric>

#include <netinet/tcp.h>  // after the stack's headers (its macros rename their constants)

namespace xmit {
namespace {

using namespace testing_bed;  // NOLINT: the bed's fixture and helpers

class TcpAutocorkTest : public TcpSocketTest {
 protected:
  // A connected pair, the client with TCP_NODELAY, everything sent so far completed and acknowledged.
  void open() {
    connect_pair(&c, &s);
    int on = 1;
    ASSERT_EQ(c->setsockopt(SOL_TCP, TCP_NODELAY, &on, sizeof on), 0);
    pump();
  }
  void close() {
    c->put();
    s->put();
    listener->put();
  }
  // Frames a has handed to its device so far.
  uint64_t a_frames() { return link->a().tx_stats().tx_frames; }
  uint64_t autocorked() { return a.tcp->net_mib.TCPAutoCorking; }
  // The device completes what a posted (the frames go on the wire, none lands yet: the link's
  // latency), and a's stack polls: its TX completions, nothing from b.
  void complete_a() {
    link->run(g_now);
    std::lock_guard<StackMutex> g(a.udp->mu());
    a.udp->poll(g_now);
  }
  // `n` writes of `len` bytes each, stream bytes from `pos` on (byte i is i * 7).
  void writes(int n, size_t len) {
    for (int i = 0; i < n; ++i) {
      std::vector<uint8_t> buf(len);
      for (size_t k = 0; k < len; ++k) buf[k] = static_cast<uint8_t>((pos + k) * 7);
      ASSERT_EQ(send(c, buf.data(), len), static_cast<ssize_t>(len));
      pos += len;
    }
  }
  void expect_stream() {
    std::vector<uint8_t> got = read_all(s, pos);
    ASSERT_EQ(got.size(), pos);
    for (size_t k = 0; k < pos; ++k) ASSERT_EQ(got[k], static_cast<uint8_t>(k * 7)) << "byte " << k;
  }
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  size_t pos = 0;
};

// 100 writes of 10 bytes behind a 1000-byte segment the device still holds: the first finds the
// retransmit queue busy and the device holding more truesize (1 + 1280 + 1000) than the new tail
// (1280 + 10), so it is held (TSQF_THROTTLED, TcpExtTCPAutoCorking once); the others join it, the
// tail growing to 1000 bytes (truesize 2280, still below). The completion of the first segment
// sends them as one segment, without an ACK from b.
TEST_F(TcpAutocorkTest, SmallWritesWaitForTheCompletionAndLeaveAsOneSegment) {
  open();
  const uint64_t f0 = a_frames();
  writes(1, 1000);
  EXPECT_EQ(a_frames(), f0 + 1);  // nothing at the device: it leaves at once
  writes(100, 10);
  EXPECT_EQ(a_frames(), f0 + 1);
  EXPECT_EQ(autocorked(), 1u);
  complete_a();
  EXPECT_EQ(a_frames(), f0 + 2);
  expect_stream();
  close();
}

// The link's completions, like AF_XDP's, wake no one (Netdev::tx_completion_wakes() is false): a
// tail held for one makes the TX poll a's next deadline, kTxPollMinNs after the send, instead of
// whatever timer came next (the RTO, 200 ms and more, or the next slice). At that deadline, before
// the device completed, nothing leaves and the poll is pushed back by twice the gap; once the
// device has completed (late: no poll of a's between), the next look — what the progress thread
// runs at the deadline, UdpStack::tx_complete_now() — sends the tail, with no receive and no ACK
// from b (b's stack never runs). Then nothing waits and no TX poll deadline is left: an idle stack
// is not woken.
TEST_F(TcpAutocorkTest, HeldTailLeavesAtTheTxPollAfterALateCompletion) {
  open();
  const uint64_t f0 = a_frames();
  writes(1, 1000);
  writes(10, 10);
  ASSERT_EQ(a_frames(), f0 + 1);
  ASSERT_EQ(autocorked(), 1u);
  auto next = [&] {
    std::lock_guard<StackMutex> g(a.udp->mu());
    return a.tcp->next_timer_ns();
  };
  auto look = [&](uint64_t now) {
    g_now = now;
    std::lock_guard<StackMutex> g(a.udp->mu());
    a.udp->tx_complete_now();
  };
  EXPECT_EQ(next(), g_now + TcpStack::kTxPollMinNs);
  look(next());  // the device has not completed yet
  EXPECT_EQ(a_frames(), f0 + 1);
  EXPECT_EQ(next(), g_now + 2 * TcpStack::kTxPollMinNs);
  link->run(g_now);  // the device completes the 1000-byte segment (b is not polled: no ACK)
  EXPECT_EQ(a_frames(), f0 + 1);
  look(next());
  EXPECT_EQ(a_frames(), f0 + 2);
  EXPECT_EQ(a.tcp->tx_poll_ns(), 0u);
  EXPECT_GT(next(), g_now + 100'000'000u);  // the RTO of what is in flight, nothing sooner
  expect_stream();
  close();
}

// A device whose TX completions wake a waiter (the verbs send CQ on its completion channel) needs no
// TX poll: the same held tail leaves a's next deadline at its timers.
class WakingDev final : public ForwardingNetdev {
 public:
  explicit WakingDev(Netdev& d) : ForwardingNetdev(&d) {}
  bool tx_completion_wakes() const override { return true; }
};

class TcpAutocorkWakingTest : public TcpAutocorkTest {
 protected:
  void SetUp() override {
    cfg.ifindex_a = cfg.ifindex_b = testing::FakeFib::kIfindex;
    cfg.features = NetdevFeatures{.max_segs = 16, .mtu = 1500, .max_frame = 1514};
    cfg.steering = false;
    cfg.latency_ns = latency_ns;
    link = std::make_unique<SimLink>(cfg);
    waking = std::make_unique<WakingDev>(link->a());
    a.init(waking.get(), kA, kB, cfg.mac_b, port_high_);
    b.init(&link->b(), kB, kA, cfg.mac_a);
  }
  // a's instance reaps its device when it goes: before `waking` does (the bed's members outlive it).
  void TearDown() override {
    a.udp.reset();
    a.tcp.reset();
  }
  std::unique_ptr<WakingDev> waking;
};

TEST_F(TcpAutocorkWakingTest, NoTxPollWhereCompletionsWake) {
  open();
  const uint64_t f0 = a_frames();
  writes(1, 1000);
  writes(10, 10);
  ASSERT_EQ(a_frames(), f0 + 1);
  ASSERT_EQ(autocorked(), 1u);
  EXPECT_EQ(a.tcp->tx_poll_ns(), 0u);
  {
    std::lock_guard<StackMutex> g(a.udp->mu());
    EXPECT_GT(a.tcp->next_timer_ns(), g_now + 100'000'000u);
  }
  complete_a();  // the completion's wake-up: the waiter polls
  EXPECT_EQ(a_frames(), f0 + 2);
  expect_stream();
  close();
}

// A device queue of 4 frames under a 10-segment flight: software GSO's segments past it wait in the
// instance's backlog, which (the device waking no one) sets a TX poll deadline too; at it, after
// the device completed, the backlog goes — every byte arrives, nothing dropped.
class TcpBacklogTest : public TcpAutocorkTest {
 protected:
  TcpBacklogTest() { latency_ns = 50'000; }
  void SetUp() override {
    cfg.tx_depth = 4;
    TcpAutocorkTest::SetUp();
  }
};

TEST_F(TcpBacklogTest, SegmentsPastAFullDeviceQueueWaitAndGoAtTheTxPoll) {
  open();
  const uint64_t f0 = a_frames();
  writes(1, 10 * 1448);  // one GSO skb of 10 MSS (the initial window), cut for the device
  EXPECT_EQ(a_frames(), f0 + 4);
  EXPECT_EQ(a.udp->tx_backlog(), 6u);
  uint64_t due;
  {
    std::lock_guard<StackMutex> g(a.udp->mu());
    due = a.tcp->next_timer_ns();
  }
  EXPECT_EQ(due, g_now + TcpStack::kTxPollMinNs);
  link->run(g_now);  // the device completes its 4
  g_now = due;
  {
    std::lock_guard<StackMutex> g(a.udp->mu());
    a.udp->tx_complete_now();
  }
  EXPECT_EQ(a_frames(), f0 + 8);  // 4 more from the backlog: the device's room
  EXPECT_EQ(a.udp->tx_backlog(), 2u);
  expect_stream();  // pumps both ends: the rest goes as completions come
  EXPECT_EQ(a.udp->tx_backlog(), 0u);
  EXPECT_EQ(a.udp->tx_drops, 0u);
  EXPECT_EQ(link->a().tx_stats().tx_frames, a_frames());
  close();
}

// The backlog has one TX poll series, its owner's (UdpStack): TCP's next timer is that deadline,
// doubling while no completion comes and back to the shortest gap once completions make room.
// Before, TCP kept a second series for the same backlog, which did not restart when frames left
// (here: 20 us by the backlog's series, 160 us by TCP's), nor began when a send filled the backlog
// without a reap after it (a UDP send): the two interleaved, and the progress thread, which sleeps
// until the earlier, woke for both.
TEST_F(TcpBacklogTest, BacklogHasOneTxPollSeries) {
  open();
  writes(1, 10 * 1448);
  ASSERT_EQ(a.udp->tx_backlog(), 6u);
  {
    std::lock_guard<StackMutex> g(a.udp->mu());
    uint64_t gap = UdpStack::kTxPollMinNs;
    for (int i = 0; i < 3; ++i) {
      const uint64_t due = a.tcp->next_timer_ns();
      EXPECT_EQ(due, a.udp->next_timer_ns()) << "round " << i;
      EXPECT_EQ(due, g_now + gap) << "round " << i;
      g_now = due;
      a.udp->tx_complete_now();  // the device completed nothing (the link did not run)
      gap *= 2;
    }
    g_now = a.tcp->next_timer_ns();
    link->run(g_now);  // the device completes its 4
    a.udp->tx_complete_now();
    EXPECT_EQ(a.udp->tx_backlog(), 2u);
    EXPECT_EQ(a.udp->next_timer_ns(), g_now + UdpStack::kTxPollMinNs);
    EXPECT_EQ(a.tcp->next_timer_ns(), a.udp->next_timer_ns());
  }
  close();  // the sockets back (LeakSanitizer)
}

// The comparison is the kernel's: the tail is held while the device holds more truesize than the
// tail has. 1000 bytes at the device (1 + 2280); a tail of 999 bytes (2279) waits, 1001 (2281) goes.
TEST_F(TcpAutocorkTest, TailAsLargeAsWhatTheDeviceHoldsGoesAtOnce) {
  open();
  const uint64_t f0 = a_frames();
  writes(1, 1000);
  writes(1, 999);
  EXPECT_EQ(a_frames(), f0 + 1);
  EXPECT_EQ(autocorked(), 1u);
  writes(1, 2);
  EXPECT_EQ(a_frames(), f0 + 2);
  EXPECT_EQ(autocorked(), 1u);  // counted when the socket is throttled, not per held write
  expect_stream();
  close();
}

// A skb filled to size_goal is pushed as it fills (tcp_push_one()), never held: size_goal is 45 MSS
// here (software GSO: the link has no TSO), so one write of 65160 bytes behind a segment at the
// device leaves at once, as much of it as the congestion window lets (9 MSS of the initial 10),
// and nothing is autocorked — what the device holds then is below the rest's truesize.
TEST_F(TcpAutocorkTest, FullSegmentsAreNotHeld) {
  open();
  const uint64_t f0 = a_frames();
  writes(1, 1000);
  writes(1, 45 * 1448);
  EXPECT_EQ(a_frames(), f0 + 10);
  EXPECT_EQ(autocorked(), 0u);
  expect_stream();
  close();
}

// A connection freed (SO_LINGER 0: a reset, then done()) while its reset is at the device lives on
// until that completes: the completion's tcp_wfree() must not touch freed memory (kernel:
// sk_wmem_alloc holds the socket).
TEST_F(TcpAutocorkTest, FreedConnectionWaitsForItsLastCompletion) {
  open();
  linger lg{.l_onoff = 1, .l_linger = 0};
  ASSERT_EQ(c->setsockopt(SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  writes(1, 100);
  c->put();
  c = nullptr;
  EXPECT_EQ(a.tcp->dying(), 1u);
  complete_a();
  EXPECT_EQ(a.tcp->dying(), 0u);
  s->put();
  listener->put();
}

class TcpAutocorkOffTest : public TcpAutocorkTest {
 protected:
  TcpAutocorkOffTest() { a.autocorking = false; }
};

// net.ipv4.tcp_autocorking = 0: with TCP_NODELAY each write leaves at once (8 of them: the initial
// congestion window, 10 segments, would hold the 10th back).
TEST_F(TcpAutocorkOffTest, EachWriteLeavesAtOnce) {
  open();
  const uint64_t f0 = a_frames();
  writes(1, 1000);
  writes(8, 10);
  EXPECT_EQ(a_frames(), f0 + 9);
  EXPECT_EQ(autocorked(), 0u);
  expect_stream();
  close();
}

}  // namespace
}  // namespace xmit
