// tests/tcp/tcp_alloc_test.cc — no operator new on the send path: tcp_sendmsg_locked() through
// tcp_write_xmit() and the header build, for small (Nagle/NODELAY) and multi-segment (GSO) sends;
// and none on the receive path: tcp_rcv_established() with in-order and out-of-order data and
// ACKs of our data, the ACKs it sends, tcp_recvmsg(), and an RTO retransmission.
#include <sys/socket.h>

#include "gtest/gtest.h"
#include "stack/tcp/tcp_timer.h"
#include "tests/stack/count_new.h"
#include "tests/tcp/tcp_bed.h"

namespace xmit::testing_tcp {
namespace {

TEST(TcpAlloc, SendPathDoesNotAllocate) {
  TcpBed bed;
  bed.nodelay(true);
  static uint8_t data[20000];
  size_t sent_segments = 0;
  auto xmit = [&](sk_buff* skb) {
    ++sent_segments;
    kfree_skb(skb);
    return 0;
  };
  auto round = [&](size_t n, int flags) {
    EXPECT_EQ(tcp_sendmsg_locked(&bed.tp, data, n, flags, bed.mtu, xmit), static_cast<int>(n));
    bed.ack_all();
  };
  round(100, 0);  // warm-up
  size_t before = testing_support::operator_new_calls();
  for (int i = 0; i < 100; ++i) {
    round(100, 0);
    round(20000, 0);
    round(300, MSG_MORE);
    round(1, 0);
  }
  EXPECT_EQ(testing_support::operator_new_calls() - before, 0u);
  EXPECT_GT(sent_segments, 300u);
}

TEST(TcpAlloc, ReceiveAckAndTimerPathsDoNotAllocate) {
  TcpBed bed;
  bed.nodelay(true);
  bed.enable_receive();
  bed.tp.tcp_mstamp = 1'000'000;
  static uint8_t data[3000];
  static uint8_t out[65536];
  size_t sent_segments = 0;
  auto xmit = [&](sk_buff* skb) {
    ++sent_segments;
    kfree_skb(skb);
    return 0;
  };
  uint32_t off = 0;
  auto in = [&](uint32_t seq_off, uint32_t len) {  // a data segment acking all we sent
    sk_buff* skb = bed.incoming({.ack_rel = bed.tp.snd_nxt - kIsn, .payload = len, .seq = kPeerIsn + seq_off});
    tcp_rcv_established(&bed.tp, skb, bed.mtu, xmit);
  };
  auto round = [&]() {
    EXPECT_EQ(tcp_sendmsg_locked(&bed.tp, data, sizeof(data), 0, bed.mtu, xmit), 3000);
    in(off + 1448, 1448);  // out of order: held, duplicate ACK
    in(off, 1448);         // fills the hole
    EXPECT_EQ(tcp_recvmsg(&bed.tp, out, sizeof(out), 0, xmit), 2896);
    off += 2896;
    EXPECT_EQ(tcp_sendmsg_locked(&bed.tp, data, 100, 0, bed.mtu, xmit), 100);
    bed.tp.tcp_mstamp += bed.tp.icsk_rto;  // the RTO fires for the 100 bytes
    tcp_timers_run(&bed.tp, xmit, nullptr);
    in(off, 0);  // a pure ACK of everything
    bed.tp.tcp_mstamp += 1000;
  };
  round();  // warm-up
  size_t before = testing_support::operator_new_calls();
  for (int i = 0; i < 100; ++i) round();
  EXPECT_EQ(testing_support::operator_new_calls() - before, 0u);
  EXPECT_EQ(bed.tp.packets_out, 0u);
  EXPECT_GT(bed.tp.icsk_backoff, 0);  // the RTO did fire (and no RTT sample undid its backoff)
  EXPECT_GT(sent_segments, 500u);
}

}  // namespace
}  // namespace xmit::testing_tcp
