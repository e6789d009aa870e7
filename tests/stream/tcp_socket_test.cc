// tests/stream/tcp_socket_test.cc — TCP sockets (stack/stream) on two stack instances joined by the
// in-memory link: the socket calls a program makes (connect, listen, accept, send, recv, shutdown,
// close, getsockopt, poll) through TcpSocket and TcpStack, the protocol underneath, on an injected
// clock. Both ends are xmit's; the kernel peer is the e2e tests' (tests/e2e/tcp.sh).
#include "tests/stream/tcp_socket_bed.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "stack/ipv4/iov_iter.h"

#include <netinet/tcp.h>  // after the stack's headers (its macros rename their constants)

namespace xmit {
namespace {

using namespace testing_bed;  // NOLINT: the bed's fixture and helpers
using testing::FakeShadow;

TEST_F(TcpSocketTest, ConnectAcceptMoveBytesBothWaysAndClose) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  std::vector<uint8_t> up(300'000), down(200'000);
  for (size_t i = 0; i < up.size(); ++i) up[i] = static_cast<uint8_t>(i * 7 + 1);
  for (size_t i = 0; i < down.size(); ++i) down[i] = static_cast<uint8_t>(i * 13 + 5);
  // Non-blocking sends: partial counts while the send buffer is full; the reader drains meanwhile.
  size_t sent_up = 0, sent_down = 0;
  std::vector<uint8_t> got_up, got_down;
  uint8_t buf[65536];
  for (int i = 0; i < 5000 && (got_up.size() < up.size() || got_down.size() < down.size()); ++i) {
    if (sent_up < up.size()) {
      ssize_t r = send(c, up.data() + sent_up, up.size() - sent_up);
      ASSERT_TRUE(r > 0 || r == -EAGAIN) << r;
      if (r > 0) sent_up += static_cast<size_t>(r);
    }
    if (sent_down < down.size()) {
      ssize_t r = send(s, down.data() + sent_down, down.size() - sent_down);
      ASSERT_TRUE(r > 0 || r == -EAGAIN) << r;
      if (r > 0) sent_down += static_cast<size_t>(r);
    }
    pump(100'000);
    for (ssize_t r; (r = s->recvmsg(msg(buf, sizeof buf), 0)) > 0;) got_up.insert(got_up.end(), buf, buf + r);
    for (ssize_t r; (r = c->recvmsg(msg(buf, sizeof buf), 0)) > 0;) got_down.insert(got_down.end(), buf, buf + r);
  }
  EXPECT_EQ(got_up, up);
  EXPECT_EQ(got_down, down);
  // The client half-closes: the server reads EOF, answers, closes; the client reads it and EOF.
  ASSERT_EQ(c->shutdown(SHUT_WR), 0);
  EXPECT_EQ(send(c, "x", 1, MSG_NOSIGNAL), -EPIPE);
  bool eof = false;
  EXPECT_TRUE(read_all(s, 1, &eof).empty());
  EXPECT_TRUE(eof);
  ASSERT_EQ(send(s, "bye", 3), 3);
  s->put();  // close(): FIN after the data
  eof = false;
  std::vector<uint8_t> bye = read_all(c, 4, &eof);
  EXPECT_EQ(std::string(bye.begin(), bye.end()), "bye");
  EXPECT_TRUE(eof);
  c->put();
  listener->put();
  // The client sent the first FIN: it is the one in TIME_WAIT, freed 60 s later (TCP_TIMEWAIT_LEN);
  // the server's side is gone once its FIN is acknowledged.
  pump(2'000'000);
  EXPECT_FALSE(b.tcp->has_conns());
  EXPECT_TRUE(a.tcp->has_conns());
  g_now += 61'000'000'000ull;
  pump(1'000'000);
  EXPECT_FALSE(a.tcp->has_conns());
}

// The client closes first and keeps the 4-tuple in TIME_WAIT for 60 s, after its fd (and the
// kernel's reservation of the port) is gone. A new connect() to the same server must take another
// port, as __inet_hash_connect() skips a port whose 4-tuple check_established() finds; a socket
// bound to that port by hand gets EADDRNOTAVAIL. a's port range is two ports: the scan starts with
// the even one, which the first connection took.
class TcpSocketTwoPortTest : public TcpSocketTest {
 protected:
  void SetUp() override {
    port_high_ = 32769;
    TcpSocketTest::SetUp();
  }
};
TEST_F(TcpSocketTwoPortTest, ConnectSkipsAPortWhoseFourTupleIsInTimeWait) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  const be16 first = local_port(c);
  c->put();
  pump();
  s->put();
  pump();
  ASSERT_TRUE(a.tcp->has_conns());  // the client's TIME_WAIT
  TcpSocket* c2 = a.socket();
  sockaddr_in to = addr(kB, 7000);
  ASSERT_EQ(c2->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, true), -EINPROGRESS);
  EXPECT_NE(local_port(c2), first);
  pump();
  EXPECT_EQ(so_error(c2), 0);
  Socket* s2 = nullptr;
  ASSERT_EQ(listener->accept(&s2, nullptr, nullptr, SOCK_NONBLOCK), 0);
  ASSERT_NE(s2, nullptr);
  ASSERT_EQ(send(c2, "ok", 2), 2);
  EXPECT_EQ(read_all(s2, 2), (std::vector<uint8_t>{'o', 'k'}));

  TcpSocket* c3 = a.socket();
  sockaddr_in me = addr(0, ntohs(first));
  ASSERT_EQ(c3->bind(reinterpret_cast<sockaddr*>(&me), sizeof me), 0);
  EXPECT_EQ(c3->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, true), -EADDRNOTAVAIL);
  c3->put();
  c2->put();
  s2->put();
  listener->put();
}

// Connection churn against one server that closes first (the server keeps each 4-tuple in
// TIME_WAIT): every connect() takes a new port, as the kernel's table_perturb advance makes it, so
// no SYN meets the server's TIME_WAIT of an earlier connection.
TEST_F(TcpSocketTest, ConnectsToOneServerTakePortsInTurn) {
  listen_on_b();
  std::vector<be16> ports;
  for (int i = 0; i < 8; ++i) {
    TcpSocket* c = connect_from_a();
    pump();
    Socket* s = nullptr;
    ASSERT_EQ(listener->accept(&s, nullptr, nullptr, SOCK_NONBLOCK), 0);
    ASSERT_NE(s, nullptr);
    ports.push_back(local_port(c));
    s->put();  // the server closes first
    pump();
    c->put();
    pump();
    EXPECT_FALSE(a.tcp->has_conns());  // nothing of the client's is left
  }
  std::sort(ports.begin(), ports.end());
  EXPECT_EQ(std::unique(ports.begin(), ports.end()), ports.end()) << "a port was taken twice";
  listener->put();
}

// connect() takes the kernel's port and timestamp offset for the 4-tuple when the kernel can tell:
// the kernel socket itself connects with its SYN deferred (ShadowOps::connect_deferred()) and holds
// the 4-tuple, so no bind() of the port is needed (bind() refuses ports whose bucket holds other
// 4-tuples' TIME_WAITs, which connect() shares), and a peer holding the 4-tuple in TIME_WAIT from a
// kernel connection sees a newer timestamp: the connection's clock is the kernel's offset on
// (TCP_TIMESTAMP, as the kernel's getsockopt() gives it; the e2e tcp_kernel_ports checks the wire).
// A port this stack still has in TIME_WAIT for the 4-tuple is given back (disconnect()) for the
// kernel's next answer; with no answer the stack chooses and binds as before.
TEST_F(TcpSocketTest, ConnectTakesTheKernelsPortAndTimestampOffset) {
  listen_on_b();
  a.shadow->probes = {{45000, 0x80000001u}};
  const int autobinds = a.shadow->autobinds;
  TcpSocket* c = connect_from_a();
  EXPECT_EQ(ntohs(local_port(c)), 45000);
  EXPECT_EQ(a.shadow->deferred, 1);
  EXPECT_FALSE(a.shadow->bindport_lock);  // the kernel socket connected: nothing bound
  EXPECT_EQ(a.shadow->autobinds, autobinds);
  uint32_t ts = 0;
  socklen_t tl = sizeof ts;
  ASSERT_EQ(c->getsockopt(SOL_TCP, TCP_TIMESTAMP, &ts, &tl), 0);
  EXPECT_EQ(ts, (static_cast<uint32_t>(g_now / 1'000'000) + 0x80000001u) & ~1u);  // the usec bit clear
  pump();
  Socket* s = nullptr;
  ASSERT_EQ(listener->accept(&s, nullptr, nullptr, SOCK_NONBLOCK), 0);
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(send(c, "ok", 2), 2);
  EXPECT_EQ(read_all(s, 2), (std::vector<uint8_t>{'o', 'k'}));
  c->put();  // the client closes first: its TIME_WAIT holds the 4-tuple from port 45000
  pump();
  s->put();
  pump();
  ASSERT_TRUE(a.tcp->has_conns());

  a.shadow->probes = {{45000, 0x80000001u}, {45002, 0x90000000u}};
  a.shadow->probes_taken = 0;
  a.shadow->disconnects = 0;
  TcpSocket* c2 = connect_from_a();
  EXPECT_EQ(ntohs(local_port(c2)), 45002);
  EXPECT_EQ(a.shadow->probes_taken, 2u);
  EXPECT_EQ(a.shadow->disconnects, 1);  // 45000 given back to the kernel
  EXPECT_TRUE(a.shadow->deferred_connected);
  ASSERT_EQ(c2->getsockopt(SOL_TCP, TCP_TIMESTAMP, &ts, &tl), 0);
  EXPECT_EQ(ts, (static_cast<uint32_t>(g_now / 1'000'000) + 0x90000000u) & ~1u);

  TcpSocket* c3 = connect_from_a();  // no answer: the stack's own choice, bound
  EXPECT_GE(ntohs(local_port(c3)), 32768);
  EXPECT_NE(ntohs(local_port(c3)), 45000);
  EXPECT_TRUE(a.shadow->bindport_lock);

  // Every answer in this stack's TIME_WAIT: 16 tries, each given back, then the stack's own
  // choice — from the route's source address, which each disconnect makes the kernel socket forget
  // (before: 0.0.0.0, and the connection never opened).
  a.shadow->probes.assign(16, {45000, 0x80000001u});
  a.shadow->probes_taken = 0;
  a.shadow->disconnects = 0;
  a.shadow->port_held = false;
  TcpSocket* c4 = connect_from_a();
  EXPECT_EQ(a.shadow->probes_taken, 16u);
  EXPECT_EQ(a.shadow->disconnects, 16);
  EXPECT_NE(ntohs(local_port(c4)), 45000);
  pump();
  Socket* s4 = nullptr;
  std::vector<Socket*> accepted;
  for (int i = 0; i < 3; ++i) {
    sockaddr_in peer{};
    socklen_t plen = sizeof peer;
    ASSERT_EQ(listener->accept(&s, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_NONBLOCK), 0);
    EXPECT_EQ(peer.sin_addr.s_addr, kA);
    if (peer.sin_port == local_port(c4)) s4 = s;
    accepted.push_back(s);
  }
  ASSERT_NE(s4, nullptr);
  ASSERT_EQ(send(c4, "ok", 2), 2);
  EXPECT_EQ(read_all(s4, 2), (std::vector<uint8_t>{'o', 'k'}));
  for (Socket* x : accepted) x->put();
  c4->put();
  c3->put();
  c2->put();
  listener->put();
}

// A connect() that fails gives the kernel socket's 4-tuple back (the kernel's tcp_done() frees an
// unbound port) at the next call that would find it SYN_SENT (here a setsockopt()), with the
// program's Fast Open options set back, and the next connect() on the fd asks the kernel again,
// for a new port; a socket bound first keeps its port through both, with the kernel's offset for
// each 4-tuple. The program's TCP_FASTOPEN_CONNECT is what it set, not the deferred connect's.
TEST_F(TcpSocketTest, ConnectAfterARefusedOneAsksTheKernelAgain) {
  listen_on_b();
  a.shadow->probes = {{45010, 0x1000u}, {45012, 0x2000u}};
  TcpSocket* c = a.socket();
  sockaddr_in closed = addr(kB, 7999);  // nothing listens: b's stack resets the SYN
  ASSERT_EQ(c->connect(reinterpret_cast<sockaddr*>(&closed), sizeof closed, true), -EINPROGRESS);
  EXPECT_EQ(ntohs(local_port(c)), 45010);
  pump();
  EXPECT_EQ(so_error(c), ECONNREFUSED);
  EXPECT_EQ(a.shadow->disconnects, 0);
  const int one = 1;
  ASSERT_EQ(c->setsockopt(SOL_TCP, TCP_NODELAY, &one, sizeof one), 0);
  EXPECT_EQ(a.shadow->disconnects, 1);  // the kernel socket is closed again, as after tcp_done()
  EXPECT_FALSE(a.shadow->deferred_connected);
  EXPECT_EQ(a.shadow->fastopen_back, 0);  // the program set neither option
  sockaddr_in to = addr(kB, 7000);
  // kernel: __inet_stream_connect() on the failed SS_CONNECTING socket: sock_error(), already read,
  // so ECONNABORTED, and the socket is unconnected for the next call
  ASSERT_EQ(c->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, true), -ECONNABORTED);
  ASSERT_EQ(c->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, true), -EINPROGRESS);
  EXPECT_EQ(a.shadow->disconnects, 1);
  EXPECT_EQ(a.shadow->deferred, 2);
  EXPECT_EQ(ntohs(local_port(c)), 45012);  // the freed port is not kept
  int fo = -1;
  socklen_t fl = sizeof fo;
  ASSERT_EQ(c->getsockopt(SOL_TCP, TCP_FASTOPEN_CONNECT, &fo, &fl), 0);
  EXPECT_EQ(fo, 0);
  pump();
  EXPECT_EQ(so_error(c), 0);
  Socket* s = nullptr;
  ASSERT_EQ(listener->accept(&s, nullptr, nullptr, SOCK_NONBLOCK), 0);
  s->put();
  c->put();

  // bind(addr, 0): the port is fixed for the connect (no retry on another), but not locked: a
  // failed connection frees it, and the next connect() takes a new one.
  a.shadow->probes = {{45050, 0x7000u}, {45052, 0x8000u}};
  a.shadow->probes_taken = 0;
  TcpSocket* e = a.socket();
  sockaddr_in any = addr(0, 0);
  ASSERT_EQ(e->bind(reinterpret_cast<sockaddr*>(&any), sizeof any), 0);
  const uint16_t autobound = ntohs(local_port(e));
  ASSERT_EQ(e->connect(reinterpret_cast<sockaddr*>(&closed), sizeof closed, true), -EINPROGRESS);
  EXPECT_EQ(ntohs(local_port(e)), autobound);
  pump();
  EXPECT_EQ(so_error(e), ECONNREFUSED);
  ASSERT_EQ(e->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, true), -ECONNABORTED);
  ASSERT_EQ(e->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, true), -EINPROGRESS);
  EXPECT_EQ(ntohs(local_port(e)), 45052);  // the kernel's next choice, not the freed port
  pump();
  ASSERT_EQ(listener->accept(&s, nullptr, nullptr, SOCK_NONBLOCK), 0);
  s->put();
  e->put();

  a.shadow->probes = {{45020, 0x3000u}};
  a.shadow->probes_taken = 0;
  TcpSocket* d = a.socket();
  sockaddr_in me = addr(0, 46000);
  ASSERT_EQ(d->bind(reinterpret_cast<sockaddr*>(&me), sizeof me), 0);
  ASSERT_EQ(d->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, true), -EINPROGRESS);
  EXPECT_EQ(ntohs(local_port(d)), 46000);  // the bound port, not the kernel's answer for others
  uint32_t ts = 0;
  socklen_t tl = sizeof ts;
  ASSERT_EQ(d->getsockopt(SOL_TCP, TCP_TIMESTAMP, &ts, &tl), 0);
  EXPECT_EQ(ts, (static_cast<uint32_t>(g_now / 1'000'000) + 0x3000u) & ~1u);
  pump();
  ASSERT_EQ(listener->accept(&s, nullptr, nullptr, SOCK_NONBLOCK), 0);
  s->put();
  d->put();
  listener->put();
}

// fork() moves a client whose kernel socket connected with its SYN deferred: the repair is told so
// (the kernel socket must go back to closed first, and bind the port again: its disconnect freed it).
TEST_F(TcpSocketTest, ForkTellsTheRepairTheKernelSocketIsConnectedDeferred) {
  listen_on_b();
  a.shadow->probes = {{45030, 0x4000u}};
  TcpSocket* c = connect_from_a();
  pump();
  Socket* s = nullptr;
  ASSERT_EQ(listener->accept(&s, nullptr, nullptr, SOCK_NONBLOCK), 0);
  int moved = 0, failed = 0;
  {
    std::lock_guard<StackMutex> g(a.tcp->mu());
    TcpSocket::connections_to_kernel(a.tcp.get(), &moved, &failed);
  }
  EXPECT_EQ(moved, 1);
  EXPECT_TRUE(a.shadow->repaired.shadow_deferred);
  EXPECT_FALSE(a.shadow->repaired.shadow_bound);
  EXPECT_EQ(a.shadow->repaired.sport, 45030);
  c->put();
  s->put();

  // bind(addr, 0) first: the port is not locked (SOCK_BINDPORT_LOCK only for a port named), so
  // the repair must bind it again after the disconnect; bind(addr, port): locked, kept.
  for (uint16_t port : {uint16_t{0}, uint16_t{46100}}) {
    SCOPED_TRACE(port);
    a.shadow->probes = {{45032, 0x4000u}};
    a.shadow->probes_taken = 0;
    a.shadow->port_held = false;
    TcpSocket* d = a.socket();
    sockaddr_in me = addr(0, port);
    ASSERT_EQ(d->bind(reinterpret_cast<sockaddr*>(&me), sizeof me), 0);
    sockaddr_in to = addr(kB, 7000);
    ASSERT_EQ(d->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, true), -EINPROGRESS);
    pump();
    ASSERT_EQ(listener->accept(&s, nullptr, nullptr, SOCK_NONBLOCK), 0);
    {
      std::lock_guard<StackMutex> g(a.tcp->mu());
      TcpSocket::connections_to_kernel(a.tcp.get(), &moved, &failed);
    }
    EXPECT_TRUE(a.shadow->repaired.shadow_deferred);
    EXPECT_EQ(a.shadow->repaired.shadow_bound, port != 0);
    d->put();
    s->put();
  }
  listener->put();
}

// fork() cannot move a connection (TCP_REPAIR refused: no CAP_NET_ADMIN; or not established): it
// stays in this process's stack, and its kernel socket, which the child shares, stops being a
// deferred connect (a send on it would put a SYN with data on the connection's 4-tuple): closed
// again, its port bound. The connection itself goes on.
TEST_F(TcpSocketTest, ForkThatCannotMoveAConnectionUnconnectsItsKernelSocket) {
  listen_on_b();
  a.shadow->probes = {{45040, 0x5000u}, {45042, 0x6000u}};
  a.shadow->repair_result = -EPERM;
  TcpSocket* c = connect_from_a();
  pump();
  Socket* s = nullptr;
  ASSERT_EQ(listener->accept(&s, nullptr, nullptr, SOCK_NONBLOCK), 0);
  a.shadow->port_held = false;            // (the fake is one kernel socket for every fd)
  TcpSocket* pending = connect_from_a();  // SYN_SENT: the link is not run
  int moved = 0, failed = 0;
  {
    std::lock_guard<StackMutex> g(a.tcp->mu());
    TcpSocket::connections_to_kernel(a.tcp.get(), &moved, &failed);
  }
  EXPECT_EQ(moved, 0);
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(a.shadow->disconnects, 2);  // both kernel sockets, the established and the pending one
  EXPECT_FALSE(a.shadow->deferred_connected);
  EXPECT_TRUE(a.shadow->bindport_lock);  // each bound again to its port (the fake keeps the last)
  const uint16_t last = ntohs(a.shadow->local.sin_port);
  EXPECT_TRUE(last == 45040 || last == 45042) << last;
  EXPECT_FALSE(c->handed_to_kernel());
  ASSERT_EQ(send(c, "still", 5), 5);
  EXPECT_EQ(read_all(s, 5), (std::vector<uint8_t>{'s', 't', 'i', 'l', 'l'}));
  pending->put();
  c->put();
  s->put();
  listener->put();
}

// A server that closes first keeps every connection in TIME_WAIT for 60 s. Those must not hold
// send memory: 100 connections through a stack of 64 payload pages, each answered by the server
// before it closes; every answer must be taken (before, each TIME_WAIT kept its page and the 65th
// send returned EAGAIN while poll said POLLOUT: nginx waited for an edge for ever).
TEST_F(TcpSocketTest, ServerChurnKeepsNoPagesInTimeWait) {
  listen_on_b();
  for (int i = 0; i < 100; ++i) {
    SCOPED_TRACE(i);
    TcpSocket* c = connect_from_a();
    pump(500'000);
    Socket* s = nullptr;
    ASSERT_EQ(listener->accept(&s, nullptr, nullptr, SOCK_NONBLOCK), 0);
    ASSERT_NE(s, nullptr);
    ASSERT_EQ(send(s, "response", 8), 8);
    EXPECT_EQ(read_all(c, 8).size(), 8u);
    s->put();  // the server closes first: its side goes to TIME_WAIT
    pump(500'000);
    c->put();
    pump(500'000);
  }
  EXPECT_TRUE(b.tcp->has_conns());  // the TIME_WAITs
  listener->put();
}

// The server closes first and keeps the 4-tuple in TIME_WAIT; a client (another stack, or the
// kernel's wrk, whose ports come round again) opens a new connection from the same port. As
// tcp_timewait_state_process() returns TCP_TW_SYN for a SYN with a newer timestamp (or a later
// sequence number), tcp_v4_rcv() ends the TIME_WAIT and gives the SYN to the listener, whose
// SYN-ACK takes the old snd_nxt + 65537 as its ISN: established within a round trip. Before, the
// SYN was dropped and the client retransmitted it after 1 s (wrk churning against nginx under
// xmit: 128 SYN retransmissions in 6 s, 547 requests/s).
TEST_F(TcpSocketTest, SynOnAServerTimeWaitTupleOpensANewConnection) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  const be16 port = local_port(c);
  ASSERT_EQ(send(s, "bye", 3), 3);
  pump();
  uint32_t tw_snd_nxt = 0;  // the server's snd_nxt in TIME_WAIT: after "bye" and its FIN
  for (TcpConn* conn : b.tcp->conns()) {
    if (conn->tp.sk_state == TCP_ESTABLISHED && conn->tp.dport == ntohs(port)) tw_snd_nxt = conn->tp.snd_nxt + 1;
  }
  ASSERT_NE(tw_snd_nxt, 0u);
  s->put();  // the server closes first: b holds the 4-tuple in TIME_WAIT
  bool eof = false;
  EXPECT_EQ(read_all(c, 4, &eof).size(), 3u);
  EXPECT_TRUE(eof);
  c->put();
  pump();
  ASSERT_TRUE(b.tcp->has_conns());
  EXPECT_EQ(b.tcp->tw_count(), 1u);  // b's timewait sock (its full socket is gone)
  TcpSocket* c2 = a.socket();
  sockaddr_in me = addr(0, ntohs(port));
  ASSERT_EQ(c2->bind(reinterpret_cast<sockaddr*>(&me), sizeof me), 0);
  sockaddr_in to = addr(kB, 7000);
  ASSERT_EQ(c2->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, true), -EINPROGRESS);
  pump(1'000'000);  // well inside the SYN's 1 s RTO
  int wfd;
  EXPECT_TRUE(c2->poll_mask(&wfd) & POLLOUT);
  EXPECT_EQ(so_error(c2), 0);
  Socket* s2 = nullptr;
  ASSERT_EQ(listener->accept(&s2, nullptr, nullptr, SOCK_NONBLOCK), 0);
  ASSERT_NE(s2, nullptr);
  EXPECT_EQ(local_port(c2), port);
  // kernel: isn = tcptw->tw_snd_nxt + 65535 + 2; the SYN-ACK's sequence number, acknowledged
  int children = 0;
  for (TcpConn* conn : b.tcp->conns()) {
    if (conn->tp.sk_state != TCP_ESTABLISHED || conn->tp.dport != ntohs(port)) continue;
    ++children;
    EXPECT_EQ(conn->tp.snd_una, tw_snd_nxt + 65535 + 2 + 1);
    EXPECT_NE(conn->tp.snd_una, tw_snd_nxt + 1);
  }
  EXPECT_EQ(children, 1);  // the TIME_WAIT is gone, the new child took its 4-tuple
  EXPECT_EQ(b.tcp->tw_count(), 0u);
  ASSERT_EQ(send(c2, "ok", 2), 2);
  EXPECT_EQ(read_all(s2, 2), (std::vector<uint8_t>{'o', 'k'}));
  s2->put();
  c2->put();
  listener->put();
}

// TcpStack's first-connection hook (the progress thread's wake-up) runs when a connection is made
// while none exists — a listener, a connect()ing socket, or after the last one went — and not for
// the others (an accepted child, a second socket): engine.cc's thread sleeps on its futex only
// while has_conns() is false, so this is the one moment it must be woken.
int g_first_conns = 0;
void count_first_conn() { ++g_first_conns; }
TEST_F(TcpSocketTest, FirstConnectionHookRunsWhenTheStackHadNone) {
  g_first_conns = 0;
  b.tcp->set_first_conn_hook(count_first_conn);
  listen_on_b();
  EXPECT_EQ(g_first_conns, 1);
  TcpSocket* c = connect_from_a();
  pump(500'000);
  Socket* s = nullptr;
  ASSERT_EQ(listener->accept(&s, nullptr, nullptr, SOCK_NONBLOCK), 0);
  ASSERT_NE(s, nullptr);
  TcpSocket* other = b.socket();
  EXPECT_EQ(g_first_conns, 1);  // the child and the second socket found the listener there
  // Everything of b's goes: the client closes first (a keeps the TIME_WAIT), then b's sockets.
  c->put();
  pump(500'000);
  s->put();
  other->put();
  listener->put();
  pump(2'000'000);
  ASSERT_FALSE(b.tcp->has_conns());
  TcpSocket* again = b.socket();
  EXPECT_EQ(g_first_conns, 2);
  again->put();
  b.tcp->set_first_conn_hook(nullptr);
}

// fork(): an established connection moves into the kernel socket behind its fd with its unread
// and unacknowledged bytes (TcpSocket::connections_to_kernel(); the fake shadow records the state).
TEST_F(TcpSocketTest, ForkMovesAnEstablishedConnectionIntoTheKernelSocket) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  std::vector<uint8_t> up(20'000), down(12'000);
  for (size_t i = 0; i < up.size(); ++i) up[i] = static_cast<uint8_t>(i * 7 + 1);
  for (size_t i = 0; i < down.size(); ++i) down[i] = static_cast<uint8_t>(i * 13 + 5);
  ASSERT_EQ(send(c, up.data(), up.size()), static_cast<ssize_t>(up.size()));
  pump();  // arrives at s, unread
  ssize_t n = send(s, down.data(), down.size());
  ASSERT_GT(n, 0);
  down.resize(static_cast<size_t>(n));  // queued and sent, not yet acknowledged (the link not run)
  int moved = 0, failed = 0;
  {
    std::lock_guard<StackMutex> g(b.tcp->mu());
    TcpSocket::connections_to_kernel(b.tcp.get(), &moved, &failed);
  }
  EXPECT_EQ(moved, 1);  // the child; the listener is not a connection
  EXPECT_EQ(failed, 0);
  EXPECT_TRUE(s->handed_to_kernel());
  const TcpRepairState& st = b.shadow->repaired;
  EXPECT_EQ(st.saddr, kB);
  EXPECT_EQ(st.daddr, kA);
  EXPECT_EQ(st.sport, 7000);
  EXPECT_EQ(st.dport, ntohs(local_port(c)));
  EXPECT_EQ(b.shadow->repaired_rcvq, up);
  std::vector<uint8_t> queued = b.shadow->repaired_sentq;
  queued.insert(queued.end(), b.shadow->repaired_unsent.begin(), b.shadow->repaired_unsent.end());
  EXPECT_EQ(queued, down);
  EXPECT_FALSE(b.shadow->repaired_sentq.empty());  // the first window went out at once
  EXPECT_TRUE(st.tstamp_ok && st.sack_ok && st.wscale_ok);  // what the two stacks negotiated
  EXPECT_EQ(st.mss_clamp, 1460);
  EXPECT_EQ(st.rcv_wup, st.copied_seq + up.size());  // the window was last updated at rcv_nxt
  // Segments of the moved flow that still reach b's stack (queued before the steering changed) are
  // dropped, not reset: the client's connection lives on.
  ASSERT_EQ(send(c, "more", 4), 4);
  pump(5'000'000);
  EXPECT_EQ(so_error(c), 0);
  EXPECT_EQ(send(c, "again", 5, MSG_NOSIGNAL), 5);
  c->put();
  s->put();
  listener->put();
}

TEST_F(TcpSocketTest, ForkLeavesAConnectionTheKernelRefusesWithTheStack) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  std::vector<uint8_t> up(5'000, 0x5a);
  ASSERT_EQ(send(c, up.data(), up.size()), static_cast<ssize_t>(up.size()));
  pump();
  b.shadow->repair_result = -EPERM;  // no CAP_NET_ADMIN
  int moved = 0, failed = 0;
  {
    std::lock_guard<StackMutex> g(b.tcp->mu());
    TcpSocket::connections_to_kernel(b.tcp.get(), &moved, &failed);
  }
  EXPECT_EQ(moved, 0);
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(b.shadow->repairs, 1);
  EXPECT_FALSE(s->handed_to_kernel());
  EXPECT_EQ(read_all(s, up.size()), up);  // still the stack's
  c->put();
  s->put();
  listener->put();
}

// Nor received segments: the client's FIN that ends a closed server's FIN_WAIT2 is queued on the
// orphan as it goes to TIME_WAIT (tcp_data_queue(), then tcp_fin()); the kernel frees it with the
// full socket. 1100 connections within one TIME_WAIT period through a stack of 1024 receive
// buffers: before, each TIME_WAIT kept its FIN, and from the 1025th on b dropped every segment
// (nginx under xmit with wrk churning stopped answering after ~30 s).
TEST_F(TcpSocketTest, ServerChurnKeepsNoReceivedSegmentsInTimeWait) {
  listen_on_b();
  for (int i = 0; i < 1100; ++i) {
    SCOPED_TRACE(i);
    TcpSocket* c = connect_from_a();
    pump(1'000'000);
    Socket* s = nullptr;
    ASSERT_EQ(listener->accept(&s, nullptr, nullptr, SOCK_NONBLOCK), 0);
    ASSERT_NE(s, nullptr);
    ASSERT_EQ(send(s, "response", 8), 8);
    EXPECT_EQ(read_all(c, 8).size(), 8u);
    s->put();  // the server closes first: its side goes to TIME_WAIT when c's FIN comes
    pump(1'000'000);
    c->put();
    pump(1'000'000);
  }
  EXPECT_TRUE(b.tcp->has_conns());  // the TIME_WAITs: 1100 x 3 ms is well within 60 s
  listener->put();
}

TEST_F(TcpSocketTest, ConnectToAPortNoOneListensOnIsRefused) {
  TcpSocket* c = a.socket();
  sockaddr_in to = addr(kB, 7001);
  ASSERT_EQ(c->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, true), -EINPROGRESS);
  EXPECT_EQ(c->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, true), -EALREADY);
  pump();
  EXPECT_EQ(b.tcp->mib.OutRsts, 1u);  // b's stack answered the SYN with a reset
  int wfd;
  EXPECT_TRUE(c->poll_mask(&wfd) & (POLLERR | POLLHUP));
  EXPECT_EQ(so_error(c), ECONNREFUSED);
  EXPECT_EQ(so_error(c), 0);  // consumed
  c->put();
}

TEST_F(TcpSocketTest, PeerResetGivesEconnresetThenEpipe) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  linger lg{1, 0};  // SO_LINGER 0: close() resets
  ASSERT_EQ(s->setsockopt(SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  const uint64_t rsts = b.tcp->mib.OutRsts;
  s->put();
  pump();
  EXPECT_EQ(b.tcp->mib.OutRsts, rsts + 1);  // tcp_send_active_reset() counts it, as the kernel's
  uint8_t buf[16];
  EXPECT_EQ(c->recvmsg(msg(buf, sizeof buf), 0), -ECONNRESET);
  EXPECT_EQ(send(c, "x", 1, MSG_NOSIGNAL), -EPIPE);
  c->put();
  listener->put();
}

TEST_F(TcpSocketTest, StateErrnosAsLinux) {
  TcpSocket* c = a.socket();
  uint8_t buf[4];
  EXPECT_EQ(c->recvmsg(msg(buf, sizeof buf), 0), -ENOTCONN);  // never connected
  EXPECT_EQ(send(c, "x", 1, MSG_NOSIGNAL), -EPIPE);            // kernel: sk_stream_wait_connect()
  EXPECT_EQ(c->shutdown(SHUT_WR), -ENOTCONN);
  sockaddr_in peer{};
  socklen_t plen = sizeof peer;
  EXPECT_EQ(c->getname(reinterpret_cast<sockaddr*>(&peer), &plen, true), -ENOTCONN);
  Socket* none = nullptr;
  EXPECT_EQ(c->accept(&none, nullptr, nullptr, 0), -EINVAL);  // not listening
  sockaddr_in to = addr(kB, 7000);
  EXPECT_EQ(c->connect(reinterpret_cast<sockaddr*>(&to), 4, true), -EINVAL);
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  EXPECT_EQ(c->connect(reinterpret_cast<sockaddr*>(&v6), sizeof v6, true), -EAFNOSUPPORT);
  c->put();
}

TEST_F(TcpSocketTest, OptionsReachTheProtocol) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  int on = 1, v = 0;
  socklen_t l = sizeof v;
  ASSERT_EQ(c->setsockopt(SOL_TCP, TCP_NODELAY, &on, sizeof on), 0);
  ASSERT_EQ(c->getsockopt(SOL_TCP, TCP_NODELAY, &v, &l), -ENOPROTOOPT);  // the fake kernel knows no TCP options
  tcp_info ti{};
  l = sizeof ti;
  ASSERT_EQ(c->getsockopt(SOL_TCP, TCP_INFO, &ti, &l), 0);
  EXPECT_EQ(ti.tcpi_state, TCP_ESTABLISHED);
  EXPECT_EQ(ti.tcpi_snd_mss, 1448u);  // 1500 - 20 - 20 - 12 (timestamps)
  EXPECT_TRUE(ti.tcpi_options & TCPI_OPT_TIMESTAMPS);
  EXPECT_TRUE(ti.tcpi_options & TCPI_OPT_SACK);
  int inq = -1;
  ASSERT_EQ(send(c, "hello", 5), 5);
  pump();
  ASSERT_EQ(s->ioctl(SIOCINQ, &inq), 0);
  EXPECT_EQ(inq, 5);
  // The kernel's tcpi_pacing_rate and tcpi_max_pacing_rate follow glibc's struct (offset 104): the
  // ACK of "hello" set the client's rate (tcp_update_pacing_rate(): ~0 before any); no
  // SO_MAX_PACING_RATE: ~0. A longer buffer gets Linux 6.18's 280 bytes.
  std::vector<uint8_t> big(280 + 24, 0xee);
  l = static_cast<socklen_t>(big.size());
  ASSERT_EQ(c->getsockopt(SOL_TCP, TCP_INFO, big.data(), &l), 0);
  EXPECT_EQ(l, 280u);
  uint64_t rates[2];
  std::memcpy(rates, big.data() + 104, sizeof rates);
  EXPECT_NE(rates[0], ~0ull);
  EXPECT_GT(rates[0], 0u);
  EXPECT_EQ(rates[1], ~0ull);
  EXPECT_EQ(big[280], 0xee);
  c->put();
  s->put();
  listener->put();
}

// TCP_NOTSENT_LOWAT: a new skb only while the bytes not yet sent stay under the limit
// (sk_stream_memory_free()), and POLLOUT only while twice them do (tcp_poll()). With the limit at
// 1 byte a non-blocking write stops once the congestion window holds data back, short of what the
// send buffer alone takes: what waits unsent then is at most one skb (size_goal, 45 MSS of GSO
// skb), the tail skb the congestion window cut being filled up to size_goal without a memory check
// (tcp_sendmsg_locked() looks only before a new skb); once everything is sent and acknowledged the
// socket is writeable.
TEST_F(TcpSocketTest, NotsentLowatLimitsWhatWaitsUnsent) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  std::vector<uint8_t> big(400'000, 7);
  const ssize_t r0 = send(c, big.data(), big.size());  // the send buffer's limit
  ASSERT_GT(r0, 0);
  EXPECT_EQ(read_all(s, static_cast<size_t>(r0)).size(), static_cast<size_t>(r0));
  pump();
  int wfd;
  ASSERT_TRUE(c->poll_mask(&wfd) & POLLOUT);
  int lowat = 1;
  ASSERT_EQ(c->setsockopt(SOL_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat), 0);
  const ssize_t r1 = send(c, big.data(), big.size());
  ASSERT_GT(r1, 0);
  EXPECT_LT(r1, r0) << "sndbuf allowed " << r0;
  int notsent = -1;
  ASSERT_EQ(c->ioctl(SIOCOUTQNSD, &notsent), 0);
  EXPECT_GT(notsent, 0);
  EXPECT_LE(notsent, 45 * 1448);  // one skb of size_goal (64 KiB less MAX_TCP_HEADER, in MSS)
  EXPECT_FALSE(c->poll_mask(&wfd) & POLLOUT);
  EXPECT_EQ(send(c, big.data(), big.size()), -EAGAIN);
  EXPECT_EQ(read_all(s, static_cast<size_t>(r1)).size(), static_cast<size_t>(r1));
  pump();
  EXPECT_TRUE(c->poll_mask(&wfd) & POLLOUT);
  lowat = 0;  // back to net.ipv4.tcp_notsent_lowat (no limit)
  ASSERT_EQ(c->setsockopt(SOL_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat), 0);
  EXPECT_GT(send(c, big.data(), big.size()), r1);
  c->put();
  s->put();
  listener->put();
}

// splice()/sendfile()'s send (Socket::sendmsg_pull()): the socket pulls from its source only the
// bytes it queues — a non-blocking send against the send buffer's limit takes a part, the source's
// position moves by exactly that count, the next is -EAGAIN without a pull — and the peer gets
// the source's bytes in order; a source shorter than the send ends it with its own count.
struct VecSource {
  const std::vector<uint8_t>* data;
  size_t pos = 0;
  static ssize_t pull(void* ctx, void* to, size_t len) {
    auto* v = static_cast<VecSource*>(ctx);
    size_t n = std::min(len, v->data->size() - v->pos);
    std::memcpy(to, v->data->data() + v->pos, n);
    v->pos += n;
    return static_cast<ssize_t>(n);
  }
};

TEST_F(TcpSocketTest, SendmsgPullTakesOnlyWhatItQueues) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  std::vector<uint8_t> data(1'000'000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + 3);
  VecSource v{&data};
  PullSource src{.pull = VecSource::pull, .ctx = &v};
  const ssize_t r0 = c->sendmsg_pull(&src, data.size(), MSG_DONTWAIT);
  ASSERT_GT(r0, 0);
  ASSERT_LT(r0, static_cast<ssize_t>(data.size()));
  EXPECT_EQ(v.pos, static_cast<size_t>(r0));
  EXPECT_FALSE(src.ended);
  EXPECT_EQ(c->sendmsg_pull(&src, data.size() - v.pos, MSG_DONTWAIT), -EAGAIN);
  EXPECT_EQ(v.pos, static_cast<size_t>(r0));
  std::vector<uint8_t> got = read_all(s, static_cast<size_t>(r0));
  while (got.size() < data.size()) {
    pump();
    ssize_t r = c->sendmsg_pull(&src, data.size() - v.pos, MSG_DONTWAIT);
    ASSERT_TRUE(r > 0 || r == -EAGAIN) << r;
    std::vector<uint8_t> more = read_all(s, v.pos - got.size());
    got.insert(got.end(), more.begin(), more.end());
  }
  EXPECT_TRUE(got == data);
  // A source with 100 bytes left asked for 1000: 100, and it ended.
  v.pos = data.size() - 100;
  PullSource tail{.pull = VecSource::pull, .ctx = &v};
  EXPECT_EQ(c->sendmsg_pull(&tail, 1000, MSG_DONTWAIT), 100);
  EXPECT_TRUE(tail.ended);
  EXPECT_EQ(read_all(s, 100).size(), 100u);
  c->put();
  s->put();
  listener->put();
}

// SO_REUSEPORT: two listeners on one port share the connections, each connection going to the
// one the 4-tuple's hash picks (reuseport_select_sock()); without the option the first takes all.
TEST_F(TcpSocketTest, ReuseportListenersShareConnections) {
  for (bool reuse : {true, false}) {
    SCOPED_TRACE(reuse);
    TcpSocket* l[2];
    int on = reuse ? 1 : 0;
    for (TcpSocket*& x : l) {
      x = b.socket();
      ASSERT_EQ(x->setsockopt(SOL_SOCKET, SO_REUSEPORT, &on, sizeof on), 0);
      sockaddr_in me = addr(0, 7100);
      ASSERT_EQ(x->bind(reinterpret_cast<sockaddr*>(&me), sizeof me), 0);
      ASSERT_EQ(x->listen(64), 0);
    }
    std::vector<TcpSocket*> clients;
    for (int i = 0; i < 16; ++i) clients.push_back(connect_from_a(7100));
    pump();
    int got[2] = {0, 0};
    for (int k = 0; k < 2; ++k) {
      for (Socket* child = nullptr; l[k]->accept(&child, nullptr, nullptr, SOCK_NONBLOCK) == 0 && child != nullptr;) {
        ++got[k];
        child->put();
        child = nullptr;
      }
    }
    EXPECT_EQ(got[0] + got[1], 16);
    if (reuse) {
      EXPECT_GT(got[0], 0);
      EXPECT_GT(got[1], 0);
    } else {
      EXPECT_EQ(got[0], 16);
    }
    for (TcpSocket* c : clients) c->put();
    for (TcpSocket* x : l) x->put();
    pump(2'000'000);
  }
}

}  // namespace
}  // namespace xmit
