// tests/stream/tcp_info_test.cc — getsockopt(TCP_INFO) (stack/tcp/tcp_info.h) on two stack
// instances over the in-memory link: the counters tcp_get_info() reports, after a transfer that
// lost segments, against what the test sent and what the link dropped.
#include "stack/tcp/tcp_info.h"
#include "tests/stream/tcp_socket_bed.h"

#include <netinet/tcp.h>  // after the stack's headers (its macros rename their constants)

namespace xmit {
namespace {

using namespace testing_bed;  // NOLINT: the bed's fixture and helpers

class TcpInfoTest : public TcpSocketTest {
 protected:
  TcpInfoTest() {
    latency_ns = 200'000;
    cfg.faults_ab.drop = 0.02;  // a's segments to b: some lost (the seed spares the handshake)
  }
  static tcp_info_kernel info(Socket* s) {
    tcp_info_kernel ti{};
    socklen_t l = sizeof ti;
    EXPECT_EQ(s->getsockopt(SOL_TCP, TCP_INFO, &ti, &l), 0);
    EXPECT_EQ(l, 280u);  // Linux 6.18's struct tcp_info
    return ti;
  }
};

// The client sends 300 KB over the lossy direction, the server answers 20 KB over the clean one;
// once everything is acknowledged (a quiet point) the two ends' counters agree with each other and
// with the link: every byte acked once (plus the SYN's), every segment the client sent either
// counted in by the server or dropped by the link, payload sent = written + retransmitted.
TEST_F(TcpInfoTest, CountersAfterATransferWithLosses) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  const uint64_t t0 = g_now;
  const tcp_info_kernel c0 = info(c);
  EXPECT_EQ(c0.tcpi_bytes_acked, 1u);  // the SYN (tcp_snd_una_update() in tcp_ack())
  EXPECT_EQ(c0.tcpi_segs_out, 2u);     // SYN, ACK
  EXPECT_EQ(c0.tcpi_segs_in, 1u);      // SYN-ACK
  const tcp_info_kernel s0 = info(s);
  EXPECT_EQ(s0.tcpi_segs_in, 2u);  // SYN (tcp_create_openreq_child()), ACK
  EXPECT_EQ(s0.tcpi_segs_out, 0u);  // the SYN-ACK went out of the listener
  EXPECT_EQ(c0.tcpi_delivered, 1u);
  EXPECT_EQ(c0.tcpi_busy_time, 0u);  // no data yet (the SYN is not in the write queue)
  EXPECT_EQ(s0.tcpi_delivered, 1u);
  EXPECT_EQ(s0.tcpi_bytes_acked, 0u);
  constexpr size_t kUp = 300'000, kDown = 20'000;
  std::vector<uint8_t> up(kUp, 1), down(kDown, 2);
  size_t sent = 0;
  std::vector<uint8_t> got;
  for (int i = 0; i < 2000 && (sent < kUp || got.size() < kUp); ++i) {
    if (sent < kUp) {
      const ssize_t r = send(c, up.data() + sent, kUp - sent);
      if (r > 0) sent += static_cast<size_t>(r);
    }
    uint8_t buf[65536];
    const ssize_t r = s->recvmsg(msg(buf, sizeof buf), 0);
    if (r > 0) got.insert(got.end(), buf, buf + r);
    pump(200'000);
  }
  ASSERT_EQ(got.size(), kUp);
  ASSERT_EQ(send(s, down.data(), kDown), static_cast<ssize_t>(kDown));
  ASSERT_EQ(read_all(c, kDown).size(), kDown);
  const uint64_t elapsed_us = (g_now - t0) / 1000;
  pump(1'000'000'000);  // everything acknowledged, no frame on the wire
  ASSERT_EQ(link->in_flight(), 0u);
  const SimPipeStats& ab = link->a().tx_stats();
  ASSERT_GT(ab.dropped, 0u);
  ASSERT_EQ(link->b().tx_stats().dropped, 0u);

  const tcp_info_kernel ci = info(c), si = info(s);
  EXPECT_EQ(ci.tcpi_state, TCP_ESTABLISHED);
  EXPECT_EQ(ci.tcpi_unacked, 0u);
  EXPECT_EQ(ci.tcpi_bytes_acked, kUp + 1);
  EXPECT_EQ(si.tcpi_bytes_acked, kDown);  // a child's snd_una starts past its SYN-ACK
  EXPECT_EQ(si.tcpi_bytes_received, kUp);
  EXPECT_EQ(ci.tcpi_bytes_received, kDown);
  EXPECT_EQ(si.tcpi_bytes_sent, kDown);
  EXPECT_EQ(si.tcpi_bytes_retrans, 0u);
  EXPECT_GT(ci.tcpi_total_retrans, 0u);
  EXPECT_GT(ci.tcpi_bytes_retrans, 0u);
  EXPECT_LE(ci.tcpi_bytes_retrans, uint64_t{ci.tcpi_total_retrans} * ci.tcpi_snd_mss);
  EXPECT_EQ(ci.tcpi_bytes_sent, kUp + ci.tcpi_bytes_retrans);
  // Every segment a sent reached b or was dropped on the way; b lost none on its way back.
  EXPECT_EQ(ci.tcpi_segs_out, si.tcpi_segs_in + ab.dropped);
  EXPECT_EQ(si.tcpi_segs_out + 1, ci.tcpi_segs_in);  // the SYN-ACK is the listener's (as the kernel's)
  EXPECT_LE(si.tcpi_data_segs_in, ci.tcpi_data_segs_out);
  EXPECT_GE(si.tcpi_data_segs_in + ab.dropped, ci.tcpi_data_segs_out);
  EXPECT_EQ(ci.tcpi_data_segs_in, si.tcpi_data_segs_out);
  // Full-sized segments, the retransmissions on top.
  const uint32_t mss = ci.tcpi_snd_mss;
  EXPECT_EQ(ci.tcpi_data_segs_out, (kUp + mss - 1) / mss + ci.tcpi_total_retrans);
  // Delivered: the SYN and every data segment, once (tcp_clean_rtx_queue(), sacktag).
  EXPECT_EQ(ci.tcpi_delivered, 1 + (kUp + mss - 1) / mss);
  EXPECT_EQ(si.tcpi_delivered, 1 + (kDown + mss - 1) / mss);  // the SYN-ACK counted at the final ACK
  EXPECT_GT(si.tcpi_rcv_ooopack, 0u);  // the segments after a lost one
  EXPECT_EQ(ci.tcpi_rcv_ooopack, 0u);
  // RTT: two wire latencies and more (the stacks run every 50 µs).
  EXPECT_GE(ci.tcpi_min_rtt, 2 * latency_ns / 1000);
  EXPECT_GE(ci.tcpi_rtt, ci.tcpi_min_rtt);
  EXPECT_GT(ci.tcpi_rttvar, 0u);
  EXPECT_EQ(ci.tcpi_notsent_bytes, 0u);
  EXPECT_EQ(ci.tcpi_snd_wnd, si.tcpi_rcv_wnd);
  // Busy (tcp_chrono_*): from the first write until the last ACK, in whole ms, within the
  // transfer's time; nothing since (the quiet second is not counted).
  EXPECT_GE(ci.tcpi_busy_time, 1000u);
  EXPECT_LT(ci.tcpi_busy_time, elapsed_us);
  EXPECT_EQ(ci.tcpi_busy_time % 1000, 0u);
  EXPECT_GT(si.tcpi_busy_time, 0u);
  EXPECT_EQ(info(c).tcpi_busy_time, ci.tcpi_busy_time);
  // The quiet second: times since the last data and ACK, in ms.
  EXPECT_GE(ci.tcpi_last_data_sent, 999u);
  EXPECT_GE(ci.tcpi_last_ack_recv, 999u);
  EXPECT_GE(si.tcpi_last_data_recv, 999u);
  c->put();
  s->put();
  listener->put();
}

// tcpi_rcv_space is rcvq_space.space as tcp_init_buffer_space() set it, not the window offered
// now: a receiver that does not read keeps it while its window closes.
TEST_F(TcpInfoTest, RcvSpaceIsSetOnceNotTheWindowNow) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  const tcp_info_kernel c0 = info(c), s0 = info(s);
  // TCP_INIT_CWND * advmss at tcp_init_transfer(): the client's advmss has lost the timestamp
  // option's 12 bytes by then (tcp_rcv_synsent_state_process()), the child's not yet (the kernel's
  // tcp_rcv_state_process() cuts it after tcp_init_transfer()).
  EXPECT_EQ(c0.tcpi_rcv_space, 10 * c0.tcpi_advmss);
  EXPECT_EQ(s0.tcpi_rcv_space, 10 * (s0.tcpi_advmss + 12));
  std::vector<uint8_t> up(4'000'000, 3);
  size_t sent = 0;
  for (int i = 0; i < 400 && sent < up.size(); ++i) {  // until the unread bytes close the window
    const ssize_t r = send(c, up.data() + sent, up.size() - sent);
    if (r > 0) sent += static_cast<size_t>(r);
    pump(2'000'000);
  }
  const tcp_info_kernel si = info(s);
  EXPECT_LT(si.tcpi_rcv_wnd, s0.tcpi_rcv_space);  // closed (or nearly) by now
  EXPECT_EQ(si.tcpi_rcv_space, s0.tcpi_rcv_space);
  c->put();
  s->put();
  listener->put();
}

// A listener answers the aliased fields only: tcpi_unacked the children ready for accept(),
// tcpi_sacked the backlog.
TEST_F(TcpInfoTest, ListenerAnswersItsQueue) {
  listen_on_b();
  TcpSocket* c = connect_from_a();
  pump(2'000'000 + 4 * latency_ns);
  const tcp_info_kernel li = info(listener);
  EXPECT_EQ(li.tcpi_state, TCP_LISTEN);
  EXPECT_EQ(li.tcpi_unacked, 1u);
  EXPECT_EQ(li.tcpi_sacked, 16u);
  EXPECT_EQ(li.tcpi_segs_in, 0u);
  c->put();
  listener->put();
}

}  // namespace
}  // namespace xmit
