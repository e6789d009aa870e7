// stack/tcp/tcp_timer.cc — the retransmission and delayed-ACK timers. Kernel counterparts in tcp_timer.h.
#include "stack/tcp/tcp_timer.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>

#include "stack/tcp/tcp_ack.h"
#include "stack/tcp/tcp_conn_int.h"
#include "stack/tcp/tcp_output_ack.h"
#include "stack/tcp/tcp_recovery.h"
#include "stack/tcp/tcp_sack.h"
#include "stack/wire/tcp.h"

namespace xmit {

// kernel: tcp_model_timeout() — how long `boundary` exponential backoffs from rto_base take, ms.
static uint32_t tcp_model_timeout(uint32_t boundary, uint32_t rto_base_ms) {
  const uint32_t rto_max_ms = TCP_RTO_MAX_US / 1000;
  const uint32_t linear_backoff_thresh = static_cast<uint32_t>(std::bit_width(rto_max_ms / rto_base_ms)) - 1;
  if (boundary <= linear_backoff_thresh) return ((2u << boundary) - 1) * rto_base_ms;
  return ((2u << linear_backoff_thresh) - 1) * rto_base_ms + (boundary - linear_backoff_thresh) * rto_max_ms;
}

// kernel: retransmits_timed_out(), net/ipv4/tcp_timer.c — `timeout_ms` 0: the time `boundary`
// backoffs take from TCP_RTO_MIN (the initial RTO in SYN_SENT/SYN_RECV).
static bool retransmits_timed_out(const tcp_sock* tp, uint32_t boundary, uint32_t timeout_ms) {
  if (tp->icsk_retransmits == 0) return false;
  if (timeout_ms == 0) {
    uint32_t rto_base = (TCPF(tp->sk_state) & (TCPF(TCP_SYN_SENT) | TCPF(TCP_SYN_RECV))) ? TCP_TIMEOUT_INIT_US / 1000
                                                                                          : TCP_RTO_MIN_US / 1000;
    timeout_ms = tcp_model_timeout(boundary, rto_base);
  }
  return static_cast<int32_t>(tcp_jiffies32(tp) - tp->retrans_stamp - timeout_ms) >= 0;
}

// kernel: tcp_write_timeout() — true when the connection was given up (ETIMEDOUT, done()).
// SYN_SENT: tcp_syn_retries (+ tcp_syn_linear_timeouts) retransmissions; otherwise tcp_retries2's
// modelled time (8 retries for an orphan still backing off, tcp_orphan_retries()), or
// TCP_USER_TIMEOUT. No black-hole MTU probing, no out-of-resources orphan kill.
static bool tcp_write_timeout(tcp_sock* tp, TcpOps* ops) {
  bool expired = false;
  uint32_t retry_until;
  if (TCPF(tp->sk_state) & (TCPF(TCP_SYN_SENT) | TCPF(TCP_SYN_RECV))) {
    retry_until = tp->icsk_syn_retries != 0 ? tp->icsk_syn_retries : TCP_SYN_RETRIES;
    uint32_t max_retransmits = retry_until + (tp->sk_state == TCP_SYN_SENT ? TCP_SYN_LINEAR_TIMEOUTS : 0);
    expired = tp->icsk_retransmits >= max_retransmits;
  } else {
    retry_until = TCP_RETRIES2;
    if (tp->sock_dead) {
      const bool alive = tp->icsk_rto < TCP_RTO_MAX_US;
      retry_until = alive ? TCP_ORPHAN_RETRIES : 0;  // tcp_orphan_retries()
    }
  }
  if (!expired) expired = retransmits_timed_out(tp, retry_until, tp->icsk_user_timeout);
  if (!expired) {
    tp->timeout_rehash++;  // "if (sk_rethink_txhash(sk)) tp->timeout_rehash++" (txrehash on)
    return false;
  }
  tcp_write_err(tp, ops);  // "Has it gone just too far?"
  return true;
}

// kernel: tcp_clamp_rto_to_user_timeout() — the next RTO, no later than TCP_USER_TIMEOUT allows.
static uint32_t tcp_clamp_rto_to_user_timeout(const tcp_sock* tp) {
  if (tp->icsk_user_timeout == 0) return tp->icsk_rto;
  int32_t remaining = static_cast<int32_t>(tp->icsk_user_timeout - (tcp_jiffies32(tp) - tp->retrans_stamp));
  if (remaining <= 0) return 1000;  // "user timeout has passed; fire ASAP" (one jiffy)
  return std::min<uint32_t>(tp->icsk_rto, static_cast<uint32_t>(remaining) * 1000);
}

// kernel: tcp_retransmit_timer(), net/ipv4/tcp_timer.c
void tcp_retransmit_timer(tcp_sock* tp, TcpXmitFn xmit, TcpOps* ops) {
  if (tp->packets_out == 0 || tcp_rtx_queue_empty(tp)) return;
  // The oldest unacked segment's first transmission, kept while retransmissions go unanswered
  // (the kernel sets it in tcp_retransmit_skb() and clears it when the retransmissions are acked;
  // here: taken at the first RTO of a series, icsk_retransmits being reset by an advancing ACK).
  if (tp->icsk_retransmits == 0 && tp->sk_state != TCP_SYN_SENT)
    tp->retrans_stamp = static_cast<uint32_t>(TCP_SKB_CB(tp->rtx_queue.head)->sent_us / 1000);
  if (tcp_write_timeout(tp, ops)) return;
  tcp_enter_loss(tp);
  // kernel: tcp_update_rto_stats()
  if (tp->icsk_retransmits == 0) {
    tp->total_rto_recoveries++;
    tp->rto_stamp = tcp_jiffies32(tp);  // tcp_time_stamp_ms()
  }
  tp->icsk_retransmits++;
  tp->total_rto++;
  sk_buff* head = tp->rtx_queue.head;
  if (tcp_retransmit_skb(tp, head, 1, xmit) != 0) {  // "tcp_retransmit_skb(sk, tcp_rtx_queue_head(sk), 1)"
    // "Retransmission failed because of local congestion, Let senders fight for local
    // resources conservatively." — TCP_RESOURCE_PROBE_INTERVAL (500 ms), no backoff.
    tp->icsk_pending = ICSK_TIME_RETRANS;
    sk_reset_timer(&tp->icsk_retransmit_timer, tp->tcp_mstamp + std::min<uint32_t>(tp->icsk_rto, 500000));
    return;
  }
  tp->icsk_pending = ICSK_TIME_RETRANS;
  // out_reset_timer: "Use normal (exponential) backoff unless linear timeouts are activated." — the
  // first tcp_syn_linear_timeouts SYN retransmissions keep the initial RTO.
  if (tp->sk_state != TCP_SYN_SENT || tp->total_rto > static_cast<uint32_t>(TCP_SYN_LINEAR_TIMEOUTS)) {
    tp->icsk_backoff++;
    tp->icsk_rto = std::min<uint32_t>(tp->icsk_rto << 1, TCP_RTO_MAX_US);
  }
  sk_reset_timer(&tp->icsk_retransmit_timer, tp->tcp_mstamp + tcp_clamp_rto_to_user_timeout(tp));
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

// kernel: tcp_probe_timer() + tcp_send_probe0() (the abort after tcp_retries2 unanswered probes;
// not the orphan or TCP_USER_TIMEOUT variants)
static void tcp_probe_timer(tcp_sock* tp, TcpXmitFn xmit, TcpOps* ops) {
  if (tp->packets_out != 0 || tcp_send_head(tp) == nullptr) {
    tp->icsk_probes_out = 0;
    return;
  }
  if (tp->icsk_probes_out >= TCP_RETRIES2) {
    tcp_write_err(tp, ops);  // abort
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

// kernel: tcp_keepalive_timer(), net/ipv4/tcp_timer.c — true when it ended the connection.
static bool tcp_keepalive_timer(tcp_sock* tp, TcpXmitFn xmit, TcpOps* ops) {
  if (!tp->sock_keepopen || (TCPF(tp->sk_state) & (TCPF(TCP_CLOSE) | TCPF(TCP_SYN_SENT)))) return false;
  const uint64_t when = keepalive_time_when(tp);
  uint64_t next;
  if (tp->packets_out != 0 || !tcp_write_queue_empty(tp)) {
    next = when;  // "It is alive without keepalive 8)"
  } else {
    // keepalive_time_elapsed(): since the last data or ACK received
    const uint32_t now = tcp_jiffies32(tp);
    const uint64_t elapsed = uint64_t{std::min(now - tp->icsk_ack.lrcvtime, now - tp->rcv_tstamp)} * 1000;
    if (elapsed >= when) {
      const uint32_t probes = tp->keepalive_probes != 0 ? tp->keepalive_probes : 9;
      const uint64_t user_timeout = uint64_t{tp->icsk_user_timeout} * 1000;
      if ((user_timeout != 0 && elapsed >= user_timeout && tp->icsk_probes_out > 0) ||
          (user_timeout == 0 && tp->icsk_probes_out >= probes)) {
        tcp_send_active_reset(tp, xmit);
        tcp_write_err(tp, ops);
        return true;
      }
      if (tcp_write_wakeup(tp, xmit) <= 0) {
        tp->icsk_probes_out++;
        next = uint64_t{tp->keepalive_intvl != 0 ? tp->keepalive_intvl : 75u} * 1000000;  // keepalive_intvl_when()
      } else {
        next = 500000;  // TCP_RESOURCE_PROBE_INTERVAL: "If keepalive was lost due to local congestion, try harder."
      }
    } else {
      next = when - elapsed;  // "It is tp->rcv_tstamp + keepalive_time_when(tp)"
    }
  }
  sk_reset_timer(&tp->sk_timer, tp->tcp_mstamp + next);
  return false;
}

// kernel: tcp_delack_timer() and tcp_write_timer_handler() for ICSK_TIME_RETRANS / ICSK_TIME_PROBE0
void tcp_timers_run(tcp_sock* tp, TcpXmitFn xmit, TcpOps* ops) {
  if (tp->sk_state == TCP_LISTEN) {
    tcp_reqsk_timers_run(tp, xmit);  // kernel: reqsk_timer_handler() of each request
    return;
  }
  if (tp->sk_state == TCP_CLOSE) return;
  tcp_timer* tw = &tp->tw_timer;
  if (tw->pending && tw->expires <= tp->tcp_mstamp) {
    // kernel: tw_timer_handler() — TIME_WAIT (or an orphan's FIN_WAIT2 wait) is over.
    tw->pending = false;
    tcp_done(tp, ops);
    return;
  }
  tcp_timer* k = &tp->sk_timer;
  if (k->pending && k->expires <= tp->tcp_mstamp) {
    k->pending = false;
    if (tp->sk_state == TCP_FIN_WAIT2 && tp->sock_dead) {
      // kernel: tcp_keepalive_timer() of an orphan in FIN_WAIT2: what tcp_fin_time() leaves after
      // this wait, as a timewait sock in substate FIN_WAIT2; nothing left: reset and gone.
      if (tp->linger2 >= 0) {
        const uint64_t fin_time = tcp_fin_time(tp);
        if (fin_time > TCP_TIMEWAIT_LEN_US) {
          tcp_time_wait_fin_wait2(tp, fin_time - TCP_TIMEWAIT_LEN_US, ops);  // tp may be gone
          return;
        }
      }
      tcp_send_active_reset(tp, xmit);
      tcp_done(tp, ops);
      return;
    }
    if (tcp_keepalive_timer(tp, xmit, ops)) return;
  }
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
      tcp_probe_timer(tp, xmit, ops);
    } else if (event == ICSK_TIME_REO_TIMEOUT) {
      tcp_rack_reo_timeout(tp, xmit);
    } else {
      tcp_retransmit_timer(tp, xmit, ops);
    }
  }
}

uint64_t tcp_next_timer(const tcp_sock* tp) {
  if (tp->sk_state == TCP_LISTEN) return tcp_reqsk_next_timer(tp);
  if (tp->sk_state == TCP_CLOSE) return UINT64_MAX;
  uint64_t next = tp->icsk_retransmit_timer.pending ? tp->icsk_retransmit_timer.expires : UINT64_MAX;
  if (tp->icsk_delack_timer.pending) next = std::min(next, tp->icsk_delack_timer.expires);
  if (tp->sk_timer.pending) next = std::min(next, tp->sk_timer.expires);
  if (tp->tw_timer.pending) next = std::min(next, tp->tw_timer.expires);
  return next;
}

}  // namespace xmit
