// tests/tcp/tcp_conn_test.cc — the connection state machine (tcp_conn.h): active open, the SYN and
// its retries, SYN-ACK processing, refusal. Expected bytes and values come from the kernel source
// named at each test.
#include <poll.h>

#include "gtest/gtest.h"
#include "stack/tcp/tcp_cong.h"
#include "tests/tcp/tcp_conn_bed.h"

namespace xmit::testing_tcp {
namespace {

constexpr uint8_t kSyn = TCPHDR_SYN, kSynAck = TCPHDR_SYN | TCPHDR_ACK, kAck = TCPHDR_ACK, kRst = TCPHDR_RST,
                  kRstAck = TCPHDR_RST | TCPHDR_ACK, kFinAck = TCPHDR_FIN | TCPHDR_ACK;

uint32_t be32_at(const std::vector<uint8_t>& v, size_t off) {
  return (uint32_t{v[off]} << 24) | (uint32_t{v[off + 1]} << 16) | (uint32_t{v[off + 2]} << 8) | v[off + 3];
}

void inject(ConnBed& bed, tcp_sock* tp, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t window,
            std::vector<uint8_t> options = {}) {
  bed.inject(tp, seq, ack, flags, window, std::move(options));
}

// The options of Linux's SYN-ACK: MSS, SACK_PERM + TS, NOP WS (tcp_synack_options() order).
std::vector<uint8_t> synack_options(uint16_t mss, uint32_t tsval, uint32_t tsecr, uint8_t ws) {
  return {TCPOPT_MSS, 4, static_cast<uint8_t>(mss >> 8), static_cast<uint8_t>(mss), TCPOPT_SACK_PERM, 2,
          TCPOPT_TIMESTAMP, 10, static_cast<uint8_t>(tsval >> 24), static_cast<uint8_t>(tsval >> 16),
          static_cast<uint8_t>(tsval >> 8), static_cast<uint8_t>(tsval), static_cast<uint8_t>(tsecr >> 24),
          static_cast<uint8_t>(tsecr >> 16), static_cast<uint8_t>(tsecr >> 8), static_cast<uint8_t>(tsecr),
          TCPOPT_NOP, TCPOPT_WINDOW, 3, ws};
}

// kernel: tcp_v4_connect() + tcp_connect_init() + tcp_connect(): the SYN carries the ISN from
// secure_tcp_seq(), ACK 0, the window tcp_select_initial_window() gives for 65536 bytes of space
// and MSS 1460 (rounddown(65536, 1460) = 64240, Linux's well-known SYN window), and the options in
// tcp_options_write()'s order: MSS 1460 | SACK_PERM TS(tsval = ms clock + tsoffset, tsecr 0) | NOP
// WS 7 (ilog2(max(6 MiB tcp_rmem[2], rmem_max)) - 15 = 22 - 15).
TEST(TcpConnect, SynBytesAsLinux) {
  ConnBed bed;
  bed.now = 2'000'000;
  tcp_sock* c = bed.h[0].socket(40000);
  ASSERT_EQ(bed.connect(c, 5001), 0);
  EXPECT_EQ(c->sk_state, TCP_SYN_SENT);
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 1u);
  const WireSeg& s = segs[0];
  EXPECT_EQ(s.flags, kSyn);
  EXPECT_EQ(s.seq, 1000u);
  EXPECT_EQ(s.ack, 0u);
  EXPECT_EQ(s.window, 64240);
  EXPECT_EQ(s.payload, 0u);
  const std::vector<uint8_t> want = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0x09, 0xc4 /* 2000 ms + 500 */, 0, 0, 0, 0,
                                     1, 3, 3, 7};
  EXPECT_EQ(s.options, want);
  EXPECT_EQ(c->snd_nxt, 1001u);
  EXPECT_EQ(c->write_seq, 1001u);
  EXPECT_EQ(c->rx_opt.rcv_wscale, 7);
  EXPECT_EQ(tcp_poll(c) & (POLLOUT | POLLIN | POLLHUP), 0);  // tcp_poll(): nothing while SYN_SENT
  EXPECT_EQ(tcp_connect(c, ConnBed::kMtu, bed.xmit_fn(0)), -EALREADY);
}

// TCP_MAXSEG before connect(): the SYN's MSS is the clamp (tcp_connect_init(): tcp_mss_clamp()).
TEST(TcpConnect, UserMssClampsTheSynMss) {
  ConnBed bed;
  tcp_sock* c = bed.h[0].socket(40000);
  c->rx_opt.user_mss = 1000;
  ASSERT_EQ(bed.connect(c, 5001), 0);
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ((segs[0].options[2] << 8) | segs[0].options[3], 1000);
  EXPECT_EQ(segs[0].window, 65000);  // rounddown(65536, 1000)
}

// kernel: tcp_rcv_synsent_state_process(): the SYN-ACK acks the SYN (snd_una), sets rcv_nxt, the
// unscaled window, wscale/timestamps/SACK as negotiated; tcp_sync_mss() with the peer's MSS and the
// timestamp option (1400 - 12); advmss loses the timestamp (1460 - 12); tcp_finish_connect()
// -> ESTABLISHED with cwnd 10 (tcp_init_transfer()); the final ACK goes at once.
TEST(TcpConnect, SynAckEstablishes) {
  ConnBed bed;
  tcp_sock* c = bed.h[0].socket(40000);
  ASSERT_EQ(bed.connect(c, 5001), 0);
  bed.take();
  bed.now += 30'000;  // 30 ms RTT
  inject(bed, c, 7777, 1001, kSynAck, 65160, synack_options(1400, 424242, 1000 + 500, 9));
  EXPECT_EQ(c->sk_state, TCP_ESTABLISHED);
  EXPECT_EQ(c->snd_una, 1001u);
  EXPECT_EQ(c->rcv_nxt, 7778u);
  EXPECT_EQ(c->copied_seq, 7778u);
  EXPECT_EQ(c->snd_wnd, 65160u);  // "The window in SYN & SYN/ACK segments is never scaled."
  EXPECT_TRUE(c->rx_opt.tstamp_ok);
  EXPECT_TRUE(c->rx_opt.sack_ok);
  EXPECT_TRUE(c->rx_opt.wscale_ok);
  EXPECT_EQ(c->rx_opt.snd_wscale, 9);
  EXPECT_EQ(c->rx_opt.rcv_wscale, 7);
  EXPECT_EQ(c->rx_opt.ts_recent, 424242u);
  EXPECT_EQ(c->mss_cache, 1388u);
  EXPECT_EQ(c->advmss, 1448);
  EXPECT_EQ(c->tcp_header_len, 32);
  EXPECT_EQ(c->snd_cwnd, 10u);
  EXPECT_STREQ(tcp_ca_ops(c)->name, "cubic");  // tcp_init_transfer(): Linux's default congestion control
  EXPECT_EQ(c->packets_out, 0u);
  EXPECT_EQ(c->srtt_us, 30'000u << 3);  // the SYN's RTT sample (tcp_ack_update_rtt)
  EXPECT_FALSE(c->icsk_retransmit_timer.pending);
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].flags, kAck);
  EXPECT_EQ(segs[0].seq, 1001u);
  EXPECT_EQ(segs[0].ack, 7778u);
  // The window the ACK offers: 65536 free bytes in units of 128 (Linux offers 502 here: its
  // rcv_ssthresh starts at the SYN's 64240 — not reproduced, see tcp_sock.h).
  EXPECT_EQ(segs[0].window, 512);
  EXPECT_EQ(segs[0].options.size(), 12u);  // NOP NOP TS
  EXPECT_EQ(be32_at(segs[0].options, 8), 424242u);
  EXPECT_EQ(tcp_poll(c) & POLLOUT, POLLOUT);
}

// TCP_DEFER_ACCEPT on a connecting socket (tcp_rcv_synsent_state_process(): "Save one ACK"): the
// handshake's ACK is not sent at once but waits for the first data, which carries it, or for
// TCP_DELACK_MAX (200 ms) when none comes.
TEST(TcpConnect, DeferAcceptSavesTheHandshakeAck) {
  for (bool data : {true, false}) {
    SCOPED_TRACE(data);
    ConnBed bed;
    tcp_sock* c = bed.h[0].socket(40000);
    c->rskq_defer_accept = 1;
    ASSERT_EQ(bed.connect(c, 5001), 0);
    bed.take();
    const uint64_t t0 = bed.now;
    inject(bed, c, 7777, 1001, kSynAck, 65160, synack_options(1400, 424242, 1000 + 500, 9));
    EXPECT_EQ(c->sk_state, TCP_ESTABLISHED);
    EXPECT_TRUE(bed.take().empty()) << "no ACK at once";
    if (data) {
      bed.advance(10'000);
      EXPECT_EQ(bed.send(c, 100), 100);
      auto segs = bed.take();
      ASSERT_EQ(segs.size(), 1u);
      EXPECT_EQ(segs[0].flags & kAck, kAck);
      EXPECT_EQ(segs[0].ack, 7778u);
      EXPECT_EQ(segs[0].payload, 100u);
      EXPECT_FALSE(c->icsk_delack_timer.pending) << "the data carried the ACK";
    } else {
      bed.advance(300'000);
      std::vector<uint64_t> acks;
      for (const WireSeg& w : bed.log)
        if (w.from == 0 && w.flags == kAck && w.at_us > t0) acks.push_back((w.at_us - t0) / 1000);
      EXPECT_EQ(acks, (std::vector<uint64_t>{200}));
    }
  }
}

// A SYN-ACK without options: no scaling (window_clamp 65535), no timestamps, the peer's MSS 536
// (RFC 1122 default: tcp_v4_connect()'s mss_clamp).
TEST(TcpConnect, SynAckWithoutOptions) {
  ConnBed bed;
  tcp_sock* c = bed.h[0].socket(40000);
  ASSERT_EQ(bed.connect(c, 5001), 0);
  bed.take();
  inject(bed, c, 5, 1001, kSynAck, 8192);
  EXPECT_EQ(c->sk_state, TCP_ESTABLISHED);
  EXPECT_FALSE(c->rx_opt.tstamp_ok);
  EXPECT_FALSE(c->rx_opt.wscale_ok);
  EXPECT_EQ(c->rx_opt.rcv_wscale, 0);
  EXPECT_EQ(c->window_clamp, 65535u);
  EXPECT_EQ(c->mss_cache, 536u);
  EXPECT_EQ(c->tcp_header_len, 20);
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_TRUE(segs[0].options.empty());
}

// RFC 9293 §3.10.7.3 / tcp_rcv_synsent_state_process(): an ACK outside (snd_una, snd_nxt] is
// answered with a reset at its ACK number; a RST with an acceptable ACK is "connection refused";
// a RST without ACK, or with a bad one, is dropped.
TEST(TcpConnect, RefusedAndBadAcks) {
  ConnBed bed;
  tcp_sock* c = bed.h[0].socket(40000);
  ASSERT_EQ(bed.connect(c, 5001), 0);
  bed.take();
  inject(bed, c, 5, 999, kSynAck, 8192);  // SEG.ACK =< ISS
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].flags, kRst);
  EXPECT_EQ(segs[0].seq, 999u);
  EXPECT_EQ(c->sk_state, TCP_SYN_SENT);
  inject(bed, c, 5, 1002, kRstAck, 0);  // unacceptable ACK: dropped, never answered
  inject(bed, c, 5, 0, kRst, 0);        // no ACK: dropped
  EXPECT_TRUE(bed.take().empty());
  EXPECT_EQ(c->sk_state, TCP_SYN_SENT);
  EXPECT_EQ(bed.h[0].done_calls, 0);
  inject(bed, c, 0, 1001, kRstAck, 0);
  EXPECT_EQ(c->sk_state, TCP_CLOSE);
  EXPECT_EQ(c->sk_err, ECONNREFUSED);
  EXPECT_EQ(bed.h[0].done_calls, 1);
  EXPECT_EQ(tcp_poll(c) & (POLLERR | POLLHUP), POLLERR | POLLHUP);
  EXPECT_EQ(tcp_sock_error(c), ECONNREFUSED);
  EXPECT_EQ(tcp_sock_error(c), 0);
  EXPECT_FALSE(c->icsk_retransmit_timer.pending);
  EXPECT_EQ(tcp_next_timer(c), UINT64_MAX);
}

// Connecting to a port nobody listens on: the peer host answers the SYN with RST|ACK
// (tcp_v4_send_reset(): seq 0, ack = SYN + 1) -> ECONNREFUSED.
TEST(TcpConnect, ClosedPortRefuses) {
  ConnBed bed;
  tcp_sock* c = bed.h[0].socket(40000);
  ASSERT_EQ(bed.connect(c, 5001), 0);
  bed.run();
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 2u);
  EXPECT_EQ(segs[1].flags, kRstAck);
  EXPECT_EQ(segs[1].seq, 0u);
  EXPECT_EQ(segs[1].ack, 1001u);
  EXPECT_EQ(segs[1].window, 0);
  EXPECT_TRUE(segs[1].options.empty());
  EXPECT_EQ(c->sk_state, TCP_CLOSE);
  EXPECT_EQ(c->sk_err, ECONNREFUSED);
}

// kernel: tcp_retransmit_timer() in SYN_SENT with tcp_syn_linear_timeouts = 4 (6.5+): the first
// retransmissions keep the 1 s RTO, then it doubles; tcp_write_timeout() gives up after
// tcp_syn_retries + tcp_syn_linear_timeouts = 10 retransmissions: SYNs at 0, 1, 2, 3, 4, 5, 7, 11,
// 19, 35, 67 s and ETIMEDOUT at 131 s (kernels before 6.5: 1+2+...+64 = 127 s).
TEST(TcpConnect, SilentPeerTimesOut) {
  ConnBed bed;
  bed.drop = [](const WireSeg&) { return true; };
  tcp_sock* c = bed.h[0].socket(40000);
  const uint64_t t0 = bed.now;
  ASSERT_EQ(bed.connect(c, 5001), 0);
  bed.advance(200'000'000);
  std::vector<uint64_t> at;
  for (const WireSeg& s : bed.log) {
    EXPECT_EQ(s.flags, kSyn);
    EXPECT_EQ(s.seq, 1000u);
    at.push_back((s.at_us - t0) / 1000);
  }
  EXPECT_EQ(at, (std::vector<uint64_t>{0, 1000, 2000, 3000, 4000, 5000, 7000, 11000, 19000, 35000, 67000}));
  EXPECT_EQ(c->sk_state, TCP_CLOSE);
  EXPECT_EQ(c->sk_err, ETIMEDOUT);
  ASSERT_EQ(bed.h[0].done_socks.size(), 1u);
  // When: done() ran at the 131 s timer (nothing after it).
  EXPECT_EQ(c->total_rto, 10u);
}

// TCP_SYNCNT 1: tcp_write_timeout() also applies retransmits_timed_out() with the exponential
// model (tcp_model_timeout(1, 1 s) = 3 s), which ends the linear retries early: SYNs at 0, 1, 2 s
// and ETIMEDOUT at 3 s.
TEST(TcpConnect, SynRetriesOption) {
  ConnBed bed;
  bed.drop = [](const WireSeg&) { return true; };
  tcp_sock* c = bed.h[0].socket(40000);
  c->icsk_syn_retries = 1;
  ASSERT_EQ(bed.connect(c, 5001), 0);
  bed.advance(2'999'000);
  EXPECT_EQ(c->sk_state, TCP_SYN_SENT);
  EXPECT_EQ(bed.log.size(), 3u);
  bed.advance(1'000);
  EXPECT_EQ(c->sk_state, TCP_CLOSE);
  EXPECT_EQ(c->sk_err, ETIMEDOUT);
  EXPECT_EQ(bed.log.size(), 3u);
}

// A SYN-ACK after two SYN retransmissions: RFC 5681 §3.1 / tcp_init_transfer(): cwnd 1.
TEST(TcpConnect, RetransmittedSynStartsWithCwndOne) {
  ConnBed bed;
  bed.drop = [](const WireSeg&) { return true; };
  tcp_sock* c = bed.h[0].socket(40000);
  ASSERT_EQ(bed.connect(c, 5001), 0);
  bed.advance(2'500'000);
  EXPECT_EQ(bed.log.size(), 3u);
  inject(bed, c, 5, 1001, kSynAck, 8192, synack_options(1460, 1, 0, 7));
  EXPECT_EQ(c->sk_state, TCP_ESTABLISHED);
  EXPECT_EQ(c->snd_cwnd, 1u);
}

// Simultaneous open (RFC 9293 §3.5 figure 8; tcp_rcv_synsent_state_process()'s crossed SYNs): each
// side answers the other's SYN with its own SYN turned SYN-ACK (tcp_send_synack()), enters
// SYN_RECV, and the peer's SYN-ACK (let through tcp_validate_incoming()'s SYN check) completes it.
// Both ISNs are fixed by the bed's hosts (1000 and 0x7ffffff0).
TEST(TcpConnect, SimultaneousOpen) {
  ConnBed bed;
  tcp_sock* a = bed.h[0].socket(40000);
  tcp_sock* b = bed.h[1].socket(5001);
  ASSERT_EQ(bed.connect(a, 5001), 0);
  ASSERT_EQ(bed.connect(b, 40000), 0);
  bed.tick();
  auto to_b = std::move(bed.wire[1].front());
  bed.wire[1].pop_front();
  auto to_a = std::move(bed.wire[0].front());
  bed.wire[0].pop_front();
  bed.deliver(1, to_b);
  bed.deliver(0, to_a);
  EXPECT_EQ(a->sk_state, TCP_SYN_RECV);
  EXPECT_EQ(b->sk_state, TCP_SYN_RECV);
  bed.run();
  EXPECT_EQ(a->sk_state, TCP_ESTABLISHED);
  EXPECT_EQ(b->sk_state, TCP_ESTABLISHED);
  auto segs = bed.take();
  // Then each side ACKs the SYN-ACK's SYN as an old segment (tcp_data_queue(): "A retransmit, 2nd
  // most common case.  Force an immediate ack.").
  ASSERT_EQ(segs.size(), 6u);
  EXPECT_EQ(segs[4].flags, kAck);
  EXPECT_EQ(segs[5].flags, kAck);
  EXPECT_EQ(segs[2].flags, kSynAck);
  EXPECT_EQ(segs[2].seq, 0x7ffffff0u);  // b's ISN again
  EXPECT_EQ(segs[2].ack, 1001u);
  EXPECT_EQ(segs[3].flags, kSynAck);
  EXPECT_EQ(segs[3].seq, 1000u);
  EXPECT_EQ(a->snd_una, 1001u);
  EXPECT_EQ(b->rcv_nxt, 1001u);
  EXPECT_EQ(a->mss_cache, 1448u);
  EXPECT_EQ(bed.send(a, 2000), 2000);
  bed.run();
  EXPECT_EQ(bed.recv(b, 4000), 2000);
}

// kernel: tcp_write_timeout() on a connection: retransmits_timed_out(tcp_retries2 = 15) against
// tcp_model_timeout(15, TCP_RTO_MIN) = (2^10 - 1) * 200 ms + 6 * 120 s = 924.6 s after the first
// transmission of the unanswered segment; with an RTO of 200 ms the RTO timers fire at 0.2, 0.6,
// 1.4, ... 204.6, then every 120 s; the one at 924.6 s gives ETIMEDOUT.
TEST(TcpConnect, EstablishedGivesUpAfterRetries2) {
  ConnBed bed;
  auto [c, s] = bed.connected_pair();
  ASSERT_EQ(c->icsk_rto, 200'000u);  // no RTT on the in-memory wire: the minimum
  bed.drop = [](const WireSeg&) { return true; };
  const uint64_t t0 = bed.now;
  ASSERT_EQ(bed.send(c, 100), 100);
  bed.advance(1000'000'000);
  std::vector<uint64_t> at;
  for (const WireSeg& w : bed.log)
    if (w.from == 0) at.push_back((w.at_us - t0) / 1000);
  EXPECT_EQ(at, (std::vector<uint64_t>{0, 200, 600, 1400, 3000, 6200, 12600, 25400, 51000, 102200, 204600, 324600,
                                       444600, 564600, 684600, 804600}));
  EXPECT_EQ(c->sk_state, TCP_CLOSE);
  EXPECT_EQ(c->sk_err, ETIMEDOUT);
  EXPECT_EQ(bed.h[0].done_calls, 1);
}

// TCP_USER_TIMEOUT 5000 ms: retransmits_timed_out() with that timeout, and the RTO clamped to what
// is left of it (tcp_clamp_rto_to_user_timeout()): ETIMEDOUT 5 s after the first transmission.
TEST(TcpConnect, UserTimeout) {
  ConnBed bed;
  auto [c, s] = bed.connected_pair();
  c->icsk_user_timeout = 5000;
  bed.drop = [](const WireSeg&) { return true; };
  const uint64_t t0 = bed.now;
  ASSERT_EQ(bed.send(c, 100), 100);
  bed.advance_to(t0 + 4'999'000);
  EXPECT_EQ(c->sk_state, TCP_ESTABLISHED);
  bed.advance_to(t0 + 5'000'000);
  EXPECT_EQ(c->sk_state, TCP_CLOSE);
  EXPECT_EQ(c->sk_err, ETIMEDOUT);
}

// kernel: tcp_keepalive_timer(): TCP_KEEPIDLE 10 s, TCP_KEEPINTVL 2 s, TCP_KEEPCNT 3. An answering
// peer ACKs each probe (an old sequence number: tcp_write_wakeup() -> tcp_xmit_probe_skb()) and the
// connection lives on; a silent one gets probes at 10, 12, 14 s and a reset at 16 s -> ETIMEDOUT.
TEST(TcpConnect, Keepalive) {
  ConnBed bed;
  auto [c, s] = bed.connected_pair();
  c->keepalive_time = 10;
  c->keepalive_intvl = 2;
  c->keepalive_probes = 3;
  const uint64_t t0 = bed.now;
  tcp_set_keepalive(c, true);
  bed.advance(25'000'000);
  EXPECT_EQ(c->sk_state, TCP_ESTABLISHED);
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 4u);  // probes at 10 and 20 s, each answered
  EXPECT_EQ(segs[0].from, 0);
  EXPECT_EQ(segs[0].seq, c->snd_una - 1);
  EXPECT_EQ(segs[0].payload, 0u);
  EXPECT_EQ(segs[0].at_us - t0, 10'000'000u);
  EXPECT_EQ(segs[1].from, 1);
  EXPECT_EQ(segs[2].at_us - t0, 20'000'000u);
  bed.drop = [](const WireSeg&) { return true; };
  const uint64_t t1 = segs[3].at_us;  // the last ACK received
  bed.advance(100'000'000);
  std::vector<uint64_t> at;
  std::vector<uint8_t> flags;
  for (const WireSeg& w : bed.log) {
    at.push_back((w.at_us - t1) / 1000);
    flags.push_back(w.flags);
  }
  EXPECT_EQ(at, (std::vector<uint64_t>{10000, 12000, 14000, 16000}));
  EXPECT_EQ(flags, (std::vector<uint8_t>{TCPHDR_ACK, TCPHDR_ACK, TCPHDR_ACK, TCPHDR_RST | TCPHDR_ACK}));
  EXPECT_EQ(c->sk_state, TCP_CLOSE);
  EXPECT_EQ(c->sk_err, ETIMEDOUT);
}

}  // namespace
}  // namespace xmit::testing_tcp
