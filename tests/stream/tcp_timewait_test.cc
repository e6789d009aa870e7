// tests/stream/tcp_timewait_test.cc — TIME_WAIT as the kernel keeps it: a small tcp_timewait_sock
// in the stack's demux (tcp/tcp_timewait_sock.h) while the full socket goes to CLOSE (freed, or
// its fd's until close()); its ACKs, its 60 s expiry with the steering rule; an orphan's FIN_WAIT2
// as a timewait sock in substate FIN_WAIT2. Two stack instances on
// the in-memory link (tcp_socket_bed.h), injected clock.
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "stack/base/checksum.h"
#include "stack/wire/tcp.h"
#include "tests/stream/tcp_socket_bed.h"

#include <netinet/tcp.h>  // after the stack's headers (its macros rename their constants)

namespace xmit {
namespace {

using namespace testing_bed;  // NOLINT: the bed's fixture and helpers

class TcpTimeWaitTest : public TcpSocketTest {
 protected:
  // The client (a) closes first: a keeps the 4-tuple in TIME_WAIT, b's side is gone.
  be16 client_time_wait() {
    TcpSocket* c = nullptr;
    Socket* s = nullptr;
    connect_pair(&c, &s);
    const be16 port = local_port(c);
    c->put();
    pump();
    s->put();
    pump();
    listener->put();
    return port;
  }
  const tcp_timewait_sock* a_tw(be16 port) {
    std::lock_guard<StackMutex> g(a.tcp->mu());
    return a.tcp->twsk_lookup(kA, ntohs(port), kB, 7000);
  }
  // A segment from b's side of the 4-tuple straight into a's TCP receive path.
  void inject_to_a(be16 port, uint32_t seq, uint32_t ack, uint8_t flags) {
    uint8_t th[20] = {};
    store_be16(th, 7000);
    store_be16(th + 2, ntohs(port));
    store_be32(th + 4, seq);
    store_be32(th + 8, ack);
    th[12] = 5 << 4;
    th[13] = flags;
    store_be16(th + 14, 1000);
    const uint16_t check = csum_tcpudp_magic(kB, kA, sizeof th, IPPROTO_TCP, csum_partial(th, sizeof th, 0));
    std::memcpy(th + 16, &check, 2);
    std::lock_guard<StackMutex> g(a.tcp->mu());
    a.tcp->handler(RxFrame{}, kB, kA, absl::MakeConstSpan(th));
  }
  // a closes (an orphan) and b acknowledges its FIN (delayed up to 200 ms): a is in FIN_WAIT2.
  be16 client_fin_wait2(TcpSocket* c) {
    const be16 port = local_port(c);
    c->put();
    pump(250'000'000);
    return port;
  }
  // A new pair whose client is then closed into FIN_WAIT2 as above; *s is b's socket.
  be16 pair_in_fin_wait2(Socket** s) {
    TcpSocket* c = nullptr;
    connect_pair(&c, s);
    return client_fin_wait2(c);
  }
  // The clock jumps by `ns`, then 1 ms of pumping (the timers due run).
  void jump(uint64_t ns) {
    g_now += ns;
    pump(1'000'000);
  }
  // a's timewait sock of the 4-tuple is due within [lo_us, hi_us].
  void expect_deadline_within(be16 port, uint64_t lo_us, uint64_t hi_us) {
    ASSERT_NE(a_tw(port), nullptr);
    EXPECT_GE(a_tw(port)->tw_expires, lo_us);
    EXPECT_LE(a_tw(port)->tw_expires, hi_us);
  }
  // b closes its socket and the listener.
  void close_b(Socket* s) {
    s->put();
    listener->put();
    pump();
  }
  size_t a_conns() {
    std::lock_guard<StackMutex> g(a.tcp->mu());
    return a.tcp->conns().size();
  }
  // The TCP headers of the frames a sends in the next 2 ms, taken off b's device (b's stack does
  // not see them).
  std::vector<std::vector<uint8_t>> take_a_frames() {
    std::vector<std::vector<uint8_t>> got;
    for (int i = 0; i < 40; ++i) {  // 2 ms: a's neighbour entry may want confirming first
      g_now += 50'000;
      link->run(g_now);
      {
        std::lock_guard<StackMutex> g(a.udp->mu());
        a.udp->poll(g_now);
      }
      link->b().poll_rx(64, [&](const RxFrame& f) {
        const uint32_t l3 = 14, l4 = l3 + (f.data[l3] & 0xf) * 4u;
        if (f.len >= l4 + 20) got.emplace_back(f.data + l4, f.data + f.len);
        return false;
      });
    }
    return got;
  }
};

// The full socket is freed (an orphan's), a ~100-byte timewait sock holds the 4-tuple and its
// steering rule for TCP_TIMEWAIT_LEN; at expiry both go. Before: the whole TcpConn (~1.3 KB,
// without its heap) stayed for the 60 s.
TEST_F(TcpTimeWaitTest, TimeWaitKeepsASmallSockAndItsRuleUntilExpiry) {
  static_assert(sizeof(tcp_timewait_sock) <= 96);
  const be16 port = client_time_wait();
  EXPECT_EQ(a.tcp->tw_count(), 1u);
  EXPECT_TRUE(a.tcp->conns().empty());  // the full socket is gone
  ASSERT_NE(a_tw(port), nullptr);
  EXPECT_TRUE(a_tw(port)->tw_steered);
  EXPECT_EQ(link->a().flows().size(), 1u);  // the 4-tuple's rule, now the timewait sock's
  EXPECT_TRUE(a.tcp->has_conns());
  g_now += 59'000'000'000ull;
  pump(1'000'000);
  EXPECT_EQ(a.tcp->tw_count(), 1u);
  g_now += 1'000'000'000ull;
  pump(1'000'000);
  EXPECT_EQ(a.tcp->tw_count(), 0u);
  EXPECT_EQ(a_tw(port), nullptr);
  EXPECT_EQ(link->a().flows().size(), 0u);
  EXPECT_FALSE(a.tcp->has_conns());
}

// A retransmitted FIN (the peer lost our ACK) is acknowledged again — tw_snd_nxt, tw_rcv_nxt,
// the timestamp echoing tw_ts_recent — and re-arms the 60 s (inet_twsk_reschedule()).
TEST_F(TcpTimeWaitTest, RetransmittedFinInTimeWaitIsAckedAndRearms) {
  const be16 port = client_time_wait();
  ASSERT_NE(a_tw(port), nullptr);
  const tcp_timewait_sock tw = *a_tw(port);
  (void)take_a_frames();
  g_now += 10'000'000'000ull;
  const uint64_t fin_at_us = g_now / 1000;
  inject_to_a(port, tw.tw_rcv_nxt - 1, tw.tw_snd_nxt, TCPHDR_FIN | TCPHDR_ACK);
  const auto frames = take_a_frames();
  ASSERT_EQ(frames.size(), 1u);
  const std::vector<uint8_t>& th = frames[0];
  EXPECT_EQ(load_be16(th.data()), ntohs(port));
  EXPECT_EQ(load_be32(th.data() + 4), tw.tw_snd_nxt);
  EXPECT_EQ(load_be32(th.data() + 8), tw.tw_rcv_nxt);
  EXPECT_EQ(th[13], TCPHDR_ACK);
  ASSERT_EQ(th[12] >> 4, 8);  // NOP NOP TS
  EXPECT_EQ(load_be32(th.data() + 28), tw.tw_ts_recent);
  EXPECT_EQ(a_tw(port)->tw_expires, fin_at_us + 60'000'000);
  // Still there 60 s after the first deadline's 50: the FIN moved it.
  g_now += 55'000'000'000ull;
  pump(1'000'000);
  EXPECT_EQ(a.tcp->tw_count(), 1u);
  // An in-window RST ends it at once ("TIME_WAIT assassination", tcp_rfc1337 = 0).
  inject_to_a(port, tw.tw_rcv_nxt, 0, TCPHDR_RST);
  EXPECT_EQ(a.tcp->tw_count(), 0u);
  EXPECT_EQ(link->a().flows().size(), 0u);
}

// An orphan whose FIN the peer acknowledged (FIN_WAIT2) becomes, as the kernel's
// tcp_time_wait(sk, TCP_FIN_WAIT2, tcp_fin_time()), a timewait sock in substate FIN_WAIT2 with the
// 4-tuple's steering rule, and the full socket is freed; the peer never closing, it goes at
// tcp_fin_timeout (60 s) without a reset. Before: the full socket stayed the 60 s.
TEST_F(TcpTimeWaitTest, OrphanFinWait2IsATimewaitSockUntilFinTimeout) {
  Socket* s = nullptr;
  const uint64_t closed_us = g_now / 1000;
  const be16 port = pair_in_fin_wait2(&s);
  EXPECT_EQ(a_conns(), 0u);  // the full socket is gone
  ASSERT_NE(a_tw(port), nullptr);
  EXPECT_EQ(a_tw(port)->tw_substate, TCP_FIN_WAIT2);
  EXPECT_TRUE(a_tw(port)->tw_steered);
  const uint64_t deadline_us = a_tw(port)->tw_expires;
  EXPECT_GE(deadline_us, closed_us + 60'000'000);
  EXPECT_LE(deadline_us, g_now / 1000 + 60'000'000);
  g_now = (deadline_us - 1000) * 1000;
  EXPECT_TRUE(take_a_frames().empty());  // up to 1 ms past the deadline: nothing sent
  EXPECT_EQ(a.tcp->tw_count(), 0u);
  EXPECT_EQ(a_tw(port), nullptr);
  EXPECT_EQ(link->a().flows().size(), 0u);
  EXPECT_FALSE(a.tcp->has_conns());
  close_b(s);
}

// The peer's FIN in substate FIN_WAIT2 is acknowledged at once and makes it TIME_WAIT for
// TCP_TIMEWAIT_LEN (tcp_timewait_state_process(): "FIN arrived, enter true time-wait state").
TEST_F(TcpTimeWaitTest, PeerFinTurnsTheFinWait2SockIntoTimeWait) {
  Socket* s = nullptr;
  const be16 port = pair_in_fin_wait2(&s);
  ASSERT_NE(a_tw(port), nullptr);
  ASSERT_EQ(a_tw(port)->tw_substate, TCP_FIN_WAIT2);
  const tcp_timewait_sock tw = *a_tw(port);
  g_now += 10'000'000'000ull;
  const uint64_t fin_at_us = g_now / 1000;
  inject_to_a(port, tw.tw_rcv_nxt, tw.tw_snd_nxt, TCPHDR_FIN | TCPHDR_ACK);
  const auto frames = take_a_frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0][13], TCPHDR_ACK);
  EXPECT_EQ(load_be32(frames[0].data() + 4), tw.tw_snd_nxt);
  EXPECT_EQ(load_be32(frames[0].data() + 8), tw.tw_rcv_nxt + 1);
  ASSERT_NE(a_tw(port), nullptr);
  EXPECT_EQ(a_tw(port)->tw_substate, TCP_TIME_WAIT);
  EXPECT_EQ(a_tw(port)->tw_rcv_nxt, tw.tw_rcv_nxt + 1);
  EXPECT_EQ(a_tw(port)->tw_expires, fin_at_us + 60'000'000);
  close_b(s);
}

// b's FIN after an idle second (a closed first and is a timewait sock in FIN_WAIT2), by close() or
// shutdown(SHUT_WR): sent once, acknowledged once, and a's sock, now TIME_WAIT, stays. Before, both
// left the connection's clock (tcp_mstamp) at b's last received segment: the FIN's RTO was already
// due, its retransmission drew a second ACK, which b (CLOSE by then) answered with a reset that
// ended a's TIME_WAIT, as on a duplicating link. The bed itself duplicates nothing: every frame put
// on the wire reaches the other TCP once.
class TcpTimeWaitPeerFinTest : public TcpTimeWaitTest, public ::testing::WithParamInterface<bool> {};

TEST_P(TcpTimeWaitPeerFinTest, PeerFinAfterIdleIsSentOnce) {
  const bool by_shutdown = GetParam();
  Socket* s = nullptr;
  const be16 port = pair_in_fin_wait2(&s);
  g_now += 1'000'000'000;
  const SimPipeStats& ab = link->a().tx_stats();
  const SimPipeStats& ba = link->b().tx_stats();
  const uint64_t a_sent = ab.wire_frames, b_sent = ba.wire_frames;
  if (by_shutdown) {
    ASSERT_EQ(s->shutdown(SHUT_WR), 0);
  } else {
    s->put();
  }
  pump(10'000'000);
  EXPECT_EQ(ba.wire_frames - b_sent, 1u);  // the FIN (no retransmission, no reset)
  EXPECT_EQ(ab.wire_frames - a_sent, 1u);  // its ACK
  ASSERT_NE(a_tw(port), nullptr);
  EXPECT_EQ(a_tw(port)->tw_substate, TCP_TIME_WAIT);
  EXPECT_EQ(b.tcp->mib.InSegs, ab.wire_frames);
  EXPECT_EQ(a.tcp->mib.InSegs, ba.wire_frames);
  if (by_shutdown) s->put();
  listener->put();
  pump();
}

INSTANTIATE_TEST_SUITE_P(CloseOrShutdown, TcpTimeWaitPeerFinTest, ::testing::Bool());

// New data in substate FIN_WAIT2 ("If new data arrive after half-duplex close, reset."):
// TCP_TW_RST, the segment answered with a reset and the timewait sock freed.
TEST_F(TcpTimeWaitTest, DataInFinWait2IsResetAndEndsIt) {
  Socket* s = nullptr;
  const be16 port = pair_in_fin_wait2(&s);
  ASSERT_NE(a_tw(port), nullptr);
  ASSERT_EQ(send(s, "late", 4), 4);
  pump();
  EXPECT_EQ(a.tcp->tw_count(), 0u);
  EXPECT_EQ(link->a().flows().size(), 0u);
  int err = 0;
  socklen_t l = sizeof err;
  ASSERT_EQ(s->getsockopt(SOL_SOCKET, SO_ERROR, &err, &l), 0);
  EXPECT_EQ(err, EPIPE);  // tcp_reset() in CLOSE_WAIT
  close_b(s);
}

// TCP_LINGER2 beyond TCP_TIMEWAIT_LEN: the full socket waits the excess in the keepalive timer,
// then tcp_keepalive_timer() makes the timewait sock for the excess again (as the kernel's: 90 s
// waits 30 + 30); TCP_LINGER2 is at most TCP_FIN_TIMEOUT_MAX, 120 s (do_tcp_setsockopt()).
// {TCP_LINGER2, the excess in seconds}
class TcpTimeWaitLinger2Test : public TcpTimeWaitTest,
                               public ::testing::WithParamInterface<std::pair<int, uint64_t>> {};

TEST_P(TcpTimeWaitLinger2Test, BeyondTimeWaitLenWaitsInTheFullSocketFirst) {
  const auto [linger2, excess_s] = GetParam();
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  ASSERT_EQ(c->setsockopt(SOL_TCP, TCP_LINGER2, &linger2, sizeof linger2), 0);
  const be16 port = client_fin_wait2(c);
  EXPECT_EQ(a_conns(), 1u);
  EXPECT_EQ(a.tcp->tw_count(), 0u);
  jump(excess_s * 1'000'000'000ull);
  EXPECT_EQ(a_conns(), 0u);
  const uint64_t rest_us = excess_s * 1'000'000;  // tcp_time_wait(sk, TCP_FIN_WAIT2, tcp_fin_time() - TCP_TIMEWAIT_LEN)
  expect_deadline_within(port, g_now / 1000 + rest_us - 1'000'000, g_now / 1000 + rest_us);
  ASSERT_NE(a_tw(port), nullptr);
  EXPECT_EQ(a_tw(port)->tw_substate, TCP_FIN_WAIT2);
  jump(rest_us * 1000);
  EXPECT_EQ(a.tcp->tw_count(), 0u);
  close_b(s);
}

INSTANTIATE_TEST_SUITE_P(Linger2, TcpTimeWaitLinger2Test,
                         ::testing::Values(std::pair<int, uint64_t>{90, 30}, std::pair<int, uint64_t>{200, 60}));

// a with net.ipv4.tcp_fin_timeout 20 and net.ipv4.tcp_max_tw_buckets 1 (both read at start).
class TcpTimeWaitSysctlTest : public TcpTimeWaitTest {
 protected:
  TcpTimeWaitSysctlTest() {
    a.fin_timeout = 20;
    a.max_tw_buckets = 1;
  }
};

// tcp_fin_timeout sets the wait: 20 s.
TEST_F(TcpTimeWaitSysctlTest, FinTimeoutSysctlSetsTheWait) {
  Socket* s = nullptr;
  const uint64_t closed_us = g_now / 1000;
  const be16 port = pair_in_fin_wait2(&s);
  expect_deadline_within(port, closed_us + 20'000'000, g_now / 1000 + 20'000'000);
  jump(20'000'000'000ull);
  EXPECT_EQ(a.tcp->tw_count(), 0u);
  close_b(s);
}

// tcp_max_tw_buckets 1: with one timewait sock there, the next
// connection entering TIME_WAIT, or an orphan's FIN_WAIT2, just closes (inet_twsk_alloc() refuses;
// TcpExtTCPTimeWaitOverflow), its 4-tuple and steering rule free at once.
TEST_F(TcpTimeWaitSysctlTest, OverflowJustCloses) {
  const be16 p1 = client_time_wait();
  EXPECT_EQ(a.tcp->tw_count(), 1u);
  EXPECT_EQ(a.tcp->net_mib.TCPTimeWaitOverflow, 0u);
  const be16 p2 = client_time_wait();
  EXPECT_EQ(a.tcp->tw_count(), 1u);
  EXPECT_NE(a_tw(p1), nullptr);
  EXPECT_EQ(a_tw(p2), nullptr);
  EXPECT_EQ(a_conns(), 0u);
  EXPECT_EQ(a.tcp->net_mib.TCPTimeWaitOverflow, 1u);
  EXPECT_EQ(link->a().flows().size(), 1u);  // p1's
  Socket* s = nullptr;
  const be16 p3 = pair_in_fin_wait2(&s);
  EXPECT_EQ(a_tw(p3), nullptr);
  EXPECT_EQ(a_conns(), 0u);
  EXPECT_EQ(a.tcp->net_mib.TCPTimeWaitOverflow, 2u);
  EXPECT_EQ(link->a().flows().size(), 1u);
  close_b(s);
}

// The server keeps the fd of a connection that went to TIME_WAIT (it shut down first, then read
// the client's FIN): as the kernel's socket after tcp_time_wait() -> tcp_done(), it is CLOSE
// (TCP_INFO), recv gives EOF, send EPIPE, shutdown and getpeername ENOTCONN (getsockname its
// address), poll POLLHUP|POLLIN; the 4-tuple is
// the timewait sock's, which outlives the close().
TEST_F(TcpTimeWaitTest, AnOpenFdSeesCloseAfterTimeWait) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  ASSERT_EQ(send(c, "hi", 2), 2);
  ASSERT_EQ(s->shutdown(SHUT_WR), 0);
  bool eof = false;
  EXPECT_TRUE(read_all(c, 1, &eof).empty());
  EXPECT_TRUE(eof);
  c->put();  // the client's FIN: the server goes FIN_WAIT2 -> TIME_WAIT
  pump();
  EXPECT_EQ(b.tcp->tw_count(), 1u);
  tcp_info ti{};
  socklen_t l = sizeof ti;
  ASSERT_EQ(s->getsockopt(SOL_TCP, TCP_INFO, &ti, &l), 0);
  EXPECT_EQ(ti.tcpi_state, TCP_CLOSE);
  eof = false;
  EXPECT_EQ(read_all(s, 3, &eof), (std::vector<uint8_t>{'h', 'i'}));  // unread data stays readable
  EXPECT_TRUE(eof);
  EXPECT_EQ(send(s, "x", 1, MSG_NOSIGNAL), -EPIPE);
  EXPECT_EQ(s->shutdown(SHUT_RDWR), -ENOTCONN);
  sockaddr_in name{};
  socklen_t nlen = sizeof name;
  EXPECT_EQ(s->getname(reinterpret_cast<sockaddr*>(&name), &nlen, true), -ENOTCONN);  // inet_getname()
  ASSERT_EQ(s->getname(reinterpret_cast<sockaddr*>(&name), &nlen, false), 0);          // the local name stays
  EXPECT_EQ(name.sin_addr.s_addr, kB);
  EXPECT_EQ(ntohs(name.sin_port), 7000);
  int wfd;
  const int mask = s->poll_mask(&wfd);
  EXPECT_TRUE(mask & POLLHUP);
  EXPECT_TRUE(mask & POLLIN);
  s->put();
  listener->put();
  pump();
  EXPECT_TRUE(b.tcp->conns().empty());
  EXPECT_EQ(b.tcp->tw_count(), 1u);
}

// The heap a churning server's TIME_WAITs hold (it closes first, as nginx with Connection:
// close): N connections, each answered and closed by b, measured with mallinfo2() (skipped where
// the allocator keeps no statistics: sanitizer builds). A timewait sock plus its ehash entry and
// none of the full socket: under 256 bytes each (the whole TcpConn held ~1.4 KB). XMIT_TW_N sets N.
// A 10 µs link: 20 000 connections take ~12 s of the clock, all within one TIME_WAIT period.
class TcpTimeWaitChurnTest : public TcpTimeWaitTest {
 protected:
  TcpTimeWaitChurnTest() { latency_ns = 10'000; }
};
TEST_F(TcpTimeWaitChurnTest, ServerChurnHeapPerTimeWait) {
  const char* env = std::getenv("XMIT_TW_N");
  const int n = env != nullptr ? std::atoi(env) : 1000;
  // Two ports: a's connect() takes the 14116 ports of one parity first, after which the 4-tuples
  // (and so b's TIME_WAITs, TCP_TW_SYN) would come round again on one port.
  listen_on_b(7001);
  TcpSocket* const listener2 = listener;
  listen_on_b(7000);
  auto churn = [&](int count) {
    for (int i = 0; i < count; ++i) {
      TcpSocket* c = connect_from_a(static_cast<uint16_t>(7000 + (i & 1)));
      TcpSocket* l = (i & 1) ? listener2 : listener;
      Socket* s = nullptr;
      for (int k = 0; k < 100 && s == nullptr; ++k) {
        pump(50'000);
        (void)l->accept(&s, nullptr, nullptr, SOCK_NONBLOCK);
      }
      ASSERT_NE(s, nullptr) << i;
      ASSERT_EQ(send(s, "response", 8), 8);
      s->put();  // the server closes first: its side goes to TIME_WAIT when c's FIN comes
      EXPECT_EQ(read_all(c, 9).size(), 8u);
      c->put();
      pump(200'000);
    }
  };
  churn(20);  // the pools' and tables' first growth
  g_now += 61'000'000'000ull;
  pump(100'000);
  ASSERT_EQ(b.tcp->tw_count(), 0u);
  const size_t before = mallinfo2().uordblks;
  churn(n);
  const size_t after = mallinfo2().uordblks;
  EXPECT_EQ(b.tcp->tw_count(), static_cast<size_t>(n));
  listener->put();
  listener2->put();
  if (after == before) GTEST_SKIP() << "no heap statistics here";
  const double per = (static_cast<double>(after) - static_cast<double>(before)) / n;
  std::fprintf(stderr, "%d TIME_WAIT: %zu bytes of heap, %.0f each; sizeof(TcpConn) %zu, sizeof(tcp_timewait_sock) %zu\n",
               n, after - before, per, sizeof(TcpConn), sizeof(tcp_timewait_sock));
  EXPECT_LE(per, 256.0);
}

}  // namespace
}  // namespace xmit
