// stack/ipv4/udp_send.h — the UDP header and checksum of a datagram the IPv4 output path built, and
// its hand-off to ip_send_skb(). Kernel counterparts: udp_send_skb(), udp4_hwcsum(),
// udp_push_pending_frames() (net/ipv4/udp.c), udp_csum() (include/net/udp.h).
#pragma once

#include "stack/ipv4/inet_sock.h"
#include "stack/ipv4/ip_output.h"
#include "stack/skb/sk_buff.h"

namespace xmit {

// Sum of the UDP header and every skb's payload sum (skb->csum) in the train.
// kernel: udp_csum(), include/net/udp.h
wsum udp_csum(sk_buff* skb);

// CHECKSUM_PARTIAL for a single skb (pseudo-header seeded, csum_start/csum_offset set); for a train
// (corked data that outgrew one packet) the whole sum in software. kernel: udp4_hwcsum()
void udp4_hwcsum(sk_buff* skb, be32 src, be32 dst);

// Writes the UDP header (source port: the socket's inet_sport at send time, as the kernel does,
// so corked data pushed after a disconnect that released an autobound port goes out with port 0;
// destination port from fl4; length, checksum: none with SO_NO_CHECK, the device's
// with CHECKSUM_PARTIAL, else in software over every fragment; a computed 0 is sent as 0xffff)
// and sends the train. -ENOBUFS from below counts as SndbufErrors and returns 0 unless IP_RECVERR.
// With cork.gso_size (UDP_SEGMENT), first the kernel's GSO checks: 28 + min(payload, gso_size)
// over cork.fragsize → -EMSGSIZE; more than UDP_MAX_SEGMENTS segments → -EINVAL; SO_NO_CHECK →
// -EINVAL. A payload longer than gso_size is then marked GSO (gso_size, gso_segs) and leaves as
// separate datagrams (udp_gso_segment() on the way to the device); a shorter one is an ordinary
// datagram. Takes the train. kernel: udp_send_skb() (UDP-Lite is not handled)
int udp_send_skb(const IpOutCtx& ctx, InetSock* inet, UdpMib* mib, sk_buff* skb, const Flowi4& fl4,
                 const InetCork& cork);

// udp_send_skb() after its header and GSO checks: the checksum (none with SO_NO_CHECK, the device's
// for a GSO packet or CHECKSUM_PARTIAL, else in software), ip_send_skb() and the counters. `len`:
// the UDP length. The per-socket template (stack/ipv4/udp_tmpl.h) enters here.
int udp_send_skb_csum(const IpOutCtx& ctx, InetSock* inet, UdpMib* mib, sk_buff* skb, be32 saddr, be32 daddr,
                      uint32_t len, bool gso);

// The same for a datagram built without GSO (an empty cork).
int udp_send_skb(const IpOutCtx& ctx, InetSock* inet, UdpMib* mib, sk_buff* skb, const Flowi4& fl4);

// Builds and sends the corked datagram. kernel: udp_push_pending_frames()
int udp_push_pending_frames(const IpOutCtx& ctx, InetSock* inet, UdpMib* mib);

}  // namespace xmit
