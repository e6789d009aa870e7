// tests/tcp/tcp_cubic_test.cc — CUBIC from the kernel's formulas (net/ipv4/tcp_cubic.c):
// cubic_root()'s table and Newton step, ssthresh after a loss = cwnd * 717 / 1024 with W_max and
// fast convergence, K = cubic_root(cube_factor * (W_max - cwnd)) with cube_factor = 2^40 / 410,
// the ACKs per +1 (ca->cnt) at the start of an epoch and at K, cwnd after a sequence of ACKs,
// HyStart's delay exit, the loss state resetting the epoch; Reno behind the same ops table; the
// RTT sample an ACK of several segments gives CUBIC (the last one's).
#include "stack/tcp/tcp_cubic.h"

#include <cmath>

#include "gtest/gtest.h"
#include "stack/tcp/tcp_cong.h"
#include "stack/tcp/tcp_rack.h"
#include "stack/tcp/tcp_recovery.h"
#include "tests/tcp/tcp_bed.h"

namespace xmit {
namespace {

constexpr uint64_t kCubeFactor = (1ull << 40) / 410;  // 2681735677

// Table entries: (v[a] + 35) >> 6 for a < 64: cbrt 1 = 1, 8 = 2, 27 = 3, 63 -> 4 (v = 254).
TEST(TcpCubic, CubicRootTableAndNewton) {
  EXPECT_EQ(cubic_root(0), 0u);
  EXPECT_EQ(cubic_root(1), 1u);
  EXPECT_EQ(cubic_root(8), 2u);
  EXPECT_EQ(cubic_root(27), 3u);
  EXPECT_EQ(cubic_root(63), 4u);
  // 64: b = ((7 * 84) >> 8) - 1 = 1, x = ((v[8] + 10) << 1) >> 6 = 4, x = (8 + 64 / 12) * 341 >> 10 = 4
  EXPECT_EQ(cubic_root(64), 4u);
  EXPECT_EQ(cubic_root(1000), 10u);
  EXPECT_EQ(cubic_root(1000000), 100u);
  // Within 0.5 % (+1) of the real cube root across the range cwnd differences produce
  // ("Avg err ~= 0.195%").
  for (uint64_t a = 64; a < (1ull << 50); a = a * 3 + 7) {
    double want = std::cbrt(static_cast<double>(a));
    EXPECT_NEAR(cubic_root(a), want, want * 0.005 + 1) << a;
  }
}

struct CubicSock {
  tcp_sock tp;
  CubicSock() {
    tp.tcp_mstamp = 100'000'000;  // 100 s
    tcp_init_congestion_control(&tp, &tcp_cubic);
  }
  bictcp* ca() { return inet_csk_ca(&tp); }
};

// First loss at cwnd 100: W_max 100, ssthresh 100 * 717 / 1024 = 70. A second loss below W_max
// (cwnd 80) is fast convergence: W_max = 80 * (1024 + 717) / 2048 = 68, ssthresh 80 * 717 / 1024 = 56.
// Never below 2.
TEST(TcpCubic, SsthreshBetaAndFastConvergence) {
  CubicSock s;
  EXPECT_STREQ(tcp_ca_ops(&s.tp)->name, "cubic");
  s.tp.snd_cwnd = 100;
  EXPECT_EQ(tcp_ca_ssthresh(&s.tp), 70u);
  EXPECT_EQ(s.ca()->last_max_cwnd, 100u);
  s.tp.snd_cwnd = 80;
  EXPECT_EQ(tcp_ca_ssthresh(&s.tp), 56u);
  EXPECT_EQ(s.ca()->last_max_cwnd, 68u);
  s.tp.snd_cwnd = 2;
  EXPECT_EQ(tcp_ca_ssthresh(&s.tp), 2u);
}

// After the loss at 100, cwnd 70: the epoch starts at the first ACK; K = cubic_root(2681735677 *
// 30) = 4316 (1/1024 s; the real root is 4316.97). At t = 0: offs = K, delta = (410 * 4316^3) >> 40
// = 29, target 100 - 29 = 71, cnt = 70 / (71 - 70) = 70. At t = K (jiffies 4215: 4215 * 1024 /
// 1000 = 4316): target = W_max = 100, cnt = 70 / 30 = 2.
TEST(TcpCubic, EpochKAndCnt) {
  CubicSock s;
  s.tp.snd_cwnd = 100;
  s.tp.snd_ssthresh = tcp_ca_ssthresh(&s.tp);
  s.tp.snd_cwnd = s.tp.snd_ssthresh;
  const uint32_t j0 = static_cast<uint32_t>(s.tp.tcp_mstamp / 1000);
  bictcp_update(&s.tp, 70, 1);
  EXPECT_EQ(s.ca()->epoch_start, j0);
  EXPECT_EQ(s.ca()->bic_K, 4316u);
  EXPECT_EQ(s.ca()->bic_K, cubic_root(kCubeFactor * 30));
  EXPECT_NEAR(s.ca()->bic_K, std::cbrt(static_cast<double>(kCubeFactor) * 30), 4316 * 0.002);
  EXPECT_EQ(s.ca()->bic_origin_point, 100u);
  EXPECT_EQ(s.ca()->cnt, 70u);
  s.tp.tcp_mstamp += 4215 * 1000;
  bictcp_update(&s.tp, 70, 1);
  EXPECT_EQ(s.ca()->cnt, 2u);
}

// cwnd after ACKs, congestion avoidance at the start of the epoch (cnt 70): 70 ACKs in one jiffy
// give +1 (tcp_cong_avoid_ai(w = 70)), 69 more do not; slow start below ssthresh adds one per
// segment ACKed up to ssthresh and the rest goes to the cubic increase.
TEST(TcpCubic, CwndAfterAckSequence) {
  CubicSock s;
  s.tp.snd_cwnd = 100;
  s.tp.snd_ssthresh = tcp_ca_ssthresh(&s.tp);
  s.tp.snd_cwnd = 70;
  s.tp.is_cwnd_limited = true;
  for (int i = 0; i < 70; ++i) tcp_cong_avoid(&s.tp, 0, 1);
  EXPECT_EQ(s.tp.snd_cwnd, 71u);
  for (int i = 0; i < 69; ++i) tcp_cong_avoid(&s.tp, 0, 1);
  EXPECT_EQ(s.tp.snd_cwnd, 71u);

  CubicSock ss;
  ss.tp.snd_cwnd = 10;
  ss.tp.snd_ssthresh = 14;
  ss.tp.is_cwnd_limited = true;
  tcp_cong_avoid(&ss.tp, 0, 3);
  EXPECT_EQ(ss.tp.snd_cwnd, 13u);
  // 1 to reach 14, 2 left for cubic: a new epoch with no W_max: cnt capped at 20 ("increase cwnd
  // 5% per RTT"), snd_cwnd_cnt 2.
  tcp_cong_avoid(&ss.tp, 0, 3);
  EXPECT_EQ(ss.tp.snd_cwnd, 14u);
  EXPECT_EQ(ss.ca()->cnt, 20u);
  EXPECT_EQ(ss.tp.snd_cwnd_cnt, 2u);
}

// HyStart's delay exit: a round of 8 samples sets curr_rtt; in a new round whose minimum RTT is
// more than delay_min + clamp(delay_min / 8, 4 ms, 16 ms) above delay_min (10 ms + 4 ms), slow
// start ends: ssthresh = cwnd. 13 ms is not enough. Samples 5 ms apart (no ACK train).
TEST(TcpCubic, HystartDelayExit) {
  for (uint32_t rtt : {13'000u, 15'000u}) {
    CubicSock s;
    s.tp.snd_cwnd = 20;
    s.tp.snd_una = 1000;
    s.tp.snd_nxt = 1000;
    tcp_init_congestion_control(&s.tp, &tcp_cubic);  // round ends at snd_nxt = 1000
    for (int i = 0; i < 8; ++i) {
      s.tp.tcp_mstamp += 5000;
      tcp_ca_pkts_acked(&s.tp, 1, 10'000);
    }
    EXPECT_EQ(s.ca()->delay_min, 10'000u);
    EXPECT_EQ(s.ca()->sample_cnt, 8);
    s.tp.snd_una = 2000;  // past the round's end: the next sample starts a new round
    s.tp.snd_nxt = 30000;
    for (int i = 0; i < 9; ++i) {
      s.tp.tcp_mstamp += 5000;
      tcp_ca_pkts_acked(&s.tp, 1, rtt);
    }
    if (rtt == 15'000) {
      EXPECT_EQ(s.ca()->found, 1);
      EXPECT_EQ(s.tp.snd_ssthresh, 20u);
    } else {
      EXPECT_EQ(s.ca()->found, 0);
      EXPECT_EQ(s.tp.snd_ssthresh, 0x7fffffffu);
    }
  }
}

// The loss state resets the epoch and W_max (cubictcp_state); Reno through the same table halves.
TEST(TcpCubic, LossStateResetsAndRenoOps) {
  CubicSock s;
  s.tp.snd_cwnd = 100;
  tcp_ca_ssthresh(&s.tp);
  bictcp_update(&s.tp, 70, 1);
  EXPECT_NE(s.ca()->epoch_start, 0u);
  tcp_set_ca_state(&s.tp, TCP_CA_Loss);
  EXPECT_EQ(s.ca()->epoch_start, 0u);
  EXPECT_EQ(s.ca()->last_max_cwnd, 0u);
  EXPECT_EQ(s.tp.icsk_ca_state, TCP_CA_Loss);

  tcp_sock r;
  EXPECT_STREQ(tcp_ca_ops(&r)->name, "reno");  // a tcp_sock nobody initialised
  r.snd_cwnd = 100;
  EXPECT_EQ(tcp_ca_ssthresh(&r), 50u);
}

// An ACK covering three segments sent at t0, t0 + 2 ms and t0 + 4 ms, at t0 + 10 ms: CUBIC's
// pkts_acked() gets the last one's RTT, 6 ms (the kernel's ca_rtt_us, tcp_clean_rtx_queue()'s
// last_ackt), so delay_min and HyStart's round minimum (cwnd 20: HyStart runs) are 6 ms, not the
// first one's 10 ms; srtt takes the first one's (seq_rtt_us), the min RTT the last one's.
TEST(TcpCubic, AckOfSeveralSegmentsSamplesTheLastOnesRtt) {
  testing_tcp::TcpBed bed;
  tcp_init_congestion_control(&bed.tp, &tcp_cubic);
  bed.tp.snd_cwnd = 20;
  bed.nodelay(true);
  const uint64_t t0 = 10'000'000;
  for (uint64_t k = 0; k < 3; ++k) {
    bed.tp.tcp_mstamp = t0 + k * 2000;
    bed.send(1000);
  }
  ASSERT_EQ(bed.take().size(), 3u);
  bed.tp.tcp_mstamp = t0 + 10'000;
  ASSERT_EQ(bed.ack({.ack_rel = 3000}), 1);
  EXPECT_EQ(bed.tp.packets_out, 0u);
  EXPECT_EQ(inet_csk_ca(&bed.tp)->delay_min, 6'000u);
  EXPECT_EQ(inet_csk_ca(&bed.tp)->curr_rtt, 6'000u);
  EXPECT_EQ(bed.tp.srtt_us, 10'000u << 3);
  EXPECT_EQ(tcp_min_rtt(&bed.tp), 6'000u);
}

}  // namespace
}  // namespace xmit
