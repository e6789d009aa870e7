// tests/dev/sw_offload_test.cc — frame checks, the local checksum, checksum finishing and TSO.
#include "stack/dev/sw_offload.h"

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/dev/test_frames.h"

namespace xmit {
namespace {

using testing::be16_at;
using testing::be32_at;
using testing::L4Spec;
using testing::make_frame;

TEST(SwCsum, Ipv4HeaderKnownValue) {
  // A captured header whose checksum is b861.
  const uint8_t ip[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                        0xff, 0xff, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  std::vector<uint8_t> f(14 + sizeof(ip), 0);
  f[12] = 0x08;
  std::memcpy(f.data() + 14, ip, sizeof(ip));
  ASSERT_EQ(tx_finish_csum(f.data(), static_cast<uint32_t>(f.size()), kTxIpCsum, 0, 0), 0);
  EXPECT_EQ(be16_at(f, 24), 0xb861);
}

TEST(SwCsum, IpCsumNeedsIpv4) {
  std::vector<uint8_t> arp(60, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  EXPECT_EQ(tx_finish_csum(arp.data(), 60, kTxIpCsum, 0, 0), -EINVAL);
}

class L4CsumTest : public ::testing::TestWithParam<uint8_t> {};

TEST_P(L4CsumTest, FinishesPartialChecksum) {
  for (uint32_t payload : {0u, 1u, 17u, 1000u}) {
    auto f = make_frame({.protocol = GetParam(), .payload_len = payload, .partial_csum = true,
                         .ip_csum_zero = true});
    ASSERT_FALSE(testing::l4_csum_ok(f));
    ASSERT_FALSE(testing::ipv4_csum_ok(f));
    ASSERT_EQ(tx_finish_csum(f.data(), static_cast<uint32_t>(f.size()), kTxIpCsum | kTxL4Csum,
                             static_cast<uint16_t>(testing::l4_offset()),
                             static_cast<uint16_t>(testing::l4_csum_offset(GetParam()))),
              0);
    EXPECT_TRUE(testing::l4_csum_ok(f)) << payload;
    EXPECT_TRUE(testing::ipv4_csum_ok(f)) << payload;
    // Byte-exact against a frame built with the full checksum.
    EXPECT_EQ(f, make_frame({.protocol = GetParam(), .payload_len = payload}));
  }
}

INSTANTIATE_TEST_SUITE_P(Proto, L4CsumTest, ::testing::Values(6, 17),
                         [](const auto& info) { return info.param == 6 ? "Tcp" : "Udp"; });

TEST(SwCsum, ZeroResultIsStoredAsMangledZero) {
  // Sum of the range is ffff, so the folded complement is 0: stored as ffff (CSUM_MANGLED_0).
  uint8_t f[] = {0x00, 0x00, 0xff, 0xff};
  ASSERT_EQ(tx_finish_csum(f, 4, kTxL4Csum, 0, 0), 0);
  EXPECT_EQ(f[0], 0xff);
  EXPECT_EQ(f[1], 0xff);
}

struct CheckCase {
  std::string name;
  NetdevFeatures feat;
  uint32_t nsegs;
  uint32_t seg_len;
  uint32_t flags;
  uint16_t csum_start, csum_offset, gso_size;
  int want;
};

class FrameCheckTest : public ::testing::TestWithParam<CheckCase> {};

TEST_P(FrameCheckTest, Verdict) {
  const CheckCase& c = GetParam();
  std::vector<uint8_t> mem(c.nsegs * c.seg_len + 1, 0);
  std::vector<FrameSeg> segs;
  for (uint32_t i = 0; i < c.nsegs; ++i) segs.push_back({mem.data() + i * c.seg_len, c.seg_len});
  TxFrame f{.segs = segs, .flags = c.flags, .csum_start = c.csum_start,
            .csum_offset = c.csum_offset, .gso_size = c.gso_size};
  EXPECT_EQ(tx_frame_check(f, c.feat), c.want);
}

const NetdevFeatures kPlain{.max_segs = 4};
const NetdevFeatures kAll{.ip_csum = true, .l4_csum = true, .tso = true, .tso_max_size = 65536,
                          .max_segs = 4};

INSTANTIATE_TEST_SUITE_P(
    Cases, FrameCheckTest,
    ::testing::Values(
        CheckCase{"Ok", kPlain, 4, 100, 0, 0, 0, 0, 0},
        CheckCase{"NoSegs", kPlain, 0, 100, 0, 0, 0, 0, -EINVAL},
        CheckCase{"TooManySegs", kPlain, 5, 100, 0, 0, 0, 0, -EINVAL},
        CheckCase{"MaxFrameFits", kPlain, 2, 757, 0, 0, 0, 0, 0},
        CheckCase{"OverMaxFrame", kPlain, 3, 505, 0, 0, 0, 0, -EMSGSIZE},
        CheckCase{"UnknownFlag", kAll, 1, 100, 1u << 7, 0, 0, 0, -EINVAL},
        CheckCase{"IpCsumNotOffered", kPlain, 1, 100, kTxIpCsum, 0, 0, 0, -EINVAL},
        CheckCase{"L4CsumNotOffered", kPlain, 1, 100, kTxL4Csum, 34, 6, 0, -EINVAL},
        CheckCase{"TsoNotOffered", kPlain, 1, 100, kTxTso, 0, 0, 1000, -EINVAL},
        CheckCase{"L4CsumInside", kAll, 1, 100, kTxL4Csum, 34, 64, 0, 0},
        CheckCase{"L4CsumPastEnd", kAll, 1, 100, kTxL4Csum, 34, 65, 0, -EINVAL},
        CheckCase{"TsoBig", kAll, 4, 9000, kTxTso, 0, 0, 1448, 0},
        CheckCase{"TsoNoGsoSize", kAll, 1, 9000, kTxTso, 0, 0, 0, -EINVAL},
        CheckCase{"TsoOverMax", kAll, 4, 16385, kTxTso, 0, 0, 1448, -EMSGSIZE}),
    [](const auto& info) { return info.param.name; });

TEST(Tso, SegmentsLikeTcpGsoSegment) {
  constexpr uint32_t kPayload = 2500, kGso = 1000;
  auto big = make_frame({.protocol = 6, .payload_len = kPayload, .ip_id = 7, .seq = 0xfffffc00,
                         .tcp_flags = 0x80 | 0x18 | 0x01,  // CWR|PSH|ACK|FIN
                         .partial_csum = true, .ip_csum_zero = true});
  std::vector<std::vector<uint8_t>> segs;
  std::vector<uint8_t> scratch(1514, 0xff);
  int n = tso_segment(big.data(), static_cast<uint32_t>(big.size()), kGso, scratch.data(),
                      static_cast<uint32_t>(scratch.size()), [&](const uint8_t* p, uint32_t len) {
                        segs.emplace_back(p, p + len);
                        return true;
                      });
  ASSERT_EQ(n, 3);
  ASSERT_EQ(segs.size(), 3u);
  std::vector<uint8_t> payload;
  const uint32_t hdr = testing::l4_offset() + 20;
  for (int i = 0; i < 3; ++i) {
    const auto& s = segs[i];
    const uint32_t chunk = i < 2 ? kGso : kPayload - 2 * kGso;
    ASSERT_EQ(s.size(), hdr + chunk);
    EXPECT_EQ(be16_at(s, 16), 20 + 20 + chunk);           // tot_len
    EXPECT_EQ(be16_at(s, 18), 7 + i);                     // id
    EXPECT_EQ(be32_at(s, 38), 0xfffffc00u + i * kGso);    // seq, wrapping
    const uint8_t flags = s[47];
    EXPECT_EQ((flags & 0x80) != 0, i == 0) << i;          // CWR first only
    EXPECT_EQ((flags & 0x09) != 0, i == 2) << i;          // FIN, PSH last only
    EXPECT_TRUE(flags & 0x10);                            // ACK everywhere
    EXPECT_TRUE(testing::ipv4_csum_ok(s)) << i;
    EXPECT_TRUE(testing::l4_csum_ok(s)) << i;
    payload.insert(payload.end(), s.begin() + hdr, s.end());
  }
  EXPECT_EQ(payload, std::vector<uint8_t>(big.begin() + hdr, big.end()));
}

TEST(Tso, RejectsUdpAndOversizedSegments) {
  auto udp = make_frame({.protocol = 17, .payload_len = 3000});
  std::vector<uint8_t> scratch(1514);
  auto never = [](const uint8_t*, uint32_t) {
    ADD_FAILURE() << "emitted";
    return true;
  };
  EXPECT_EQ(tso_segment(udp.data(), static_cast<uint32_t>(udp.size()), 1000, scratch.data(), 1514,
                        never),
            -EINVAL);
  auto tcp = make_frame({.protocol = 6, .payload_len = 3000});
  EXPECT_EQ(tso_segment(tcp.data(), static_cast<uint32_t>(tcp.size()), 1500, scratch.data(), 1514,
                        never),
            -EMSGSIZE);
}

// The scatter-gather cut (what the AF_XDP queue uses): the frame in pieces that split headers and
// payload at odd places gives the same segments, byte for byte, as tso_segment() of the gathered
// frame, each written straight to the buffer dst() handed out; tso_segs() counts them first.
TEST(Tso, SegmentSgMatchesGatheredCut) {
  constexpr uint32_t kPayload = 3500;
  constexpr uint16_t kGso = 1448;
  auto big = make_frame({.protocol = 6, .payload_len = kPayload, .ip_id = 65535, .seq = 0xffffff00,
                         .tcp_flags = 0x80 | 0x18 | 0x01, .partial_csum = true, .ip_csum_zero = true});
  std::vector<std::vector<uint8_t>> want;
  std::vector<uint8_t> scratch(1514, 0xff);
  ASSERT_EQ(tso_segment(big.data(), static_cast<uint32_t>(big.size()), kGso, scratch.data(),
                        static_cast<uint32_t>(scratch.size()),
                        [&](const uint8_t* p, uint32_t len) {
                          want.emplace_back(p, p + len);
                          return true;
                        }),
            3);
  const uint32_t cuts[] = {7, 40, 1000, 2999, static_cast<uint32_t>(big.size())};
  std::vector<FrameSeg> pieces;
  uint32_t from = 0;
  for (uint32_t to : cuts) {
    pieces.push_back(FrameSeg{big.data() + from, to - from});
    from = to;
  }
  TxFrame f{.segs = absl::MakeConstSpan(pieces), .flags = kTxTso, .gso_size = kGso};
  EXPECT_EQ(tso_segs(f), 3);
  std::vector<std::vector<uint8_t>> bufs(3, std::vector<uint8_t>(1514, 0xee));
  std::vector<uint32_t> lens(3, 0);
  int asked = 0;
  EXPECT_EQ(tso_segment_sg(
                f,
                [&](int n) {
                  EXPECT_EQ(n, asked++);
                  return bufs[static_cast<size_t>(n)].data();
                },
                [&](int n, uint32_t len) { lens[static_cast<size_t>(n)] = len; }),
            3);
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(lens[i], want[i].size()) << i;
    EXPECT_EQ(std::vector<uint8_t>(bufs[i].begin(), bufs[i].begin() + lens[i]), want[i]) << i;
  }
  // Not TCP: nothing counted, nothing cut.
  auto udp = make_frame({.protocol = 17, .payload_len = 3000});
  FrameSeg useg{udp.data(), static_cast<uint32_t>(udp.size())};
  TxFrame uf{.segs = absl::MakeConstSpan(&useg, 1), .flags = kTxTso, .gso_size = 1000};
  EXPECT_EQ(tso_segs(uf), -EINVAL);
  EXPECT_EQ(tso_segment_sg(
                uf, [&](int) -> uint8_t* { ADD_FAILURE() << "asked for a buffer"; return nullptr; },
                [&](int, uint32_t) { ADD_FAILURE() << "written"; }),
            -EINVAL);
}

}  // namespace
}  // namespace xmit
