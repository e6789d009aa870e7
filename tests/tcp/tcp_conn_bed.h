// tests/tcp/tcp_conn_bed.h — two hosts, each owning its sockets as the product's stack will (a
// TcpOps: clone, hash, done, fixed ISNs), joined by an in-memory wire the test steps by hand: every
// segment is recorded, may be dropped by a filter, and is delivered by 4-tuple lookup (hashed
// sockets, then the listener, else tcp_v4_send_reset()). One injected clock.
#pragma once

#include <arpa/inet.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "stack/skb/pool.h"
#include "stack/tcp/tcp_conn.h"
#include "stack/tcp/tcp_input.h"
#include "stack/tcp/tcp_input_parse.h"
#include "stack/tcp/tcp_mss.h"
#include "stack/tcp/tcp_recvmsg.h"
#include "stack/tcp/tcp_sendmsg.h"
#include "stack/tcp/tcp_timer.h"
#include "stack/wire/tcp.h"

namespace xmit::testing_tcp {

// One segment as it left a host.
struct WireSeg {
  int from = 0;
  uint64_t at_us = 0;
  uint16_t sport = 0, dport = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;
  std::vector<uint8_t> options;
  uint32_t payload = 0;
};

class Host : public TcpOps {
 public:
  Host(be32 a, uint32_t isn_, uint32_t ts_off_) : addr(a), isn(isn_), ts_off(ts_off_) {
    EXPECT_EQ(BufPool::create(1024, 2048, &heads), 0);
    EXPECT_EQ(BufPool::create(64, 32768, &pages), 0);
    EXPECT_EQ(SkbPool::create(1024, heads.get(), &skbs), 0);
  }
  ~Host() override {
    for (auto& s : socks) {
      tcp_write_queue_purge(s.get());
      tcp_rcv_queues_purge(s.get());
    }
  }
  // A socket of this host with the settings a socket() call would give (rcvbuf 65536 payload
  // bytes: the kernel's 131072 tcp_rmem[1] at its initial scaling ratio of one half).
  tcp_sock* socket(uint16_t port, uint32_t rcvbuf = 65536) {
    socks.push_back(std::make_unique<tcp_sock>());
    tcp_sock* tp = socks.back().get();
    tp->skb_pool = skbs.get();
    tp->page_pool = pages.get();
    tp->saddr = addr;
    tp->sport = port;
    tp->rcvbuf = rcvbuf;
    tp->nonagle = TCP_NAGLE_OFF;
    return tp;
  }
  tcp_sock* clone(const tcp_sock*) override {
    if (refuse_clone) return nullptr;
    socks.push_back(std::make_unique<tcp_sock>());
    return socks.back().get();
  }
  void hash(tcp_sock* child) override { hashed.push_back(child); }
  void done(tcp_sock* tp) override {
    ++done_calls;
    done_socks.push_back(tp);
    std::erase(hashed, tp);
  }
  uint32_t secure_seq(be32, be32, uint16_t, uint16_t) override { return isn; }
  uint32_t secure_ts_off(be32, be32, uint16_t, uint16_t) override { return ts_off; }
  void log_info(const char* line) override { logs.emplace_back(line); }

  tcp_sock* lookup(be32 raddr, uint16_t rport, uint16_t lport) {
    for (tcp_sock* s : hashed)
      if (s->daddr == raddr && s->dport == rport && s->sport == lport) return s;
    if (listener != nullptr && listener->sport == lport && listener->sk_state == TCP_LISTEN) return listener;
    return nullptr;
  }

  be32 addr;
  uint32_t isn, ts_off;
  bool refuse_clone = false;
  std::unique_ptr<BufPool> heads, pages;
  std::unique_ptr<SkbPool> skbs;
  std::vector<std::unique_ptr<tcp_sock>> socks;
  std::vector<tcp_sock*> hashed;   // connected sockets (the owner's ehash)
  tcp_sock* listener = nullptr;
  int done_calls = 0;
  std::vector<tcp_sock*> done_socks;
  std::vector<std::string> logs;  // log_info() lines
};

struct ConnBed {
  static constexpr uint32_t kMtu = 1500;
  Host h[2] = {Host(htonl(0xc6120001), 1000, 500), Host(htonl(0xc6120002), 0x7ffffff0u, 90000)};
  std::deque<std::vector<uint8_t>> wire[2];  // segments on their way to host i
  std::vector<WireSeg> log;
  std::function<bool(const WireSeg&)> drop;  // true: lost on the wire
  uint64_t now = 1'000'000;

  std::function<int(sk_buff*)> xmit_fn(int from) {
    return [this, from](sk_buff* skb) {
      std::vector<uint8_t> bytes(skb->len);
      skb_copy_bits(skb, 0, bytes.data(), skb->len);
      auto th = TcpHdrView::parse(absl::MakeConstSpan(bytes));
      EXPECT_TRUE(th.has_value());
      WireSeg s{.from = from, .at_us = now, .sport = th->source(), .dport = th->dest(), .seq = th->seq(),
                .ack = th->ack_seq(), .flags = th->flags(), .window = th->window(),
                .options = std::vector<uint8_t>(th->options().begin(), th->options().end()),
                .payload = static_cast<uint32_t>(bytes.size() - th->doff() * 4u)};
      // The checksum must verify against the addresses the segment says it goes between.
      const tcp_skb_cb* cb = TCP_SKB_CB(skb);
      EXPECT_EQ(cb->saddr, h[from].addr);
      tcp_skb_cb chk;
      EXPECT_EQ(tcp_v4_check_segment(absl::MakeConstSpan(bytes), cb->saddr, cb->daddr, true, &chk), 0);
      kfree_skb(skb);
      log.push_back(s);
      if (!drop || !drop(s)) wire[1 - from].push_back(std::move(bytes));
      return 0;
    };
  }
  void tick() {
    for (Host& host : h)
      for (auto& s : host.socks) s->tcp_mstamp = now;
  }
  // Delivers everything on the wire (and what that provokes) until it is quiet.
  void run() {
    tick();
    for (int guard = 0; guard < 100000 && (!wire[0].empty() || !wire[1].empty()); ++guard) {
      for (int to = 0; to < 2; ++to) {
        if (wire[to].empty()) continue;
        std::vector<uint8_t> bytes = std::move(wire[to].front());
        wire[to].pop_front();
        deliver(to, bytes);
      }
    }
  }
  void deliver(int to, const std::vector<uint8_t>& bytes) {
    Host& host = h[to];
    sk_buff* skb = host.skbs->alloc_skb();
    ASSERT_NE(skb, nullptr);
    skb_reserve(skb, 64);
    skb_put_data(skb, bytes.data(), static_cast<uint32_t>(bytes.size()));
    ASSERT_EQ(tcp_v4_check_segment(absl::MakeConstSpan(skb->data, skb->len), h[1 - to].addr, host.addr, true,
                                   TCP_SKB_CB(skb)),
              0);
    auto th = *TcpHdrView::parse(absl::MakeConstSpan(bytes));
    tcp_sock* tp = host.lookup(h[1 - to].addr, th.source(), th.dest());
    auto x = xmit_fn(to);
    if (tp == nullptr) {
      tcp_v4_send_reset(skb, *TCP_SKB_CB(skb), host.skbs.get(), x);
      kfree_skb(skb);
      return;
    }
    tcp_v4_do_rcv(tp, skb, kMtu, x, &host);
  }
  // Moves the clock to `t` running every timer due on the way (in deadline order).
  void advance_to(uint64_t t) {
    for (int guard = 0; guard < 100000; ++guard) {
      uint64_t next = UINT64_MAX;
      for (Host& host : h)
        for (auto& s : host.socks) next = std::min(next, tcp_next_timer(s.get()));
      if (next > t) break;
      now = std::max(now, next);
      tick();
      for (int i = 0; i < 2; ++i)
        for (size_t k = 0; k < h[i].socks.size(); ++k) tcp_timers_run(h[i].socks[k].get(), xmit_fn(i), &h[i]);
      run();
    }
    now = t;
    tick();
  }
  void advance(uint64_t us) { advance_to(now + us); }

  // Socket calls through the bed's clock and wire.
  int connect(tcp_sock* tp, uint16_t dport) {
    tp->daddr = h[1 - side(tp)].addr;
    tp->dport = dport;
    tick();
    tcp_v4_connect_seq(tp, &h[side(tp)]);
    int err = tcp_connect(tp, kMtu, xmit_fn(side(tp)));
    if (err == 0) h[side(tp)].hashed.push_back(tp);  // inet_hash_connect()
    return err;
  }
  tcp_sock* listen(int host, uint16_t port, int backlog = 128) {
    tcp_sock* l = h[host].socket(port);
    EXPECT_EQ(inet_csk_listen_start(l, backlog), 0);
    h[host].listener = l;
    return l;
  }
  void close(tcp_sock* tp) {
    tick();
    tcp_close(tp, kMtu, xmit_fn(side(tp)), &h[side(tp)]);
  }
  int shutdown(tcp_sock* tp, int how) {
    tick();
    return tcp_shutdown(tp, how, kMtu, xmit_fn(side(tp)), &h[side(tp)]);
  }
  int send(tcp_sock* tp, size_t n) {
    tick();
    std::vector<uint8_t> data(n, 0x61);
    return tcp_sendmsg_locked(tp, data.data(), n, 0, kMtu, xmit_fn(side(tp)));
  }
  int recv(tcp_sock* tp, size_t n) {
    tick();
    std::vector<uint8_t> buf(n);
    return tcp_recvmsg(tp, buf.data(), n, 0, xmit_fn(side(tp)));
  }
  int side(const tcp_sock* tp) const {
    for (auto& s : h[1].socks)
      if (s.get() == tp) return 1;
    return 0;
  }
  // A connected pair: client on host 0 port 40000, server (accepted child) on host 1 port 5001.
  std::pair<tcp_sock*, tcp_sock*> connected_pair() {
    tcp_sock* l = listen(1, 5001);
    tcp_sock* c = h[0].socket(40000);
    EXPECT_EQ(connect(c, 5001), 0);
    run();
    tcp_sock* s = inet_csk_accept(l);
    EXPECT_NE(s, nullptr);
    EXPECT_EQ(c->sk_state, TCP_ESTABLISHED);
    log.clear();
    return {c, s};
  }
  std::vector<WireSeg> take() { return std::exchange(log, {}); }
  // A segment from `tp`'s peer to `tp` (with `payload` zero bytes of data), delivered through the
  // host's lookup.
  void inject(tcp_sock* tp, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t window,
              std::vector<uint8_t> options = {}, uint32_t payload = 0) {
    while (options.size() % 4 != 0) options.push_back(TCPOPT_NOP);
    std::vector<uint8_t> seg(20 + options.size() + payload, 0);
    TcpHdr th = *TcpHdr::at(absl::MakeSpan(seg));
    th.set_source(tp->dport);
    th.set_dest(tp->sport);
    th.set_seq(seq);
    th.set_ack_seq(ack);
    th.set_doff(static_cast<uint8_t>((20 + options.size()) / 4));
    th.set_flags(flags);
    th.set_window(window);
    th.set_check(0);
    std::copy(options.begin(), options.end(), seg.begin() + 20);
    th.set_check(csum_tcpudp_magic(tp->daddr, tp->saddr, static_cast<uint32_t>(seg.size()), IPPROTO_TCP,
                                   csum_partial(seg.data(), seg.size(), 0)));
    tick();
    deliver(side(tp), seg);
  }
};

}  // namespace xmit::testing_tcp
