// stack/ipv4/sk_wmem.h — a socket's send buffer: what each skb it builds charges to sk_wmem_alloc,
// the release when the device completes the frame, and the kernel's tests against sk_sndbuf.
// Kernel counterparts: skb_set_owner_w(), sock_wfree(), sock_writeable(), sk_free() (net/core/sock.c,
// include/net/sock.h) and SKB_TRUESIZE() / __alloc_skb() (include/linux/skbuff.h, net/core/skbuff.c).
#pragma once

// The charge is what the kernel would charge for the same packet, not the size of our buffers: our
// skbs are fixed 2 KiB pool buffers and never match the kernel's slab sizes, but SO_SNDBUF is
// expressed in the kernel's unit, so a program sees EAGAIN after the same number of datagrams.
// sk_wmem_alloc is the kernel's refcount: 1 while the socket is open (sk_free() drops it) plus the
// charge of every skb not yet freed; the socket's memory is released (sk_destruct) at zero, so an
// skb still on the device never points at a freed socket.

#include <cstdint>

#include "stack/ipv4/inet_sock.h"
#include "stack/skb/sk_buff.h"

namespace xmit {

// kernel: SOCK_MIN_SNDBUF = 2 * TCP_SKB_MIN_TRUESIZE = 2 * (2048 + SKB_DATA_ALIGN(sizeof(sk_buff))),
// the smallest SO_SNDBUF getsockopt reports (x86_64).
inline constexpr uint32_t SOCK_MIN_SNDBUF = 4608;

// skb->truesize of __alloc_skb(size) on x86_64 (Linux 6.x):
//   SKB_HEAD_ALIGN(size) = SKB_DATA_ALIGN(size) + SKB_DATA_ALIGN(sizeof(skb_shared_info) = 320);
//   kmalloc_reserve() takes that from skb_small_head_cache when it fits SKB_SMALL_HEAD_CACHE_SIZE
//   (576 on the 6.18 kernel this was measured on; it follows MAX_HEADER, i.e. the kernel config),
//   else rounds it up to the kmalloc size class (a power of two from 1 KiB on);
//   __finalize_skb_around() then sets truesize = SKB_TRUESIZE(that - 320) = that + 256
//   (SKB_DATA_ALIGN(sizeof(struct sk_buff)) = 256).
// Checked against SIOCOUTQ of a kernel UDP socket behind a stalled qdisc: 10 B of payload 832,
// 500 B 1280, 1000 B and 1472 B 2304, 1473 B (two fragments) 2304 + 832.
uint32_t skb_alloc_truesize(uint32_t size);

// kernel: sk_wmem_alloc_get() — the bytes charged (what SIOCOUTQ reports).
inline uint32_t sk_wmem_alloc_get(const InetSock& sk) { return sk.sk_wmem_alloc - 1; }
// The bytes charged and since released (freed skbs), while the socket is open.
inline uint64_t sk_wmem_released(const InetSock& sk) { return sk.sk_wmem_charged - sk_wmem_alloc_get(sk); }

// kernel: sock_writeable() — "significant progress" is possible: under half the buffer in use. A
// writer blocked for space is woken only then (sock_def_write_space_wfree()).
inline bool sock_writeable(const InetSock& sk) { return sk.sk_wmem_alloc < (sk.sk_sndbuf >> 1); }

// Charges `truesize` to `sk` until the skb is freed. kernel: skb_set_owner_w()
void skb_set_owner_w(sk_buff* skb, InetSock* sk, uint32_t truesize);

// Adds bytes to an owned skb's charge (payload appended in page fragments).
// kernel: skb->truesize += copy; refcount_add(copy, &sk->sk_wmem_alloc) in __ip_append_data()
void skb_add_truesize(sk_buff* skb, uint32_t delta);

// The destructor: uncharges, and frees a closed socket with its last skb. kernel: sock_wfree()
void sock_wfree(sk_buff* skb);

// The socket is closed: drops the open reference. True when nothing is charged any more and the
// caller frees the socket now; false when the last sock_wfree() will call sk->sk_destruct.
// kernel: sk_free()
bool sk_free(InetSock* sk);

}  // namespace xmit
