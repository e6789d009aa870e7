// tests/tcp/tcp_tsq_test.cc — the protocol's half of autocorking: what a segment at the device costs
// its socket (sk_wmem_alloc, the kernel's truesize), tcp_should_autocork()'s conditions in
// tcp_push(), and the completion that queues the socket for tcp_tsq_write(). The bed's device holds
// each segment until complete(). MSS 1448, size_goal 65160 (TSO), cwnd 10, TCP_NODELAY.
#include <sys/socket.h>

#include <algorithm>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tcp/tcp_bed.h"

namespace xmit::testing_tcp {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

struct HeldBed : TcpBed {
  HeldBed() {
    hold = true;
    attach_tsq();
    nodelay(true);
  }
};

// Each segment at the device is charged its skb's truesize (1280 + payload, tcp_tsq.h) until its
// completion; the charge of a clone is the original's at the time it was sent.
TEST(TcpTsq, SegmentsAtTheDeviceAreChargedTheirTruesize) {
  HeldBed bed;
  bed.send(100);
  EXPECT_EQ(tcp_wmem_alloc_get(&bed.tp), 1380u);
  bed.send(2000);  // the rtx queue is busy and 1381 > 1280 + 2000 is false: it goes
  EXPECT_EQ(tcp_wmem_alloc_get(&bed.tp), 1380u + 3280u);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 100, kAckPsh, 1, 0}, Seg{100, 2000, kAckPsh, 2, 1448}));
  bed.complete();
  EXPECT_EQ(tcp_wmem_alloc_get(&bed.tp), 0u);
}

// tcp_push(): a tail below size_goal, a busy retransmit queue and more truesize at the device than
// the tail's: held (TSQF_THROTTLED). Writes join it; the completion queues the socket once
// (TSQF_QUEUED) and the TSQ handler sends the tail, with no ACK in between.
TEST(TcpTsq, CompletionSendsWhatAutocorkHeld) {
  HeldBed bed;
  LinuxMib mib;
  bed.tp.net_mib = &mib;
  bed.send(1000);
  bed.send(10);
  bed.send(10);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 1000, kAckPsh, 1, 0}));
  EXPECT_EQ(bed.tp.sk_tsq_flags, TSQF_THROTTLED);
  EXPECT_EQ(mib.TCPAutoCorking, 1u);
  for (sk_buff* skb : std::exchange(bed.held, {})) kfree_skb(skb);  // the completion alone
  EXPECT_EQ(bed.tp.sk_tsq_flags, TSQF_QUEUED);
  EXPECT_EQ(bed.tsq.head, &bed.tp);
  EXPECT_THAT(bed.take(), IsEmpty());
  bed.complete();  // the owner's TSQ handler
  EXPECT_EQ(bed.tp.sk_tsq_flags, 0);
  EXPECT_EQ(bed.tsq.head, nullptr);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{1000, 20, kAckPsh, 1, 0}));
}

// tcp_skb_can_collapse_to(): an MSG_EOR tail gets no more data, so waiting for it is futile.
TEST(TcpTsq, EorTailIsNotHeld) {
  HeldBed bed;
  bed.send(1000);
  bed.send(10, MSG_EOR);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 1000, kAckPsh, 1, 0}, Seg{1000, 10, kAckPsh, 1, 0}));
  EXPECT_EQ(bed.tp.sk_tsq_flags, 0);
}

// net.ipv4.tcp_autocorking = 0, and a socket no owner runs the TSQ handler for: nothing is held.
TEST(TcpTsq, OffOrWithoutAnOwnerNothingIsHeld) {
  for (int variant = 0; variant < 2; ++variant) {
    HeldBed bed;
    if (variant == 0) bed.tp.sysctl_tcp_autocorking = false;
    if (variant == 1) bed.tp.tsq = nullptr;
    bed.send(1000);
    bed.send(10);
    EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 1000, kAckPsh, 1, 0}, Seg{1000, 10, kAckPsh, 1, 0})) << variant;
  }
}

// A pure ACK at the device is charged 2 bytes (skb_set_tcp_pure_ack()), not an skb's 1280.
TEST(TcpTsq, PureAckIsChargedTwoBytes) {
  HeldBed bed;
  tcp_send_ack(&bed.tp, [&bed](sk_buff* s) { return bed.xmit(s); });
  EXPECT_EQ(tcp_wmem_alloc_get(&bed.tp), 2u);
  bed.complete();
  EXPECT_EQ(tcp_wmem_alloc_get(&bed.tp), 0u);
}

// sk_free(): a socket freed with segments at the device is destroyed by the last completion.
TEST(TcpTsq, FreedSocketIsDestroyedAtItsLastCompletion) {
  HeldBed bed;
  int destroyed = 0;
  bed.tsq.owner = &destroyed;
  bed.tsq.sk_destruct = [](tsq_tasklet* t, tcp_sock*) { ++*static_cast<int*>(t->owner); };
  bed.send(1000);
  bed.send(10);  // held: the socket is throttled
  EXPECT_FALSE(tcp_sk_free(&bed.tp));
  EXPECT_EQ(bed.tp.sk_tsq_flags, 0);
  bed.complete();
  EXPECT_EQ(destroyed, 1);
  EXPECT_EQ(bed.tsq.head, nullptr);  // not queued: it is gone
}

// TCP Small Queues' own limit (tcp_small_queue_check()). Autocorking is off so that only TSQ holds;
// each write is one MSS, so each goes as its own skb of truesize 1280 + 1448 = 2728.
struct TsqBed : HeldBed {
  static constexpr uint32_t kTruesize = kTcpSkbHeadTruesize + 1448;
  explicit TsqBed(uint32_t limit_output_bytes) {
    tp.sysctl_tcp_autocorking = false;
    tp.sysctl_tcp_limit_output_bytes = limit_output_bytes;
  }
};

// Before the first ACK the pacing rate is ~0, so the limit is tcp_limit_output_bytes (4000 here):
// two skbs at the device (1 + 2 * 2728 bytes of sk_wmem_alloc) are over it, so the third waits
// (TSQF_THROTTLED) and joins no ACK; the completion of the two queues the socket and the TSQ
// handler sends it.
TEST(TcpTsq, SocketStopsAtTheLimitAndResumesOnCompletion) {
  TsqBed bed(4000);
  bed.send(1448);
  bed.send(1448);  // 2729 bytes at the device: under the limit
  bed.send(1448);  // 5457 > 4000, two skbs in the retransmit queue: held
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 1448, kAckPsh, 1, 0}, Seg{1448, 1448, kAckPsh, 1, 0}));
  EXPECT_EQ(bed.tp.sk_wmem_alloc, 1 + 2 * TsqBed::kTruesize);
  EXPECT_EQ(bed.tp.sk_tsq_flags, TSQF_THROTTLED);
  EXPECT_EQ(bed.tsq.throttled, 1u);
  EXPECT_EQ(bed.tp.snd_nxt - kIsn, 2896u);
  bed.complete();
  EXPECT_THAT(bed.take(), ElementsAre(Seg{2896, 1448, kAckPsh, 1, 0}));
  EXPECT_EQ(bed.tp.sk_tsq_flags, 0);
  EXPECT_EQ(bed.tsq.throttled, 0u);
}

// "Always send skb if rtx queue is empty or has one skb": with a limit of 1 byte every skb at the
// device is over it, yet the first skb (empty retransmit queue) and the second (one skb in it) go;
// the third waits for a completion.
TEST(TcpTsq, EmptyOrSingleSkbRetransmitQueueAlwaysSends) {
  TsqBed bed(1);
  bed.send(1448);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 1448, kAckPsh, 1, 0}));
  bed.send(1448);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{1448, 1448, kAckPsh, 1, 0}));
  EXPECT_EQ(bed.tp.sk_tsq_flags, 0);
  bed.send(1448);
  EXPECT_THAT(bed.take(), IsEmpty());
  EXPECT_EQ(bed.tp.sk_tsq_flags, TSQF_THROTTLED);
  bed.complete();
  EXPECT_THAT(bed.take(), ElementsAre(Seg{2896, 1448, kAckPsh, 1, 0}));
}

// The limit is max(2 * truesize, sk_pacing_rate >> 10) under tcp_limit_output_bytes. An skb goes
// while sk_wmem_alloc (1 + 2728 per skb at the device) is within it: 8 MB/s allows 8192 bytes,
// i.e. 4 skbs (1 + 3 * 2728 = 8185), 16 MB/s 16384 bytes, 7 skbs (16369); the next one waits. A
// cap of 8192 bytes on 16 MB/s holds at 4 again.
TEST(TcpTsq, LimitFollowsThePacingRateUnderTheSysctl) {
  struct Case {
    uint64_t rate;
    uint32_t cap;
    size_t sent;
  };
  for (const Case& c : {Case{8192ull << 10, 4194304, 4}, Case{16384ull << 10, 4194304, 7},
                        Case{16384ull << 10, 8192, 4}}) {
    TsqBed bed(c.cap);
    bed.tp.sk_pacing_rate = c.rate;
    for (size_t i = 0; i <= c.sent; ++i) bed.send(1448);
    EXPECT_EQ(bed.take().size(), c.sent) << c.rate << " " << c.cap;
    EXPECT_EQ(bed.tp.sk_wmem_alloc, 1 + c.sent * TsqBed::kTruesize) << c.rate << " " << c.cap;
    EXPECT_EQ(bed.tp.sk_tsq_flags, TSQF_THROTTLED) << c.rate << " " << c.cap;
  }
}

// A socket no owner runs the TSQ handler for is never held by TSQ either (nothing would push it).
TEST(TcpTsq, WithoutAnOwnerTsqHoldsNothing) {
  TsqBed bed(1);
  bed.tp.tsq = nullptr;
  for (int i = 0; i < 4; ++i) bed.send(1448);
  EXPECT_EQ(bed.take().size(), 4u);
  EXPECT_EQ(bed.tp.sk_tsq_flags, 0);
}

// tcp_update_pacing_rate() after an ACK: mss * max(cwnd, packets_out) / SRTT at 200 % in slow start
// (cwnd < ssthresh / 2), at 120 % after; the bed's ACK comes 100 µs after the send.
TEST(TcpTsq, AckSetsThePacingRateFromCwndMssAndSrtt) {
  for (uint32_t ssthresh : {0x7fffffffu, 10u}) {
    TsqBed bed(4194304);
    bed.tp.snd_ssthresh = ssthresh;
    EXPECT_EQ(bed.tp.sk_pacing_rate, ~0ull);
    bed.send(1448);
    bed.take();
    bed.tp.tcp_mstamp += 100;
    bed.data(0, 0);  // ACKs everything
    ASSERT_NE(bed.tp.srtt_us, 0u);
    const uint64_t ratio = bed.tp.snd_cwnd < ssthresh / 2 ? 200 : 120;
    const uint64_t want = uint64_t{bed.tp.mss_cache} * 8000000 * ratio / 100 *
                          std::max(bed.tp.snd_cwnd, bed.tp.packets_out) / bed.tp.srtt_us;
    EXPECT_EQ(bed.tp.sk_pacing_rate, want) << ssthresh;
    EXPECT_EQ(bed.tp.srtt_us, 800u) << ssthresh;  // the first sample: 100 µs << 3
  }
}

}  // namespace
}  // namespace xmit::testing_tcp
