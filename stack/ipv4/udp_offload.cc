// stack/ipv4/udp_offload.cc — software UDP GSO (see udp_offload.h). Kernel counterparts:
// __udp_gso_segment(), net/ipv4/udp_offload.c; inet_gso_segment(), net/ipv4/af_inet.c.
#include "stack/ipv4/udp_offload.h"

#include <netinet/in.h>  // IPPROTO_UDP

#include <cerrno>
#include <cstring>

#include "stack/ipv4/ip_output.h"
#include "stack/wire/ipv4.h"
#include "stack/wire/udp.h"

namespace xmit {

namespace {

constexpr uint32_t kIpHlen = 20;  // IP options are not supported on this path
constexpr uint32_t kHdrLen = kIpHlen + UdpHdr::kHdrLen;

}  // namespace

int udp_gso_segment(sk_buff* skb, bool tx_ip_csum, bool tx_l4_csum) {
  const uint32_t mss = skb_shinfo(skb)->gso_size;
  if (mss == 0 || skb_headlen(skb) < kHdrLen) return -EINVAL;
  // The geometry: the head holds both headers and mss payload bytes, every later piece mss bytes
  // (the last 1..mss) and room in front for both headers.
  if (skb->next == nullptr || skb->len != kHdrLen + mss) return -EINVAL;
  for (sk_buff* seg = skb->next; seg != nullptr; seg = seg->next) {
    if (seg->len == 0 || seg->len > mss || (seg->next != nullptr && seg->len != mss) ||
        skb_headroom(seg) < kHdrLen)
      return -EINVAL;
  }

  uint8_t hdr[kHdrLen];
  std::memcpy(hdr, skb->data, kHdrLen);
  const IpHdr iph0 = *IpHdr::at(absl::MakeSpan(hdr, kIpHlen));
  const uint16_t id = iph0.id();
  const be32 saddr = iph0.saddr();
  const be32 daddr = iph0.daddr();
  const IpCb cb = *ipcb(skb);

  int n = 0;
  for (sk_buff* seg = skb; seg != nullptr; seg = seg->next, ++n) {
    if (seg != skb) {
      // kernel: skb_segment() copies the headers in front of each segment's payload.
      skb_push(seg, kHdrLen);
      std::memcpy(seg->data, hdr, kHdrLen);
      skb_reset_network_header(seg);
      *ipcb(seg) = cb;
      seg->protocol = skb->protocol;
    }
    skb_shinfo(seg)->gso_size = skb_shinfo(seg)->gso_segs = 0;
    seg->transport_header = static_cast<uint16_t>(seg->network_header + kIpHlen);
    ipcb(seg)->datagram_len = seg->len;

    // kernel: inet_gso_segment(): "iph->id = htons(id++)" (no SKB_GSO_TCP_FIXEDID for UDP),
    // tot_len, ip_send_check().
    IpHdr iph = *IpHdr::at(absl::MakeSpan(skb_network_header(seg), kIpHlen));
    iph.set_tot_len(static_cast<uint16_t>(seg->len));
    iph.set_id(static_cast<uint16_t>(id + n));
    if (tx_ip_csum) {
      iph.set_check(0);
    } else {
      ip_send_check(iph);
    }

    // kernel: __udp_gso_segment(): uh->len and a checksum adjusted to it; the kernel adjusts the
    // pseudo-header sum incrementally, which gives the same 16 bits as computing it afresh.
    const uint32_t ulen = seg->len - kIpHlen;
    UdpHdr uh = *UdpHdr::at(absl::MakeSpan(skb_transport_header(seg), UdpHdr::kHdrLen));
    uh.set_len(static_cast<uint16_t>(ulen));
    uh.set_check(0);
    if (tx_l4_csum) {
      seg->ip_summed = CHECKSUM_PARTIAL;
      seg->csum_start = seg->transport_header;
      seg->csum_offset = 6;  // offsetof(struct udphdr, check)
      uh.set_check(static_cast<sum16>(~csum_tcpudp_magic(saddr, daddr, ulen, IPPROTO_UDP, 0)));
    } else {
      // kernel: gso_make_checksum() ?: CSUM_MANGLED_0
      seg->ip_summed = CHECKSUM_NONE;
      wsum csum = skb_checksum(seg, kIpHlen, ulen, 0);
      uh.set_check(udp_csum_mangle0(csum_tcpudp_magic(saddr, daddr, ulen, IPPROTO_UDP, csum)));
    }
  }
  return n;
}

}  // namespace xmit
