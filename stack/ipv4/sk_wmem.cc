// stack/ipv4/sk_wmem.cc — send-buffer accounting (see sk_wmem.h). kernel: net/core/sock.c
#include "stack/ipv4/sk_wmem.h"

#include <bit>

namespace xmit {

namespace {

constexpr uint32_t kSkbStruct = 256;           // SKB_DATA_ALIGN(sizeof(struct sk_buff)), 232 B
constexpr uint32_t kShinfo = 320;              // SKB_DATA_ALIGN(sizeof(struct skb_shared_info))
constexpr uint32_t kSmallHeadCacheSize = 576;  // SKB_SMALL_HEAD_CACHE_SIZE (see sk_wmem.h)

constexpr uint32_t skb_data_align(uint32_t x) { return (x + 63) & ~63u; }  // SMP_CACHE_BYTES 64

}  // namespace

uint32_t skb_alloc_truesize(uint32_t size) {
  uint32_t obj = skb_data_align(size) + kShinfo;  // kernel: SKB_HEAD_ALIGN()
  // kernel: kmalloc_reserve(): the small-head cache, else kmalloc_size_roundup() (every class
  // above 576 B is a power of two; above 8 KiB the page allocator's orders are too).
  obj = obj <= kSmallHeadCacheSize ? kSmallHeadCacheSize : std::bit_ceil(obj);
  return (obj - kShinfo) + kSkbStruct + kShinfo;  // kernel: SKB_TRUESIZE(size - shinfo)
}

void skb_set_owner_w(sk_buff* skb, InetSock* sk, uint32_t truesize) {
  skb->sk = sk;
  skb->destructor = sock_wfree;
  skb->truesize = truesize;
  sk->sk_wmem_alloc += truesize;
  sk->sk_wmem_charged += truesize;
}

void skb_add_truesize(sk_buff* skb, uint32_t delta) {
  skb->truesize += delta;
  if (skb->destructor == sock_wfree) {
    auto* sk = static_cast<InetSock*>(skb->sk);
    sk->sk_wmem_alloc += delta;
    sk->sk_wmem_charged += delta;
  }
}

void sock_wfree(sk_buff* skb) {
  auto* sk = static_cast<InetSock*>(skb->sk);
  sk->sk_wmem_alloc -= skb->truesize;
  // kernel: sk_write_space() would wake writers here; ours re-check after their bounded wait.
  if (sk->sk_wmem_alloc == 0 && sk->sk_destruct != nullptr) sk->sk_destruct(sk->sk_destruct_arg);
}

bool sk_free(InetSock* sk) { return --sk->sk_wmem_alloc == 0; }

}  // namespace xmit
