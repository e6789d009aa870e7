// tests/tcp/tcp_tso_test.cc — TSO autosizing: how many MSS one TSO skb carries (tcp_tso_segs(),
// kernel: tcp_tso_autosize()), from the pacing rate and the min RTT, and the frames tcp_write_xmit()
// hands to the device as the rate grows; the retransmissions' cut (the RTO's one MSS,
// tcp_xmit_retransmit_queue()'s min(cwnd - in flight, tcp_tso_segs())). MSS 1448, gso_max_size
// 65215 (45 MSS), TCP_NODELAY.
#include <algorithm>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stack/tcp/tcp_output.h"
#include "stack/tcp/tcp_timer.h"
#include "tests/tcp/tcp_bed.h"

namespace xmit::testing_tcp {
namespace {

// bytes = rate >> 10, plus 65215 >> (min_rtt >> rtt_log) while that shift is under 32, at most
// 65215; segs = max(bytes / 1448, min_tso_segs), at most gso_max_segs.
TEST(TcpTso, SegsFollowThePacingRateAndTheMinRtt) {
  struct Case {
    const char* name;
    uint64_t rate;
    uint32_t min_rtt_us;
    uint32_t want;
    uint8_t min_tso_segs = 2;
    uint8_t rtt_log = 9;
    uint16_t gso_max_segs = GSO_MAX_SEGS;
  };
  const Case cases[] = {
      {"no sample yet: rate and min RTT ~0", ~0ull, ~0u, 45},
      {"far peer, 2.9 MB/s: 2828 bytes, the minimum", 2896000, 10000, 2},
      {"far peer, 10 MiB/s: 10240 bytes", 10u << 20, 10000, 7},
      {"far peer, a high rate: gso_max_size", 1ull << 30, 10000, 45},
      {"near peer (100 us): the whole allowance", 2896000, 100, 45},
      {"1024 us: a quarter of the allowance", 2896000, 1024, (2828 + (65215 >> 2)) / 1448},
      {"16 ms: allowance 65215 >> 31 = 0", 0, 16383, 2},
      {"tcp_tso_rtt_log 10 halves the shift", 2896000, 1024, (2828 + (65215 >> 1)) / 1448, 2, 10},
      {"tcp_min_tso_segs 4", 2896000, 10000, 4, 4},
      {"sk_gso_max_segs 8", ~0ull, ~0u, 8, 2, 9, 8},
  };
  for (const Case& c : cases) {
    TcpBed bed;
    bed.tp.sk_pacing_rate = c.rate;
    minmax_reset(&bed.tp.rtt_min, 0, c.min_rtt_us);
    bed.tp.sysctl_tcp_min_tso_segs = c.min_tso_segs;
    bed.tp.sysctl_tcp_tso_rtt_log = c.rtt_log;
    bed.tp.gso_max_segs = c.gso_max_segs;
    ASSERT_EQ(bed.tp.gso_max_size, 65215u);
    EXPECT_EQ(tcp_tso_segs(&bed.tp, 1448), c.want) << c.name;
  }
}

// Without GSO sk_gso_max_segs is 1 (sk_setup_caps()): one MSS per skb whatever the rate.
TEST(TcpTso, WithoutGsoOneSegment) {
  TcpBed bed;
  tcp_sk_setup_caps(&bed.tp, NetdevFeatures{.ip_csum = true, .l4_csum = true}, /*sw_gso=*/false);
  EXPECT_EQ(tcp_tso_segs(&bed.tp, 1448), 1u);
}

// The frames sent for a writer with a 300 kB backlog on a 10 ms path (as after a handshake that
// measured 10 ms: srtt 10 ms, min RTT 10 ms, the pacing rate from cwnd 10; the peer's window 2 MiB).
// Each round the peer acknowledges everything 10 ms later; slow start doubles cwnd and so the
// pacing rate (mss * cwnd / srtt at 200 %), and with it the largest frame: 2, 3, 7, 15 MSS. Each
// round fills the cwnd; frames are cut at that size (and at the ends of the 45-MSS skbs the writes
// made). tcp_cwnd_test()'s quota, half the cwnd, alone would give 5, 10, 20, 40.
TEST(TcpTso, FramesGrowWithThePacingRateInSlowStart) {
  TcpBed bed;
  bed.nodelay(true);
  bed.tp.rx_opt.snd_wscale = 5;
  bed.tp.srtt_us = 10000 << 3;
  minmax_reset(&bed.tp.rtt_min, 0, 10000);
  tcp_update_pacing_rate(&bed.tp);
  EXPECT_EQ(bed.tp.sk_pacing_rate, 2896000u);
  ASSERT_EQ(bed.send(300000), 300000);
  struct Round {
    uint32_t cwnd;
    uint64_t rate;
    uint16_t max_segs;  // (rate >> 10) / 1448
  };
  const Round rounds[] = {{10, 2896000, 2}, {20, 5792000, 3}, {40, 11584000, 7}, {80, 23168000, 15}};
  for (const Round& r : rounds) {
    EXPECT_EQ(bed.tp.snd_cwnd, r.cwnd);
    EXPECT_EQ(bed.tp.sk_pacing_rate, r.rate) << r.cwnd;
    uint32_t total = 0;
    uint16_t largest = 0;
    for (const Seg& s : bed.take()) {
      EXPECT_LE(s.gso_segs, r.max_segs) << r.cwnd << " " << s;
      EXPECT_EQ(s.len, s.gso_segs * 1448u) << r.cwnd << " " << s;
      total += s.gso_segs;
      largest = std::max(largest, s.gso_segs);
    }
    EXPECT_EQ(total, r.cwnd);
    EXPECT_EQ(largest, r.max_segs) << r.cwnd;
    bed.tp.tcp_mstamp += 10000;
    bed.data(0, 0);  // acknowledges everything sent (window 65535 << 5); the ACK sends the next round
  }
}

// Before the first RTT sample (pacing rate and min RTT ~0) a frame may be the whole gso_max_size:
// cwnd 10 goes as two frames of 5, tcp_cwnd_test()'s quota.
TEST(TcpTso, NoRttSampleYetCwndQuotaCuts) {
  TcpBed bed;
  bed.nodelay(true);
  ASSERT_EQ(bed.send(100000), 100000);
  EXPECT_THAT(bed.take(), ::testing::ElementsAre(Seg{0, 7240, kAckPsh, 5, 1448}, Seg{7240, 7240, kAckPsh, 5, 1448}));
}

// Retransmissions are cut too (kernel: __tcp_retransmit_skb()'s "len = cur_mss * segs"). The RTO
// sends one MSS of a 5-MSS skb ("tcp_retransmit_skb(sk, tcp_rtx_queue_head(sk), 1)"), the rest
// split off and still lost; the ACK of it (cwnd 1 -> 2, nothing in flight) lets
// tcp_xmit_retransmit_queue() send min(cwnd - in flight, tcp_tso_segs()) = 2 MSS of the next.
TEST(TcpTso, RetransmissionsAreCutToSegs) {
  TcpBed bed;
  bed.nodelay(true);
  bed.tp.tcp_mstamp = 10'000'000;
  ASSERT_EQ(bed.send(7240), 7240);
  EXPECT_THAT(bed.take(), ::testing::ElementsAre(Seg{0, 7240, kAckPsh, 5, 1448}));
  bed.tp.tcp_mstamp = bed.tp.icsk_retransmit_timer.expires;
  tcp_timers_run(&bed.tp, [&bed](sk_buff* s) { return bed.xmit(s); }, nullptr);
  EXPECT_THAT(bed.take(), ::testing::ElementsAre(Seg{0, 1448, kAck, 1, 0}));
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Loss);
  EXPECT_EQ(bed.tp.packets_out, 5u);
  EXPECT_EQ(bed.tp.lost_out, 5u);
  EXPECT_EQ(bed.tp.retrans_out, 1u);
  bed.tp.tcp_mstamp += 100'000;
  EXPECT_EQ(bed.ack({.ack_rel = 1448}), 1);
  EXPECT_EQ(bed.tp.snd_cwnd, 2u);
  EXPECT_THAT(bed.take(), ::testing::ElementsAre(Seg{1448, 2896, kAckPsh, 2, 1448}));
  EXPECT_EQ(bed.tp.retrans_out, 2u);
}

// The fast retransmit at recovery's start is cut to the room the cwnd leaves, at least one MSS (the
// kernel's tcp_xmit_retransmit_queue() after PRR's forced "sndcnt = 1"), not a whole TSO skb:
// after three duplicate ACKs the 5-MSS head goes as one MSS.
TEST(TcpTso, FastRetransmitIsCutToTheCwndRoom) {
  TcpBed bed;
  bed.nodelay(true);
  bed.tp.tcp_mstamp = 10'000'000;
  ASSERT_EQ(bed.send(1448), 1448);
  bed.tp.tcp_mstamp += 1000;
  EXPECT_EQ(bed.ack({.ack_rel = 1448}), 1);
  bed.take();
  ASSERT_EQ(bed.send(14480), 14480);
  const std::vector<Seg> first = bed.take();
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first[0].gso_segs, 5);
  for (int i = 0; i < 3; ++i) {
    bed.tp.tcp_mstamp += 1000;
    EXPECT_EQ(bed.ack({.ack_rel = 1448}), 1);
  }
  EXPECT_EQ(bed.tp.icsk_ca_state, TCP_CA_Recovery);
  const std::vector<Seg> sent = bed.take();
  ASSERT_FALSE(sent.empty());
  EXPECT_EQ(sent[0], (Seg{1448, 1448, kAck, 1, 0}));
}

}  // namespace
}  // namespace xmit::testing_tcp
