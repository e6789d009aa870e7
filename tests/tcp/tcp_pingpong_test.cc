// tests/tcp/tcp_pingpong_test.cc — interactive (pingpong) mode of the delayed-ACK engine between two
// connected sockets: a reply sent within ato of the data it answers counts toward it
// (tcp_event_data_sent(), net.ipv4.tcp_pingpong_thresh = 1 by default), and in it ACKs wait for the
// next request or reply to ride on instead of going alone (__tcp_ack_snd_check(),
// tcp_cleanup_rbuf()); setsockopt(TCP_QUICKACK) enters and leaves it (__tcp_sock_set_quickack()).
#include "gtest/gtest.h"
#include "stack/tcp/tcp_output_ack.h"
#include "stack/tcp/tcp_recvmsg.h"
#include "tests/tcp/tcp_conn_bed.h"

namespace xmit::testing_tcp {
namespace {

constexpr uint8_t kAck = TCPHDR_ACK;

int pure_acks(const std::vector<WireSeg>& segs, int from) {
  int n = 0;
  for (const WireSeg& s : segs) n += s.from == from && s.payload == 0 && s.flags == kAck;
  return n;
}

// One request/response: the client sends, the server reads and answers, the client reads.
void transaction(ConnBed& bed, tcp_sock* c, tcp_sock* s) {
  ASSERT_EQ(bed.send(c, 1), 1);
  bed.run();
  ASSERT_EQ(bed.recv(s, 1), 1);
  bed.run();
  ASSERT_EQ(bed.send(s, 1), 1);
  bed.run();
  ASSERT_EQ(bed.recv(c, 1), 1);
  bed.run();
  bed.advance(100);  // 100 µs between transactions: well inside ato (40 ms)
}

// The first exchange is acknowledged at once (quick-ACK mode for the first data each side gets);
// from the second on, every ACK rides on data, as between two kernel sockets (a kernel client
// under request/response sends no pure ACKs at all past the first: tcpdump on the bed).
TEST(TcpPingpong, RequestResponseAcksRideOnData) {
  ConnBed bed;
  auto [c, s] = bed.connected_pair();
  transaction(bed, c, s);
  EXPECT_EQ(pure_acks(bed.log, 0), 1);  // the client's ACK of the first reply
  EXPECT_EQ(pure_acks(bed.log, 1), 1);  // the server's ACK of the first request
  bed.take();
  for (int i = 0; i < 50; ++i) transaction(bed, c, s);
  const auto segs = bed.take();
  EXPECT_EQ(segs.size(), 100u);
  EXPECT_EQ(pure_acks(segs, 0), 0);
  EXPECT_EQ(pure_acks(segs, 1), 0);
  EXPECT_TRUE(inet_csk_in_pingpong_mode(c));
  EXPECT_TRUE(inet_csk_in_pingpong_mode(s));
  // A reply that does not come: the delayed ACK fires (at most 200 ms in pingpong) and, missed,
  // leaves pingpong mode (tcp_delack_timer_handler()).
  bed.advance(200'000);
  const auto late = bed.take();
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].from, 0);
  EXPECT_EQ(late[0].ack, c->rcv_nxt);
  EXPECT_FALSE(inet_csk_in_pingpong_mode(c));
}

// A reply later than ato does not count: a client that answers after 50 ms stays out of pingpong
// mode, and its ACKs go alone.
TEST(TcpPingpong, SlowRepliesDoNotCount) {
  ConnBed bed;
  auto [c, s] = bed.connected_pair();
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(bed.send(c, 1), 1);
    bed.run();
    ASSERT_EQ(bed.recv(s, 1), 1);
    ASSERT_EQ(bed.send(s, 1), 1);
    bed.run();
    ASSERT_EQ(bed.recv(c, 1), 1);
    bed.run();
    bed.advance(50'000);  // past the ato (40 ms) and the delayed ACK's timer
  }
  EXPECT_FALSE(inet_csk_in_pingpong_mode(c));
  EXPECT_GE(pure_acks(bed.take(), 0), 4);
}

// TCP_QUICKACK 0 enters pingpong mode on a fresh connection: the first request's ACK is delayed;
// TCP_QUICKACK 1 with an ACK scheduled (and the data read) sends it now and leaves pingpong mode.
TEST(TcpPingpong, QuickackOption) {
  ConnBed bed;
  auto [c, s] = bed.connected_pair();
  tcp_sock_set_quickack(s, 0, bed.xmit_fn(1));
  EXPECT_TRUE(inet_csk_in_pingpong_mode(s));
  ASSERT_EQ(bed.send(c, 1), 1);
  bed.run();
  ASSERT_EQ(bed.recv(s, 1), 1);  // the read does not send it either (tcp_cleanup_rbuf() in pingpong)
  EXPECT_EQ(pure_acks(bed.take(), 1), 0);  // held for a reply
  EXPECT_TRUE(inet_csk_ack_scheduled(s));
  tcp_sock_set_quickack(s, 1, bed.xmit_fn(1));
  const auto segs = bed.take();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].from, 1);
  EXPECT_EQ(segs[0].ack, s->rcv_nxt);
  EXPECT_FALSE(inet_csk_in_pingpong_mode(s));
}

}  // namespace
}  // namespace xmit::testing_tcp
