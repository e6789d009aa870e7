// stack/ipv4/udp_tmpl.cc — the per-socket send template (udp_tmpl.h): built with the full path's
// rules (ip_setup_cork(), __ip_make_skb(), udp_send_skb(), net/ipv4/ip_output.c and udp.c).
#include "stack/ipv4/udp_tmpl.h"

#include <algorithm>

#include "stack/ipv4/ip_ident.h"
#include "stack/ipv4/udp_send.h"
#include "stack/neigh/neighbour.h"
#include "stack/wire/ipv4.h"
#include "stack/wire/udp.h"

namespace xmit {

namespace {

constexpr uint32_t kIpHdrLen = 20;
constexpr uint32_t kUdpHdrLen = 8;
constexpr uint32_t kSkbMaxAlloc = (4096 << 2) - 320;  // as ip_output.cc: above it the skb goes paged

}  // namespace

void udp_tmpl_build(UdpTmpl* t, uint64_t dst_seq, const InetSock& inet, const Flowi4& fl4, const Ipv4Route& rt,
                    const IpcmCookie& ipc, const Ipv4Sysctl& sysctl, uint32_t room, NeighOutput* neigh) {
  t->valid = false;
  // Only what ip_append_data_core() sends as one linear packet of the first iteration, with no
  // GSO and nothing carried per packet (timestamps).
  if (rt.dev == nullptr || ipc.gso_size != 0 || ipc.tx_flags != 0 || inet.sk_protocol != IPPROTO_UDP) return;
  // The full path's own rules: ip_setup_cork() (fragsize; a route it refuses is not templated) and
  // __ip_make_skb()'s header and IpCb. DF is taken for a zero length: the same for every datagram
  // up to the route's MTU, which max_fraglen keeps to.
  InetCork cork;
  if (ip_setup_cork(inet, &cork, ipc, rt) != 0) return;
  ip_make_hdr(inet, cork, fl4, sysctl, 0, &t->cb, t->hdr);
  // The next hop's entry, which the full path's send just looked up (or created): held, so that
  // ip_finish_output2() does not look it up again (none: it does).
  t->cb.neigh = neigh->neigh_lookup(IpTxInfo{.oif = t->cb.oif, .nexthop = t->cb.nexthop});
  // One linear packet (within fragsize, the skb head and SKB_MAX_ALLOC) that ip_finish_output()
  // does not fragment (IpCb::mtu).
  uint32_t max = std::min({cork.fragsize, t->cb.mtu, room, rt.dst_mtu(), kSkbMaxAlloc - 1 - 15 - rt.hh_len});
  if (max < kIpHdrLen + kUdpHdrLen) return;
  t->max_fraglen = max;
  std::fill(t->hdr + kIpHdrLen, std::end(t->hdr), 0);
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
  // kernel: neigh_hh_output()'s copy of the next hop's cached Ethernet header, read now from the
  // held entry (its current header, whatever changed since the template was built), while this
  // skb's headroom is at hand; the neighbour layer pushes it if the entry takes the hh_cache path.
  if (cb->neigh != nullptr) cb->hh_written = neigh_hh_write(*cb->neigh, skb);
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
