// stack/neigh/neighbour.cc — the neighbour table of the output path; see neighbour.h.
// Kernel counterparts: net/core/neighbour.c (__neigh_event_send, neigh_update, neigh_invalidate),
// net/ipv4/arp.c (arp_constructor, arp_mc_map), net/ipv4/ip_output.c (ip_finish_output2).
#include "stack/neigh/neighbour.h"

#include <linux/if_ether.h>

#include <cerrno>
#include <cstring>

#include "stack/wire/eth.h"

namespace xmit {
namespace {

constexpr uint64_t kNsPerMs = 1000000;

bool ipv4_is_multicast(be32 addr) { return (be32_to_cpu(addr) & 0xf0000000u) == 0xe0000000u; }
bool ipv4_is_lbcast(be32 addr) { return addr == 0xffffffffu; }

uint32_t round_up_pow2(uint32_t v) {
  uint32_t p = 8;
  while (p < v && p < (1u << 20)) p <<= 1;
  return p;
}

// A packet: one skb, or a UDP GSO packet's segments linked through next (see neigh_output()).
uint32_t packet_truesize(const sk_buff* skb) {
  uint32_t t = 0;
  for (; skb != nullptr; skb = skb->next) t += neigh_skb_truesize(skb);
  return t;
}

// The queue holds packets, each an entry as the kernel's GSO skb is one: entries are linked
// through prev (oldest first), a packet's segments through next.
sk_buff* queue_pop(Neighbour* n) {
  sk_buff* skb = n->arp_queue;
  if (skb == nullptr) return nullptr;
  n->arp_queue = skb->prev;
  if (n->arp_queue == nullptr) n->arp_queue_tail = nullptr;
  skb->prev = nullptr;
  n->arp_queue_len_bytes -= packet_truesize(skb);
  --n->arp_queue_len;
  return skb;
}

void queue_push(Neighbour* n, sk_buff* skb) {
  skb->prev = nullptr;
  if (n->arp_queue_tail != nullptr) n->arp_queue_tail->prev = skb;
  else n->arp_queue = skb;
  n->arp_queue_tail = skb;
  n->arp_queue_len_bytes += packet_truesize(skb);
  ++n->arp_queue_len;
}

}  // namespace

uint32_t neigh_skb_truesize(const sk_buff* skb) noexcept {
  return static_cast<uint32_t>(skb->end - skb->head) + skb->data_len + static_cast<uint32_t>(sizeof(sk_buff));
}

// kernel: ip_eth_mc_map(), include/net/ip.h
MacAddr ip_eth_mc_map(be32 addr) noexcept {
  uint32_t a = be32_to_cpu(addr);
  return MacAddr{0x01, 0x00, 0x5e, static_cast<uint8_t>((a >> 16) & 0x7f), static_cast<uint8_t>(a >> 8),
                 static_cast<uint8_t>(a)};
}

NeighTable::NeighTable(Fib* fib, NeighOps* ops, uint32_t capacity)
    : fib_(fib), ops_(ops), mask_(round_up_pow2(capacity) - 1), slots_(new Neighbour[mask_ + 1]),
      max_used_((mask_ + 1) / 4 * 3) {}

NeighTable::~NeighTable() {
  for (uint32_t i = 0; i <= mask_; ++i) {
    while (sk_buff* skb = queue_pop(&slots_[i])) kfree_skb_list(skb);
  }
}

Neighbour* NeighTable::slot_for(int ifindex, be32 ip) const noexcept {
  uint32_t h = (static_cast<uint32_t>(ifindex) * 0x9e3779b1u) ^ (ip * 0x85ebca6bu);
  h ^= h >> 15;
  for (uint32_t i = h & mask_;; i = (i + 1) & mask_) {  // never full: nr_used_ <= 3/4 of the slots
    Neighbour* n = &slots_[i];
    if (n->ifindex == 0 || (n->ifindex == ifindex && n->primary_key == ip)) return n;
  }
}

const Neighbour* NeighTable::find(int ifindex, be32 ip) const noexcept {
  const Neighbour* n = slot_for(ifindex, ip);
  return n->ifindex == 0 ? nullptr : n;
}

// kernel: __neigh_create() -> arp_constructor(), net/ipv4/arp.c
int NeighTable::neigh_lookup_or_create(int ifindex, be32 nexthop, uint8_t type, uint64_t now,
                                       Neighbour** out) noexcept {
  ++stats_.lookups;
  if (ifindex <= 0) return -ENODEV;
  Neighbour* n = slot_for(ifindex, nexthop);
  if (n->ifindex != 0) {
    ++stats_.hits;
    *out = n;
    return 0;
  }
  if (ops_->dev_addr(ifindex) == nullptr) return -ENODEV;
  if (nr_used_ >= max_used_) {
    ++stats_.table_fulls;
    return -ENOBUFS;
  }
  NeighParms parms;
  if (int err = fib_->neigh_parms(ifindex, &parms); err != 0) return err;

  *n = Neighbour{};
  n->ifindex = ifindex;
  n->primary_key = nexthop;
  n->parms = parms;
  n->updated = now;
  // arp_constructor(): multicast and broadcast next hops need no resolution (NUD_NOARP).
  if (type == RTN_MULTICAST || ipv4_is_multicast(nexthop)) {
    n->type = RTN_MULTICAST;
    n->nud_state = NUD_NOARP;
    n->ha = ip_eth_mc_map(nexthop);  // kernel: arp_mc_map()
  } else if (type == RTN_BROADCAST || ipv4_is_lbcast(nexthop)) {
    n->type = RTN_BROADCAST;
    n->nud_state = NUD_NOARP;
    n->ha = MacAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};  // kernel: dev->broadcast
  } else {
    n->type = RTN_UNICAST;
    NeighInfo info;
    if (fib_->neigh_lookup(ifindex, nexthop, &info) == 0) apply_kernel_state(n, info, now);
  }
  ++nr_used_;
  ++stats_.allocs;
  *out = n;
  return 0;
}

// kernel: neigh_output(), include/net/neighbour.h; neigh_resolve_output(), net/core/neighbour.c
// `skb` may be a UDP GSO packet's segments linked through next (NeighOutput): one packet, as the
// kernel's GSO skb, which goes to the device whole, or waits for the address whole.
int NeighTable::neigh_output(Neighbour* n, sk_buff* skb, uint64_t now, bool hh_written) noexcept {
  n->used = true;
  if ((n->nud_state & NUD_CONNECTED_MASK) && n->hh.hh_len != 0) {
    return hh_written ? neigh_hh_xmit(n, skb) : neigh_hh_output(n, skb);
  }
  // kernel: neigh_resolve_output()
  if (!(n->nud_state & NUD_CONNECTED_MASK) && neigh_event_send(n, skb, now) != 0) {
    return 0;  // queued, or dropped and counted; the kernel's neigh_resolve_output() returns 0 too
  }
  if (n->hh.hh_len == 0) neigh_hh_init(n);
  return neigh_hh_output(n, skb);
}

// Returns 0 when the skb may be sent now with n->ha, 1 when it was queued or dropped.
// kernel: __neigh_event_send(), net/core/neighbour.c
int NeighTable::neigh_event_send(Neighbour* n, sk_buff* skb, uint64_t now) noexcept {
  if (n->nud_state & (NUD_CONNECTED_MASK | NUD_DELAY | NUD_PROBE)) return 0;
  bool solicit = false;
  if (!(n->nud_state & (NUD_STALE | NUD_INCOMPLETE))) {
    if (n->parms.mcast_probes + n->parms.app_probes == 0) {
      // Nothing may be sent to resolve the address: fail at once.
      n->nud_state = NUD_FAILED;
      n->updated = now;
      kfree_skb_list(skb);
      ++stats_.failed_drops;
      return 1;
    }
    n->nud_state = NUD_INCOMPLETE;
    n->updated = now;
    n->timer_rearms = 0;
    arm_timer(n, now);
    solicit = true;
  } else if (n->nud_state & NUD_STALE) {
    // Send with the stale MAC and have the kernel re-confirm it (its entry goes STALE -> DELAY).
    n->nud_state = NUD_DELAY;
    n->updated = now;
    (void)fib_->neigh_resolve(n->ifindex, n->primary_key);
    return 0;
  }

  // NUD_INCOMPLETE: hold the packet. The queue is bounded in bytes; the oldest go first.
  const uint32_t truesize = packet_truesize(skb);
  while (n->arp_queue_len_bytes + truesize > n->parms.unres_qlen_bytes) {
    sk_buff* old = queue_pop(n);
    if (old == nullptr) break;
    kfree_skb_list(old);
    ++stats_.unres_discards;  // kernel: SKB_DROP_REASON_NEIGH_QUEUEFULL
  }
  queue_push(n, skb);

  // kernel: neigh_probe() -> arp_solicit(); here the kernel's own entry sends the ARP requests.
  if (solicit && fib_->neigh_resolve(n->ifindex, n->primary_key) != 0) {
    n->nud_state = NUD_FAILED;
    neigh_invalidate(n);
  }
  return 1;
}

namespace {

// The link header written in front of skb->data becomes the packet's.
void hh_finish(const HhCache& hh, sk_buff* skb) {
  skb_push(skb, hh.hh_len);
  skb_reset_mac_header(skb);
  skb->protocol = cpu_to_be16(ETH_P_IP);
}

// Puts the prebuilt link header in front of one packet. The 16-byte copy reaches two bytes into
// the headroom before the header, so it needs 16 bytes of private headroom; otherwise (kernel:
// ip_finish_output2() makes room with skb_expand_head(); a shared head must not be written either,
// see sk_buff.h) the skb gets a private head with room for the header itself.
// kernel: neigh_hh_output(), include/net/neighbour.h
int hh_push(const HhCache& hh, sk_buff* skb) {
  if (skb_headroom(skb) >= HhCache::kDataMod && !skb_cloned(skb)) {
    std::memcpy(skb->data - HhCache::kDataMod, hh.hh_data, HhCache::kDataMod);
  } else {
    if (int err = skb_cow_head(skb, hh.hh_len); err != 0) return err;
    std::memcpy(skb->data - hh.hh_len, hh.hh_data + HhCache::kDataMod - hh.hh_len, hh.hh_len);
  }
  hh_finish(hh, skb);
  return 0;
}

}  // namespace

// neigh_hh_output() for one packet whose header neigh_hh_write() copied in this same hold of the
// lock (so it is still n->hh's): only the push is left.
int NeighTable::neigh_hh_xmit(Neighbour* n, sk_buff* skb) noexcept {
  hh_finish(n->hh, skb);
  return ops_->queue_xmit(n->ifindex, skb);
}

// Pushes the link header (on each segment of a list: see neigh_output()) and hands the frame, or
// the list whole, to the device; a segment that cannot take the header drops the list, as does an
// entry without a header (its device is not ours).
// kernel: neigh_hh_output() -> dev_queue_xmit(), include/net/neighbour.h
int NeighTable::neigh_hh_output(Neighbour* n, sk_buff* skb) noexcept {
  int err = n->hh.hh_len == 0 ? -ENODEV : 0;
  for (sk_buff* s = skb; s != nullptr && err == 0; s = s->next) err = hh_push(n->hh, s);
  if (err != 0) {
    kfree_skb_list(skb);
    return err;
  }
  return ops_->queue_xmit(n->ifindex, skb);
}

// Builds the entry's link header from its MAC and the device's. Left unbuilt (hh_len 0) for a
// device that is not ours. kernel: neigh_hh_init() -> eth_header_cache(), net/ethernet/eth.c
void NeighTable::neigh_hh_init(Neighbour* n) noexcept {
  const uint8_t* src = ops_->dev_addr(n->ifindex);
  if (src == nullptr) return;
  auto eth = EthHdr::at(absl::Span<uint8_t>(n->hh.hh_data + HhCache::kDataMod - ETH_HLEN, ETH_HLEN));
  MacAddr source;
  std::memcpy(source.data(), src, kEthAlen);
  EthRepr{.h_dest = n->ha, .h_source = source, .h_proto = ETH_P_IP}.emit(*eth);
  n->hh.hh_len = ETH_HLEN;
}

// The MAC changed: a built header follows it. kernel: neigh_update_hhs() -> eth_header_cache_update()
void NeighTable::neigh_update_hhs(Neighbour* n) noexcept {
  if (n->hh.hh_len != 0) std::memcpy(n->hh.hh_data + HhCache::kDataMod - ETH_HLEN, n->ha.data(), kEthAlen);
}

// kernel: ip_finish_output2() -> ip_neigh_for_gw() -> neigh_output(), net/ipv4/ip_output.c
int NeighTable::output(const Rtable& rt, be32 daddr, sk_buff* skb, uint64_t now) noexcept {
  if (rt.type == RTN_LOCAL) {  // delivered by the loopback device, not by this one
    kfree_skb_list(skb);
    return -EINVAL;
  }
  be32 nexthop = rt_nexthop(rt, daddr);
  uint8_t type = rt.gateway != 0 ? static_cast<uint8_t>(RTN_UNICAST) : rt.type;
  Neighbour* n = nullptr;
  if (int err = neigh_lookup_or_create(rt.oif, nexthop, type, now, &n); err != 0) {
    kfree_skb_list(skb);  // kernel: SKB_DROP_REASON_NEIGH_CREATEFAIL, returns PTR_ERR(neigh)
    return err;
  }
  return neigh_output(n, skb, now);
}

// Mirrors the kernel's entry into ours. kernel: neigh_update(), net/core/neighbour.c
void NeighTable::apply_kernel_state(Neighbour* n, const NeighInfo& info, uint64_t now) noexcept {
  if (n->type != RTN_UNICAST) return;  // NUD_NOARP mappings are computed, not resolved
  uint16_t old = n->nud_state;
  uint16_t state = info.nud_state;
  if (state & NUD_VALID_MASK) {
    if (info.has_ha) {
      if (info.ha != n->ha) {
        n->ha = info.ha;
        neigh_update_hhs(n);
      }
    } else if (!(old & NUD_VALID_MASK) && !(state & NUD_NOARP)) {
      return;  // no address to send to yet
    }
    n->nud_state = state;
    n->updated = now;
    n->timer = 0;
    n->timer_rearms = 0;
    flush_queue(n);  // kernel: "Again: avoid dead loop if something went wrong" — sends arp_queue
  } else if (state & NUD_FAILED) {
    n->nud_state = NUD_FAILED;
    n->updated = now;
    if (!(old & NUD_FAILED)) neigh_invalidate(n);
  } else if (state & NUD_INCOMPLETE) {
    n->nud_state = NUD_INCOMPLETE;
    if (n->timer == 0) arm_timer(n, now);
  } else {
    n->nud_state = NUD_NONE;
  }
}

// Resolution failed: drop what waited. kernel: neigh_invalidate() (the kernel also reports each
// skb with arp_error_report(), i.e. ICMP host unreachable to the local sender)
void NeighTable::neigh_invalidate(Neighbour* n) noexcept {
  ++stats_.res_failed;
  n->timer = 0;
  while (sk_buff* skb = queue_pop(n)) {
    kfree_skb_list(skb);  // kernel: SKB_DROP_REASON_NEIGH_FAILED
    ++stats_.failed_drops;
  }
}

// Sends the held packets in arrival order while the entry stays valid. kernel: neigh_update()
void NeighTable::flush_queue(Neighbour* n) noexcept {
  while (n->nud_state & NUD_VALID_MASK) {
    sk_buff* skb = queue_pop(n);
    if (skb == nullptr) break;
    if (n->hh.hh_len == 0) neigh_hh_init(n);
    (void)neigh_hh_output(n, skb);
  }
}

// The kernel gives up after mcast_probes + app_probes solicitations retrans_time apart; one more
// retrans_time lets its NUD_FAILED notification arrive first.
void NeighTable::arm_timer(Neighbour* n, uint64_t now) noexcept {
  uint64_t probes = uint64_t{n->parms.mcast_probes} + n->parms.app_probes + 1;
  uint64_t retrans = n->parms.retrans_time_ms == 0 ? 1 : n->parms.retrans_time_ms;
  n->timer = now + probes * retrans * kNsPerMs;
  if (n->timer == 0) n->timer = 1;
  if (timer_next_ == 0 || n->timer < timer_next_) timer_next_ = n->timer;
}

void NeighTable::neigh_update(const NeighEvent& ev, uint64_t now) noexcept {
  if (ev.kind == NeighEvent::kResync) {
    resync(now);
    return;
  }
  Neighbour* n = slot_for(ev.ifindex, ev.ip);
  if (n->ifindex == 0 || n->type != RTN_UNICAST) return;  // not a next hop of ours
  if (ev.kind == NeighEvent::kUpdate) {
    apply_kernel_state(n, ev.info, now);
    return;
  }
  // kDelete: an older entry may have been deleted after a newer one was asked for; the kernel's
  // table now is what counts.
  NeighInfo info;
  int err = fib_->neigh_lookup(n->ifindex, n->primary_key, &info);
  if (err == 0) {
    apply_kernel_state(n, info, now);
  } else if (err == -ENOENT) {
    n->nud_state = NUD_NONE;
    n->timer = 0;
    while (sk_buff* skb = queue_pop(n)) {  // kernel: neigh_destroy() purges arp_queue
      kfree_skb(skb);
      ++stats_.failed_drops;
    }
  }
}

void NeighTable::resync(uint64_t now) noexcept {
  for (uint32_t i = 0; i <= mask_; ++i) {
    Neighbour* n = &slots_[i];
    if (n->ifindex == 0 || n->type != RTN_UNICAST) continue;
    NeighInfo info;
    if (fib_->neigh_lookup(n->ifindex, n->primary_key, &info) == 0) apply_kernel_state(n, info, now);
    else if (n->nud_state != NUD_INCOMPLETE) n->nud_state = NUD_NONE;  // a waiting entry keeps its timer
  }
}

// kernel: neigh_timer_handler(), net/core/neighbour.c (the NUD_INCOMPLETE branch)
void NeighTable::neigh_timer_handler(uint64_t now) noexcept {
  if (timer_next_ == 0 || timer_next_ > now) return;
  ++stats_.timer_walks;
  uint64_t next = 0;  // the earliest timer left armed after this walk
  for (uint32_t i = 0; i <= mask_; ++i) {
    Neighbour* n = &slots_[i];
    if (n->ifindex == 0 || n->timer == 0) continue;
    if (n->timer > now) {
      if (next == 0 || n->timer < next) next = n->timer;
      continue;
    }
    run_timer(n, now);
    if (n->timer != 0 && (next == 0 || n->timer < next)) next = n->timer;
  }
  timer_next_ = next;  // run_timer() touches only its own entry, counted just above
}

// One expired backstop timer. kernel: neigh_timer_handler(), the NUD_INCOMPLETE branch
void NeighTable::run_timer(Neighbour* n, uint64_t now) noexcept {
  NeighInfo info;
  int err = fib_->neigh_lookup(n->ifindex, n->primary_key, &info);
  if (err == 0 && (info.nud_state & (NUD_VALID_MASK | NUD_FAILED))) {
    apply_kernel_state(n, info, now);
    if (n->nud_state != NUD_INCOMPLETE) return;
    // "valid" without an address to send to: give up on it like a failure
  } else if (err == 0 && (info.nud_state & NUD_INCOMPLETE) && n->timer_rearms < kMaxTimerRearms) {
    ++n->timer_rearms;
    n->timer = now + uint64_t{n->parms.retrans_time_ms == 0 ? 1 : n->parms.retrans_time_ms} * kNsPerMs;
    return;
  }
  n->nud_state = NUD_FAILED;
  n->updated = now;
  neigh_invalidate(n);
}

uint64_t NeighTable::next_deadline() const noexcept {
  uint64_t next = 0;
  for (uint32_t i = 0; i <= mask_; ++i) {
    const Neighbour& n = slots_[i];
    if (n.ifindex != 0 && n.timer != 0 && (next == 0 || n.timer < next)) next = n.timer;
  }
  return next;
}

}  // namespace xmit
