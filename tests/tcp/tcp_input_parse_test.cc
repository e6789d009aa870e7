// tests/tcp/tcp_input_parse_test.cc — tcp_v4_check_segment() (length, doff, checksum, the cb it
// fills) and tcp_parse_options() on well-formed and malformed option lists, case by case as
// tcp_parse_options() in net/ipv4/tcp_input.c treats them.
#include "stack/tcp/tcp_input_parse.h"

#include <netinet/in.h>

#include <vector>

#include "gtest/gtest.h"
#include "stack/wire/tcp.h"

namespace xmit {
namespace {

const be32 kSaddr = htonl(0xc6120001), kDaddr = htonl(0xc6120002);

// A segment: 20-byte header + `opts` (padded by the caller to 4n) + `payload` bytes, checksummed.
std::vector<uint8_t> segment(std::vector<uint8_t> opts, uint32_t payload, uint8_t flags = TCPHDR_ACK) {
  std::vector<uint8_t> s(20 + opts.size() + payload, 0xab);
  TcpHdr th = *TcpHdr::at(absl::MakeSpan(s));
  th.set_source(5001);
  th.set_dest(40000);
  th.set_seq(0xfffffff0);
  th.set_ack_seq(77);
  th.set_doff(static_cast<uint8_t>((20 + opts.size()) / 4));
  th.set_flags(flags);
  th.set_window(100);
  th.set_check(0);
  th.set_urg_ptr(0);
  std::copy(opts.begin(), opts.end(), s.begin() + 20);
  wsum sum = csum_partial(s.data(), s.size(), 0);
  th.set_check(csum_tcpudp_magic(kSaddr, kDaddr, static_cast<uint32_t>(s.size()), IPPROTO_TCP, sum));
  return s;
}

TEST(TcpCheckSegment, FillsCbLikeTcpV4FillCb) {
  auto s = segment({}, 100, TCPHDR_ACK | TCPHDR_FIN);
  tcp_skb_cb tcb;
  ASSERT_EQ(tcp_v4_check_segment(s, kSaddr, kDaddr, true, &tcb), 0);
  EXPECT_EQ(tcb.seq, 0xfffffff0u);
  EXPECT_EQ(tcb.end_seq, 0xfffffff0u + 100 + 1);  // FIN takes one sequence number; wraps
  EXPECT_EQ(tcb.ack_seq, 77u);
  EXPECT_EQ(tcb.tcp_flags, TCPHDR_ACK | TCPHDR_FIN);
}

TEST(TcpCheckSegment, RejectsShortBadDoffAndBadChecksum) {
  tcp_skb_cb tcb;
  auto s = segment({}, 0);
  EXPECT_EQ(tcp_v4_check_segment(absl::MakeConstSpan(s.data(), 19), kSaddr, kDaddr, false, &tcb), -EINVAL);
  s[12] = 4 << 4;  // doff 4 < 5
  EXPECT_EQ(tcp_v4_check_segment(s, kSaddr, kDaddr, false, &tcb), -EINVAL);
  s[12] = 6 << 4;  // doff 6: 24 bytes, only 20 present
  EXPECT_EQ(tcp_v4_check_segment(s, kSaddr, kDaddr, false, &tcb), -EINVAL);
  auto good = segment({}, 10);
  EXPECT_EQ(tcp_v4_check_segment(good, kSaddr, kDaddr, true, &tcb), 0);
  good[25] ^= 1;  // one payload bit
  EXPECT_EQ(tcp_v4_check_segment(good, kSaddr, kDaddr, true, &tcb), -EINVAL);
  EXPECT_EQ(tcp_v4_check_segment(good, kSaddr, kDaddr, false, &tcb), 0);  // CHECKSUM_UNNECESSARY
  auto other = segment({}, 10);
  EXPECT_EQ(tcp_v4_check_segment(other, kSaddr, htonl(0xc6120003), true, &tcb), -EINVAL);  // pseudo-header
}

struct Parsed {
  tcp_options_received rx;
  uint8_t sack_off = 0;
};

Parsed parse(std::vector<uint8_t> opts, bool syn, bool estab, tcp_options_received rx = {}) {
  while (opts.size() % 4) opts.push_back(TCPOPT_EOL);
  auto s = segment(opts, 0, syn ? TCPHDR_SYN : TCPHDR_ACK);
  Parsed p{.rx = rx};
  tcp_parse_options(absl::MakeConstSpan(s.data(), 20 + opts.size()), estab, &p.rx, &p.sack_off);
  return p;
}

TEST(TcpParseOptions, SynOptions) {
  Parsed p = parse({2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7, 1, 3, 3, 7}, true, false);
  EXPECT_EQ(p.rx.mss_clamp, 1460);
  EXPECT_TRUE(p.rx.sack_ok);
  EXPECT_TRUE(p.rx.saw_tstamp);
  EXPECT_EQ(p.rx.rcv_tsval, 9u);
  EXPECT_EQ(p.rx.rcv_tsecr, 7u);
  EXPECT_TRUE(p.rx.wscale_ok);
  EXPECT_EQ(p.rx.snd_wscale, 7);
  EXPECT_FALSE(p.rx.saw_unknown);
}

TEST(TcpParseOptions, SynOnlyOptionsIgnoredWhenEstablishedOrNotSyn) {
  for (bool syn : {false, true}) {
    Parsed p = parse({2, 4, 0x05, 0xb4, 3, 3, 7, 4, 2}, syn, /*estab=*/syn);
    EXPECT_EQ(p.rx.mss_clamp, 0xffff);
    EXPECT_FALSE(p.rx.wscale_ok);
    EXPECT_FALSE(p.rx.sack_ok);
  }
}

TEST(TcpParseOptions, MssZeroIgnoredAndUserMssCaps) {
  EXPECT_EQ(parse({2, 4, 0, 0}, true, false).rx.mss_clamp, 0xffff);
  tcp_options_received rx;
  rx.user_mss = 1000;
  EXPECT_EQ(parse({2, 4, 0x05, 0xb4}, true, false, rx).rx.mss_clamp, 1000);
  EXPECT_EQ(parse({2, 4, 0x01, 0x00}, true, false, rx).rx.mss_clamp, 256);
}

TEST(TcpParseOptions, WindowScaleAbove14IsClamped) {
  EXPECT_EQ(parse({3, 3, 15}, true, false).rx.snd_wscale, 14);
  EXPECT_EQ(parse({3, 3, 200}, true, false).rx.snd_wscale, 14);
}

TEST(TcpParseOptions, TimestampsWhenEstablishedNeedTstampOk) {
  std::vector<uint8_t> ts = {1, 1, 8, 10, 0, 0, 1, 0, 0, 0, 2, 0};
  EXPECT_FALSE(parse(ts, false, true).rx.saw_tstamp);
  tcp_options_received rx;
  rx.tstamp_ok = true;
  Parsed p = parse(ts, false, true, rx);
  EXPECT_TRUE(p.rx.saw_tstamp);
  EXPECT_EQ(p.rx.rcv_tsval, 256u);
  EXPECT_EQ(p.rx.rcv_tsecr, 512u);
  // Wrong length (9): skipped, not "saw".
  EXPECT_FALSE(parse({8, 9, 0, 0, 0, 1, 0, 0, 0}, false, true, rx).rx.saw_tstamp);
}

TEST(TcpParseOptions, SackBlocksNeedSackOkAndWholeBlocks) {
  std::vector<uint8_t> sack = {1, 1, 5, 18, 0, 0, 0, 10, 0, 0, 0, 20, 0, 0, 0, 30, 0, 0, 0, 40};
  EXPECT_EQ(parse(sack, false, true).sack_off, 0);
  tcp_options_received rx;
  rx.sack_ok = true;
  Parsed p = parse(sack, false, true, rx);
  EXPECT_EQ(p.sack_off, 22);
  auto s = segment(sack, 0);
  tcp_sack_block b[4];
  ASSERT_EQ(tcp_sack_blocks(absl::MakeConstSpan(s.data(), 40), p.sack_off, b), 2);
  EXPECT_EQ(b[0], (tcp_sack_block{10, 20}));
  EXPECT_EQ(b[1], (tcp_sack_block{30, 40}));
  // 2 + 7 is not 2 + 8n; 2 alone has no block.
  EXPECT_EQ(parse({5, 9, 0, 0, 0, 1, 0, 0, 0}, false, true, rx).sack_off, 0);
  EXPECT_EQ(parse({5, 2}, false, true, rx).sack_off, 0);
}

TEST(TcpParseOptions, MalformedLengthsStopTheParse) {
  tcp_options_received rx;
  rx.tstamp_ok = true;
  // A timestamp after a length-1 ("silly") option is never reached.
  EXPECT_FALSE(parse({30, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}, false, true, rx).rx.saw_tstamp);
  // An option whose length runs past the header stops the parse; the one before it counts.
  Parsed p = parse({8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 30, 9}, false, true, rx);
  EXPECT_TRUE(p.rx.saw_tstamp);
  EXPECT_FALSE(p.rx.saw_unknown);
  // A kind in the last byte, with no room for its length: the parse ends there.
  EXPECT_FALSE(parse({1, 1, 1, 30}, false, true, rx).rx.saw_unknown);
  // EOL ends the list: what follows is not looked at.
  EXPECT_FALSE(parse({0, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0}, false, true, rx).rx.saw_tstamp);
  // An unknown kind with a valid length is skipped and noted.
  p = parse({30, 4, 0, 0, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}, false, true, rx);
  EXPECT_TRUE(p.rx.saw_unknown);
  EXPECT_TRUE(p.rx.saw_tstamp);
}

}  // namespace
}  // namespace xmit
