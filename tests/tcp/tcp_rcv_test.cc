// tests/tcp/tcp_rcv_test.cc — the receive path: quick ACKs for the first segments, then an ACK every
// two full segments (or the 40 ms delayed ACK), immediate duplicate ACKs for out-of-order data and
// an immediate ACK when the hole fills, old data dropped, partial overlaps, the advertised window
// from free space with rcv_wscale 7, FIN as end of stream, MSG_PEEK, PAWS. 256 KiB receive buffer,
// peer MSS 1448; ACK fields relative to the peer's ISN. Window numbers: ALIGN(free, 128) >> 7.
#include <sys/socket.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stack/tcp/tcp_timer.h"
#include "tests/tcp/tcp_bed.h"

namespace xmit::testing_tcp {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Ack = TcpBed::AckField;

constexpr uint64_t kNow = 10'000'000;  // 10 s

void expect_stream(const std::vector<uint8_t>& got, uint32_t off) {
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], static_cast<uint8_t>(kPeerIsn + off + i)) << i;
}

// Past the quick-ACK start: ato 40 ms, data arriving back to back.
void steady(TcpBed& bed) {
  bed.tp.tcp_mstamp = kNow;
  bed.tp.icsk_ack.ato = TCP_ATO_MIN;
  bed.tp.icsk_ack.lrcvtime = kNow / 1000;
  bed.tp.icsk_ack.quick = 0;
}

// The first data segment starts the delayed-ACK engine in quick-ACK mode: min(16, rcv_wnd / (2 *
// rcv_mss)) = min(16, 262144 / 2896) = 16 quick ACKs; one is used. Window: 262144 - 1448 = 260696,
// ALIGN 128 -> 260736 >> 7 = 2037. The second: 259248 -> 259328 >> 7 = 2026.
TEST(TcpRcv, FirstSegmentsAckedAtOnce) {
  TcpBed bed;
  bed.enable_receive();
  bed.tp.tcp_mstamp = kNow;
  bed.data(0, 1448);
  EXPECT_THAT(bed.take_acks(), ElementsAre(Ack{1448, 2037}));
  EXPECT_EQ(bed.tp.icsk_ack.rcv_mss, 1448u);
  EXPECT_EQ(bed.tp.icsk_ack.quick, 15);
  EXPECT_EQ(bed.tp.icsk_ack.ato, TCP_ATO_MIN);
  bed.data(1448, 1448);
  EXPECT_THAT(bed.take_acks(), ElementsAre(Ack{2896, 2026}));
  EXPECT_EQ(bed.tp.icsk_ack.quick, 14);
}

// __tcp_ack_snd_check(): one full segment waits (delayed ACK armed at now + ato = 40 ms); the
// second makes rcv_nxt - rcv_wup > rcv_mss, and the ACK goes when the reader has the data
// (tcp_cleanup_rbuf(): "Once-per-two-segments ACK was not sent by tcp_input.c"). A fifth,
// odd segment is acked by the delayed-ACK timer at exactly +40 ms, which then doubles ato.
TEST(TcpRcv, AckEveryTwoFullSegmentsElseDelayed) {
  TcpBed bed;
  bed.enable_receive();
  steady(bed);
  std::vector<uint8_t> buf;
  for (uint32_t i = 0; i < 4; ++i) {
    bed.data(i * 1448, 1448);
    EXPECT_THAT(bed.take_acks(), IsEmpty()) << i;
    EXPECT_EQ(bed.read(&buf, 65536), 1448);
    expect_stream(buf, i * 1448);
    if (i % 2 == 0) {
      EXPECT_THAT(bed.take_acks(), IsEmpty()) << i;
      EXPECT_TRUE(bed.tp.icsk_delack_timer.pending);
      EXPECT_EQ(bed.tp.icsk_delack_timer.expires, kNow + 40'000);
    } else {
      EXPECT_THAT(bed.take_acks(), ElementsAre(Ack{(i + 1) * 1448, 2048})) << i;
      EXPECT_FALSE(bed.tp.icsk_delack_timer.pending);
    }
  }
  bed.data(4 * 1448, 1448);
  EXPECT_EQ(bed.read(&buf, 65536), 1448);
  EXPECT_THAT(bed.take_acks(), IsEmpty());
  auto run = [&](uint64_t t) {
    bed.tp.tcp_mstamp = t;
    tcp_timers_run(&bed.tp, [&](sk_buff* s) { return bed.xmit(s); }, nullptr);
  };
  run(kNow + 39'999);
  EXPECT_THAT(bed.take_acks(), IsEmpty());
  run(kNow + 40'000);
  EXPECT_THAT(bed.take_acks(), ElementsAre(Ack{5 * 1448, 2048}));
  EXPECT_EQ(bed.tp.icsk_ack.ato, 80u);  // "Delayed ACK missed: inflate ATO."
}

// Out of order: each segment beyond a hole is acked at once with the old ACK (the duplicate ACKs
// the sender counts), with an unchanged window (never shrunk: 262144 >> 7 = 2048); a copy of held
// data too; the segment filling the hole is acked at once (ICSK_ACK_NOW) for everything.
TEST(TcpRcv, OutOfOrderDupacksAndFill) {
  TcpBed bed;
  bed.enable_receive();
  steady(bed);
  bed.data(1448, 1448);
  bed.data(2896, 1448);
  bed.data(2896, 1448);
  EXPECT_THAT(bed.take_acks(), ElementsAre(Ack{0, 2048}, Ack{0, 2048}, Ack{0, 2048}));
  EXPECT_EQ(bed.tp.out_of_order_queue.qlen, 2u);
  EXPECT_EQ(bed.tp.rmem_alloc, 2896u);
  std::vector<uint8_t> buf;
  EXPECT_EQ(bed.read(&buf, 100), -EAGAIN);
  bed.data(0, 1448);
  EXPECT_THAT(bed.take_acks(), ElementsAre(Ack{4344, 2015}));  // 262144 - 4344 = 257800 -> 257920
  EXPECT_EQ(bed.tp.out_of_order_queue.qlen, 0u);
  EXPECT_EQ(bed.read(&buf, 65536), 4344);
  expect_stream(buf, 0);
  EXPECT_EQ(bed.tp.rmem_alloc, 0u);
}

// A held segment the new one covers is replaced; one that only overlaps is kept, and the reader
// gets every byte once.
TEST(TcpRcv, OverlapsReadOnce) {
  TcpBed bed;
  bed.enable_receive();
  steady(bed);
  bed.data(2000, 500);
  bed.data(2000, 1000);  // same start, covers: replaces
  bed.data(2500, 1000);  // overlaps the tail
  EXPECT_EQ(bed.tp.out_of_order_queue.qlen, 2u);
  bed.data(0, 1200);
  bed.data(1000, 1000);  // partial: seq < rcv_nxt < end_seq
  std::vector<uint8_t> buf;
  EXPECT_EQ(bed.read(&buf, 65536), 3500);
  expect_stream(buf, 0);
  EXPECT_EQ(bed.tp.rmem_alloc, 0u);
  EXPECT_TRUE(skb_queue_empty(bed.tp.receive_queue));
}

// Old data (a retransmission of what we have) is dropped and acked at once, in quick-ACK mode.
TEST(TcpRcv, DuplicateDroppedAndAcked) {
  TcpBed bed;
  bed.enable_receive();
  steady(bed);
  std::vector<uint8_t> buf;
  bed.data(0, 1000);
  EXPECT_EQ(bed.read(&buf, 65536), 1000);
  bed.take_acks();
  bed.data(0, 1000);
  EXPECT_THAT(bed.take_acks(), ElementsAre(Ack{1000, 2048}));
  EXPECT_EQ(bed.tp.icsk_ack.quick, 15);  // tcp_enter_quickack_mode(16), one used
  EXPECT_EQ(bed.read(&buf, 65536), -EAGAIN);
}

// FIN: the data, then 0 (end of stream) for every later read; the FIN takes one sequence number;
// CLOSE_WAIT's pingpong mode delays its ACK to the 40 ms timer.
TEST(TcpRcv, FinIsEndOfStream) {
  TcpBed bed;
  bed.enable_receive();
  bed.tp.tcp_mstamp = kNow;
  bed.data(0, 100, TCPHDR_ACK | TCPHDR_PSH | TCPHDR_FIN);
  EXPECT_THAT(bed.take_acks(), IsEmpty());
  EXPECT_TRUE(bed.tp.sk_shutdown & RCV_SHUTDOWN);
  EXPECT_EQ(bed.tp.rcv_nxt, kPeerIsn + 101);
  std::vector<uint8_t> buf;
  EXPECT_EQ(bed.read(&buf, 65536), 100);
  expect_stream(buf, 0);
  EXPECT_EQ(bed.read(&buf, 65536), 0);
  EXPECT_EQ(bed.read(&buf, 65536), 0);
  EXPECT_EQ(bed.tp.copied_seq, kPeerIsn + 101);
  bed.tp.tcp_mstamp = kNow + 40'000;
  tcp_timers_run(&bed.tp, [&](sk_buff* s) { return bed.xmit(s); }, nullptr);
  EXPECT_THAT(bed.take_acks(), ElementsAre(Ack{101, 2048}));
}

TEST(TcpRcv, PeekLeavesData) {
  TcpBed bed;
  bed.enable_receive();
  steady(bed);
  bed.data(0, 500);
  std::vector<uint8_t> buf;
  EXPECT_EQ(bed.read(&buf, 300, MSG_PEEK), 300);
  expect_stream(buf, 0);
  EXPECT_EQ(bed.read(&buf, 1000, MSG_PEEK), 500);
  EXPECT_EQ(bed.tp.copied_seq, kPeerIsn);
  EXPECT_EQ(bed.read(&buf, 200), 200);
  EXPECT_EQ(bed.read(&buf, 1000, MSG_PEEK), 300);
  expect_stream(buf, 200);
  EXPECT_EQ(bed.read(&buf, 1000), 300);
  EXPECT_EQ(bed.tp.rmem_alloc, 0u);
}

// PAWS (RFC 7323 §5): a TSval older than ts_recent by more than 1 is dropped and answered with a
// duplicate ACK; an equal one is taken, and ts_recent follows the in-order segment.
TEST(TcpRcv, PawsDropsOldTimestamps) {
  TcpBed bed;
  bed.enable_receive();
  steady(bed);
  bed.tp.rx_opt.ts_recent = 1000;
  bed.tp.ts_recent_stamp = kNow / 1000000;
  bed.data(0, 100, TCPHDR_ACK, 998);
  EXPECT_THAT(bed.take_acks(), ElementsAre(Ack{0, 2048}));
  std::vector<uint8_t> buf;
  EXPECT_EQ(bed.read(&buf, 1000), -EAGAIN);
  bed.data(0, 100, TCPHDR_ACK, 999);  // within TCP_PAWS_WINDOW
  EXPECT_EQ(bed.read(&buf, 1000), 100);
  bed.data(100, 100, TCPHDR_ACK, 1005);
  EXPECT_EQ(bed.tp.rx_opt.ts_recent, 1005u);
}

}  // namespace
}  // namespace xmit::testing_tcp
