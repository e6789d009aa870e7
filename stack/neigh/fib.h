// stack/neigh/fib.h — the narrow interface to the kernel's routing and neighbour tables that the
// output path needs. Kernel counterparts: ip_route_output_key() (net/ipv4/route.c), struct rtable,
// struct flowi4, neigh_lookup()/neigh_event_send() (net/core/neighbour.c), neigh_parms.
#pragma once

// Error convention: 0 or -errno. route_output() fails exactly as the kernel's route lookup seen
// from connect()/sendto() does; see route_output() below.
// Threading: a Fib is used by the thread that owns the stack instance.

#include <linux/neighbour.h>  // NUD_*
#include <linux/rtnetlink.h>  // RTN_*

#include <cstdint>

#include "stack/base/byteorder.h"
#include "stack/wire/wire.h"

namespace xmit {

// What a route lookup is keyed by. Addresses in network order. kernel: struct flowi4
struct Flowi4 {
  be32 daddr = 0;
  be32 saddr = 0;     // 0: the kernel selects the source (inet_select_addr() / fib_result_prefsrc())
  int oif = 0;        // kernel: flowi4_oif (SO_BINDTODEVICE, IP_PKTINFO ifindex)
  uint8_t tos = 0;    // kernel: flowi4_tos (IP_TOS without the ECN bits)
  uint32_t mark = 0;  // kernel: flowi4_mark (SO_MARK)
  uint8_t proto = 0;  // kernel: flowi4_proto (IPPROTO_UDP, IPPROTO_TCP); 0 = any
  be16 fl4_sport = 0;  // kernel: uli.ports: the datagram's ports (the IP output path's, not the lookup's)
  be16 fl4_dport = 0;
  bool operator==(const Flowi4&) const = default;
};

// The result of a successful output route lookup. kernel: struct rtable
struct Rtable {
  uint8_t type = RTN_UNSPEC;  // kernel: rt_type (RTN_UNICAST, RTN_LOCAL, RTN_BROADCAST, RTN_MULTICAST)
  int oif = 0;                // output device. kernel: dst.dev->ifindex
  be32 gateway = 0;           // next hop when not on-link; 0 = on-link. kernel: rt_gw4 (rt_gw_family AF_INET)
  be32 prefsrc = 0;           // the selected source address. kernel: fl4->saddr after the lookup (RTA_PREFSRC)
  uint32_t mtu = 0;           // route MTU (RTAX_MTU or a learnt PMTU); 0 = the device MTU. kernel: dst_metric_raw(RTAX_MTU)
  uint32_t flags = 0;         // RTCF_LOCAL, RTCF_BROADCAST, RTCF_MULTICAST... kernel: rt_flags
  bool operator==(const Rtable&) const = default;
};

// The address the neighbour layer resolves: the gateway, or the destination itself on-link.
// kernel: rt_nexthop(), include/net/route.h
inline be32 rt_nexthop(const Rtable& rt, be32 daddr) { return rt.gateway != 0 ? rt.gateway : daddr; }

// One kernel neighbour entry as RTM_GETNEIGH reports it.
struct NeighInfo {
  MacAddr ha{};            // kernel: neigh->ha
  uint16_t nud_state = 0;  // NUD_INCOMPLETE, NUD_REACHABLE, NUD_STALE, ... kernel: neigh->nud_state
  bool has_ha = false;     // NDA_LLADDR was present
  bool operator==(const NeighInfo&) const = default;
};

// kernel: NUD_VALID, NUD_CONNECTED, include/net/neighbour.h
inline constexpr uint16_t NUD_VALID_MASK =
    NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY;
inline constexpr uint16_t NUD_CONNECTED_MASK = NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE;

// The neighbour parameters of one device, from /proc/sys/net/ipv4/neigh/<dev>/.
// kernel: struct neigh_parms, NEIGH_VAR(); defaults are arp_tbl's (net/ipv4/arp.c).
struct NeighParms {
  uint32_t unres_qlen_bytes = 212992;  // QUEUE_LEN_BYTES (SK_WMEM_MAX)
  uint32_t mcast_probes = 3;           // MCAST_PROBES (sysctl mcast_solicit)
  uint32_t app_probes = 0;             // APP_PROBES (sysctl app_solicit)
  uint32_t ucast_probes = 3;           // UCAST_PROBES (sysctl ucast_solicit)
  uint32_t retrans_time_ms = 1000;     // RETRANS_TIME (sysctl retrans_time_ms)
  bool operator==(const NeighParms&) const = default;
};

// A change in the kernel's neighbour table (RTM_NEWNEIGH / RTM_DELNEIGH), or kResync when
// notifications were lost (the notification socket overflowed) and every entry must be re-read.
struct NeighEvent {
  enum Kind : uint8_t { kUpdate, kDelete, kResync };
  Kind kind = kUpdate;
  int ifindex = 0;
  be32 ip = 0;
  NeighInfo info;
  bool operator==(const NeighEvent&) const = default;
};

class Fib {
 public:
  virtual ~Fib() = default;

  // An output route for `fl4`, as connect()/sendto() get it. 0 or -errno:
  //   -ENETUNREACH  no route (kernel: ip_route_output_key_hash_rcu() when fib_lookup() fails)
  //   -EHOSTUNREACH an RTN_UNREACHABLE route, -EACCES RTN_PROHIBIT, -EINVAL RTN_BLACKHOLE
  //                 (kernel: fib_props[].error, net/ipv4/fib_semantics.c)
  //   -ENETUNREACH  also: a source address that is not local (kernel: __ip_dev_find() fails; no
  //                 FLOWI_FLAG_ANYSRC here, i.e. no IP_FREEBIND/IP_TRANSPARENT sources)
  //   -EINVAL       a multicast, broadcast or zero-network source; -ENODEV an unknown oif
  // kernel: ip_route_output_key(), net/ipv4/route.c
  virtual int route_output(const Flowi4& fl4, Rtable* rt) = 0;

  // The kernel's neighbour entry for `ip` on `ifindex`: 0, -ENOENT when there is none, -errno.
  virtual int neigh_lookup(int ifindex, be32 ip, NeighInfo* out) = 0;

  // Makes the kernel resolve `ip` on `ifindex` (send ARP, or re-confirm a stale entry), creating
  // the entry if needed. 0 or -errno. kernel: neigh_add() with NTF_USE -> neigh_event_send()
  virtual int neigh_resolve(int ifindex, be32 ip) = 0;

  // The device's neighbour parameters. 0 or -errno (-ENODEV).
  virtual int neigh_parms(int ifindex, NeighParms* out) = 0;

  // Changes whenever routes, addresses, links or neighbours change (as far as the implementation
  // has seen: NetlinkFib advances it in poll_changes()). kernel: rt_genid_ipv4(), fnhe_genid
  virtual uint64_t generation() const = 0;
};

}  // namespace xmit
