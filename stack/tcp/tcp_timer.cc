// stack/tcp/tcp_timer.cc — the retransmission and delayed-ACK timers. Kernel counterparts in tcp_timer.h.
#include "stack/tcp/tcp_timer.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>

#include "stack/tcp/tcp_ack.h"
#include "stack/tcp/tcp_output_ack.h"
#include "stack/tcp/tcp_recovery.h"
#include "stack/wire/tcp.h"

namespace xmit {

// kernel: tcp_retransmit_timer(), net/ipv4/tcp_timer.c
void tcp_retransmit_timer(tcp_sock* tp, TcpXmitFn xmit) {
  if (tp->packets_out == 0 || tcp_rtx_queue_empty(tp)) return;
  tcp_enter_loss(tp);
  tp->icsk_retransmits++;
  sk_buff* head = tp->rtx_queue.head;
  if (tcp_retransmit_skb(tp, head, xmit) != 0) {
    // "Retransmission failed because of local congestion, Let senders fight for local
    // resources conservatively." — TCP_RESOURCE_PROBE_INTERVAL (500 ms), no backoff.
    tp->icsk_pending = ICSK_TIME_RETRANS;
    sk_reset_timer(&tp->icsk_retransmit_timer, tp->tcp_mstamp + std::min<uint32_t>(tp->icsk_rto, 500000));
    return;
  }
  tp->icsk_pending = ICSK_TIME_RETRANS;
  // out_reset_timer: "Use normal (exponential) backoff".
  tp->icsk_backoff++;
  tp->icsk_rto = std::min<uint32_t>(tp->icsk_rto << 1, TCP_RTO_MAX_US);
  sk_reset_timer(&tp->icsk_retransmit_timer, tp->tcp_mstamp + tp->icsk_rto);
}

// kernel: tcp_xmit_probe_skb() — a segment the peer must answer with an ACK (and its window): no
// data, seq snd_una - 1 ("Use a previous sequence. This should cause the other end to send an
// ack.").
static int tcp_xmit_probe_skb(tcp_sock* tp, TcpXmitFn xmit) {
  sk_buff* skb = tp->skb_pool->alloc_skb();
  if (skb == nullptr) return -ENOBUFS;
  skb_reserve(skb, kTcpHeadroom);
  tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  *tcb = tcp_skb_cb{};
  tcb->seq = tcb->end_seq = tp->snd_una - 1;
  tcb->tcp_flags = TCPHDR_ACK;
  tcb->tcp_gso_segs = 1;
  int err = tcp_transmit_skb(tp, skb, xmit);
  kfree_skb(skb);
  return err;
}

// kernel: tcp_write_wakeup() — send the head if the window now takes it, else a window probe.
// Simplified: a head that only partly fits is not cut to the window (tcp_fragment()): a probe.
static int tcp_write_wakeup(tcp_sock* tp, TcpXmitFn xmit) {
  sk_buff* skb = tcp_send_head(tp);
  if (skb != nullptr && before(TCP_SKB_CB(skb)->seq, tcp_wnd_end(tp))) {
    uint32_t before_nxt = tp->snd_nxt;
    tcp_write_xmit(tp, tp->mss_cache, TCP_NAGLE_PUSH, true, xmit);
    if (tp->snd_nxt != before_nxt) return 0;
  }
  return tcp_xmit_probe_skb(tp, xmit);
}

// kernel: tcp_probe_timer() + tcp_send_probe0() (no max-probes abort: see tcp_timer.h)
static void tcp_probe_timer(tcp_sock* tp, TcpXmitFn xmit) {
  if (tp->packets_out != 0 || tcp_send_head(tp) == nullptr) {
    tp->icsk_probes_out = 0;
    return;
  }
  int err = tcp_write_wakeup(tp, xmit);
  if (tp->packets_out != 0 || tcp_write_queue_empty(tp)) {
    // "Cancel probe timer, if it is not required." (the data went: the RTO is armed)
    tp->icsk_probes_out = 0;
    tp->icsk_backoff = 0;
    return;
  }
  tp->icsk_probes_out++;
  uint64_t timeout;
  if (err <= 0) {
    if (tp->icsk_backoff < 15) tp->icsk_backoff++;  // sysctl_tcp_retries2
    timeout = tcp_probe0_when(tp);
  } else {
    timeout = 500000;  // TCP_RESOURCE_PROBE_INTERVAL
  }
  tp->icsk_pending = ICSK_TIME_PROBE0;
  sk_reset_timer(&tp->icsk_retransmit_timer, tp->tcp_mstamp + timeout);
}

// kernel: tcp_delack_timer() and tcp_write_timer_handler() for ICSK_TIME_RETRANS / ICSK_TIME_PROBE0
void tcp_timers_run(tcp_sock* tp, TcpXmitFn xmit, TcpOps* ops) {
  (void)ops;
  tcp_timer* d = &tp->icsk_delack_timer;
  if (d->pending && d->expires <= tp->tcp_mstamp) {
    d->pending = false;
    tcp_delack_timer_handler(tp, xmit);
  }
  tcp_timer* t = &tp->icsk_retransmit_timer;
  if (t->pending && t->expires <= tp->tcp_mstamp) {
    t->pending = false;
    uint8_t event = tp->icsk_pending;
    tp->icsk_pending = 0;
    if (event == ICSK_TIME_PROBE0) {
      tcp_probe_timer(tp, xmit);
    } else {
      tcp_retransmit_timer(tp, xmit);
    }
  }
}

uint64_t tcp_next_timer(const tcp_sock* tp) {
  uint64_t next = tp->icsk_retransmit_timer.pending ? tp->icsk_retransmit_timer.expires : UINT64_MAX;
  if (tp->icsk_delack_timer.pending) next = std::min(next, tp->icsk_delack_timer.expires);
  return next;
}

}  // namespace xmit
