// stack/ipv4/tcp_offload.h — software GSO for TCP: one GSO skb becomes its MSS segments, as the
// kernel cuts it for a device without TSO. Kernel counterparts: skb_gso_segment() (net/core/gso.c),
// inet_gso_segment() (net/ipv4/af_inet.c), tcp_gso_segment() (net/ipv4/tcp_offload.c),
// skb_segment() (net/core/skbuff.c).
#pragma once

#include "stack/dev/netdev.h"
#include "stack/skb/sk_buff.h"

namespace xmit {

// Cuts `skb` — an Ethernet/IPv4/TCP frame from skb->data, headers in the linear part, gso_size
// set, its TCP checksum CHECKSUM_PARTIAL over the pseudo-header (__tcp_v4_send_check()) — into
// ceil(payload / gso_size) segment skbs linked through next, first at *segs. Each segment is a
// new skb of skb->owner with a private copy of the headers and fragments that share skb's memory
// (a reference each, no payload copy; the zerocopy completion, if any, is carried too). Per segment,
// as inet_gso_segment() and tcp_gso_segment() (stack/dev/sw_offload: tso_segment_headers()): IP
// tot_len, id incremented per segment, header checksum; TCP seq; FIN and PSH only on the last, CWR
// only on the first; the TCP checksum left CHECKSUM_PARTIAL over the segment's pseudo-header when
// the device finishes it (features.l4_csum), else computed (gso_make_checksum()). The last segment
// takes skb's socket charge (sk, destructor, truesize), so the socket is uncharged when the device
// completes it, not when skb is freed; skb is otherwise not changed and the caller frees it. Returns the number of segments, or -errno with nothing built:
// -EINVAL (not IPv4/TCP GSO with linear headers), -ENOBUFS (the skb pool or its heads ran out),
// -EMSGSIZE (a segment would need more than MAX_SKB_FRAGS fragments).
int skb_gso_segment(sk_buff* skb, const NetdevFeatures& features, sk_buff** segs) noexcept;

}  // namespace xmit
