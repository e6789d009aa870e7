// stack/tcp/tcp_sendmsg.cc — the copy path of tcp_sendmsg_locked() and tcp_push(). Kernel
// counterparts in tcp_sendmsg.h.
#include "stack/tcp/tcp_sendmsg.h"
#include "stack/tcp/tcp_user_frags.h"

#include <sys/socket.h>  // MSG_MORE, MSG_EOR, MSG_OOB

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "stack/ipv4/skb_queue.h"
#include "stack/tcp/tcp_info.h"
#include "stack/tcp/tcp_mss.h"
#include "stack/tcp/tcp_tsq.h"
#include "stack/wire/tcp.h"

namespace xmit {

// kernel: tcp_skb_entail(); the truesize is tcp_stream_alloc_skb()'s (tcp_tsq.h).
static void tcp_skb_entail(tcp_sock* tp, sk_buff* skb) {
  skb->truesize = kTcpSkbHeadTruesize;
  tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  *tcb = tcp_skb_cb{};
  tcb->seq = tcb->end_seq = tp->write_seq;
  tcb->tcp_flags = TCPHDR_ACK;
  skb_queue_tail(&tp->write_queue, skb);
  // kernel: tcp_add_write_queue_tail() — "Queue it, remembering where we must start sending."
  if (tp->write_queue.head == skb) tcp_chrono_start(tp, TCP_CHRONO_BUSY);
  if (tp->nonagle & TCP_NAGLE_PUSH) tp->nonagle &= static_cast<uint8_t>(~TCP_NAGLE_PUSH);
}


// A payload buffer with room. kernel: sk_page_frag_refill() / skb_page_frag_refill()
static bool sk_page_frag_refill(tcp_sock* tp) {
  BufPool* pool = tp->page_pool;
  if (tp->pfrag_page != nullptr) {
    if (tp->pfrag_offset < pool->buf_size()) return true;
    // "If we are the only user, reuse the page" (skb_page_frag_refill())
    if (pool->refcount(tp->pfrag_page) == 1) {
      tp->pfrag_offset = 0;
      return true;
    }
    pool->put(tp->pfrag_page);
    tp->pfrag_page = nullptr;
  }
  tp->pfrag_page = pool->alloc();
  tp->pfrag_offset = 0;
  return tp->pfrag_page != nullptr;
}

// kernel: tcp_should_autocork(), net/ipv4/tcp.c — "If a not yet filled skb is pushed, do not send
// it if we have data packets in Qdisc or NIC queues : Because TX completion will happen shortly,
// it gives a chance to coalesce future sendmsg() payload into this skb, without need for a timer,
// and with no latency trade off. As packets containing data payload have a bigger truesize than
// pure acks (dataless) packets, the last checks prevent autocorking if we only have an ACK in
// Qdisc/NIC queues, or if TX completion was delayed after we processed ACK packet."
// (tp->tsq: a socket whose owner runs no TSQ handler is never held — nothing would push it.)
bool tcp_should_autocork(const tcp_sock* tp, const sk_buff* skb, uint32_t size_goal) {
  return skb->len < size_goal && tp->sysctl_tcp_autocorking && tp->tsq != nullptr && !tcp_rtx_queue_empty(tp) &&
         tp->sk_wmem_alloc > skb->truesize && tcp_skb_can_collapse_to(skb);
}

// kernel: tcp_push(), net/ipv4/tcp.c
void tcp_push(tcp_sock* tp, int flags, uint32_t mss_now, uint8_t nonagle, uint32_t size_goal, TcpXmitFn xmit) {
  sk_buff* skb = tcp_write_queue_tail(tp);
  if (skb == nullptr) return;
  if (!(flags & MSG_MORE) || forced_push(tp)) tcp_mark_push(tp, skb);
  if (flags & MSG_OOB) tp->snd_up = tp->write_seq;  // kernel: tcp_mark_urg()
  if (tcp_should_autocork(tp, skb, size_goal)) {
    // "avoid atomic op if TSQ_THROTTLED bit is already set"
    if (!(tp->sk_tsq_flags & TSQF_THROTTLED)) {
      if (tp->net_mib != nullptr) ++tp->net_mib->TCPAutoCorking;  // LINUX_MIB_TCPAUTOCORKING
      tp->sk_tsq_flags |= TSQF_THROTTLED;
      ++tp->tsq->throttled;  // tcp_should_autocork(): tp->tsq is set
    }
    // "It is possible TX completion already happened before we set TSQ_THROTTLED." (one thread
    // here: it did not, so the test of tcp_should_autocork() holds and the data waits.)
    if (tp->sk_wmem_alloc > skb->truesize) return;
  }
  if (flags & MSG_MORE) nonagle = TCP_NAGLE_CORK;
  tcp_push_pending_frames(tp, mss_now, nonagle, xmit);
}

// kernel: tcp_remove_empty_skb() — a new skb the copy put nothing into leaves the write queue.
static void tcp_remove_empty_skb(tcp_sock* tp, sk_buff* skb) {
  if (skb == nullptr || TCP_SKB_CB(skb)->seq != TCP_SKB_CB(skb)->end_seq || skb->len != 0) return;
  skb_unlink(skb, &tp->write_queue);
  kfree_skb(skb);
}

// What the kernel adds to an skb's truesize for `len` user bytes at `p` it pins instead of
// copying: their pages. kernel: __zerocopy_sg_from_iter(): truesize = PAGE_ALIGN(copied + start)
static uint32_t zerocopy_truesize(const uint8_t* p, uint32_t len) {
  constexpr uintptr_t kPage = 4096;
  const uintptr_t start = reinterpret_cast<uintptr_t>(p) % kPage;
  return static_cast<uint32_t>((start + len + kPage - 1) & ~(kPage - 1));
}

// kernel: tcp_sendmsg_locked(), net/ipv4/tcp.c (the copy branch; with `uarg` the MSG_ZEROCOPY
// branch's skb rules over the same copy). `copy_to(to, n)` puts the next n bytes at `to` and
// returns how many it put (fewer only at a pull source's end: the send stops there).
// `zc_from` (with `uarg`, on a device that reads user memory: tp->sg_user): the bytes are not
// copied but referenced where they are, as kUser fragments holding `uarg` (the kernel's
// "zc == MSG_ZEROCOPY" branch, skb_zerocopy_iter_stream()).
template <typename CopyTo>
static int tcp_sendmsg_core(tcp_sock* tp, CopyTo&& copy_to, size_t size, int flags, uint32_t dst_mtu, TcpXmitFn xmit,
                            ubuf_info* uarg, const uint8_t* zc_from = nullptr) {
  // "Wait for a connection to finish." — sk_stream_wait_connect(), non-blocking.
  if (!(TCPF(tp->sk_state) & (TCPF(TCP_ESTABLISHED) | TCPF(TCP_CLOSE_WAIT)))) {
    if (tp->sk_err != 0) {  // sock_error()
      int err = tp->sk_err;
      tp->sk_err = 0;
      return -err;
    }
    if (!(TCPF(tp->sk_state) & (TCPF(TCP_SYN_SENT) | TCPF(TCP_SYN_RECV)))) return -EPIPE;
    return -EAGAIN;
  }
  // "if (sk->sk_err || (sk->sk_shutdown & SEND_SHUTDOWN)) goto do_error;" with err = -EPIPE
  if (tp->sk_err != 0 || (tp->sk_shutdown & SEND_SHUTDOWN)) return -EPIPE;
  uint32_t size_goal = 0;
  uint32_t mss_now = tcp_send_mss(tp, dst_mtu, flags, &size_goal);
  size_t left = size;
  uint32_t copied = 0;
  int err = 0;
  bool src_end = false;
  while (left != 0) {
    sk_buff* skb = tcp_write_queue_tail(tp);
    int copy = skb != nullptr ? static_cast<int>(size_goal) - static_cast<int>(skb->len) : 0;
    bool need_new = copy <= 0 || !tcp_skb_can_collapse_to(skb);
    // kernel: skb_zerocopy_iter_stream() — "An skb can only point to one uarg": -EEXIST on a tail
    // that holds another send's object, then tcp_mark_push() and a new segment.
    if (!need_new && uarg != nullptr && skb_zcopy(skb) != nullptr && skb_zcopy(skb) != uarg) {
      tcp_mark_push(tp, skb);
      need_new = true;
    }
    for (;;) {
      if (need_new) {  // new_segment:
        skb = tp->skb_pool->alloc_skb();
        if (skb == nullptr) {
          err = -EAGAIN;
          break;
        }
        skb_reserve(skb, kTcpHeadroom);
        tcp_skb_entail(tp, skb);
        copy = static_cast<int>(size_goal);
      }
      // "Try to append data to the end of skb."
      if (static_cast<size_t>(copy) > left) copy = static_cast<int>(left);
      if (zc_from != nullptr) {
        // kernel: skb_zerocopy_iter_stream() -> __zerocopy_sg_from_iter(): the caller's bytes as
        // fragments (one per contiguous run here, not per page); full fragments are -EMSGSIZE
        // with nothing appended: tcp_mark_push() and a new segment. The skb holds `uarg` (one
        // reference per fragment and its destructor_arg), so the memory stays the device's until
        // the last skb is freed — for TCP, once ACKed.
        skb_frag frag = skb_frag_user(const_cast<uint8_t*>(zc_from), static_cast<uint32_t>(copy), uarg);
        if (!skb_can_coalesce(skb, frag) && skb_shinfo(skb)->nr_frags >= tp->sg_max_frags) {
          tcp_mark_push(tp, skb);
          need_new = true;
          continue;  // goto new_segment
        }
        net_zcopy_get(uarg);  // the fragment's reference (dropped again on a merge)
        skb_append_frag(skb, frag);
        skb->truesize += zerocopy_truesize(zc_from, static_cast<uint32_t>(copy));
        zc_from += copy;
        skb_zcopy_set(skb, uarg);
        break;
      }
      if (!sk_page_frag_refill(tp)) {
        err = -EAGAIN;
        break;
      }
      copy = std::min<int>(copy, static_cast<int>(tp->page_pool->buf_size() - tp->pfrag_offset));
      skb_frag frag = skb_frag_pool(tp->page_pool, tp->pfrag_page + tp->pfrag_offset, static_cast<uint32_t>(copy));
      if (!skb_can_coalesce(skb, frag) && skb_shinfo(skb)->nr_frags >= MAX_SKB_FRAGS) {
        tcp_mark_push(tp, skb);
        need_new = true;
        continue;  // goto new_segment
      }
      const size_t got = copy_to(frag.data, static_cast<size_t>(copy));
      if (got < static_cast<size_t>(copy)) {  // a pull source's end
        src_end = true;
        if (got == 0) {
          tcp_remove_empty_skb(tp, skb);
          skb = nullptr;
          break;
        }
        copy = static_cast<int>(got);
        skb_frag_size_set(&frag, static_cast<uint32_t>(got));
      }
      tp->page_pool->get(tp->pfrag_page);  // the fragment's reference (dropped again on a merge)
      skb_append_frag(skb, frag);
      skb->truesize += static_cast<uint32_t>(copy);  // kernel: skb_copy_to_page_nocache() -> skb_len_add()
      tp->pfrag_offset += static_cast<uint32_t>(copy);
      skb_zcopy_set(skb, uarg);  // kernel: skb_zerocopy_iter_stream()'s skb_zcopy_set()
      break;
    }
    if (err != 0 || skb == nullptr) break;
    if (copied == 0) TCP_SKB_CB(skb)->tcp_flags &= static_cast<uint8_t>(~TCPHDR_PSH);
    tp->write_seq += static_cast<uint32_t>(copy);
    TCP_SKB_CB(skb)->end_seq += static_cast<uint32_t>(copy);
    TCP_SKB_CB(skb)->tcp_gso_segs = 0;  // kernel: tcp_skb_pcount_set(skb, 0)
    left -= static_cast<size_t>(copy);
    copied += static_cast<uint32_t>(copy);
    if (left == 0 || src_end) {
      if (flags & MSG_EOR) TCP_SKB_CB(skb)->eor = true;
      break;
    }
    if (skb->len < size_goal || (flags & MSG_OOB)) continue;
    if (forced_push(tp)) {
      tcp_mark_push(tp, skb);
      tcp_push_pending_frames(tp, mss_now, TCP_NAGLE_PUSH, xmit);
    } else if (skb == tcp_send_head(tp)) {
      tcp_push_one(tp, mss_now, xmit);
    }
  }
  if (err != 0) {
    // out_err: a new skb no byte went into leaves the queue (kernel: tcp_remove_empty_skb()).
    tcp_remove_empty_skb(tp, tcp_write_queue_tail(tp));
    // wait_for_space: push what we have, then (non-blocking) give up.
    if (copied != 0) tcp_push(tp, flags & ~MSG_MORE, mss_now, TCP_NAGLE_PUSH, size_goal, xmit);
    return copied != 0 ? static_cast<int>(copied) : err;
  }
  if (copied != 0) tcp_push(tp, flags, mss_now, tp->nonagle, size_goal, xmit);
  return static_cast<int>(copied);
}

int tcp_sendmsg_locked(tcp_sock* tp, const void* buf, size_t size, int flags, uint32_t dst_mtu, TcpXmitFn xmit,
                       ubuf_info* uarg) {
  const uint8_t* from = static_cast<const uint8_t*>(buf);
  auto copy_to = [&from](uint8_t* to, size_t n) {
    std::memcpy(to, from, n);
    from += n;
    return n;
  };
  // kernel: "if (sk->sk_route_caps & NETIF_F_SG) zc = MSG_ZEROCOPY;"
  const uint8_t* zc_from = uarg != nullptr && tp->sg_user ? from : nullptr;
  return tcp_sendmsg_core(tp, copy_to, size, flags, dst_mtu, xmit, uarg, zc_from);
}

int tcp_sendmsg_locked_pull(tcp_sock* tp, PullSource* src, size_t size, int flags, uint32_t dst_mtu, TcpXmitFn xmit) {
  auto copy_to = [src](uint8_t* to, size_t n) { return pull_from_source(src, to, n); };
  return tcp_sendmsg_core(tp, copy_to, size, flags, dst_mtu, xmit, nullptr);
}

// kernel: tcp_push_pending_frames(sk), include/net/tcp.h
static void tcp_push_pending(tcp_sock* tp, uint32_t dst_mtu, TcpXmitFn xmit) {
  if (tcp_send_head(tp) != nullptr) tcp_push_pending_frames(tp, tcp_current_mss(tp, dst_mtu), tp->nonagle, xmit);
}

// kernel: __tcp_sock_set_cork(), net/ipv4/tcp.c
void tcp_sock_set_cork(tcp_sock* tp, bool on, uint32_t dst_mtu, TcpXmitFn xmit) {
  if (on) {
    tp->nonagle |= TCP_NAGLE_CORK;
    return;
  }
  tp->nonagle &= static_cast<uint8_t>(~TCP_NAGLE_CORK);
  if (tp->nonagle & TCP_NAGLE_OFF) tp->nonagle |= TCP_NAGLE_PUSH;
  tcp_push_pending(tp, dst_mtu, xmit);
}

// kernel: __tcp_sock_set_nodelay(), net/ipv4/tcp.c
void tcp_sock_set_nodelay(tcp_sock* tp, bool on, uint32_t dst_mtu, TcpXmitFn xmit) {
  if (on) {
    tp->nonagle |= TCP_NAGLE_OFF | TCP_NAGLE_PUSH;
    tcp_push_pending(tp, dst_mtu, xmit);
  } else {
    tp->nonagle &= static_cast<uint8_t>(~TCP_NAGLE_OFF);
  }
}

// kernel: tcp_send_fin(), net/ipv4/tcp_output.c
int tcp_send_fin(tcp_sock* tp, uint32_t dst_mtu, TcpXmitFn xmit) {
  sk_buff* tskb = tcp_write_queue_tail(tp);
  if (tskb != nullptr) {
    // "Optimization, tack on the FIN if we have one skb in write queue and this skb was not yet sent"
    TCP_SKB_CB(tskb)->tcp_flags |= TCPHDR_FIN;
    TCP_SKB_CB(tskb)->end_seq++;
    tp->write_seq++;
  } else {
    tskb = tp->skb_pool->alloc_skb();
    if (tskb == nullptr) return -ENOBUFS;  // (the kernel forces the allocation)
    skb_reserve(tskb, kTcpHeadroom);
    tcp_skb_entail(tp, tskb);
    TCP_SKB_CB(tskb)->tcp_flags |= TCPHDR_FIN;
    TCP_SKB_CB(tskb)->end_seq++;
    tp->write_seq++;
  }
  tcp_push_pending_frames(tp, tcp_current_mss(tp, dst_mtu), TCP_NAGLE_OFF, xmit);
  return 0;
}

void tcp_write_queue_purge(tcp_sock* tp) {
  skb_queue_purge(&tp->write_queue);
  skb_queue_purge(&tp->rtx_queue);
  sk_page_frag_release(tp);
}

void sk_page_frag_release(tcp_sock* tp) {
  if (tp->pfrag_page != nullptr) tp->page_pool->put(tp->pfrag_page);
  tp->pfrag_page = nullptr;
  tp->pfrag_offset = 0;
}

int tcp_copy_user_frags(tcp_sock* tp) noexcept {
  int left = 0;
  for (SkbQueue* q : {&tp->rtx_queue, &tp->write_queue}) {
    for (sk_buff* skb = q->head; skb != nullptr; skb = skb->next)
      if (skb_has_user_frags(skb) && skb_copy_ubufs(skb, tp->page_pool) != 0) ++left;
  }
  return left;
}

}  // namespace xmit
