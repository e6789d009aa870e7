// stack/skb/skb_frame.h — an skb as the device sees it: (ptr, len) segments and a TxFrame.
// Kernel counterparts: skb_to_sgvec(), net/core/skbuff.c; the skb → descriptor step of ndo_start_xmit().
#pragma once

#include "absl/types/span.h"
#include "stack/dev/netdev.h"
#include "stack/skb/sk_buff.h"

namespace xmit {

// Fills `sg` with the linear part (when not empty) and then each fragment, from skb->data.
// Returns the number of segments, or -EMSGSIZE when `sg` is too short. kernel: skb_to_sgvec()
int skb_to_sgvec(const sk_buff* skb, absl::Span<FrameSeg> sg) noexcept;

// skb_to_sgvec() into `sg`, then the offload fields: CHECKSUM_PARTIAL → kTxL4Csum with
// csum_start/csum_offset from the start of the frame; gso_size → kTxTso. The IPv4 header
// checksum is the caller's (add kTxIpCsum when the device fills it). Returns the number of
// segments or -EMSGSIZE; `out->segs` points into `sg`, which must outlive the xmit() call.
int skb_to_txframe(const sk_buff* skb, absl::Span<FrameSeg> sg, uint64_t cookie, TxFrame* out) noexcept;

}  // namespace xmit
