// stack/ipv4/skb_queue.h — a doubly linked queue of sk_buffs through skb->next/prev (the corked
// packet train). Kernel counterpart: struct sk_buff_head and __skb_queue_tail() & co, include/linux/skbuff.h.
#pragma once

#include <cstdint>

#include "stack/skb/sk_buff.h"

namespace xmit {

// Not thread-safe (the kernel's __ versions, called under the socket lock).
struct SkbQueue {
  sk_buff* head = nullptr;
  sk_buff* tail = nullptr;
  uint32_t qlen = 0;
};

inline bool skb_queue_empty(const SkbQueue& q) { return q.qlen == 0; }
inline sk_buff* skb_peek_tail(const SkbQueue& q) { return q.tail; }

inline void skb_queue_tail(SkbQueue* q, sk_buff* skb) {  // kernel: __skb_queue_tail()
  skb->next = nullptr;
  skb->prev = q->tail;
  if (q->tail != nullptr) {
    q->tail->next = skb;
  } else {
    q->head = skb;
  }
  q->tail = skb;
  ++q->qlen;
}

inline sk_buff* skb_dequeue(SkbQueue* q) {  // kernel: __skb_dequeue()
  sk_buff* skb = q->head;
  if (skb == nullptr) return nullptr;
  q->head = skb->next;
  if (q->head != nullptr) {
    q->head->prev = nullptr;
  } else {
    q->tail = nullptr;
  }
  skb->next = skb->prev = nullptr;
  --q->qlen;
  return skb;
}

// Frees every skb. kernel: __skb_queue_purge()
inline void skb_queue_purge(SkbQueue* q) {
  while (sk_buff* skb = skb_dequeue(q)) kfree_skb(skb);
}

// Frees a list linked through skb->next. kernel: kfree_skb_list()
inline void kfree_skb_list(sk_buff* skb) {
  while (skb != nullptr) {
    sk_buff* next = skb->next;
    skb->next = nullptr;
    kfree_skb(skb);
    skb = next;
  }
}

}  // namespace xmit
