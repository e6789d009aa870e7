// stack/skb/ubuf.h — the completion object for memory the stack does not own (user pages under
// MSG_ZEROCOPY, later file pages under splice). Kernel counterpart: struct ubuf_info, include/linux/skbuff.h.
#pragma once

#include <cstdint>

#include "stack/skb/mm_pin.h"

namespace xmit {

// Every fragment pointing into memory owned by a ubuf_info holds one reference on it; `complete`
// runs once, when the last reference drops, i.e. when the device and every clone are done with
// the memory. The owner (the socket layer) keeps the object alive until then and may reuse it
// after `complete` has run.
// Threading: not thread-safe; the refcount is a plain integer. Used by the thread that owns the
// stack instance (and its pools), as every skb that references it.
struct ubuf_info {
  // kernel: ubuf_info_ops.complete. zerocopy_success is false when some path had to copy the
  // bytes instead of sending them in place (kernel: SKBFL_ZEROCOPY_FRAG / "copied" notifications).
  using complete_fn = void (*)(ubuf_info* uarg, bool zerocopy_success);

  complete_fn complete = nullptr;
  void* ctx = nullptr;          // the owner's (socket, notification queue)
  uint32_t refcnt = 0;          // kernel: refcount_t refcnt
  bool zerocopy_success = true;
  uint32_t id = 0;              // kernel: ubuf_info_msgzc.id — first MSG_ZEROCOPY send covered
  uint32_t len = 0;             // kernel: ubuf_info_msgzc.len — how many sends it covers
  uint32_t bytelen = 0;         // kernel: ubuf_info_msgzc.bytelen — their bytes (realloc's limit)
  MmPin mmp;                    // kernel: ubuf_info_msgzc.mmp — their pages charged to RLIMIT_MEMLOCK
};

// Starts the object with one reference, held by the caller. kernel: msg_zerocopy_alloc()
inline void ubuf_info_init(ubuf_info* uarg, ubuf_info::complete_fn fn, void* ctx) {
  *uarg = ubuf_info{.complete = fn, .ctx = ctx, .refcnt = 1};
}

// kernel: net_zcopy_get(), include/linux/skbuff.h
inline void net_zcopy_get(ubuf_info* uarg) { ++uarg->refcnt; }

// kernel: net_zcopy_put(), include/linux/skbuff.h (refcount_dec_and_test in the ops->complete)
inline void net_zcopy_put(ubuf_info* uarg) {
  if (--uarg->refcnt == 0) uarg->complete(uarg, uarg->zerocopy_success);
}

}  // namespace xmit
