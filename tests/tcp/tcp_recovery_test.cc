// tests/tcp/tcp_recovery_test.cc — the RTO timer on an injected clock (1 s, 2 s, 4 s ... capped at
// 120 s; loss state, cwnd 1, ssthresh halved once), the zero-window probe timer, fast retransmit on the third duplicate ACK,
// NewReno partial ACKs, the full ACK ending recovery, Reno slow start and congestion avoidance.
// MSS 1448, TCP_NODELAY, cwnd 10 at the start; sequence numbers relative to the ISN.
#include "stack/tcp/tcp_recovery.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stack/tcp/tcp_timer.h"
#include "tests/tcp/tcp_bed.h"

namespace xmit::testing_tcp {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr uint64_t kT0 = 10'000'000;  // the clock at the first send, in us

void run_timers(TcpBed& bed, uint64_t now) {
  bed.tp.tcp_mstamp = now;
  tcp_timers_run(&bed.tp, [&](sk_buff* s) { return bed.xmit(s); }, nullptr);
}

// No RTT sample yet: the first RTO is TCP_TIMEOUT_INIT (1 s); each expiry retransmits the head
// and doubles it: 1 s, 2 s, 4 s, ..., 64 s, then TCP_RTO_MAX (120 s).
TEST(TcpRto, BackoffDoublesFromOneSecondUpTo120) {
  TcpBed bed;
  bed.nodelay(true);
  bed.tp.tcp_mstamp = kT0;
  bed.send(100);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 100, kAckPsh, 1, 0}));
  ASSERT_TRUE(bed.tp.icsk_retransmit_timer.pending);
  uint64_t expect = kT0 + 1'000'000;
  const uint32_t rtos[] = {2, 4, 8, 16, 32, 64, 120, 120};
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(bed.tp.icsk_retransmit_timer.expires, expect) << i;
    run_timers(bed, expect - 1);  // not yet due
    EXPECT_THAT(bed.take(), IsEmpty());
    run_timers(bed, expect);
    EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 100, kAckPsh, 1, 0})) << i;
    EXPECT_EQ(bed.tp.icsk_rto, rtos[i] * 1'000'000u) << i;
    EXPECT_EQ(bed.tp.icsk_backoff, i + 1);
    expect += rtos[i] * 1'000'000ull;
  }
  EXPECT_EQ(tcp_next_timer(&bed.tp), expect);
}

// The first RTO: loss state, ssthresh = cwnd/2 = 5, cwnd = in flight + 1 = 1, whole queue lost;
// the second keeps ssthresh (already reduced in this loss episode). The ACK of the retransmitted
// data takes no RTT sample (Karn); slow start from cwnd 1; the ACK of all of it, exactly high_seq,
// leaves the loss state held (Reno).
TEST(TcpRto, LossStateCwndAndGoBackN) {
  TcpBed bed;
  bed.nodelay(true);
  bed.tp.tcp_mstamp = kT0;
  for (int i = 0; i < 4; ++i) bed.send(1000);
  EXPECT_EQ(bed.take().size(), 4u);
  run_timers(bed, kT0 + 1'000'000);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 1000, kAckPsh, 1, 0}));
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Loss);
  EXPECT_EQ(bed.tp.snd_ssthresh, 5u);
  EXPECT_EQ(bed.tp.snd_cwnd, 1u);
  EXPECT_EQ(bed.tp.lost_out, 4u);
  EXPECT_EQ(bed.tp.retrans_out, 1u);
  run_timers(bed, kT0 + 3'000'000);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 1000, kAckPsh, 1, 0}));
  EXPECT_EQ(bed.tp.snd_ssthresh, 5u);
  // ACK of the first: cwnd 1 -> 2 (slow start), the next two lost ones go.
  bed.tp.tcp_mstamp = kT0 + 3'100'000;
  EXPECT_EQ(bed.ack({.ack_rel = 1000}), 1);
  EXPECT_EQ(bed.tp.srtt_us, 0u);  // Karn
  EXPECT_EQ(bed.tp.snd_cwnd, 2u);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{1000, 1000, kAckPsh, 1, 0}, Seg{2000, 1000, kAckPsh, 1, 0}));
  // The ACK of exactly high_seq: Reno holds the loss state (tcp_try_undo_recovery(); until an
  // ACK above it).
  EXPECT_EQ(bed.ack({.ack_rel = 4000}), 1);
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Loss);
  EXPECT_EQ(bed.tp.packets_out, 0u);
  EXPECT_FALSE(bed.tp.icsk_retransmit_timer.pending);
}

// Ten 1000-byte segments out at kT0 (TCP_NODELAY, cwnd 10); 1 ms later an ACK of `ack_rel`.
void ten_out_then_ack(TcpBed& bed, uint32_t ack_rel) {
  bed.nodelay(true);
  bed.tp.tcp_mstamp = kT0;
  for (int i = 0; i < 10; ++i) bed.send(1000);
  EXPECT_EQ(bed.take().size(), 10u);
  bed.tp.tcp_mstamp += 1000;
  EXPECT_EQ(bed.ack({.ack_rel = ack_rel}), 1);
}

// Ten segments out; the first is acked (slow start: cwnd 11, cwnd-limited); the second is lost.
// tcp_try_to_open() stays in Disorder while the oldest unacked skb was ever retransmitted, even
// with nothing SACKed, lost or being retransmitted (tcp_any_retrans_done(): the head's
// TCPCB_EVER_RETRANS, set here as a retransmission whose mark was since cleared leaves it); Open
// once that skb is acked. A duplicate ACK: Disorder; the ACK of the next segment resets the
// dupacks (sacked_out 0), retrans_out is 0, the new head (bytes 2000..3000) is ever-retransmitted.
TEST(TcpFastRetransmit, DisorderWhileHeadWasEverRetransmitted) {
  TcpBed bed;
  ten_out_then_ack(bed, 1000);
  TCP_SKB_CB(bed.tp.rtx_queue.head->next)->sacked |= TCPCB_EVER_RETRANS;
  EXPECT_EQ(bed.ack({.ack_rel = 1000}), 1);
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Disorder);
  EXPECT_EQ(bed.ack({.ack_rel = 2000}), 1);
  EXPECT_EQ(bed.tp.sacked_out, 0u);
  EXPECT_EQ(bed.tp.retrans_out, 0u);
  EXPECT_EQ(bed.tp.lost_out, 0u);
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Disorder);
  EXPECT_EQ(bed.ack({.ack_rel = 3000}), 1);
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Open);
  EXPECT_THAT(bed.take(), IsEmpty());
}

// Duplicate ACKs 1 and 2: Disorder, nothing sent. The third: the head is lost, recovery,
// ssthresh = 11/2 = 5, and PRR (tcp_cwnd_reduction(), as Linux runs it for Reno too): in flight
// 9 - 3 sacked - 1 lost = 5 = ssthresh, so sndcnt = 0, raised to the forced 1: cwnd 6, the head
// retransmitted. A fourth: delivered 2, prr_out 1, in flight 5: cwnd 5, nothing sent. A partial
// ACK (two more segments; delivered 1, tcp_remove_reno_sacks()) marks the new head lost
// (NewReno): in flight 3, sndcnt min(ssthresh - 3, 3 - 1) = 2: cwnd 5, the new head resent. The
// full ACK of all ten (exactly high_seq) delivers 7 acked minus the 3 dupacks that already
// counted: 4; Reno holds Recovery there (RenoHoldsRecoveryUntilAnAckAboveHighSeq) and PRR, in
// flight 0, slow-starts back to min(ssthresh, prr_delivered 7 - prr_out 2 + 1) = 5.
TEST(TcpFastRetransmit, ThirdDupackPartialAckFullAck) {
  TcpBed bed;
  ten_out_then_ack(bed, 1000);
  EXPECT_EQ(bed.tp.snd_cwnd, 11u);
  for (int i = 1; i <= 2; ++i) {
    EXPECT_EQ(bed.ack({.ack_rel = 1000}), 1);
    EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Disorder);
    EXPECT_EQ(bed.tp.sacked_out, static_cast<uint32_t>(i));
    EXPECT_THAT(bed.take(), IsEmpty());
  }
  EXPECT_EQ(bed.ack({.ack_rel = 1000}), 1);
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Recovery);
  EXPECT_EQ(bed.tp.snd_ssthresh, 5u);
  EXPECT_EQ(bed.tp.prior_cwnd, 11u);
  EXPECT_EQ(bed.tp.snd_cwnd, 6u);
  EXPECT_EQ(bed.tp.high_seq, kIsn + 10000);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{1000, 1000, kAckPsh, 1, 0}));
  EXPECT_EQ(bed.ack({.ack_rel = 1000}), 1);  // a fourth duplicate: counted, nothing to resend
  EXPECT_EQ(bed.tp.sacked_out, 4u);
  EXPECT_EQ(bed.tp.snd_cwnd, 5u);
  EXPECT_THAT(bed.take(), IsEmpty());
  EXPECT_EQ(bed.ack({.ack_rel = 3000}), 1);  // partial
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Recovery);
  EXPECT_EQ(bed.tp.sacked_out, 3u);  // "One ACK acked hole. The rest eat duplicate ACKs."
  EXPECT_EQ(bed.tp.snd_cwnd, 5u);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{3000, 1000, kAckPsh, 1, 0}));
  EXPECT_EQ(bed.tp.prr_delivered, 3u);
  EXPECT_EQ(bed.tp.prr_out, 2u);
  EXPECT_EQ(bed.ack({.ack_rel = 10000}), 1);  // full
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Recovery);
  EXPECT_EQ(bed.tp.snd_ssthresh, 5u);
  EXPECT_EQ(bed.tp.snd_cwnd, 5u);
  EXPECT_EQ(bed.tp.prr_delivered, 7u);
  EXPECT_EQ(bed.tp.sacked_out, 0u);
  EXPECT_EQ(bed.tp.packets_out, 0u);
}

// tcp_try_undo_recovery() for Reno: "Hold old state until something *above* high_seq is ACKed.
// For Reno it is MUST to prevent false fast retransmits (RFC2582)." Recovery from the third
// duplicate ACK (high_seq 10000); the ACK of exactly 10000 keeps it; four new segments go; three
// duplicate ACKs of 10000 (the old window's duplicates, or the new data's reordering) count for
// nothing: no sacked_out, no second fast retransmit. The ACK of 12000 ends recovery at
// cwnd = ssthresh (tcp_end_cwnd_reduction()).
TEST(TcpFastRetransmit, RenoHoldsRecoveryUntilAnAckAboveHighSeq) {
  TcpBed bed;
  ten_out_then_ack(bed, 1000);
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(bed.ack({.ack_rel = 1000}), 1);
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Recovery);
  EXPECT_EQ(bed.tp.snd_ssthresh, 5u);
  EXPECT_EQ(bed.tp.high_seq, kIsn + 10000);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{1000, 1000, kAckPsh, 1, 0}));
  EXPECT_EQ(bed.ack({.ack_rel = 10000}), 1);
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Recovery);
  EXPECT_EQ(bed.tp.sacked_out, 0u);
  EXPECT_EQ(bed.tp.snd_cwnd, 5u);
  for (int i = 0; i < 4; ++i) bed.send(1000);
  EXPECT_EQ(bed.take().size(), 4u);
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(bed.ack({.ack_rel = 10000}), 1);
    EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Recovery) << i;
    EXPECT_EQ(bed.tp.sacked_out, 0u) << i;
    EXPECT_EQ(bed.tp.lost_out, 0u) << i;
    EXPECT_THAT(bed.take(), IsEmpty()) << i;
  }
  EXPECT_EQ(bed.ack({.ack_rel = 12000}), 1);
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Open);
  EXPECT_EQ(bed.tp.snd_cwnd, 5u);
  EXPECT_EQ(bed.tp.packets_out, 2u);
}

// PRR on the Reno path (RFC 6937 §3; Linux's tcp_cwnd_reduction() for non-SACK flows): cwnd 20,
// the segment at 10000 lost. The third duplicate ACK enters recovery with ssthresh 10 and
// prior_cwnd 20; in flight (16) stays above ssthresh, so each duplicate ACK (one segment
// delivered) lets out ssthresh/prior_cwnd = 1/2 segment: the fast retransmit at once, then one new
// MSS on every second duplicate ACK. (Cutting cwnd to ssthresh at once sent nothing new until in
// flight fell below 10.)
TEST(TcpPrr, RenoDupacksClockOutHalfASegmentEach) {
  TcpBed bed;
  ten_out_then_ack(bed, 10000);
  EXPECT_EQ(bed.tp.snd_cwnd, 20u);
  for (int i = 0; i < 20; ++i) bed.send(1000);
  EXPECT_EQ(bed.take().size(), 20u);
  bed.send(20000);  // queued behind the full cwnd, goes one MSS at a time
  EXPECT_THAT(bed.take(), IsEmpty());
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(bed.ack({.ack_rel = 10000}), 1);
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Recovery);
  EXPECT_EQ(bed.tp.snd_ssthresh, 10u);
  EXPECT_EQ(bed.tp.prior_cwnd, 20u);
  EXPECT_EQ(bed.tp.snd_cwnd, 17u);  // in flight 16 + ceil(10 * 1 / 20)
  EXPECT_THAT(bed.take(), ElementsAre(Seg{10000, 1000, kAckPsh, 1, 0}));
  uint32_t next = 30000;
  for (int dup = 4; dup <= 11; ++dup) {
    EXPECT_EQ(bed.ack({.ack_rel = 10000}), 1);
    bed.push();  // tcp_data_snd_check()
    if (dup % 2 == 1) {
      EXPECT_THAT(bed.take(), ElementsAre(Seg{next, 1448, kAck, 1, 0})) << dup;
      next += 1448;
    } else {
      EXPECT_THAT(bed.take(), IsEmpty()) << dup;
    }
  }
  EXPECT_EQ(bed.tp.prr_delivered, 9u);
  EXPECT_EQ(bed.tp.prr_out, 5u);  // ceil(10 * 9 / 20)
}

// A window update is not a duplicate ACK (FLAG_WIN_UPDATE is in FLAG_NOT_DUP).
TEST(TcpFastRetransmit, WindowUpdatesAreNotDupacks) {
  TcpBed bed;
  bed.nodelay(true);
  for (int i = 0; i < 5; ++i) bed.send(1000);
  bed.take();
  for (uint16_t w = 1000; w < 1004; ++w) EXPECT_EQ(bed.ack({.ack_rel = 0, .window = w, .seq = bed.tp.rcv_nxt + (w - 999)}), 1);
  EXPECT_EQ(bed.tp.sacked_out, 0u);
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Open);
}

// A closed window with nothing in flight: the probe timer (max(RTO, 200 ms) = 1 s, then backed
// off: 2 s, 4 s) sends pure ACKs at snd_una - 1; an ACK opening the window stops it and clears the
// backoff, and the data goes (with the RTO armed for it).
TEST(TcpProbe0, ZeroWindowProbesUntilTheWindowOpens) {
  TcpBed bed;
  bed.nodelay(true);
  bed.tp.snd_wnd = 0;
  bed.tp.snd_wl1 = bed.tp.rcv_nxt;
  bed.tp.tcp_mstamp = kT0;
  bed.send(1000);
  EXPECT_THAT(bed.take(), IsEmpty());
  ASSERT_TRUE(bed.tp.icsk_retransmit_timer.pending);
  EXPECT_EQ(bed.tp.icsk_pending, ICSK_TIME_PROBE0);
  uint64_t expect = kT0 + 1'000'000;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(bed.tp.icsk_retransmit_timer.expires, expect) << i;
    run_timers(bed, expect);
    EXPECT_THAT(bed.take(), ElementsAre(Seg{0xffffffffu, 0, kAck, 1, 0})) << i;  // seq snd_una - 1
    EXPECT_EQ(bed.tp.icsk_backoff, i + 1);
    EXPECT_EQ(bed.tp.icsk_probes_out, i + 1);
    expect += (2ull << i) * 1'000'000;
  }
  EXPECT_EQ(bed.tp.icsk_rto, 1'000'000u);  // probes back off; the RTO itself is untouched
  bed.tp.tcp_mstamp = expect - 500'000;
  EXPECT_EQ(bed.ack({.ack_rel = 0, .window = 65535, .seq = bed.tp.rcv_nxt + 1}), 1);
  EXPECT_EQ(bed.tp.icsk_backoff, 0);
  EXPECT_FALSE(bed.tp.icsk_retransmit_timer.pending);
  bed.push();  // tcp_data_snd_check()
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 1000, kAckPsh, 1, 0}));
  EXPECT_EQ(bed.tp.icsk_pending, ICSK_TIME_RETRANS);
  EXPECT_EQ(bed.tp.icsk_retransmit_timer.expires, expect - 500'000 + 1'000'000);
}

// tcp_reno_cong_avoid(): slow start stops at ssthresh and the rest of the ACKed count goes to
// congestion avoidance (+1 per cwnd acked); nothing grows when not cwnd-limited.
TEST(TcpReno, SlowStartThenAdditiveIncrease) {
  tcp_sock tp;
  tp.snd_cwnd = 10;
  tp.snd_ssthresh = 12;
  tp.is_cwnd_limited = true;
  tcp_reno_cong_avoid(&tp, 5);  // 10 -> 12, 3 left: cnt 3
  EXPECT_EQ(tp.snd_cwnd, 12u);
  EXPECT_EQ(tp.snd_cwnd_cnt, 3u);
  tcp_reno_cong_avoid(&tp, 9);  // cnt 12 = w: +1
  EXPECT_EQ(tp.snd_cwnd, 13u);
  EXPECT_EQ(tp.snd_cwnd_cnt, 0u);
  tcp_reno_cong_avoid(&tp, 27);  // 27 / 13 = 2, 1 left
  EXPECT_EQ(tp.snd_cwnd, 15u);
  EXPECT_EQ(tp.snd_cwnd_cnt, 1u);
  tp.is_cwnd_limited = false;
  tp.max_packets_out = 100;  // only slow start looks at this
  tcp_reno_cong_avoid(&tp, 50);
  EXPECT_EQ(tp.snd_cwnd, 15u);
}

}  // namespace
}  // namespace xmit::testing_tcp
