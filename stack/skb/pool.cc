// stack/skb/pool.cc — BufPool (one mmap'd region, LIFO free list, refcounts) and SkbPool.
// Kernel counterparts: page_pool_alloc_pages()/page_pool_put_page(), kmem_cache_alloc(skbuff_cache).
#include "stack/skb/pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <new>

#include "stack/skb/sk_buff.h"

namespace xmit {

int BufPool::create(uint32_t nr_bufs, uint32_t buf_size, std::unique_ptr<BufPool>* out) noexcept {
  if (nr_bufs == 0 || buf_size < 64 || buf_size > 65536 || (buf_size & (buf_size - 1)) != 0) {
    return -EINVAL;
  }
  std::unique_ptr<BufPool> p(new (std::nothrow) BufPool());
  if (!p) return -ENOMEM;
  p->shift_ = static_cast<uint32_t>(__builtin_ctz(buf_size));
  p->nr_bufs_ = nr_bufs;
  p->size_ = static_cast<size_t>(nr_bufs) << p->shift_;
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  p->map_len_ = (p->size_ + page - 1) / page * page;
  // Pre-faulted, so the fast path takes no page faults; page aligned, as UMEM registration needs.
  void* m = mmap(nullptr, p->map_len_, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (m == MAP_FAILED) return -ENOMEM;
  p->base_ = static_cast<uint8_t*>(m);
  p->refcnt_.reset(new (std::nothrow) uint32_t[nr_bufs]());
  p->free_.reset(new (std::nothrow) uint32_t[nr_bufs]);
  if (!p->refcnt_ || !p->free_) return -ENOMEM;  // ~BufPool unmaps
  for (uint32_t i = 0; i < nr_bufs; ++i) p->free_[i] = nr_bufs - 1 - i;  // buffer 0 comes first
  p->nr_free_ = nr_bufs;
  *out = std::move(p);
  return 0;
}

BufPool::~BufPool() {
  if (base_ != nullptr) munmap(base_, map_len_);
}

uint8_t* BufPool::alloc() noexcept {
  if (nr_free_ == 0) return nullptr;
  uint32_t i = free_[--nr_free_];
  assert(refcnt_[i] == 0);
  refcnt_[i] = 1;
  return buf(i);
}

void BufPool::put(const uint8_t* p) noexcept {
  uint32_t i = index_of(p);
  assert(contains(p) && refcnt_[i] > 0);
  if (--refcnt_[i] == 0) free_[nr_free_++] = i;
}

int SkbPool::create(uint32_t nr_skbs, BufPool* heads, std::unique_ptr<SkbPool>* out) noexcept {
  if (nr_skbs == 0 || heads == nullptr) return -EINVAL;
  std::unique_ptr<SkbPool> p(new (std::nothrow) SkbPool());
  if (!p) return -ENOMEM;
  p->skbs_.reset(new (std::nothrow) sk_buff[nr_skbs]);
  if (!p->skbs_) return -ENOMEM;
  p->heads_ = heads;
  p->nr_skbs_ = nr_skbs;
  for (uint32_t i = nr_skbs; i-- > 0;) p->free_struct(&p->skbs_[i]);
  *out = std::move(p);
  return 0;
}

SkbPool::~SkbPool() = default;

sk_buff* SkbPool::take_struct() noexcept {
  sk_buff* skb = free_list_;
  if (skb == nullptr) return nullptr;
  free_list_ = skb->next;
  --nr_free_;
  return skb;
}

sk_buff* SkbPool::alloc_struct() noexcept {
  sk_buff* skb = take_struct();
  if (skb == nullptr) return nullptr;
  // Field by field rather than `*skb = sk_buff{}`: the fragment array needs no reset.
  skb->next = skb->prev = nullptr;
  skb->head = skb->data = skb->tail = skb->end = nullptr;
  skb->len = skb->data_len = 0;
  skb->mac_header = skb->network_header = skb->transport_header = kSkbHeaderUnset;
  skb->ip_summed = CHECKSUM_NONE;
  skb->csum_start = skb->csum_offset = 0;
  skb->csum = 0;
  skb->protocol = 0;
  skb->users = 1;
  skb->truesize = 0;
  skb->sk = nullptr;
  skb->destructor = nullptr;
  std::memset(skb->cb, 0, sizeof skb->cb);
  skb->shinfo.nr_frags = 0;
  skb->shinfo.gso_size = skb->shinfo.gso_segs = 0;
  skb->shinfo.destructor_arg = nullptr;
  skb->owner = this;
  skb->head_pool = nullptr;
  return skb;
}

void SkbPool::free_struct(sk_buff* skb) noexcept {
  skb->next = free_list_;
  free_list_ = skb;
  ++nr_free_;
}

sk_buff* SkbPool::alloc_skb() noexcept {
  sk_buff* skb = alloc_struct();
  if (skb == nullptr) return nullptr;
  uint8_t* buf = heads_->alloc();
  if (buf == nullptr) {
    free_struct(skb);
    return nullptr;
  }
  skb->head = skb->data = skb->tail = buf;
  skb->end = buf + heads_->buf_size();
  skb->head_pool = heads_;
  return skb;
}

}  // namespace xmit
