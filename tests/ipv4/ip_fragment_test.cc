// tests/ipv4/ip_fragment_test.cc — where a datagram is cut (sizes, offsets, MF, one id), its UDP
// checksum over all fragments, and corking (MSG_MORE pieces pushed as one datagram), for SG and
// non-SG devices. Expectations come from the kernel's rule, written here independently:
// every fragment but the last carries ((mtu - 20) & ~7) bytes of IP payload.
#include <netinet/ip.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/ipv4/harness.h"

namespace xmit::testing_ipv4 {
namespace {

struct FragCase {
  std::string name;
  uint32_t payload;
  uint32_t mtu;
  bool sg;
};

std::vector<std::pair<uint32_t, uint32_t>> expected_cuts(uint32_t payload, uint32_t mtu) {
  uint32_t total = payload + 8;  // UDP header + payload = the IP payload
  if (total + 20 <= mtu) return {{0, total}};
  uint32_t unit = (mtu - 20) & ~7u;
  std::vector<std::pair<uint32_t, uint32_t>> cuts;
  for (uint32_t off = 0; off < total; off += unit) cuts.push_back({off, std::min(unit, total - off)});
  return cuts;
}

class Fragmentation : public ::testing::TestWithParam<FragCase> {};

TEST_P(Fragmentation, CutsLikeTheKernel) {
  const FragCase& c = GetParam();
  Bed bed;
  bed.dev.mtu = c.mtu;
  bed.dev.max_segs = c.sg ? 17 : 1;
  InetSock sk = bed.sock();
  auto payload = pattern(c.payload, static_cast<uint8_t>(c.payload));
  ASSERT_EQ(bed.send(&sk, payload), 0);

  auto cuts = expected_cuts(c.payload, c.mtu);
  ASSERT_EQ(bed.neigh.sent.size(), cuts.size());
  uint16_t id = be16_at(bed.neigh.sent[0].bytes, 4);
  for (size_t i = 0; i < cuts.size(); ++i) {
    const auto& b = bed.neigh.sent[i].bytes;
    SCOPED_TRACE("fragment " + std::to_string(i));
    ASSERT_EQ(b.size(), 20 + cuts[i].second);
    EXPECT_LE(b.size(), c.mtu);
    EXPECT_EQ(be16_at(b, 2), b.size());  // tot_len
    EXPECT_EQ(be16_at(b, 4), id);        // one id for every fragment
    uint16_t fo = be16_at(b, 6);
    bool last = i + 1 == cuts.size();
    if (cuts.size() == 1) {
      EXPECT_EQ(fo, IP_DF);  // WANT and it fits: DF
    } else {
      EXPECT_EQ(fo, (cuts[i].first / 8) | (last ? 0 : IP_MF));  // no DF on fragments
    }
    EXPECT_EQ(ref_csum(std::vector<uint8_t>(b.begin(), b.begin() + 20)), 0) << "header checksum";
    EXPECT_GE(bed.neigh.sent[i].headroom, 16u);  // room for the Ethernet header
  }
  // The datagram: header fields and a checksum over the whole of it, in the first fragment.
  auto udp = reassemble(bed.neigh.sent);
  ASSERT_EQ(udp.size(), c.payload + 8);
  EXPECT_EQ(be16_at(udp, 0), kSport);
  EXPECT_EQ(be16_at(udp, 2), kDport);
  EXPECT_EQ(be16_at(udp, 4), c.payload + 8);
  EXPECT_EQ(be16_at(udp, 6), ref_udp_csum(kSaddr, kDaddr, udp));
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), udp.begin() + 8));

  EXPECT_EQ(bed.mib.OutRequests, 1u);
  EXPECT_EQ(bed.mib.OutTransmits, cuts.size());
  EXPECT_EQ(bed.mib.FragOKs, cuts.size() > 1 ? 1u : 0u);
  EXPECT_EQ(bed.mib.FragCreates, cuts.size() > 1 ? cuts.size() : 0u);
  EXPECT_EQ(bed.udp_mib.OutDatagrams, 1u);
  inet_sock_destruct(&sk);
  EXPECT_TRUE(bed.pools_full());
}

std::vector<FragCase> frag_cases() {
  std::vector<FragCase> v;
  for (uint32_t payload : {0u, 1u, 1472u, 1473u, 2000u, 3000u, 65507u})
    for (uint32_t mtu : {1500u, 576u, 68u, 9000u})
      for (bool sg : {false, true}) {
        if (mtu == 68 && payload > 3000) continue;  // 1366 fragments: more than the pool
        v.push_back(FragCase{"p" + std::to_string(payload) + "_mtu" + std::to_string(mtu) + (sg ? "_sg" : "_linear"),
                             payload, mtu, sg});
      }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Sizes, Fragmentation, ::testing::ValuesIn(frag_cases()),
                         [](const auto& info) { return info.param.name; });

// Spot checks with the numbers written out (MTU 1500: 1480-byte units; 576: 552).
TEST(FragmentationSpot, KnownNumbers) {
  struct {
    uint32_t payload, mtu;
    std::vector<uint32_t> sizes;  // IP packet sizes on the wire
    std::vector<uint16_t> frag_off;
  } cases[] = {
      {1473, 1500, {1500, 21}, {IP_MF | 0, 185}},
      {2000, 1500, {1500, 548}, {IP_MF | 0, 185}},
      {3000, 1500, {1500, 1500, 68}, {IP_MF | 0, IP_MF | 185, 370}},
      {1473, 576, {572, 572, 397}, {IP_MF | 0, IP_MF | 69, 138}},
      {2000, 576, {572, 572, 572, 372}, {IP_MF | 0, IP_MF | 69, IP_MF | 138, 207}},
  };
  for (const auto& c : cases) {
    Bed bed;
    bed.dev.mtu = c.mtu;
    InetSock sk = bed.sock();
    ASSERT_EQ(bed.send(&sk, pattern(c.payload)), 0);
    ASSERT_EQ(bed.neigh.sent.size(), c.sizes.size());
    for (size_t i = 0; i < c.sizes.size(); ++i) {
      EXPECT_EQ(bed.neigh.sent[i].bytes.size(), c.sizes[i]);
      EXPECT_EQ(be16_at(bed.neigh.sent[i].bytes, 6), c.frag_off[i]);
    }
    inet_sock_destruct(&sk);
  }
  // 65507 bytes at 1500: 44 full fragments and a 415-byte tail (65515 = 44 * 1480 + 395).
  Bed bed;
  InetSock sk = bed.sock();
  ASSERT_EQ(bed.send(&sk, pattern(65507)), 0);
  ASSERT_EQ(bed.neigh.sent.size(), 45u);
  EXPECT_EQ(bed.neigh.sent.back().bytes.size(), 415u);
  EXPECT_EQ(be16_at(bed.neigh.sent.back().bytes, 6), 44 * 185);
  inet_sock_destruct(&sk);
}

struct CorkCase {
  std::string name;
  std::vector<uint32_t> pieces;
  uint32_t mtu;
  bool sg;
  bool l4_csum;
  bool msg_more;  // MSG_MORE on every piece (else UDP_CORK: no flag)
};

class Corking : public ::testing::TestWithParam<CorkCase> {};

// Appending pieces and pushing gives exactly the packets one send of the whole payload gives
// (ids aside: a connected socket with the same inet_id makes them equal too).
TEST_P(Corking, PushEqualsOneSend) {
  const CorkCase& c = GetParam();
  std::vector<uint8_t> whole;
  std::vector<std::vector<uint8_t>> pieces;
  for (size_t i = 0; i < c.pieces.size(); ++i) {
    pieces.push_back(pattern(c.pieces[i], static_cast<uint8_t>(i + 7)));
    whole.insert(whole.end(), pieces.back().begin(), pieces.back().end());
  }
  auto setup = [&](Bed& bed, InetSock& sk) {
    bed.dev.mtu = c.mtu;
    bed.dev.max_segs = c.sg ? 17 : 1;
    bed.dev.l4_csum = c.l4_csum;
    sk.inet_daddr = kDaddr;
    sk.inet_dport = cpu_to_be16(kDport);
    sk.inet_id = 0x4321;
  };
  Bed corked;
  InetSock sk = corked.sock();
  setup(corked, sk);
  for (const auto& p : pieces) ASSERT_EQ(corked.append(&sk, p, c.msg_more ? MSG_MORE : 0), 0);
  EXPECT_TRUE(corked.neigh.sent.empty());
  ASSERT_EQ(corked.push(&sk), 0);
  EXPECT_TRUE(skb_queue_empty(sk.sk_write_queue));

  Bed once;
  InetSock sk1 = once.sock();
  setup(once, sk1);
  if (c.l4_csum) once.dev.l4_csum = false;  // compare against the software checksum
  ASSERT_EQ(once.send(&sk1, whole), 0);

  ASSERT_EQ(corked.neigh.sent.size(), once.neigh.sent.size());
  for (size_t i = 0; i < once.neigh.sent.size(); ++i) {
    const Sent& a = corked.neigh.sent[i];
    const Sent& b = once.neigh.sent[i];
    if (a.ip_summed == CHECKSUM_PARTIAL) {
      // Single packet on a checksumming device: the field holds the folded pseudo-header sum.
      ASSERT_EQ(once.neigh.sent.size(), 1u);
      EXPECT_EQ(a.csum_start_from_data, 20);
      EXPECT_EQ(a.csum_offset, 6);
      std::vector<uint8_t> x = a.bytes, y = b.bytes;
      x[26] = x[27] = y[26] = y[27] = 0;
      EXPECT_EQ(x, y);
    } else {
      EXPECT_EQ(a.bytes, b.bytes) << "packet " << i;
    }
  }
  auto udp = reassemble(corked.neigh.sent);
  if (corked.neigh.sent[0].ip_summed != CHECKSUM_PARTIAL) {
    EXPECT_EQ(be16_at(udp, 6), ref_udp_csum(kSaddr, kDaddr, udp));
  }
  inet_sock_destruct(&sk);
  inet_sock_destruct(&sk1);
  EXPECT_TRUE(corked.pools_full());
}

INSTANTIATE_TEST_SUITE_P(
    Pieces, Corking,
    ::testing::Values(
        CorkCase{"three_small", {10, 20, 30}, 1500, false, false, true},
        CorkCase{"three_small_sg", {10, 20, 30}, 1500, true, false, true},
        CorkCase{"over_mtu", {1000, 1000, 1000}, 1500, false, false, true},
        CorkCase{"over_mtu_sg", {1000, 1000, 1000}, 1500, true, false, true},
        // 548 bytes fill a 576 packet to the MTU; the next piece moves 4 bytes (the "fraggap")
        // back out of it so it ends 8-aligned.
        CorkCase{"fraggap", {548, 100}, 576, false, false, true},
        CorkCase{"fraggap_sg", {548, 100}, 576, true, false, true},
        CorkCase{"odd_pieces", {1, 3, 5, 7, 577, 1}, 576, false, false, true},
        CorkCase{"odd_pieces_sg", {1, 3, 5, 7, 577, 1}, 576, true, false, true},
        // UDP_CORK on a checksumming device: the first piece is CHECKSUM_PARTIAL; once the datagram
        // outgrows one packet udp4_hwcsum() sums the train in software.
        CorkCase{"hwcsum_fits", {100, 200}, 1500, true, true, false},
        CorkCase{"hwcsum_train", {548, 100}, 576, false, true, false},
        CorkCase{"hwcsum_train_sg", {1400, 1400}, 1500, true, true, false},
        CorkCase{"many_to_64k", std::vector<uint32_t>(64, 1000), 1500, true, false, true}),
    [](const auto& info) { return info.param.name; });

TEST(CorkingFlush, FlushFreesEverything) {
  Bed bed;
  InetSock sk = bed.sock();
  ASSERT_EQ(bed.append(&sk, pattern(3000), MSG_MORE), 0);
  EXPECT_EQ(sk.sk_write_queue.qlen, 3u);
  EXPECT_EQ(sk.cork.length, 3008u);
  ip_flush_pending_frames(&sk);
  inet_sock_destruct(&sk);
  EXPECT_TRUE(bed.pools_full());
  EXPECT_EQ(bed.push(&sk), 0);  // nothing pending: nothing sent
  EXPECT_TRUE(bed.neigh.sent.empty());
}

}  // namespace
}  // namespace xmit::testing_ipv4
