// tests/tcp/tcp_syncookies_test.cc — SYN cookies on the state machine's bed (tcp_conn_bed.h, an
// injected clock, every segment recorded): a listener whose request queue is full answers a SYN
// with a cookie SYN-ACK (tcp_conn_request() -> tcp_syn_flood_action(), __cookie_v4_init_sequence(),
// cookie_init_timestamp()), and an ACK matching no request is checked as a cookie
// (tcp_v4_cookie_check() -> cookie_v4_check()): the child is rebuilt from it with the options the
// timestamp carried; a stale or forged cookie is reset; tcp_syncookies 0 drops, 2 always sends
// cookies.
#include <poll.h>

#include "gtest/gtest.h"
#include "stack/tcp/tcp_syncookies.h"
#include "tests/tcp/tcp_conn_bed.h"

namespace xmit::testing_tcp {
namespace {

constexpr uint8_t kSyn = TCPHDR_SYN, kSynAck = TCPHDR_SYN | TCPHDR_ACK, kAck = TCPHDR_ACK, kRst = TCPHDR_RST;

uint32_t be32_at(const std::vector<uint8_t>& v, size_t off) {
  return (uint32_t{v[off]} << 24) | (uint32_t{v[off + 1]} << 16) | (uint32_t{v[off + 2]} << 8) | v[off + 3];
}

// The TSval and TSecr of a segment's timestamp option; false when it has none.
bool timestamps(const std::vector<uint8_t>& opts, uint32_t* tsval, uint32_t* tsecr) {
  for (size_t i = 0; i < opts.size();) {
    if (opts[i] == TCPOPT_NOP) {
      ++i;
      continue;
    }
    if (opts[i] == TCPOPT_EOL || i + 1 >= opts.size() || opts[i + 1] < 2) return false;
    if (opts[i] == TCPOPT_TIMESTAMP && opts[i + 1] == 10 && i + 10 <= opts.size()) {
      *tsval = be32_at(opts, i + 2);
      *tsecr = be32_at(opts, i + 6);
      return true;
    }
    i += opts[i + 1];
  }
  return false;
}

class TcpSyncookies : public ::testing::Test {
 protected:
  void SetUp() override {
    bed.now = 3'000'000;
    secret.key[0].key[0] = 0x0123456789abcdefull;
    secret.key[0].key[1] = 0x1111111111111111ull;
    secret.key[1].key[0] = 0xfedcba9876543210ull;
    secret.key[1].key[1] = 0x2222222222222222ull;
  }
  // host 1 listens on 5001 with `backlog`, counting into mib, tcp_syncookies = `mode`.
  tcp_sock* listen(int backlog, uint8_t mode = 1) {
    tcp_sock* l = bed.listen(1, 5001, backlog);
    l->net_mib = &mib;
    l->syncookie_secret = &secret;
    l->sysctl_tcp_syncookies = mode;
    return l;
  }
  // A socket of host 1 that only addresses inject() at host 1 as if from host 0's `port`.
  tcp_sock* from_port(uint16_t port) {
    tcp_sock fake;
    fake.saddr = bed.h[1].addr;
    fake.daddr = bed.h[0].addr;
    fake.sport = 5001;
    fake.dport = port;
    bed.h[1].socks.push_back(std::make_unique<tcp_sock>(fake));
    return bed.h[1].socks.back().get();
  }
  // Two SYNs whose SYN-ACKs are lost (never answered): the listener's two requests. With backlog 1
  // the request queue is then full (inet_csk_reqsk_queue_is_full(): 2 > 1).
  void fill_request_queue() {
    bed.drop = [](const WireSeg& w) { return w.from == 1 && (w.dport == 41001 || w.dport == 41002); };
    bed.inject(from_port(41001), 500, 0, kSyn, 1000);
    bed.inject(from_port(41002), 700, 0, kSyn, 1000);
    bed.drop = nullptr;
    bed.take();
  }
  int mss_of_cookie(uint16_t cport, uint32_t client_isn, uint32_t cookie) {
    return cookie_v4_check_core(&secret, bed.h[0].addr, bed.h[1].addr, cport, 5001, client_isn + 1, cookie,
                                bed.now);
  }
  // `n` stream bytes (byte i = (seed + i * 13) & 0xff) from `from` to `to`, read back byte-exact.
  void transfer(tcp_sock* from, tcp_sock* to, size_t n, uint8_t seed) {
    std::vector<uint8_t> data(n);
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<uint8_t>(seed + i * 13);
    size_t sent = 0;
    std::vector<uint8_t> got;
    for (int guard = 0; guard < 1000 && got.size() < n; ++guard) {
      bed.tick();
      if (sent < n) {
        int r = tcp_sendmsg_locked(from, data.data() + sent, n - sent, 0, ConnBed::kMtu, bed.xmit_fn(bed.side(from)));
        if (r > 0) sent += static_cast<size_t>(r);
      }
      bed.run();
      uint8_t buf[65536];
      int r = tcp_recvmsg(to, buf, sizeof buf, 0, bed.xmit_fn(bed.side(to)));
      if (r > 0) got.insert(got.end(), buf, buf + r);
      bed.advance(10'000);
    }
    ASSERT_EQ(got.size(), n);
    EXPECT_EQ(got, data);
  }

  ConnBed bed;
  LinuxMib mib;
  tcp_syncookie_secret secret;
};

// Backlog 1, two requests queued: a client's SYN (MSS 1400 by TCP_MAXSEG, window scale 7, SACK,
// timestamps) gets a SYN-ACK whose ISN is a cookie of MSS 1300 (msstab index 1) and whose TSval
// (less ts_off) has the SYN's window scale and SACK in its 6 low bits; no request is queued for it;
// the flood line once. The client's ACK makes the child from the cookie: on the accept queue,
// window scale, SACK, timestamps and the MSS as the cookie kept them, the SYN-ACK's ISN; data
// both ways byte-exact. A second cookie for another client logs nothing more.
TEST_F(TcpSyncookies, FullRequestQueueAnswersWithCookieAndTheAckMakesTheChild) {
  tcp_sock* l = listen(1);
  fill_request_queue();
  ASSERT_EQ(l->reqsk_queue.size(), 2u);
  EXPECT_EQ(mib.SyncookiesSent, 0u);
  tcp_sock* c = bed.h[0].socket(40000);
  c->rx_opt.user_mss = 1400;
  ASSERT_EQ(bed.connect(c, 5001), 0);
  bed.run();
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 3u);
  const WireSeg& syn = segs[0];
  const WireSeg& sa = segs[1];
  ASSERT_EQ(sa.flags, kSynAck);
  EXPECT_EQ(sa.ack, syn.seq + 1);
  EXPECT_NE(sa.seq, 0x7ffffff0u);  // not secure_seq()'s ISN
  EXPECT_EQ(mss_of_cookie(40000, syn.seq, sa.seq), 1300);
  // Another sequence number: no. (One within 3 of it moves the MSS index instead: the kernel's
  // check is only that the index decoded is in range.)
  EXPECT_EQ(mss_of_cookie(40000, syn.seq + 0x100, sa.seq), 0);
  // The SYN-ACK still announces our own MSS (1460), window scale and SACK_PERM + TS.
  EXPECT_EQ(std::vector<uint8_t>(sa.options.begin(), sa.options.begin() + 6),
            (std::vector<uint8_t>{2, 4, 0x05, 0xb4, 4, 2}));
  uint32_t tsval = 0, tsecr = 0;
  ASSERT_TRUE(timestamps(sa.options, &tsval, &tsecr));
  const uint32_t ts = tsval - 90000;  // ts_off
  EXPECT_EQ(ts & 0x3f, 7u | TS_OPT_SACK);
  EXPECT_LE(ts, bed.now / 1000);
  EXPECT_GT(ts + 64, bed.now / 1000);
  EXPECT_EQ(l->reqsk_queue.size(), 2u);
  EXPECT_EQ(mib.SyncookiesSent, 1u);
  EXPECT_EQ(mib.TCPReqQFullDoCookies, 1u);
  ASSERT_EQ(bed.h[1].logs.size(), 1u);
  EXPECT_EQ(bed.h[1].logs[0], "TCP: request_sock_TCP: Possible SYN flooding on port 198.18.0.2:5001. Sending cookies.");
  // The ACK: a child from the cookie.
  EXPECT_EQ(segs[2].flags, kAck);
  EXPECT_EQ(mib.SyncookiesRecv, 1u);
  EXPECT_EQ(mib.SyncookiesFailed, 0u);
  EXPECT_EQ(l->sk_ack_backlog, 1);
  EXPECT_EQ(tcp_poll(l), POLLIN | POLLRDNORM);
  tcp_sock* s = inet_csk_accept(l);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->sk_state, TCP_ESTABLISHED);
  EXPECT_EQ(s->dport, 40000);
  EXPECT_EQ(s->snd_una, sa.seq + 1);
  EXPECT_EQ(s->rcv_nxt, syn.seq + 1);
  EXPECT_TRUE(s->rx_opt.wscale_ok);
  EXPECT_EQ(s->rx_opt.snd_wscale, 7);
  EXPECT_EQ(s->rx_opt.rcv_wscale, 7);
  EXPECT_TRUE(s->rx_opt.sack_ok);
  EXPECT_TRUE(s->rx_opt.tstamp_ok);
  EXPECT_EQ(s->tsoffset, 90000u);
  EXPECT_EQ(s->rx_opt.mss_clamp, 1300);
  EXPECT_EQ(s->mss_cache, 1300u - 12u);
  EXPECT_EQ(l->reqsk_queue.size(), 2u);  // the flood's requests, untouched
  EXPECT_EQ(c->sk_state, TCP_ESTABLISHED);
  transfer(c, s, 100000, 1);
  transfer(s, c, 70000, 2);
  // A second cookie (another client): counted, not logged again.
  tcp_sock* c2 = bed.h[0].socket(40001);
  ASSERT_EQ(bed.connect(c2, 5001), 0);
  bed.run();
  EXPECT_EQ(mib.SyncookiesSent, 2u);
  EXPECT_EQ(mib.SyncookiesRecv, 2u);
  EXPECT_EQ(bed.h[1].logs.size(), 1u);
  EXPECT_EQ(l->sk_ack_backlog, 1);
}

// A SYN without timestamps under cookies: nowhere to keep window scale and SACK, so the SYN-ACK
// offers neither (MSS only) and the child has no options; MSS 1460 is msstab's index 3.
TEST_F(TcpSyncookies, NoTimestampsNoOptions) {
  tcp_sock* l = listen(1);
  fill_request_queue();
  tcp_sock* p = from_port(42000);
  // MSS 1460, SACK_PERM, NOP WS 7: no timestamps.
  bed.inject(p, 9000, 0, kSyn, 1000, {2, 4, 0x05, 0xb4, 4, 2, TCPOPT_NOP, 3, 3, 7});
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 1u);
  ASSERT_EQ(segs[0].flags, kSynAck);
  EXPECT_EQ(segs[0].options, (std::vector<uint8_t>{2, 4, 0x05, 0xb4}));
  const uint32_t cookie = segs[0].seq;
  EXPECT_EQ(mss_of_cookie(42000, 9000, cookie), 1460);
  bed.inject(p, 9001, cookie + 1, kAck, 30000);
  EXPECT_TRUE(bed.take().empty());
  tcp_sock* s = inet_csk_accept(l);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->sk_state, TCP_ESTABLISHED);
  EXPECT_FALSE(s->rx_opt.wscale_ok);
  EXPECT_EQ(s->rx_opt.snd_wscale, 0);
  EXPECT_EQ(s->rx_opt.rcv_wscale, 0);
  EXPECT_FALSE(s->rx_opt.sack_ok);
  EXPECT_FALSE(s->rx_opt.tstamp_ok);
  EXPECT_EQ(s->tcp_header_len, 20);
  EXPECT_EQ(s->mss_cache, 1460u);
  EXPECT_EQ(s->snd_wnd, 30000u);
  EXPECT_EQ(s->snd_una, cookie + 1);
  EXPECT_EQ(s->rcv_nxt, 9001u);
}

// An ACK that matches no request while cookies are in use (the SYN had no MSS option: 536, index
// 0, so one less than the cookie decodes out of range too): a wrong value is no cookie — counted as
// failed, reset (seq = its ACK) as for no socket, no child. So is a right cookie for another
// 4-tuple or another ISN, and a right cookie with a bit of its MSS field flipped.
TEST_F(TcpSyncookies, ForgedCookieIsResetWithoutChild) {
  tcp_sock* l = listen(1, 2);
  tcp_sock* p = from_port(42000);
  bed.inject(p, 9000, 0, kSyn, 1000);
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 1u);
  const uint32_t cookie = segs[0].seq;
  const uint32_t forged[] = {cookie + 1 + (1u << 20), cookie + 1 + 0x5a5a5a5a, cookie};
  int n = 0;
  for (uint32_t ack : forged) {
    bed.inject(p, 9001, ack, kAck, 1000);
    segs = bed.take();
    ASSERT_EQ(segs.size(), 1u);
    EXPECT_EQ(segs[0].flags, kRst);
    EXPECT_EQ(segs[0].seq, ack);
    EXPECT_EQ(mib.SyncookiesFailed, static_cast<uint64_t>(++n));
  }
  bed.inject(p, 9002, cookie + 1, kAck, 1000);  // the SYN's ISN was 9000, not 9001
  segs = bed.take();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].flags, kRst);
  bed.inject(from_port(42001), 9001, cookie + 1, kAck, 1000);  // another port
  segs = bed.take();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].flags, kRst);
  EXPECT_EQ(mib.SyncookiesFailed, 5u);
  EXPECT_EQ(mib.SyncookiesRecv, 0u);
  EXPECT_EQ(l->sk_ack_backlog, 0);
  EXPECT_TRUE(bed.h[1].hashed.empty());
  // The right one still opens.
  bed.inject(p, 9001, cookie + 1, kAck, 1000);
  EXPECT_TRUE(bed.take().empty());
  EXPECT_EQ(mib.SyncookiesRecv, 1u);
  EXPECT_EQ(l->sk_ack_backlog, 1);
}

// The count is the clock's minute and a cookie is good while it advanced by less than
// MAX_SYNCOOKIE_AGE (2): an ACK 59 s after its SYN-ACK opens; one 3 minutes after is reset and
// counted as failed (another SYN in between keeps the overflow recent, so the cookie is checked).
// Without any overflow in the last 2 minutes an ACK is not checked at all: reset, not counted.
TEST_F(TcpSyncookies, StaleCookieIsReset) {
  tcp_sock* l = listen(1, 2);
  tcp_sock* old = from_port(42000);
  bed.inject(old, 9000, 0, kSyn, 1000);
  const uint32_t old_cookie = bed.take()[0].seq;
  bed.advance(150'000'000);
  tcp_sock* fresh = from_port(42001);
  bed.inject(fresh, 7000, 0, kSyn, 1000);
  const uint32_t fresh_cookie = bed.take()[0].seq;
  bed.advance(30'000'000);  // 3 minutes after the first cookie
  bed.inject(old, 9001, old_cookie + 1, kAck, 1000);
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].flags, kRst);
  EXPECT_EQ(mib.SyncookiesFailed, 1u);
  EXPECT_EQ(l->sk_ack_backlog, 0);
  bed.advance(29'000'000);  // 59 s after the second
  bed.inject(fresh, 7001, fresh_cookie + 1, kAck, 1000);
  EXPECT_TRUE(bed.take().empty());
  EXPECT_EQ(mib.SyncookiesRecv, 1u);
  EXPECT_EQ(l->sk_ack_backlog, 1);
  // 2 minutes and more without an overflow: no cookie check, a reset, nothing counted.
  tcp_sock* late = from_port(42002);
  bed.inject(late, 100, 0, kSyn, 1000);
  const uint32_t late_cookie = bed.take()[0].seq;
  bed.advance(122'000'000);
  bed.inject(late, 101, late_cookie + 1, kAck, 1000);
  segs = bed.take();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].flags, kRst);
  EXPECT_EQ(mib.SyncookiesFailed, 1u);
  EXPECT_EQ(mib.SyncookiesRecv, 1u);
}

// tcp_syncookies = 0: a SYN on a full request queue is dropped as before (nothing sent), counted
// (TCPReqQFullDrop, ListenDrops) and logged once as "Dropping request".
TEST_F(TcpSyncookies, ModeZeroDropsOnAFullQueue) {
  tcp_sock* l = listen(1, 0);
  fill_request_queue();
  bed.inject(from_port(42000), 9000, 0, kSyn, 1000);
  bed.inject(from_port(42001), 9000, 0, kSyn, 1000);
  EXPECT_TRUE(bed.take().empty());
  EXPECT_EQ(l->reqsk_queue.size(), 2u);
  EXPECT_EQ(mib.SyncookiesSent, 0u);
  EXPECT_EQ(mib.TCPReqQFullDrop, 2u);
  EXPECT_EQ(mib.ListenDrops, 2u);
  ASSERT_EQ(bed.h[1].logs.size(), 1u);
  EXPECT_EQ(bed.h[1].logs[0],
            "TCP: request_sock_TCP: Possible SYN flooding on port 198.18.0.2:5001. Dropping request.");
}

// tcp_syncookies = 2: every SYN gets a cookie, even on an empty queue; nothing is queued and
// nothing logged; the ACK opens the connection. Three clients at once: two children fill the
// accept queue (2 > 1) and the third's valid cookie ACK finds no room — dropped silently
// (ListenOverflows, ListenDrops), its client ESTABLISHED all the same; a fourth SYN meets the full
// accept queue and is dropped. Once accept() makes room, the third client's data (seq = its
// ISN + 1, ack = the cookie + 1) is checked as the cookie again and opens its connection.
TEST_F(TcpSyncookies, ModeTwoAlwaysSendsCookies) {
  tcp_sock* l = listen(1, 2);
  tcp_sock* c[3];
  for (int i = 0; i < 3; ++i) {
    c[i] = bed.h[0].socket(static_cast<uint16_t>(40000 + i));
    ASSERT_EQ(bed.connect(c[i], 5001), 0);
  }
  bed.run();
  for (tcp_sock* ci : c) EXPECT_EQ(ci->sk_state, TCP_ESTABLISHED);
  EXPECT_TRUE(l->reqsk_queue.empty());
  EXPECT_EQ(mib.SyncookiesSent, 3u);
  EXPECT_EQ(mib.SyncookiesRecv, 3u);
  EXPECT_TRUE(bed.h[1].logs.empty());
  EXPECT_EQ(l->sk_ack_backlog, 2);
  EXPECT_EQ(mib.ListenOverflows, 1u);
  EXPECT_EQ(mib.ListenDrops, 1u);
  tcp_sock* c4 = bed.h[0].socket(40003);
  bed.take();
  ASSERT_EQ(bed.connect(c4, 5001), 0);
  bed.run();
  auto segs = bed.take();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].flags, kSyn);
  EXPECT_EQ(mib.ListenOverflows, 2u);
  EXPECT_EQ(mib.SyncookiesSent, 3u);
  tcp_sock* s1 = inet_csk_accept(l);
  ASSERT_NE(s1, nullptr);
  EXPECT_EQ(s1->dport, 40000);
  EXPECT_EQ(bed.send(c[2], 1000), 1000);
  bed.run();
  EXPECT_EQ(mib.SyncookiesRecv, 4u);
  ASSERT_EQ(l->sk_ack_backlog, 2);
  tcp_sock* s2 = inet_csk_accept(l);
  tcp_sock* s3 = inet_csk_accept(l);
  ASSERT_NE(s3, nullptr);
  EXPECT_EQ(s2->dport, 40001);
  EXPECT_EQ(s3->dport, 40002);
  EXPECT_EQ(bed.recv(s3, 4000), 1000);
}

}  // namespace
}  // namespace xmit::testing_tcp
