// tests/stream/tcp_syncookies_test.cc — SYN cookies on two stack instances over the in-memory link
// (stack/dev/sim_link, the injected clock): b listens with backlog 1; a SYN flood from spoofed
// sources (raw frames put on the link from a's side; b has no route back, so their SYN-ACKs never
// leave and their requests stay) fills b's request queue, and a's real client then gets a cookie
// SYN-ACK, opens the connection with its ACK and moves data both ways. tcp_syncookies 0 drops the
// client's SYN instead; 2 answers every SYN with a cookie.
#include "stack/tcp/tcp_syncookies.h"
#include "stack/wire/tcp.h"
#include "tests/dev/test_frames.h"
#include "tests/stream/tcp_socket_bed.h"

#include <netinet/tcp.h>  // after the stack's headers (its macros rename their constants)

namespace xmit {
namespace {

using namespace testing_bed;  // NOLINT: the bed's fixture and helpers

class TcpSyncookiesStream : public TcpSocketTest {
 protected:
  void listen_backlog_1() {
    listener = b.socket();
    sockaddr_in l = addr(0, 7000);
    ASSERT_EQ(listener->bind(reinterpret_cast<sockaddr*>(&l), sizeof l), 0);
    ASSERT_EQ(listener->listen(1), 0);
  }
  // `n` SYNs (MSS 1460, no other option) to b:7000 from 198.18.0.100 + i, as a flood tool sends them.
  void flood(int n) {
    for (int i = 0; i < n; ++i) {
      testing::L4Spec spec{.protocol = 6, .saddr = 0xc6120064u + static_cast<uint32_t>(i), .daddr = 0xc6120002u,
                           .sport = static_cast<uint16_t>(20000 + i), .dport = 7000, .payload_len = 0,
                           .seq = 1000u * static_cast<uint32_t>(i), .tcp_flags = TCPHDR_SYN,
                           .tcp_options = {2, 4, 0x05, 0xb4}};
      std::vector<uint8_t> f = testing::make_frame(spec);
      FrameSeg seg{f.data(), static_cast<uint32_t>(f.size())};
      TxFrame tx{.segs = absl::MakeConstSpan(&seg, 1)};
      ASSERT_EQ(link->a().xmit(absl::MakeConstSpan(&tx, 1)), 1);
      pump(100'000);  // the wire copies the frame: it may go
    }
  }
  const LinuxMib& bmib() { return b.tcp->net_mib; }
  // a's connection to b:7000 (the client's tcp_sock).
  const tcp_sock* client_tp() {
    for (TcpConn* c : a.tcp->conns())
      if (c->tp.dport == 7000) return &c->tp;
    return nullptr;
  }
  void expect_stream(Socket* from, Socket* to, size_t n, uint8_t seed) {
    std::vector<uint8_t> data(n);
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<uint8_t>(seed + i * 7);
    size_t sent = 0;
    std::vector<uint8_t> got;
    uint8_t buf[65536];
    for (int i = 0; i < 20000 && got.size() < n; ++i) {
      if (sent < n) {
        ssize_t r = send(from, data.data() + sent, n - sent);
        if (r > 0) sent += static_cast<size_t>(r);
      }
      ssize_t r = to->recvmsg(msg(buf, sizeof buf), 0);
      if (r > 0) got.insert(got.end(), buf, buf + r);
      pump(200'000);
    }
    ASSERT_EQ(got.size(), n);
    EXPECT_TRUE(got == data);
  }
};

// The bed with b's net.ipv4.tcp_syncookies set before SetUp() makes the stacks.
class TcpSyncookiesMode0 : public TcpSyncookiesStream {
 protected:
  TcpSyncookiesMode0() { b.syncookies = 0; }
};
class TcpSyncookiesMode2 : public TcpSyncookiesStream {
 protected:
  TcpSyncookiesMode2() { b.syncookies = 2; }
};

// Backlog 1: the flood's first two SYNs become requests (the queue is full: 2 > 1), the third gets
// a cookie. The client (TCP_MAXSEG 1300) then gets a cookie too: the SYN-ACK's ISN decodes to MSS
// 1300 under b's secret; its ACK opens the connection (SyncookiesRecv), accept() returns it, its
// MSS is the cookie's (1300 less the timestamp option) and 200000 / 150000 bytes go both ways
// byte-exact.
TEST_F(TcpSyncookiesStream, FloodedListenerOpensTheClientWithACookie) {
  listen_backlog_1();
  flood(3);
  EXPECT_EQ(bmib().SyncookiesSent, 1u);
  EXPECT_EQ(bmib().TCPReqQFullDoCookies, 1u);
  TcpSocket* c = a.socket();
  int mss = 1300;
  ASSERT_EQ(c->setsockopt(SOL_TCP, TCP_MAXSEG, &mss, sizeof mss), 0);
  sockaddr_in to = addr(kB, 7000);
  ASSERT_EQ(c->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, true), -EINPROGRESS);
  pump(2'000'000);
  EXPECT_EQ(so_error(c), 0);
  EXPECT_EQ(bmib().SyncookiesSent, 2u);
  EXPECT_EQ(bmib().SyncookiesRecv, 1u);
  EXPECT_EQ(bmib().SyncookiesFailed, 0u);
  const tcp_sock* ctp = client_tp();
  ASSERT_NE(ctp, nullptr);
  ASSERT_EQ(ctp->sk_state, TCP_ESTABLISHED);
  const uint32_t client_isn = ctp->snd_una - 1, cookie = ctp->rcv_nxt - 1;
  EXPECT_EQ(cookie_v4_check_core(&b.tcp->options().syncookie_secret, kA, kB, ctp->sport, 7000, client_isn + 1,
                                 cookie, g_now / 1000),
            1300);
  Socket* s = nullptr;
  ASSERT_EQ(listener->accept(&s, nullptr, nullptr, SOCK_NONBLOCK), 0);
  ASSERT_NE(s, nullptr);
  tcp_info ti{};
  socklen_t len = sizeof ti;
  ASSERT_EQ(s->getsockopt(SOL_TCP, TCP_INFO, &ti, &len), 0);
  EXPECT_EQ(ti.tcpi_snd_mss, 1300u - 12u);
  EXPECT_TRUE(ti.tcpi_options & TCPI_OPT_TIMESTAMPS);
  EXPECT_TRUE(ti.tcpi_options & TCPI_OPT_SACK);
  EXPECT_TRUE(ti.tcpi_options & TCPI_OPT_WSCALE);
  EXPECT_EQ(ti.tcpi_snd_wscale, ctp->rx_opt.rcv_wscale);
  expect_stream(c, s, 200000, 3);
  expect_stream(s, c, 150000, 4);
  EXPECT_EQ(b.tcp->mib.PassiveOpens, 1u);
  c->put();
  s->put();
  listener->put();
}

// tcp_syncookies = 0: the full request queue drops the client's SYN (no SYN-ACK: still
// connecting), counted as TCPReqQFullDrop and ListenDrops; no cookie anywhere.
TEST_F(TcpSyncookiesMode0, DropsTheClientsSyn) {
  listen_backlog_1();
  flood(3);
  TcpSocket* c = a.socket();
  sockaddr_in to = addr(kB, 7000);
  ASSERT_EQ(c->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, true), -EINPROGRESS);
  pump(500'000);
  int wfd;
  EXPECT_FALSE(c->poll_mask(&wfd) & POLLOUT);
  EXPECT_EQ(client_tp()->sk_state, TCP_SYN_SENT);
  EXPECT_EQ(bmib().SyncookiesSent, 0u);
  EXPECT_EQ(bmib().TCPReqQFullDrop, 2u);
  EXPECT_EQ(bmib().ListenDrops, 2u);
  c->put();
  listener->put();
}

// tcp_syncookies = 2: no flood, yet the client's SYN is answered with a cookie; the connection
// opens and carries data.
TEST_F(TcpSyncookiesMode2, AnswersEverySynWithACookie) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  EXPECT_EQ(bmib().SyncookiesSent, 1u);
  EXPECT_EQ(bmib().SyncookiesRecv, 1u);
  EXPECT_EQ(bmib().TCPReqQFullDoCookies, 1u);
  expect_stream(c, s, 50000, 5);
  expect_stream(s, c, 50000, 6);
  c->put();
  s->put();
  listener->put();
}

}  // namespace
}  // namespace xmit
