// stack/ipv4/ip_send.cc — sending a finished train: ip_send_skb() → ip_local_out() → ip_output() →
// ip_finish_output() → ip_fragment()/ip_do_fragment() → ip_finish_output2() → neigh_output().
// Kernel counterpart: net/ipv4/ip_output.c (Linux 6.x); netfilter, xfrm, lwtunnel have no counterpart.
#include <linux/if_ether.h>  // ETH_P_IP
#include <netinet/in.h>     // IPPROTO_TCP

#include <cerrno>
#include <cstring>

#include "stack/ipv4/ip_output.h"
#include "stack/ipv4/skb_queue.h"
#include "stack/ipv4/udp_offload.h"
#include "stack/wire/ipv4.h"

namespace xmit {

namespace {

constexpr uint32_t kHlen = 20;

IpHdr ip_hdr(sk_buff* skb) {
  return *IpHdr::at(absl::MakeSpan(skb_network_header(skb), kHlen));
}

// The header checksum in software, or 0 for a device that fills it (NETIF_F_IP_CSUM here; the
// kernel always sums in software). kernel: ip_send_check()
void ip_send_check_dev(IpHdr iph, const IpCb& cb) {
  if (cb.tx_ip_csum) {
    iph.set_check(0);
  } else {
    ip_send_check(iph);
  }
}

// Finishes a CHECKSUM_PARTIAL sum in software before the packet is cut.
// kernel: skb_checksum_help(), net/core/dev.c
void skb_checksum_help(sk_buff* skb) {
  uint32_t offset = static_cast<uint32_t>(skb_checksum_start_offset(skb));
  wsum csum = skb_checksum(skb, offset, skb->len - offset, 0);
  sum16 check = csum_fold(csum);
  if (check == 0) check = CSUM_MANGLED_0;  // only UDP gets here
  store_raw16(skb->data + offset + skb->csum_offset, check);
  skb->ip_summed = CHECKSUM_NONE;
}

// Hands one packet to the neighbour layer. kernel: ip_finish_output2()
int ip_finish_output2(const IpOutCtx& ctx, sk_buff* skb) {
  const IpCb& cb = *ipcb(skb);
  IpTxInfo info{.oif = cb.oif,
                .nexthop = cb.nexthop,
                .priority = cb.priority,
                .mark = cb.mark,
                .tx_ip_csum = cb.tx_ip_csum};
  ++ctx.mib->OutTransmits;  // kernel: IPSTATS_MIB_OUTPKTS — once for a GSO packet too
  // A TCP GSO packet goes down whole: a device with TSO cuts it (kTxTso), for one without, the
  // stack's queue_xmit() does (validate_xmit_skb() → skb_gso_segment(), stack/ipv4/tcp_offload).
  if (!skb_is_gso(skb) || ip_hdr(skb).protocol() == IPPROTO_TCP) {
    skb->next = nullptr;
    if (cb.neigh != nullptr) return ctx.neigh->neigh_output_held(cb.neigh, skb, cb.hh_written);
    return ctx.neigh->neigh_output(skb, info);
  }
  // A UDP GSO packet: the kernel segments it in validate_xmit_skb(), under dev_queue_xmit(), for a
  // device without NETIF_F_GSO_UDP_L4. Ours is cut here, before the neighbour layer (whose queue
  // holds single skbs); what reaches the wire is the same. The segments go down together, linked
  // through next, so that the device's queue takes them as the one packet the kernel's qdisc takes:
  // all of them or none (kernel: __dev_xmit_skb() enqueues the GSO skb; sch_direct_xmit() requeues
  // the segments the driver refused, dev_requeue_skb(), net/sched/sch_generic.c).
  int n = udp_gso_segment(skb, cb.tx_ip_csum, cb.tx_l4_csum);
  if (n < 0) {
    kfree_skb_list(skb);
    return n;
  }
  return ctx.neigh->neigh_output(skb, info);
}

// kernel: ip_finish_output_gso() — the common case: every segment fits the MTU.
int ip_finish_output_gso(const IpOutCtx& ctx, sk_buff* skb) {
  // kernel: skb_gso_validate_network_len(skb, mtu): the network and transport headers (UDP's 8
  // bytes, TCP's doff) and one segment's payload.
  uint32_t l4_hlen = 8;
  if (ip_hdr(skb).protocol() == IPPROTO_TCP) l4_hlen = (skb_transport_header(skb)[12] >> 4) * 4u;
  if (kHlen + l4_hlen + skb_shinfo(skb)->gso_size <= ipcb(skb)->mtu) return ip_finish_output2(ctx, skb);
  // kernel: the slow path segments in software and fragments each segment. Not reached here:
  // udp_send_skb() checked the segment size against the cork's MTU, which is this one.
  ++ctx.mib->FragFails;
  kfree_skb_list(skb);
  return -EMSGSIZE;
}

// Sends each skb of the train as one fragment: the head with MF, each next one with a copy of the
// header, its offset and MF unless last; the id stays the datagram's. DF is never kept on a
// fragment (frag_off is overwritten). kernel: ip_do_fragment() fast path, ip_fraglist_init(),
// ip_fraglist_prepare(), ip_copy_metadata()
int ip_do_fragment(const IpOutCtx& ctx, sk_buff* skb) {
  if (skb->ip_summed == CHECKSUM_PARTIAL) skb_checksum_help(skb);
  IpCb* cb = ipcb(skb);
  IpHdr iph = ip_hdr(skb);
  const uint32_t mtu = cb->mtu - kHlen;  // data space
  const uint32_t ll_rs = cb->hh_len;

  bool fast = skb->next != nullptr;
  if (fast) {
    uint32_t first_len = skb->len;
    if (first_len - kHlen > mtu || ((first_len - kHlen) & 7) || iph.is_fragment() || skb_cloned(skb) ||
        skb_headroom(skb) < ll_rs)
      fast = false;
    for (sk_buff* frag = skb->next; fast && frag != nullptr; frag = frag->next) {
      // Correct geometry: every fragment fits, all but the last are 8-aligned, room for a header.
      if (frag->len > mtu || ((frag->len & 7) && frag->next != nullptr) ||
          skb_headroom(frag) < kHlen + ll_rs)
        fast = false;
    }
  }
  if (!fast) {
    // kernel: the slow path copies the datagram into new mtu-sized skbs. Trains built by
    // ip_append_data_core() always have the fast geometry unless the MTU shrank between the
    // append and the push; that case (and single oversized skbs) is not implemented.
    ++ctx.mib->FragFails;
    kfree_skb_list(skb);
    return -EMSGSIZE;
  }

  // kernel: ip_fraglist_init()
  sk_buff* frag = skb->next;
  skb->next = nullptr;
  uint32_t offset = 0;
  iph.set_tot_len(static_cast<uint16_t>(skb->len));
  iph.set_frag_off(IP_MF);
  ip_send_check_dev(iph, *cb);
  int err = 0;
  for (;;) {
    // Prepare the next fragment's header before this one goes down (and may be freed).
    if (frag != nullptr) {  // kernel: ip_fraglist_prepare()
      frag->ip_summed = CHECKSUM_NONE;
      skb_reset_transport_header(frag);
      skb_push(frag, kHlen);
      skb_reset_network_header(frag);
      std::memcpy(skb_network_header(frag), iph.bytes().data(), kHlen);
      *ipcb(frag) = *ipcb(skb);  // ip_copy_metadata(): priority, mark, dst
      iph = ip_hdr(frag);
      iph.set_tot_len(static_cast<uint16_t>(frag->len));
      offset += skb->len - kHlen;
      uint16_t frag_off = static_cast<uint16_t>(offset >> 3);
      if (frag->next != nullptr) frag_off |= IP_MF;
      iph.set_frag_off(frag_off);
      ip_send_check_dev(iph, *ipcb(frag));
    }
    sk_buff* next = frag;
    if (next != nullptr) {
      frag = next->next;
      next->next = nullptr;
    }
    err = ip_finish_output2(ctx, skb);
    if (err == 0) ++ctx.mib->FragCreates;
    if (err != 0 || next == nullptr) {
      if (next != nullptr) {
        next->next = frag;
        frag = next;
      }
      break;
    }
    skb = next;
  }
  if (err == 0) {
    ++ctx.mib->FragOKs;
    return 0;
  }
  kfree_skb_list(frag);
  ++ctx.mib->FragFails;
  return err;
}

// kernel: ip_fragment() — DF on a datagram that may not be fragmented locally: EMSGSIZE (the
// kernel also sends itself ICMP_FRAG_NEEDED; not done).
int ip_fragment(const IpOutCtx& ctx, sk_buff* skb) {
  if (!ip_hdr(skb).df() || ipcb(skb)->ignore_df) return ip_do_fragment(ctx, skb);
  ++ctx.mib->FragFails;
  kfree_skb_list(skb);
  return -EMSGSIZE;
}

// kernel: ip_finish_output() → __ip_finish_output()
int ip_finish_output(const IpOutCtx& ctx, sk_buff* skb) {
  if (skb_is_gso(skb)) return ip_finish_output_gso(ctx, skb);
  if (ipcb(skb)->datagram_len > ipcb(skb)->mtu) return ip_fragment(ctx, skb);
  return ip_finish_output2(ctx, skb);
}

// kernel: ip_output()
int ip_output(const IpOutCtx& ctx, sk_buff* skb) {
  ++ctx.mib->OutRequests;  // kernel: IP_UPD_PO_STATS(net, IPSTATS_MIB_OUTREQUESTS, skb->len)
  skb->protocol = cpu_to_be16(ETH_P_IP);
  return ip_finish_output(ctx, skb);
}

// kernel: ip_local_out() → __ip_local_out(): the datagram's length, the header checksum.
int ip_local_out(const IpOutCtx& ctx, sk_buff* skb) {
  IpHdr iph = ip_hdr(skb);
  iph.set_tot_len(static_cast<uint16_t>(ipcb(skb)->datagram_len));
  ip_send_check_dev(iph, *ipcb(skb));
  return ip_output(ctx, skb);
}

}  // namespace

int ip_send_skb(const IpOutCtx& ctx, sk_buff* skb) {
  int err = ip_local_out(ctx, skb);
  if (err != 0) ++ctx.mib->OutDiscards;
  return err;
}

int ip_push_pending_frames(const IpOutCtx& ctx, InetSock* inet) {
  sk_buff* skb = ip_finish_skb(ctx, inet);
  if (skb == nullptr) return 0;
  return ip_send_skb(ctx, skb);
}

}  // namespace xmit
