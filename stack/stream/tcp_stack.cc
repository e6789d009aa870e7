// stack/stream/tcp_stack.cc — see tcp_stack.h.
#include "stack/stream/tcp_stack.h"

#include <algorithm>
#include <cerrno>
#include <new>

#include "stack/stream/tcp_socket.h"
#include "stack/tcp/tcp_input.h"
#include "stack/tcp/tcp_input_parse.h"
#include "stack/tcp/tcp_mss.h"
#include "stack/tcp/tcp_sendmsg.h"
#include "stack/tcp/tcp_user_frags.h"
#include "stack/tcp/tcp_timer.h"
#include "stack/wire/tcp.h"

namespace xmit {

namespace {

// One received segment per skb: 64 bytes of headroom and the IP packet of the largest frame the
// device receives, in a power of two (a 1500-byte MTU fits the smallest, 2048; a larger MTU gets
// larger heads, and fewer of them: TcpStackOptions::rx_skbs is counted in 2048-byte heads).
uint32_t rx_head_size(const NetdevFeatures& dev) {
  const uint32_t need = 64 + (dev.max_frame > 14 ? dev.max_frame - 14 : 0);
  uint32_t size = 2048;
  while (size < need) size *= 2;
  return size;
}

// A keyed 64-bit mix (the kernel uses siphash with a boot-time secret).
uint64_t mix(uint64_t x, uint64_t key) {
  x ^= key;
  x *= 0x9e3779b97f4a7c15ull;
  x ^= x >> 29;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 32;
  return x;
}

}  // namespace

int TcpStack::create(UdpStack* base, const TcpStackOptions& opt, std::unique_ptr<TcpStack>* out) {
  std::unique_ptr<TcpStack> s(new (std::nothrow) TcpStack());
  if (!s) return -ENOMEM;
  s->base_ = base;
  s->opt_ = opt;
  if (int err = BufPool::create(opt.tx_skbs, 512, &s->heads_); err) return err;
  if (int err = BufPool::create(opt.tx_pages, opt.tx_page_size, &s->pages_); err) return err;
  if (int err = SkbPool::create(opt.tx_skbs, s->heads_.get(), &s->skbs_); err) return err;
  s->rx_head_size_ = rx_head_size(base->dev_features());
  const uint32_t rx_skbs = std::max<uint32_t>(1, opt.rx_skbs / (s->rx_head_size_ / 2048));
  if (int err = BufPool::create(rx_skbs, s->rx_head_size_, &s->rx_heads_); err) return err;
  if (int err = SkbPool::create(rx_skbs, s->rx_heads_.get(), &s->rx_skbs_); err) return err;
  for (uint32_t i = 0; i < kTablePerturbSize; ++i) s->table_perturb_[i] = static_cast<uint32_t>(mix(i, opt.secret ^ 0x7e7));
  s->ctl_inet_.sk_protocol = IPPROTO_TCP;
  s->ctl_inet_.pmtudisc = IP_PMTUDISC_DO;  // kernel: the ctl socket's inet->pmtudisc
  s->tsq_.sk_destruct = &TcpStack::sk_destruct;
  s->tsq_.owner = s.get();
  s->tx_wakes_ = base->dev().tx_completion_wakes();
  *out = std::move(s);
  return 0;
}

TcpStack::~TcpStack() {
  while (tcp_timewait_sock* tw = tw_head_) {
    tw_unlink(tw);
    delete tw;
  }
  for (TcpConn* c : conns_) {
    tcp_write_queue_purge(&c->tp);
    tcp_rcv_queues_purge(&c->tp);
    delete c;
  }
  // Their segments never completed (the device went first): nothing will touch them again.
  for (TcpConn* c : dying_) delete c;
}

void TcpStack::for_each_pool_region(absl::FunctionRef<void(const uint8_t*, size_t)> f) const {
  f(heads_->base(), heads_->size());
  f(pages_->base(), pages_->size());
}

TcpConn* TcpStack::conn_alloc() {
  auto* c = new (std::nothrow) TcpConn();
  if (c == nullptr) return nullptr;
  static_assert(std::is_standard_layout_v<TcpConn>);
  c->inet.sk_protocol = IPPROTO_TCP;
  c->tp.skb_pool = skbs_.get();
  c->tp.page_pool = pages_.get();
  c->tp.rcvbuf = opt_.rmem_default;
  c->tp.sndbuf = opt_.wmem_default;
  c->tp.sysctl_rmem_max = opt_.rmem_max;
  c->tp.sysctl_notsent_lowat = opt_.notsent_lowat;
  c->tp.hw_csum = base_->dev_features().l4_csum;
  c->tp.sg_user = base_->dev_features().sg_user && base_->dev_features().max_segs >= 2;
  c->tp.sg_max_frags = static_cast<uint8_t>(std::min<int>(MAX_SKB_FRAGS, base_->dev_features().max_segs - 1));
  c->tp.sysctl_tcp_autocorking = opt_.autocorking;
  c->tp.sysctl_tcp_pingpong_thresh = opt_.pingpong_thresh;
  c->tp.sysctl_tcp_limit_output_bytes = opt_.limit_output_bytes;
  c->tp.sysctl_tcp_pacing_ss_ratio = opt_.pacing_ss_ratio;
  c->tp.sysctl_tcp_pacing_ca_ratio = opt_.pacing_ca_ratio;
  c->tp.sysctl_tcp_min_tso_segs = opt_.min_tso_segs;
  c->tp.sysctl_tcp_tso_rtt_log = opt_.tso_rtt_log;
  c->tp.sysctl_tcp_min_rtt_wlen = opt_.min_rtt_wlen;
  c->tp.sysctl_tcp_fin_timeout = opt_.fin_timeout;
  c->tp.sysctl_tcp_syncookies = opt_.syncookies;
  c->tp.syncookie_secret = &opt_.syncookie_secret;
  c->tp.tsq = &tsq_;
  c->tp.net_mib = &net_mib;
  c->tp.tcp_mstamp = now_us();
  const bool first = !has_conns();
  conns_.push_back(c);
  if (first && first_conn_hook_ != nullptr) first_conn_hook_();
  return c;
}

void TcpStack::conn_free(TcpConn* c) {
  unhash(c);
  std::erase(conns_, c);
  if (rcv_conn_ == c) rcv_conn_ = nullptr;
  tcp_write_queue_purge(&c->tp);
  tcp_rcv_queues_purge(&c->tp);
  if (tcp_sk_free(&c->tp)) {
    delete c;
  } else {
    dying_.push_back(c);  // sk_destruct() deletes it at its last TX completion
  }
}

void TcpStack::sk_destruct(tsq_tasklet* tsq, tcp_sock* tp) {
  auto* self = static_cast<TcpStack*>(tsq->owner);
  TcpConn* c = tcp_conn(tp);
  std::erase(self->dying_, c);
  delete c;
}

void TcpStack::tx_completed() {
  while (tcp_sock* tp = tsq_pop(&tsq_)) {
    TcpConn* c = tcp_conn(tp);
    tp->tcp_mstamp = now_us();
    tcp_tsq_write(tp, dst_mtu(c), [this, c](sk_buff* s) { return xmit(c, s); });
  }
  update_tx_poll();
}

// After every reap (the instance's poll() and tx_complete_now()): the TX poll deadline is set when
// a wait for a completion begins, pushed back (the gap doubled) when it passed and the completion
// has still not come, and cleared when nothing waits.
void TcpStack::update_tx_poll() {
  if (!tx_waiting()) {
    tx_poll_at_ = 0;
    tx_poll_gap_ = kTxPollMinNs;
    return;
  }
  const uint64_t now = opt_.clock_ns();
  if (tx_poll_at_ == 0) {
    tx_poll_at_ = now + tx_poll_gap_;
    if (tx_poll_hook_ != nullptr) tx_poll_hook_(tx_poll_at_);
  } else if (now >= tx_poll_at_) {
    tx_poll_gap_ = std::min(tx_poll_gap_ * 2, kTxPollMaxNs);
    tx_poll_at_ = now + tx_poll_gap_;
  }
}

int TcpStack::route_connect(TcpConn* c, be32 daddr) {
  Flowi4 fl4{.daddr = daddr, .saddr = c->inet.inet_saddr, .tos = static_cast<uint8_t>(c->inet.tos & 0x1c),
             .mark = c->inet.sk_mark, .proto = IPPROTO_TCP};
  const Rtable* rt = nullptr;
  if (int err = c->dst.lookup(base_->fib(), fl4, &rt); err != 0) {
    base_->request_control();
    return err;
  }
  if (rt->oif != base_->ifindex() || rt->type != RTN_UNICAST) {
    c->dst.reset();
    return 1;
  }
  if (c->inet.inet_saddr == 0) c->inet.inet_saddr = rt->prefsrc;
  c->route = Ipv4Route{.oif = rt->oif,
                       .saddr = c->inet.inet_saddr,
                       .daddr = daddr,
                       .nexthop = rt_nexthop(*rt, daddr),
                       .pmtu = rt->mtu,
                       .dev = &base_->dev_features()};
  // kernel: sk_setup_caps() (from tcp_v4_connect() and tcp_v4_syn_recv_sock()): GSO skbs of up to
  // the device's TSO size where it segments, of up to 64 KiB elsewhere, cut in software on the way
  // to the device (UdpStack::queue_xmit(): skb_gso_segment()), as every Linux TCP socket since 4.19.
  tcp_sk_setup_caps(&c->tp, base_->dev_features());
  return 0;
}

uint32_t TcpStack::dst_mtu(TcpConn* c) {
  if (c->dst.dst_check(base_->fib()) == nullptr && c->inet.inet_daddr != 0) {
    (void)route_connect(c, c->inet.inet_daddr);  // kernel: __sk_dst_check() then a new lookup
  }
  return c->route.dev != nullptr ? c->route.dst_mtu() : base_->dev_features().mtu;
}

// kernel: TCP_MIB_OUTRSTS, counted by tcp_v4_send_reset() and tcp_send_active_reset() for every
// reset they send: the state machine's resets all leave through xmit() or xmit_to().
static void count_out_rst(TcpMib& mib, const sk_buff* skb) {
  if (TCP_SKB_CB(skb)->tcp_flags & TCPHDR_RST) ++mib.OutRsts;
}

int TcpStack::xmit(TcpConn* c, sk_buff* skb) {
  if (c->tp.sk_state == TCP_LISTEN || c->inet.inet_daddr == 0) {
    // A listener's SYN-ACKs and resets: addressed per segment (TCP_SKB_CB(): ours, the peer's).
    const tcp_skb_cb* cb = TCP_SKB_CB(skb);
    return xmit_to(cb->saddr, cb->daddr, skb);
  }
  count_out_rst(mib, skb);
  if (c->dst.dst_check(base_->fib()) == nullptr) {
    int err = route_connect(c, c->inet.inet_daddr);
    if (err != 0) {
      kfree_skb(skb);
      return err > 0 ? -EHOSTUNREACH : err;
    }
  }
  return ip_queue_xmit(base_->out_ctx(base_->now_hint()), &c->inet, c->route, skb);
}

int TcpStack::xmit_to(be32 saddr, be32 daddr, sk_buff* skb) {
  count_out_rst(mib, skb);
  Flowi4 fl4{.daddr = daddr, .saddr = saddr, .proto = IPPROTO_TCP};
  Rtable rt;
  if (int err = base_->fib().route_output(fl4, &rt); err != 0 || rt.oif != base_->ifindex()) {
    kfree_skb(skb);
    return err != 0 ? err : -EHOSTUNREACH;
  }
  Ipv4Route route{.oif = rt.oif, .saddr = saddr, .daddr = daddr, .nexthop = rt_nexthop(rt, daddr),
                  .pmtu = rt.mtu, .dev = &base_->dev_features()};
  // The ctl socket is not connected (inet_daddr 0): DF segments get id 0 (ip_select_ident_segs()),
  // as the kernel's SYN-ACKs (ip_build_and_send_pkt()) and resets (ip_send_unicast_reply()) do.
  ctl_inet_.inet_saddr = saddr;
  return ip_queue_xmit(base_->out_ctx(base_->now_hint()), &ctl_inet_, route, skb);
}

int TcpStack::steer(TcpConn* c, const FlowKey& key) {
  if (c->steered) return 0;
  if (int err = base_->steer(key); err != 0) return err;
  c->steered = true;
  c->steer_key = key;
  return 0;
}

int TcpStack::ehash(TcpConn* c, bool steer_flow) {
  if (c->ehashed) return 0;
  const tcp_sock& tp = c->tp;
  if (established(tp.saddr, tp.sport, tp.daddr, tp.dport)) return -EADDRNOTAVAIL;
  if (steer_flow) {
    if (int err = steer(c, flow_key(c)); err != 0) return err;
  }
  ehash_.emplace(ekey(tp.daddr, tp.dport, tp.saddr, tp.sport), ESock{.sk = c});
  c->ehashed = true;
  return 0;
}

bool TcpStack::reserved_port(uint16_t port) const {
  for (auto [lo, hi] : opt_.reserved_ports)
    if (port >= lo && port <= hi) return true;
  return false;
}

uint32_t& TcpStack::table_perturb(be32 saddr, be32 daddr, uint16_t dport, uint32_t* hash_high) {
  const uint64_t port_offset = mix((uint64_t{saddr} << 32 | daddr) ^ (uint64_t{dport} << 3), opt_.secret ^ 0x9047);
  *hash_high = static_cast<uint32_t>(port_offset >> 32);
  return table_perturb_[port_offset & (kTablePerturbSize - 1)];
}

int TcpStack::lhash(TcpConn* c) {
  if (c->lhashed) return 0;
  be32 local = c->tp.saddr != 0 ? c->tp.saddr : base_->if_addr();
  FlowKey key{.protocol = IPPROTO_TCP, .local_addr = local, .local_port = cpu_to_be16(c->tp.sport)};
  if (int err = steer(c, key); err != 0) return err;
  lhash_[c->tp.sport].push_back(c);
  c->lhashed = true;
  return 0;
}

FlowKey TcpStack::flow_key(const TcpConn* c) {
  const tcp_sock& tp = c->tp;
  return FlowKey{.protocol = IPPROTO_TCP, .local_addr = tp.saddr, .local_port = cpu_to_be16(tp.sport),
                 .remote_addr = tp.daddr, .remote_port = cpu_to_be16(tp.dport)};
}

FlowKey TcpStack::flow_key(const tcp_timewait_sock* tw) {
  return FlowKey{.protocol = IPPROTO_TCP, .local_addr = tw->tw_rcv_saddr, .local_port = cpu_to_be16(tw->tw_num),
                 .remote_addr = tw->tw_daddr, .remote_port = cpu_to_be16(tw->tw_dport)};
}

void TcpStack::unhash(TcpConn* c) {
  const bool was_listener = c->lhashed;
  if (c->ehashed) {
    const tcp_sock& tp = c->tp;
    auto it = ehash_.find(ekey(tp.daddr, tp.dport, tp.saddr, tp.sport));
    if (it != ehash_.end() && it->second.sk == c) ehash_.erase(it);
    c->ehashed = false;
  }
  if (c->lhashed) {
    auto it = lhash_.find(c->tp.sport);
    if (it != lhash_.end()) {
      std::erase(it->second, c);
      if (it->second.empty()) lhash_.erase(it);
    }
    c->lhashed = false;
  }
  if (c->steered) {
    base_->unsteer(c->steer_key);
    c->steered = false;
  }
  // Its children outlive it (the kernel's do): each takes a rule of its own for its 4-tuple, or its
  // segments would go to the kernel, which has no socket for them and resets them.
  if (was_listener) steer_children(c);
}

void TcpStack::steer_children(const TcpConn* listener) {
  auto take = [this, listener](TcpConn* child) {
    if (child->ehashed && !child->steered && child->tp.sport == listener->tp.sport) (void)steer(child, flow_key(child));
  };
  for (TcpConn* child : conns_) take(child);
  for (tcp_timewait_sock* tw = tw_head_; tw != nullptr; tw = tw->tw_next) {
    if (!tw->tw_steered && tw->tw_num == listener->tp.sport && base_->steer(flow_key(tw)) == 0) tw->tw_steered = true;
  }
}

void TcpStack::tw_link_tail(tcp_timewait_sock* tw) {
  tw->tw_next = nullptr;
  tw->tw_prev = tw_tail_;
  (tw_tail_ != nullptr ? tw_tail_->tw_next : tw_head_) = tw;
  tw_tail_ = tw;
}

void TcpStack::tw_link_by_deadline(tcp_timewait_sock* tw) {
  tcp_timewait_sock* after = tw_tail_;
  while (after != nullptr && after->tw_expires > tw->tw_expires) after = after->tw_prev;
  tw->tw_prev = after;
  tw->tw_next = after != nullptr ? after->tw_next : tw_head_;
  (tw->tw_next != nullptr ? tw->tw_next->tw_prev : tw_tail_) = tw;
  (after != nullptr ? after->tw_next : tw_head_) = tw;
}

void TcpStack::tw_unlink(tcp_timewait_sock* tw) {
  (tw->tw_prev != nullptr ? tw->tw_prev->tw_next : tw_head_) = tw->tw_next;
  (tw->tw_next != nullptr ? tw->tw_next->tw_prev : tw_tail_) = tw->tw_prev;
  tw->tw_prev = tw->tw_next = nullptr;
}

// kernel: tcp_time_wait(), net/ipv4/tcp_minisocks.c: inet_twsk_alloc() (none once there are
// net.ipv4.tcp_max_tw_buckets) and the copy, inet_twsk_hashdance() (the timewait sock replaces the
// socket in the ehash), tcp_done(). "Sorry, if we're out of memory, just CLOSE this socket up"
// (LINUX_MIB_TCPTIMEWAITOVERFLOW; "TCP: time wait bucket table overflow", at most every 5 s).
void TcpStack::inet_twsk_hashdance(TcpConn* c) {
  tcp_sock* tp = &c->tp;
  auto it = c->ehashed ? ehash_.find(ekey(tp->daddr, tp->dport, tp->saddr, tp->sport)) : ehash_.end();
  tcp_timewait_sock* tw = nullptr;
  if (it != ehash_.end() && it->second.sk == c) {
    if (tw_count_ < opt_.max_tw_buckets) {
      tw = new (std::nothrow) tcp_timewait_sock;
    } else {
      ++net_mib.TCPTimeWaitOverflow;
      const uint64_t now = now_us();
      if (tw_overflow_logged_us_ == 0 || now - tw_overflow_logged_us_ >= 5'000'000) {
        tw_overflow_logged_us_ = now;
        log_info("TCP: time wait bucket table overflow");
      }
    }
  }
  if (tw != nullptr) {
    tcp_twsk_init(tw, tp, c->inet.tos, c->inet.sk_mark, c->inet.sk_priority);
    it->second = ESock{.tw = tw};
    c->ehashed = false;
    tw->tw_steered = c->steered;  // a connection's rule is its 4-tuple's (flow_key())
    c->steered = false;
    tw_link_by_deadline(tw);
    ++tw_count_;
  }
  tcp_done(tp, this);  // may free c (an orphan)
}

void TcpStack::time_wait(tcp_sock* tp) { inet_twsk_hashdance(tcp_conn(tp)); }

void TcpStack::inet_twsk_deschedule_put(tcp_timewait_sock* tw) {
  auto it = ehash_.find(ekey(tw->tw_daddr, tw->tw_dport, tw->tw_rcv_saddr, tw->tw_num));
  if (it != ehash_.end() && it->second.tw == tw) ehash_.erase(it);
  if (tw->tw_steered) base_->unsteer(flow_key(tw));
  tw_unlink(tw);
  --tw_count_;
  delete tw;
}

TcpConn* TcpStack::tw_rcv(tcp_timewait_sock* tw, sk_buff* skb, be32 saddr, uint16_t sport, be32 daddr, uint16_t dport) {
  const uint64_t now = now_us();
  const uint64_t deadline = tw->tw_expires;
  int status = tcp_timewait_state_process(tw, skb, now);
  if (status == TCP_TW_SYN) {
    if (TcpConn* l = lookup_listener(saddr, sport, daddr, dport)) {
      inet_twsk_deschedule_put(tw);  // the 4-tuple is the new connection's from here on
      return l;
    }
    status = TCP_TW_ACK;  // "to ACK": not rate-limited
  }
  if (status == TCP_TW_RST) {
    // kernel: tcp_v4_send_reset() for the segment, then inet_twsk_deschedule_put().
    tcp_v4_send_reset(skb, *TCP_SKB_CB(skb), skbs_.get(), [&](sk_buff* s) { return xmit_to(daddr, saddr, s); });
    kfree_skb(skb);
    inet_twsk_deschedule_put(tw);
    return nullptr;
  }
  if (status == TCP_TW_ACK) {
    // From the ctl socket (kernel: tcp_v4_send_ack() -> ip_send_unicast_reply()): the timewait
    // sock's TOS, mark and priority, the default TTL, IP id 0 with DF.
    ctl_inet_.tos = tw->tw_tos;
    ctl_inet_.sk_mark = tw->tw_mark;
    ctl_inet_.sk_priority = tw->tw_priority;
    tcp_v4_timewait_ack(*tw, skbs_.get(), now, [&](sk_buff* s) { return xmit_to(daddr, saddr, s); });
    ctl_inet_.tos = 0;
    ctl_inet_.sk_mark = ctl_inet_.sk_priority = 0;
  }
  kfree_skb(skb);
  if (tw->tw_expires == 0) {
    inet_twsk_deschedule_put(tw);  // an in-window RST
  } else if (tw->tw_expires != deadline) {
    tw_unlink(tw);  // inet_twsk_reschedule(): the latest deadline, the FIFO's tail
    tw_link_tail(tw);
  }
  return nullptr;
}

void TcpStack::listeners_to_kernel() {
  for (TcpConn* c : conns_) {
    if (!c->lhashed || !c->steered) continue;
    base_->unsteer(c->steer_key);
    c->steered = false;
    steer_children(c);
  }
}

void TcpStack::moved_to_kernel(TcpConn* c) {
  const tcp_sock& tp = c->tp;
  const uint64_t now = now_us();
  std::erase_if(moved_, [now](const Moved& m) { return m.until_us <= now; });
  moved_.push_back(Moved{ekey(tp.daddr, tp.dport, tp.saddr, tp.sport), now + 2'000'000});
  // Where its listening port's rule stays (a pre-fork worker's: shared with the others), the
  // device hands its frames to the kernel socket now.
  (void)base_->steer_to_kernel(flow_key(c));
  c->user = nullptr;
  c->tp.sock_dead = true;
  conn_free(c);
}

// kernel: inet_lhash2_lookup(): the listener with the best compute_score() (a bound address beats
// INADDR_ANY); when it has SO_REUSEPORT, the member of its group (the SO_REUSEPORT listeners bound
// to the same address, in the order they listened) the 4-tuple's hash picks, as
// reuseport_select_sock() does with reciprocal_scale(). The hash is keyed, not the kernel's jhash.
TcpConn* TcpStack::lookup_listener(be32 saddr, uint16_t sport, be32 daddr, uint16_t dport) const {
  auto it = lhash_.find(dport);
  if (it == lhash_.end()) return nullptr;
  TcpConn* best = nullptr;
  int best_score = 0;
  for (TcpConn* c : it->second) {
    const int score = c->tp.saddr == daddr ? 2 : c->tp.saddr == 0 ? 1 : 0;
    if (score > best_score) best = c, best_score = score;
  }
  if (best == nullptr || !best->reuseport) return best;
  auto in_group = [best](const TcpConn* c) { return c->reuseport && c->tp.saddr == best->tp.saddr; };
  const uint32_t n = static_cast<uint32_t>(std::count_if(it->second.begin(), it->second.end(), in_group));
  // A keyed 64-bit mix of the 4-tuple (splitmix64's finalizer): every bit of the ports reaches the
  // top 32 bits, which reciprocal_scale() reads.
  uint64_t h = (uint64_t{saddr} << 32 | daddr) ^ opt_.secret;
  h ^= uint64_t{sport} << 16 | dport;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  h ^= h >> 31;
  uint32_t pick = static_cast<uint32_t>(((h >> 32) * n) >> 32);
  for (TcpConn* c : it->second)
    if (in_group(c) && pick-- == 0) return c;
  return best;
}

bool TcpStack::handler(const RxFrame&, be32 saddr, be32 daddr, absl::Span<const uint8_t> seg) {
  ++mib.InSegs;
  sk_buff* skb = rx_skbs_->alloc_skb();
  if (skb == nullptr || seg.size() > rx_head_size_ - 64) {
    if (skb != nullptr) kfree_skb(skb);
    ++mib.RcvDrops;
    return false;
  }
  skb_reserve(skb, 64);
  skb_put_data(skb, seg.data(), static_cast<uint32_t>(seg.size()));
  // kernel: tcp_v4_rcv(): the checks before the lookup; the device verified nothing here.
  if (tcp_v4_check_segment(absl::MakeConstSpan(skb->data, skb->len), saddr, daddr, true, TCP_SKB_CB(skb)) != 0) {
    ++mib.InErrs;
    kfree_skb(skb);
    return false;
  }
  const uint16_t sport = be16_to_cpu(load_raw16(skb->data));
  const uint16_t dport = be16_to_cpu(load_raw16(skb->data + 2));
  if (!moved_.empty()) {
    const EKey k = ekey(saddr, sport, daddr, dport);
    const uint64_t now = now_us();
    for (const Moved& m : moved_) {
      if (m.key == k && m.until_us > now) {
        kfree_skb(skb);
        return false;
      }
    }
  }
  TcpConn* c = nullptr;
  if (auto it = ehash_.find(ekey(saddr, sport, daddr, dport)); it != ehash_.end()) {
    c = it->second.sk;
    // kernel: tcp_v4_rcv()'s do_time_wait: a new SYN on the 4-tuple ends the TIME_WAIT and goes
    // to the listener, answered with tcp_tw_isn (a client reusing the port of a connection this
    // server closed first would otherwise retransmit its SYN after 1 s).
    if (it->second.tw != nullptr && (c = tw_rcv(it->second.tw, skb, saddr, sport, daddr, dport)) == nullptr) return false;
  }
  if (c == nullptr) c = lookup_listener(saddr, sport, daddr, dport);
  if (c == nullptr) {
    // kernel: no_tcp_socket -> tcp_v4_send_reset()
    tcp_v4_send_reset(skb, *TCP_SKB_CB(skb), skbs_.get(), [&](sk_buff* s) { return xmit_to(daddr, saddr, s); });
    kfree_skb(skb);
    return false;
  }
  c->tp.tcp_mstamp = now_us();
  // A socket an fd names outlives the segment (only an orphan may be freed by it).
  TcpSocket* const user = c->user;
  c->tp.sigurg_pending = false;
  rcv_conn_ = c;
  tcp_v4_do_rcv(&c->tp, skb, dst_mtu(c), [this, c](sk_buff* s) { return xmit(c, s); }, this);
  // The FIN (or the ACK of ours in CLOSING) that took c to TIME_WAIT was acknowledged in there
  // (tcp_fin()'s ICSK_ACK_NOW): the timewait sock takes over. c is gone if it was an orphan freed.
  if (rcv_conn_ != nullptr && rcv_conn_->tp.sk_state == TCP_TIME_WAIT) inet_twsk_hashdance(rcv_conn_);
  rcv_conn_ = nullptr;
  // kernel: sk_send_sigurg() — "if (sk->sk_socket && sk->sk_socket->file)": a child on the accept
  // queue has no file, no owner, no signal.
  if (user != nullptr && c->tp.sigurg_pending) user->send_sigurg();
  return false;
}

void TcpStack::run_timers(TcpConn* c) {
  c->tp.tcp_mstamp = now_us();
  if (tcp_next_timer(&c->tp) > c->tp.tcp_mstamp) return;
  tcp_timers_run(&c->tp, [this, c](sk_buff* s) { return xmit(c, s); }, this);
}

void TcpStack::timers() {
  if (conns_.empty() && tw_head_ == nullptr) return;
  const uint64_t now = now_us();
  // kernel: tw_timer_handler() -> inet_twsk_kill(): the FIFO's due head(s).
  while (tw_head_ != nullptr && tw_head_->tw_expires <= now) inet_twsk_deschedule_put(tw_head_);
  // done() may free connections during the walk: iterate over a snapshot of the due ones.
  TcpConn* due[64];
  size_t n = 0;
  for (TcpConn* c : conns_) {
    if (tcp_next_timer(&c->tp) <= now && n < std::size(due)) due[n++] = c;
  }
  for (size_t i = 0; i < n; ++i) {
    if (std::find(conns_.begin(), conns_.end(), due[i]) == conns_.end()) continue;
    due[i]->tp.tcp_mstamp = now;
    tcp_timers_run(&due[i]->tp, [this, c = due[i]](sk_buff* s) { return xmit(c, s); }, this);
  }
}

uint64_t TcpStack::next_timer_ns() const {
  uint64_t t = tw_head_ == nullptr ? UINT64_MAX : tw_head_->tw_expires;
  for (const TcpConn* c : conns_) t = std::min(t, tcp_next_timer(&c->tp));
  t = t == UINT64_MAX ? t : t * 1000;
  // A wait that began after the last reap (a tail autocorked since) has no deadline yet.
  if (tx_waiting()) t = std::min(t, tx_poll_at_ != 0 ? tx_poll_at_ : opt_.clock_ns() + tx_poll_gap_);
  return std::min(t, base_->next_timer_ns());  // the backlog's, set when it filled
}

void TcpStack::close_all_at_exit() {
  std::vector<TcpConn*> open;
  for (TcpConn* c : conns_) {
    if (c->user != nullptr && c->tp.sk_state != TCP_CLOSE) open.push_back(c);
  }
  exiting_ = true;
  for (TcpConn* c : open) {
    // c->user stays: done() then never frees c, which the TcpSocket (another thread may still be
    // in it while the process exits) goes on pointing at; its release() leaves c alone from now on.
    c->tp.tcp_mstamp = now_us();
    // As a close(): the program's memory may go before the drain ends (copied, or aborted).
    tcp_close_user_frags(&c->tp, dst_mtu(c), [this, c](sk_buff* s) { return xmit(c, s); }, this);
  }
}

bool TcpStack::exit_pending() const {
  for (const TcpConn* c : conns_) {
    uint8_t st = c->tp.sk_state;
    if (st != TCP_CLOSE && st != TCP_LISTEN) return true;
  }
  // An orphan's FIN_WAIT2 (a timewait sock in that substate) still waits for the peer's FIN: the
  // kernel would acknowledge it after the process exits; here the process waits for it (the
  // kernel, with no socket, would answer it with a reset).
  for (const tcp_timewait_sock* tw = tw_head_; tw != nullptr; tw = tw->tw_next) {
    if (tw->tw_substate == TCP_FIN_WAIT2) return true;
  }
  return false;
}

tcp_sock* TcpStack::clone(const tcp_sock* listener) {
  const TcpConn* l = reinterpret_cast<const TcpConn*>(listener);
  TcpConn* c = conn_alloc();
  if (c == nullptr) return nullptr;
  // kernel: sk_clone_lock() copies the listener's socket options.
  c->inet.tos = l->inet.tos;
  c->inet.uc_ttl = l->inet.uc_ttl;
  c->inet.pmtudisc = l->inet.pmtudisc;
  c->inet.sk_mark = l->inet.sk_mark;
  c->inet.sk_priority = l->inet.sk_priority;
  ++mib.PassiveOpens;
  return &c->tp;
}

void TcpStack::hash(tcp_sock* child) {
  TcpConn* c = tcp_conn(child);
  c->inet.inet_saddr = child->saddr;
  c->inet.inet_daddr = child->daddr;
  c->inet.inet_sport = cpu_to_be16(child->sport);
  c->inet.inet_dport = cpu_to_be16(child->dport);
  c->inet.inet_id = static_cast<uint16_t>(mix(now_us(), opt_.secret));  // kernel: get_random_u16()
  (void)route_connect(c, child->daddr);
  // The listener's port rule already brings its children's segments: no rule of their own while it
  // listens (a server with thousands of connections in TIME_WAIT would otherwise fill the device's
  // table); unhash() of the listener gives each surviving child one.
  (void)ehash(c, false);
}

void TcpStack::done(tcp_sock* tp) {
  TcpConn* c = tcp_conn(tp);
  if (c->user == nullptr && tp->sock_dead) {
    conn_free(c);
  } else {
    unhash(c);  // the socket stays for its fd; the stack no longer sends or receives for it
  }
}

// kernel: secure_tcp_seq_and_ts_off(): one SipHash of the 4-tuple under net_secret; the ISN is its
// low half plus the clock in 64 ns units (seq_scale()), the timestamp offset its high half. (A PRF:
// both halves go on the wire, and an invertible mix would give its key away.)
uint64_t TcpStack::secure_hash(be32 saddr, be32 daddr, uint16_t sport, uint16_t dport) const {
  return siphash_4u32(saddr, daddr, uint32_t{sport} << 16 | dport, 0, &opt_.net_secret);
}

uint32_t TcpStack::secure_seq(be32 saddr, be32 daddr, uint16_t sport, uint16_t dport) {
  return static_cast<uint32_t>(secure_hash(saddr, daddr, sport, dport)) + static_cast<uint32_t>(opt_.clock_ns() >> 6);
}

uint32_t TcpStack::secure_ts_off(be32 saddr, be32 daddr, uint16_t sport, uint16_t dport) {
  return static_cast<uint32_t>(secure_hash(saddr, daddr, sport, dport) >> 32);
}

void TcpStack::log_info(const char* line) {
  if (opt_.log_info != nullptr) opt_.log_info(line);
}

}  // namespace xmit
