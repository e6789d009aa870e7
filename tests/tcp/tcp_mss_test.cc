// tests/tcp/tcp_mss_test.cc — MSS and size goal against the kernel's arithmetic: MTU 1500 / 9000 /
// 576, timestamps on and off, the peer's MSS clamp, the half-window bound, TSO on/off/software GSO.
#include "stack/tcp/tcp_mss.h"

#include <sys/socket.h>

#include <string>

#include "gtest/gtest.h"

namespace xmit {
namespace {

tcp_sock make_tp(bool tstamps) {
  tcp_sock tp;
  tp.rx_opt.tstamp_ok = tstamps;
  tp.tcp_header_len = tstamps ? 32 : 20;  // kernel: tcp_rcv_synsent_state_process(): 20 (+ 12 if TS)
  tp.max_window = 1u << 20;               // a large window: the half-window bound stays out
  return tp;
}

struct MssCase {
  std::string name;
  uint32_t mtu;
  bool tstamps;
  uint32_t mss;        // tcp_sync_mss(): mtu - 20 (IP) - 20 (TCP) - 12 with timestamps
  uint32_t size_goal;  // tcp_xmit_size_goal() with GSO: gso_max_size 65536 - (MAX_TCP_HEADER 320 + 1)
                       // = 65215, rounded down to a multiple of the mss
};

class MssTest : public ::testing::TestWithParam<MssCase> {};

TEST_P(MssTest, KernelNumbers) {
  const MssCase& c = GetParam();
  tcp_sock tp = make_tp(c.tstamps);
  EXPECT_EQ(tcp_sync_mss(&tp, c.mtu), c.mss);
  EXPECT_EQ(tp.pmtu_cookie, c.mtu);
  EXPECT_EQ(static_cast<uint32_t>(tcp_mss_to_mtu(&tp, static_cast<int>(c.mss))), c.mtu);
  EXPECT_EQ(tcp_current_mss(&tp, c.mtu), c.mss);

  NetdevFeatures tso{.l4_csum = true, .tso = true, .mtu = c.mtu};
  tcp_sk_setup_caps(&tp, tso, /*sw_gso=*/false);
  EXPECT_EQ(tp.gso_max_size, 65215u);
  uint32_t goal = 0;
  EXPECT_EQ(tcp_send_mss(&tp, c.mtu, 0, &goal), c.mss);
  EXPECT_EQ(goal, c.size_goal);
  EXPECT_EQ(tp.gso_segs, c.size_goal / c.mss);

  // No TSO, but software GSO as the kernel always has since 4.19: the same size goal.
  tcp_sk_setup_caps(&tp, NetdevFeatures{.mtu = c.mtu});
  EXPECT_EQ(tcp_send_mss(&tp, c.mtu, 0, &goal), c.mss);
  EXPECT_EQ(goal, c.size_goal);

  // No TSO and GSO turned off: one MSS per skb.
  tcp_sk_setup_caps(&tp, NetdevFeatures{.mtu = c.mtu}, /*sw_gso=*/false);
  EXPECT_EQ(tcp_send_mss(&tp, c.mtu, 0, &goal), c.mss);
  EXPECT_EQ(goal, c.mss);
}

INSTANTIATE_TEST_SUITE_P(
    Mtus, MssTest,
    ::testing::Values(
        // 1460 * 44 = 64240 (45 would be 65700 > 65215); the familiar 1448 * 45 = 65160.
        MssCase{"mtu1500", 1500, false, 1460, 64240},
        MssCase{"mtu1500_ts", 1500, true, 1448, 65160},
        // 8960 * 7 = 62720, 8948 * 7 = 62636.
        MssCase{"mtu9000", 9000, false, 8960, 62720},
        MssCase{"mtu9000_ts", 9000, true, 8948, 62636},
        // RFC 1122's 576: 536 (TCP_MSS_DEFAULT) * 121 = 64856, 524 * 124 = 64976.
        MssCase{"mtu576", 576, false, 536, 64856},
        MssCase{"mtu576_ts", 576, true, 524, 64976}),
    [](const auto& info) { return info.param.name; });

// The peer's MSS option caps the option-less MSS before the timestamp space comes off:
// min(1460, 1400) - 12 = 1388, what `ss -i` shows against a peer announcing 1400.
TEST(Mss, ClampedByPeerMss) {
  tcp_sock tp = make_tp(true);
  tp.rx_opt.mss_clamp = 1400;
  EXPECT_EQ(tcp_sync_mss(&tp, 1500), 1388u);
  tp.rx_opt.tstamp_ok = false;
  tp.tcp_header_len = 20;
  EXPECT_EQ(tcp_sync_mss(&tp, 1500), 1400u);
}

// IP options (icsk_ext_hdr_len) come off the MSS: 1460 - 12 = 1448 for a 12-byte option.
TEST(Mss, IpOptionsReduceMss) {
  tcp_sock tp = make_tp(false);
  tp.ext_hdr_len = 12;
  EXPECT_EQ(tcp_sync_mss(&tp, 1500), 1448u);
  EXPECT_EQ(tcp_mss_to_mtu(&tp, 1448), 1500);
}

// A tiny MTU hits sysctl_tcp_min_snd_mss (48) before options: 68 - 40 = 28 -> 48, and 48 - 12 = 36
// with timestamps.
TEST(Mss, FloorIsMinSndMss) {
  tcp_sock tp = make_tp(false);
  EXPECT_EQ(tcp_mtu_to_mss(&tp, 68), 48);
  tp = make_tp(true);
  EXPECT_EQ(tcp_mtu_to_mss(&tp, 68), 36);
}

// tcp_bound_to_half_wnd(): half of max_window when it exceeds 536, all of it otherwise, never
// below 68 - tcp_header_len.
TEST(Mss, BoundToHalfWindow) {
  tcp_sock tp = make_tp(false);
  tp.max_window = 2000;
  EXPECT_EQ(tcp_sync_mss(&tp, 1500), 1000u);
  tp.max_window = 500;
  EXPECT_EQ(tcp_sync_mss(&tp, 1500), 500u);
  tp.max_window = 40;
  EXPECT_EQ(tcp_sync_mss(&tp, 1500), 48u);  // max(40, 68 - 20)
  tp.max_window = 0;                        // no window seen yet: no bound
  EXPECT_EQ(tcp_sync_mss(&tp, 1500), 1460u);
}

// tcp_current_mss() re-syncs when the route MTU differs from the cookie, and corrects for an
// option set longer than tcp_header_len assumed (here: timestamps on, header_len still 20).
TEST(Mss, CurrentMssFollowsRouteAndOptions) {
  tcp_sock tp = make_tp(true);
  EXPECT_EQ(tcp_sync_mss(&tp, 1500), 1448u);
  EXPECT_EQ(tcp_current_mss(&tp, 1400), 1348u);
  EXPECT_EQ(tp.mss_cache, 1348u);
  EXPECT_EQ(tp.pmtu_cookie, 1400u);
  tp.tcp_header_len = 20;
  tcp_sync_mss(&tp, 1500);
  EXPECT_EQ(tp.mss_cache, 1460u);
  EXPECT_EQ(tcp_current_mss(&tp, 1500), 1448u);  // 20 + 12 != 20: 12 more come off
}

// The size goal under a TSO limit, a small peer window and MSG_OOB.
TEST(Mss, SizeGoalLimits) {
  tcp_sock tp = make_tp(true);
  tcp_sync_mss(&tp, 1500);
  uint32_t goal = 0;
  // tso_max_size 32768: 32768 - 321 = 32447 -> 22 * 1448 = 31856.
  tcp_sk_setup_caps(&tp, NetdevFeatures{.l4_csum = true, .tso = true, .tso_max_size = 32768});
  tcp_send_mss(&tp, 1500, 0, &goal);
  EXPECT_EQ(goal, 31856u);
  // Half a 20000-byte window bounds the goal: 10000 -> 6 * 1448 = 8688.
  tcp_sk_setup_caps(&tp, NetdevFeatures{.l4_csum = true, .tso = true});
  tp.max_window = 20000;
  tcp_send_mss(&tp, 1500, 0, &goal);
  EXPECT_EQ(goal, 8688u);
  // MSG_OOB: large_allowed is false, one MSS.
  tcp_send_mss(&tp, 1500, MSG_OOB, &goal);
  EXPECT_EQ(goal, 1448u);
  // gso_max_segs caps the count: 4 segments.
  tp.max_window = 1u << 20;
  tp.gso_max_segs = 4;
  tcp_send_mss(&tp, 1500, 0, &goal);
  EXPECT_EQ(goal, 4u * 1448);
  // A device limit under MAX_TCP_HEADER + 1 leaves one MSS (no unsigned underflow).
  tcp_sk_setup_caps(&tp, NetdevFeatures{.tso = true, .tso_max_size = 252});
  tcp_send_mss(&tp, 1500, 0, &goal);
  EXPECT_EQ(goal, 1448u);
}

}  // namespace
}  // namespace xmit
