// tests/tcp/tcp_ack_test.cc — tcp_ack(): snd_una, the retransmit queue (whole skbs freed, a GSO head
// trimmed), the peer's window with its scale, RTT samples through tcp_rtt_estimator() and the RTO
// from tcp_set_rto() (numbers worked out from the kernel's fixed-point formulas in the comments),
// Karn's rule, the timestamp echo, ts_recent, the windowed min RTT (tcp_update_rtt_min()). MSS
// 1448, GSO 3-segment skbs where a test says so.
#include "stack/tcp/tcp_ack.h"
#include "stack/tcp/tcp_options.h"
#include "stack/tcp/tcp_rack.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tcp/tcp_bed.h"

namespace xmit::testing_tcp {
namespace {

// srtt = m << 3, mdev = m << 1, rttvar = max(mdev, 200 ms), rto = srtt/8 + rttvar.
TEST(TcpRtt, FirstSampleThenSmallerThenLarger) {
  tcp_sock tp;
  tp.snd_una = 100;
  tp.snd_nxt = 200;
  tcp_rtt_estimator(&tp, 100000);  // 100 ms
  tcp_set_rto(&tp);
  EXPECT_EQ(tp.srtt_us, 800000u);
  EXPECT_EQ(tp.mdev_us, 200000u);
  EXPECT_EQ(tp.rttvar_us, 200000u);
  EXPECT_EQ(tp.rtt_seq, 200u);
  EXPECT_EQ(tp.icsk_rto, 300000u);
  // 60 ms: m = 60000 - 100000 = -40000; srtt = 760000; |m| - mdev/4 = -10000 (not > 0: not
  // divided by 8); mdev = 190000; rttvar stays 200000; snd_una not past rtt_seq.
  tcp_rtt_estimator(&tp, 60000);
  tcp_set_rto(&tp);
  EXPECT_EQ(tp.srtt_us, 760000u);
  EXPECT_EQ(tp.mdev_us, 190000u);
  EXPECT_EQ(tp.rttvar_us, 200000u);
  EXPECT_EQ(tp.icsk_rto, 295000u);
  // 300 ms after snd_una passed rtt_seq: m = 300000 - 95000 = 205000; srtt = 965000;
  // m - mdev/4 = 205000 - 47500 = 157500; mdev = 347500 = mdev_max = rttvar; new RTT: rtt_seq =
  // snd_nxt, mdev_max back to 200 ms. RTO = 120625 + 347500 = 468125 us, rounded up to 469 ms.
  tp.snd_una = 250;
  tp.snd_nxt = 300;
  tcp_rtt_estimator(&tp, 300000);
  tcp_set_rto(&tp);
  EXPECT_EQ(tp.srtt_us, 965000u);
  EXPECT_EQ(tp.mdev_us, 347500u);
  EXPECT_EQ(tp.rttvar_us, 347500u);
  EXPECT_EQ(tp.mdev_max_us, 200000u);
  EXPECT_EQ(tp.rtt_seq, 300u);
  EXPECT_EQ(tp.icsk_rto, 469000u);
}

// A short RTT: the RTO is 200 ms + srtt (rttvar never below TCP_RTO_MIN), e.g. 1 ms -> 201 ms.
TEST(TcpRtt, RtoFloorIsRtoMinPlusSrtt) {
  tcp_sock tp;
  tcp_rtt_estimator(&tp, 1000);
  tcp_set_rto(&tp);
  EXPECT_EQ(tp.icsk_rto, 201000u);
}

TEST(TcpAck, AckFreesSkbsSamplesRttAndStopsTimer) {
  TcpBed bed;
  bed.nodelay(true);
  bed.tp.tcp_mstamp = 1000000;
  bed.send(1000);
  bed.send(1000);
  ASSERT_EQ(bed.take().size(), 2u);
  EXPECT_EQ(bed.tp.packets_out, 2u);
  bed.tp.tcp_mstamp += 100000;  // 100 ms later
  EXPECT_EQ(bed.ack({.ack_rel = 1000}), 1);
  EXPECT_EQ(bed.tp.snd_una, kIsn + 1000);
  EXPECT_EQ(bed.tp.packets_out, 1u);
  EXPECT_EQ(bed.tp.rtx_queue.qlen, 1u);
  EXPECT_EQ(bed.tp.srtt_us, 800000u);
  EXPECT_EQ(bed.tp.icsk_rto, 300000u);
  EXPECT_TRUE(bed.tp.icsk_retransmit_timer.pending);  // one still in flight: RTO re-armed from now
  EXPECT_EQ(bed.tp.icsk_retransmit_timer.expires, 1100000u + 300000u);
  EXPECT_EQ(bed.ack({.ack_rel = 2000}), 1);
  EXPECT_EQ(bed.tp.packets_out, 0u);
  EXPECT_TRUE(tcp_rtx_queue_empty(&bed.tp));
  EXPECT_FALSE(bed.tp.icsk_retransmit_timer.pending);
}

TEST(TcpAck, OldAckIgnoredUnsentAckRejected) {
  TcpBed bed;
  bed.nodelay(true);
  bed.send(1000);
  EXPECT_EQ(bed.ack({.ack_rel = 500}), 1);
  EXPECT_EQ(bed.ack({.ack_rel = 400}), 0);  // before snd_una
  EXPECT_EQ(bed.tp.snd_una, kIsn + 500);
  EXPECT_EQ(bed.ack({.ack_rel = 1001}), -1);  // after snd_nxt
  EXPECT_EQ(bed.tp.snd_una, kIsn + 500);
}

// tcp_tso_acked(): 3 x 1448 in one GSO skb, ACK of 1548 bytes: tcp_trim_head() cuts 1548 bytes,
// 2796 remain = 2 segments, so one segment is counted acked. A one-segment skb is never trimmed
// by an ACK (pcount 1: the loop stops).
TEST(TcpAck, PartialAckTrimsGsoHead) {
  TcpBed bed;
  bed.nodelay(true);
  bed.send(3 * 1448);
  EXPECT_THAT(bed.take(), ::testing::ElementsAre(Seg{0, 4344, kAckPsh, 3, 1448}));
  EXPECT_EQ(bed.ack({.ack_rel = 1548}), 1);
  sk_buff* head = bed.tp.rtx_queue.head;
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(TCP_SKB_CB(head)->seq, kIsn + 1548);
  EXPECT_EQ(head->len, 2796u);
  EXPECT_EQ(tcp_skb_pcount(head), 2u);
  EXPECT_EQ(bed.tp.packets_out, 2u);
  // 452 more: trimmed (tcp_tso_acked() always trims), 2344 bytes are still 2 segments: none acked.
  EXPECT_EQ(bed.ack({.ack_rel = 2000}), 1);
  EXPECT_EQ(TCP_SKB_CB(head)->seq, kIsn + 2000);
  EXPECT_EQ(head->len, 2344u);
  EXPECT_EQ(bed.tp.packets_out, 2u);
  EXPECT_EQ(bed.tp.snd_una, kIsn + 2000);
}

// snd_wnd = window << snd_wscale; max_window only grows; an older segment (seq before snd_wl1)
// with the same ACK does not update the window (tcp_may_update_window()).
TEST(TcpAck, WindowScaledAndOnlyFromNewerSegments) {
  TcpBed bed;
  bed.nodelay(true);
  bed.tp.rx_opt.snd_wscale = 7;
  bed.tp.snd_wl1 = 5000;
  bed.send(100);
  EXPECT_EQ(bed.ack({.ack_rel = 0, .window = 100, .seq = 5000}), 1);  // same seq, smaller: no update
  EXPECT_EQ(bed.tp.snd_wnd, 1u << 20);
  EXPECT_EQ(bed.ack({.ack_rel = 100, .window = 100, .seq = 5000}), 1);  // ACK advances: update
  EXPECT_EQ(bed.tp.snd_wnd, 12800u);
  EXPECT_EQ(bed.tp.max_window, 1u << 20);
  EXPECT_EQ(bed.ack({.ack_rel = 100, .window = 60000, .seq = 5001}), 1);  // newer seq
  EXPECT_EQ(bed.tp.snd_wnd, 60000u << 7);
  EXPECT_EQ(bed.tp.max_window, 60000u << 7);
  EXPECT_EQ(bed.ack({.ack_rel = 100, .window = 10, .seq = 5000}), 1);  // older seq: ignored
  EXPECT_EQ(bed.tp.snd_wnd, 60000u << 7);
}

// Karn: an ACK of retransmitted data gives no sample from send times; the echoed timestamp does
// (TSecr 40 ms ago -> 40 ms).
TEST(TcpAck, KarnThenTimestampSample) {
  TcpBed bed;
  bed.nodelay(true);
  bed.tp.tcp_mstamp = 5000000;
  bed.send(100);
  TCP_SKB_CB(bed.tp.rtx_queue.head)->sacked |= TCPCB_EVER_RETRANS;
  bed.tp.rx_opt.tstamp_ok = false;  // no TS option parsed: no sample at all
  bed.tp.tcp_mstamp = 5100000;
  EXPECT_EQ(bed.ack({.ack_rel = 50}), 1);
  EXPECT_EQ(bed.tp.srtt_us, 0u);
  bed.tp.rx_opt.tstamp_ok = true;
  EXPECT_EQ(bed.ack({.ack_rel = 100, .tsval = 7, .tsecr = 5100 - 40}), 1);
  EXPECT_EQ(bed.tp.srtt_us, 40000u << 3);
  EXPECT_EQ(bed.tp.icsk_rto, 240000u);
}

// ts_recent takes TSval from a segment starting at or before rcv_wup that passes PAWS; a newer
// seq or an older TSval leaves it.
TEST(TcpAck, TsRecentReplacedAsTcpReplaceTsRecent) {
  TcpBed bed;
  bed.tp.rcv_wup = bed.tp.rcv_nxt;
  bed.tp.rx_opt.ts_recent = 1000;
  EXPECT_EQ(bed.ack({.tsval = 1200, .tsecr = 1}), 1);
  EXPECT_EQ(bed.tp.rx_opt.ts_recent, 1200u);
  EXPECT_EQ(bed.ack({.tsval = 1100, .tsecr = 1}), 1);  // older than ts_recent: PAWS check fails
  EXPECT_EQ(bed.tp.rx_opt.ts_recent, 1200u);
  EXPECT_EQ(bed.ack({.tsval = 1300, .tsecr = 1, .seq = bed.tp.rcv_wup + 1}), 1);  // after rcv_wup
  EXPECT_EQ(bed.tp.rx_opt.ts_recent, 1200u);
  // The next segment we send echoes it.
  bed.nodelay(true);
  bed.send(10);
  tcp_out_options opts;
  EXPECT_EQ(tcp_established_options(&bed.tp, nullptr, &opts), 12u);
  EXPECT_EQ(opts.tsecr, 1200u);
}

// The min RTT is minmax_running_min() over net.ipv4.tcp_min_rtt_wlen seconds (10 here) of
// jiffies: a 1 ms sample at t0, then 5 ms each second. The 1 ms minimum holds while it is at most
// wlen old (t0 + 10 s: dt 10000 is not > win), then the best of the window's later choices takes
// over (the 2nd choice taken after a quarter of the window). A smaller sample wins at once.
TEST(TcpMinRtt, WindowedMinimumExpiresAfterWlen) {
  tcp_sock tp;
  tp.sysctl_tcp_min_rtt_wlen = 10;
  const uint64_t t0 = 50'000'000;
  tp.tcp_mstamp = t0;
  tcp_ack_update_rtt(&tp, FLAG_DATA_ACKED, 1000, -1, 1000);
  EXPECT_EQ(tcp_min_rtt(&tp), 1000u);
  for (uint64_t sec = 1; sec <= 12; ++sec) {
    tp.tcp_mstamp = t0 + sec * 1'000'000;
    tcp_ack_update_rtt(&tp, FLAG_DATA_ACKED, 5000, -1, 5000);
    EXPECT_EQ(tcp_min_rtt(&tp), sec <= 10 ? 1000u : 5000u) << sec;
  }
  tcp_ack_update_rtt(&tp, FLAG_DATA_ACKED, 4000, -1, 4000);
  EXPECT_EQ(tcp_min_rtt(&tp), 4000u);
  tcp_ack_update_rtt(&tp, FLAG_DATA_ACKED, 0, -1, 0);  // "rtt_us ? : jiffies_to_usecs(1)"
  EXPECT_EQ(tcp_min_rtt(&tp), 1000u);
}

// FLAG_ACK_MAYBE_DELAYED (tcp_clean_rtx_queue()): the ACK of one lone runt (under one MSS, nothing
// SACKed, nothing else delivered since it was sent) is likely delayed, and its sample is skipped
// when above the min ("If the remote keeps returning delayed ACKs, eventually the min filter would
// pick it up"). SACK on (for Reno tp->delivered does not yet count the ACK there: never flagged).
// A runt answered in 1 ms sets the min; 20 s later (past the 10 s window) a runt answered in 40 ms
// is skipped: the min stays 1 ms; a full MSS answered in 40 ms is not a runt: the expired window
// restarts at 40 ms.
TEST(TcpMinRtt, DelayedAckOfALoneRuntIsSkipped) {
  TcpBed bed;
  bed.nodelay(true);
  bed.tp.rx_opt.sack_ok = true;
  bed.tp.sysctl_tcp_min_rtt_wlen = 10;
  const uint64_t t0 = 50'000'000;
  bed.tp.tcp_mstamp = t0;
  bed.send(100);
  bed.tp.tcp_mstamp += 1000;
  EXPECT_EQ(bed.ack({.ack_rel = 100}), 1);
  EXPECT_EQ(tcp_min_rtt(&bed.tp), 1000u);
  bed.tp.tcp_mstamp = t0 + 20'000'000;
  bed.send(100);
  bed.tp.tcp_mstamp += 40'000;
  EXPECT_EQ(bed.ack({.ack_rel = 200}), 1);
  EXPECT_EQ(tcp_min_rtt(&bed.tp), 1000u);
  EXPECT_EQ(bed.tp.srtt_us >> 3, 1000u + (40'000u - 1000u) / 8);  // the sample still feeds SRTT
  bed.send(1448);
  bed.tp.tcp_mstamp += 40'000;
  EXPECT_EQ(bed.ack({.ack_rel = 200 + 1448}), 1);
  EXPECT_EQ(tcp_min_rtt(&bed.tp), 40'000u);
  EXPECT_EQ(bed.take().size(), 3u);
}

}  // namespace
}  // namespace xmit::testing_tcp
