// stack/ipv4/udp_tmpl.cc — the per-socket send template (udp_tmpl.h): built with the full path's
// rules (ip_setup_cork(), __ip_make_skb(), udp_send_skb(), net/ipv4/ip_output.c and udp.c).
#include "stack/ipv4/udp_tmpl.h"

#include <algorithm>

#include "stack/ipv4/ip_ident.h"
#include "stack/ipv4/udp_send.h"
#include "stack/wire/ipv4.h"
#include "stack/wire/udp.h"

namespace xmit {

namespace {

constexpr uint32_t kIpHdrLen = 20;
constexpr uint32_t kUdpHdrLen = 8;
constexpr uint32_t kSkbMaxAlloc = (4096 << 2) - 320;  // as ip_output.cc: above it the skb goes paged

}  // namespace

void udp_tmpl_build(UdpTmpl* t, uint64_t dst_seq, const InetSock& inet, const Flowi4& fl4, const Ipv4Route& rt,
                    const IpcmCookie& ipc, const Ipv4Sysctl& sysctl, uint32_t room) {
  t->valid = false;
  // Only what ip_append_data_core() sends as one linear packet of the first iteration, with no
  // GSO and nothing carried per packet (timestamps).
  if (rt.dev == nullptr || ipc.gso_size != 0 || ipc.tx_flags != 0 || inet.sk_protocol != IPPROTO_UDP) return;
  // kernel: ip_setup_cork()'s fragsize
  const uint32_t fragsize = ip_sk_use_pmtu(inet) ? std::min(rt.dst_mtu(), IP_MAX_MTU) : rt.dev_mtu();
  if (fragsize < IPV4_MIN_MTU) return;
  // kernel: ip_skb_dst_mtu(), as ip_make_skb_core() sets IpCb::mtu
  const uint32_t mtu = ip_sk_use_pmtu(inet) ? std::min(rt.dst_mtu(), IP_MAX_MTU) : std::min(rt.dev_mtu(), IP_MAX_MTU);
  // Within the cut (fragsize, the skb head, SKB_MAX_ALLOC), unfragmented (mtu), and small enough
  // that __ip_make_skb()'s DF rule does not depend on the length (len <= dst_mtu).
  uint32_t max = std::min({fragsize, mtu, room, rt.dst_mtu(), kSkbMaxAlloc - 1 - 15 - rt.hh_len});
  if (max < kIpHdrLen + kUdpHdrLen) return;
  t->max_fraglen = max;

  t->cb = IpCb{.datagram_len = 0,
               .priority = ipc.priority,
               .mark = ipc.mark,
               .mtu = mtu,
               .oif = rt.oif,
               .nexthop = rt.nexthop,
               .hh_len = rt.hh_len,
               .ignore_df = ip_sk_ignore_df(inet),
               .tx_ip_csum = rt.dev->ip_csum,
               .tx_l4_csum = rt.dev_csum()};
  // kernel: __ip_make_skb(): the header as it writes it (tot_len, id and check come per datagram)
  uint16_t df = 0;
  if (inet.pmtudisc == IP_PMTUDISC_DO || inet.pmtudisc == IP_PMTUDISC_PROBE || ip_dont_fragment(inet, rt)) df = IP_DF;
  const uint8_t ttl = ipc.ttl != 0 ? ipc.ttl : ip_select_ttl(inet, rt, sysctl);
  std::fill(std::begin(t->hdr), std::end(t->hdr), 0);
  IpHdr iph = *IpHdr::at(absl::MakeSpan(t->hdr, kIpHdrLen));
  iph.set_version(4);
  iph.set_ihl(5);
  iph.set_tos(ipc.tos != -1 ? static_cast<uint8_t>(ipc.tos) : inet.tos);
  iph.set_frag_off(df);
  iph.set_ttl(ttl);
  iph.set_protocol(inet.sk_protocol);
  iph.set_saddr(fl4.saddr);
  iph.set_daddr(fl4.daddr);
  // kernel: udp_send_skb(): the socket's source port, the flow's destination port
  UdpHdr uh = *UdpHdr::at(absl::MakeSpan(t->hdr + kIpHdrLen, kUdpHdrLen));
  uh.set_source(be16_to_cpu(inet.inet_sport));
  uh.set_dest(be16_to_cpu(fl4.fl4_dport));
  t->key = UdpTmplKey{.dst_seq = dst_seq, .ipc = ipc, .dev_mtu = rt.dev->mtu, .dev_l4_csum = rt.dev->l4_csum,
                      .dev_ip_csum = rt.dev->ip_csum, .dev_max_segs = rt.dev->max_segs, .uc_ttl = inet.uc_ttl,
                      .tos = inet.tos, .pmtudisc = inet.pmtudisc, .sk_protocol = inet.sk_protocol,
                      .connected = inet.inet_daddr != 0, .inet_sport = inet.inet_sport,
                      .ip_default_ttl = sysctl.ip_default_ttl};
  t->fl4 = fl4;
  t->rt = rt;
  t->valid = true;
}

int udp_tmpl_send(const IpOutCtx& ctx, const UdpTmpl& t, InetSock* inet, UdpMib* mib, IovIter* from, int ulen) {
  sk_buff* skb = nullptr;
  // kernel: ip_make_skb() → ip_setup_cork() (checked when built) → __ip_append_data()
  int err = ip_alloc_linear(ctx, inet, t.rt, from, ulen, kUdpHdrLen, t.hdr, &skb);
  if (err != 0) {
    ++ctx.mib->OutDiscards;
    return err;
  }
  // kernel: __ip_make_skb()
  IpCb* cb = ipcb(skb);
  *cb = t.cb;
  cb->datagram_len = static_cast<uint32_t>(ulen) + kIpHdrLen;
  IpHdr iph = *IpHdr::at(absl::MakeSpan(skb->data, kIpHdrLen));
  iph.set_tot_len(static_cast<uint16_t>(cb->datagram_len));
  ip_select_ident_segs(ctx.idents, ctx.now_ns, iph, cb->ignore_df, inet, 1);
  // kernel: udp_send_skb()
  UdpHdr uh = *UdpHdr::at(absl::MakeSpan(skb->data + kIpHdrLen, kUdpHdrLen));
  uh.set_len(static_cast<uint16_t>(ulen));
  return udp_send_skb_csum(ctx, inet, mib, skb, t.fl4.saddr, t.fl4.daddr, static_cast<uint32_t>(ulen),
                           /*gso=*/false);
}

}  // namespace xmit
