// tests/ipv4/ip_output_test.cc — the IPv4 header byte by byte from socket state and per-call
// overrides (TTL, TOS, DF, id), the UDP checksum modes, EMSGSIZE, pool exhaustion, EFAULT, counters.
#include <netinet/ip.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "stack/ipv4/iov_iter.h"
#include "tests/ipv4/harness.h"

namespace xmit::testing_ipv4 {
namespace {

// The 20 bytes the kernel would write, built field by field, checksum by the reference.
std::vector<uint8_t> expected_iph(uint8_t tos, uint16_t tot_len, uint16_t id, uint16_t frag_off,
                                  uint8_t ttl) {
  std::vector<uint8_t> h = {0x45, tos, static_cast<uint8_t>(tot_len >> 8), static_cast<uint8_t>(tot_len),
                            static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id),
                            static_cast<uint8_t>(frag_off >> 8), static_cast<uint8_t>(frag_off), ttl,
                            IPPROTO_UDP, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2};
  uint16_t c = ref_csum(h);
  h[10] = static_cast<uint8_t>(c >> 8);
  h[11] = static_cast<uint8_t>(c);
  return h;
}

struct HeaderCase {
  std::string name;
  int pmtudisc;
  bool connected;
  int16_t uc_ttl;
  uint8_t sock_tos;
  uint8_t route_hoplimit;
  bool mtu_locked;
  int16_t ipc_tos;   // -2: leave ipcm_init_sk()'s value
  uint8_t ipc_ttl;   // 0: none
  // expected
  uint8_t tos;
  uint16_t frag_off;
  uint8_t ttl;
  int id_kind;  // 0: zero, 1: inet_id + 1, 2: generator
};

class Header : public ::testing::TestWithParam<HeaderCase> {};

TEST_P(Header, BytesAsTheKernel) {
  const HeaderCase& c = GetParam();
  Bed bed;
  bed.sysctl.ip_default_ttl = 61;
  bed.use_rt_override = true;
  bed.rt_override = Ipv4Route{.oif = 3, .saddr = kSaddr, .daddr = kDaddr, .nexthop = kGateway,
                              .hoplimit = c.route_hoplimit, .mtu_locked = c.mtu_locked};
  InetSock sk = bed.sock();
  sk.pmtudisc = static_cast<uint8_t>(c.pmtudisc);
  sk.uc_ttl = c.uc_ttl;
  sk.tos = c.sock_tos;
  sk.sk_mark = 77;
  sk.sk_priority = 5;
  if (c.connected) {
    sk.inet_daddr = kDaddr;
    sk.inet_dport = cpu_to_be16(kDport);
    sk.inet_id = 0xfffe;
  }
  IpcmCookie ipc;
  ipcm_init_sk(&ipc, sk);
  if (c.ipc_tos != -2) ipc.tos = c.ipc_tos;
  ipc.ttl = c.ipc_ttl;
  auto payload = pattern(100);
  for (int round = 0; round < 2; ++round) ASSERT_EQ(bed.send(&sk, payload, 0, &ipc), 0);
  ASSERT_EQ(bed.neigh.sent.size(), 2u);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    uint16_t id = 0;
    if (c.id_kind == 1) id = static_cast<uint16_t>(0xfffe + 1 + round);  // wraps to 0 in round 1
    if (c.id_kind == 2) id = static_cast<uint16_t>(0x1000 + round);
    const Sent& s = bed.neigh.sent[round];
    EXPECT_EQ(std::vector<uint8_t>(s.bytes.begin(), s.bytes.begin() + 20),
              expected_iph(c.tos, 128, id, c.frag_off, c.ttl));
    EXPECT_EQ(s.info.oif, 3);
    EXPECT_EQ(s.info.nexthop, kGateway);
    EXPECT_EQ(s.info.mark, 77u);
    EXPECT_EQ(s.info.priority, 5u);
    EXPECT_FALSE(s.info.tx_ip_csum);
  }
  EXPECT_EQ(bed.idents.calls, c.id_kind == 2 ? 2 : 0);
  if (c.id_kind == 2) {
    EXPECT_EQ(bed.idents.last_daddr, kDaddr);
    EXPECT_EQ(bed.idents.last_saddr, kSaddr);
    EXPECT_EQ(bed.idents.last_protocol, IPPROTO_UDP);
  }
  inet_sock_destruct(&sk);
}

// What Linux 6.18 puts on the wire for a 100-byte sendto() (tests/ipv4/kernel_diff_test.cc checks
// the same against the kernel): connected sockets use their own counter whatever DF says;
// unconnected ones send 0 with DF from DO/PROBE, the generator otherwise.
INSTANTIATE_TEST_SUITE_P(
    State, Header,
    ::testing::Values(
        HeaderCase{"want_unconnected", IP_PMTUDISC_WANT, false, -1, 0, 0, false, -2, 0, 0, IP_DF, 61, 2},
        HeaderCase{"want_connected", IP_PMTUDISC_WANT, true, -1, 0, 0, false, -2, 0, 0, IP_DF, 61, 1},
        HeaderCase{"want_mtu_locked", IP_PMTUDISC_WANT, false, -1, 0, 0, true, -2, 0, 0, 0, 61, 2},
        HeaderCase{"dont_unconnected", IP_PMTUDISC_DONT, false, -1, 0, 0, false, -2, 0, 0, 0, 61, 2},
        HeaderCase{"dont_connected", IP_PMTUDISC_DONT, true, -1, 0, 0, false, -2, 0, 0, 0, 61, 1},
        HeaderCase{"do_unconnected", IP_PMTUDISC_DO, false, -1, 0, 0, false, -2, 0, 0, IP_DF, 61, 0},
        HeaderCase{"do_connected", IP_PMTUDISC_DO, true, -1, 0, 0, false, -2, 0, 0, IP_DF, 61, 1},
        HeaderCase{"do_mtu_locked", IP_PMTUDISC_DO, false, -1, 0, 0, true, -2, 0, 0, IP_DF, 61, 0},
        HeaderCase{"probe_unconnected", IP_PMTUDISC_PROBE, false, -1, 0, 0, false, -2, 0, 0, IP_DF, 61, 0},
        HeaderCase{"interface_unconnected", IP_PMTUDISC_INTERFACE, false, -1, 0, 0, false, -2, 0, 0, 0, 61, 2},
        HeaderCase{"omit_unconnected", IP_PMTUDISC_OMIT, false, -1, 0, 0, false, -2, 0, 0, 0, 61, 2},
        HeaderCase{"uc_ttl", IP_PMTUDISC_WANT, false, 9, 0, 33, false, -2, 0, 0, IP_DF, 9, 2},
        HeaderCase{"route_hoplimit", IP_PMTUDISC_WANT, false, -1, 0, 33, false, -2, 0, 0, IP_DF, 33, 2},
        HeaderCase{"cmsg_ttl", IP_PMTUDISC_WANT, false, 9, 0, 33, false, -2, 200, 0, IP_DF, 200, 2},
        HeaderCase{"sock_tos", IP_PMTUDISC_WANT, false, -1, 0xb8, 0, false, -2, 0, 0xb8, IP_DF, 61, 2},
        HeaderCase{"cmsg_tos", IP_PMTUDISC_WANT, false, -1, 0xb8, 0, false, 0x20, 0, 0x20, IP_DF, 61, 2},
        HeaderCase{"cork_tos_unset", IP_PMTUDISC_WANT, false, -1, 0x10, 0, false, -1, 0, 0x10, IP_DF, 61, 2}),
    [](const auto& info) { return info.param.name; });

TEST(Header, WantLargerThanPathMtuLosesDf) {
  // IP_PMTUDISC_WANT: DF only while the datagram fits the path MTU; larger ones are fragmented.
  Bed bed;
  bed.use_rt_override = true;
  bed.rt_override = Ipv4Route{.oif = 3, .saddr = kSaddr, .daddr = kDaddr, .nexthop = kDaddr, .pmtu = 1400};
  InetSock sk = bed.sock();
  ASSERT_EQ(bed.send(&sk, pattern(1372)), 0);  // 1400 on the wire: fits, DF
  ASSERT_EQ(bed.send(&sk, pattern(1373)), 0);  // two fragments cut at 1400, no DF
  ASSERT_EQ(bed.neigh.sent.size(), 3u);
  EXPECT_EQ(be16_at(bed.neigh.sent[0].bytes, 6), IP_DF);
  EXPECT_EQ(bed.neigh.sent[1].bytes.size(), 1396u);  // ((1400 - 20) & ~7) + 20
  EXPECT_EQ(be16_at(bed.neigh.sent[1].bytes, 6), IP_MF);
  // PROBE and INTERFACE cut at the device MTU, not the path MTU.
  sk.pmtudisc = IP_PMTUDISC_PROBE;
  ASSERT_EQ(bed.send(&sk, pattern(1472)), 0);
  EXPECT_EQ(bed.neigh.sent.back().bytes.size(), 1500u);
  EXPECT_EQ(be16_at(bed.neigh.sent.back().bytes, 6), IP_DF);
  EXPECT_EQ(be16_at(bed.neigh.sent.back().bytes, 4), 0);
  sk.pmtudisc = IP_PMTUDISC_DO;
  EXPECT_EQ(bed.send(&sk, pattern(1373)), -EMSGSIZE);
  inet_sock_destruct(&sk);
}

TEST(Header, DeviceFillsIpChecksum) {
  Bed bed;
  bed.dev.ip_csum = true;
  InetSock sk = bed.sock();
  ASSERT_EQ(bed.send(&sk, pattern(3000)), 0);
  for (const Sent& s : bed.neigh.sent) {
    EXPECT_TRUE(s.info.tx_ip_csum);
    EXPECT_EQ(be16_at(s.bytes, 10), 0);
  }
  inet_sock_destruct(&sk);
}

TEST(Header, ConnectedFragmentsShareTheSocketId) {
  Bed bed;
  InetSock sk = bed.sock();
  sk.inet_daddr = kDaddr;
  sk.inet_id = 100;
  ASSERT_EQ(bed.send(&sk, pattern(3000)), 0);
  ASSERT_EQ(bed.send(&sk, pattern(10)), 0);
  ASSERT_EQ(bed.neigh.sent.size(), 4u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(be16_at(bed.neigh.sent[i].bytes, 4), 101);
  EXPECT_EQ(be16_at(bed.neigh.sent[3].bytes, 4), 102);
  EXPECT_EQ(sk.inet_id, 102);
  inet_sock_destruct(&sk);
}

TEST(HashIdents, PerDestinationCounterWithIdlePerturbation) {
  constexpr uint64_t kNow = 123'456'000'000;  // ns; the generator works in ms "jiffies"
  HashIpIdents ids(42);
  uint16_t a = ids.select_ident(kDaddr, kSaddr, IPPROTO_UDP, 1, kNow);
  uint16_t b = ids.select_ident(kDaddr, kSaddr, IPPROTO_UDP, 3, kNow);  // same jiffy: +1
  uint16_t c = ids.select_ident(kDaddr, kSaddr, IPPROTO_UDP, 1, kNow);
  EXPECT_EQ(b, static_cast<uint16_t>(a + 1));
  EXPECT_EQ(c, static_cast<uint16_t>(b + 3));
  // Idle for a while: the bucket jumps by a random amount below the idle time.
  uint16_t d = ids.select_ident(kDaddr, kSaddr, IPPROTO_UDP, 1, kNow + 50'000'000);
  EXPECT_LT(static_cast<uint16_t>(d - c - 1), 50);
  HashIpIdents other(43);  // another key: another start
  EXPECT_NE(other.select_ident(kDaddr, kSaddr, IPPROTO_UDP, 1, kNow), a);
}

TEST(UdpChecksum, Modes) {
  auto payload = pattern(333);
  {  // software
    Bed bed;
    InetSock sk = bed.sock();
    ASSERT_EQ(bed.send(&sk, payload), 0);
    const Sent& s = bed.neigh.sent.at(0);
    std::vector<uint8_t> udp(s.bytes.begin() + 20, s.bytes.end());
    EXPECT_EQ(s.ip_summed, CHECKSUM_NONE);
    EXPECT_EQ(be16_at(udp, 6), ref_udp_csum(kSaddr, kDaddr, udp));
    inet_sock_destruct(&sk);
  }
  {  // the device finishes it: pseudo-header seeded, csum_start at the UDP header
    Bed bed;
    bed.dev.l4_csum = true;
    InetSock sk = bed.sock();
    ASSERT_EQ(bed.send(&sk, payload), 0);
    const Sent& s = bed.neigh.sent.at(0);
    EXPECT_EQ(s.ip_summed, CHECKSUM_PARTIAL);
    EXPECT_EQ(s.csum_start_from_data, 20);
    EXPECT_EQ(s.csum_offset, 6);
    // Finishing it as the device would gives the reference checksum.
    std::vector<uint8_t> udp(s.bytes.begin() + 20, s.bytes.end());
    uint16_t seed = be16_at(udp, 6);
    std::vector<uint8_t> tmp = udp;
    uint16_t sum_without = static_cast<uint16_t>(~ref_csum([&] { tmp[6] = tmp[7] = 0; return tmp; }()));
    uint32_t t = static_cast<uint32_t>(sum_without) + seed;
    t = (t & 0xffff) + (t >> 16);
    EXPECT_EQ(static_cast<uint16_t>(~t), ref_udp_csum(kSaddr, kDaddr, udp));
    // MSG_MORE-free but fragmented: software, even on this device.
    ASSERT_EQ(bed.send(&sk, pattern(2000)), 0);
    EXPECT_EQ(bed.neigh.sent.at(1).ip_summed, CHECKSUM_NONE);
    auto dgram = reassemble({bed.neigh.sent.at(1), bed.neigh.sent.at(2)});
    EXPECT_EQ(be16_at(dgram, 6), ref_udp_csum(kSaddr, kDaddr, dgram));
    inet_sock_destruct(&sk);
  }
  {  // SO_NO_CHECK
    Bed bed;
    bed.dev.l4_csum = true;
    InetSock sk = bed.sock();
    sk.sk_no_check_tx = true;
    ASSERT_EQ(bed.send(&sk, payload), 0);
    ASSERT_EQ(bed.send(&sk, pattern(3000)), 0);
    EXPECT_EQ(bed.neigh.sent.at(0).ip_summed, CHECKSUM_NONE);
    EXPECT_EQ(be16_at(bed.neigh.sent.at(0).bytes, 26), 0);
    EXPECT_EQ(be16_at(bed.neigh.sent.at(1).bytes, 26), 0);
    inet_sock_destruct(&sk);
  }
}

TEST(UdpChecksum, ComputedZeroIsSentAsAllOnes) {
  // Choose the last two payload bytes so that the checksum comes out 0.
  auto payload = pattern(64);
  payload[62] = payload[63] = 0;
  std::vector<uint8_t> udp(8 + payload.size());
  udp[0] = static_cast<uint8_t>(kSport >> 8);
  udp[1] = static_cast<uint8_t>(kSport & 0xff);
  udp[3] = kDport;
  udp[5] = 72;
  std::copy(payload.begin(), payload.end(), udp.begin() + 8);
  uint16_t c = ref_udp_csum(kSaddr, kDaddr, udp);  // the complement of the sum so far
  payload[62] = static_cast<uint8_t>(c >> 8);
  payload[63] = static_cast<uint8_t>(c);
  Bed bed;
  InetSock sk = bed.sock();
  ASSERT_EQ(bed.send(&sk, payload), 0);
  EXPECT_EQ(be16_at(bed.neigh.sent.at(0).bytes, 26), 0xffff);
  inet_sock_destruct(&sk);
}

TEST(Emsgsize, Limits) {
  Bed bed;
  InetSock sk = bed.sock();
  EXPECT_EQ(bed.send(&sk, pattern(65508)), -EMSGSIZE);  // 65508 + 8 + 20 > 0xFFFF
  EXPECT_EQ(bed.send(&sk, pattern(65507)), 0);
  sk.pmtudisc = IP_PMTUDISC_DO;  // may not fragment: the MTU is the limit
  EXPECT_EQ(bed.send(&sk, pattern(1473)), -EMSGSIZE);
  EXPECT_EQ(bed.send(&sk, pattern(1472)), 0);
  sk.pmtudisc = IP_PMTUDISC_PROBE;
  EXPECT_EQ(bed.send(&sk, pattern(1473)), -EMSGSIZE);
  // Corked: the running total counts.
  sk.pmtudisc = IP_PMTUDISC_DO;
  EXPECT_EQ(bed.append(&sk, pattern(1000), MSG_MORE), 0);
  EXPECT_EQ(bed.append(&sk, pattern(473), MSG_MORE), -EMSGSIZE);
  EXPECT_EQ(bed.append(&sk, pattern(472), MSG_MORE), 0);
  EXPECT_EQ(sk.cork.length, 1480u);
  ip_flush_pending_frames(&sk);
  EXPECT_EQ(bed.mib.OutDiscards, 0u);  // the size check comes before any accounting
  // A route MTU below 68 is unusable.
  bed.use_rt_override = true;
  bed.rt_override = Ipv4Route{.oif = 3, .saddr = kSaddr, .daddr = kDaddr, .nexthop = kDaddr, .pmtu = 67};
  sk.pmtudisc = IP_PMTUDISC_WANT;
  EXPECT_EQ(bed.send(&sk, pattern(10)), -ENETUNREACH);
  // MSG_PROBE sends nothing.
  bed.use_rt_override = false;
  size_t before = bed.neigh.sent.size();
  EXPECT_EQ(bed.send(&sk, pattern(10), kMsgProbe), 0);
  EXPECT_EQ(bed.neigh.sent.size(), before);
  inet_sock_destruct(&sk);
  EXPECT_TRUE(bed.pools_full());
}

TEST(Errors, PoolExhaustion) {
  // The pool is not the send buffer: an empty pool is kNoTxMem wherever it happens (the socket
  // decides between waiting and EAGAIN). Two skbs: a 3-fragment datagram gets its first two.
  Bed bed(/*nr_skbs=*/2, /*nr_frags=*/8);
  InetSock sk = bed.sock();
  EXPECT_EQ(bed.send(&sk, pattern(3000)), kNoTxMem);
  EXPECT_EQ(bed.mib.OutDiscards, 1u);
  EXPECT_TRUE(bed.pools_full());
  EXPECT_EQ(sk.sk_wmem_alloc, 1u);  // nothing stays charged
  // No skb at all for the first packet.
  sk_buff* a = bed.skbs->alloc_skb();
  sk_buff* b = bed.skbs->alloc_skb();
  EXPECT_EQ(bed.send(&sk, pattern(10)), kNoTxMem);
  kfree_skb(a);
  kfree_skb(b);
  // SG device, no payload buffer left.
  bed.dev.max_segs = 17;
  std::vector<uint8_t*> held;
  while (uint8_t* p = bed.frags->alloc()) held.push_back(p);
  EXPECT_EQ(bed.append(&sk, pattern(10), MSG_MORE), 0);  // fits the head
  EXPECT_EQ(bed.append(&sk, pattern(10), MSG_MORE), kNoTxMem);
  ip_flush_pending_frames(&sk);
  for (uint8_t* p : held) bed.frags->put(p);
  inet_sock_destruct(&sk);
  EXPECT_TRUE(bed.pools_full());
}

TEST(Errors, Efault) {
  iovec bad{nullptr, 10};
  IovIter it;
  EXPECT_EQ(iov_iter_init(&it, absl::MakeConstSpan(&bad, 1)), -EFAULT);
  // An iovec shorter than the length asked for: -EFAULT, nothing leaks, nothing sent.
  Bed bed;
  InetSock sk = bed.sock();
  auto payload = pattern(100);
  iovec iov{payload.data(), payload.size()};
  ASSERT_EQ(iov_iter_init(&it, absl::MakeConstSpan(&iov, 1)), 0);
  IpcmCookie ipc;
  ipcm_init_sk(&ipc, sk);
  sk_buff* skb = nullptr;
  EXPECT_EQ(ip_make_skb(bed.ctx(), &sk, bed.fl4(), bed.route(), &it, 3000 + 8, 8, ipc, 0, &skb), -EFAULT);
  EXPECT_EQ(skb, nullptr);
  inet_sock_destruct(&sk);
  EXPECT_TRUE(bed.pools_full());
  EXPECT_TRUE(bed.neigh.sent.empty());
}

TEST(Iov, ManySegmentsAndOddSplits) {
  // The checksum of data copied from odd-length segments equals the reference.
  Bed bed;
  InetSock sk = bed.sock();
  auto payload = pattern(2999);
  std::vector<iovec> iov;
  for (size_t off = 0, n = 1; off < payload.size(); off += n, n = n % 7 + 1)
    iov.push_back(iovec{payload.data() + off, std::min(n, payload.size() - off)});
  iov.insert(iov.begin() + 3, iovec{nullptr, 0});  // empty segments are allowed
  IovIter it;
  ASSERT_EQ(iov_iter_init(&it, absl::MakeConstSpan(iov)), 0);
  IpcmCookie ipc;
  ipcm_init_sk(&ipc, sk);
  sk_buff* skb = nullptr;
  IpOutCtx ctx = bed.ctx();
  ASSERT_EQ(ip_make_skb(ctx, &sk, bed.fl4(), bed.route(), &it, 2999 + 8, 8, ipc, 0, &skb), 0);
  ASSERT_EQ(udp_send_skb(ctx, &sk, &bed.udp_mib, skb, bed.fl4()), 0);
  auto udp = reassemble(bed.neigh.sent);
  EXPECT_EQ(be16_at(udp, 6), ref_udp_csum(kSaddr, kDaddr, udp));
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), udp.begin() + 8));
  inet_sock_destruct(&sk);
}

TEST(Counters, NeighbourErrors) {
  Bed bed;
  InetSock sk = bed.sock();
  bed.neigh.fail_with = -ENOBUFS;  // a full device queue
  EXPECT_EQ(bed.send(&sk, pattern(10)), 0);  // UDP hides ENOBUFS without IP_RECVERR
  EXPECT_EQ(bed.udp_mib.SndbufErrors, 1u);
  EXPECT_EQ(bed.udp_mib.OutDatagrams, 0u);
  EXPECT_EQ(bed.mib.OutDiscards, 1u);
  sk.recverr = true;
  EXPECT_EQ(bed.send(&sk, pattern(10)), -ENOBUFS);
  // A fragment fails: the rest of the train is dropped, FragFails counts.
  EXPECT_EQ(bed.send(&sk, pattern(3000)), -ENOBUFS);
  EXPECT_EQ(bed.mib.FragFails, 1u);
  EXPECT_EQ(bed.mib.FragCreates, 0u);
  EXPECT_EQ(bed.mib.OutRequests, 3u);
  inet_sock_destruct(&sk);
  EXPECT_TRUE(bed.pools_full());
}

}  // namespace
}  // namespace xmit::testing_ipv4

namespace xmit::testing_ipv4 {
namespace {

// kernel: sock_alloc_send_pskb() returns -EPIPE after shutdown(SHUT_WR) — for the first packet of
// a datagram only (udp_sendmsg() → ip_make_skb() or the first ip_append_data() of a cork); data
// appended to a cork that was opened before the shutdown still goes (alloc_skb() does not check).
TEST(Errors, EpipeAfterShutdownWrite) {
  Bed bed;
  InetSock sk = bed.sock();
  ASSERT_EQ(bed.append(&sk, pattern(10), MSG_MORE), 0);
  sk.sk_shutdown = SEND_SHUTDOWN;
  EXPECT_EQ(bed.send(&sk, pattern(10)), -EPIPE);
  EXPECT_EQ(bed.append(&sk, pattern(3000), MSG_MORE), 0);  // joins the cork: new skbs, no check
  ASSERT_EQ(bed.push(&sk), 0);
  EXPECT_EQ(bed.neigh.sent.size(), 3u);
  EXPECT_EQ(reassemble(bed.neigh.sent).size(), 8u + 3010);
  sk.sk_shutdown = RCV_SHUTDOWN;  // SHUT_RD alone does not stop sending
  EXPECT_EQ(bed.send(&sk, pattern(10)), 0);
  inet_sock_destruct(&sk);
  EXPECT_TRUE(bed.pools_full());
}

// kernel: udp_send_skb() writes uh->source = inet->inet_sport (the socket's port when the datagram
// leaves), uh->dest = fl4->fl4_dport: a cork pushed after the port changed carries the new port.
TEST(UdpHeader, SourcePortIsTheSocketsAtSendTime) {
  Bed bed;
  InetSock sk = bed.sock();
  ASSERT_EQ(bed.append(&sk, pattern(10), MSG_MORE), 0);
  sk.inet_sport = 0;  // __udp_disconnect() released the autobound port
  ASSERT_EQ(bed.push(&sk), 0);
  ASSERT_EQ(bed.neigh.sent.size(), 1u);
  const auto& b = bed.neigh.sent[0].bytes;
  EXPECT_EQ(be16_at(b, 20), 0);
  EXPECT_EQ(be16_at(b, 22), kDport);
  std::vector<uint8_t> udp(b.begin() + 20, b.end());
  EXPECT_EQ(be16_at(udp, 6), ref_udp_csum(kSaddr, kDaddr, udp));
  inet_sock_destruct(&sk);
}

}  // namespace
}  // namespace xmit::testing_ipv4
