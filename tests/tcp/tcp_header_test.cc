// tests/tcp/tcp_header_test.cc — the TCP header and options of __tcp_transmit_skb(), byte by byte:
// ports, seq, ack_seq, doff, flags, the scaled window, NOP,NOP,TS(10) and both checksum modes.
#include <arpa/inet.h>

#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "stack/tcp/tcp_options.h"
#include "stack/tcp/tcp_output.h"
#include "tests/tcp/tcp_bed.h"

namespace xmit::testing_tcp {
namespace {

// An skb as the write queue holds it: empty head with headroom, "hello" in a page fragment.
sk_buff* queued_skb(TcpBed& bed, uint32_t seq, uint8_t flags) {
  sk_buff* skb = bed.skbs->alloc_skb();
  skb_reserve(skb, kTcpHeadroom);
  uint8_t* page = bed.pages->alloc();
  std::memcpy(page, "hello", 5);
  EXPECT_EQ(skb_append_frag(skb, skb_frag_pool(bed.pages.get(), page, 5)), 0);
  tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  *tcb = tcp_skb_cb{.seq = seq, .end_seq = seq + 5, .tcp_flags = flags};
  tcp_set_skb_tso_segs(skb, 1448);
  return skb;
}

std::vector<uint8_t> linear(const sk_buff* skb) {
  std::vector<uint8_t> out(skb->len, 0xff);
  EXPECT_EQ(skb_copy_bits(skb, 0, out.data(), skb->len), 0);
  return out;
}

// RFC 1071 verification: pseudo-header plus segment sums to all ones.
bool csum_verifies(const tcp_sock& tp, const std::vector<uint8_t>& seg) {
  return csum_tcpudp_magic(tp.saddr, tp.daddr, static_cast<uint32_t>(seg.size()), IPPROTO_TCP,
                           csum_partial(seg.data(), seg.size(), 0)) == 0;
}

struct Captured {
  std::vector<uint8_t> bytes;
  uint8_t ip_summed = 0;
  uint16_t csum_start_off = 0;  // from the TCP header
  uint16_t csum_offset = 0;
};

Captured transmit(TcpBed& bed, sk_buff* skb) {
  Captured c;
  int rc = tcp_transmit_skb(&bed.tp, skb, [&](sk_buff* out) {
    c.bytes = linear(out);
    c.ip_summed = out->ip_summed;
    c.csum_start_off = static_cast<uint16_t>(out->csum_start - out->transport_header);
    c.csum_offset = out->csum_offset;
    EXPECT_EQ(out->data, skb_transport_header(out));
    kfree_skb(out);
    return 0;
  });
  EXPECT_EQ(rc, 0);
  return c;
}

TEST(TcpOptions, TimestampBlockIsNopNopTs) {
  tcp_sock tp;
  tp.rx_opt.tstamp_ok = true;
  tp.rx_opt.ts_recent = 0xdeadbeef;
  tp.tsoffset = 1000;
  sk_buff skb;
  TCP_SKB_CB(&skb)->sent_us = 123456789;  // 123456 ms
  tcp_out_options opts;
  EXPECT_EQ(tcp_established_options(&tp, &skb, &opts), 12u);
  uint8_t buf[16];
  std::memset(buf, 0xff, sizeof buf);
  tcp_options_write(buf, opts);
  // 124456 = 0x0001e628 (123456 + tsoffset 1000)
  const uint8_t want[16] = {1, 1, 8, 10, 0x00, 0x01, 0xe6, 0x28, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xff};
  EXPECT_EQ(0, std::memcmp(buf, want, sizeof want));
  // tcp_current_mss() asks without an skb: TSval 0, same length.
  EXPECT_EQ(tcp_established_options(&tp, nullptr, &opts), 12u);
  EXPECT_EQ(opts.tsval, 0u);
  tp.rx_opt.tstamp_ok = false;
  EXPECT_EQ(tcp_established_options(&tp, &skb, &opts), 0u);
}

// Established, timestamps, window scale 7, device checksum: 32-byte header.
TEST(TcpHeader, TimestampsPartialChecksum) {
  TcpBed bed;
  tcp_sock& tp = bed.tp;
  tp.rcv_nxt = 0x0a0b0c0d;
  tp.rx_opt.rcv_wscale = 7;
  tp.rx_opt.ts_recent = 0xdeadbeef;
  tp.tsoffset = 1000;
  tp.tcp_mstamp = 123456789;
  sk_buff* skb = queued_skb(bed, 0x01020304, kAckPsh);
  Captured c = transmit(bed, skb);
  // 64240 >> 7 = 501 = 0x01f5 (the kernel truncates, it does not round)
  const std::vector<uint8_t> hdr = {0x9c, 0x40, 0x13, 0x89,  // 40000 -> 5001
                                    0x01, 0x02, 0x03, 0x04,  // seq
                                    0x0a, 0x0b, 0x0c, 0x0d,  // ack_seq = rcv_nxt
                                    0x80, 0x18,              // doff 8, ACK|PSH
                                    0x01, 0xf5,              // window
                                    0x00, 0x00,              // check (compared below)
                                    0x00, 0x00,              // urg_ptr
                                    1, 1, 8, 10, 0x00, 0x01, 0xe6, 0x28, 0xde, 0xad, 0xbe, 0xef};
  ASSERT_EQ(c.bytes.size(), 37u);
  std::vector<uint8_t> got = c.bytes;
  uint16_t check;
  std::memcpy(&check, &got[16], 2);
  got[16] = got[17] = 0;
  EXPECT_EQ(std::vector<uint8_t>(got.begin(), got.begin() + 32), hdr);
  EXPECT_EQ(0, std::memcmp(&got[32], "hello", 5));
  // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, not complemented
  // (kernel: __tcp_v4_send_check(): th->check = ~tcp_v4_check(len, saddr, daddr, 0)).
  EXPECT_EQ(c.ip_summed, CHECKSUM_PARTIAL);
  EXPECT_EQ(c.csum_start_off, 0);
  EXPECT_EQ(c.csum_offset, 16);
  EXPECT_EQ(check, static_cast<sum16>(~csum_tcpudp_magic(tp.saddr, tp.daddr, 37, IPPROTO_TCP, 0)));
  // What the device then does gives a valid segment.
  sum16 fin = csum_fold(csum_partial(c.bytes.data(), c.bytes.size(), 0));
  std::memcpy(&c.bytes[16], &fin, 2);
  EXPECT_TRUE(csum_verifies(tp, c.bytes));
  // tcp_select_window() recorded what it offered.
  EXPECT_EQ(tp.rcv_wup, 0x0a0b0c0du);
  // The queued original is untouched: empty head, 5 bytes, still ours.
  EXPECT_EQ(skb->len, 5u);
  EXPECT_EQ(skb_headlen(skb), 0u);
  kfree_skb(skb);
}

// No timestamps, no scaling, software checksum: 20-byte header, window capped at 65535.
TEST(TcpHeader, PlainFullChecksum) {
  TcpBed bed;
  tcp_sock& tp = bed.tp;
  tp.rx_opt.tstamp_ok = false;
  tp.tcp_header_len = 20;
  tp.hw_csum = false;
  tp.rcv_nxt = 7;
  tp.rcv_wnd = 100000;
  sk_buff* skb = queued_skb(bed, 1, kAck);
  Captured c = transmit(bed, skb);
  ASSERT_EQ(c.bytes.size(), 25u);
  const std::vector<uint8_t> hdr = {0x9c, 0x40, 0x13, 0x89, 0, 0, 0, 1, 0, 0, 0, 7, 0x50, 0x10, 0xff, 0xff};
  EXPECT_EQ(std::vector<uint8_t>(c.bytes.begin(), c.bytes.begin() + 16), hdr);
  EXPECT_EQ(c.bytes[18], 0);
  EXPECT_EQ(c.bytes[19], 0);
  EXPECT_EQ(c.ip_summed, CHECKSUM_NONE);
  EXPECT_TRUE(csum_verifies(tp, c.bytes));
  kfree_skb(skb);
}

// RFC 7323 §2.2: the window of a SYN is never scaled — min(rcv_wnd, 65535) even with wscale 7.
TEST(TcpHeader, SynWindowUnscaled) {
  TcpBed bed;
  bed.tp.rx_opt.rcv_wscale = 7;
  bed.tp.rcv_wnd = 100000;
  sk_buff* skb = queued_skb(bed, 0, TCPHDR_SYN);
  Captured c = transmit(bed, skb);
  EXPECT_EQ(c.bytes[13], TCPHDR_SYN);
  EXPECT_EQ(c.bytes[14], 0xff);
  EXPECT_EQ(c.bytes[15], 0xff);
  kfree_skb(skb);
}

// tcp_select_window(): the cap is 65535 << wscale before the shift.
TEST(TcpWindow, Scaling) {
  tcp_sock tp;
  tp.rcv_wnd = 64240;
  EXPECT_EQ(tcp_select_window(&tp), 64240);
  tp.rcv_wnd = 6u << 20;  // 6 MiB with wscale 7: 49152
  tp.rx_opt.rcv_wscale = 7;
  EXPECT_EQ(tcp_select_window(&tp), 49152);
  tp.rcv_wnd = 16u << 20;  // 16 MiB > 65535 << 7: capped
  EXPECT_EQ(tcp_select_window(&tp), 65535);
}

// The view's parse contract: doff in [5, 15] words and within the buffer.
TEST(TcpHdrView, ParseChecksDoff) {
  uint8_t b[32] = {};
  b[12] = 0x80;  // doff 8: 32 bytes
  EXPECT_TRUE(TcpHdrView::parse(absl::MakeConstSpan(b, 32)).has_value());
  EXPECT_FALSE(TcpHdrView::parse(absl::MakeConstSpan(b, 31)).has_value());
  b[12] = 0x40;  // doff 4 < 5
  EXPECT_FALSE(TcpHdrView::parse(absl::MakeConstSpan(b, 32)).has_value());
  EXPECT_FALSE(TcpHdrView::parse(absl::MakeConstSpan(b, 19)).has_value());
  b[12] = 0x50;
  auto h = TcpHdrView::parse(absl::MakeConstSpan(b, 32));
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->options().size(), 0u);
}

}  // namespace
}  // namespace xmit::testing_tcp
