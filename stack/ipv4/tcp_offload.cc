// stack/ipv4/tcp_offload.cc — software TCP GSO over skbs (see tcp_offload.h). Kernel counterparts:
// skb_gso_segment() net/core/gso.c, inet_gso_segment() net/ipv4/af_inet.c, tcp_gso_segment()
// net/ipv4/tcp_offload.c, skb_segment() net/core/skbuff.c.
#include "stack/ipv4/tcp_offload.h"

#include <netinet/in.h>  // IPPROTO_TCP

#include <cerrno>
#include <cstring>

#include "stack/dev/sw_offload.h"
#include "stack/ipv4/skb_queue.h"

namespace xmit {

namespace {

constexpr uint32_t kTcpCheckOff = 16;  // offsetof(struct tcphdr, check)

// Attaches bytes [off, off + len) of `skb` (offsets from skb->data) to `seg` as fragments sharing
// skb's memory, one reference each: a piece of the linear part as a fragment of its head buffer,
// pieces of fragments as the same owner's. 0 or -EMSGSIZE (MAX_SKB_FRAGS in use).
// kernel: skb_segment()'s frag loop (skb_frag_ref() on each shared page)
int skb_segment_frags(const sk_buff* skb, uint32_t off, uint32_t len, sk_buff* seg) {
  const uint32_t headlen = skb_headlen(skb);
  if (off < headlen && len != 0) {
    const uint32_t n = headlen - off < len ? headlen - off : len;
    skb_frag f = skb_frag_pool(skb->head_pool, skb->data + off, n);
    skb_frag_ref_core(&f);
    if (skb_append_frag(seg, f) != 0) {
      skb_frag_unref_core(&f);
      return -EMSGSIZE;
    }
    off += n;
    len -= n;
  }
  off = off >= headlen ? off - headlen : 0;  // from the first fragment on
  for (int i = 0; i < skb->shinfo.nr_frags && len != 0; ++i) {
    const skb_frag& src = skb->shinfo.frags[i];
    if (off >= src.len) {
      off -= src.len;
      continue;
    }
    skb_frag f = src;
    f.data += off;
    f.len = src.len - off < len ? src.len - off : len;
    skb_frag_ref_core(&f);
    if (skb_append_frag(seg, f) != 0) {
      skb_frag_unref_core(&f);
      return -EMSGSIZE;
    }
    len -= f.len;
    off = 0;
  }
  return 0;
}

}  // namespace

int skb_gso_segment(sk_buff* skb, const NetdevFeatures& features, sk_buff** segs) noexcept {
  *segs = nullptr;
  const uint32_t mss = skb_shinfo(skb)->gso_size;
  TsoGeom g;
  // kernel: tcp4_gso_segment() / tcp_gso_segment(): the checksum must start at the TCP header,
  // and a GSO skb carries more than one MSS ("if (unlikely(skb->len <= mss)) goto out").
  if (mss == 0 || tso_geom(skb->data, skb_headlen(skb), skb->len, &g) != 0) return -EINVAL;
  if (skb->ip_summed != CHECKSUM_PARTIAL || skb_checksum_start_offset(skb) != static_cast<int>(g.tcp_off))
    return -EINVAL;
  if (g.payload <= mss || g.hdr_len + g.payload != skb->len) return -EINVAL;
  SkbPool* pool = skb->owner;
  if (g.hdr_len > pool->heads()->buf_size()) return -EINVAL;

  sk_buff* head = nullptr;
  sk_buff** tail = &head;
  int n = 0;
  for (uint32_t off = 0; off < g.payload; off += mss, ++n) {
    const uint32_t chunk = g.payload - off < mss ? g.payload - off : mss;
    // kernel: skb_segment(): a new skb per segment, the headers copied in front
    // (skb_copy_from_linear_data_offset()), the payload's fragments shared.
    sk_buff* seg = pool->alloc_skb();
    if (seg == nullptr) {
      kfree_skb_list(head);
      return -ENOBUFS;
    }
    *tail = seg;
    tail = &seg->next;
    uint8_t* hdr = skb_put_data(seg, skb->data, g.hdr_len);
    seg->mac_header = 0;
    seg->network_header = 14;
    seg->transport_header = static_cast<uint16_t>(g.tcp_off);
    seg->protocol = skb->protocol;
    std::memcpy(seg->cb, skb->cb, sizeof seg->cb);
    if (int err = skb_segment_frags(skb, g.hdr_len + off, chunk, seg); err != 0) {
      kfree_skb_list(head);
      return err;
    }
    skb_zerocopy_clone(seg, skb);  // kernel: skb_segment() → skb_zerocopy_clone()
    // kernel: inet_gso_segment() (tot_len, "iph->id = htons(id++)", ip_send_check()) and
    // tcp_gso_segment() (seq, FIN/PSH cleared but on the last, CWR but on the first).
    tso_segment_headers(hdr, g, n, off, chunk);
    const uint32_t tcp_len = g.hdr_len - g.tcp_off + chunk;
    uint8_t* check = hdr + g.tcp_off + kTcpCheckOff;
    if (features.l4_csum) {
      // kernel: gso_reset_checksum(): the device finishes the sum from the segment's pseudo-header.
      seg->ip_summed = CHECKSUM_PARTIAL;
      seg->csum_start = seg->transport_header;
      seg->csum_offset = kTcpCheckOff;
      store_raw16(check, static_cast<sum16>(~csum_tcpudp_magic(g.saddr, g.daddr, tcp_len, IPPROTO_TCP, 0)));
    } else {
      // kernel: "th->check = gso_make_checksum(skb, ~th->check)" — the whole sum in software.
      seg->ip_summed = CHECKSUM_NONE;
      store_raw16(check, 0);
      const wsum sum = skb_checksum(seg, g.tcp_off, tcp_len, 0);
      store_raw16(check, csum_tcpudp_magic(g.saddr, g.daddr, tcp_len, IPPROTO_TCP, sum));
    }
  }
  // kernel: tcp_gso_segment()'s copy_destructor: "The callback to TCP stack will be called at the
  // time last frag is freed at TX completion, and not right now when gso_skb is freed by GSO
  // engine" — the last segment takes the GSO skb's socket, destructor and charge (swap()). The
  // kernel also charges each other segment its own truesize; here the GSO skb's charge stays whole
  // until the last segment completes (what autocorking compares is held as long as in the kernel).
  sk_buff* last = head;
  while (last->next != nullptr) last = last->next;
  last->sk = skb->sk;
  last->destructor = skb->destructor;
  last->truesize = skb->truesize;
  skb->sk = nullptr;
  skb->destructor = nullptr;
  *segs = head;
  return n;
}

}  // namespace xmit
