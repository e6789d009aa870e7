// tests/tcp/tcp_link.cc — the two-endpoint bed over sim_link (see tcp_link.h).
#include "tests/tcp/tcp_link.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <netinet/in.h>

#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "gtest/gtest.h"
#include "stack/tcp/tcp_conn.h"
#include "stack/tcp/tcp_cong.h"
#include "stack/tcp/tcp_input.h"
#include "stack/tcp/tcp_input_parse.h"
#include "stack/tcp/tcp_mss.h"
#include "stack/tcp/tcp_output_ack.h"
#include "stack/tcp/tcp_recvmsg.h"
#include "stack/tcp/tcp_sendmsg.h"
#include "stack/tcp/tcp_timer.h"
#include "stack/wire/eth.h"
#include "stack/wire/ipv4.h"
#include "stack/wire/tcp.h"

namespace xmit::testing_tcp {

static uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint8_t stream_byte(int dir, uint64_t pos) {
  return static_cast<uint8_t>(splitmix64((pos >> 3) ^ (uint64_t(dir) << 62)) >> ((pos & 7) * 8));
}

void stream_fill(int dir, uint64_t pos, uint8_t* out, size_t n) {
  size_t i = 0;
  for (; i < n && ((pos + i) & 7) != 0; ++i) out[i] = stream_byte(dir, pos + i);
  for (; i + 8 <= n; i += 8) {  // one hash per 8 bytes, little-endian as stream_byte() takes them
    uint64_t h = splitmix64(((pos + i) >> 3) ^ (uint64_t(dir) << 62));
    for (int k = 0; k < 8; ++k) out[i + k] = static_cast<uint8_t>(h >> (k * 8));
  }
  for (; i < n; ++i) out[i] = stream_byte(dir, pos + i);
}

void StreamCheck::feed(const uint8_t* p, size_t n) {
  uint8_t want[4096];
  for (size_t done = 0; done < n;) {
    size_t k = std::min(n - done, sizeof(want));
    stream_fill(dir, pos, want, k);
    if (ok() && std::memcmp(p + done, want, k) != 0) {
      for (size_t i = 0; i < k; ++i) {
        if (p[done + i] != want[i]) {
          mismatch = pos + i;
          break;
        }
      }
    }
    for (size_t i = 0; i < k; ++i) fnv = (fnv ^ p[done + i]) * 0x100000001b3ull;
    pos += k;
    done += k;
  }
}

uint64_t stream_fnv(int dir, uint64_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  uint8_t buf[4096];
  for (uint64_t pos = 0; pos < n;) {
    size_t k = static_cast<size_t>(std::min<uint64_t>(n - pos, sizeof(buf)));
    stream_fill(dir, pos, buf, k);
    for (size_t i = 0; i < k; ++i) h = (h ^ buf[i]) * 0x100000001b3ull;
    pos += k;
  }
  return h;
}

namespace {

constexpr uint32_t kMtu = 1500;
constexpr uint32_t kRcvBuf = 262144;

// One segment into one frame: Ethernet + IPv4 (DF, checksum) + the segment's bytes.
int link_xmit(LinkPeer* p, sk_buff* skb) {
  uint8_t frame[ETH_HLEN + 20 + 1500];
  const uint32_t len = skb->len;
  if (skb_is_gso(skb) || len > kMtu - 20) {
    ADD_FAILURE() << "segment larger than the MTU";
    kfree_skb(skb);
    return -EMSGSIZE;
  }
  EthRepr{.h_dest = {}, .h_source = {}, .h_proto = ETH_P_IP}.emit(*EthHdr::at(absl::MakeSpan(frame, ETH_HLEN)));
  std::memcpy(frame, p->peer_mac, 6);
  std::memcpy(frame + 6, p->dev->mac(), 6);
  Ipv4Repr{.id = p->ident++, .frag_off = IP_DF, .protocol = IPPROTO_TCP, .saddr = TCP_SKB_CB(skb)->saddr,
           .daddr = TCP_SKB_CB(skb)->daddr, .payload_len = static_cast<uint16_t>(len)}
      .emit(*IpHdr::at(absl::MakeSpan(frame + ETH_HLEN, 20)));
  skb_copy_bits(skb, 0, frame + ETH_HLEN + 20, len);
  uint32_t seq = load_be32(frame + ETH_HLEN + 20 + 4);
  uint32_t hl = (frame[ETH_HLEN + 20 + 12] >> 4) * 4u;
  uint32_t end = seq + (len - hl);
  if (len > hl && !after(end, p->high_sent)) ++p->retrans_frames;
  if ((uint32_t{load_be16(frame + ETH_HLEN + 20 + 14)} << 7) < 1448) ++p->small_windows;
  if (p->conn != nullptr && len == hl && seq == p->conn->snd_una - 1) ++p->probes;
  if (after(end, p->high_sent)) p->high_sent = end;
  kfree_skb(skb);
  const FrameSeg seg{frame, ETH_HLEN + 20 + len};
  const TxFrame tx{.segs = {&seg, 1}};
  if (p->dev->xmit({&tx, 1}) != 1) {
    ++p->tx_full;
    return -ENOBUFS;
  }
  ++p->tx_frames;
  return 0;
}

void link_rx(LinkPeer* p, const RxFrame& f) {
  ++p->rx_frames;
  std::vector<uint8_t>& buf = p->scratch;
  buf.assign(f.data, f.data + f.len);
  if (p->corrupt_every != 0 && p->rx_frames % p->corrupt_every == 0) {
    buf.back() ^= 0x10;  // the last byte: payload, or the header of a pure ACK
    ++p->corrupted;
  }
  auto eth = EthHdrView::parse(absl::MakeConstSpan(buf));
  if (!eth || eth->h_proto() != ETH_P_IP) return;
  auto ip = IpHdrView::parse(absl::MakeConstSpan(buf.data() + ETH_HLEN, buf.size() - ETH_HLEN));
  Ipv4Repr iph;
  if (!ip || Ipv4Repr::parse(*ip, &iph) != 0 || iph.protocol != IPPROTO_TCP || iph.daddr != p->tp.saddr) {
    ++p->rx_bad;
    return;
  }
  absl::Span<const uint8_t> seg(buf.data() + ETH_HLEN + ip->ihl() * 4u, iph.payload_len);
  sk_buff* skb = p->skbs->alloc_skb();
  if (skb == nullptr) {
    ++p->rx_nobuf;
    return;
  }
  skb_reserve(skb, 64);
  skb_put_data(skb, seg.data(), static_cast<uint32_t>(seg.size()));
  if (tcp_v4_check_segment(absl::MakeConstSpan(skb->data, skb->len), iph.saddr, iph.daddr, true, TCP_SKB_CB(skb)) != 0) {
    ++p->rx_bad;
    kfree_skb(skb);
    return;
  }
  auto xmit = [p](sk_buff* s) { return link_xmit(p, s); };
  // The owner's demux: the connection's 4-tuple, else a listener on the port, else a reset.
  const uint16_t sport = load_be16(skb->data), dport = load_be16(skb->data + 2);
  tcp_sock* target = nullptr;
  tcp_sock* conn = p->child != nullptr ? p->child.get() : &p->tp;
  if (conn->sk_state != TCP_CLOSE && conn->sk_state != TCP_LISTEN && conn->dport == sport && conn->sport == dport) {
    target = conn;
  } else if (p->tp.sk_state == TCP_LISTEN && p->tp.sport == dport) {
    target = &p->tp;
  }
  if (target == nullptr) {
    ++p->resets_sent;
    tcp_v4_send_reset(skb, *TCP_SKB_CB(skb), p->skbs.get(), xmit);
    kfree_skb(skb);
    return;
  }
  tcp_v4_do_rcv(target, skb, kMtu, xmit, &p->ops);
}

void setup_peer(LinkPeer* p, SimEndpoint* dev, const uint8_t* peer_mac, int dir, be32 saddr, be32 daddr,
                uint16_t sport, uint16_t dport, uint32_t isn, uint32_t peer_isn, uint32_t tsoffset) {
  ASSERT_EQ(BufPool::create(4096, 2048, &p->heads), 0);
  ASSERT_EQ(BufPool::create(64, 32768, &p->pages), 0);
  ASSERT_EQ(SkbPool::create(4096, p->heads.get(), &p->skbs), 0);
  p->dev = dev;
  p->peer_mac = peer_mac;
  p->dir = dir;
  p->check.dir = 1 - dir;
  tcp_sock& tp = p->tp;
  p->conn = &tp;
  p->ops.p = p;
  p->ops.isn = isn;
  p->ops.ts_off = tsoffset;
  tp.skb_pool = p->skbs.get();
  tp.page_pool = p->pages.get();
  tp.saddr = saddr;
  tp.daddr = daddr;
  tp.sport = sport;
  tp.dport = dport;
  tp.snd_una = tp.snd_nxt = tp.write_seq = tp.pushed_seq = tp.snd_up = isn;
  p->high_sent = isn;
  tp.rcv_nxt = tp.rcv_wup = tp.copied_seq = tp.snd_wl1 = peer_isn;
  tp.snd_wnd = tp.max_window = kRcvBuf;  // the peer offered all of its buffer
  tp.rx_opt.tstamp_ok = tp.rx_opt.wscale_ok = true;
  tp.rx_opt.snd_wscale = tp.rx_opt.rcv_wscale = 7;
  tp.tsoffset = tsoffset;
  tp.tcp_header_len = 32;
  tcp_sync_mss(&tp, kMtu);
  tcp_sk_setup_caps(&tp, NetdevFeatures{}, /*sw_gso=*/false);
  tp.nonagle = TCP_NAGLE_OFF;
  tp.sk_state = TCP_ESTABLISHED;
  tp.rcvbuf = tp.window_clamp = tp.rcv_wnd = kRcvBuf;
  tcp_initialize_rcv_mss(&tp);
}

// The application: read everything there is (checking it), write as much as the stack takes, FIN
// after the last byte. Returns true when it did anything.
bool app(LinkPeer* p) {
  auto xmit = [p](sk_buff* s) { return link_xmit(p, s); };
  bool did = false;
  if (p->conn == nullptr) return false;
  uint8_t buf[65536];
  const bool reading = p->read_pause_us == 0 || (((*p->conn).tcp_mstamp / p->read_pause_us) & 1) != 0;
  while (reading && !p->eof) {
    int n = tcp_recvmsg(p->conn, buf, sizeof(buf), 0, xmit);
    if (n == -EAGAIN) break;
    did = true;
    if (n == 0) {
      p->eof = true;
      break;
    }
    p->check.feed(buf, static_cast<size_t>(n));
  }
  while (p->sent < p->to_send) {
    // The next 16 KiB of the stream, generated again only once the stack took some of it.
    size_t n = static_cast<size_t>(std::min<uint64_t>(16384, p->to_send - p->sent));
    if (p->txbuf_pos != p->sent || p->txbuf.size() != n) {
      p->txbuf.resize(n);
      stream_fill(p->dir, p->sent, p->txbuf.data(), n);
      p->txbuf_pos = p->sent;
    }
    int r = tcp_sendmsg_locked(p->conn, p->txbuf.data(), n, 0, kMtu, xmit);
    if (r <= 0) break;
    p->sent += static_cast<uint64_t>(r);
    did = true;
  }
  if (p->sent == p->to_send && !p->fin_sent && tcp_send_fin(p->conn, kMtu, xmit) == 0) {
    p->fin_sent = true;
    did = true;
  }
  return did;
}

bool peer_done(const LinkPeer& p) {
  return p.conn != nullptr && p.eof && p.fin_sent && p.conn->snd_una == p.conn->write_seq && p.conn->packets_out == 0;
}

// Handshake mode: the application accepts, writes its stream, shuts down its sending side, reads
// to the peer's FIN, then closes. Returns true when it did anything.
bool app_conn(LinkPeer* p) {
  auto xmit = [p](sk_buff* s) { return link_xmit(p, s); };
  if (p->conn == nullptr) {
    p->conn = inet_csk_accept(&p->tp);
    if (p->conn == nullptr) return false;
  }
  tcp_sock* tp = p->conn;
  if (!p->closed && p->eof && p->fin_sent) {
    tcp_close(tp, kMtu, xmit, &p->ops);
    p->closed = true;
    return true;
  }
  if (p->closed || tp->sk_state == TCP_SYN_SENT || tp->sk_state == TCP_CLOSE) return false;
  bool did = false;
  // Reading and writing as in the established mode, but the FIN by shutdown(SHUT_WR).
  const bool fin_before = p->fin_sent;
  p->fin_sent = true;  // keeps app() from sending its own FIN
  did |= app(p);
  p->fin_sent = fin_before;
  if (p->sent == p->to_send && !p->fin_sent && tcp_shutdown(tp, SHUT_WR, kMtu, xmit, &p->ops) == 0) {
    p->fin_sent = true;
    did = true;
  }
  return did;
}

bool peer_closed(const LinkPeer& p) {
  return p.closed && p.conn->sk_state == TCP_CLOSE && p.ops.done_calls > 0;
}

}  // namespace

tcp_sock* LinkOps::clone(const tcp_sock*) {
  if (p->child != nullptr) return nullptr;  // one connection per run
  p->child = std::make_unique<tcp_sock>();
  return p->child.get();
}

TcpLinkResult run_tcp_link(const TcpLinkConfig& cfg, LinkPeer* a, LinkPeer* b) {
  SimLinkConfig lc;
  lc.tx_depth = 1024;
  lc.rx_depth = 1024;
  lc.steering = false;
  lc.latency_ns = cfg.latency_ns;
  lc.faults_ab = lc.faults_ba = cfg.faults;
  lc.seed = cfg.seed;
  SimLink link(lc);
  const be32 addr_a = htonl(0xc6120001), addr_b = htonl(0xc6120002);
  setup_peer(a, &link.a(), lc.mac_b, 0, addr_a, addr_b, 40000, 5001, 1000, 0xfffff000u, 12345);
  setup_peer(b, &link.b(), lc.mac_a, 1, addr_b, addr_a, 5001, 40000, 0xfffff000u, 1000, 777);
  for (LinkPeer* p : {a, b}) {
    p->tp.rx_opt.sack_ok = cfg.sack;  // as the handshake would have agreed (both ends permit it)
    if (cfg.ca != nullptr) tcp_init_congestion_control(&p->tp, cfg.ca);
  }
  a->to_send = b->to_send = cfg.bytes_each_way;
  if (cfg.handshake) {
    // b listens on 5001 (its tp a fresh socket with b's settings), a connects from 40000.
    tcp_sock& l = b->tp;
    uint32_t rcvbuf = l.rcvbuf;
    l.snd_una = l.snd_nxt = l.write_seq = l.pushed_seq = 0;
    l.rcv_nxt = l.rcv_wup = l.copied_seq = l.snd_wl1 = 0;
    l.rx_opt = tcp_options_received{};
    l.sk_state = TCP_CLOSE;
    l.rcvbuf = rcvbuf;
    l.window_clamp = 65535u << 14;
    EXPECT_EQ(inet_csk_listen_start(&l, 16), 0);
    b->conn = nullptr;
    tcp_sock& c = a->tp;
    c.sk_state = TCP_CLOSE;
    c.snd_una = c.snd_nxt = c.write_seq = c.pushed_seq = 0;
    c.rx_opt = tcp_options_received{};
    c.window_clamp = 65535u << 14;
    c.tcp_mstamp = 1'000'000;
    tcp_v4_connect_seq(&c, &a->ops);
    EXPECT_EQ(tcp_connect(&c, kMtu, [a](sk_buff* s) { return link_xmit(a, s); }), 0);
    a->high_sent = c.snd_nxt;
  }
  a->corrupt_every = b->corrupt_every = cfg.corrupt_every;
  a->read_pause_us = b->read_pause_us = cfg.read_pause_us;
  TcpLinkResult res;
  constexpr uint64_t kStepUs = 10;
  uint64_t now = 1'000'000;
  LinkPeer* peers[2] = {a, b};
  while (now < cfg.max_sim_us) {
    ++res.iterations;
    for (LinkPeer* p : peers) {
      p->tp.tcp_mstamp = now;
      if (p->child != nullptr) p->child->tcp_mstamp = now;
    }
    int landed = link.run(now * 1000);
    for (LinkPeer* p : peers) {
      p->dev->poll_tx([](uint64_t) {});
      p->dev->poll_rx(1 << 20, [p](const RxFrame& f) {
        link_rx(p, f);
        return false;
      });
    }
    bool did = false;
    for (LinkPeer* p : peers) {
      auto xmit = [p](sk_buff* s) { return link_xmit(p, s); };
      tcp_timers_run(&p->tp, xmit, &p->ops);
      if (p->child != nullptr) tcp_timers_run(p->child.get(), xmit, &p->ops);
      did |= cfg.handshake ? app_conn(p) : app(p);
    }
    const bool over = cfg.handshake ? peer_closed(*a) && peer_closed(*b) : peer_done(*a) && peer_done(*b);
    if (over && link.in_flight() == 0) {
      res.finished = true;
      break;
    }
    // Busy (frames landed, the applications moved data, frames on the wire or posted and not yet
    // on it): step the clock; idle: jump to the next timer.
    const uint64_t on_wire = link.a().tx_stats().wire_frames + link.b().tx_stats().wire_frames;
    if (landed > 0 || did || link.in_flight() > 0 || on_wire != a->tx_frames + b->tx_frames) {
      now += kStepUs;
    } else {
      uint64_t next = std::min(tcp_next_timer(&a->tp), tcp_next_timer(&b->tp));
      for (LinkPeer* p : peers)
        if (p->child != nullptr) next = std::min(next, tcp_next_timer(p->child.get()));
      // A paused reader resumes at the next period: a wakeup as a timer is.
      if (cfg.read_pause_us != 0) next = std::min(next, (now / cfg.read_pause_us + 1) * cfg.read_pause_us);
      if (next == UINT64_MAX) break;  // nothing will ever happen again: a stall
      now = std::max(now + kStepUs, next);
    }
  }
  res.sim_us = now;
  res.ab = link.a().tx_stats();
  res.ba = link.b().tx_stats();
  for (LinkPeer* p : peers) {
    for (tcp_sock* tp : {&p->tp, p->child.get()}) {
      if (tp == nullptr) continue;
      tcp_write_queue_purge(tp);
      tcp_rcv_queues_purge(tp);
    }
  }
  return res;
}

}  // namespace xmit::testing_tcp
