// stack/skb/skb_frame.cc — skb_to_sgvec() and skb_to_txframe().
// Kernel counterpart: skb_to_sgvec(), net/core/skbuff.c.
#include "stack/skb/skb_frame.h"

#include <cerrno>

namespace xmit {

int skb_to_sgvec(const sk_buff* skb, absl::Span<FrameSeg> sg) noexcept {
  size_t n = 0;
  uint32_t headlen = skb_headlen(skb);
  if (headlen != 0) {
    if (n == sg.size()) return -EMSGSIZE;
    sg[n++] = FrameSeg{.data = skb->data, .len = headlen};
  }
  for (int i = 0; i < skb->shinfo.nr_frags; ++i) {
    const skb_frag& f = skb->shinfo.frags[i];
    if (f.len == 0) continue;
    if (n == sg.size()) return -EMSGSIZE;
    sg[n++] = FrameSeg{.data = f.data, .len = f.len, .user = f.kind == FragKind::kUser};
  }
  return static_cast<int>(n);
}

int skb_to_txframe(const sk_buff* skb, absl::Span<FrameSeg> sg, uint64_t cookie, TxFrame* out) noexcept {
  int n = skb_to_sgvec(skb, sg);
  if (n < 0) return n;
  *out = TxFrame{.segs = absl::Span<const FrameSeg>(sg.data(), static_cast<size_t>(n)), .cookie = cookie};
  if (skb->ip_summed == CHECKSUM_PARTIAL) {
    out->flags |= kTxL4Csum;
    out->csum_start = static_cast<uint16_t>(skb_checksum_start_offset(skb));
    out->csum_offset = skb->csum_offset;
  }
  // The object whose pages the frame's user fragments are (one per skb: "an skb can only point to
  // one uarg"), for the device to mark a copy.
  for (int i = 0; i < skb->shinfo.nr_frags; ++i) {
    const skb_frag& f = skb->shinfo.frags[i];
    if (f.kind == FragKind::kUser && f.ubuf != nullptr) {
      out->zerocopy_success = &f.ubuf->zerocopy_success;
      break;
    }
  }
  if (skb->shinfo.gso_size != 0) {
    out->flags |= kTxTso;
    out->gso_size = skb->shinfo.gso_size;
  }
  return n;
}

}  // namespace xmit
