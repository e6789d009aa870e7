// stack/ipv4/ip_ident.cc — IPv4 id selection. Kernel counterparts: ip_select_ident_segs(),
// include/net/ip.h; __ip_select_ident() and ip_idents_reserve(), net/ipv4/route.c.
#include "stack/ipv4/ip_ident.h"

namespace xmit {

namespace {

uint64_t mix64(uint64_t z) {  // splitmix64's finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

HashIpIdents::HashIpIdents(uint64_t seed) : key_(mix64(seed + 1)), rng_(mix64(seed + 2)) {}

uint32_t HashIpIdents::random_below(uint32_t bound) {  // kernel: get_random_u32_below()
  rng_ += 0x9e3779b97f4a7c15ULL;
  return static_cast<uint32_t>((static_cast<uint64_t>(static_cast<uint32_t>(mix64(rng_))) * bound) >> 32);
}

uint16_t HashIpIdents::select_ident(be32 daddr, be32 saddr, uint8_t protocol, int segs, uint64_t now_ns) {
  // kernel: hash = siphash_3u32(daddr, saddr, protocol, &net->ipv4.ip_id_key)
  uint64_t h = mix64(key_ ^ (static_cast<uint64_t>(daddr) << 32 | saddr));
  h = mix64(h ^ protocol);
  uint32_t bucket = static_cast<uint32_t>(h) & (kBuckets - 1);
  // kernel: ip_idents_reserve() — "now" is jiffies; here milliseconds of the time passed in.
  uint32_t now = static_cast<uint32_t>(now_ns / 1000000);
  uint32_t old = tstamps_[bucket];
  uint32_t delta = 0;
  if (old != now) {
    tstamps_[bucket] = now;
    delta = random_below(now - old);
  }
  idents_[bucket] += static_cast<uint32_t>(segs) + delta;
  return static_cast<uint16_t>(idents_[bucket] - static_cast<uint32_t>(segs));
}

void ip_select_ident_segs(IpIdentGen* gen, uint64_t now_ns, IpHdr iph, bool ignore_df, InetSock* inet,
                          int segs) {
  // "We had many attacks based on IPID, use the private generator as much as we can."
  if (inet != nullptr && inet->inet_daddr != 0) {
    // kernel: TCP reads the counter and then advances it (the socket lock is held: no atomic); UDP
    // takes atomic_add_return(segs, &inet_id), the advanced value.
    uint16_t old = inet->inet_id;
    inet->inet_id = static_cast<uint16_t>(inet->inet_id + segs);
    iph.set_id(inet->sk_protocol == IPPROTO_TCP ? old : inet->inet_id);
    return;
  }
  if (iph.df() && !ignore_df) {
    iph.set_id(0);
  } else {
    iph.set_id(gen->select_ident(iph.daddr(), iph.saddr(), iph.protocol(), segs, now_ns));
  }
}

}  // namespace xmit
