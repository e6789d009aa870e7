// tests/tcp/tcp_sack_test.cc — SACK both ways. Receiver: the exact option bytes of our ACKs after
// given arrival orders (blocks most recent first, extended and merged, removed as the hole fills,
// 3 with timestamps and 4 without, the oldest dropped past that; a DSACK block first, once).
// Sender: SACK blocks tag the rtx queue (sacked_out), RACK marks the hole lost at the third
// SACKed segment, PRR's cwnd, one retransmission for one loss in a window of 20 (no go-back-N),
// recovery ends at high_seq with cwnd = ssthresh (Reno: 20/2, CUBIC: 20*717/1024).
// Sequence numbers in expectations are relative to the ISNs (receiver: kPeerIsn, sender: kIsn).
#include "stack/tcp/tcp_sack.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stack/base/byteorder.h"
#include "stack/tcp/tcp_conn.h"
#include "stack/tcp/tcp_cong.h"
#include "stack/tcp/tcp_cubic.h"
#include "stack/tcp/tcp_rack.h"
#include "stack/tcp/tcp_timer.h"
#include "tests/tcp/tcp_bed.h"

namespace xmit::testing_tcp {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using Bytes = std::vector<uint8_t>;

constexpr uint64_t kNow = 10'000'000;

// The option bytes after the timestamp option of each segment sent (all options when no TS).
struct Recorder {
  TcpBed* bed;
  std::vector<Bytes> opts;
  int xmit(sk_buff* skb) {
    const uint32_t doff = (skb->data[12] >> 4) * 4u;
    const uint32_t skip = bed->tp.rx_opt.tstamp_ok ? 20 + 12 : 20;
    opts.emplace_back(skb->data + skip, skb->data + doff);
    return bed->xmit(skb);
  }
};

// The expected SACK option: NOP, NOP, kind 5, length 2 + 8n, then the blocks (relative to `base`).
Bytes sack_opt(std::vector<std::pair<uint32_t, uint32_t>> blocks, uint32_t base = kPeerIsn) {
  Bytes b = {1, 1, 5, static_cast<uint8_t>(2 + 8 * blocks.size())};
  for (auto [s, e] : blocks) {
    uint8_t w[8];
    store_be32(w, base + s);
    store_be32(w + 4, base + e);
    b.insert(b.end(), w, w + 8);
  }
  return b;
}

struct RcvBed {
  TcpBed bed;
  Recorder rec{&bed};
  explicit RcvBed(bool tstamp) {
    bed.tp.rx_opt.tstamp_ok = tstamp;
    bed.tp.tcp_header_len = tstamp ? 32 : 20;
    tcp_sync_mss(&bed.tp, bed.mtu);
    bed.tp.rx_opt.sack_ok = true;
    bed.enable_receive();
    bed.tp.tcp_mstamp = kNow;
  }
  // Data [off, off + len) of the peer's stream (payload filled as TcpBed::data() does).
  void data(uint32_t off, uint32_t len) {
    sk_buff* skb = bed.incoming({.ack_rel = bed.tp.snd_nxt - kIsn, .payload = len, .seq = kPeerIsn + off});
    tcp_rcv_established(&bed.tp, skb, bed.mtu, [this](sk_buff* s) { return rec.xmit(s); });
  }
  // The options of the one ACK the last segment caused.
  Bytes last() {
    EXPECT_EQ(rec.opts.size(), 1u);
    Bytes b = rec.opts.empty() ? Bytes{} : rec.opts.back();
    rec.opts.clear();
    bed.take_acks();
    return b;
  }
};

// Holes filled out of order, 1000-byte segments: each ACK's blocks, most recent first; the one
// a segment extends moves to the front and swallows the one it now touches; a filled hole's
// block goes.
TEST(TcpSackRcv, BlocksMostRecentFirstExtendedMergedRemoved) {
  RcvBed r(true);
  r.data(1000, 1000);
  EXPECT_EQ(r.last(), sack_opt({{1000, 2000}}));
  r.data(3000, 1000);
  EXPECT_EQ(r.last(), sack_opt({{3000, 4000}, {1000, 2000}}));
  r.data(2000, 1000);  // extends 3000-4000 down to 2000, which then touches 1000-2000: one block
  EXPECT_EQ(r.last(), sack_opt({{1000, 4000}}));
  r.data(5000, 1000);
  EXPECT_EQ(r.last(), sack_opt({{5000, 6000}, {1000, 4000}}));
  r.data(1000, 500);  // already held: DSACK first; the block holding it moves to the front
  EXPECT_EQ(r.last(), sack_opt({{1000, 1500}, {1000, 4000}, {5000, 6000}}));
  r.data(0, 1000);  // the first hole fills: rcv_nxt 4000, 1000-4000 is gone
  EXPECT_EQ(r.bed.tp.rcv_nxt, kPeerIsn + 4000);
  EXPECT_EQ(r.last(), sack_opt({{5000, 6000}}));
  r.data(4000, 1000);  // the last hole: no blocks left
  EXPECT_EQ(r.bed.tp.rcv_nxt, kPeerIsn + 6000);
  EXPECT_EQ(r.last(), Bytes{});
  EXPECT_EQ(r.bed.tp.num_sacks, 0);
}

// Five separate holes: four blocks are kept (the oldest dropped at the fifth); with timestamps the
// 40 option bytes hold 12 + 4 + 3*8, so three go out; without, 4 + 4*8.
TEST(TcpSackRcv, ThreeBlocksWithTimestampsFourWithout) {
  for (bool ts : {true, false}) {
    RcvBed r(ts);
    for (uint32_t off : {1000u, 3000u, 5000u, 7000u, 9000u}) {
      r.data(off, 1000);
      r.rec.opts.clear();
      r.bed.take_acks();
    }
    EXPECT_EQ(r.bed.tp.num_sacks, 4);
    r.data(11000, 500);
    if (ts) {
      EXPECT_EQ(r.last(), sack_opt({{11000, 11500}, {9000, 10000}, {7000, 8000}}));
    } else {
      EXPECT_EQ(r.last(), sack_opt({{11000, 11500}, {9000, 10000}, {7000, 8000}, {5000, 6000}}));
    }
  }
}

// Old data: the DSACK block reports it once (tcp_dsack_set); the next ACK has none. A segment
// partly old reports the old part only. No SACK blocks without sack_ok.
TEST(TcpSackRcv, DsackOnceForOldData) {
  RcvBed r(true);
  r.data(0, 1000);
  EXPECT_EQ(r.last(), Bytes{});
  r.data(0, 1000);  // all old
  EXPECT_EQ(r.last(), sack_opt({{0, 1000}}));
  r.data(500, 1000);  // 500-1000 old, 1000-1500 new
  EXPECT_EQ(r.last(), sack_opt({{500, 1000}}));
  r.data(1500, 100);  // in order: no block any more
  EXPECT_EQ(r.last(), Bytes{});

  RcvBed n(true);
  n.bed.tp.rx_opt.sack_ok = false;
  n.data(1000, 1000);
  EXPECT_EQ(n.last(), Bytes{});
  n.data(1000, 1000);
  EXPECT_EQ(n.last(), Bytes{});
}

// ---- Sender.

// An ACK from the peer with SACK blocks (relative to kIsn), tcp_ack() run on it.
int sack_ack(TcpBed& bed, uint32_t ack_rel, std::vector<std::pair<uint32_t, uint32_t>> blocks) {
  sk_buff* skb = bed.skbs->alloc_skb();
  skb_reserve(skb, 64);
  const uint32_t hl = 20 + 4 + 8 * static_cast<uint32_t>(blocks.size());
  uint8_t* p = skb_put_zero(skb, hl);
  TcpHdr th = *TcpHdr::at(absl::MakeSpan(p, hl));
  th.set_source(bed.tp.dport);
  th.set_dest(bed.tp.sport);
  th.set_seq(bed.tp.rcv_nxt);
  th.set_ack_seq(kIsn + ack_rel);
  th.set_doff(static_cast<uint8_t>(hl / 4));
  th.set_flags(TCPHDR_ACK);
  th.set_window(65535);
  Bytes o = sack_opt(blocks, kIsn);
  std::copy(o.begin(), o.end(), p + 20);
  EXPECT_EQ(tcp_v4_check_segment(absl::MakeConstSpan(skb->data, skb->len), 0, 0, false, TCP_SKB_CB(skb)), 0);
  uint8_t sack_off = 0;
  tcp_parse_options(absl::MakeConstSpan(p, hl), true, &bed.tp.rx_opt, &sack_off);
  TCP_SKB_CB(skb)->sacked = sack_off;
  int r = tcp_ack(&bed.tp, skb, FLAG_UPDATE_TS_RECENT, [&bed](sk_buff* s) { return bed.xmit(s); });
  kfree_skb(skb);
  return r;
}

// The same ACK through tcp_v4_do_rcv() (the state machine's input: tcp_rcv_state_process() outside
// ESTABLISHED).
void sack_ack_rcv(TcpBed& bed, uint32_t ack_rel, std::vector<std::pair<uint32_t, uint32_t>> blocks) {
  sk_buff* skb = bed.skbs->alloc_skb();
  skb_reserve(skb, 64);
  const uint32_t hl = 20 + 4 + 8 * static_cast<uint32_t>(blocks.size());
  uint8_t* p = skb_put_zero(skb, hl);
  TcpHdr th = *TcpHdr::at(absl::MakeSpan(p, hl));
  th.set_source(bed.tp.dport);
  th.set_dest(bed.tp.sport);
  th.set_seq(bed.tp.rcv_nxt);
  th.set_ack_seq(kIsn + ack_rel);
  th.set_doff(static_cast<uint8_t>(hl / 4));
  th.set_flags(TCPHDR_ACK);
  th.set_window(65535);
  Bytes o = sack_opt(blocks, kIsn);
  std::copy(o.begin(), o.end(), p + 20);
  EXPECT_EQ(tcp_v4_check_segment(absl::MakeConstSpan(skb->data, skb->len), 0, 0, false, TCP_SKB_CB(skb)), 0);
  tcp_v4_do_rcv(&bed.tp, skb, bed.mtu, [&bed](sk_buff* s) { return bed.xmit(s); }, nullptr);
}

constexpr uint32_t kMss = 1448;

// A sender with SACK, an RTT sample of 10 ms taken (srtt 10 ms, min_rtt 10 ms), then `n` MSS
// segments sent at kNow, one skb each, cwnd `n`.
void sack_sender(TcpBed& bed, uint32_t n, const tcp_congestion_ops* ca) {
  if (ca != nullptr) tcp_init_congestion_control(&bed.tp, ca);
  bed.tp.rx_opt.sack_ok = true;
  bed.nodelay(true);
  bed.tp.tcp_mstamp = kNow - 20'000;
  bed.send(100);
  bed.tp.tcp_mstamp = kNow - 10'000;
  ASSERT_EQ(bed.ack({.ack_rel = 100}), 1);
  ASSERT_EQ(bed.tp.srtt_us >> 3, 10'000u);
  ASSERT_EQ(tcp_min_rtt(&bed.tp), 10'000u);
  bed.tp.snd_cwnd = n;
  bed.tp.tcp_mstamp = kNow;
  bed.take();
  for (uint32_t i = 0; i < n; ++i) bed.send(kMss);
  ASSERT_EQ(bed.take().size(), n);
  ASSERT_EQ(bed.tp.packets_out, n);
}

// 20 segments out, the first lost; the peer SACKs each later one as it arrives 10 ms later. The
// first two SACKs: sacked_out 1, 2 < reordering 3, reo_wnd = min(min_rtt/4, srtt) = 2.5 ms, the
// head's RACK timeout (rtt 10 ms + 2.5 ms - 10 ms elapsed) has not passed: no loss yet, Disorder.
// The third: sacked_out 3 = reordering, reo_wnd 0, the head is lost: recovery, ssthresh = 20/2 =
// 10 (Reno), PRR: in flight 20 - 3 - 1 = 16 > ssthresh, prr_delivered 1, sndcnt =
// (10 * 1 + 20 - 1) / 20 - prr_out 0 = 1, cwnd 16 + 1 = 17: the head goes. The other SACKs
// retransmit nothing; the ACK of everything ends recovery, cwnd = ssthresh = 10.
TEST(TcpSackSnd, OneLossInTwentyIsOneRetransmission) {
  TcpBed bed;
  sack_sender(bed, 20, nullptr);
  const uint32_t base = 100;
  bed.tp.tcp_mstamp = kNow + 10'000;
  for (uint32_t k = 1; k <= 2; ++k) {
    EXPECT_EQ(sack_ack(bed, base, {{base + kMss, base + (k + 1) * kMss}}), 1);
    EXPECT_EQ(bed.tp.sacked_out, k);
    EXPECT_EQ(bed.tp.lost_out, 0u);
    EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Disorder);
    EXPECT_TRUE(bed.take().empty());
  }
  EXPECT_EQ(sack_ack(bed, base, {{base + kMss, base + 4 * kMss}}), 1);
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Recovery);
  EXPECT_EQ(bed.tp.snd_ssthresh, 10u);
  EXPECT_EQ(bed.tp.prior_cwnd, 20u);
  EXPECT_EQ(bed.tp.sacked_out, 3u);
  EXPECT_EQ(bed.tp.lost_out, 1u);  // lost, then retransmitted: LOST | SACKED_RETRANS
  EXPECT_EQ(bed.tp.retrans_out, 1u);
  EXPECT_EQ(bed.tp.prr_delivered, 1u);
  EXPECT_EQ(bed.tp.prr_out, 1u);
  EXPECT_EQ(bed.tp.snd_cwnd, 17u);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{base, kMss, kAckPsh, 1, 0}));
  for (uint32_t k = 4; k < 20; ++k) {
    EXPECT_EQ(sack_ack(bed, base, {{base + kMss, base + (k + 1) * kMss}}), 1);
    for (const Seg& s : bed.take()) EXPECT_GE(s.seq, base + 20 * kMss) << "retransmitted " << s.seq;
  }
  EXPECT_EQ(bed.tp.sacked_out, 19u);
  bed.tp.tcp_mstamp = kNow + 20'000;
  EXPECT_EQ(sack_ack(bed, base + 20 * kMss, {}), 1);
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Open);
  EXPECT_EQ(bed.tp.packets_out, 0u);
  EXPECT_EQ(bed.tp.sacked_out, 0u);
  EXPECT_EQ(bed.tp.retrans_out, 0u);
  EXPECT_EQ(bed.tp.snd_cwnd, 10u);
}

// The same with CUBIC: ssthresh = max(20 * 717 / 1024, 2) = 14, W_max 20. The ACK of everything
// ends recovery at cwnd 14, then CUBIC grows it by what that ACK delivered (20 acked, 3 of them
// SACKed before: 17): a new epoch, K = cubic_root(2^40 / 410 * 6) = 2523, t = delay_min 10 ms =
// 10/1024 s, delta = (410 * 2513^3) >> 40 = 5, target 15, cnt = 14 / 1 = 14; 17 >= 14: cwnd 15.
TEST(TcpSackSnd, CubicSsthreshAfterLoss) {
  TcpBed bed;
  sack_sender(bed, 20, &tcp_cubic);
  const uint32_t base = 100;
  bed.tp.tcp_mstamp = kNow + 10'000;
  for (uint32_t k = 1; k <= 3; ++k) sack_ack(bed, base, {{base + kMss, base + (k + 1) * kMss}});
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Recovery);
  EXPECT_EQ(bed.tp.snd_ssthresh, 14u);
  EXPECT_EQ(inet_csk_ca(&bed.tp)->last_max_cwnd, 20u);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{base, kMss, kAckPsh, 1, 0}));
  bed.tp.tcp_mstamp = kNow + 20'000;
  sack_ack(bed, base + 20 * kMss, {});
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Open);
  EXPECT_EQ(inet_csk_ca(&bed.tp)->bic_K, 2523u);
  EXPECT_EQ(inet_csk_ca(&bed.tp)->cnt, 14u);
  EXPECT_EQ(bed.tp.snd_cwnd, 15u);
}

// A CUBIC sender with SACK: segment 0 sent at kNow (the setup's samples: srtt 10 ms, min RTT and
// CUBIC's delay_min 10 ms), segments 1..3 at +1, +2, +3 ms; the clock then at +9 ms.
void four_sent_1ms_apart(TcpBed& bed) {
  sack_sender(bed, 1, &tcp_cubic);
  ASSERT_EQ(inet_csk_ca(&bed.tp)->delay_min, 10'000u);
  bed.tp.snd_cwnd = 10;
  for (uint32_t k = 1; k <= 3; ++k) {
    bed.tp.tcp_mstamp = kNow + k * 1000;
    bed.send(kMss);
  }
  ASSERT_EQ(bed.take().size(), 3u);
  bed.tp.tcp_mstamp = kNow + 9000;
}

// A SACK of 1..3 in two blocks given highest first: the srtt sample is the lowest newly SACKed
// one's (first_sackt, +1 ms: 8 ms, srtt 10 * 7/8 + 8/8 = 9.75 ms), the min RTT and CUBIC's sample
// the highest's (last_sackt, +3 ms: 6 ms), as tcp_clean_rtx_queue() takes sack_rtt_us and ca_rtt_us.
TEST(TcpSackSnd, SackRttFromFirstSackedCaRttFromLastSacked) {
  TcpBed bed;
  four_sent_1ms_apart(bed);
  const uint32_t base = 100;
  sack_ack(bed, base, {{base + 3 * kMss, base + 4 * kMss}, {base + kMss, base + 3 * kMss}});
  EXPECT_EQ(bed.tp.sacked_out, 3u);
  EXPECT_EQ(bed.tp.srtt_us, 9'750u << 3);
  EXPECT_EQ(tcp_min_rtt(&bed.tp), 6'000u);
  EXPECT_EQ(inet_csk_ca(&bed.tp)->delay_min, 6'000u);
}

// An ACK that both advances snd_una (segment 0, sent at kNow) and newly SACKs 2 and 3 (+2, +3 ms):
// srtt takes the cumulative sample (9 ms: 10 * 7/8 + 9/8 = 9.875 ms), the min RTT and CUBIC the
// last SACKed segment's (6 ms), not the last acked one's (9 ms).
TEST(TcpSackSnd, CaRttFromLastSackedEvenWithCumulativeAck) {
  TcpBed bed;
  four_sent_1ms_apart(bed);
  const uint32_t base = 100;
  sack_ack(bed, base + kMss, {{base + 2 * kMss, base + 4 * kMss}});
  EXPECT_EQ(bed.tp.sacked_out, 2u);
  EXPECT_EQ(bed.tp.srtt_us, 9'875u << 3);
  EXPECT_EQ(tcp_min_rtt(&bed.tp), 6'000u);
  EXPECT_EQ(inet_csk_ca(&bed.tp)->delay_min, 6'000u);
}

// With SACK the same rule: an ACK carrying only a DSACK block (below the ACK) is dubious and goes
// through tcp_try_to_open(); nothing is SACKed, lost or in retransmission, but the head was once
// retransmitted (TCPCB_EVER_RETRANS set by hand, as tcp_ack_test's Karn test does): Disorder, as
// the kernel's tcp_any_retrans_done(); high_seq moves to snd_nxt with the state. Without the mark: Open.
TEST(TcpSackSnd, DsackAckWithEverRetransmittedHeadIsDisorder) {
  for (bool ever : {true, false}) {
    TcpBed bed;
    sack_sender(bed, 3, nullptr);
    const uint32_t base = 100;
    if (ever) TCP_SKB_CB(bed.tp.rtx_queue.head)->sacked |= TCPCB_EVER_RETRANS;
    bed.tp.high_seq = kIsn;
    bed.tp.tcp_mstamp = kNow + 1000;
    EXPECT_EQ(sack_ack(bed, base, {{base - 50, base}}), 1);
    EXPECT_EQ(bed.tp.sacked_out + bed.tp.lost_out + bed.tp.retrans_out, 0u);
    EXPECT_EQ(bed.tp.icsk_ca_state, ever ? TCP_CA_Disorder : TCP_CA_Open) << ever;
    EXPECT_EQ(bed.tp.high_seq, ever ? bed.tp.snd_nxt : kIsn) << ever;
  }
}

// Blocks the sender must not use: beyond snd_nxt, reversed, at or below snd_una (a DSACK below
// the ACK is recognised and ignored). Nothing is tagged.
TEST(TcpSackSnd, InvalidAndDsackBlocksIgnored) {
  TcpBed bed;
  sack_sender(bed, 5, nullptr);
  const uint32_t base = 100;
  bed.tp.tcp_mstamp = kNow + 10'000;
  sack_ack(bed, base, {{base + kMss, base + 9 * kMss}});      // beyond snd_nxt
  sack_ack(bed, base, {{base + 2 * kMss, base + kMss}});      // reversed
  sack_ack(bed, base + kMss, {{base, base + kMss}});          // DSACK below the ACK
  EXPECT_EQ(bed.tp.sacked_out, 0u);
  for (sk_buff* s = bed.tp.rtx_queue.head; s != nullptr; s = s->next) EXPECT_EQ(TCP_SKB_CB(s)->sacked, 0);
  EXPECT_EQ(bed.tp.packets_out, 4u);
}

// A retransmission that is lost again is found by RACK (a segment sent after it was SACKed
// and its RTT passed) and sent a second time, before any RTO.
TEST(TcpSackSnd, LostRetransmissionRetransmittedAgain) {
  TcpBed bed;
  sack_sender(bed, 10, nullptr);
  const uint32_t base = 100;
  bed.tp.tcp_mstamp = kNow + 10'000;
  for (uint32_t k = 1; k <= 3; ++k) sack_ack(bed, base, {{base + kMss, base + (k + 1) * kMss}});
  EXPECT_THAT(bed.take(), ElementsAre(Seg{base, kMss, kAckPsh, 1, 0}));  // first retransmission at +10 ms
  // New data goes out at +12 ms (the SACKs of the rest make room) and is SACKed at +22 ms; the
  // retransmission (sent at +10 ms, 10 ms RTT) has had its time: lost again.
  bed.tp.tcp_mstamp = kNow + 12'000;
  for (uint32_t k = 4; k < 10; ++k) sack_ack(bed, base, {{base + kMss, base + (k + 1) * kMss}});
  bed.take();
  bed.send(kMss);
  std::vector<Seg> sent = bed.take();
  ASSERT_FALSE(sent.empty());
  const uint32_t new_seq = sent.back().seq;
  bed.tp.tcp_mstamp = kNow + 22'001;
  sack_ack(bed, base, {{base + kMss, new_seq + kMss}});
  EXPECT_THAT(bed.take(), ElementsAre(Seg{base, kMss, kAckPsh, 1, 0}));
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Recovery);
  EXPECT_EQ(bed.tp.icsk_retransmits, 0);  // no RTO was involved
}

// Reordering was seen before (reord_seen), so reo_wnd stays min_rtt / 4 = 2.5 ms even with three
// segments SACKed: at +10 ms the head (sent at 0, RACK RTT 10 ms) has 10 + 2.5 - 10 = 2.5 ms left.
// No loss yet; the reordering timer is armed at usecs_to_jiffies(2500) + 2 = 5 ms. When it fires
// the head is lost: recovery, the head retransmitted, the RTO re-armed.
TEST(TcpSackSnd, ReorderingTimerMarksLossLater) {
  TcpBed bed;
  sack_sender(bed, 10, nullptr);
  bed.tp.reord_seen = 1;
  const uint32_t base = 100;
  bed.tp.tcp_mstamp = kNow + 10'000;
  for (uint32_t k = 1; k <= 3; ++k) sack_ack(bed, base, {{base + kMss, base + (k + 1) * kMss}});
  EXPECT_EQ(tcp_rack_reo_wnd(&bed.tp), 2'500u);
  EXPECT_EQ(bed.tp.lost_out, 0u);
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Disorder);
  EXPECT_TRUE(bed.take().empty());
  EXPECT_EQ(bed.tp.icsk_pending, ICSK_TIME_REO_TIMEOUT);
  EXPECT_EQ(bed.tp.icsk_retransmit_timer.expires, kNow + 15'000);
  bed.tp.tcp_mstamp = kNow + 14'999;
  tcp_timers_run(&bed.tp, [&bed](sk_buff* s) { return bed.xmit(s); }, nullptr);
  EXPECT_TRUE(bed.take().empty());
  bed.tp.tcp_mstamp = kNow + 15'000;
  tcp_timers_run(&bed.tp, [&bed](sk_buff* s) { return bed.xmit(s); }, nullptr);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{base, kMss, kAckPsh, 1, 0}));
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Recovery);
  EXPECT_EQ(bed.tp.lost_out, 1u);
  EXPECT_EQ(bed.tp.icsk_pending, ICSK_TIME_RETRANS);
  EXPECT_EQ(bed.tp.icsk_retransmit_timer.expires, kNow + 15'000 + bed.tp.icsk_rto);
}

// While we hold out-of-order data our segments carry a SACK block (12 more option bytes): a
// full-sized segment retransmitted by the RTO is split to the current MSS, 1448 - 12 = 1436, and
// the 12 bytes left become a segment of their own, still marked lost (packets_out 2).
TEST(TcpSackSnd, RetransmissionSplitToRoomLeftBySackBlocks) {
  TcpBed bed;
  bed.tp.rx_opt.sack_ok = true;
  bed.enable_receive();
  bed.nodelay(true);
  bed.tp.tcp_mstamp = kNow;
  bed.send(kMss);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, kMss, kAckPsh, 1, 0}));
  // The peer's bytes 1000..1100 (a hole before them), acking nothing: one SACK block in what we send.
  sk_buff* in = bed.incoming({.ack_rel = 0, .payload = 100, .seq = kPeerIsn + 1000});
  tcp_rcv_established(&bed.tp, in, bed.mtu, [&bed](sk_buff* s) { return bed.xmit(s); });
  bed.take();
  EXPECT_EQ(bed.tp.num_sacks, 1);
  EXPECT_EQ(tcp_current_mss(&bed.tp, bed.mtu), kMss - 12);
  bed.tp.tcp_mstamp = bed.tp.icsk_retransmit_timer.expires;
  tcp_timers_run(&bed.tp, [&bed](sk_buff* s) { return bed.xmit(s); }, nullptr);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, kMss - 12, kAck, 1, 0}));
  EXPECT_EQ(bed.tp.packets_out, 2u);
  EXPECT_EQ(bed.tp.lost_out, 2u);
  EXPECT_EQ(bed.tp.retrans_out, 1u);
  ASSERT_NE(bed.tp.rtx_queue.tail, nullptr);
  EXPECT_EQ(TCP_SKB_CB(bed.tp.rtx_queue.tail)->seq, kIsn + kMss - 12);
  EXPECT_EQ(TCP_SKB_CB(bed.tp.rtx_queue.tail)->sacked & TCPCB_LOST, TCPCB_LOST);
}

// After the peer's FIN (CLOSE_WAIT: we still send) ACKs take tcp_rcv_state_process(): their SACK
// blocks still tag the queue, and the third SACK still starts recovery with one retransmission.
TEST(TcpSackSnd, SackBlocksCountAfterPeersFin) {
  TcpBed bed;
  sack_sender(bed, 10, nullptr);
  bed.tp.sk_state = TCP_CLOSE_WAIT;
  const uint32_t base = 100;
  bed.tp.tcp_mstamp = kNow + 10'000;
  for (uint32_t k = 1; k <= 3; ++k) sack_ack_rcv(bed, base, {{base + kMss, base + (k + 1) * kMss}});
  EXPECT_EQ(bed.tp.sacked_out, 3u);
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Recovery);
  std::vector<Seg> sent = bed.take();
  ASSERT_FALSE(sent.empty());
  EXPECT_EQ(sent.front(), (Seg{base, kMss, kAckPsh, 1, 0}));
}

}  // namespace
}  // namespace xmit::testing_tcp
