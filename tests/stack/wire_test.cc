// tests/stack/wire_test.cc — header views and reprs of stack/wire: length checks (table-driven),
// field accessors, and emit into 0xFF-filled buffers compared byte for byte with hand-made frames.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stack/wire/arp.h"
#include "stack/wire/eth.h"
#include "stack/wire/icmp.h"
#include "stack/wire/ipv4.h"
#include "stack/wire/udp.h"

namespace xmit {
namespace {

using testing::ElementsAreArray;

using Bytes = std::vector<uint8_t>;

Bytes filled(size_t n) { return Bytes(n, 0xFF); }

uint16_t wire_value(sum16 s) {
  uint8_t b[2];
  std::memcpy(b, &s, 2);
  return load_be16(b);
}

const MacAddr kMacA = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
const MacAddr kMacB = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
const be32 kAddrA = make_ipv4_addr(10, 0, 0, 1);
const be32 kAddrB = make_ipv4_addr(10, 0, 0, 2);

TEST(Wire, MakeIpv4AddrIsNetworkOrder) {
  uint8_t b[4];
  store_raw32(b, make_ipv4_addr(192, 168, 0, 199));
  EXPECT_THAT(b, ElementsAreArray({192, 168, 0, 199}));
}

// ---- Ethernet ----

TEST(Eth, ParseNeedsFourteenBytes) {
  Bytes b = filled(13);
  EXPECT_FALSE(EthHdrView::parse(absl::MakeConstSpan(b)));
  b.push_back(0xFF);
  EXPECT_TRUE(EthHdrView::parse(absl::MakeConstSpan(b)));
}

TEST(Eth, EmitWritesEveryByteAndParsesBack) {
  Bytes b = filled(14 + 3);
  EthRepr r{.h_dest = kMacB, .h_source = kMacA, .h_proto = ETH_P_IP};
  r.emit(*EthHdr::at(absl::MakeSpan(b)));
  EXPECT_THAT(b, ElementsAreArray({0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00,
                                   0xFF, 0xFF, 0xFF}));
  auto h = EthHdrView::parse(absl::MakeConstSpan(b));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->payload().size(), 3u);
  EthRepr back;
  ASSERT_EQ(EthRepr::parse(*h, &back), 0);
  EXPECT_EQ(back, r);
}

// ---- ARP ----

const Bytes kArpRequest = {
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,  // Ethernet, IPv4, 6, 4, request
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 1,  // sha, sip
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 0, 0, 2,  // tha, tip
};

TEST(Arp, EmitRequest) {
  Bytes b = filled(28);
  ArpRepr r{.ar_op = ARPOP_REQUEST, .ar_sha = kMacA, .ar_sip = kAddrA, .ar_tha = {}, .ar_tip = kAddrB};
  r.emit(*ArpHdr::at(absl::MakeSpan(b)));
  EXPECT_EQ(b, kArpRequest);
  ArpRepr back;
  ASSERT_EQ(ArpRepr::parse(*ArpHdrView::parse(absl::MakeConstSpan(b)), &back), 0);
  EXPECT_EQ(back, r);
}

struct ArpBad {
  std::string name;
  size_t offset;  // byte to corrupt, or the length to truncate to when `truncate`
  uint8_t value;
  bool truncate;
};
void PrintTo(const ArpBad& c, std::ostream* os) { *os << c.name; }

class ArpRejects : public testing::TestWithParam<ArpBad> {};

TEST_P(ArpRejects, Malformed) {
  Bytes b = kArpRequest;
  if (GetParam().truncate) {
    b.resize(GetParam().offset);
  } else {
    b[GetParam().offset] = GetParam().value;
  }
  EXPECT_FALSE(ArpHdrView::parse(absl::MakeConstSpan(b)));
}

INSTANTIATE_TEST_SUITE_P(Table, ArpRejects,
                         testing::Values(ArpBad{"short", 27, 0, true}, ArpBad{"hrd", 1, 6, false},
                                         ArpBad{"pro", 2, 0x86, false}, ArpBad{"hln", 4, 8, false},
                                         ArpBad{"pln", 5, 16, false}),
                         [](const auto& i) { return i.param.name; });

// ---- IPv4 ----

// RFC 791 example header (tot_len 0x73, DF, TTL 64, UDP, 192.168.0.1 -> 192.168.0.199).
const Bytes kIpHeader = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                         0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};

Bytes ip_packet() {
  Bytes b = kIpHeader;
  b.resize(0x73, 0xAB);
  return b;
}

TEST(Ipv4, Accessors) {
  Bytes b = ip_packet();
  b.push_back(0);  // link-layer padding beyond tot_len
  auto h = IpHdrView::parse(absl::MakeConstSpan(b));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->version(), 4);
  EXPECT_EQ(h->ihl(), 5);
  EXPECT_EQ(h->tos(), 0);
  EXPECT_EQ(h->tot_len(), 0x73);
  EXPECT_EQ(h->id(), 0);
  EXPECT_TRUE(h->df());
  EXPECT_FALSE(h->mf());
  EXPECT_FALSE(h->is_fragment());
  EXPECT_EQ(h->ttl(), 64);
  EXPECT_EQ(h->protocol(), IPPROTO_UDP);
  EXPECT_EQ(wire_value(h->check()), 0xb861);
  EXPECT_EQ(h->saddr(), make_ipv4_addr(192, 168, 0, 1));
  EXPECT_EQ(h->daddr(), make_ipv4_addr(192, 168, 0, 199));
  EXPECT_EQ(h->optlen(), 0u);
  EXPECT_EQ(h->payload().size(), 0x73u - 20);  // padding excluded
  EXPECT_TRUE(h->csum_ok());
}

TEST(Ipv4, FragmentFields) {
  Bytes b = ip_packet();
  IpHdr h = *IpHdr::parse(absl::MakeSpan(b));
  h.set_frag_off(IP_MF | 185);  // offset 1480 bytes
  EXPECT_TRUE(h.mf());
  EXPECT_FALSE(h.df());
  EXPECT_EQ(h.frag_offset_bytes(), 1480u);
  EXPECT_TRUE(h.is_fragment());
  h.set_frag_off(IP_DF);
  EXPECT_FALSE(h.is_fragment());
}

TEST(Ipv4, OptionsAndPayload) {
  Bytes b = {0x46, 0x00, 0x00, 0x1a, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
             0x01, 0x01, 0x01, 0x00,  // 4 bytes of options (NOPs, EOL)
             0xaa, 0xbb};
  IpHdr h = *IpHdr::parse(absl::MakeSpan(b));
  ip_send_check(h);
  EXPECT_TRUE(h.csum_ok());
  EXPECT_EQ(h.header_len(), 24u);
  EXPECT_EQ(h.optlen(), 4u);
  EXPECT_THAT(h.options(), ElementsAreArray({0x01, 0x01, 0x01, 0x00}));
  EXPECT_THAT(h.payload(), ElementsAreArray({0xaa, 0xbb}));
}

struct IpBad {
  std::string name;
  Bytes bytes;
};
void PrintTo(const IpBad& c, std::ostream* os) { *os << c.name; }

class Ipv4Rejects : public testing::TestWithParam<IpBad> {};

TEST_P(Ipv4Rejects, Malformed) { EXPECT_FALSE(IpHdrView::parse(absl::MakeConstSpan(GetParam().bytes))); }

Bytes with(Bytes b, size_t i, uint8_t v) {
  b[i] = v;
  return b;
}

INSTANTIATE_TEST_SUITE_P(
    Table, Ipv4Rejects,
    testing::Values(IpBad{"shorter_than_20", Bytes(kIpHeader.begin(), kIpHeader.end() - 1)},
                    IpBad{"version_6", with(ip_packet(), 0, 0x65)},
                    IpBad{"ihl_4", with(ip_packet(), 0, 0x44)},
                    IpBad{"ihl_beyond_buffer", with(kIpHeader, 0, 0x46)},
                    IpBad{"tot_len_below_ihl", with(with(ip_packet(), 2, 0), 3, 19)},
                    IpBad{"tot_len_beyond_buffer", with(ip_packet(), 3, 0x74)}),
    [](const auto& i) { return i.param.name; });

TEST(Ipv4, ReprEmitMatchesExampleHeader) {
  Bytes b = filled(20);
  Ipv4Repr r{.tos = 0, .id = 0, .frag_off = IP_DF, .ttl = 64, .protocol = IPPROTO_UDP,
             .saddr = make_ipv4_addr(192, 168, 0, 1), .daddr = make_ipv4_addr(192, 168, 0, 199),
             .payload_len = 0x73 - 20};
  r.emit(*IpHdr::at(absl::MakeSpan(b)));
  EXPECT_EQ(b, kIpHeader);

  Bytes p = ip_packet();
  Ipv4Repr back;
  ASSERT_EQ(Ipv4Repr::parse(*IpHdrView::parse(absl::MakeConstSpan(p)), &back), 0);
  EXPECT_EQ(back, r);
}

TEST(Ipv4, ReprChecksumOffloadAndVerification) {
  Bytes b = ip_packet();
  Ipv4Repr r;
  ASSERT_EQ(Ipv4Repr::parse(*IpHdrView::parse(absl::MakeConstSpan(b)), &r), 0);
  r.emit(*IpHdr::at(absl::MakeSpan(b)), /*fill_csum=*/false);
  EXPECT_EQ(b[10], 0);
  EXPECT_EQ(b[11], 0);
  auto h = IpHdrView::parse(absl::MakeConstSpan(b));
  EXPECT_EQ(Ipv4Repr::parse(*h, &r), -EBADMSG);
  EXPECT_EQ(Ipv4Repr::parse(*h, &r, /*verify_csum=*/false), 0);
}

TEST(Ipv4, AtViewNeverReadsPastItsSpan) {
  Bytes b = filled(20);  // garbage ihl/tot_len: 15 words, 65535 bytes
  IpHdr h = *IpHdr::at(absl::MakeSpan(b));
  EXPECT_EQ(h.header_len(), 20u);
  EXPECT_TRUE(h.payload().empty());
  EXPECT_FALSE(IpHdr::at(absl::MakeSpan(b).first(19)));
}

// ---- UDP ----

// 10.0.0.1:4000 -> 10.0.0.2:53 "hello"; checksum computed independently: 0x982a.
const Bytes kUdpHello = {0x0f, 0xa0, 0x00, 0x35, 0x00, 0x0d, 0x98, 0x2a, 'h', 'e', 'l', 'l', 'o'};

Bytes udp_with_payload(const Bytes& payload) {
  Bytes b(8 + payload.size(), 0xFF);
  std::copy(payload.begin(), payload.end(), b.begin() + 8);
  return b;
}

TEST(Udp, EmitSoftwareChecksum) {
  Bytes b = udp_with_payload({'h', 'e', 'l', 'l', 'o'});
  UdpRepr r{.source = 4000, .dest = 53};
  ASSERT_EQ(r.emit(*UdpHdr::at(absl::MakeSpan(b)), kAddrA, kAddrB, CsumTx::kFull), 0);
  EXPECT_EQ(b, kUdpHello);
  auto h = UdpHdrView::parse(absl::MakeConstSpan(b));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->source(), 4000);
  EXPECT_EQ(h->dest(), 53);
  EXPECT_EQ(h->len(), 13);
  EXPECT_THAT(h->payload(), ElementsAreArray({'h', 'e', 'l', 'l', 'o'}));
  UdpRepr back;
  ASSERT_EQ(UdpRepr::parse(*h, kAddrA, kAddrB, &back), 0);
  EXPECT_EQ(back, r);
  // The pseudo-header is covered: the same bytes from another source fail.
  EXPECT_EQ(UdpRepr::parse(*h, make_ipv4_addr(10, 0, 0, 3), kAddrB, &back), -EBADMSG);
  b[10] ^= 1;
  EXPECT_EQ(UdpRepr::parse(*UdpHdrView::parse(absl::MakeConstSpan(b)), kAddrA, kAddrB, &back), -EBADMSG);
  EXPECT_EQ(UdpRepr::parse(*UdpHdrView::parse(absl::MakeConstSpan(b)), kAddrA, kAddrB, &back, false), 0);
}

TEST(Udp, NoChecksumIsZeroAndAccepted) {
  Bytes b = udp_with_payload({1, 2, 3});
  UdpRepr r{.source = 1, .dest = 2};
  ASSERT_EQ(r.emit(*UdpHdr::at(absl::MakeSpan(b)), kAddrA, kAddrB, CsumTx::kNone), 0);
  EXPECT_THAT(b, ElementsAreArray({0, 1, 0, 2, 0, 11, 0, 0, 1, 2, 3}));
  UdpRepr back;
  EXPECT_EQ(UdpRepr::parse(*UdpHdrView::parse(absl::MakeConstSpan(b)), kAddrA, kAddrB, &back), 0);
}

TEST(Udp, PartialChecksumIsFinishedByTheDevice) {
  Bytes full = udp_with_payload({'h', 'e', 'l', 'l', 'o'});
  Bytes part = full;
  UdpRepr r{.source = 4000, .dest = 53};
  ASSERT_EQ(r.emit(*UdpHdr::at(absl::MakeSpan(full)), kAddrA, kAddrB, CsumTx::kFull), 0);
  ASSERT_EQ(r.emit(*UdpHdr::at(absl::MakeSpan(part)), kAddrA, kAddrB, CsumTx::kPartial), 0);
  // What a NIC does for CHECKSUM_PARTIAL: sum from csum_start to the end, fold, store at +6.
  sum16 c = ip_compute_csum(part.data(), part.size());
  std::memcpy(part.data() + 6, &c, 2);
  EXPECT_EQ(part, full);
}

TEST(Udp, ComputedZeroIsSentAsAllOnes) {
  // Choose the last payload word so that the data sums to 0xffff: the checksum computes to 0.
  Bytes b = udp_with_payload({'x', 'y', 0, 0});
  UdpRepr r{.source = 7, .dest = 9};
  ASSERT_EQ(r.emit(*UdpHdr::at(absl::MakeSpan(b)), kAddrA, kAddrB, CsumTx::kFull), 0);
  uint16_t c = wire_value(load_raw16(&b[6]));
  store_be16(&b[10], c);  // adds ~sum to the sum: the total becomes 0xffff
  ASSERT_EQ(r.emit(*UdpHdr::at(absl::MakeSpan(b)), kAddrA, kAddrB, CsumTx::kFull), 0);
  EXPECT_EQ(b[6], 0xff);
  EXPECT_EQ(b[7], 0xff);
  UdpRepr back;
  EXPECT_EQ(UdpRepr::parse(*UdpHdrView::parse(absl::MakeConstSpan(b)), kAddrA, kAddrB, &back), 0);
}

struct UdpBad {
  std::string name;
  Bytes bytes;
};
void PrintTo(const UdpBad& c, std::ostream* os) { *os << c.name; }

class UdpRejects : public testing::TestWithParam<UdpBad> {};

TEST_P(UdpRejects, Malformed) { EXPECT_FALSE(UdpHdrView::parse(absl::MakeConstSpan(GetParam().bytes))); }

INSTANTIATE_TEST_SUITE_P(
    Table, UdpRejects,
    testing::Values(UdpBad{"shorter_than_8", Bytes(kUdpHello.begin(), kUdpHello.begin() + 7)},
                    UdpBad{"len_below_8", with(kUdpHello, 5, 7)},
                    UdpBad{"len_beyond_buffer", with(kUdpHello, 5, 14)}),
    [](const auto& i) { return i.param.name; });

TEST(Udp, TrailingBytesBeyondLenAreNotPayload) {
  Bytes b = kUdpHello;
  b.push_back(0xEE);
  auto h = UdpHdrView::parse(absl::MakeConstSpan(b));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->payload().size(), 5u);
  UdpRepr back;
  EXPECT_EQ(UdpRepr::parse(*h, kAddrA, kAddrB, &back), 0);
}

// ---- ICMP ----

TEST(Icmp, EchoRequestEmitAndParse) {
  Bytes b = filled(8);
  for (char c : std::string("abcdefgh")) b.push_back(static_cast<uint8_t>(c));
  IcmpEchoRepr r{.type = ICMP_ECHO, .id = 0x1234, .sequence = 1};
  r.emit(*IcmpHdr::at(absl::MakeSpan(b)));
  // Checksum computed independently: 0x5435.
  EXPECT_THAT(Bytes(b.begin(), b.begin() + 8), ElementsAreArray({8, 0, 0x54, 0x35, 0x12, 0x34, 0, 1}));
  auto h = IcmpHdrView::parse(absl::MakeConstSpan(b));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->payload().size(), 8u);
  IcmpEchoRepr back;
  ASSERT_EQ(IcmpEchoRepr::parse(*h, &back), 0);
  EXPECT_EQ(back, r);
}

TEST(Icmp, Rejects) {
  Bytes b = filled(12);
  IcmpEchoRepr{.type = ICMP_ECHOREPLY, .id = 1, .sequence = 2}.emit(*IcmpHdr::at(absl::MakeSpan(b)));
  IcmpEchoRepr back;
  EXPECT_EQ(IcmpEchoRepr::parse(*IcmpHdrView::parse(absl::MakeConstSpan(b)), &back), 0);
  EXPECT_EQ(back.type, ICMP_ECHOREPLY);
  b[11] ^= 0x40;
  EXPECT_EQ(IcmpEchoRepr::parse(*IcmpHdrView::parse(absl::MakeConstSpan(b)), &back), -EBADMSG);
  b[0] = ICMP_DEST_UNREACH;
  EXPECT_EQ(IcmpEchoRepr::parse(*IcmpHdrView::parse(absl::MakeConstSpan(b)), &back), -EINVAL);
  EXPECT_FALSE(IcmpHdrView::parse(absl::MakeConstSpan(b).first(7)));
  IcmpHdr h = *IcmpHdr::at(absl::MakeSpan(b));
  h.set_frag_mtu(1400);
  EXPECT_EQ(h.frag_mtu(), 1400);
  EXPECT_EQ(b[4], 0);
  EXPECT_EQ(b[5], 0);
}

// ---- A whole frame ----

TEST(Frame, EthIpv4UdpBuiltInPlace) {
  const uint8_t payload[5] = {'h', 'e', 'l', 'l', 'o'};
  Bytes f = filled(14 + 20 + 8 + sizeof payload);
  std::memcpy(f.data() + 42, payload, sizeof payload);
  auto frame = absl::MakeSpan(f);
  ASSERT_EQ((UdpRepr{.source = 4000, .dest = 53}.emit(*UdpHdr::at(frame.subspan(34)), kAddrA, kAddrB,
                                                      CsumTx::kFull)),
            0);
  Ipv4Repr{.id = 7, .frag_off = IP_DF, .protocol = IPPROTO_UDP, .saddr = kAddrA, .daddr = kAddrB,
           .payload_len = 13}
      .emit(*IpHdr::at(frame.subspan(14)));
  EthRepr{.h_dest = kMacB, .h_source = kMacA, .h_proto = ETH_P_IP}.emit(*EthHdr::at(frame));
  const Bytes expected = {
      0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00,                       // eth
      0x45, 0, 0, 33, 0, 7, 0x40, 0, 64, 17, 0x26, 0xc3, 10, 0, 0, 1, 10, 0, 0, 2,     // ipv4
      0x0f, 0xa0, 0x00, 0x35, 0x00, 0x0d, 0x98, 0x2a, 'h', 'e', 'l', 'l', 'o'};        // udp
  EXPECT_EQ(f, expected);

  auto eth = EthHdrView::parse(absl::MakeConstSpan(f));
  ASSERT_TRUE(eth && eth->h_proto() == ETH_P_IP);
  auto ip = IpHdrView::parse(eth->payload());
  ASSERT_TRUE(ip && ip->csum_ok());
  auto udp = UdpHdrView::parse(ip->payload());
  ASSERT_TRUE(udp);
  UdpRepr u;
  EXPECT_EQ(UdpRepr::parse(*udp, ip->saddr(), ip->daddr(), &u), 0);
  // A mutable view converts to a read-only one.
  IpHdrView ro = *IpHdr::parse(frame.subspan(14));
  EXPECT_EQ(ro.tot_len(), 33);
}

}  // namespace
}  // namespace xmit
