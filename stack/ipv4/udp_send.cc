// stack/ipv4/udp_send.cc — the UDP header and checksum on transmit. Kernel counterparts:
// udp_send_skb(), udp4_hwcsum(), udp_push_pending_frames(), net/ipv4/udp.c; udp_csum(), include/net/udp.h.
#include "stack/ipv4/udp_send.h"

#include <cerrno>

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
  if (skb->next == nullptr) {
    // Only one packet: the device sums from the UDP header, seeded with the pseudo-header.
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

int udp_send_skb(const IpOutCtx& ctx, InetSock* inet, UdpMib* mib, sk_buff* skb, const Flowi4& fl4) {
  uint32_t offset = static_cast<uint32_t>(skb_transport_offset(skb));
  uint32_t len = ipcb(skb)->datagram_len - offset;
  UdpHdr uh = udp_hdr(skb);
  uh.set_source(be16_to_cpu(inet->inet_sport));  // the socket's port now, not the flow's (see .h)
  uh.set_dest(be16_to_cpu(fl4.fl4_dport));
  uh.set_len(static_cast<uint16_t>(len));
  uh.set_check(0);

  if (inet->sk_no_check_tx) {  // UDP checksum off (SO_NO_CHECK)
    skb->ip_summed = CHECKSUM_NONE;
  } else if (skb->ip_summed == CHECKSUM_PARTIAL) {  // the device finishes it
    udp4_hwcsum(skb, fl4.saddr, fl4.daddr);
  } else {
    wsum csum = udp_csum(skb);
    // add the pseudo-header; RFC 768: a computed 0 is sent as all ones
    uh.set_check(udp_csum_mangle0(csum_tcpudp_magic(fl4.saddr, fl4.daddr, len, inet->sk_protocol, csum)));
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

int udp_push_pending_frames(const IpOutCtx& ctx, InetSock* inet, UdpMib* mib) {
  sk_buff* skb = ip_finish_skb(ctx, inet);
  if (skb == nullptr) return 0;
  return udp_send_skb(ctx, inet, mib, skb, inet->cork.fl4);
}

}  // namespace xmit
