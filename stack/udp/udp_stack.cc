// stack/udp/udp_stack.cc — the stack instance: TX to the device, completions, receive demux.
// kernel: dev_queue_xmit() (net/core/dev.c), __udp4_lib_rcv() (net/ipv4/udp.c), ip_rcv_core().
#include "stack/udp/udp_stack.h"

#include <linux/if_ether.h>

#include <algorithm>
#include <cerrno>

#include "stack/base/checksum.h"
#include "stack/ipv4/skb_queue.h"
#include "stack/ipv4/tcp_offload.h"
#include "stack/skb/skb_frame.h"
#include "stack/udp/udp_sock.h"
#include "stack/wire/eth.h"
#include "stack/wire/ipv4.h"
#include "stack/wire/udp.h"

namespace xmit {

int UdpStack::create(Netdev* dev, Fib* fib, const UdpStackOptions& opt, std::unique_ptr<UdpStack>* out) {
  std::unique_ptr<UdpStack> s(new UdpStack);
  s->dev_ = dev;
  s->dev_features_ = &dev->features();
  s->ifindex_ = dev->ifindex();
  s->dev_mac_ = dev->mac();
  s->tx_wakes_ = dev->tx_completion_wakes();
  s->fib_ = fib;
  s->opt_ = opt;
  if (int err = BufPool::create(opt.nr_skbs, opt.buf_size, &s->heads_); err) return err;
  if (int err = BufPool::create(opt.nr_skbs, opt.buf_size, &s->frags_); err) return err;
  if (int err = SkbPool::create(opt.nr_skbs, s->heads_.get(), &s->skbs_); err) return err;
  s->neigh_ = std::make_unique<NeighTable>(fib, static_cast<NeighOps*>(s.get()));
  s->idents_ = std::make_unique<HashIpIdents>(opt.ident_seed);
  *out = std::move(s);
  return 0;
}

UdpStack::~UdpStack() {
  neigh_.reset();  // frees skbs waiting for ARP
  // Frames still posted: wait for nothing, the device is closed after us; give the skbs back.
  reap_tx();
  kfree_skb_list(backlog_head_);
}

IpOutCtx UdpStack::out_ctx(uint64_t now) {
  now_ = now;
  return IpOutCtx{.skbs = skbs_.get(),
                  .frags = frags_.get(),
                  .idents = idents_.get(),
                  .neigh = this,
                  .mib = &mib,
                  .sysctl = &opt_.sysctl,
                  .now_ns = now};
}

const uint8_t* UdpStack::dev_addr(int ifindex) {
  return ifindex == ifindex_ ? dev_mac_ : nullptr;
}

void UdpStack::reap_tx() {
  dev_->poll_tx([&](uint64_t cookie) {
    kfree_skb(reinterpret_cast<sk_buff*>(cookie));
    --tx_in_flight;
  });
}

// kernel: __dev_queue_xmit() -> validate_xmit_skb() -> the qdisc -> ndo_start_xmit(). The skb is
// kept until the device reports the frame complete. `skb` is one packet or a GSO packet: a GSO skb
// (TCP's; cut here first for a device without TSO: netif_needs_gso() -> skb_gso_segment()), or the
// segments of a UDP GSO packet linked through next (ip_finish_output2() cut it). While frames wait
// in the backlog, a new packet goes behind them, as a qdisc queues it: frames leave in order.
// Otherwise a single frame the device has no room for is dropped as a full qdisc drops it
// (NET_XMIT_DROP -> -ENOBUFS, which udp_send_skb() counts as SndbufErrors). A GSO packet is never
// cut short: what the device did not take of it waits in the backlog, on either kind of device
// (the TSO frame whole, or the segments), as the kernel's qdisc holds the GSO skb it enqueued and
// sch_direct_xmit() requeues what the driver refused (dev_requeue_skb(), net/sched/sch_generic.c)
// rather than losing the tail of a 64 KiB send; only a full backlog refuses it, whole
// (enqueue_backlog()).
int UdpStack::queue_xmit(int ifindex, sk_buff* skb) {
  sk_buff* list = skb;
  if (ifindex != ifindex_) {
    kfree_skb_list(list);
    return -ENODEV;
  }
  const bool gso = skb_is_gso(skb) || skb->next != nullptr;
  if (skb_is_gso(skb) && !dev_features_->tso) {
    int n = skb_gso_segment(skb, *dev_features_, &list);
    consume_skb(skb);  // kernel: validate_xmit_skb(): "consume_skb(skb); skb = segs;"
    if (n < 0) {
      ++tx_drops;
      return n;
    }
  }
  if (backlog_head_ != nullptr) qdisc_run();
  if (backlog_head_ != nullptr) return enqueue_backlog(list);
  if (!gso) return xmit_one(skb);
  int err = 0;
  dev_xmit_list(&list, /*whole=*/true, &err);
  if (list == nullptr) return err;
  return enqueue_backlog(list);
}

// Hands the frames of *list (linked through next) to the device in bursts of up to kGsoBurst per
// xmit() call (one doorbell; the kernel's xmit_more over a segment list), each its own cookie, freed
// when the device completes it; *list is left at the first frame the device did not take (nullptr:
// all went). A device queue that fills is given one more chance after the frames held below the
// doorbell batch are rung and the completions reaped. A frame the device refuses (-errno: it can
// never send it) is dropped and counted; with `whole` a refusal of the list's first frame drops the
// whole list (segments of one skb, all alike: no burst can go) and *err says why. Returns how many
// frames left *list, taken or dropped one by one, so that the backlog's count is kept without a
// walk (a list dropped whole is not counted: only queue_xmit() passes `whole`, never the backlog).
uint32_t UdpStack::dev_xmit_list(sk_buff** list, bool whole, int* err) {
  bool retried = false;
  bool first = true;
  uint32_t gone = 0;
  while (*list != nullptr) {
    int nb = 0;
    int bad = 0;
    for (sk_buff* s = *list; s != nullptr && nb < kGsoBurst; s = s->next, ++nb) {
      TxFrame& f = gso_frames_[nb];
      // A segment has its headers and at most MAX_SKB_FRAGS fragments: it always fits. A frame that
      // does not (too many fragments for the scatter list) ends the burst; first in it, it is dropped.
      bad = skb_to_txframe(s, absl::MakeSpan(gso_sg_[nb]), reinterpret_cast<uint64_t>(s), &f);
      if (bad < 0) break;
      if (dev_features_->ip_csum) f.flags |= kTxIpCsum;  // ip_output left the header sum to the device
    }
    if (nb == 0) {
      *err = bad;
      pop_drop(list);
      ++gone;
      continue;
    }
    int r = dev_->xmit(absl::MakeConstSpan(gso_frames_, static_cast<size_t>(nb)));
    if (r < 0) {
      *err = r;
      if (whole && first) {
        kfree_skb_list(*list);
        *list = nullptr;
        ++tx_drops;
        return gone;
      }
      pop_drop(list);
      ++gone;
      continue;
    }
    first = first && r == 0;
    // The device owns what it took from here on (reap_tx() may free it): off the list now.
    for (int i = 0; i < r; ++i) {
      sk_buff* s = *list;
      *list = s->next;
      s->next = nullptr;
      ++tx_in_flight;
    }
    gone += static_cast<uint32_t>(r);
    if (r < nb) {
      if (retried) return gone;
      retried = true;
      dev_->flush_tx();  // frames held below the doorbell batch go, and complete
      reap_tx();
    }
  }
  return gone;
}

// One frame, nothing waiting before it: dev_xmit_list()'s burst of one with `whole`, and the drop
// of a frame the device queue has no room for (see queue_xmit()), without the list's bookkeeping.
// kernel: dev_hard_start_xmit() -> xmit_one(), net/core/dev.c
int UdpStack::xmit_one(sk_buff* skb) {
  for (bool retried = false;; retried = true) {
    TxFrame& f = gso_frames_[0];
    int r = skb_to_txframe(skb, absl::MakeSpan(gso_sg_[0]), reinterpret_cast<uint64_t>(skb), &f);
    if (r >= 0) {
      if (dev_features_->ip_csum) f.flags |= kTxIpCsum;  // ip_output left the header sum to the device
      r = dev_->xmit(absl::MakeConstSpan(gso_frames_, 1));
    }
    if (r == 1) {  // the device owns it from here on (reap_tx() frees it)
      ++tx_in_flight;
      return 0;
    }
    if (r < 0 || retried) {
      kfree_skb(skb);
      ++tx_drops;
      return r < 0 ? r : -ENOBUFS;
    }
    dev_->flush_tx();  // frames held below the doorbell batch go, and complete
    reap_tx();
  }
}

void UdpStack::pop_drop(sk_buff** list) {
  sk_buff* s = *list;
  *list = s->next;
  s->next = nullptr;
  kfree_skb(s);
  ++tx_drops;
}

// Appends `list` (one packet: a frame, or the frames of one GSO packet) to the backlog whole, or,
// with kTxBacklogMax frames already waiting, drops it whole (counted once). 0 or -ENOBUFS.
// kernel: pfifo_fast_enqueue(): a GSO skb is one entry of its ring (limit: the device's
// tx_queue_len), taken whole or dropped whole (qdisc_drop_cpu() -> NET_XMIT_DROP); the segments of
// one it took are requeued past that limit (dev_requeue_skb()), so the backlog may pass
// kTxBacklogMax by one GSO packet's frames. The limit counts frames here, the kernel's skbs.
int UdpStack::enqueue_backlog(sk_buff* list) {
  if (backlog_len_ >= kTxBacklogMax) {
    kfree_skb_list(list);
    ++tx_drops;
    return -ENOBUFS;
  }
  const bool was_empty = backlog_head_ == nullptr;
  if (was_empty) {
    backlog_head_ = list;
  } else {
    backlog_tail_->next = list;
  }
  for (sk_buff* s = list; s != nullptr; s = s->next) {
    backlog_tail_ = s;
    ++backlog_len_;
    ++tx_requeued;
  }
  if (was_empty) {  // a wait for a completion begins: someone must look for it
    if (!tx_wakes_) {
      tx_poll_gap_ = kTxPollMinNs;
      tx_poll_at_ = clock_now() + tx_poll_gap_;
    }
    if (tx_poll_hook_ != nullptr) tx_poll_hook_(next_timer_ns());
  }
  return 0;
}

// After every reap (poll(), tx_complete_now()): the backlog's TX poll deadline cleared when the
// backlog emptied, pushed back (the gap doubled) when it passed with frames still waiting.
void UdpStack::update_tx_poll() {
  if (backlog_head_ == nullptr || tx_wakes_) {
    tx_poll_at_ = 0;
    tx_poll_gap_ = kTxPollMinNs;
    return;
  }
  const uint64_t now = clock_now();
  if (tx_poll_at_ == 0) {
    tx_poll_at_ = now + tx_poll_gap_;
  } else if (now >= tx_poll_at_) {
    tx_poll_gap_ = std::min(tx_poll_gap_ * 2, kTxPollMaxNs);
    tx_poll_at_ = now + tx_poll_gap_;
  }
}

// The backlog's frames to the device, oldest first, as far as it takes them. kernel: qdisc_run()
// (from net_tx_action() once netif_tx_wake_queue() saw room: here after every reap and before
// every new frame).
void UdpStack::qdisc_run() {
  if (backlog_head_ == nullptr) return;
  int err = 0;
  sk_buff* list = backlog_head_;
  const auto gone = dev_xmit_list(&list, /*whole=*/false, &err);
  backlog_len_ -= gone;
  backlog_head_ = list;
  if (list == nullptr || gone > 0) {
    // Nothing waits for a completion any more; or completions made room: the next look comes
    // after the shortest gap again (the gap doubles only while no completion comes).
    if (list == nullptr) backlog_tail_ = nullptr;
    tx_poll_at_ = 0;
    tx_poll_gap_ = kTxPollMinNs;
  }
}

// ip_finish_output2()'s hand-off: the ipv4 layer names the next hop; the neighbour layer resolves
// it. Broadcast and multicast routes never get here (the UDP socket hands them to the kernel).
int UdpStack::neigh_output(sk_buff* skb, const IpTxInfo& info) {
  Neighbour* n = nullptr;
  int err = neigh_->neigh_lookup_or_create(info.oif, info.nexthop, RTN_UNICAST, now_, &n);
  if (err != 0) {
    kfree_skb_list(skb);  // a UDP GSO packet's segments (ip_finish_output2())
    return err;
  }
  return neigh_->neigh_output(n, skb, now_);
}

// The lookup above without creating or counting (NeighTable::neigh_lookup()): the entry the UDP
// send template holds (IpCb::neigh).
Neighbour* UdpStack::neigh_lookup(const IpTxInfo& info) {
  return info.oif > 0 ? neigh_->neigh_lookup(info.oif, info.nexthop) : nullptr;
}

int UdpStack::neigh_output_held(Neighbour* n, sk_buff* skb, bool hh_written) {
  return neigh_->neigh_output(n, skb, now_, hh_written);
}

int UdpStack::poll(uint64_t now, int budget) {
  now_ = now;
  polls.store(polls.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  reap_tx();
  qdisc_run();
  update_tx_poll();
  if (tcp_ != nullptr) tcp_->tx_completed();
  if (control_ != nullptr) {
    control_->on_poll(now);
    if (now >= control_due_) {
      control_due_ = now + opt_.control_interval_ns;
      control_->poll_changes(now, *neigh_, [&](int fd) {
        if (auto it = shadows_.find(fd); it != shadows_.end()) it->second->shadow_error();
      });
    }
  }
  neigh_->neigh_timer_handler(now);
  const int got = dev_->poll_rx(budget, [&](const RxFrame& f) { return udp4_rcv_frame(f); });
  if (tcp_ != nullptr) tcp_->timers();
  return got;
}

void UdpStack::tx_complete_now() {
  reap_tx();
  qdisc_run();
  update_tx_poll();
  if (tcp_ != nullptr) tcp_->tx_completed();
}

void UdpStack::watch_shadow(UdpSock* sk, int fd) {
  shadows_[fd] = sk;  // a stale entry for a reused fd number is replaced
  if (control_ != nullptr) control_->watch_shadow(fd);
}

void UdpStack::unwatch_shadow(UdpSock* sk, int fd) {
  auto it = shadows_.find(fd);
  if (it == shadows_.end() || it->second != sk) return;
  shadows_.erase(it);
  if (control_ != nullptr) control_->unwatch_shadow(fd);
}

void UdpStack::hash(UdpSock* sk, be16 port) { table_[port].push_back(sk); }

void UdpStack::unhash(UdpSock* sk, be16 port) {
  auto it = table_.find(port);
  if (it == table_.end()) return;
  std::erase(it->second, sk);
  if (it->second.empty()) table_.erase(it);
}

int UdpStack::steer(const FlowKey& key) {
  for (auto& [k, n] : steered_) {
    if (k == key) return ++n, 0;
  }
  int err = dev_->steer(key);
  if (err != 0 && err != -EEXIST) return err;  // -EEXIST: steered by someone before us; ours now
  steered_.push_back({key, 1});
  return 0;
}

void UdpStack::unsteer(const FlowKey& key) {
  for (size_t i = 0; i < steered_.size(); ++i) {
    if (!(steered_[i].first == key)) continue;
    if (--steered_[i].second == 0) {
      dev_->unsteer(key);
      steered_.erase(steered_.begin() + static_cast<long>(i));
    }
    return;
  }
}

namespace {

// kernel: udp_ehashfn() (jhash_3words of the 4-tuple with a random key), then reciprocal_scale().
uint32_t flow_hash(be32 saddr, be16 sport, be32 daddr, be16 dport, uint64_t key) {
  uint64_t h = (uint64_t{saddr} << 32 | daddr) ^ key;
  h ^= (uint64_t{sport} << 16 | dport) * 0x9e3779b97f4a7c15ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return static_cast<uint32_t>(h);
}

}  // namespace

UdpSock* UdpStack::udp4_lib_lookup(be32 saddr, be16 sport, be32 daddr, be16 dport) {
  if (UdpSock* sk = udp4_lib_lookup2(saddr, sport, daddr, dport, daddr)) return sk;
  return udp4_lib_lookup2(saddr, sport, daddr, dport, 0);
}

// kernel: udp4_lib_lookup2() over the sockets of `dport` bound to `bound`.
UdpSock* UdpStack::udp4_lib_lookup2(be32 saddr, be16 sport, be32 daddr, be16 dport, be32 bound) {
  auto it = table_.find(dport);
  if (it == table_.end()) return nullptr;
  const std::vector<UdpSock*>& socks = it->second;
  UdpSock* result = nullptr;
  int badness = 0;
  for (UdpSock* sk : socks) {
    if (sk->rcv_saddr() != bound) continue;
    int score = sk->compute_score(saddr, sport);
    if (score <= badness) continue;
    badness = score;
    result = sk;
    if (sk->connected() || !sk->in_reuseport_group()) continue;
    // kernel: inet_lookup_reuseport() -> reuseport_select_sock_by_hash(): the group's unconnected
    // members in join order, indexed by the flow's hash; a group with connected members goes on
    // scoring (reuseport_has_conns()), where a connected socket outscores it.
    UdpSock* members[64];
    uint32_t n = 0;
    bool conns = false;
    for (UdpSock* m : socks) {
      if (!m->in_reuseport_group() || m->rcv_saddr() != bound || m->compute_score(saddr, sport) < 0) continue;
      if (m->connected()) {
        conns = true;
      } else if (n < 64) {
        members[n++] = m;
      }
    }
    uint32_t h = flow_hash(saddr, sport, daddr, dport, opt_.ident_seed);
    result = members[static_cast<uint32_t>((uint64_t{h} * n) >> 32)];
    if (!conns) return result;
  }
  return result;
}

// kernel: ip_rcv_core() (header checks) + __udp4_lib_rcv() (length, checksum, lookup, enqueue).
// Fragments are not reassembled here: the queue sees at most a datagram's first fragment (a NIC's
// flow rule matches its ports; the XDP program passes every fragment to the kernel), so a UDP
// fragment goes to the kernel, which has the rest (UdpStackOptions::ip_frag_to_kernel).
bool UdpStack::udp4_rcv_frame(const RxFrame& f) {
  auto eth = EthHdrView::parse(absl::MakeConstSpan(f.data, f.len));
  if (!eth || eth->h_proto() != ETH_P_IP) return false;
  auto iph = IpHdrView::parse(eth->payload());
  // ip_rcv_core(): version, ihl, header checksum, tot_len within the frame (parse checks lengths).
  if (!iph || iph->version() != 4 || iph->ihl() < 5 || !iph->csum_ok() ||
      iph->tot_len() > eth->payload().size() || iph->tot_len() < iph->header_len()) {
    ++udp_rx_mib.InErrors;
    return false;
  }
  if (iph->is_fragment()) {  // kernel: ip_local_deliver() -> ip_defrag(), in the kernel's own stack
    const uint32_t len = static_cast<uint32_t>(eth->payload().data() - f.data) + iph->tot_len();  // no padding
    if (iph->protocol() == IPPROTO_UDP && opt_.ip_frag_to_kernel != nullptr &&
        opt_.ip_frag_to_kernel(opt_.ip_frag_ctx, f.data, len) == 0) {
      ++rx_frags_to_kernel;
      return false;
    }
    ++udp_rx_mib.InErrors;
    return false;
  }
  if (iph->protocol() == IPPROTO_TCP && tcp_ != nullptr) {  // kernel: inet_protos[] -> tcp_v4_rcv()
    return tcp_->handler(f, iph->saddr(), iph->daddr(), iph->payload());
  }
  if (iph->protocol() != IPPROTO_UDP) {
    ++udp_rx_mib.InErrors;
    return false;
  }
  // __udp4_lib_rcv(): ulen within the IP payload and at least a header (udp_lib_checksum_complete()).
  auto uh = UdpHdrView::parse(iph->payload());
  if (!uh || uh->len() < 8 || uh->len() > iph->payload().size()) {
    ++udp_rx_mib.InErrors;
    return false;
  }
  absl::Span<const uint8_t> udp = absl::MakeConstSpan(iph->payload().data(), uh->len());
  if (uh->check() != 0) {  // 0: the sender did not compute one (RFC 768)
    wsum sum = csum_partial(udp.data(), udp.size(), 0);
    if (csum_tcpudp_magic(iph->saddr(), iph->daddr(), uh->len(), IPPROTO_UDP, sum) != 0) {
      ++udp_rx_mib.InCsumErrors;
      ++udp_rx_mib.InErrors;
      return false;
    }
  }
  be16 dport = cpu_to_be16(uh->dest());
  be16 sport = cpu_to_be16(uh->source());
  if (UdpSock* sk = udp4_lib_lookup(iph->saddr(), sport, iph->daddr(), dport)) {
    UdpRxDatagram d{.buf_id = f.buf_id,
                    .data = udp.data() + 8,
                    .len = static_cast<uint32_t>(udp.size() - 8),
                    .saddr = iph->saddr(),
                    .sport = sport,
                    .truesize = opt_.rx_truesize};
    d.info = IpRecvInfo{.daddr = iph->daddr(),
                        .dport = dport,
                        .ttl = iph->ttl(),
                        .tos = iph->tos(),
                        .ifindex = ifindex_,
                        .opts = iph->options().data(),
                        .optlen = static_cast<uint8_t>(iph->optlen()),
                        .tstamp_ns = sk->wants_tstamp() && opt_.realtime_ns != nullptr ? opt_.realtime_ns() : 0};
    if (!sk->enqueue(d)) {
      ++udp_rx_mib.RcvbufErrors;
      ++udp_rx_mib.InErrors;
      return false;
    }
    ++udp_rx_mib.InDatagrams;
    return true;
  }
  ++udp_rx_mib.NoPorts;
  return false;
}

}  // namespace xmit
