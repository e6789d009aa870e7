// stack/ipv4/ip_queue_xmit.cc — a connection's segment onto IP: the header pushed in front of the
// transport header, then the same ip_local_out() path datagrams take. Kernel counterpart:
// __ip_queue_xmit(), net/ipv4/ip_output.c (the route comes resolved from the caller's dst cache).
#include <linux/if_ether.h>  // ETH_P_IP

#include <algorithm>

#include "stack/ipv4/ip_ident.h"
#include "stack/ipv4/ip_output.h"
#include "stack/wire/ipv4.h"

namespace xmit {

int ip_queue_xmit(const IpOutCtx& ctx, InetSock* inet, const Ipv4Route& rt, sk_buff* skb) {
  constexpr uint32_t kHlen = 20;  // no IP options on connections served here
  if (skb_headroom(skb) < kHlen + rt.hh_len) {
    kfree_skb(skb);
    ++ctx.mib->OutDiscards;
    return -ENOBUFS;
  }
  const uint16_t segs = skb_shinfo(skb)->gso_segs != 0 ? skb_shinfo(skb)->gso_segs : 1;
  skb_push(skb, kHlen);
  skb_reset_network_header(skb);
  *ipcb(skb) = IpCb{
      .datagram_len = skb->len,
      .priority = inet->sk_priority,
      .mark = inet->sk_mark,
      .mtu = ip_sk_use_pmtu(*inet) ? std::min(rt.dst_mtu(), IP_MAX_MTU) : std::min(rt.dev_mtu(), IP_MAX_MTU),
      .oif = rt.oif,
      .nexthop = rt.nexthop,
      .hh_len = rt.hh_len,
      .ignore_df = false,  // kernel: skb->ignore_df is 0 for TCP
      .tx_ip_csum = rt.dev->ip_csum,
      .tx_l4_csum = rt.dev_csum(),
  };
  IpHdr iph = *IpHdr::at(absl::MakeSpan(skb->data, kHlen));
  iph.set_version(4);
  iph.set_ihl(5);
  iph.set_tos(inet->tos);
  iph.set_tot_len(static_cast<uint16_t>(skb->len));
  iph.set_frag_off(ip_dont_fragment(*inet, rt) ? IP_DF : 0);
  iph.set_ttl(ip_select_ttl(*inet, rt, *ctx.sysctl));
  iph.set_protocol(inet->sk_protocol);
  iph.set_check(0);
  iph.set_saddr(rt.saddr);  // kernel: ip_copy_addrs(iph, fl4)
  iph.set_daddr(rt.daddr);
  ip_select_ident_segs(ctx.idents, ctx.now_ns, iph, false, inet, segs);
  return ip_send_skb(ctx, skb);
}

}  // namespace xmit
