// stack/tcp/tcp_tsq.h — what a socket's skbs cost while the device holds them, and the deferred push
// their TX completion runs: the part of TCP Small Queues that autocorking needs. Kernel
// counterparts: the sk_wmem_alloc charge of __tcp_transmit_skb(), tcp_wfree(), __sock_wfree(),
// tcp_tsq_write(), tcp_tsq_handler(), tcp_tasklet_func() (net/ipv4/tcp_output.c), sk_free().
#pragma once

// The charge is the kernel's truesize, not the size of our buffers, because tcp_should_autocork()
// compares it with the tail skb's: a new write-queue skb is tcp_stream_alloc_skb(sk, 0), i.e.
// alloc_skb_fclone(MAX_TCP_HEADER): SKB_HEAD_ALIGN(320) = 640 bytes round up to kmalloc-1k, so
// skb_end_offset() = 1024 - 320 and truesize = SKB_TRUESIZE(704) = 704 + 256 + 320 = 1280 (the
// formula of skb_alloc_truesize(), stack/ipv4/sk_wmem.h); each byte copied in adds one. A pure ACK,
// alloc_skb(MAX_TCP_HEADER), is 1280 too. A transmitted clone carries the original's truesize.
// TSQ's own limit on the bytes at the device is tcp_small_queue_check() below; it and autocorking
// both throttle a socket (TSQF_THROTTLED) until a completion queues it for tcp_tsq_write().
// TCP_TSQ_DEFERRED (a completion that finds the socket owned by the user) has no counterpart: the
// owner always runs the queued sockets itself, at a point where it may transmit, which is what the
// kernel's tcp_release_cb() does for a deferred one.

#include <cstdint>

#include "stack/tcp/tcp_output.h"
#include "stack/tcp/tcp_sock.h"

namespace xmit {

inline constexpr uint32_t kTcpSkbHeadTruesize = 1280;  // see above

// "We do not want pure acks influencing TCP Small Queues or fq/pacing too much": a pure ACK is
// charged 2 bytes. kernel: skb_set_tcp_pure_ack(), skb_is_tcp_pure_ack(), include/net/tcp.h
inline void skb_set_tcp_pure_ack(sk_buff* skb) { skb->truesize = 2; }
inline bool skb_is_tcp_pure_ack(const sk_buff* skb) { return skb->truesize == 2; }

// The sockets a TX completion found throttled, oldest last: the owner runs tcp_tsq_write() for each
// at a point where it may transmit (a destructor may not: the completion can be reaped inside a
// transmit). kernel: the per-CPU struct tsq_tasklet and its list of sockets.
struct tsq_tasklet {
  tcp_sock* head = nullptr;
  // Run by the last tcp_wfree() of a socket tcp_sk_free() left with skbs at the device.
  void (*sk_destruct)(tsq_tasklet* tsq, tcp_sock* tp) = nullptr;
  void* owner = nullptr;  // for sk_destruct
  // Sockets with TSQF_THROTTLED set: data held for a TX completion. The owner looks for
  // completions itself while this is not 0 on a device whose completions wake no one
  // (Netdev::tx_completion_wakes()). Not the kernel's: its TX interrupt needs no count.
  uint32_t throttled = 0;
};

// Charges the segment about to go to the device to `tp` until it is freed (TX completion).
// `pure_ack`: uncharged by __sock_wfree() (no TSQ), else by tcp_wfree().
// kernel: __tcp_transmit_skb(): skb_orphan(); skb->destructor = skb_is_tcp_pure_ack(skb) ?
// __sock_wfree : tcp_wfree; refcount_add(skb->truesize, &sk->sk_wmem_alloc)
void tcp_skb_set_owner_w(tcp_sock* tp, sk_buff* skb, bool pure_ack);
// kernel: sk_wmem_alloc_get() — the truesize of this socket's skbs at the device.
inline uint32_t tcp_wmem_alloc_get(const tcp_sock* tp) { return tp->sk_wmem_alloc - 1; }

// kernel: tcp_wfree() — uncharges; a socket autocorking throttled (TSQF_THROTTLED) is queued once
// (TSQF_QUEUED) on tp->tsq for tcp_tsq_write().
void tcp_wfree(sk_buff* skb);
// kernel: __sock_wfree()
void tcp_sock_wfree(sk_buff* skb);

// The next queued socket (TSQF_QUEUED cleared), or nullptr. kernel: tcp_tasklet_func()'s list walk
tcp_sock* tsq_pop(tsq_tasklet* tsq);
// Takes `tp` off the list if it is queued (the socket is going away).
void tsq_unlink(tsq_tasklet* tsq, tcp_sock* tp);

// What a completion releases: the lost segments cwnd allows, then new data.
// kernel: tcp_tsq_write() (tcp_tsq_handler() with the socket not owned by the user: the owner
// calls this under the stack's lock)
void tcp_tsq_write(tcp_sock* tp, uint32_t dst_mtu, TcpXmitFn xmit);

// TCP Small Queues: true when `skb` must wait — this socket's bytes at the device (sk_wmem_alloc)
// exceed max(2 * skb->truesize, sk_pacing_rate >> sk_pacing_shift), capped by
// net.ipv4.tcp_limit_output_bytes and doubled `factor` times (1 for retransmits). Then the socket
// is throttled (TSQF_THROTTLED) and a TX completion queues it for tcp_tsq_write() — unless the
// retransmit queue is empty or holds one skb ("Always send skb if rtx queue is empty or has one
// skb"), or nobody runs the TSQ handler for it (tp->tsq null: it would never be pushed).
// kernel: tcp_small_queue_check(), tcp_rtx_queue_empty_or_single_skb() (net/ipv4/tcp_output.c)
bool tcp_small_queue_check(tcp_sock* tp, const sk_buff* skb, unsigned factor);

// The socket is being freed: drops the open reference and the TSQ state. True when nothing is
// charged any more (free it now); false when the last tcp_wfree() calls tsq->sk_destruct.
// kernel: sk_free()
bool tcp_sk_free(tcp_sock* tp);

}  // namespace xmit
