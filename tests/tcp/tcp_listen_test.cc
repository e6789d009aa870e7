// tests/tcp/tcp_listen_test.cc — passive open: the SYN-ACK (tcp_make_synack(),
// tcp_synack_options(), tcp_openreq_init_rwin()), its retransmissions (reqsk_timer_handler()),
// the final ACK -> child on the accept queue (tcp_check_req(), tcp_create_openreq_child()), backlog
// overflow, invalid ACKs, closing a listener with queued children (inet_csk_listen_stop()).
#include <poll.h>

#include "gtest/gtest.h"
#include "tests/tcp/tcp_conn_bed.h"

namespace xmit::testing_tcp {
namespace {

constexpr uint8_t kSyn = TCPHDR_SYN, kSynAck = TCPHDR_SYN | TCPHDR_ACK, kAck = TCPHDR_ACK, kRst = TCPHDR_RST,
                  kRstAck = TCPHDR_RST | TCPHDR_ACK;

uint32_t be32_at(const std::vector<uint8_t>& v, size_t off) {
  return (uint32_t{v[off]} << 24) | (uint32_t{v[off + 1]} << 16) | (uint32_t{v[off + 2]} << 8) | v[off + 3];
}

// The SYN-ACK to a Linux SYN: seq = the ISN from secure_tcp_seq(), ack = SYN + 1, window
// rounddown(65536, 1460 - 12) = 65160 (Linux's SYN-ACK window), options MSS 1460 | SACK_PERM TS
// (tsval = ms clock + ts_off, tsecr = the SYN's tsval) | NOP WS 7. The client's ACK makes the
// child: ESTABLISHED, hashed, on the accept queue (listener POLLIN), windows and MSS as negotiated.
TEST(TcpListen, HandshakeAsLinux) {
  ConnBed bed;
  bed.now = 3'000'000;
  tcp_sock* l = bed.listen(1, 5001);
  EXPECT_EQ(l->sk_state, TCP_LISTEN);
  EXPECT_EQ(tcp_poll(l), 0);
  tcp_sock* c = bed.h[0].socket(40000);
  ASSERT_EQ(bed.connect(c, 5001), 0);
  bed.run();
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 3u);
  const WireSeg& sa = segs[1];
  EXPECT_EQ(sa.flags, kSynAck);
  EXPECT_EQ(sa.seq, 0x7ffffff0u);
  EXPECT_EQ(sa.ack, 1001u);
  EXPECT_EQ(sa.window, 65160);
  ASSERT_EQ(sa.options.size(), 20u);
  EXPECT_EQ(std::vector<uint8_t>(sa.options.begin(), sa.options.begin() + 8),
            (std::vector<uint8_t>{2, 4, 0x05, 0xb4, 4, 2, 8, 10}));
  EXPECT_EQ(be32_at(sa.options, 8), 3000u + 90000u);
  EXPECT_EQ(be32_at(sa.options, 12), 3000u + 500u);  // the SYN's TSval
  EXPECT_EQ(std::vector<uint8_t>(sa.options.begin() + 16, sa.options.end()), (std::vector<uint8_t>{1, 3, 3, 7}));
  EXPECT_EQ(segs[2].flags, kAck);
  EXPECT_EQ(tcp_poll(l), POLLIN | POLLRDNORM);
  ASSERT_EQ(bed.h[1].hashed.size(), 1u);
  tcp_sock* s = inet_csk_accept(l);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(inet_csk_accept(l), nullptr);
  EXPECT_EQ(tcp_poll(l), 0);
  EXPECT_EQ(s, bed.h[1].hashed[0]);
  EXPECT_EQ(s->sk_state, TCP_ESTABLISHED);
  EXPECT_EQ(s->saddr, bed.h[1].addr);
  EXPECT_EQ(s->daddr, bed.h[0].addr);
  EXPECT_EQ(s->sport, 5001);
  EXPECT_EQ(s->dport, 40000);
  EXPECT_EQ(s->snd_una, 0x7ffffff1u);
  EXPECT_EQ(s->rcv_nxt, 1001u);
  EXPECT_EQ(s->rx_opt.snd_wscale, 7);
  EXPECT_EQ(s->rx_opt.rcv_wscale, 7);
  EXPECT_TRUE(s->rx_opt.sack_ok);
  EXPECT_TRUE(s->rx_opt.tstamp_ok);
  EXPECT_EQ(s->mss_cache, 1448u);
  EXPECT_EQ(s->advmss, 1448);
  EXPECT_EQ(s->tsoffset, 90000u);
  EXPECT_EQ(s->snd_wnd, uint32_t{segs[2].window} << 7);
  EXPECT_EQ(s->snd_cwnd, 10u);
  EXPECT_EQ(s->skb_pool, l->skb_pool);
  EXPECT_EQ(l->sk_ack_backlog, 0);
  EXPECT_TRUE(l->reqsk_queue.empty());
  // Data both ways on the new connection.
  EXPECT_EQ(bed.send(c, 3000), 3000);
  EXPECT_EQ(bed.send(s, 2000), 2000);
  bed.run();
  EXPECT_EQ(bed.recv(s, 8000), 3000);
  EXPECT_EQ(bed.recv(c, 8000), 2000);
}

// tcp_check_req(): "Check for pure retransmitted SYN." — a repeated SYN gets the SYN-ACK again at
// once (inet_rtx_syn_ack(): num_retrans + 1) and pushes the request's timer to now + its timeout.
TEST(TcpListen, RepeatedSynGetsSynAck) {
  ConnBed bed;
  tcp_sock* l = bed.listen(1, 5001);
  tcp_sock* c = bed.h[0].socket(40000);
  bed.drop = [](const WireSeg& w) { return w.from == 1; };
  ASSERT_EQ(bed.connect(c, 5001), 0);
  bed.run();
  const uint64_t t0 = bed.now;
  bed.advance(500'000);
  bed.take();
  tcp_sock fake;  // addresses a segment from c's side to host 1
  fake.saddr = bed.h[1].addr;
  fake.daddr = bed.h[0].addr;
  fake.sport = 5001;
  fake.dport = 40000;
  bed.h[1].socks.push_back(std::make_unique<tcp_sock>(fake));
  bed.inject(bed.h[1].socks.back().get(), 1000, 0, kSyn, 1000);
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].flags, kSynAck);
  EXPECT_EQ(segs[0].seq, 0x7ffffff0u);
  ASSERT_EQ(l->reqsk_queue.size(), 1u);
  EXPECT_EQ(l->reqsk_queue[0].num_retrans, 1);
  EXPECT_EQ(tcp_next_timer(l), t0 + 1'500'000);
}

// SYN-ACK timer alone (the client's SYN arrives once: its retransmissions are lost): exactly 0, 1,
// 3, 7, 15, 31 s, dropped at 63 s.
TEST(TcpListen, SynAckScheduleExact) {
  ConnBed bed;
  tcp_sock* l = bed.listen(1, 5001);
  tcp_sock* c = bed.h[0].socket(40000);
  int syns = 0;
  bed.drop = [&syns](const WireSeg& w) { return w.from == 1 || (w.flags == TCPHDR_SYN && syns++ > 0); };
  const uint64_t t0 = bed.now;
  ASSERT_EQ(bed.connect(c, 5001), 0);
  bed.run();
  bed.advance(70'000'000);
  std::vector<uint64_t> synacks;
  for (const WireSeg& w : bed.log)
    if (w.from == 1) synacks.push_back((w.at_us - t0) / 1000);
  EXPECT_EQ(synacks, (std::vector<uint64_t>{0, 1000, 3000, 7000, 15000, 31000}));
  EXPECT_TRUE(l->reqsk_queue.empty());
}

// sk_acceptq_is_full() is "sk_ack_backlog > sk_max_ack_backlog": with backlog 1, two children wait;
// a third SYN is dropped (no SYN-ACK) until accept() makes room.
TEST(TcpListen, BacklogFullDropsSyn) {
  ConnBed bed;
  tcp_sock* l = bed.listen(1, 5001, 1);
  tcp_sock* c[3];
  for (int i = 0; i < 3; ++i) {
    c[i] = bed.h[0].socket(static_cast<uint16_t>(40000 + i));
    ASSERT_EQ(bed.connect(c[i], 5001), 0);
    bed.run();
  }
  EXPECT_EQ(c[0]->sk_state, TCP_ESTABLISHED);
  EXPECT_EQ(c[1]->sk_state, TCP_ESTABLISHED);
  EXPECT_EQ(c[2]->sk_state, TCP_SYN_SENT);
  EXPECT_EQ(l->sk_ack_backlog, 2);
  ASSERT_NE(inet_csk_accept(l), nullptr);
  bed.advance(1'000'000);  // the SYN retransmission now gets through
  EXPECT_EQ(c[2]->sk_state, TCP_ESTABLISHED);
  EXPECT_EQ(l->sk_ack_backlog, 2);
}

// No socket to clone (ops->clone() nullptr): as a full accept queue ("listen_overflow"), the ACK
// is dropped and the request stays; its SYN-ACK retransmission brings the ACK again.
TEST(TcpListen, CloneFailureKeepsRequest) {
  ConnBed bed;
  tcp_sock* l = bed.listen(1, 5001);
  bed.h[1].refuse_clone = true;
  tcp_sock* c = bed.h[0].socket(40000);
  ASSERT_EQ(bed.connect(c, 5001), 0);
  bed.run();
  EXPECT_EQ(c->sk_state, TCP_ESTABLISHED);  // the client thinks it is connected
  EXPECT_EQ(l->reqsk_queue.size(), 1u);
  bed.h[1].refuse_clone = false;
  bed.advance(1'000'000);  // SYN-ACK again -> the client's duplicate ACK -> child
  EXPECT_TRUE(l->reqsk_queue.empty());
  EXPECT_NE(inet_csk_accept(l), nullptr);
}

// TCP_DEFER_ACCEPT's seconds as SYN-ACK retransmissions (secs_to_retrans(), net/ipv4/tcp.c): the
// fewest whose periods (1, 2, 4, ... s, at most 120) add up to the seconds.
TEST(TcpListen, DeferAcceptSecondsToRetransmits) {
  EXPECT_EQ(secs_to_retrans(-1), 0);
  EXPECT_EQ(secs_to_retrans(0), 0);
  EXPECT_EQ(secs_to_retrans(1), 1);
  EXPECT_EQ(secs_to_retrans(2), 2);
  EXPECT_EQ(secs_to_retrans(3), 2);
  EXPECT_EQ(secs_to_retrans(4), 3);
  EXPECT_EQ(secs_to_retrans(7), 3);
  EXPECT_EQ(secs_to_retrans(8), 4);
  EXPECT_EQ(secs_to_retrans(247), 8);  // 1 + 2 + 4 + ... + 64 + 120 (the 120 s cap)
  EXPECT_EQ(secs_to_retrans(248), 9);
  EXPECT_EQ(secs_to_retrans(1 << 30), 255);
}

// TCP_DEFER_ACCEPT (tcp_check_req(): "While TCP_DEFER_ACCEPT is active, drop bare ACK."): the
// handshake's ACK makes no child (the request is marked acked, TcpExtTCPDeferAcceptDrop), the
// listener stays unreadable and no SYN-ACK is retransmitted while the period runs (syn_ack_recalc():
// no resend after the ACK); the first data segment makes the child, its bytes readable at accept.
TEST(TcpListen, DeferAcceptWaitsForData) {
  ConnBed bed;
  LinuxMib mib;
  tcp_sock* l = bed.listen(1, 5001);
  l->net_mib = &mib;
  l->rskq_defer_accept = secs_to_retrans(5);  // 3: periods 1 + 2 + 4 s
  tcp_sock* c = bed.h[0].socket(40000);
  ASSERT_EQ(bed.connect(c, 5001), 0);
  bed.run();
  EXPECT_EQ(c->sk_state, TCP_ESTABLISHED);
  ASSERT_EQ(l->reqsk_queue.size(), 1u);
  EXPECT_TRUE(l->reqsk_queue[0].acked);
  EXPECT_EQ(mib.TCPDeferAcceptDrop, 1u);
  EXPECT_EQ(tcp_poll(l), 0);
  bed.advance(2'500'000);  // past the first two timer runs: no SYN-ACK again
  EXPECT_EQ(tcp_poll(l), 0);
  EXPECT_EQ(bed.send(c, 100), 100);
  bed.run();
  EXPECT_TRUE(l->reqsk_queue.empty());
  EXPECT_EQ(tcp_poll(l), POLLIN | POLLRDNORM);
  tcp_sock* s = inet_csk_accept(l);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(bed.recv(s, 1000), 100);
  int synacks = 0;
  for (const WireSeg& w : bed.log) synacks += w.from == 1 && w.flags == kSynAck;
  EXPECT_EQ(synacks, 1);
  EXPECT_EQ(mib.TCPDeferAcceptDrop, 1u);
}

// Without data the period ends with one SYN-ACK (syn_ack_recalc(): resend once num_timeout reaches
// rskq_defer_accept - 1): TCP_DEFER_ACCEPT 3 s is 2 retransmissions, the timer runs at 1 s (acked:
// nothing sent) and 3 s (the SYN-ACK); the client's duplicate ACK then makes the child, without data.
TEST(TcpListen, DeferAcceptEndsWithSynAckThenChild) {
  ConnBed bed;
  LinuxMib mib;
  tcp_sock* l = bed.listen(1, 5001);
  l->net_mib = &mib;
  l->rskq_defer_accept = secs_to_retrans(3);
  tcp_sock* c = bed.h[0].socket(40000);
  const uint64_t t0 = bed.now;
  ASSERT_EQ(bed.connect(c, 5001), 0);
  bed.run();
  bed.advance(2'900'000);
  EXPECT_EQ(tcp_poll(l), 0);
  bed.advance(200'000);
  std::vector<uint64_t> synacks;
  for (const WireSeg& w : bed.log)
    if (w.from == 1 && w.flags == kSynAck) synacks.push_back((w.at_us - t0) / 1000);
  EXPECT_EQ(synacks, (std::vector<uint64_t>{0, 3000}));
  EXPECT_TRUE(l->reqsk_queue.empty());
  EXPECT_EQ(mib.TCPDeferAcceptDrop, 1u);  // the handshake's ACK; the second made the child
  tcp_sock* s = inet_csk_accept(l);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->sk_state, TCP_ESTABLISHED);
}

// A client that goes silent after its bare ACK: the request is not expired while acked and the
// deferral runs (syn_ack_recalc()'s expire needs num_timeout >= rskq_defer_accept), so with
// TCP_DEFER_ACCEPT past the SYN-ACK retries it lives through the deferral: 7 retransmissions are
// 127 s (retrans_to_secs()); timer runs at 1, 3, 7, 15, 31, 63 s (nothing sent), 127 s (the last
// chance's SYN-ACK), then 127 + 120 s: dropped.
TEST(TcpListen, DeferAcceptKeepsAckedRequestPastSynAckRetries) {
  ConnBed bed;
  tcp_sock* l = bed.listen(1, 5001);
  l->rskq_defer_accept = 7;
  l->icsk_syn_retries = 2;
  tcp_sock* c = bed.h[0].socket(40000);
  const uint64_t t0 = bed.now;
  ASSERT_EQ(bed.connect(c, 5001), 0);
  bed.run();
  bed.drop = [](const WireSeg& w) { return w.from == 0; };  // the client goes silent
  bed.advance(246'000'000);
  EXPECT_EQ(l->reqsk_queue.size(), 1u);
  bed.advance(2'000'000);
  EXPECT_TRUE(l->reqsk_queue.empty());
  EXPECT_EQ(inet_csk_accept(l), nullptr);
  std::vector<uint64_t> synacks;
  for (const WireSeg& w : bed.log)
    if (w.from == 1 && w.flags == kSynAck) synacks.push_back((w.at_us - t0) / 1000);
  EXPECT_EQ(synacks, (std::vector<uint64_t>{0, 127000}));
}

// tcp_rcv_state_process(LISTEN): an ACK without a request is reset (seq = its ACK); a RST or a
// plain data segment is dropped; tcp_check_req(): an ACK of the wrong ISN is reset and the request
// stays; a RST in the window drops the request.
TEST(TcpListen, InvalidSegments) {
  ConnBed bed;
  tcp_sock* l = bed.listen(1, 5001);
  // Segments to the listener, as if from host 0 port 40000 (inject() addresses the socket's peer).
  tcp_sock fake;
  fake.saddr = bed.h[1].addr;
  fake.daddr = bed.h[0].addr;
  fake.sport = 5001;
  fake.dport = 40000;
  bed.h[1].socks.push_back(std::make_unique<tcp_sock>(fake));
  tcp_sock* to_l = bed.h[1].socks.back().get();  // only used to address inject() at host 1
  bed.inject(to_l, 100, 5555, kAck, 1000);
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].flags, kRst);
  EXPECT_EQ(segs[0].seq, 5555u);
  bed.inject(to_l, 100, 0, kRst, 0);
  bed.inject(to_l, 100, 0, 0, 1000);
  EXPECT_TRUE(bed.take().empty());
  bed.inject(to_l, 100, 0, kSyn, 1000);  // a request (SYN-ACK out)
  EXPECT_EQ(l->reqsk_queue.size(), 1u);
  bed.inject(to_l, 101, 0x7ffffff0u, kAck, 1000);  // acks the ISN itself: reset
  segs = bed.take();
  ASSERT_EQ(segs.size(), 2u);
  EXPECT_EQ(segs[0].flags, kSynAck);
  EXPECT_EQ(segs[1].flags, kRst);
  EXPECT_EQ(l->reqsk_queue.size(), 1u);
  bed.inject(to_l, 101, 0, kRst, 0);
  EXPECT_TRUE(l->reqsk_queue.empty());
  EXPECT_TRUE(bed.take().empty());
}

// close() on a listener: requests dropped; each child not yet accepted is reset (RST to its peer:
// ECONNRESET there) and handed to done(); the listener itself too.
TEST(TcpListen, CloseResetsQueuedChildren) {
  ConnBed bed;
  tcp_sock* l = bed.listen(1, 5001);
  tcp_sock* c = bed.h[0].socket(40000);
  ASSERT_EQ(bed.connect(c, 5001), 0);
  bed.run();
  ASSERT_EQ(l->sk_ack_backlog, 1);
  bed.take();
  bed.close(l);
  EXPECT_EQ(l->sk_state, TCP_CLOSE);
  EXPECT_EQ(bed.h[1].done_calls, 2);
  EXPECT_TRUE(bed.h[1].hashed.empty());
  bed.run();
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].flags, kRstAck);
  EXPECT_EQ(c->sk_state, TCP_CLOSE);
  EXPECT_EQ(c->sk_err, ECONNRESET);
  EXPECT_EQ(inet_csk_listen_start(l, 5), 0);  // a closed socket may listen again
  EXPECT_EQ(inet_csk_listen_start(c, 5), 0);
  EXPECT_EQ(inet_csk_listen_start(l, 10), 0);  // again: only the backlog changes
  EXPECT_EQ(l->sk_max_ack_backlog, 10);
}

}  // namespace
}  // namespace xmit::testing_tcp
