// stack/ipv4/ip_ident.h — choosing the IPv4 header's id field. Kernel counterparts:
// ip_select_ident_segs(), include/net/ip.h; __ip_select_ident() + ip_idents_reserve(), net/ipv4/route.c.
#pragma once

#include <array>
#include <cstdint>

#include "stack/base/byteorder.h"
#include "stack/ipv4/inet_sock.h"
#include "stack/wire/ipv4.h"

namespace xmit {

// The per-destination generator of the unconnected/not-DF case. Injectable: the kernel's result
// depends on a secret siphash key and get_random_u32_below(), which no one outside can match, so
// tests install a deterministic generator and production uses HashIpIdents.
class IpIdentGen {
 public:
  virtual ~IpIdentGen() = default;
  // Reserves `segs` consecutive ids for the (daddr, saddr, protocol) bucket and returns the first.
  // kernel: __ip_select_ident(), net/ipv4/route.c
  virtual uint16_t select_ident(be32 daddr, be32 saddr, uint8_t protocol, int segs, uint64_t now_ns) = 0;
};

// The kernel's structure with a different keyed hash: 2048 buckets (the table's minimum size),
// each a counter and the "jiffy" (ms) it was last used in; a bucket idle for d jiffies first jumps
// by a random amount below d, so an observer cannot count another flow's packets.
// kernel: ip_idents_reserve(), net/ipv4/route.c (siphash_3u32 → a keyed 64-bit mix here).
class HashIpIdents final : public IpIdentGen {
 public:
  explicit HashIpIdents(uint64_t seed);
  uint16_t select_ident(be32 daddr, be32 saddr, uint8_t protocol, int segs, uint64_t now_ns) override;

 private:
  static constexpr uint32_t kBuckets = 2048;
  uint32_t random_below(uint32_t bound);
  uint64_t key_;
  uint64_t rng_;
  std::array<uint32_t, kBuckets> idents_{};
  std::array<uint32_t, kBuckets> tstamps_{};
};

// Sets iph's id (iph must already carry frag_off and addresses). The rules, in the kernel's order:
//  1. a connected socket (inet_daddr != 0): its own counter, advanced by segs; the id is the new
//     value for UDP (atomic_add_return()), the old one for TCP. Whatever DF says (verified on
//     Linux 6.18).
//  2. DF set and the skb may not be fragmented locally (!ignore_df: IP_PMTUDISC_DO/PROBE): 0.
//  3. otherwise the per-destination generator.
// kernel: ip_select_ident_segs(), include/net/ip.h
void ip_select_ident_segs(IpIdentGen* gen, uint64_t now_ns, IpHdr iph, bool ignore_df, InetSock* inet,
                          int segs);

}  // namespace xmit
