// tests/tcp/tcp_close_test.cc — closing: every FIN order (tcp_close_state(), tcp_fin(),
// tcp_rcv_state_process()'s step 5), TIME_WAIT and the orphan's FIN_WAIT2 timeout, resets sent
// (unread data, SO_LINGER 0, data after close) and received in each state (tcp_reset()).
#include <poll.h>
#include <sys/socket.h>

#include "gtest/gtest.h"
#include "tests/tcp/tcp_conn_bed.h"

namespace xmit::testing_tcp {
namespace {

constexpr uint64_t TCP_DELACK_MAX_US = 200'000;
constexpr uint8_t kAck = TCPHDR_ACK, kFinAck = TCPHDR_FIN | TCPHDR_ACK, kRstAck = TCPHDR_RST | TCPHDR_ACK,
                  kRst = TCPHDR_RST;

std::vector<uint8_t> flags_of(const std::vector<WireSeg>& v) {
  std::vector<uint8_t> f;
  for (const WireSeg& s : v) f.push_back(s.flags);
  return f;
}

// Client closes first: FIN_WAIT1 -> (ACK) FIN_WAIT2 -> (FIN) TIME_WAIT -> 60 s -> CLOSE; the server
// CLOSE_WAIT (EOF, POLLIN|POLLRDHUP) -> close() -> LAST_ACK -> (ACK) CLOSE. done() once each.
TEST(TcpClose, ActiveThenPassive) {
  ConnBed bed;
  auto [c, s] = bed.connected_pair();
  bed.close(c);
  EXPECT_EQ(c->sk_state, TCP_FIN_WAIT1);
  EXPECT_TRUE(c->sock_dead);
  bed.run();
  // The FIN puts the server in pingpong mode: its ACK is delayed (tcp_fin(), __tcp_ack_snd_check()).
  EXPECT_EQ(c->sk_state, TCP_FIN_WAIT1);
  bed.advance(TCP_DELACK_MAX_US);
  EXPECT_EQ(c->sk_state, TCP_FIN_WAIT2);
  EXPECT_EQ(s->sk_state, TCP_CLOSE_WAIT);
  EXPECT_EQ(flags_of(bed.take()), (std::vector<uint8_t>{kFinAck, kAck}));
  EXPECT_EQ(bed.recv(s, 100), 0);  // end of stream
  EXPECT_EQ(tcp_poll(s) & (POLLIN | POLLRDHUP | POLLHUP | POLLOUT), POLLIN | POLLRDHUP | POLLOUT);
  bed.close(s);
  EXPECT_EQ(s->sk_state, TCP_LAST_ACK);
  bed.run();
  EXPECT_EQ(flags_of(bed.take()), (std::vector<uint8_t>{kFinAck, kAck}));
  EXPECT_EQ(s->sk_state, TCP_CLOSE);
  EXPECT_EQ(bed.h[1].done_calls, 1);
  EXPECT_EQ(s->sk_err, 0);
  EXPECT_EQ(c->sk_state, TCP_TIME_WAIT);
  const uint64_t tw_start = bed.now;
  bed.advance(59'999'000);
  EXPECT_EQ(c->sk_state, TCP_TIME_WAIT);
  EXPECT_EQ(bed.h[0].done_calls, 0);
  bed.advance(1'000);
  EXPECT_EQ(c->sk_state, TCP_CLOSE);
  EXPECT_EQ(bed.h[0].done_calls, 1);
  EXPECT_EQ(bed.now - tw_start, TCP_TIMEWAIT_LEN_US);
  EXPECT_TRUE(bed.log.empty());  // TIME_WAIT ends quietly
}

// Both close before either FIN arrives: FIN_WAIT1 -> (FIN) CLOSING with an ACK -> (ACK) TIME_WAIT.
TEST(TcpClose, Simultaneous) {
  ConnBed bed;
  auto [c, s] = bed.connected_pair();
  bed.close(c);
  bed.close(s);
  EXPECT_EQ(c->sk_state, TCP_FIN_WAIT1);
  EXPECT_EQ(s->sk_state, TCP_FIN_WAIT1);
  // Deliver the two FINs only, then look.
  bed.tick();
  auto to_s = std::move(bed.wire[1].front());
  bed.wire[1].pop_front();
  auto to_c = std::move(bed.wire[0].front());
  bed.wire[0].pop_front();
  bed.deliver(1, to_s);
  bed.deliver(0, to_c);
  EXPECT_EQ(c->sk_state, TCP_CLOSING);
  EXPECT_EQ(s->sk_state, TCP_CLOSING);
  bed.run();
  EXPECT_EQ(c->sk_state, TCP_TIME_WAIT);
  EXPECT_EQ(s->sk_state, TCP_TIME_WAIT);
  EXPECT_EQ(flags_of(bed.take()), (std::vector<uint8_t>{kFinAck, kFinAck, kAck, kAck}));
  bed.advance(TCP_TIMEWAIT_LEN_US);
  EXPECT_EQ(bed.h[0].done_calls, 1);
  EXPECT_EQ(bed.h[1].done_calls, 1);
}

// An orphan in FIN_WAIT2 whose peer never closes is dropped after tcp_fin_timeout (60 s),
// without a reset; shutdown(SHUT_WR) without close() waits in FIN_WAIT2 for good, still reading.
TEST(TcpClose, Finwait2OrphanTimesOutButHalfCloseWaits) {
  ConnBed bed;
  auto [c, s] = bed.connected_pair();
  bed.close(c);
  bed.run();
  bed.advance(TCP_DELACK_MAX_US);
  EXPECT_EQ(c->sk_state, TCP_FIN_WAIT2);
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 2u);
  const uint64_t acked_at = segs[1].at_us;  // the server's delayed ACK of the FIN
  bed.advance_to(acked_at + 59'999'000);
  EXPECT_EQ(c->sk_state, TCP_FIN_WAIT2);
  bed.advance_to(acked_at + 60'000'000);
  EXPECT_EQ(c->sk_state, TCP_CLOSE);
  EXPECT_EQ(bed.h[0].done_calls, 1);
  EXPECT_TRUE(bed.take().empty());

  ConnBed bed2;
  auto [c2, s2] = bed2.connected_pair();
  EXPECT_EQ(bed2.shutdown(c2, SHUT_WR), 0);
  bed2.run();
  bed2.advance(TCP_DELACK_MAX_US);
  EXPECT_EQ(c2->sk_state, TCP_FIN_WAIT2);
  EXPECT_EQ(tcp_poll(c2) & POLLOUT, POLLOUT);  // SEND_SHUTDOWN: writes fail at once, so "writable"
  bed2.advance(600'000'000);
  EXPECT_EQ(c2->sk_state, TCP_FIN_WAIT2);
  EXPECT_EQ(bed2.send(s2, 1000), 1000);
  bed2.run();
  EXPECT_EQ(bed2.recv(c2, 4000), 1000);
  bed2.close(s2);
  bed2.run();
  EXPECT_EQ(c2->sk_state, TCP_TIME_WAIT);
  EXPECT_EQ(s2->sk_state, TCP_CLOSE);
}

// shutdown() in TIME_WAIT: ENOTCONN, as on the kernel's socket, which is CLOSE once tcp_time_wait()
// moved the connection to a timewait sock (inet_shutdown(): case TCP_CLOSE); nothing is sent. In
// FIN_WAIT2 (before the peer's FIN) it is still 0.
TEST(TcpClose, ShutdownInTimeWaitIsNotConnected) {
  ConnBed bed;
  auto [c, s] = bed.connected_pair();
  EXPECT_EQ(bed.shutdown(c, SHUT_WR), 0);
  bed.run();
  bed.advance(TCP_DELACK_MAX_US);
  ASSERT_EQ(c->sk_state, TCP_FIN_WAIT2);
  EXPECT_EQ(bed.shutdown(c, SHUT_WR), 0);
  bed.shutdown(s, SHUT_WR);
  bed.run();
  ASSERT_EQ(c->sk_state, TCP_TIME_WAIT);
  bed.take();
  EXPECT_EQ(bed.shutdown(c, SHUT_WR), -ENOTCONN);
  EXPECT_EQ(bed.shutdown(c, SHUT_RDWR), -ENOTCONN);
  EXPECT_EQ(c->sk_state, TCP_TIME_WAIT);
  EXPECT_TRUE(bed.take().empty());
}

// close() of a socket in TIME_WAIT (both FINs done by shutdown()) orphans it; TIME_WAIT runs on and
// still answers a retransmitted FIN (the kernel's timewait sock outlives the closed socket).
TEST(TcpClose, CloseInTimeWaitKeepsWaiting) {
  ConnBed bed;
  auto [c, s] = bed.connected_pair();
  bed.shutdown(c, SHUT_WR);
  bed.run();
  bed.advance(TCP_DELACK_MAX_US);
  bed.shutdown(s, SHUT_WR);
  bed.run();
  ASSERT_EQ(c->sk_state, TCP_TIME_WAIT);
  const uint64_t tw_start = bed.now;
  bed.close(c);
  EXPECT_EQ(c->sk_state, TCP_TIME_WAIT);
  EXPECT_EQ(bed.h[0].done_calls, 0);
  bed.take();
  bed.advance(10'000'000);
  bed.inject(c, c->rcv_nxt - 1, c->snd_nxt, kFinAck, 100);  // the peer's FIN again, 10 s later
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].flags, kAck);
  EXPECT_EQ(segs[0].ack, c->rcv_nxt);
  bed.advance_to(tw_start + TCP_TIMEWAIT_LEN_US);  // the FIN restarted the 60 s
  EXPECT_EQ(c->sk_state, TCP_TIME_WAIT);
  bed.advance_to(tw_start + 10'000'000 + TCP_TIMEWAIT_LEN_US);
  EXPECT_EQ(c->sk_state, TCP_CLOSE);
  EXPECT_EQ(bed.h[0].done_calls, 1);
}

// kernel: __tcp_close(): "Unread data was tossed, zap the connection." — RST|ACK at snd_nxt, no
// FIN; the peer's tcp_reset() in ESTABLISHED gives ECONNRESET, POLLERR|POLLHUP, done().
TEST(TcpClose, UnreadDataResets) {
  ConnBed bed;
  auto [c, s] = bed.connected_pair();
  EXPECT_EQ(bed.send(s, 500), 500);
  bed.run();
  bed.take();
  bed.close(c);
  EXPECT_EQ(c->sk_state, TCP_CLOSE);
  EXPECT_EQ(bed.h[0].done_calls, 1);
  bed.run();
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].flags, kRstAck);
  EXPECT_EQ(segs[0].seq, c->snd_nxt);
  EXPECT_EQ(s->sk_state, TCP_CLOSE);
  EXPECT_EQ(s->sk_err, ECONNRESET);
  EXPECT_EQ(tcp_poll(s) & (POLLERR | POLLHUP), POLLERR | POLLHUP);
  EXPECT_EQ(bed.h[1].done_calls, 1);
  // After a reset: the first read reports it (sock_error()), then end of stream; the first write
  // after that finds the socket closed: EPIPE (tcp_sendmsg_locked(), sk_stream_wait_connect()).
  EXPECT_EQ(bed.recv(s, 100), -ECONNRESET);
  EXPECT_EQ(bed.recv(s, 100), 0);
  EXPECT_EQ(bed.send(s, 100), -EPIPE);
}

// Writes: EAGAIN while connecting, EPIPE after shutdown(SHUT_WR), ECONNRESET (once) on a reset
// socket; reads: ENOTCONN on a never-connected socket.
TEST(TcpClose, SendAndRecvErrnos) {
  ConnBed bed;
  tcp_sock* idle = bed.h[0].socket(1234);
  EXPECT_EQ(bed.recv(idle, 10), -ENOTCONN);
  EXPECT_EQ(bed.send(idle, 10), -EPIPE);
  tcp_sock* l = bed.listen(1, 5001);
  EXPECT_EQ(bed.recv(l, 10), -ENOTCONN);
  tcp_sock* c = bed.h[0].socket(40000);
  ASSERT_EQ(bed.connect(c, 5001), 0);
  EXPECT_EQ(bed.send(c, 10), -EAGAIN);
  bed.run();
  EXPECT_EQ(bed.send(c, 10), 10);
  EXPECT_EQ(bed.shutdown(c, SHUT_WR), 0);
  EXPECT_EQ(bed.send(c, 10), -EPIPE);
  tcp_sock* s = inet_csk_accept(l);
  ASSERT_NE(s, nullptr);
  bed.run();
  s->linger = 0;
  bed.close(s);
  bed.run();
  EXPECT_EQ(c->sk_state, TCP_CLOSE);
  EXPECT_EQ(bed.send(c, 10), -ECONNRESET);
  EXPECT_EQ(bed.send(c, 10), -EPIPE);
}

// SO_LINGER {1, 0}: close() is tcp_disconnect(): RST, CLOSE at once; read data or not.
TEST(TcpClose, LingerZeroResets) {
  ConnBed bed;
  auto [c, s] = bed.connected_pair();
  c->linger = 0;
  bed.close(c);
  EXPECT_EQ(c->sk_state, TCP_CLOSE);
  bed.run();
  EXPECT_EQ(flags_of(bed.take()), (std::vector<uint8_t>{kRstAck}));
  EXPECT_EQ(s->sk_err, ECONNRESET);
  EXPECT_EQ(bed.h[0].done_calls, 1);
  EXPECT_EQ(bed.h[1].done_calls, 1);
}

// A RST at rcv_nxt in each synchronized state: tcp_reset()'s errno (EPIPE in CLOSE_WAIT,
// ECONNRESET otherwise), CLOSE, done(); in TIME_WAIT it ends the wait without an error
// ("TIME_WAIT assassination", tcp_rfc1337 = 0).
TEST(TcpClose, ResetInEachState) {
  struct Case {
    uint8_t state;
    int err;
  };
  for (Case k : {Case{TCP_ESTABLISHED, ECONNRESET}, Case{TCP_CLOSE_WAIT, EPIPE}, Case{TCP_FIN_WAIT1, ECONNRESET},
                 Case{TCP_FIN_WAIT2, ECONNRESET}, Case{TCP_CLOSING, ECONNRESET}, Case{TCP_LAST_ACK, ECONNRESET},
                 Case{TCP_TIME_WAIT, 0}}) {
    SCOPED_TRACE(int(k.state));
    ConnBed bed;
    auto [c, s] = bed.connected_pair();
    auto only_fins = [](const WireSeg& w) { return !(w.flags & TCPHDR_FIN); };
    switch (k.state) {
      case TCP_CLOSE_WAIT:
        bed.shutdown(c, SHUT_WR);
        bed.run();
        break;
      case TCP_FIN_WAIT1:
        bed.drop = [](const WireSeg&) { return true; };
        bed.shutdown(s, SHUT_WR);
        break;
      case TCP_FIN_WAIT2:
        bed.shutdown(s, SHUT_WR);
        bed.run();
        bed.advance(TCP_DELACK_MAX_US);
        break;
      case TCP_CLOSING:
        bed.drop = only_fins;
        bed.shutdown(s, SHUT_WR);
        bed.shutdown(c, SHUT_WR);
        bed.run();
        break;
      case TCP_LAST_ACK:
        bed.shutdown(c, SHUT_WR);
        bed.run();
        bed.drop = [](const WireSeg&) { return true; };
        bed.shutdown(s, SHUT_WR);
        break;
      case TCP_TIME_WAIT:
        bed.shutdown(s, SHUT_WR);
        bed.run();
        bed.advance(TCP_DELACK_MAX_US);
        bed.shutdown(c, SHUT_WR);
        bed.run();
        break;
    }
    bed.drop = nullptr;
    ASSERT_EQ(s->sk_state, k.state);
    bed.take();
    bed.inject(s, s->rcv_nxt, s->snd_nxt, kRst, 0);
    EXPECT_EQ(s->sk_state, TCP_CLOSE);
    EXPECT_EQ(s->sk_err, k.err);
    EXPECT_EQ(bed.h[1].done_calls, 1);
    EXPECT_TRUE(bed.take().empty());  // never answered
  }
}

// RFC 5961: a RST inside the window but not at rcv_nxt, and a SYN on a connection, get a challenge
// ACK (rate-limited to one per 500 ms: tcp_invalid_ratelimit); a RST outside the window is dropped.
TEST(TcpClose, ChallengeAcks) {
  ConnBed bed;
  auto [c, s] = bed.connected_pair();
  bed.inject(s, s->rcv_nxt + 100, s->snd_nxt, kRst, 0);
  bed.inject(s, s->rcv_nxt + 10'000'000, s->snd_nxt, kRst, 0);
  EXPECT_EQ(s->sk_state, TCP_ESTABLISHED);
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].flags, kAck);
  EXPECT_EQ(segs[0].ack, s->rcv_nxt);
  bed.inject(s, s->rcv_nxt, s->snd_nxt, TCPHDR_SYN, 0);  // within 500 ms: no second ACK
  EXPECT_TRUE(bed.take().empty());
  bed.advance(500'000);
  bed.inject(s, s->rcv_nxt, s->snd_nxt, TCPHDR_SYN, 0);
  EXPECT_EQ(flags_of(bed.take()), (std::vector<uint8_t>{kAck}));
  EXPECT_EQ(s->sk_state, TCP_ESTABLISHED);
  EXPECT_EQ(bed.h[1].done_calls, 0);
}

// tcp_oow_rate_limited(): out-of-window ACKs go at most once per 500 ms per socket — but a segment
// with data (and no SYN) is always answered, with a D-SACK for data we had: a peer's spurious
// retransmissions must each get their duplicate ACK. Checked in ESTABLISHED (tcp_rcv_established())
// and FIN_WAIT2 (tcp_rcv_state_process()'s tcp_validate_incoming()).
TEST(TcpClose, OutOfWindowAcksAreRateLimitedExceptForData) {
  ConnBed bed;
  auto [c, s] = bed.connected_pair();
  bed.inject(s, s->rcv_nxt + 10'000'000, s->snd_nxt, kAck, 100);  // a bare ACK far outside the window
  bed.inject(s, s->rcv_nxt + 10'000'000, s->snd_nxt, kAck, 100);
  EXPECT_EQ(flags_of(bed.take()), (std::vector<uint8_t>{kAck}));
  for (int i = 0; i < 3; ++i) bed.inject(s, s->rcv_nxt - 1000, s->snd_nxt, kAck, 100, {}, 100);  // old data
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 3u);
  for (const WireSeg& seg : segs) {
    EXPECT_EQ(seg.flags, kAck);
    EXPECT_EQ(seg.ack, s->rcv_nxt);
  }
  bed.close(c);
  bed.run();
  bed.advance(TCP_DELACK_MAX_US);
  ASSERT_EQ(c->sk_state, TCP_FIN_WAIT2);
  bed.take();
  for (int i = 0; i < 3; ++i) bed.inject(c, c->rcv_nxt - 1000, c->snd_nxt, kAck, 100, {}, 100);
  segs = bed.take();
  ASSERT_EQ(segs.size(), 3u);
  for (const WireSeg& seg : segs) EXPECT_EQ(seg.ack, c->rcv_nxt);
  bed.inject(c, c->rcv_nxt + 10'000'000, c->snd_nxt, kAck, 100);  // the first bare one is answered...
  bed.inject(c, c->rcv_nxt + 10'000'000, c->snd_nxt, kAck, 100);  // ...the second is not
  EXPECT_EQ(bed.take().size(), 1u);
  EXPECT_EQ(c->sk_state, TCP_FIN_WAIT2);
}

// TIME_WAIT (tcp_timewait_state_process()): a new SYN no listener takes is acknowledged every time
// (tcp_v4_rcv()'s TCP_TW_SYN falls through to tcp_v4_timewait_ack(), no rate limit), as is old data;
// bare out-of-window ACKs are rate-limited (tcp_timewait_check_oow_rate_limit()).
TEST(TcpClose, TimeWaitAcksEveryNewSynAndOldData) {
  ConnBed bed;
  auto [c, s] = bed.connected_pair();
  bed.close(c);
  bed.run();
  bed.advance(TCP_DELACK_MAX_US);
  bed.close(s);
  bed.run();
  ASSERT_EQ(c->sk_state, TCP_TIME_WAIT);
  bed.take();
  for (int i = 0; i < 3; ++i) bed.inject(c, c->rcv_nxt + 1000 + i, 0, TCPHDR_SYN, 100);
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 3u);
  for (const WireSeg& seg : segs) {
    EXPECT_EQ(seg.flags, kAck);
    EXPECT_EQ(seg.ack, c->rcv_nxt);
  }
  for (int i = 0; i < 2; ++i) bed.inject(c, c->rcv_nxt - 1000, c->snd_nxt, kAck, 100, {}, 100);
  EXPECT_EQ(bed.take().size(), 2u);
  bed.inject(c, c->rcv_nxt + 10'000'000, c->snd_nxt, kAck, 100);
  bed.inject(c, c->rcv_nxt + 10'000'000, c->snd_nxt, kAck, 100);
  EXPECT_EQ(bed.take().size(), 1u);
  EXPECT_EQ(c->sk_state, TCP_TIME_WAIT);
}

// RFC 1122 §4.2.2.13 / tcp_rcv_state_process(): new data for an orphan that has shut down its
// receive side is answered with a reset (and the orphan is gone).
TEST(TcpClose, DataAfterCloseResets) {
  ConnBed bed;
  auto [c, s] = bed.connected_pair();
  bed.close(c);
  bed.run();
  bed.advance(TCP_DELACK_MAX_US);
  EXPECT_EQ(c->sk_state, TCP_FIN_WAIT2);
  bed.take();
  EXPECT_EQ(bed.send(s, 100), 100);
  bed.run();
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 2u);
  EXPECT_EQ(segs[1].flags, kRst);
  EXPECT_EQ(c->sk_state, TCP_CLOSE);
  EXPECT_EQ(c->sk_err, ECONNRESET);
  EXPECT_EQ(s->sk_state, TCP_CLOSE);
  EXPECT_EQ(s->sk_err, EPIPE);  // the server was in CLOSE_WAIT
}

// shutdown(2): inet_shutdown()'s errnos; SHUT_RD alone sends nothing; SHUT_WR in CLOSE_WAIT is
// LAST_ACK with a FIN. A segment for a closed (unhashed) socket is answered by the host's reset.
TEST(TcpClose, ShutdownErrnosAndClosedSocket) {
  ConnBed bed;
  tcp_sock* idle = bed.h[0].socket(1234);
  EXPECT_EQ(bed.shutdown(idle, SHUT_RDWR), -ENOTCONN);
  EXPECT_EQ(bed.shutdown(idle, 7), -EINVAL);
  auto [c, s] = bed.connected_pair();
  EXPECT_EQ(bed.shutdown(c, SHUT_RD), 0);
  EXPECT_TRUE(bed.take().empty());
  EXPECT_EQ(c->sk_state, TCP_ESTABLISHED);
  EXPECT_EQ(bed.shutdown(s, SHUT_WR), 0);
  bed.run();
  EXPECT_EQ(c->sk_state, TCP_CLOSE_WAIT);
  EXPECT_EQ(bed.shutdown(c, SHUT_WR), 0);
  EXPECT_EQ(c->sk_state, TCP_LAST_ACK);
  bed.run();
  EXPECT_EQ(c->sk_state, TCP_CLOSE);
  bed.take();
  bed.inject(c, c->rcv_nxt, c->snd_nxt, kAck, 100);  // c is unhashed now: host 0 resets
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].flags, kRst);
  EXPECT_EQ(segs[0].seq, c->snd_nxt);
}

}  // namespace
}  // namespace xmit::testing_tcp
