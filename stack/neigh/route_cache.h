// stack/neigh/route_cache.h — output routes a Fib looked up, kept per flow key while the FIB
// generation they were taken at is current and for at most kTtlNs. The kernel's lookup is in
// memory and its result cached on the next hop (fib_nh_common::nhc_pcpu_rth_output, checked
// with rt_is_expired()); NetlinkFib's costs a netlink round trip, which a server paid twice per
// accepted connection (the SYN-ACK's lookup and the child's). Kernel counterparts:
// rt_cache_route(), rt_cache_valid(), rt_is_expired() (net/ipv4/route.c).
#pragma once

// Only successful lookups are kept (a failing one asks the kernel again each time). The TTL
// bounds what no notification reports (a rule change, a learnt PMTU exception), as the
// per-socket DstCache is bounded by the generation alone. A value type, no allocation after
// construction. Threading: the Fib's (one thread at a time).

#include <array>
#include <cstdint>

#include "stack/neigh/fib.h"

namespace xmit {

class RouteCache {
 public:
  static constexpr uint64_t kTtlNs = 100'000'000;  // 100 ms
  static constexpr uint32_t kSlots = 64;           // direct-mapped by the key's hash

  // The route cached for `fl4` (its lookup fields: the ports are not part of it) taken at
  // `generation` no longer than kTtlNs before `now_ns`: true and *rt set; else false.
  bool lookup(const Flowi4& fl4, uint64_t generation, uint64_t now_ns, Rtable* rt) {
    const Entry& e = slots_[slot(fl4)];
    if (!e.valid || !same_key(e.key, fl4) || e.generation != generation || now_ns - e.at_ns >= kTtlNs) {
      ++misses;
      return false;
    }
    ++hits;
    *rt = e.rt;
    return true;
  }
  // Keeps `rt` for `fl4`, replacing whatever shared its slot.
  void insert(const Flowi4& fl4, const Rtable& rt, uint64_t generation, uint64_t now_ns) {
    Entry& e = slots_[slot(fl4)];
    e = Entry{.key = fl4, .rt = rt, .generation = generation, .at_ns = now_ns, .valid = true};
    e.key.fl4_sport = e.key.fl4_dport = 0;
  }
  void clear() {
    for (Entry& e : slots_) e.valid = false;
  }

  uint64_t hits = 0;
  uint64_t misses = 0;

 private:
  struct Entry {
    Flowi4 key;
    Rtable rt;
    uint64_t generation = 0;
    uint64_t at_ns = 0;
    bool valid = false;
  };
  static bool same_key(const Flowi4& a, const Flowi4& b) {
    return a.daddr == b.daddr && a.saddr == b.saddr && a.oif == b.oif && a.tos == b.tos && a.mark == b.mark &&
           a.proto == b.proto;
  }
  static uint32_t slot(const Flowi4& f) {
    uint64_t h = (uint64_t{f.daddr} << 32 | f.saddr) * 0x9e3779b97f4a7c15ull;
    h ^= (uint64_t{static_cast<uint32_t>(f.oif)} << 24 | uint64_t{f.tos} << 16 | f.proto) * 0xc2b2ae3d27d4eb4full;
    h ^= uint64_t{f.mark} * 0x165667b19e3779f9ull;
    return static_cast<uint32_t>(h >> 58) % kSlots;
  }
  std::array<Entry, kSlots> slots_{};
};

}  // namespace xmit
