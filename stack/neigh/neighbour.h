// stack/neigh/neighbour.h — the IPv4 neighbour table of the output path: next hop -> MAC, with
// packets held while the kernel resolves. Kernel counterparts: struct neighbour, neigh_output(),
// neigh_resolve_output(), __neigh_event_send(), neigh_update(), arp_constructor() (net/core/neighbour.c, net/ipv4/arp.c).
#pragma once

// The kernel's neighbour table is the authority: an entry here mirrors the kernel's entry for the
// same (ifindex, next hop). A missing MAC makes the kernel resolve it (Fib::neigh_resolve()) and
// the kernel's answer arrives as a NeighEvent (from NetlinkFib::poll_changes()) fed to
// neigh_update(). A backstop timer re-reads the kernel's entry should that event be lost.
//
// Ownership: neigh_output() always consumes the skb (transmitted, queued, or freed and counted),
// or the list of a UDP GSO packet's segments (ip_output.h, NeighOutput).
// Allocation: only the constructor allocates (a fixed table of `capacity` entries; a full table
// refuses new next hops with -ENOBUFS as neigh_create() does past gc_thresh3). Entries are never
// removed; one whose kernel entry is deleted goes back to NUD_NONE.
// Time: `now` is monotonic nanoseconds, passed in. Threading: the stack thread's.

#include <cstdint>
#include <cstring>
#include <memory>

#include "stack/neigh/fib.h"
#include "stack/skb/sk_buff.h"

namespace xmit {

// What the neighbour layer needs from the device layer.
class NeighOps {
 public:
  virtual ~NeighOps() = default;
  // The device's MAC (6 bytes), or nullptr for an ifindex this stack does not transmit on.
  // kernel: dev->dev_addr
  virtual const uint8_t* dev_addr(int ifindex) = 0;
  // Hands a complete Ethernet frame to the device, or a packet's frames linked through next (a UDP
  // GSO packet's segments: one packet, taken or refused whole); takes the skbs. kernel: dev_queue_xmit()
  virtual int queue_xmit(int ifindex, sk_buff* skb) = 0;
};

// kernel: struct neigh_statistics (the fields this layer can count)
struct NeighStats {
  uint64_t allocs = 0;          // entries created
  uint64_t lookups = 0;
  uint64_t hits = 0;
  uint64_t res_failed = 0;      // resolutions that ended in NUD_FAILED (kernel: neigh_invalidate())
  uint64_t unres_discards = 0;  // queued packets dropped because the queue was full
  uint64_t failed_drops = 0;    // queued or new skbs dropped because resolution failed
  uint64_t table_fulls = 0;     // next hops refused: no free entry (kernel: neigh_tbl_gc failure)
  uint64_t timer_walks = 0;     // neigh_timer_handler() calls that walked the table (not a kernel field)
};

// The link header prebuilt for one neighbour: the Ethernet header at the end of hh_data (its first
// two bytes pad it to 16), copied in front of each packet in one go. Built on the first packet
// that goes through the resolve path (neigh_hh_init()), rewritten when the MAC changes
// (neigh_update_hhs()); hh_len 0: not built yet. kernel: struct hh_cache, HH_DATA_MOD, eth_header_cache()
struct HhCache {
  static constexpr uint32_t kDataMod = 16;  // kernel: HH_DATA_MOD
  uint16_t hh_len = 0;
  alignas(16) uint8_t hh_data[kDataMod] = {};
};

// kernel: struct neighbour
struct Neighbour {
  int ifindex = 0;                  // kernel: neigh->dev
  be32 primary_key = 0;             // the next hop
  MacAddr ha{};                     // kernel: neigh->ha
  HhCache hh;                       // kernel: neigh->hh
  uint16_t nud_state = NUD_NONE;    // kernel: neigh->nud_state
  uint8_t type = RTN_UNICAST;       // kernel: neigh->type (RTN_MULTICAST / RTN_BROADCAST: NUD_NOARP)
  NeighParms parms;                 // kernel: neigh->parms
  sk_buff* arp_queue = nullptr;     // packets oldest first, linked by skb->prev. kernel: neigh->arp_queue
  sk_buff* arp_queue_tail = nullptr;
  uint32_t arp_queue_len_bytes = 0;  // sum of neigh_skb_truesize() over every skb. kernel: same name
  uint32_t arp_queue_len = 0;
  uint64_t updated = 0;              // kernel: neigh->updated
  uint64_t timer = 0;                // backstop deadline while NUD_INCOMPLETE, 0 = none
  uint32_t timer_rearms = 0;         // backstop re-reads that found the kernel still resolving
  bool used = false;
};

// Copies n's cached link header (as the hh_cache path's hh_push() does, 16 bytes ending at
// skb->data) into an skb's headroom, for a sender that writes its headers in one place and then
// calls neigh_output(..., hh_written = true) for it in the same hold of the stack's lock.
// False (nothing written) when the header is not built or the skb has not the room.
inline bool neigh_hh_write(const Neighbour& n, sk_buff* skb) noexcept {
  if (n.hh.hh_len == 0 || skb_headroom(skb) < HhCache::kDataMod || skb_cloned(skb)) return false;
  std::memcpy(skb->data - HhCache::kDataMod, n.hh.hh_data, HhCache::kDataMod);
  return true;
}

// The bytes a queued skb charges against unres_qlen_bytes: its head buffer, fragment bytes and the
// sk_buff itself. kernel: skb->truesize (SKB_TRUESIZE())
uint32_t neigh_skb_truesize(const sk_buff* skb) noexcept;

// The MAC an IPv4 multicast group maps to: 01:00:5e + the low 23 bits. kernel: ip_eth_mc_map()
MacAddr ip_eth_mc_map(be32 addr) noexcept;

class NeighTable {
 public:
  NeighTable(Fib* fib, NeighOps* ops, uint32_t capacity = 256);
  ~NeighTable();  // frees every queued skb
  NeighTable(const NeighTable&) = delete;
  NeighTable& operator=(const NeighTable&) = delete;

  // The entry for (ifindex, next hop), created on first use: a multicast/broadcast next hop maps
  // without ARP (NUD_NOARP); a unicast one starts from the kernel's entry when it has one.
  // `type` is the next hop's address type (the route's type when on-link, RTN_UNICAST through a
  // gateway). 0, -ENODEV (not our device), -ENOBUFS (table full).
  // kernel: __ipv4_neigh_lookup_noref() + __neigh_create() -> arp_constructor()
  int neigh_lookup_or_create(int ifindex, be32 nexthop, uint8_t type, uint64_t now, Neighbour** out) noexcept;

  // The entry for (ifindex, next hop) when it exists, else nullptr; nothing created or counted.
  // An entry stays at its address for the table's life (entries are never removed), so a caller
  // may hold the pointer and pass it to neigh_output() for later packets to that next hop.
  // kernel: __ipv4_neigh_lookup_noref()
  Neighbour* neigh_lookup(int ifindex, be32 nexthop) noexcept {
    Neighbour* n = slot_for(ifindex, nexthop);
    return n->ifindex == 0 ? nullptr : n;
  }

  // Fills the Ethernet header and transmits when the MAC is known; otherwise queues the skb (at
  // most parms.unres_qlen_bytes, oldest dropped first) and has the kernel resolve the address.
  // `skb->data` is the IPv4 header. Returns the device's result, 0 when queued (or dropped because
  // resolution had failed, as the kernel returns), -errno for an skb that cannot take a header.
  // A connected entry with its header built takes the copy of the prebuilt header (neigh_hh_output());
  // anything else goes through the resolve path first.
  // `hh_written`: neigh_hh_write() put the entry's header in front of this one packet already, so
  // the hh_cache path only pushes it (any other path writes the header itself, over it).
  // kernel: neigh_output() -> neigh_hh_output() | neigh_resolve_output() -> neigh_event_send()
  int neigh_output(Neighbour* n, sk_buff* skb, uint64_t now, bool hh_written = false) noexcept;

  // The neighbour half of ip_finish_output2(): the next hop of `rt` for `daddr`, its entry, and
  // neigh_output(). Consumes the skb. -EINVAL for an RTN_LOCAL route (the loopback device's).
  // kernel: ip_finish_output2() -> ip_neigh_for_gw(), net/ipv4/ip_output.c
  int output(const Rtable& rt, be32 daddr, sk_buff* skb, uint64_t now) noexcept;

  // Applies a change of the kernel's table: a valid state with a MAC flushes the queue in order; a
  // NUD_FAILED state (or the entry's deletion while resolving) drops it. kResync re-reads every
  // entry. kernel: neigh_update(), neigh_invalidate()
  void neigh_update(const NeighEvent& ev, uint64_t now) noexcept;

  // Runs the backstop timers due at `now`: an entry still NUD_INCOMPLETE past the kernel's own
  // resolution time (mcast_probes + app_probes retransmissions) re-reads the kernel's entry.
  // O(1) when nothing is due (the common case: it runs on every stack poll); a walk of the table
  // only when the earliest deadline has passed. kernel: neigh_timer_handler() (there one timer per
  // entry; here one earliest deadline for the table, as a timer wheel's next expiry)
  void neigh_timer_handler(uint64_t now) noexcept;
  // The earliest backstop deadline, or 0 when no entry waits.
  uint64_t next_deadline() const noexcept;

  // The entry for (ifindex, ip) or nullptr; for tests and diagnostics.
  const Neighbour* find(int ifindex, be32 ip) const noexcept;
  const NeighStats& stats() const { return stats_; }

  // How many times the backstop re-reads a still-resolving kernel entry before giving up on it.
  static constexpr uint32_t kMaxTimerRearms = 3;

 private:
  Neighbour* slot_for(int ifindex, be32 ip) const noexcept;  // the entry or the empty slot it would take
  int neigh_event_send(Neighbour* n, sk_buff* skb, uint64_t now) noexcept;
  int neigh_hh_output(Neighbour* n, sk_buff* skb) noexcept;
  int neigh_hh_xmit(Neighbour* n, sk_buff* skb) noexcept;
  void neigh_hh_init(Neighbour* n) noexcept;
  void neigh_update_hhs(Neighbour* n) noexcept;
  void apply_kernel_state(Neighbour* n, const NeighInfo& info, uint64_t now) noexcept;
  void neigh_invalidate(Neighbour* n) noexcept;
  void flush_queue(Neighbour* n) noexcept;
  void arm_timer(Neighbour* n, uint64_t now) noexcept;
  void run_timer(Neighbour* n, uint64_t now) noexcept;
  void resync(uint64_t now) noexcept;

  Fib* fib_;
  NeighOps* ops_;
  uint32_t mask_;                        // capacity - 1 (a power of two)
  std::unique_ptr<Neighbour[]> slots_;   // open addressing, linear probing; ifindex 0 = empty
  uint32_t nr_used_ = 0;
  uint32_t max_used_;                    // 3/4 of the slots, so probing stays short
  // No entry's timer is earlier than this (0: none armed). Armed timers lower it; a cancelled one
  // leaves it early, which costs one walk that finds nothing and recomputes it.
  uint64_t timer_next_ = 0;
  NeighStats stats_;
};

}  // namespace xmit
