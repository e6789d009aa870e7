// stack/udp/udp_stack.cc — the stack instance: TX to the device, completions, receive demux.
// kernel: dev_queue_xmit() (net/core/dev.c), __udp4_lib_rcv() (net/ipv4/udp.c), ip_rcv_core().
#include "stack/udp/udp_stack.h"

#include <linux/if_ether.h>

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

// kernel: dev_queue_xmit() -> ndo_start_xmit(). The skb is kept until the device reports the
// frame complete. A full device queue drops the packet as a full qdisc does (NET_XMIT_DROP ->
// -ENOBUFS, which udp_send_skb() counts as SndbufErrors).
int UdpStack::queue_xmit(int ifindex, sk_buff* skb) {
  if (ifindex != ifindex_) {
    kfree_skb(skb);
    return -ENODEV;
  }
  // kernel: validate_xmit_skb(): netif_needs_gso() — a GSO skb the device cannot take whole.
  if (skb_is_gso(skb) && !dev_features_->tso) return xmit_gso_segs(skb);
  TxFrame f;
  int n = skb_to_txframe(skb, absl::MakeSpan(tx_sg_), reinterpret_cast<uint64_t>(skb), &f);
  if (n < 0) {
    kfree_skb(skb);
    return n;
  }
  if (dev_features_->ip_csum) f.flags |= kTxIpCsum;  // ip_output left the header sum to the device
  int r = dev_->xmit(absl::MakeConstSpan(&f, 1));
  if (r == 0) {
    dev_->flush_tx();  // frames held below the doorbell batch go, and complete
    reap_tx();
    r = dev_->xmit(absl::MakeConstSpan(&f, 1));
  }
  if (r <= 0) {
    kfree_skb(skb);
    ++tx_drops;
    return r < 0 ? r : -ENOBUFS;
  }
  ++tx_in_flight;
  return 0;
}

// kernel: validate_xmit_skb() → skb_gso_segment() for a device without NETIF_F_TSO, then
// dev_hard_start_xmit() over the segment list. The segments go to the device in bursts of up to
// kGsoBurst frames per xmit() call (one doorbell; the kernel's xmit_more over the list); each is
// its own cookie, freed when the device completes it. The GSO skb is consumed once cut (the
// segments hold references on its payload). A device queue that stays full after a reap drops the
// segments it did not take, as a full qdisc drops (tx_drops); the call then returns 0 if some went
// (the rest are lost on the wire for TCP to recover), -ENOBUFS if none did.
int UdpStack::xmit_gso_segs(sk_buff* skb) {
  sk_buff* segs = nullptr;
  int n = skb_gso_segment(skb, *dev_features_, &segs);
  consume_skb(skb);  // kernel: validate_xmit_skb(): "consume_skb(skb); skb = segs;"
  if (n < 0) {
    ++tx_drops;
    return n;
  }
  int sent = 0;
  while (segs != nullptr) {
    int nb = 0;
    for (sk_buff* s = segs; s != nullptr && nb < kGsoBurst; s = s->next, ++nb) {
      TxFrame& f = gso_frames_[nb];
      // A segment has its headers and at most MAX_SKB_FRAGS fragments: it always fits.
      (void)skb_to_txframe(s, absl::MakeSpan(gso_sg_[nb]), reinterpret_cast<uint64_t>(s), &f);
      if (dev_features_->ip_csum) f.flags |= kTxIpCsum;
    }
    int taken = 0;
    for (int attempt = 0; attempt < 2 && taken < nb; ++attempt) {
      if (attempt == 1) {
        dev_->flush_tx();  // frames held below the doorbell batch go, and complete
        reap_tx();
      }
      int r = dev_->xmit(absl::MakeConstSpan(gso_frames_ + taken, static_cast<size_t>(nb - taken)));
      if (r < 0 && sent + taken == 0) {  // the device refuses the first segment: no burst can go
        kfree_skb_list(segs);
        ++tx_drops;
        return r;
      }
      // The device owns what it took from here on (reap_tx() may free it): off the list now.
      for (int i = 0; i < r; ++i) {
        sk_buff* s = segs;
        segs = s->next;
        s->next = nullptr;
        ++tx_in_flight;
      }
      if (r > 0) taken += r;
    }
    sent += taken;
    if (taken < nb) {
      kfree_skb_list(segs);
      ++tx_drops;
      return sent != 0 ? 0 : -ENOBUFS;
    }
  }
  return 0;
}

// ip_finish_output2()'s hand-off: the ipv4 layer names the next hop; the neighbour layer resolves
// it. Broadcast and multicast routes never get here (the UDP socket hands them to the kernel).
int UdpStack::neigh_output(sk_buff* skb, const IpTxInfo& info) {
  Neighbour* n = nullptr;
  int err = neigh_->neigh_lookup_or_create(info.oif, info.nexthop, RTN_UNICAST, now_, &n);
  if (err != 0) {
    kfree_skb(skb);
    return err;
  }
  return neigh_->neigh_output(n, skb, now_);
}

void UdpStack::poll(uint64_t now, int budget) {
  now_ = now;
  polls.store(polls.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  reap_tx();
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
  dev_->poll_rx(budget, [&](const RxFrame& f) { return udp4_rcv_frame(f); });
  if (tcp_ != nullptr) tcp_->timers();
}

void UdpStack::tx_complete_now() {
  reap_tx();
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
