// stack/ipv4/udp_tmpl.h — the per-socket send template: for one flow (a connected socket's, or an
// unconnected one's repeated destination) the prebuilt IPv4 + UDP headers and the packet metadata
// that ip_make_skb() + udp_send_skb() would compute, so that an uncorked datagram fitting one
// linear packet skips them. Not a kernel structure: the kernel's nearest are sk_dst_cache and the
// neighbour's hh_cache, which it consults on every call through the full path.
#pragma once

#include <cstdint>

#include "stack/ipv4/inet_sock.h"
#include "stack/ipv4/ip_output.h"

namespace xmit {

// Everything the full path reads to build the headers and IpCb of a one-packet datagram. The
// template is used only while a send's inputs equal the ones it was built from, compared field
// by field on every call: a changed socket option (IP_TTL, IP_TOS, IP_MTU_DISCOVER; SO_MARK and
// SO_PRIORITY through ipc), flow or route (dst_seq: the socket's route cache looked up again —
// another destination, port or source, connect/disconnect, a FIB generation change, any
// setsockopt), control message (IpcmCookie) or device (MTU, offloads) makes it rebuild. Read at
// send time, not kept: SO_NO_CHECK, IP_RECVERR, the send buffer, and the neighbour's state and
// cached Ethernet header (every datagram still goes through neigh_output(), which reads them as
// the kernel's does per packet). Kept: the neighbour entry of the route's next hop (IpCb::neigh),
// so no datagram looks it up; it is that next hop's entry for the stack's life (entries are never
// removed or moved), and another next hop is another route, which rebuilds the template.
struct UdpTmplKey {
  uint64_t dst_seq = 0;  // DstCache::seq of the route (and flow) the template was built for
  IpcmCookie ipc;
  uint32_t dev_mtu = 0;
  bool dev_l4_csum = false;
  bool dev_ip_csum = false;
  uint16_t dev_max_segs = 0;
  int16_t uc_ttl = -1;
  uint8_t tos = 0;
  uint8_t pmtudisc = 0;
  uint8_t sk_protocol = 0;
  bool connected = false;  // inet_daddr != 0: the IP id comes from inet_id
  be16 inet_sport = 0;
  uint8_t ip_default_ttl = 0;
  bool operator==(const UdpTmplKey&) const = default;
};

struct UdpTmpl {
  UdpTmplKey key;
  bool valid = false;
  Flowi4 fl4;                // the flow as sent (saddr filled in by the route)
  Ipv4Route rt;
  uint32_t max_fraglen = 0;  // the largest IPv4 datagram (20 + 8 + payload) the template sends
  IpCb cb;                   // datagram_len filled per datagram
  alignas(8) uint8_t hdr[28] = {};  // IPv4 (tot_len, id, check 0) + UDP (len, check 0)

  void reset() { valid = false; }
};

// Whether `t` was built for these inputs. Compared in place (no key is built per call).
inline bool udp_tmpl_match(const UdpTmpl& t, uint64_t dst_seq, const InetSock& inet, const IpcmCookie& ipc,
                           const NetdevFeatures& dev, const Ipv4Sysctl& sysctl) {
  const UdpTmplKey& k = t.key;
  return k.dst_seq == dst_seq && k.ipc == ipc && k.dev_mtu == dev.mtu && k.dev_l4_csum == dev.l4_csum &&
         k.dev_ip_csum == dev.ip_csum && k.dev_max_segs == dev.max_segs && k.uc_ttl == inet.uc_ttl &&
         k.tos == inet.tos && k.pmtudisc == inet.pmtudisc && k.sk_protocol == inet.sk_protocol &&
         k.connected == (inet.inet_daddr != 0) && k.inet_sport == inet.inet_sport &&
         k.ip_default_ttl == sysctl.ip_default_ttl;
}

// Builds `t` for a send of flow `fl4` through `rt` (the route cache's entry number `dst_seq`)
// with control data `ipc`: the bytes and metadata ip_make_skb_core() and udp_send_skb() write for
// a one-packet datagram. `room`: the linear bytes an skb head holds past hh_len. `neigh`: the
// neighbour layer that lends the next hop's entry (NeighOutput::neigh_lookup()).
void udp_tmpl_build(UdpTmpl* t, uint64_t dst_seq, const InetSock& inet, const Flowi4& fl4, const Ipv4Route& rt,
                    const IpcmCookie& ipc, const Ipv4Sysctl& sysctl, uint32_t room, NeighOutput* neigh);

// Whether the template sends this datagram (`ulen`: UDP header + payload) for a send with these
// MSG_* `flags` (the inputs matched: udp_tmpl_match()): no MSG_PROBE/MSG_MORE/MSG_ZEROCOPY, no GSO, and one
// linear packet within the MTU. Otherwise the full path sends it.
inline bool udp_tmpl_fits(const UdpTmpl& t, int ulen, unsigned flags) {
  constexpr unsigned kSlow = kMsgProbe | 0x8000 /*MSG_MORE*/ | 0x4000000 /*MSG_ZEROCOPY*/;
  return t.valid && !(flags & kSlow) && static_cast<uint32_t>(ulen) + 20 <= t.max_fraglen;
}

// Sends one datagram of `ulen` bytes (8 of UDP header, the rest from `from`) with the template:
// the same bytes, charges, counters, IP id and errors as ip_make_skb() + udp_send_skb() for it.
int udp_tmpl_send(const IpOutCtx& ctx, const UdpTmpl& t, InetSock* inet, UdpMib* mib, IovIter* from, int ulen);

}  // namespace xmit
