// stack/ipv4/udp_send.cc — the UDP header and checksum on transmit. Kernel counterparts:
// udp_send_skb(), udp4_hwcsum(), udp_push_pending_frames(), net/ipv4/udp.c; udp_csum(), include/net/udp.h.
#include "stack/ipv4/udp_send.h"

#include <algorithm>
#include <cerrno>

#include "stack/ipv4/udp_offload.h"
#include "stack/wire/udp.h"

namespace xmit {

namespace {

UdpHdr udp_hdr(sk_buff* skb) {
  return *UdpHdr::at(absl::MakeSpan(skb_transport_header(skb), UdpHdr::kHdrLen));
}

}  // namespace

wsum udp_csum(sk_buff* skb) {
  wsum csum = csum_partial(skb_transport_header(skb), UdpHdr::kHdrLen, skb->csum);
  // Every later skb's payload starts at an 8-aligned offset of the datagram: plain csum_add().
  for (sk_buff* frag = skb->next; frag != nullptr; frag = frag->next) csum = csum_add(csum, frag->csum);
  return csum;
}

void udp4_hwcsum(sk_buff* skb, be32 src, be32 dst) {
  UdpHdr uh = udp_hdr(skb);
  uint32_t offset = static_cast<uint32_t>(skb_transport_offset(skb));
  uint32_t len = ipcb(skb)->datagram_len - offset;
  if (skb->next == nullptr || skb_is_gso(skb)) {
    // Only one packet (a GSO train is one for the kernel: its segments get their own sums): the device sums from the UDP header, seeded with the pseudo-header.
    skb->csum_start = skb->transport_header;
    skb->csum_offset = 6;  // offsetof(struct udphdr, check)
    uh.set_check(static_cast<sum16>(~csum_tcpudp_magic(src, dst, len, IPPROTO_UDP, 0)));
    return;
  }
  // Two or more packets: their sums must be put together, so the device cannot do it.
  uint32_t hlen = len;
  wsum csum = 0;
  for (sk_buff* frag = skb->next; frag != nullptr; frag = frag->next) {
    csum = csum_add(csum, frag->csum);
    hlen -= frag->len;
  }
  csum = skb_checksum(skb, offset, hlen, csum);
  skb->ip_summed = CHECKSUM_NONE;
  uh.set_check(udp_csum_mangle0(csum_tcpudp_magic(src, dst, len, IPPROTO_UDP, csum)));
}

int udp_send_skb_csum(const IpOutCtx& ctx, InetSock* inet, UdpMib* mib, sk_buff* skb, be32 saddr, be32 daddr,
                      uint32_t len, bool gso) {
  if (gso) {
    // kernel: goto csum_partial → udp4_hwcsum(): the pseudo-header seed of the whole datagram
    // (csum_start set whatever ip_summed says); udp_gso_segment() rewrites it per segment.
    udp4_hwcsum(skb, saddr, daddr);
  } else if (inet->sk_no_check_tx) {  // UDP checksum off (SO_NO_CHECK)
    skb->ip_summed = CHECKSUM_NONE;
  } else if (skb->ip_summed == CHECKSUM_PARTIAL) {  // the device finishes it
    udp4_hwcsum(skb, saddr, daddr);
  } else {
    wsum csum = udp_csum(skb);
    // add the pseudo-header; RFC 768: a computed 0 is sent as all ones
    udp_hdr(skb).set_check(udp_csum_mangle0(csum_tcpudp_magic(saddr, daddr, len, inet->sk_protocol, csum)));
  }

  int err = ip_send_skb(ctx, skb);
  if (err != 0) {
    if (err == -ENOBUFS && !inet->recverr) {
      ++mib->SndbufErrors;
      err = 0;
    }
  } else {
    ++mib->OutDatagrams;
  }
  return err;
}


int udp_send_skb(const IpOutCtx& ctx, InetSock* inet, UdpMib* mib, sk_buff* skb, const Flowi4& fl4) {
  return udp_send_skb(ctx, inet, mib, skb, fl4, InetCork{});
}

int udp_send_skb(const IpOutCtx& ctx, InetSock* inet, UdpMib* mib, sk_buff* skb, const Flowi4& fl4,
                 const InetCork& cork) {
  uint32_t offset = static_cast<uint32_t>(skb_transport_offset(skb));
  uint32_t len = ipcb(skb)->datagram_len - offset;
  uint32_t datalen = len - UdpHdr::kHdrLen;
  UdpHdr uh = udp_hdr(skb);
  uh.set_source(be16_to_cpu(inet->inet_sport));  // the socket's port now, not the flow's (see .h)
  uh.set_dest(be16_to_cpu(fl4.fl4_dport));
  uh.set_len(static_cast<uint16_t>(len));
  uh.set_check(0);

  bool gso = false;
  if (cork.gso_size != 0) {
    // The checks, in the kernel's order (Linux 6.18; no counter moves):
    //  - a segment (or the whole datagram, if smaller) must fit the cork's MTU: -EMSGSIZE (before
    //    6.14 the test was hlen + gso_size with -EINVAL);
    //  - at most UDP_MAX_SEGMENTS segments: -EINVAL;
    //  - SO_NO_CHECK: -EINVAL (every segment needs a checksum);
    //  - an xfrm route: -EIO (no xfrm here).
    // There is no CHECKSUM_PARTIAL requirement any more (-EIO before 6.11): without checksum
    // offload the segments are summed in software.
    const uint32_t hlen = offset + UdpHdr::kHdrLen;  // skb_network_header_len() + sizeof(udphdr)
    const uint32_t gso_size = cork.gso_size;
    int err = 0;
    if (hlen + std::min(datalen, gso_size) > cork.fragsize) {
      err = -EMSGSIZE;
    } else if (datalen > gso_size * UDP_MAX_SEGMENTS) {
      err = -EINVAL;
    } else if (inet->sk_no_check_tx) {
      err = -EINVAL;
    }
    if (err != 0) {
      kfree_skb_list(skb);
      return err;
    }
    if (datalen > gso_size) {
      skb_shinfo(skb)->gso_size = cork.gso_size;  // kernel: gso_type = SKB_GSO_UDP_L4
      skb_shinfo(skb)->gso_segs = static_cast<uint16_t>((datalen + gso_size - 1) / gso_size);
      gso = true;  // "Don't checksum the payload, skb will get segmented"
    }
  }

  return udp_send_skb_csum(ctx, inet, mib, skb, fl4.saddr, fl4.daddr, len, gso);
}

int udp_push_pending_frames(const IpOutCtx& ctx, InetSock* inet, UdpMib* mib) {
  sk_buff* skb = ip_finish_skb(ctx, inet);
  if (skb == nullptr) return 0;
  return udp_send_skb(ctx, inet, mib, skb, inet->cork.fl4, inet->cork);
}

}  // namespace xmit
