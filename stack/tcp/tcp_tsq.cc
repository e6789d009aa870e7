// stack/tcp/tcp_tsq.cc — the device's hold on a socket's skbs and the push their completion runs
// (see tcp_tsq.h). kernel: net/ipv4/tcp_output.c
#include "stack/tcp/tcp_tsq.h"

#include <algorithm>

#include "stack/tcp/tcp_mss.h"
#include "stack/tcp/tcp_recovery.h"

namespace xmit {

void tcp_skb_set_owner_w(tcp_sock* tp, sk_buff* skb, bool pure_ack) {
  if (skb->truesize == 0) skb->truesize = kTcpSkbHeadTruesize;  // alloc_skb(MAX_TCP_HEADER)
  skb->sk = tp;
  skb->destructor = pure_ack ? tcp_sock_wfree : tcp_wfree;
  tp->sk_wmem_alloc += skb->truesize;
}

// The open reference is gone and this was the last skb: the owner frees the socket.
static void tcp_wmem_put(tcp_sock* tp, uint32_t truesize) {
  tp->sk_wmem_alloc -= truesize;
  if (tp->sk_wmem_alloc == 0 && tp->tsq != nullptr && tp->tsq->sk_destruct != nullptr) {
    tp->tsq->sk_destruct(tp->tsq, tp);
  }
}

void tcp_sock_wfree(sk_buff* skb) { tcp_wmem_put(static_cast<tcp_sock*>(skb->sk), skb->truesize); }

void tcp_wfree(sk_buff* skb) {
  auto* tp = static_cast<tcp_sock*>(skb->sk);
  // "Keep one reference on sk_wmem_alloc. Will be released by sk_free() from here or
  // tcp_tasklet_func()" — one thread here: the charge goes now, the open reference stays.
  const uint8_t oval = tp->sk_tsq_flags;
  if ((oval & TSQF_THROTTLED) && !(oval & TSQF_QUEUED) && tp->tsq != nullptr) {
    // "nval = (oval & ~TSQF_THROTTLED) | TSQF_QUEUED" and the socket on the tasklet's list.
    tp->sk_tsq_flags = static_cast<uint8_t>((oval & ~TSQF_THROTTLED) | TSQF_QUEUED);
    --tp->tsq->throttled;
    tp->tsq_node = tp->tsq->head;
    tp->tsq->head = tp;
  }
  tcp_wmem_put(tp, skb->truesize);
}

tcp_sock* tsq_pop(tsq_tasklet* tsq) {
  tcp_sock* tp = tsq->head;
  if (tp == nullptr) return nullptr;
  tsq->head = tp->tsq_node;
  tp->tsq_node = nullptr;
  tp->sk_tsq_flags &= static_cast<uint8_t>(~TSQF_QUEUED);  // "clear_bit(TSQ_QUEUED, &sk->sk_tsq_flags)"
  return tp;
}

void tsq_unlink(tsq_tasklet* tsq, tcp_sock* tp) {
  if (!(tp->sk_tsq_flags & TSQF_QUEUED)) return;
  for (tcp_sock** p = &tsq->head; *p != nullptr; p = &(*p)->tsq_node) {
    if (*p == tp) {
      *p = tp->tsq_node;
      break;
    }
  }
  tp->tsq_node = nullptr;
  tp->sk_tsq_flags &= static_cast<uint8_t>(~TSQF_QUEUED);
}

// kernel: tcp_rtx_queue_empty_or_single_skb()
static bool tcp_rtx_queue_empty_or_single_skb(const tcp_sock* tp) {
  // "No skb in the rtx queue." / "Only one skb in rtx queue."
  return tp->rtx_queue.head == nullptr || tp->rtx_queue.head->next == nullptr;
}

// kernel: tcp_small_queue_check()
bool tcp_small_queue_check(tcp_sock* tp, const sk_buff* skb, unsigned factor) {
  uint64_t limit = std::max<uint64_t>(2ull * skb->truesize, tp->sk_pacing_rate >> tp->sk_pacing_shift);
  // "if (sk->sk_pacing_status == SK_PACING_NONE)": always here (tcp_sock.h)
  limit = std::min<uint64_t>(limit, tp->sysctl_tcp_limit_output_bytes);
  limit <<= factor;
  if (tp->sk_wmem_alloc > limit) {
    // "Always send skb if rtx queue is empty or has one skb. No need to wait for TX completion to
    // call us back, after softirq schedule. This helps when TX completions are delayed too much."
    if (tcp_rtx_queue_empty_or_single_skb(tp)) return false;
    if (tp->tsq == nullptr) return false;  // nobody would run tcp_tsq_write(): never held
    if (!(tp->sk_tsq_flags & TSQF_THROTTLED)) {
      tp->sk_tsq_flags |= TSQF_THROTTLED;  // "set_bit(TSQ_THROTTLED, &sk->sk_tsq_flags)"
      ++tp->tsq->throttled;
    }
    // "It is possible TX completion already happened before we set TSQ_THROTTLED, so we must
    // test again the condition." (one thread: nothing can have completed in between)
    return true;
  }
  return false;
}

// kernel: tcp_tsq_write()
void tcp_tsq_write(tcp_sock* tp, uint32_t dst_mtu, TcpXmitFn xmit) {
  if (!(TCPF(tp->sk_state) & (TCPF(TCP_ESTABLISHED) | TCPF(TCP_FIN_WAIT1) | TCPF(TCP_CLOSING) |
                              TCPF(TCP_CLOSE_WAIT) | TCPF(TCP_LAST_ACK))))
    return;
  if (tp->lost_out > tp->retrans_out && tp->snd_cwnd > tcp_packets_in_flight(tp)) tcp_xmit_retransmit_queue(tp, xmit);
  tcp_write_xmit(tp, tcp_current_mss(tp, dst_mtu), tp->nonagle, false, xmit);
}

bool tcp_sk_free(tcp_sock* tp) {
  if (tp->tsq != nullptr) {
    tsq_unlink(tp->tsq, tp);
    if (tp->sk_tsq_flags & TSQF_THROTTLED) --tp->tsq->throttled;
  }
  tp->sk_tsq_flags = 0;
  return --tp->sk_wmem_alloc == 0;
}

}  // namespace xmit
