// stack/tcp/tcp_timer.cc — the retransmission and delayed-ACK timers. Kernel counterparts in tcp_timer.h.
#include "stack/tcp/tcp_timer.h"

#include <algorithm>
#include <cstdint>

#include "stack/tcp/tcp_ack.h"
#include "stack/tcp/tcp_output_ack.h"
#include "stack/tcp/tcp_recovery.h"

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
    sk_reset_timer(&tp->icsk_retransmit_timer, tp->tcp_mstamp + std::min<uint32_t>(tp->icsk_rto, 500000));
    return;
  }
  // out_reset_timer: "Use normal (exponential) backoff".
  tp->icsk_backoff++;
  tp->icsk_rto = std::min<uint32_t>(tp->icsk_rto << 1, TCP_RTO_MAX_US);
  sk_reset_timer(&tp->icsk_retransmit_timer, tp->tcp_mstamp + tp->icsk_rto);
}

// kernel: tcp_delack_timer() and tcp_write_timer_handler() for ICSK_TIME_RETRANS
void tcp_timers_run(tcp_sock* tp, TcpXmitFn xmit) {
  tcp_timer* d = &tp->icsk_delack_timer;
  if (d->pending && d->expires <= tp->tcp_mstamp) {
    d->pending = false;
    tcp_delack_timer_handler(tp, xmit);
  }
  tcp_timer* t = &tp->icsk_retransmit_timer;
  if (t->pending && t->expires <= tp->tcp_mstamp) {
    t->pending = false;
    tcp_retransmit_timer(tp, xmit);
  }
}

uint64_t tcp_next_timer(const tcp_sock* tp) {
  uint64_t next = tp->icsk_retransmit_timer.pending ? tp->icsk_retransmit_timer.expires : UINT64_MAX;
  if (tp->icsk_delack_timer.pending) next = std::min(next, tp->icsk_delack_timer.expires);
  return next;
}

}  // namespace xmit
