// stack/skb/sk_buff.cc — head manipulation, fragments, clone/copy, linearising and summing.
// Kernel counterpart: net/core/skbuff.c (skb_put(), skb_push(), skb_clone(), skb_copy_bits(), ...).
#include "stack/skb/sk_buff.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

namespace xmit {

void skb_frag_ref_core(const skb_frag* f) noexcept {
  if (f->kind == FragKind::kPool) {
    f->pool->get(f->data);
  } else {
    net_zcopy_get(f->ubuf);
  }
}

void skb_frag_unref_core(const skb_frag* f) noexcept {
  if (f->kind == FragKind::kPool) {
    f->pool->put(f->data);
  } else {
    net_zcopy_put(f->ubuf);
  }
}

uint8_t* skb_put_data(sk_buff* skb, const void* src, uint32_t len) noexcept {
  uint8_t* p = skb_put(skb, len);
  if (p != nullptr && len != 0) std::memcpy(p, src, len);
  return p;
}

uint8_t* skb_put_zero(sk_buff* skb, uint32_t len) noexcept {
  uint8_t* p = skb_put(skb, len);
  if (p != nullptr && len != 0) std::memset(p, 0, len);
  return p;
}

uint8_t* skb_pull(sk_buff* skb, uint32_t len) noexcept {
  if (len > skb_headlen(skb)) return nullptr;
  skb->len -= len;
  skb->data += len;
  return skb->data;
}

bool skb_can_coalesce(const sk_buff* skb, const skb_frag& frag) noexcept {
  const skb_shared_info& sh = skb->shinfo;
  if (sh.nr_frags == 0) return false;
  const skb_frag& last = sh.frags[sh.nr_frags - 1];
  if (last.kind != frag.kind || last.data + last.len != frag.data) return false;
  if (frag.kind == FragKind::kPool) {
    // Adjacent buffers are contiguous in the region but hold separate references.
    return last.pool == frag.pool && last.pool->index_of(last.data) == frag.pool->index_of(frag.data);
  }
  return last.ubuf == frag.ubuf;
}

int skb_append_frag(sk_buff* skb, const skb_frag& frag) noexcept {
  skb_shared_info& sh = skb->shinfo;
  if (!skb_can_coalesce(skb, frag)) return skb_fill_frag(skb, frag);
  skb_frag_size_add(&sh.frags[sh.nr_frags - 1], frag.len);
  skb_frag_unref_core(&frag);  // the merged fragment already holds one
  skb->len += frag.len;
  skb->data_len += frag.len;
  return 0;
}

int skb_fill_frag(sk_buff* skb, const skb_frag& frag) noexcept {
  skb_shared_info& sh = skb->shinfo;
  if (sh.nr_frags >= MAX_SKB_FRAGS) return -EMSGSIZE;
  sh.frags[sh.nr_frags++] = frag;
  skb->len += frag.len;
  skb->data_len += frag.len;
  return 0;
}

namespace {

std::atomic<void* (*)(size_t)> g_heap_alloc{nullptr};

// A heap block of `len` bytes behind its ubuf_info, freed at the last reference. The object starts
// with the one reference the first fragment made of it takes.
ubuf_info* heap_block(uint32_t len) {
  void* (*alloc)(size_t) = g_heap_alloc.load(std::memory_order_relaxed);
  void* m = alloc != nullptr ? alloc(sizeof(ubuf_info) + len) : std::malloc(sizeof(ubuf_info) + len);
  if (m == nullptr) return nullptr;
  auto* u = new (m) ubuf_info;
  ubuf_info_init(u, [](ubuf_info* x, bool) { std::free(x); }, nullptr);
  return u;
}
uint8_t* heap_data(ubuf_info* u) { return reinterpret_cast<uint8_t*>(u + 1); }

}  // namespace

void skb_copy_ubufs_set_alloc(void* (*alloc)(size_t)) { g_heap_alloc.store(alloc); }

// kernel: skb_copy_ubufs(), net/core/skbuff.c
int skb_copy_ubufs(sk_buff* skb, BufPool* pool) noexcept {
  skb_shared_info* sh = skb_shinfo(skb);
  skb_frag out[MAX_SKB_FRAGS];
  bool fresh[MAX_SKB_FRAGS] = {};
  int n = 0;
  uint8_t* buf = nullptr;  // the pool buffer being filled, at off
  uint32_t off = 0;
  ubuf_info* heap = nullptr;  // past an empty pool: the block the rest goes into, at heap_off
  uint32_t heap_off = 0;
  int err = 0;
  for (int i = 0; i < sh->nr_frags && err == 0; ++i) {
    const skb_frag& f = sh->frags[i];
    if (f.kind != FragKind::kUser) {
      if (n == MAX_SKB_FRAGS) err = -EMSGSIZE;
      else out[n++] = f;
      continue;
    }
    for (uint32_t done = 0; done < f.len && err == 0;) {
      if (heap == nullptr && (buf == nullptr || off == pool->buf_size())) {
        buf = pool->alloc();  // its one reference goes to the fragment made below
        off = 0;
        if (buf == nullptr) {
          uint32_t rest = f.len - done;
          for (int j = i + 1; j < sh->nr_frags; ++j)
            if (sh->frags[j].kind == FragKind::kUser) rest += sh->frags[j].len;
          heap = heap_block(rest);
          if (heap == nullptr) {
            err = -ENOBUFS;
            break;
          }
          heap->refcnt = 0;  // each fragment made of it takes one below
        }
      }
      uint8_t* const to = heap != nullptr ? heap_data(heap) + heap_off : buf + off;
      const uint32_t k = heap != nullptr ? f.len - done : std::min(f.len - done, pool->buf_size() - off);
      // A buffer or block just begun always starts a fragment: memory adjacent to the last one
      // is still another reference.
      const bool first_in_mem = heap != nullptr ? heap_off == 0 : off == 0;
      const bool new_frag = n == 0 || first_in_mem || !fresh[n - 1] || out[n - 1].data + out[n - 1].len != to;
      std::memcpy(to, f.data + done, k);
      if (new_frag) {
        if (n == MAX_SKB_FRAGS) {
          if (heap == nullptr && off == 0) pool->put(buf);  // a buffer no fragment took
          if (heap != nullptr && heap->refcnt == 0) std::free(heap);
          err = -EMSGSIZE;
          break;
        }
        if (heap != nullptr) {
          net_zcopy_get(heap);
          out[n] = skb_frag{.data = to, .len = k, .kind = FragKind::kHeap, .ubuf = heap};
        } else {
          if (off != 0) pool->get(buf);  // a second fragment in the same buffer
          out[n] = skb_frag_pool(pool, to, k);
        }
        fresh[n++] = true;
      } else {
        out[n - 1].len += k;
      }
      if (heap != nullptr) heap_off += k;
      else off += k;
      done += k;
    }
  }
  if (err != 0) {
    for (int i = 0; i < n; ++i)
      if (fresh[i]) skb_frag_unref_core(&out[i]);
    return err;
  }
  for (int i = 0; i < sh->nr_frags; ++i) {
    const skb_frag& f = sh->frags[i];
    if (f.kind != FragKind::kUser) continue;
    f.ubuf->zerocopy_success = false;  // kernel: skb_zcopy_clear(skb, false)
    net_zcopy_put(f.ubuf);
  }
  for (int i = 0; i < n; ++i) sh->frags[i] = out[i];
  sh->nr_frags = static_cast<uint8_t>(n);
  return 0;
}

void kfree_skb(sk_buff* skb) noexcept {
  if (skb == nullptr || --skb->users != 0) return;
  // kernel: skb_release_head_state()
  if (skb->destructor != nullptr) {
    skb->destructor(skb);
    skb->destructor = nullptr;
    skb->sk = nullptr;
  }
  // kernel: skb_release_data()
  for (int i = 0; i < skb->shinfo.nr_frags; ++i) skb_frag_unref(skb, i);
  skb->shinfo.nr_frags = 0;
  if (ubuf_info* uarg = skb->shinfo.destructor_arg; uarg != nullptr) {  // kernel: skb_zcopy_clear()
    skb->shinfo.destructor_arg = nullptr;
    net_zcopy_put(uarg);
  }
  skb->head_pool->put(skb->head);
  skb->owner->free_struct(skb);
}

namespace {

// The references a copy of `from`'s fragments needs, and one on its zerocopy object. kernel: the
// skb_frag_ref() loop of skb_clone() (which shares skb_shared_info, destructor_arg included);
// skb_zerocopy_clone() in __pskb_copy_fclone()
void ref_frags(sk_buff* skb) {
  for (int i = 0; i < skb->shinfo.nr_frags; ++i) skb_frag_ref(skb, i);
  if (skb->shinfo.destructor_arg != nullptr) net_zcopy_get(skb->shinfo.destructor_arg);
}

// `*n = *skb` without the unused tail of the fragment array: the fields up to shinfo.frags, the
// nr_frags fragments in use, owner and head_pool. A whole sk_buff is about 600 bytes, most of them
// MAX_SKB_FRAGS fragments a TCP segment does not use; nothing reads frags[] past nr_frags.
void copy_skb(sk_buff* n, const sk_buff* skb) {
  constexpr size_t kFields = offsetof(sk_buff, shinfo) + offsetof(skb_shared_info, frags);
  static_assert(std::is_trivially_copyable_v<sk_buff> && std::is_standard_layout_v<sk_buff>);
  static_assert(offsetof(sk_buff, owner) > offsetof(sk_buff, shinfo), "owner follows the fragments");
  std::memcpy(static_cast<void*>(n), skb, kFields);
  std::copy_n(skb->shinfo.frags, skb->shinfo.nr_frags, n->shinfo.frags);
  n->owner = skb->owner;
  n->head_pool = skb->head_pool;
}

}  // namespace

sk_buff* skb_clone(sk_buff* skb) noexcept {
  // Every field is set below: no reset of the object first (take_struct()).
  sk_buff* n = skb->owner->take_struct();
  if (n == nullptr) return nullptr;
  // kernel: __skb_clone() — copy the header fields, share the data.
  copy_skb(n, skb);
  n->next = n->prev = nullptr;
  n->users = 1;
  n->sk = nullptr;  // kernel: __skb_clone() — n->destructor = NULL, n->sk = NULL
  n->destructor = nullptr;
  skb->head_pool->get(skb->head);
  ref_frags(n);
  return n;
}

sk_buff* pskb_copy(sk_buff* skb) noexcept {
  uint32_t headroom = skb_headroom(skb);
  uint32_t headlen = skb_headlen(skb);
  BufPool* heads = skb->owner->heads();
  if (static_cast<size_t>(headroom) + headlen > heads->buf_size()) return nullptr;
  // alloc_skb() without its reset of the object: every field is set below (take_struct()).
  SkbPool* owner = skb->owner;
  sk_buff* n = owner->take_struct();
  if (n == nullptr) return nullptr;
  uint8_t* head = heads->alloc();
  if (head == nullptr) {
    owner->free_struct(n);
    return nullptr;
  }
  uint8_t* end = head + heads->buf_size();
  // kernel: __pskb_copy_fclone() — skb_reserve(n, headroom), copy the linear data,
  // share the fragments, skb_copy_header().
  copy_skb(n, skb);
  n->next = n->prev = nullptr;
  n->users = 1;
  n->sk = nullptr;  // kernel: a new skb (__alloc_skb()), owned by nobody
  n->destructor = nullptr;
  n->head_pool = heads;
  n->head = head;
  n->end = end;
  n->data = head + headroom;
  n->tail = n->data + headlen;
  if (headlen != 0) std::memcpy(n->data, skb->data, headlen);
  ref_frags(n);
  return n;
}

int skb_cow_head(sk_buff* skb, uint32_t headroom) noexcept {
  uint32_t old_headroom = skb_headroom(skb);
  if (headroom <= old_headroom && !skb_cloned(skb)) return 0;
  // kernel: pskb_expand_head() — a new head, the old [head, tail) copied `delta` further in.
  uint32_t new_headroom = std::max(headroom, old_headroom);
  uint32_t delta = new_headroom - old_headroom;
  BufPool* pool = skb->head_pool;
  size_t used = static_cast<size_t>(skb->tail - skb->head);
  if (used + delta > pool->buf_size()) return -EINVAL;
  uint8_t* head = pool->alloc();
  if (head == nullptr) return -ENOBUFS;
  std::memcpy(head + delta, skb->head, used);
  pool->put(skb->head);
  skb->data = head + new_headroom;
  skb->tail = head + delta + used;
  skb->head = head;
  skb->end = head + pool->buf_size();
  for (uint16_t* off : {&skb->mac_header, &skb->network_header, &skb->transport_header}) {
    if (*off != kSkbHeaderUnset) *off = static_cast<uint16_t>(*off + delta);
  }
  if (skb->ip_summed == CHECKSUM_PARTIAL) skb->csum_start = static_cast<uint16_t>(skb->csum_start + delta);
  return 0;
}

int skb_copy_bits(const sk_buff* skb, uint32_t offset, void* to, uint32_t len) noexcept {
  if (offset > skb->len || len > skb->len - offset) return -EFAULT;
  auto* out = static_cast<uint8_t*>(to);
  uint32_t start = skb_headlen(skb);
  if (offset < start) {
    uint32_t copy = std::min(len, start - offset);
    std::memcpy(out, skb->data + offset, copy);
    out += copy;
    offset += copy;
    len -= copy;
  }
  for (int i = 0; i < skb->shinfo.nr_frags && len > 0; ++i) {
    const skb_frag& f = skb->shinfo.frags[i];
    uint32_t end = start + f.len;
    if (offset < end) {
      uint32_t copy = std::min(len, end - offset);
      std::memcpy(out, f.data + (offset - start), copy);
      out += copy;
      offset += copy;
      len -= copy;
    }
    start = end;
  }
  return 0;
}

wsum skb_checksum(const sk_buff* skb, uint32_t offset, uint32_t len, wsum csum) noexcept {
  if (offset > skb->len) return csum;
  len = std::min(len, skb->len - offset);
  uint32_t start = skb_headlen(skb);
  uint32_t pos = 0;  // bytes summed so far: the parity of a block's offset in the range
  if (offset < start) {
    uint32_t copy = std::min(len, start - offset);
    csum = csum_partial(skb->data + offset, copy, csum);
    pos += copy;
    offset += copy;
    len -= copy;
  }
  for (int i = 0; i < skb->shinfo.nr_frags && len > 0; ++i) {
    const skb_frag& f = skb->shinfo.frags[i];
    uint32_t end = start + f.len;
    if (offset < end) {
      uint32_t copy = std::min(len, end - offset);
      wsum csum2 = csum_partial(f.data + (offset - start), copy, 0);
      csum = csum_block_add(csum, csum2, pos);
      pos += copy;
      offset += copy;
      len -= copy;
    }
    start = end;
  }
  return csum;
}

}  // namespace xmit
