// stack/skb/sk_buff.h — the packet buffer: a linear head with headroom that each layer pushes its
// header into, up to MAX_SKB_FRAGS payload fragments, offload metadata, the TCP control block.
// Kernel counterparts: struct sk_buff / skb_shared_info, include/linux/skbuff.h, net/core/skbuff.c.
#pragma once

// Kernel-named types keep the kernel's spelling (sk_buff, skb_frag, skb_shared_info); xmit's own
// are CamelCase. Functions return pointers (nullptr on failure) or 0 / -errno. Where the kernel
// BUG()s (skb_over_panic, skb_under_panic) these functions fail instead and leave the skb as it was.
//
// Memory and references:
//  * The head is one BufPool buffer; head <= data <= tail <= end lie inside it. The skb holds one
//    reference on it.
//  * Each fragment holds one reference on what owns its memory: a BufPool buffer (kPool), or a
//    ubuf_info completion (kUser: MSG_ZEROCOPY user pages; kFile: spliced file pages).
//  * skb_clone() shares the head and the fragments (it takes a reference on each); the clone has
//    its own sk_buff fields and its own copy of skb_shared_info, so unlike in the kernel, gso
//    fields set on a clone do not show in the original. While skb_cloned(), neither side may
//    write the head's bytes: take a private head with skb_cow_head(), or transmit a pskb_copy()
//    (private head, shared fragments) — as __tcp_transmit_skb() does for a still-cloned skb.
// Threading: an skb and everything it references are used by the thread that owns its SkbPool.

#include <cstdint>
#include <cstring>

#include "stack/base/checksum.h"
#include "stack/skb/pool.h"
#include "stack/skb/ubuf.h"

namespace xmit {

inline constexpr int MAX_SKB_FRAGS = 17;  // kernel: CONFIG_MAX_SKB_FRAGS default

// kernel: skb->ip_summed values, include/linux/skbuff.h
inline constexpr uint8_t CHECKSUM_NONE = 0;
inline constexpr uint8_t CHECKSUM_UNNECESSARY = 1;
inline constexpr uint8_t CHECKSUM_COMPLETE = 2;
inline constexpr uint8_t CHECKSUM_PARTIAL = 3;

inline constexpr uint16_t kSkbHeaderUnset = 0xffff;  // an unset mac/network/transport header

// Who owns a fragment's memory, and so what a reference on it is.
enum class FragKind : uint8_t {
  kPool,  // a buffer of `pool`
  kUser,  // user memory pinned by `ubuf` until it completes (MSG_ZEROCOPY)
  kFile,  // file pages kept by `ubuf` until it completes (splice)
  kHeap,  // the stack's memory outside its pools, freed when `ubuf` completes (skb_copy_ubufs())
};

// kernel: skb_frag_t (struct bio_vec: page, offset, len) — here a pointer instead of page+offset.
struct skb_frag {
  uint8_t* data = nullptr;
  uint32_t len = 0;
  FragKind kind = FragKind::kPool;
  BufPool* pool = nullptr;   // kPool
  ubuf_info* ubuf = nullptr;  // kUser, kFile, kHeap
};

// Fragment constructors. The fragment takes over one reference the caller holds: a buffer from
// pool->alloc() (or pool->get()), or a reference on `uarg` (ubuf_info_init() / net_zcopy_get()).
inline skb_frag skb_frag_pool(BufPool* pool, uint8_t* data, uint32_t len) {
  return skb_frag{.data = data, .len = len, .kind = FragKind::kPool, .pool = pool};
}
inline skb_frag skb_frag_user(uint8_t* data, uint32_t len, ubuf_info* uarg) {
  return skb_frag{.data = data, .len = len, .kind = FragKind::kUser, .ubuf = uarg};
}
inline skb_frag skb_frag_file(uint8_t* data, uint32_t len, ubuf_info* uarg) {
  return skb_frag{.data = data, .len = len, .kind = FragKind::kFile, .ubuf = uarg};
}

// kernel: skb_frag_size(), skb_frag_size_set/add/sub(), skb_frag_address(), skb_frag_off_add()
inline uint32_t skb_frag_size(const skb_frag* f) { return f->len; }
inline void skb_frag_size_set(skb_frag* f, uint32_t size) { f->len = size; }
inline void skb_frag_size_add(skb_frag* f, uint32_t delta) { f->len += delta; }
inline void skb_frag_size_sub(skb_frag* f, uint32_t delta) { f->len -= delta; }
inline uint8_t* skb_frag_address(const skb_frag* f) { return f->data; }
inline void skb_frag_off_add(skb_frag* f, uint32_t delta) { f->data += delta; }

// Takes / drops one reference on the fragment's owner. kernel: __skb_frag_ref(), __skb_frag_unref()
void skb_frag_ref_core(const skb_frag* f) noexcept;
void skb_frag_unref_core(const skb_frag* f) noexcept;

// kernel: struct skb_shared_info (per skb here; see the header comment).
struct skb_shared_info {
  uint8_t nr_frags = 0;
  uint16_t gso_size = 0;  // payload bytes per segment when the device segments (TSO)
  uint16_t gso_segs = 0;
  // The MSG_ZEROCOPY send(s) this skb's payload belongs to, with one reference held by the skb
  // (and one by each clone or copy of it): the completion waits for the last skb that carries it,
  // whatever its fragments are (TCP copies the bytes and still completes on the ACK).
  // kernel: skb_shinfo(skb)->destructor_arg with SKBFL_ZEROCOPY_ENABLE (skb_zcopy())
  ubuf_info* destructor_arg = nullptr;
  skb_frag frags[MAX_SKB_FRAGS];
};

struct sk_buff {
  sk_buff* next = nullptr;  // queue linkage (write queue, retransmit list); the pool's free list
  sk_buff* prev = nullptr;

  uint8_t* head = nullptr;  // start of the head buffer
  uint8_t* data = nullptr;  // first byte of the packet
  uint8_t* tail = nullptr;  // end of the linear part
  uint8_t* end = nullptr;   // end of the head buffer
  uint32_t len = 0;         // linear bytes (tail - data) + data_len
  uint32_t data_len = 0;    // bytes in fragments

  // Offsets from head (kernel: skb->mac_header, network_header, transport_header).
  uint16_t mac_header = kSkbHeaderUnset;
  uint16_t network_header = kSkbHeaderUnset;
  uint16_t transport_header = kSkbHeaderUnset;

  // Offload metadata. With CHECKSUM_PARTIAL the device sums from csum_start (offset from head)
  // and stores the result at csum_start + csum_offset. kernel: same fields.
  uint8_t ip_summed = CHECKSUM_NONE;
  uint16_t csum_start = 0;
  uint16_t csum_offset = 0;
  wsum csum = 0;
  be16 protocol = 0;  // kernel: skb->protocol (ETH_P_IP, network order)

  uint32_t users = 1;  // kernel: skb->users; kfree_skb() frees at zero
  // The socket this skb is charged to and what the charge is. The destructor runs once, when the
  // last user frees the skb (kernel: skb_release_head_state()): for a send-buffer charge it is
  // sock_wfree() (stack/ipv4/sk_wmem.h), so the charge lasts until the device completes the frame.
  // Clones and copies are not charged (kernel: skb_clone() clears sk and destructor).
  uint32_t truesize = 0;                    // kernel: skb->truesize
  void* sk = nullptr;                       // kernel: skb->sk (an InetSock for sock_wfree())
  void (*destructor)(sk_buff* skb) = nullptr;  // kernel: skb->destructor
  alignas(8) uint8_t cb[48] = {};  // per-layer control block (kernel: skb->cb, TCP_SKB_CB())

  skb_shared_info shinfo;
  SkbPool* owner = nullptr;  // where the sk_buff object returns
  BufPool* head_pool = nullptr;
};

inline skb_shared_info* skb_shinfo(sk_buff* skb) { return &skb->shinfo; }
inline const skb_shared_info* skb_shinfo(const sk_buff* skb) { return &skb->shinfo; }
// kernel: skb_is_gso()
inline bool skb_is_gso(const sk_buff* skb) { return skb->shinfo.gso_size != 0; }

// The skb's zerocopy completion object, or nullptr. kernel: skb_zcopy()
inline ubuf_info* skb_zcopy(const sk_buff* skb) { return skb != nullptr ? skb->shinfo.destructor_arg : nullptr; }
// Attaches `uarg` (a new reference) unless the skb already carries one. kernel: skb_zcopy_set(skb, uarg, NULL)
inline void skb_zcopy_set(sk_buff* skb, ubuf_info* uarg) {
  if (uarg != nullptr && skb->shinfo.destructor_arg == nullptr) {
    net_zcopy_get(uarg);
    skb->shinfo.destructor_arg = uarg;
  }
}
// `nskb`, split off `orig`, carries its zerocopy object too. kernel: skb_zerocopy_clone()
inline void skb_zerocopy_clone(sk_buff* nskb, const sk_buff* orig) { skb_zcopy_set(nskb, skb_zcopy(orig)); }
// Whether a fragment references the program's memory (kUser: MSG_ZEROCOPY pages read in place,
// which the program may free once its send completed). The kernel needs no such test: it pinned the
// pages; skb_orphan_frags()'s skb_zcopy() test is the nearest.
inline bool skb_has_user_frags(const sk_buff* skb) {
  for (int i = 0; i < skb->shinfo.nr_frags; ++i)
    if (skb->shinfo.frags[i].kind == FragKind::kUser) return true;
  return false;
}
// The skb's user fragments (kUser) copied into fresh buffers of `pool`, packed back to back; other
// fragments keep their slots; their objects then say COPIED (skb_zcopy_clear(skb, false)). Where
// the pool has no buffer left, the rest goes into one heap block (kHeap fragments; the kernel's
// alloc_page() has no pool to run dry). 0, or -ENOBUFS (no memory at all) / -EMSGSIZE (more
// fragments than MAX_SKB_FRAGS) with the skb unchanged. kernel: skb_copy_ubufs()
int skb_copy_ubufs(sk_buff* skb, BufPool* pool) noexcept;
// Tests: the heap allocation skb_copy_ubufs() makes (nullptr: malloc()).
void skb_copy_ubufs_set_alloc(void* (*alloc)(size_t));

// kernel: skb_headlen(), skb_is_nonlinear(), skb_headroom(), skb_tailroom(), skb_tail_pointer()
inline uint32_t skb_headlen(const sk_buff* skb) { return skb->len - skb->data_len; }
inline bool skb_is_nonlinear(const sk_buff* skb) { return skb->data_len != 0; }
inline uint32_t skb_headroom(const sk_buff* skb) { return static_cast<uint32_t>(skb->data - skb->head); }
inline uint32_t skb_tailroom(const sk_buff* skb) {
  return skb_is_nonlinear(skb) ? 0 : static_cast<uint32_t>(skb->end - skb->tail);
}
inline uint8_t* skb_tail_pointer(const sk_buff* skb) { return skb->tail; }

// The helpers every packet passes through are inline, as the kernel's skb_reserve() and
// __skb_put()/__skb_push() are (include/linux/skbuff.h); ours keep their checks.
// Moves data and tail forward on an empty skb. 0, or -EINVAL if the skb is not empty or the
// buffer is too small. kernel: skb_reserve()
inline int skb_reserve(sk_buff* skb, uint32_t len) noexcept {
  if (skb->len != 0 || len > static_cast<size_t>(skb->end - skb->tail)) return -EINVAL;
  skb->data += len;
  skb->tail += len;
  return 0;
}
// Extends the linear data at the tail; returns the first new byte, or nullptr when the tailroom
// is short or the skb has fragments. kernel: skb_put()
inline uint8_t* skb_put(sk_buff* skb, uint32_t len) noexcept {
  // kernel: SKB_LINEAR_ASSERT(skb); skb_over_panic() when tail would pass end.
  if (len > skb_tailroom(skb)) return nullptr;
  uint8_t* tmp = skb->tail;
  skb->tail += len;
  skb->len += len;
  return tmp;
}
// kernel: skb_put_data(), skb_put_zero()
uint8_t* skb_put_data(sk_buff* skb, const void* src, uint32_t len) noexcept;
uint8_t* skb_put_zero(sk_buff* skb, uint32_t len) noexcept;
// Prepends `len` bytes into the headroom; returns the new data, or nullptr when the headroom is
// short. kernel: skb_push()
inline uint8_t* skb_push(sk_buff* skb, uint32_t len) noexcept {
  // kernel: skb_under_panic() when data would pass head.
  if (len > skb_headroom(skb)) return nullptr;
  skb->data -= len;
  skb->len += len;
  return skb->data;
}
// Removes `len` bytes from the start; returns the new data, or nullptr when `len` exceeds the
// linear part (pulling into fragments is pskb_pull(), not provided). kernel: skb_pull()
uint8_t* skb_pull(sk_buff* skb, uint32_t len) noexcept;

// kernel: skb_reset_*_header(), skb_set_*_header(), skb_*_header(), skb_network_offset() ...
inline void skb_reset_mac_header(sk_buff* skb) { skb->mac_header = static_cast<uint16_t>(skb->data - skb->head); }
inline void skb_reset_network_header(sk_buff* skb) { skb->network_header = static_cast<uint16_t>(skb->data - skb->head); }
inline void skb_reset_transport_header(sk_buff* skb) { skb->transport_header = static_cast<uint16_t>(skb->data - skb->head); }
inline void skb_set_network_header(sk_buff* skb, int off) { skb->network_header = static_cast<uint16_t>(skb->data - skb->head + off); }
inline void skb_set_transport_header(sk_buff* skb, int off) { skb->transport_header = static_cast<uint16_t>(skb->data - skb->head + off); }
inline uint8_t* skb_mac_header(const sk_buff* skb) { return skb->head + skb->mac_header; }
inline uint8_t* skb_network_header(const sk_buff* skb) { return skb->head + skb->network_header; }
inline uint8_t* skb_transport_header(const sk_buff* skb) { return skb->head + skb->transport_header; }
inline int skb_network_offset(const sk_buff* skb) { return static_cast<int>(skb_network_header(skb) - skb->data); }
inline int skb_transport_offset(const sk_buff* skb) { return static_cast<int>(skb_transport_header(skb) - skb->data); }
// Where the device starts summing, from data. kernel: skb_checksum_start_offset()
inline int skb_checksum_start_offset(const sk_buff* skb) { return skb->csum_start - static_cast<int>(skb_headroom(skb)); }

// Appends `frag` as the last fragment and accounts it in len/data_len; the skb takes over the
// caller's reference. A fragment that continues the last one in the same owner's memory is merged
// into it and the now redundant reference dropped (kernel: skb_can_coalesce() + skb_frag_size_add()
// in tcp_sendmsg_locked()). 0, or -EMSGSIZE when MAX_SKB_FRAGS are in use (the reference stays
// the caller's). kernel: skb_fill_page_desc() + the len/data_len updates of skb_add_rx_frag()
int skb_append_frag(sk_buff* skb, const skb_frag& frag) noexcept;
// The same without merging: `frag` takes a slot of its own. kernel: skb_fill_page_desc()
int skb_fill_frag(sk_buff* skb, const skb_frag& frag) noexcept;
// True when `frag` continues the last fragment in the same memory. kernel: skb_can_coalesce()
bool skb_can_coalesce(const sk_buff* skb, const skb_frag& frag) noexcept;
// kernel: skb_frag_ref(), skb_frag_unref() (by index)
inline void skb_frag_ref(sk_buff* skb, int i) { skb_frag_ref_core(&skb->shinfo.frags[i]); }
inline void skb_frag_unref(sk_buff* skb, int i) { skb_frag_unref_core(&skb->shinfo.frags[i]); }

// kernel: skb_get() — one more user; kfree_skb() drops one and frees the skb at the last.
inline sk_buff* skb_get(sk_buff* skb) {
  ++skb->users;
  return skb;
}
// Drops a user; at the last, releases the head, every fragment reference and the sk_buff object.
// kernel: kfree_skb(), consume_skb() (the same here; the kernel only traces them differently)
void kfree_skb(sk_buff* skb) noexcept;
// Frees a list linked through skb->next. kernel: kfree_skb_list()
inline void kfree_skb_list(sk_buff* skb) noexcept {
  while (skb != nullptr) {
    sk_buff* next = skb->next;
    skb->next = nullptr;
    kfree_skb(skb);
    skb = next;
  }
}
inline void consume_skb(sk_buff* skb) noexcept { kfree_skb(skb); }

// A new sk_buff sharing the head and the fragments (a reference on each); nullptr when the
// SkbPool is exhausted. What a retransmission sends. kernel: skb_clone()
sk_buff* skb_clone(sk_buff* skb) noexcept;
// True while another skb shares the head. kernel: skb_cloned()
inline bool skb_cloned(const sk_buff* skb) noexcept { return skb->head_pool->refcount(skb->head) > 1; }
// A new sk_buff with a private copy of the head (same headroom, linear bytes and header offsets)
// sharing the fragments; nullptr when skbs or buffers are exhausted. kernel: pskb_copy()
sk_buff* pskb_copy(sk_buff* skb) noexcept;
// Makes the head private and at least `headroom` deep before a header is written into it.
// 0, -ENOBUFS (no buffer), -EINVAL (cannot fit in one buffer). kernel: skb_cow_head()
int skb_cow_head(sk_buff* skb, uint32_t headroom) noexcept;

// Copies `len` bytes from `offset` (from data, across the head and fragments) to `to`.
// 0, or -EFAULT when the range is outside the skb. kernel: skb_copy_bits(), net/core/skbuff.c
int skb_copy_bits(const sk_buff* skb, uint32_t offset, void* to, uint32_t len) noexcept;
// Partial checksum of [offset, offset + len) added to `csum`; fragments at odd offsets are
// combined with csum_block_add(). The range must lie inside the skb. kernel: skb_checksum()
wsum skb_checksum(const sk_buff* skb, uint32_t offset, uint32_t len, wsum csum) noexcept;

}  // namespace xmit
