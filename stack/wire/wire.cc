// stack/wire/wire.cc — parse()/emit() of the IPv4, UDP and ICMP echo reprs (slow paths, tests).
// Kernel counterparts: ip_rcv_core(), __udp4_lib_rcv() + udp_send_skb(), icmp_echo()/icmp_reply().
#include <cerrno>

#include "stack/wire/icmp.h"
#include "stack/wire/ipv4.h"
#include "stack/wire/udp.h"

namespace xmit {

int Ipv4Repr::parse(IpHdrView h, Ipv4Repr* out, bool verify_csum) {
  // kernel: ip_rcv_core() — "if (unlikely(ip_fast_csum((u8 *)iph, iph->ihl))) goto csum_error;"
  if (verify_csum && !h.csum_ok()) return -EBADMSG;
  *out = Ipv4Repr{
      .tos = h.tos(),
      .id = h.id(),
      .frag_off = h.frag_off(),
      .ttl = h.ttl(),
      .protocol = h.protocol(),
      .saddr = h.saddr(),
      .daddr = h.daddr(),
      .payload_len = static_cast<uint16_t>(h.payload().size()),
  };
  return 0;
}

void Ipv4Repr::emit(IpHdr h, bool fill_csum) const {
  h.set_version(4);
  h.set_ihl(5);
  h.set_tos(tos);
  h.set_tot_len(static_cast<uint16_t>(header_len() + payload_len));
  h.set_id(id);
  h.set_frag_off(frag_off);
  h.set_ttl(ttl);
  h.set_protocol(protocol);
  h.set_saddr(saddr);
  h.set_daddr(daddr);
  h.set_check(0);
  if (fill_csum) ip_send_check(h);
}

int UdpRepr::parse(UdpHdrView h, be32 saddr, be32 daddr, UdpRepr* out, bool verify_csum) {
  // kernel: __udp4_lib_rcv() → udp4_csum_init(): a zero check means the sender sent none.
  if (verify_csum && h.check() != 0) {
    size_t len = UdpHdrView::kHdrLen + h.payload().size();  // h.len(), clamped to the span
    wsum sum = csum_partial(h.bytes().data(), len, 0);
    if (csum_tcpudp_magic(saddr, daddr, len, IPPROTO_UDP, sum) != 0) return -EBADMSG;
  }
  *out = UdpRepr{.source = h.source(), .dest = h.dest()};
  return 0;
}

int UdpRepr::emit(UdpHdr h, be32 saddr, be32 daddr, CsumTx csum) const {
  size_t len = h.bytes().size();
  if (len > 0xffff) return -EMSGSIZE;
  h.set_source(source);
  h.set_dest(dest);
  h.set_len(static_cast<uint16_t>(len));
  h.set_check(0);
  switch (csum) {
    case CsumTx::kNone:
      break;
    case CsumTx::kFull: {
      // kernel: udp_send_skb(), net/ipv4/udp.c
      wsum sum = csum_partial(h.bytes().data(), len, 0);
      h.set_check(udp_csum_mangle0(csum_tcpudp_magic(saddr, daddr, len, IPPROTO_UDP, sum)));
      break;
    }
    case CsumTx::kPartial:
      // kernel: udp4_hwcsum(), net/ipv4/udp.c — "uh->check = ~csum_tcpudp_magic(..., 0)"
      h.set_check(static_cast<sum16>(~csum_tcpudp_magic(saddr, daddr, len, IPPROTO_UDP, 0)));
      break;
  }
  return 0;
}

int IcmpEchoRepr::parse(IcmpHdrView h, IcmpEchoRepr* out, bool verify_csum) {
  if ((h.type() != ICMP_ECHO && h.type() != ICMP_ECHOREPLY) || h.code() != 0) return -EINVAL;
  // kernel: icmp_rcv() — "if (skb_checksum_simple_validate(skb)) goto csum_error;"
  if (verify_csum && !h.csum_ok()) return -EBADMSG;
  *out = IcmpEchoRepr{.type = h.type(), .id = h.echo_id(), .sequence = h.echo_sequence()};
  return 0;
}

void IcmpEchoRepr::emit(IcmpHdr h) const {
  h.set_type(type);
  h.set_code(0);
  h.set_echo_id(id);
  h.set_echo_sequence(sequence);
  h.set_checksum(0);
  h.set_checksum(ip_compute_csum(h.bytes().data(), h.bytes().size()));
}

}  // namespace xmit
