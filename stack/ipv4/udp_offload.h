// stack/ipv4/udp_offload.h — software UDP GSO: one UDP_SEGMENT datagram becomes gso_segs separate
// UDP datagrams, each with its own IPv4 header (tot_len, id, checksum) and UDP header (len, checksum).
// Kernel counterparts: __udp_gso_segment(), net/ipv4/udp_offload.c; inet_gso_segment(), net/ipv4/af_inet.c.
#pragma once

#include <cstdint>

#include "stack/skb/sk_buff.h"

namespace xmit {

// kernel: UDP_MAX_SEGMENTS, include/linux/udp.h (1 << 7 since Linux 6.11; 128 verified on 6.18)
inline constexpr uint32_t UDP_MAX_SEGMENTS = 128;

// Cuts the GSO train ip_make_skb() built (skb_is_gso(skb); one skb per segment, see
// ip_append_data_core(); skb->data the IPv4 header with tot_len and id already set) into
// standalone datagrams linked through ->next, in place: no copy, no allocation. Segment i gets:
//  IPv4: the head's header, tot_len of its own, id = head id + i (even with DF, even when the head's
//        id is 0), the header checksum (0 when `tx_ip_csum`: the device fills it);
//  UDP:  the head's ports, its own len; checksum: with `tx_l4_csum` CHECKSUM_PARTIAL over the
//        pseudo-header of its own length (csum_start/csum_offset set, as the kernel hands segments
//        to a device with NETIF_F_HW_CSUM), else the full sum in software, 0 sent as 0xffff.
// Every segment but the last carries gso_size payload bytes. Each gets the head's IpCb with its
// own datagram_len, and no gso_size. Returns the number of segments, or -EINVAL when the train does
// not have that geometry (then nothing is changed).
// kernel: validate_xmit_skb() → skb_gso_segment() → inet_gso_segment() → udp4_ufo_fragment() →
// __udp_gso_segment(), for a device without NETIF_F_GSO_UDP_L4 (none of ours has it).
int udp_gso_segment(sk_buff* skb, bool tx_ip_csum, bool tx_l4_csum);

}  // namespace xmit
