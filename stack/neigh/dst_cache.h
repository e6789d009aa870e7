// stack/neigh/dst_cache.h — the route a socket cached, valid while the FIB generation it was taken
// at is current. Kernel counterparts: sk->sk_dst_cache, __sk_dst_check(), sk_dst_set(),
// sk_dst_reset() (include/net/sock.h, net/core/sock.c), rt_is_expired() (net/ipv4/route.c).
#pragma once

#include <cstdint>

#include "stack/neigh/fib.h"

namespace xmit {

// A value type: one per socket, no allocation. Threading: the socket's.
struct DstCache {
  Rtable rt;
  Flowi4 fl4;               // the flow the route was looked up for (connect() keeps it)
  uint64_t generation = 0;  // fib.generation() when the route was taken
  bool valid = false;
  // Counts set(): while it and `valid` are unchanged, the cache holds the same flow and route
  // (never reset: the per-socket send template keys on it, stack/ipv4/udp_tmpl.h).
  uint64_t seq = 0;

  // kernel: sk_dst_set()
  void set(const Flowi4& flow, const Rtable& route, uint64_t gen) {
    fl4 = flow;
    rt = route;
    generation = gen;
    valid = true;
    ++seq;
  }
  // kernel: sk_dst_reset()
  void reset() { valid = false; }

  // The cached route while still valid, else nullptr (and the cache is dropped so the next user
  // looks the route up again). kernel: __sk_dst_check() -> ipv4_dst_check() -> rt_is_expired()
  const Rtable* dst_check(const Fib& fib) {
    if (valid && generation != fib.generation()) valid = false;
    return valid ? &rt : nullptr;
  }

  // Returns the cached route, or looks it up and caches it. 0 or the lookup's -errno (a failed
  // lookup leaves the cache empty). kernel: ip_route_connect() / the sk_dst_check() + ip_route_output_ports() pair in ip_queue_xmit()
  int lookup(Fib& fib, const Flowi4& flow, const Rtable** out) {
    if (const Rtable* r = dst_check(fib); r != nullptr && fl4 == flow) {
      *out = r;
      return 0;
    }
    uint64_t gen = fib.generation();  // taken before the lookup: a change during it invalidates
    Rtable route;
    int err = fib.route_output(flow, &route);
    if (err != 0) {
      reset();
      return err;
    }
    set(flow, route, gen);
    *out = &rt;
    return 0;
  }
};

}  // namespace xmit
