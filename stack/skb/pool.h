// stack/skb/pool.h — packet memory: BufPool (one mmap'd region in fixed-size, refcounted buffers
// a device can register as UMEM / a verbs MR) and SkbPool (preallocated sk_buff objects).
// Kernel counterparts: page_pool (net/core/page_pool.c) and skbuff_cache (net/core/skbuff.c).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace xmit {

struct sk_buff;

// `nr_bufs` buffers of `buf_size` bytes carved out of one anonymous, pre-faulted mapping; a LIFO
// free list of indices; a refcount per buffer kept outside the region (a device cannot corrupt
// it). Nothing allocates after create().
// Threading: a BufPool is used by one thread (the one that owns the stack instance). No locks,
// no atomics. Keep RX and TX pools separate so a TX backlog cannot starve reception.
class BufPool {
 public:
  // buf_size: a power of two in [64, 65536] (AF_XDP aligned chunks want 2048 or 4096).
  // Returns 0, -EINVAL for a bad size/count, -ENOMEM when the mapping fails.
  static int create(uint32_t nr_bufs, uint32_t buf_size, std::unique_ptr<BufPool>* out) noexcept;
  ~BufPool();
  BufPool(const BufPool&) = delete;
  BufPool& operator=(const BufPool&) = delete;

  // A free buffer with refcount 1, or nullptr when all are in use (the caller maps that to
  // -ENOBUFS or -EAGAIN).
  uint8_t* alloc() noexcept;
  // `p` may point anywhere inside a buffer. get() adds a reference; put() drops one and returns
  // the buffer to the free list when it was the last. kernel: get_page(), put_page()
  void get(const uint8_t* p) noexcept { ++refcnt_[index_of(p)]; }
  void put(const uint8_t* p) noexcept;
  uint32_t refcount(const uint8_t* p) const noexcept { return refcnt_[index_of(p)]; }

  bool contains(const uint8_t* p) const noexcept { return p >= base_ && p < base_ + size_; }
  uint32_t index_of(const uint8_t* p) const noexcept {
    return static_cast<uint32_t>(static_cast<size_t>(p - base_) >> shift_);
  }
  uint8_t* buf(uint32_t index) const noexcept { return base_ + (static_cast<size_t>(index) << shift_); }
  uint8_t* buf_start(const uint8_t* p) const noexcept { return buf(index_of(p)); }

  // The region, for device registration (xsk_umem__create(), ibv_reg_mr()).
  uint8_t* base() const noexcept { return base_; }
  size_t size() const noexcept { return size_; }
  uint32_t buf_size() const noexcept { return 1u << shift_; }
  uint32_t nr_bufs() const noexcept { return nr_bufs_; }
  uint32_t nr_free() const noexcept { return nr_free_; }

 private:
  BufPool() = default;
  uint8_t* base_ = nullptr;
  size_t size_ = 0;
  size_t map_len_ = 0;
  uint32_t shift_ = 0;
  uint32_t nr_bufs_ = 0;
  uint32_t nr_free_ = 0;
  std::unique_ptr<uint32_t[]> refcnt_;
  std::unique_ptr<uint32_t[]> free_;  // free_[0, nr_free_) are free buffer indices
};

// `nr_skbs` sk_buff objects allocated once, on an intrusive free list; each skb's linear head is a
// buffer of `heads`. alloc_skb() and kfree_skb() (stack/skb/sk_buff.h) never touch the heap.
// Threading: used by one thread, as its BufPool.
class SkbPool {
 public:
  // Returns 0, -EINVAL (nr_skbs == 0) or -ENOMEM.
  static int create(uint32_t nr_skbs, BufPool* heads, std::unique_ptr<SkbPool>* out) noexcept;
  ~SkbPool();
  SkbPool(const SkbPool&) = delete;
  SkbPool& operator=(const SkbPool&) = delete;

  // An empty skb (len 0, no headroom reserved yet) whose head is a fresh buffer of heads(), or
  // nullptr when either skbs or buffers are exhausted. kernel: alloc_skb(), net/core/skbuff.c
  sk_buff* alloc_skb() noexcept;

  BufPool* heads() const noexcept { return heads_; }
  uint32_t nr_skbs() const noexcept { return nr_skbs_; }
  uint32_t nr_free() const noexcept { return nr_free_; }

  // For sk_buff.cc: an object with no head attached, and its return. Not for other callers.
  sk_buff* alloc_struct() noexcept;
  void free_struct(sk_buff* skb) noexcept;
  // For sk_buff.cc's clone and copy, which set every field themselves: an object off the free
  // list with its fields as the last user left them (alloc_struct() without the reset).
  sk_buff* take_struct() noexcept;

 private:
  SkbPool() = default;
  BufPool* heads_ = nullptr;
  std::unique_ptr<sk_buff[]> skbs_;
  sk_buff* free_list_ = nullptr;
  uint32_t nr_skbs_ = 0;
  uint32_t nr_free_ = 0;
};

}  // namespace xmit
