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

// Puts `newsk` right after `prev` (which is in `q`). kernel: __skb_queue_after()
inline void skb_queue_after(SkbQueue* q, sk_buff* prev, sk_buff* newsk) {
  newsk->prev = prev;
  newsk->next = prev->next;
  if (prev->next != nullptr) {
    prev->next->prev = newsk;
  } else {
    q->tail = newsk;
  }
  prev->next = newsk;
  ++q->qlen;
}

// Puts `newsk` right before `next` (which is in `q`). kernel: __skb_queue_before()
inline void skb_queue_before(SkbQueue* q, sk_buff* next, sk_buff* newsk) {
  newsk->next = next;
  newsk->prev = next->prev;
  if (next->prev != nullptr) {
    next->prev->next = newsk;
  } else {
    q->head = newsk;
  }
  next->prev = newsk;
  ++q->qlen;
}

// Takes `skb` out of `q`. kernel: __skb_unlink()
inline void skb_unlink(sk_buff* skb, SkbQueue* q) {
  if (skb->prev != nullptr) {
    skb->prev->next = skb->next;
  } else {
    q->head = skb->next;
  }
  if (skb->next != nullptr) {
    skb->next->prev = skb->prev;
  } else {
    q->tail = skb->prev;
  }
  skb->next = skb->prev = nullptr;
  --q->qlen;
}

// Frees every skb. kernel: __skb_queue_purge()
inline void skb_queue_purge(SkbQueue* q) {
  while (sk_buff* skb = skb_dequeue(q)) kfree_skb(skb);
}

}  // namespace xmit
