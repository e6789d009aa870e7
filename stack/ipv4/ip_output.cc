// stack/ipv4/ip_output.cc — building a datagram's packet train and its IPv4 header: ip_setup_cork(),
// __ip_append_data(), ip_append_data(), __ip_make_skb(), ip_make_skb(). Kernel counterpart:
// net/ipv4/ip_output.c (Linux 6.x). The send half (ip_local_out() onwards) is in ip_send.cc.
#include <sys/socket.h>  // MSG_MORE

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "stack/ipv4/ip_ident.h"
#include "stack/ipv4/ip_output.h"
#include "stack/ipv4/sk_wmem.h"
#include "stack/wire/ipv4.h"

namespace xmit {

namespace {

constexpr int kFragHeaderLen = 20;  // sizeof(struct iphdr); IP options are not supported
constexpr int kGsoHdrLen = 28;      // sizeof(struct iphdr) + sizeof(struct udphdr): a GSO segment's headers
// kernel: SKB_MAX_ALLOC (4 KiB pages, x86_64 skb_shared_info): above it __ip_append_data() goes paged.
constexpr int kSkbMaxAlloc = (4096 << 2) - 320;

// Copies `len` bytes of the caller's data to `to`; unless the device will finish the checksum,
// also folds their sum into skb->csum at parity `odd`. kernel: ip_generic_getfrag()
int ip_generic_getfrag(IovIter* from, uint8_t* to, int len, int odd, sk_buff* skb) {
  if (skb->ip_summed == CHECKSUM_PARTIAL) {
    if (!copy_from_iter_full(to, len, from)) return -EFAULT;
  } else {
    wsum csum = 0;
    if (!copy_from_iter_full_csum(to, len, from, &csum)) return -EFAULT;
    skb->csum = csum_block_add(skb->csum, csum, odd);
  }
  return 0;
}

// A payload buffer with room left, reusing the current one when nothing else references it.
// kernel: skb_page_frag_refill(32, pfrag), net/core/sock.c
bool page_frag_refill(PageFrag* pf, BufPool* pool) {
  if (pf->buf != nullptr) {
    if (pf->pool->refcount(pf->buf) == 1) {
      pf->offset = 0;
      return true;
    }
    if (pf->offset + 32 <= pf->size) return true;
    pf->pool->put(pf->buf);
    pf->buf = nullptr;
  }
  uint8_t* b = pool->alloc();
  if (b == nullptr) return false;
  *pf = PageFrag{.pool = pool, .buf = b, .offset = 0, .size = pool->buf_size()};
  return true;
}

// Cuts the skb down to `len` bytes (dropping whole fragments past it).
// kernel: pskb_trim_unique() → ___pskb_trim(), net/core/skbuff.c
void skb_trim_to(sk_buff* skb, uint32_t len) {
  if (len >= skb->len) return;
  skb_shared_info* sh = skb_shinfo(skb);
  uint32_t headlen = skb_headlen(skb);
  int keep = 0;
  if (len > headlen) {
    uint32_t off = headlen;
    while (keep < sh->nr_frags) {
      uint32_t end = off + sh->frags[keep].len;
      if (end >= len) {
        sh->frags[keep].len = len - off;
        ++keep;
        break;
      }
      off = end;
      ++keep;
    }
  } else {
    skb->tail = skb->data + len;
  }
  for (int i = keep; i < sh->nr_frags; ++i) skb_frag_unref(skb, i);
  sh->nr_frags = static_cast<uint8_t>(keep);
  skb->data_len = len > headlen ? len - headlen : 0;
  skb->len = len;
}

// The checks before a datagram's first packet is allocated. kernel: sock_alloc_send_pskb(): a
// pending socket error first (sock_error(), which consumes it); -EPIPE once shutdown(SHUT_WR) was
// called, even on a UDP socket that is not connected; then "sk_wmem_alloc_get(sk) < sk->sk_sndbuf"
// or -EAGAIN (the caller blocks or returns it). Whatever the packet's size: one may overshoot.
int sock_alloc_send_check(InetSock* inet) {
  if (inet->sk_err != 0) return -std::exchange(inet->sk_err, 0);
  if (inet->sk_shutdown & SEND_SHUTDOWN) return -EPIPE;
  if (sk_wmem_alloc_get(*inet) >= inet->sk_sndbuf) return -EAGAIN;
  return 0;
}

}  // namespace

int ip_alloc_linear(const IpOutCtx& ctx, InetSock* inet, const Ipv4Route& rt, IovIter* from, int length,
                    int transhdrlen, const uint8_t* hdr, sk_buff** out) {
  const int hh_len = rt.hh_len;
  const int fraglen = length + kFragHeaderLen;
  int err = sock_alloc_send_check(inet);
  if (err != 0) return err;
  sk_buff* skb = ctx.skbs->alloc_skb();
  if (skb == nullptr) return kNoTxMem;
  skb_set_owner_w(skb, inet, skb_alloc_truesize(static_cast<uint32_t>(fraglen + hh_len + 15)));
  ipcb(skb)->zcopy = false;
  skb->ip_summed = rt.dev_csum() ? CHECKSUM_PARTIAL : CHECKSUM_NONE;
  skb->csum = 0;
  skb_reserve(skb, hh_len);
  uint8_t* data = skb_put(skb, fraglen);
  skb_reset_network_header(skb);
  skb->transport_header = static_cast<uint16_t>(skb->network_header + kFragHeaderLen);
  if (hdr != nullptr) {
    std::memcpy(data, hdr, kFragHeaderLen + transhdrlen);
  } else {
    std::memset(data, 0, kFragHeaderLen + transhdrlen);
  }
  const int copy = length - transhdrlen;
  if (copy > 0 && ip_generic_getfrag(from, data + kFragHeaderLen + transhdrlen, copy, 0, skb) < 0) {
    kfree_skb(skb);
    return -EFAULT;
  }
  *out = skb;
  return 0;
}

namespace {

// __ip_append_data()'s one iteration for the common datagram: the first packet of an empty queue,
// no GSO, no MSG_MORE or MSG_ZEROCOPY, headers and payload in one linear head within the MTU (so
// the size checks hold and nothing is paged or cut). Every step, charge and error is the general
// loop's for that case, in its order; only the branches that cannot be taken are left out.
// Not a kernel function: the kernel's loop takes the same path through __ip_append_data().
int ip_append_data_one(const IpOutCtx& ctx, InetSock* inet, SkbQueue* queue, InetCork* cork, IovIter* from,
                       int length, int transhdrlen) {
  cork->length += length;
  sk_buff* skb = nullptr;
  int err = ip_alloc_linear(ctx, inet, cork->dst, from, length, transhdrlen, nullptr, &skb);
  if (err == 0) {
    cork->tx_flags = 0;  // only the first packet carries the timestamp request
    skb_queue_tail(queue, skb);
    return 0;
  }
  cork->length -= static_cast<uint32_t>(length);
  ++ctx.mib->OutDiscards;
  return err;
}

}  // namespace

int ip_setup_cork(const InetSock& inet, InetCork* cork, const IpcmCookie& ipc, const Ipv4Route& rt) {
  if (rt.dev == nullptr) return -EINVAL;  // kernel: -EFAULT for a missing route
  cork->flags = 0;
  cork->addr = ipc.addr;
  // kernel: dst_mtu() is clamped to IP_MAX_MTU (ip_dst_mtu_maybe_forward()); dev->mtu is not.
  cork->fragsize = ip_sk_use_pmtu(inet) ? std::min(rt.dst_mtu(), IP_MAX_MTU) : rt.dev_mtu();
  if (cork->fragsize < IPV4_MIN_MTU) return -ENETUNREACH;  // kernel: inetdev_valid_mtu()
  cork->gso_size = ipc.gso_size;
  cork->dst = rt;
  cork->has_dst = true;
  cork->length = 0;
  cork->ttl = ipc.ttl;
  cork->tos = ipc.tos;
  cork->mark = ipc.mark;
  cork->priority = ipc.priority;
  cork->tx_flags = ipc.tx_flags;
  cork->zc_uarg = false;
  return 0;
}

int ip_append_data_core(const IpOutCtx& ctx, InetSock* inet, SkbQueue* queue, InetCork* cork,
                        PageFrag* pfrag, IovIter* from, int length, int transhdrlen, unsigned flags) {
  const Ipv4Route& rt = cork->dst;
  sk_buff* skb = skb_peek_tail(*queue);
  // UDP GSO: the datagram is one packet of up to 64 KiB for the kernel (mtu = IP_MAX_MTU) that the
  // device path cuts into gso_size segments.
  const bool gso = cork->gso_size != 0;
  const int mtu = static_cast<int>(gso ? IP_MAX_MTU : cork->fragsize);
  const int hh_len = rt.hh_len;
  const int fragheaderlen = kFragHeaderLen;
  // Every fragment but the last carries a multiple of 8 payload bytes (RFC 791 fragment offset).
  const int maxfraglen = ((mtu - fragheaderlen) & ~7) + fragheaderlen;
  // Where this train is cut. Without GSO: at the IP fragments. With GSO (our layout, not the
  // kernel's single skb of page frags, which our 2 KiB buffers and 17 fragments could not hold):
  // one skb per future segment, each kGsoHdrLen + gso_size long; the first holds the real IPv4 +
  // UDP header, the others room for their copy, written by udp_gso_segment(). Memory layout only:
  // limits and errors stay the kernel's (mtu above).
  const int cut = gso ? kGsoHdrLen + cork->gso_size : mtu;
  const int cutfraglen = gso ? cut : maxfraglen;
  const int64_t maxnonfragsize = ip_sk_ignore_df(*inet) ? IP_MAX_MTU : mtu;
  const bool sg = rt.dev_sg();
  const int room = static_cast<int>(ctx.skbs->heads()->buf_size()) - hh_len;  // linear bytes a head holds

  // The common datagram: one linear packet (ip_append_data_one()).
  if (skb == nullptr && transhdrlen && !gso && !(flags & (MSG_MORE | MSG_ZEROCOPY)) && cork->length == 0 &&
      length + fragheaderlen <= std::min(mtu, room) && length + fragheaderlen + hh_len + 15 < kSkbMaxAlloc)
    return ip_append_data_one(ctx, inet, queue, cork, from, length, transhdrlen);

  // kernel: "ip_local_error(sk, EMSGSIZE, ...)" also queues the error for IP_RECVERR: not done.
  if (static_cast<int64_t>(cork->length) + length > maxnonfragsize - fragheaderlen) return -EMSGSIZE;

  // transhdrlen > 0: the first skb of a datagram that will not be fragmented; the device may
  // finish its checksum, unless more data may follow (MSG_MORE).
  uint8_t csummode = CHECKSUM_NONE;
  if (transhdrlen && length + fragheaderlen <= mtu && rt.dev_csum() &&
      (!(flags & MSG_MORE) || cork->gso_size))
    csummode = CHECKSUM_PARTIAL;

  // kernel: "(flags & MSG_ZEROCOPY) && length" with SOCK_ZEROCOPY: msg_zerocopy_realloc()
  // extends the object the datagram's tail skb holds, else takes a new one (-ENOBUFS when the
  // option memory is full). The socket charges and notifies it when the send succeeded.
  if ((flags & MSG_ZEROCOPY) && length && ctx.sock_zerocopy && !cork->zc_uarg && !ctx.zc_may_alloc)
    return -ENOBUFS;
  // ... and its pages are charged to RLIMIT_MEMLOCK, for a new object and an extension alike
  // (once per call: a send that waits for room and tries again is charged once).
  if ((flags & MSG_ZEROCOPY) && length && ctx.sock_zerocopy && ctx.zc_mmp != nullptr && ctx.zc_mmp->num_pg == 0 &&
      mm_account_pinned_pages(ctx.zc_mmp, static_cast<size_t>(length)) != 0)
    return -ENOBUFS;
  // With a device that has SG and finishes the checksum the kernel then goes zerocopy: the packet
  // is paged and its payload the caller's pinned pages, charged page by page. xmit still copies
  // (the notification says so) but charges what the kernel charges.
  const bool kernel_zc = (flags & MSG_ZEROCOPY) && length && ctx.sock_zerocopy && sg && csummode == CHECKSUM_PARTIAL;
  // kernel: skb_zcopy_set(): the call's object is set on the tail it appends to and on every packet
  // it allocates.
  const bool call_zc = (flags & MSG_ZEROCOPY) && length && ctx.sock_zerocopy;
  if (call_zc && skb != nullptr) ipcb(skb)->zcopy = true;
  // kernel: "if (rt->dst.dev->features & NETIF_F_SG && csummode == CHECKSUM_PARTIAL) { paged =
  // true; zc = true; } else uarg->zerocopy = 0": the payload is the caller's memory, referenced
  // (kUser fragments) where the device reads it in place, else copied and notified COPIED.
  const bool zc = kernel_zc && ctx.zc_ubuf != nullptr;
  if (call_zc && ctx.zc_ubuf != nullptr && !zc) ctx.zc_ubuf->zerocopy_success = false;

  cork->length += length;
  int err = 0;
  int copy = 0;
  bool alloc_new = skb == nullptr;
  // Appends to a packet of an earlier call go into page fragments in the kernel (SG, or no
  // tailroom): they add to its truesize.
  sk_buff* const entry_tail = skb;
  for (;;) {
    if (!alloc_new) {
      if (length <= 0) break;
      // Does the rest fit into the current packet? If not, fill it to the 8-byte boundary.
      copy = cut - static_cast<int>(skb->len);
      if (copy < length) copy = cutfraglen - static_cast<int>(skb->len);
      alloc_new = copy <= 0;
    }
    if (alloc_new) {
      alloc_new = false;
      sk_buff* skb_prev = skb;
      // Bytes past maxfraglen in the previous packet move to this one (it was filled to the MTU
      // while the datagram still fitted in one packet).
      int fraggap = skb_prev != nullptr ? static_cast<int>(skb_prev->len) - cutfraglen : 0;
      // A later GSO segment reserves room for its IPv4 and UDP headers.
      const int fh = (gso && !transhdrlen) ? kGsoHdrLen : fragheaderlen;
      // If the rest exceeds the MTU, this packet is a full (8-aligned) fragment.
      int datalen = length + fraggap;
      if (datalen > cut - fh) datalen = cutfraglen - fh;
      int fraglen = datalen + fh;
      int pagedlen = 0;
      // Linear unless the kernel would go paged (SG and over SKB_MAX_ALLOC) or it does not fit our
      // head buffer; paged keeps the headers (and the moved gap) linear, the payload in fragments.
      // The split only changes memory layout, never what goes on the wire.
      bool linear = ((flags & MSG_MORE) && !sg) || fraglen + hh_len + 15 < kSkbMaxAlloc || !sg;
      if (linear && fraglen > room) linear = false;
      if (zc) linear = false;  // kernel: paged = true — only the headers in the head
      if (!linear) pagedlen = datalen - transhdrlen - fraggap;

      // What the kernel allocates for this packet, and so charges: alloclen + alloc_extra, linear
      // unless paged (then the payload is charged as it is copied into page fragments). A GSO
      // piece after the first is our layout only: the kernel appends it to the one GSO skb.
      const int alloc_extra = hh_len + 15;
      const bool kernel_alloc = !(gso && skb_prev != nullptr);
      bool kernel_paged = gso;
      int kernel_alloclen = fraglen;
      if ((flags & MSG_MORE) && !sg) {
        kernel_alloclen = mtu;
      } else if (gso || kernel_zc || (fraglen + alloc_extra >= kSkbMaxAlloc && sg)) {
        kernel_alloclen = fragheaderlen + transhdrlen;
        kernel_paged = true;
      }
      uint32_t charge = kernel_alloc ? skb_alloc_truesize(static_cast<uint32_t>(kernel_alloclen + alloc_extra)) : 0;
      if (kernel_zc) {
        // The kernel's one skb pins the whole payload at once (our later GSO pieces add nothing).
        if (kernel_alloc) charge += iov_iter_pinned_truesize(*from, static_cast<size_t>(length - transhdrlen));
      } else if (kernel_paged) {
        charge += static_cast<uint32_t>(std::max(datalen - transhdrlen - fraggap, 0));
      }

      if (transhdrlen) {
        if ((err = sock_alloc_send_check(inet)) != 0) break;
      } else if (kernel_alloc && static_cast<uint64_t>(inet->sk_wmem_alloc) > 2ull * inet->sk_sndbuf) {
        // kernel: "refcount_read(&sk->sk_wmem_alloc) + wmem_alloc_delta <= 2 * sk->sk_sndbuf"
        // guards alloc_skb() for the later packets, else -ENOBUFS (ours are charged as they go,
        // so sk_wmem_alloc already holds the delta).
        err = -ENOBUFS;
        break;
      }
      skb = ctx.skbs->alloc_skb();
      if (skb == nullptr) {
        err = kNoTxMem;
        break;
      }
      skb_set_owner_w(skb, inet, charge);
      ipcb(skb)->zcopy = call_zc;
      // The kernel's GSO datagram is one skb: every piece of ours keeps the first one's mode.
      skb->ip_summed = (gso && skb_prev != nullptr) ? skb_prev->ip_summed : csummode;
      skb->csum = 0;
      skb_reserve(skb, hh_len);
      uint8_t* data = skb_put(skb, fraglen - pagedlen);
      skb_reset_network_header(skb);
      skb->transport_header = static_cast<uint16_t>(skb->network_header + fragheaderlen);
      data += fh;
      std::memset(skb_network_header(skb), 0, fh + transhdrlen);

      if (fraggap > 0) {
        // kernel: skb_copy_and_csum_bits(skb_prev, maxfraglen, data + transhdrlen, fraggap)
        skb_copy_bits(skb_prev, cutfraglen, data + transhdrlen, fraggap);
        skb->csum = csum_partial(data + transhdrlen, fraggap, 0);
        skb_prev->csum = csum_sub(skb_prev->csum, skb->csum);
        data += fraggap;
        skb_trim_to(skb_prev, cutfraglen);
      }

      copy = datalen - transhdrlen - fraggap - pagedlen;
      if (copy > 0 && ip_generic_getfrag(from, data + transhdrlen, copy, fraggap, skb) < 0) {
        kfree_skb(skb);
        err = -EFAULT;
        break;
      }
      if (copy < 0) copy = 0;
      length -= copy + transhdrlen;
      transhdrlen = 0;
      csummode = CHECKSUM_NONE;
      cork->tx_flags = 0;  // only the first packet carries the timestamp request
      skb_queue_tail(queue, skb);
      continue;
    }

    if (copy > length) copy = length;
    const bool linear_copy = !sg && static_cast<int>(skb_tailroom(skb)) >= copy;
    if (zc) {
      // kernel: skb_zerocopy_iter_dgram() -> __zerocopy_sg_from_iter(): one fragment per
      // contiguous run of the caller's memory, holding the send's object until the skb is freed
      // (the device's completion); the pages' truesize was charged with the skb (kernel_zc).
      if (skb_shinfo(skb)->nr_frags == MAX_SKB_FRAGS) {
        err = -EMSGSIZE;
        break;
      }
      const uint8_t* p = nullptr;
      copy = static_cast<int>(iov_iter_next_run(from, static_cast<size_t>(copy), &p));
      if (copy == 0) {
        err = -EFAULT;
        break;
      }
      net_zcopy_get(ctx.zc_ubuf);
      skb_fill_frag(skb, skb_frag_user(const_cast<uint8_t*>(p), static_cast<uint32_t>(copy), ctx.zc_ubuf));
    } else if (linear_copy) {
      uint32_t off = skb->len;
      uint8_t* to = skb_put(skb, copy);
      if (ip_generic_getfrag(from, to, copy, static_cast<int>(off), skb) < 0) {
        skb->tail -= copy;  // kernel: __skb_trim(skb, off)
        skb->len = off;
        err = -EFAULT;
        break;
      }
    } else {
      if (!page_frag_refill(pfrag, ctx.frags)) {
        err = kNoTxMem;  // kernel: -ENOMEM (no page); for us the same pool exhaustion as above
        break;
      }
      uint8_t* to = pfrag->buf + pfrag->offset;
      skb_frag f = skb_frag_pool(pfrag->pool, to, 0);
      // kernel: skb_can_coalesce() is false for an skb carrying an object (skb_zcopy())
      const bool merge = !ipcb(skb)->zcopy && skb_can_coalesce(skb, f);
      if (!merge && skb_shinfo(skb)->nr_frags == MAX_SKB_FRAGS) {
        err = -EMSGSIZE;
        break;
      }
      copy = std::min(copy, static_cast<int>(pfrag->size - pfrag->offset));
      if (ip_generic_getfrag(from, to, copy, static_cast<int>(skb->len), skb) < 0) {
        err = -EFAULT;
        break;
      }
      pfrag->pool->get(to);  // kernel: get_page(); dropped again by skb_append_frag() on a merge
      f.len = static_cast<uint32_t>(copy);
      merge ? skb_append_frag(skb, f) : skb_fill_frag(skb, f);
      pfrag->offset += static_cast<uint32_t>(copy);
    }
    if (skb == entry_tail && (!linear_copy || gso)) skb_add_truesize(skb, static_cast<uint32_t>(copy));
    length -= copy;
  }
  if (err == 0) return 0;
  cork->length -= static_cast<uint32_t>(length);
  ++ctx.mib->OutDiscards;
  return err;
}

int ip_append_data(const IpOutCtx& ctx, InetSock* inet, const Flowi4& fl4, const Ipv4Route& rt,
                   IovIter* from, int length, int transhdrlen, const IpcmCookie& ipc, unsigned flags) {
  if (flags & kMsgProbe) return 0;
  if (skb_queue_empty(inet->sk_write_queue)) {
    int err = ip_setup_cork(*inet, &inet->cork, ipc, rt);
    if (err) return err;
    inet->cork.fl4 = fl4;
  } else {
    transhdrlen = 0;
  }
  return ip_append_data_core(ctx, inet, &inet->sk_write_queue, &inet->cork, &inet->pfrag, from, length,
                             transhdrlen, flags);
}

void ip_make_hdr(const InetSock& inet, const InetCork& cork, const Flowi4& fl4, const Ipv4Sysctl& sysctl,
                 uint32_t len, IpCb* cb, uint8_t* iphdr) {
  const Ipv4Route& rt = cork.dst;
  *cb = IpCb{
      .datagram_len = len,
      .priority = cork.priority,
      .mark = cork.mark,
      // kernel: ip_skb_dst_mtu()
      .mtu = ip_sk_use_pmtu(inet) ? std::min(rt.dst_mtu(), IP_MAX_MTU) : std::min(rt.dev_mtu(), IP_MAX_MTU),
      .oif = rt.oif,
      .nexthop = rt.nexthop,
      .hh_len = rt.hh_len,
      // Unless the user demanded real PMTU discovery (IP_PMTUDISC_DO/PROBE) we may fragment
      // this datagram locally, DF or not.
      .ignore_df = ip_sk_ignore_df(inet),
      .tx_ip_csum = rt.dev->ip_csum,
      .tx_l4_csum = rt.dev_csum(),
  };

  // DF is set when we want to see it on outgoing frames; with ignore_df we still fragment
  // locally (a WANT datagram larger than the path MTU goes out fragmented, without DF).
  uint16_t df = 0;
  if (inet.pmtudisc == IP_PMTUDISC_DO || inet.pmtudisc == IP_PMTUDISC_PROBE ||
      (len <= rt.dst_mtu() && ip_dont_fragment(inet, rt)))
    df = IP_DF;

  // Multicast routes (inet.mc_ttl) are not handled here.
  uint8_t ttl = cork.ttl != 0 ? cork.ttl : ip_select_ttl(inet, rt, sysctl);

  IpHdr iph = *IpHdr::at(absl::MakeSpan(iphdr, kFragHeaderLen));
  iph.set_version(4);
  iph.set_ihl(5);
  iph.set_tos(cork.tos != -1 ? static_cast<uint8_t>(cork.tos) : inet.tos);
  iph.set_tot_len(static_cast<uint16_t>(len));  // rewritten by ip_local_out(); every byte written
  iph.set_id(0);
  iph.set_frag_off(df);
  iph.set_ttl(ttl);
  iph.set_protocol(inet.sk_protocol);
  iph.set_check(0);
  iph.set_saddr(fl4.saddr);
  iph.set_daddr(fl4.daddr);
}

sk_buff* ip_make_skb_core(const IpOutCtx& ctx, InetSock* inet, const Flowi4& fl4, SkbQueue* queue,
                          InetCork* cork) {
  sk_buff* skb = skb_dequeue(queue);
  if (skb == nullptr) return nullptr;
  uint32_t len = skb->len;
  sk_buff** tail_skb = &skb->next;
  // Headers of later pieces are written when ip_do_fragment() / udp_gso_segment() sends them.
  const uint32_t later_hdr = cork->gso_size != 0 ? kGsoHdrLen : kFragHeaderLen;
  while (sk_buff* tmp = skb_dequeue(queue)) {
    skb_pull(tmp, later_hdr);
    *tail_skb = tmp;
    tail_skb = &tmp->next;
    len += tmp->len;
  }

  IpCb* cb = ipcb(skb);
  ip_make_hdr(*inet, *cork, fl4, *ctx.sysctl, len, cb, skb->data);
  IpHdr iph = *IpHdr::at(absl::MakeSpan(skb->data, kFragHeaderLen));
  ip_select_ident_segs(ctx.idents, ctx.now_ns, iph, cb->ignore_df, inet, 1);

  cork->has_dst = false;  // kernel: ip_cork_release() — the route moves to the skb
  return skb;
}

int ip_make_skb(const IpOutCtx& ctx, InetSock* inet, const Flowi4& fl4, const Ipv4Route& rt,
                IovIter* from, int length, int transhdrlen, const IpcmCookie& ipc, InetCork* cork,
                unsigned flags, sk_buff** out) {
  *out = nullptr;
  if (flags & kMsgProbe) return 0;
  SkbQueue queue;
  // kernel: ip_make_skb() clears cork->flags/addr/opt and ip_setup_cork() sets every field this
  // path reads (cork->fl4 is the corked path's), so the cork is not zeroed first.
  int err = ip_setup_cork(*inet, cork, ipc, rt);
  if (err) return err;
  // kernel: &current->task_frag; the socket's own page frag here (one thread per stack).
  err = ip_append_data_core(ctx, inet, &queue, cork, &inet->pfrag, from, length, transhdrlen, flags);
  if (err) {
    skb_queue_purge(&queue);  // kernel: __ip_flush_pending_frames()
    return err;
  }
  *out = ip_make_skb_core(ctx, inet, fl4, &queue, cork);
  return 0;
}

int ip_make_skb(const IpOutCtx& ctx, InetSock* inet, const Flowi4& fl4, const Ipv4Route& rt,
                IovIter* from, int length, int transhdrlen, const IpcmCookie& ipc, unsigned flags,
                sk_buff** out) {
  *out = nullptr;
  // Without the cork the caller cannot hand udp_send_skb() the GSO limits: refuse, as before.
  if (ipc.gso_size != 0) return -EOPNOTSUPP;
  InetCork cork;
  return ip_make_skb(ctx, inet, fl4, rt, from, length, transhdrlen, ipc, &cork, flags, out);
}

void ip_flush_pending_frames(InetSock* inet) {
  skb_queue_purge(&inet->sk_write_queue);
  inet->cork.has_dst = false;
  inet->cork.length = 0;
}

void inet_sock_destruct(InetSock* inet) {
  ip_flush_pending_frames(inet);
  if (inet->pfrag.buf != nullptr) inet->pfrag.pool->put(inet->pfrag.buf);
  inet->pfrag = PageFrag{};
}

}  // namespace xmit
