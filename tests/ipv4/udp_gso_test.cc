// tests/ipv4/udp_gso_test.cc — UDP GSO (UDP_SEGMENT) through ip_make_skb() / udp_send_skb(): the
// kernel's errno for each limit, segment boundaries and headers, the last short segment, gso_size
// larger than the payload, IP ids, DF, both checksum modes, corking, failures and pool accounting.
#include <netinet/ip.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "stack/ipv4/iov_iter.h"
#include "stack/ipv4/udp_offload.h"
#include "tests/ipv4/harness.h"

namespace xmit::testing_ipv4 {
namespace {

IpcmCookie gso_ipc(const InetSock& sk, uint16_t gso_size) {
  IpcmCookie ipc;
  ipcm_init_sk(&ipc, sk);
  ipc.gso_size = gso_size;
  return ipc;
}

int send_gso(Bed* bed, InetSock* sk, const std::vector<uint8_t>& payload, uint16_t gso_size,
             unsigned flags = 0) {
  IpcmCookie ipc = gso_ipc(*sk, gso_size);
  return bed->send(sk, payload, flags, &ipc);
}

// The segment as the wire carries it: a CHECKSUM_PARTIAL UDP sum finished as the device would.
std::vector<uint8_t> finished(const Sent& s) {
  std::vector<uint8_t> b = s.bytes;
  if (s.ip_summed == CHECKSUM_PARTIAL) {
    std::vector<uint8_t> l4(b.begin() + s.csum_start_from_data, b.end());
    uint16_t c = ref_csum(l4);
    if (c == 0) c = 0xffff;
    b[s.csum_start_from_data + s.csum_offset] = static_cast<uint8_t>(c >> 8);
    b[s.csum_start_from_data + s.csum_offset + 1] = static_cast<uint8_t>(c);
  }
  return b;
}

// Checks every segment as a standalone UDP datagram and returns the payloads put together.
std::vector<uint8_t> check_segments(const std::vector<Sent>& sent, uint16_t gso_size, size_t total,
                                    uint16_t first_id, uint16_t frag_off) {
  std::vector<uint8_t> all;
  for (size_t i = 0; i < sent.size(); ++i) {
    SCOPED_TRACE("segment " + std::to_string(i));
    std::vector<uint8_t> b = finished(sent[i]);
    size_t want = i + 1 < sent.size() ? gso_size : total - gso_size * (sent.size() - 1);
    EXPECT_EQ(b.size(), 28 + want);
    EXPECT_EQ(be16_at(b, 2), b.size());                     // tot_len
    EXPECT_EQ(be16_at(b, 4), static_cast<uint16_t>(first_id + i));  // id
    EXPECT_EQ(be16_at(b, 6), frag_off);                     // DF or nothing, never a fragment
    EXPECT_EQ(ref_csum(std::vector<uint8_t>(b.begin(), b.begin() + 20)), 0);  // header checksum
    EXPECT_EQ(be16_at(b, 20), kSport);
    EXPECT_EQ(be16_at(b, 22), kDport);
    EXPECT_EQ(be16_at(b, 24), b.size() - 20);               // UDP len
    std::vector<uint8_t> udp(b.begin() + 20, b.end());
    EXPECT_EQ(be16_at(b, 26), ref_udp_csum(kSaddr, kDaddr, udp));
    all.insert(all.end(), b.begin() + 28, b.end());
  }
  return all;
}

struct SegCase {
  std::string name;
  uint32_t payload;
  uint16_t gso_size;
  bool dev_csum;  // NETIF_F_HW_CSUM: segments leave CHECKSUM_PARTIAL
  bool sg;        // NETIF_F_SG: payload in fragments
  size_t segs;
  uint16_t frag_off;  // IP_PMTUDISC_WANT: DF only when the whole datagram fits the MTU
};

class Segments : public ::testing::TestWithParam<SegCase> {};

TEST_P(Segments, EachADatagram) {
  const SegCase& c = GetParam();
  Bed bed;
  bed.dev.l4_csum = c.dev_csum;
  if (c.sg) bed.dev.max_segs = 18;
  InetSock sk = bed.sock();
  auto payload = pattern(c.payload, 7);
  ASSERT_EQ(send_gso(&bed, &sk, payload, c.gso_size), 0);
  ASSERT_EQ(bed.neigh.sent.size(), c.segs);
  for (const Sent& s : bed.neigh.sent) {
    EXPECT_EQ(s.ip_summed, c.dev_csum ? CHECKSUM_PARTIAL : CHECKSUM_NONE);
    if (c.dev_csum) {
      EXPECT_EQ(s.csum_start_from_data, 20);
      EXPECT_EQ(s.csum_offset, 6);
    }
    EXPECT_GE(s.headroom, 16u);
  }
  EXPECT_EQ(check_segments(bed.neigh.sent, c.gso_size, c.payload, 0x1000, c.frag_off), payload);
  EXPECT_EQ(bed.idents.calls, 1);  // ip_select_ident(): one id reserved for the whole datagram
  EXPECT_EQ(bed.idents.next, 0x1001);
  // One datagram for IP and UDP, as the kernel counts a GSO packet.
  EXPECT_EQ(bed.mib.OutRequests, 1u);
  EXPECT_EQ(bed.mib.OutTransmits, 1u);
  EXPECT_EQ(bed.udp_mib.OutDatagrams, 1u);
  EXPECT_EQ(bed.mib.FragOKs, 0u);
  inet_sock_destruct(&sk);
  EXPECT_TRUE(bed.pools_full());
}

INSTANTIATE_TEST_SUITE_P(
    Cuts, Segments,
    ::testing::Values(
        SegCase{"even_3x1000", 3000, 1000, false, false, 3, 0},
        SegCase{"even_3x1000_hwcsum", 3000, 1000, true, false, 3, 0},
        SegCase{"short_last_fits_mtu", 1000, 400, false, false, 3, IP_DF},
        SegCase{"short_last_hwcsum", 1000, 400, true, false, 3, IP_DF},
        SegCase{"full_mtu_segments", 3000, 1472, true, false, 3, 0},
        SegCase{"one_byte_last", 2945, 1472, false, false, 3, 0},
        SegCase{"odd_gso", 1001, 333, false, false, 4, IP_DF},
        SegCase{"max_segments_128", 1280, 10, true, false, 128, IP_DF},
        SegCase{"largest_datagram", 65507, 1472, true, false, 45, 0},
        SegCase{"largest_datagram_sg", 65507, 1472, false, true, 45, 0},
        SegCase{"sg_small", 5000, 1200, true, true, 5, 0}),
    [](const auto& info) { return info.param.name; });

TEST(Gso, LargerThanPayloadIsOneOrdinaryDatagram) {
  for (bool dev_csum : {false, true}) {
    SCOPED_TRACE(dev_csum);
    Bed bed, plain;
    bed.dev.l4_csum = plain.dev.l4_csum = dev_csum;
    InetSock sk = bed.sock(), sk2 = plain.sock();
    auto payload = pattern(1000, 9);
    ASSERT_EQ(send_gso(&bed, &sk, payload, 3000), 0);
    ASSERT_EQ(plain.send(&sk2, payload), 0);
    ASSERT_EQ(bed.neigh.sent.size(), 1u);
    ASSERT_EQ(plain.neigh.sent.size(), 1u);
    EXPECT_EQ(bed.neigh.sent[0].bytes, plain.neigh.sent[0].bytes);
    EXPECT_EQ(bed.neigh.sent[0].ip_summed, plain.neigh.sent[0].ip_summed);
    // Exactly gso_size: still one datagram (gso only when datalen > gso_size).
    ASSERT_EQ(send_gso(&bed, &sk, pattern(1472), 1472), 0);
    EXPECT_EQ(bed.neigh.sent.size(), 2u);
    EXPECT_EQ(be16_at(bed.neigh.sent[1].bytes, 2), 1500);
    inet_sock_destruct(&sk);
    inet_sock_destruct(&sk2);
    EXPECT_TRUE(bed.pools_full());
  }
}

struct ErrCase {
  std::string name;
  uint32_t payload;
  uint16_t gso_size;
  int pmtudisc;
  bool no_check;
  uint32_t mtu;
  int err;
};

class Limits : public ::testing::TestWithParam<ErrCase> {};

// The errnos Linux 6.18 returns (tests/ipv4/kernel_diff_test.cc checks the same against the
// kernel): no counter moves, nothing is sent.
TEST_P(Limits, KernelErrno) {
  const ErrCase& c = GetParam();
  Bed bed;
  bed.dev.mtu = c.mtu;
  InetSock sk = bed.sock();
  sk.pmtudisc = static_cast<uint8_t>(c.pmtudisc);
  sk.sk_no_check_tx = c.no_check;
  EXPECT_EQ(send_gso(&bed, &sk, pattern(c.payload), c.gso_size), c.err);
  if (c.err != 0) {
    EXPECT_TRUE(bed.neigh.sent.empty());
    EXPECT_EQ(bed.mib.OutRequests, 0u);
    EXPECT_EQ(bed.mib.OutDiscards, 0u);
    EXPECT_EQ(bed.udp_mib.OutDatagrams, 0u);
  }
  inet_sock_destruct(&sk);
  EXPECT_TRUE(bed.pools_full());
}

INSTANTIATE_TEST_SUITE_P(
    Errnos, Limits,
    ::testing::Values(
        // 28 + min(payload, gso_size) > the cork's MTU: -EMSGSIZE (6.14+; -EINVAL before)
        ErrCase{"segment_over_mtu", 3000, 1473, IP_PMTUDISC_WANT, false, 1500, -EMSGSIZE},
        ErrCase{"segment_fits_mtu", 3000, 1472, IP_PMTUDISC_WANT, false, 1500, 0},
        ErrCase{"payload_over_mtu_gso_larger", 2000, 3000, IP_PMTUDISC_WANT, false, 1500, -EMSGSIZE},
        ErrCase{"payload_over_mtu_gso_larger_dont", 2000, 3000, IP_PMTUDISC_DONT, false, 1500, -EMSGSIZE},
        ErrCase{"segment_over_small_mtu", 3000, 549, IP_PMTUDISC_WANT, false, 576, -EMSGSIZE},
        ErrCase{"segment_fits_small_mtu", 3000, 548, IP_PMTUDISC_DO, false, 576, 0},
        // more than UDP_MAX_SEGMENTS (128) segments: -EINVAL
        ErrCase{"129_segments", 1290, 10, IP_PMTUDISC_WANT, false, 1500, -EINVAL},
        ErrCase{"128_segments_and_a_byte", 1281, 10, IP_PMTUDISC_WANT, false, 1500, -EINVAL},
        ErrCase{"128_segments", 1280, 10, IP_PMTUDISC_WANT, false, 1500, 0},
        // SO_NO_CHECK: -EINVAL, even for a payload that would not be segmented
        ErrCase{"no_check", 3000, 1000, IP_PMTUDISC_WANT, true, 1500, -EINVAL},
        ErrCase{"no_check_single", 100, 1000, IP_PMTUDISC_WANT, true, 1500, -EINVAL},
        // GSO lifts the per-packet limit of IP_PMTUDISC_DO: 0xFFFF - 28 in all
        ErrCase{"do_large", 65507, 1472, IP_PMTUDISC_DO, false, 1500, 0},
        ErrCase{"over_ip_max", 65508, 1472, IP_PMTUDISC_DO, false, 1500, -EMSGSIZE}),
    [](const auto& info) { return info.param.name; });

TEST(Gso, IdentsAndDf) {
  // IP_PMTUDISC_DO unconnected: the datagram's id is 0; its segments count up from there.
  {
    Bed bed;
    InetSock sk = bed.sock();
    sk.pmtudisc = IP_PMTUDISC_DO;
    auto p = pattern(3000);
    ASSERT_EQ(send_gso(&bed, &sk, p, 1000), 0);
    EXPECT_EQ(check_segments(bed.neigh.sent, 1000, 3000, 0, IP_DF), p);
    EXPECT_EQ(bed.idents.calls, 0);
    inet_sock_destruct(&sk);
  }
  // Connected: inet_id advances by one per datagram (ip_select_ident(), segs = 1), so a second
  // datagram's ids overlap the first's segments: 0x101..0x103, then 0x102..0x104 (as Linux 6.18).
  {
    Bed bed;
    InetSock sk = bed.sock();
    sk.inet_daddr = kDaddr;
    sk.inet_dport = cpu_to_be16(kDport);
    sk.inet_id = 0x100;
    auto p = pattern(3000);
    ASSERT_EQ(send_gso(&bed, &sk, p, 1000), 0);
    ASSERT_EQ(send_gso(&bed, &sk, p, 1000), 0);
    ASSERT_EQ(bed.neigh.sent.size(), 6u);
    std::vector<Sent> first(bed.neigh.sent.begin(), bed.neigh.sent.begin() + 3);
    std::vector<Sent> second(bed.neigh.sent.begin() + 3, bed.neigh.sent.end());
    EXPECT_EQ(check_segments(first, 1000, 3000, 0x101, 0), p);
    EXPECT_EQ(check_segments(second, 1000, 3000, 0x102, 0), p);
    EXPECT_EQ(sk.inet_id, 0x102);
    inet_sock_destruct(&sk);
  }
  // ids wrap at 16 bits
  {
    Bed bed;
    bed.idents.next = 0xfffe;
    InetSock sk = bed.sock();
    auto p = pattern(1000);
    ASSERT_EQ(send_gso(&bed, &sk, p, 300), 0);
    EXPECT_EQ(check_segments(bed.neigh.sent, 300, 1000, 0xfffe, IP_DF), p);
    EXPECT_EQ(be16_at(bed.neigh.sent[3].bytes, 4), 1);
  }
}

TEST(Gso, DeviceFillsIpChecksum) {
  Bed bed;
  bed.dev.ip_csum = true;
  bed.dev.l4_csum = true;
  InetSock sk = bed.sock();
  ASSERT_EQ(send_gso(&bed, &sk, pattern(2500), 1000), 0);
  ASSERT_EQ(bed.neigh.sent.size(), 3u);
  for (const Sent& s : bed.neigh.sent) {
    EXPECT_EQ(be16_at(s.bytes, 10), 0);
    EXPECT_TRUE(s.info.tx_ip_csum);
  }
  inet_sock_destruct(&sk);
}

// MSG_MORE / UDP_CORK: the cork keeps gso_size; pieces of any size give the same segments.
TEST(Gso, CorkedPiecesSameAsOneShot) {
  for (bool dev_csum : {false, true}) {
    SCOPED_TRACE(dev_csum);
    Bed bed, ref;
    bed.dev.l4_csum = ref.dev.l4_csum = dev_csum;
    InetSock sk = bed.sock(), rsk = ref.sock();
    auto p = pattern(4321, 5);
    ASSERT_EQ(send_gso(&ref, &rsk, p, 1000), 0);

    IpcmCookie ipc = gso_ipc(sk, 1000);
    size_t off = 0;
    for (size_t piece : {1u, 999u, 1000u, 7u, 2314u}) {
      iovec iov{p.data() + off, piece};
      IovIter it;
      ASSERT_EQ(iov_iter_init(&it, absl::MakeConstSpan(&iov, 1)), 0);
      int th = off == 0 ? 8 : 0;
      ASSERT_EQ(ip_append_data(bed.ctx(), &sk, bed.fl4(), bed.route(), &it, static_cast<int>(piece) + th, th,
                               ipc, MSG_MORE),
                0);
      off += piece;
    }
    ASSERT_EQ(off, p.size());
    ASSERT_EQ(bed.push(&sk), 0);
    ASSERT_EQ(bed.neigh.sent.size(), ref.neigh.sent.size());
    for (size_t i = 0; i < ref.neigh.sent.size(); ++i) {
      EXPECT_EQ(bed.neigh.sent[i].bytes, ref.neigh.sent[i].bytes) << i;
      EXPECT_EQ(bed.neigh.sent[i].ip_summed, ref.neigh.sent[i].ip_summed) << i;
    }
    inet_sock_destruct(&sk);
    inet_sock_destruct(&rsk);
    EXPECT_TRUE(bed.pools_full());
  }
}

TEST(Gso, CorkedCheckUsesTheCork) {
  // The limits of the corked datagram come from the cork the first append set up.
  Bed bed;
  InetSock sk = bed.sock();
  IpcmCookie ipc = gso_ipc(sk, 10);
  auto p = pattern(1290);
  iovec iov{p.data(), p.size()};
  IovIter it;
  ASSERT_EQ(iov_iter_init(&it, absl::MakeConstSpan(&iov, 1)), 0);
  ASSERT_EQ(ip_append_data(bed.ctx(), &sk, bed.fl4(), bed.route(), &it, 1298, 8, ipc, MSG_MORE), 0);
  EXPECT_EQ(bed.push(&sk), -EINVAL);
  EXPECT_TRUE(bed.neigh.sent.empty());
  inet_sock_destruct(&sk);
  EXPECT_TRUE(bed.pools_full());
}

TEST(Gso, ProbeSendsNothing) {
  Bed bed;
  InetSock sk = bed.sock();
  EXPECT_EQ(send_gso(&bed, &sk, pattern(3000), 1000, kMsgProbe), 0);
  EXPECT_TRUE(bed.neigh.sent.empty());
  EXPECT_TRUE(bed.pools_full());
}

TEST(Gso, WithoutCorkRefused) {
  // The cork-less ip_make_skb() cannot hand the limits on: it refuses gso_size as before.
  Bed bed;
  InetSock sk = bed.sock();
  IpcmCookie ipc = gso_ipc(sk, 1000);
  auto p = pattern(3000);
  iovec iov{p.data(), p.size()};
  IovIter it;
  ASSERT_EQ(iov_iter_init(&it, absl::MakeConstSpan(&iov, 1)), 0);
  sk_buff* skb = nullptr;
  EXPECT_EQ(ip_make_skb(bed.ctx(), &sk, bed.fl4(), bed.route(), &it, 3008, 8, ipc, 0, &skb), -EOPNOTSUPP);
  EXPECT_EQ(skb, nullptr);
}

TEST(Gso, NeighbourErrorDropsTheRest) {
  Bed bed;
  InetSock sk = bed.sock();
  bed.neigh.fail_with = -ENOBUFS;
  // -ENOBUFS from below: counted as SndbufErrors, 0 returned (no IP_RECVERR), as for one datagram.
  EXPECT_EQ(send_gso(&bed, &sk, pattern(5000), 1000), 0);
  EXPECT_EQ(bed.udp_mib.SndbufErrors, 1u);
  EXPECT_EQ(bed.mib.OutDiscards, 1u);
  bed.neigh.fail_with = -EHOSTUNREACH;
  EXPECT_EQ(send_gso(&bed, &sk, pattern(5000), 1000), -EHOSTUNREACH);
  inet_sock_destruct(&sk);
  EXPECT_TRUE(bed.pools_full());
}

TEST(Gso, PoolExhaustion) {
  // 8 skbs: a later piece finds the pool empty (kNoTxMem); everything goes back.
  Bed bed(8, 8);
  InetSock sk = bed.sock();
  EXPECT_EQ(send_gso(&bed, &sk, pattern(20000), 1000), kNoTxMem);
  EXPECT_TRUE(bed.neigh.sent.empty());
  EXPECT_TRUE(bed.pools_full());
  EXPECT_EQ(send_gso(&bed, &sk, pattern(8000), 1000), 0);
  EXPECT_EQ(bed.neigh.sent.size(), 8u);
  inet_sock_destruct(&sk);
  EXPECT_TRUE(bed.pools_full());
}

TEST(Gso, SegmentRejectsOtherGeometry) {
  Bed bed;
  sk_buff* skb = bed.skbs->alloc_skb();
  ASSERT_NE(skb, nullptr);
  skb_reserve(skb, 64);
  skb_put(skb, 100);
  skb_reset_network_header(skb);
  skb_shinfo(skb)->gso_size = 10;
  EXPECT_EQ(udp_gso_segment(skb, false, false), -EINVAL);  // a single skb is not a GSO train
  kfree_skb(skb);
  EXPECT_TRUE(bed.pools_full());
}

}  // namespace
}  // namespace xmit::testing_ipv4
