// verbs/xdp/xsk_ring.h — the four AF_XDP rings (fill, completion, RX, TX) over the raw kernel ABI.
// Kernel counterpart: struct xdp_ring / xsk_queue, net/xdp/xsk_queue.h; layout as gVisor pkg/xdp.
// Thread-safety: a ring belongs to one XdpNetdev and is used by one thread at a time.
#pragma once

#include <linux/if_xdp.h>
#include <sys/mman.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace xmit::xdp {

// The mmap'd part of a ring that user space and the kernel share, plus our cached indices.
// Indices are free-running u32s; `mask` maps them to slots (ring sizes are powers of two).
template <typename Desc>
struct XskRingMap {
  uint32_t* producer = nullptr;  // shared: written by whoever produces into this ring
  uint32_t* consumer = nullptr;  // shared: written by whoever consumes from this ring
  uint32_t* flags = nullptr;     // shared: only the kernel writes (XDP_RING_NEED_WAKEUP)
  Desc* ring = nullptr;          // shared: the producer writes a slot, then publishes `producer`
  uint32_t mask = 0;             // private
  void* map = nullptr;           // private: the mmap()ed region, unmapped by unmap()
  size_t map_len = 0;            // private

  Desc& slot(uint32_t idx) { return ring[idx & mask]; }
  uint32_t size() const { return mask + 1; }

  static uint32_t load_acquire(const uint32_t* p) {
    return std::atomic_ref<uint32_t>(*const_cast<uint32_t*>(p)).load(std::memory_order_acquire);
  }
  static void store_release(uint32_t* p, uint32_t v) {
    std::atomic_ref<uint32_t>(*p).store(v, std::memory_order_release);
  }

  // The kernel sets XDP_RING_NEED_WAKEUP when it will not look at the ring until we kick it
  // (sendto() for TX, poll()/recvfrom() for fill). Only meaningful with XDP_USE_NEED_WAKEUP.
  bool needs_wakeup() const {
    return std::atomic_ref<uint32_t>(*flags).load(std::memory_order_relaxed) & XDP_RING_NEED_WAKEUP;
  }

  void unmap() {
    if (map != nullptr) munmap(map, map_len);
    map = nullptr;
  }
};

// A ring user space produces into: fill (u64 frame addresses) and TX (struct xdp_desc).
// `producer` is written only by us; `consumer` only by the kernel.
template <typename Desc>
class XskProdRing {
 public:
  XskRingMap<Desc> m;

  // How many slots are free, looking at the kernel's consumer index only when the cached view
  // does not already show `want` free slots. kernel: xskq_prod_nb_free().
  uint32_t nb_free(uint32_t want) {
    uint32_t free = cached_cons_ - cached_prod_;
    if (free >= want) return free;
    cached_cons_ = XskRingMap<Desc>::load_acquire(m.consumer) + m.size();
    return cached_cons_ - cached_prod_;
  }

  // Reserves up to `n` slots starting at *idx; returns how many (all or nothing, like libxdp).
  uint32_t reserve(uint32_t n, uint32_t* idx) {
    if (nb_free(n) < n) return 0;
    *idx = cached_prod_;
    cached_prod_ += n;
    return n;
  }

  // Publishes every reserved slot: the slot writes happen before the producer store (release).
  void submit() { XskRingMap<Desc>::store_release(m.producer, cached_prod_); }

  // Slots the kernel has not consumed yet (published or reserved).
  uint32_t outstanding() const { return cached_prod_ - XskRingMap<Desc>::load_acquire(m.consumer); }

  void init_indices() {
    cached_prod_ = *m.producer;
    cached_cons_ = *m.consumer + m.size();
  }

 private:
  uint32_t cached_prod_ = 0;  // private: our producer index, ahead of *m.producer until submit()
  uint32_t cached_cons_ = 0;  // private: kernel consumer index + ring size, as last read
};

// A ring the kernel produces into: RX (struct xdp_desc) and completion (u64 frame addresses).
// `producer` is written only by the kernel; `consumer` only by us.
template <typename Desc>
class XskConsRing {
 public:
  XskRingMap<Desc> m;

  // Claims up to `n` filled slots starting at *idx; returns how many. kernel: xskq_cons_peek().
  uint32_t peek(uint32_t n, uint32_t* idx) {
    uint32_t entries = cached_prod_ - cached_cons_;
    if (entries == 0) {
      cached_prod_ = XskRingMap<Desc>::load_acquire(m.producer);
      entries = cached_prod_ - cached_cons_;
    }
    if (entries > n) entries = n;
    *idx = cached_cons_;
    cached_cons_ += entries;
    return entries;
  }

  // Hands every peeked slot back to the kernel: the slot reads happen before the store (release).
  void release() { XskRingMap<Desc>::store_release(m.consumer, cached_cons_); }

  void init_indices() {
    cached_prod_ = *m.producer;
    cached_cons_ = *m.consumer;
  }

 private:
  uint32_t cached_prod_ = 0;  // private: kernel producer index as last read
  uint32_t cached_cons_ = 0;  // private: our consumer index, ahead of *m.consumer until release()
};

}  // namespace xmit::xdp
