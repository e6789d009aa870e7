// stack/tcp/tcp_output_ack.cc — ACK generation and the receive window. Kernel counterparts in
// tcp_output_ack.h.
#include "stack/tcp/tcp_output_ack.h"
#include "stack/tcp/tcp_tsq.h"

#include <algorithm>

#include "stack/wire/tcp.h"

namespace xmit {

// kernel: tcp_incr_quickack(), net/ipv4/tcp_input.c
void tcp_incr_quickack(tcp_sock* tp, uint32_t max_quickacks) {
  uint32_t quickacks = tp->icsk_ack.rcv_mss != 0 ? tp->rcv_wnd / (2 * tp->icsk_ack.rcv_mss) : 0;
  if (quickacks == 0) quickacks = 2;
  quickacks = std::min(quickacks, max_quickacks);
  if (quickacks > tp->icsk_ack.quick) tp->icsk_ack.quick = static_cast<uint8_t>(quickacks);
}

// kernel: tcp_enter_quickack_mode(), net/ipv4/tcp_input.c
void tcp_enter_quickack_mode(tcp_sock* tp, uint32_t max_quickacks) {
  tcp_incr_quickack(tp, max_quickacks);
  inet_csk_exit_pingpong_mode(tp);
  tp->icsk_ack.ato = TCP_ATO_MIN;
}

// kernel: tcp_initialize_rcv_mss(), net/ipv4/tcp_input.c
void tcp_initialize_rcv_mss(tcp_sock* tp) {
  uint32_t hint = std::min<uint32_t>(tp->advmss, tp->mss_cache);
  hint = std::min(hint, tp->rcv_wnd / 2);
  hint = std::min(hint, TCP_MSS_DEFAULT);
  hint = std::max(hint, TCP_MIN_MSS);
  tp->icsk_ack.rcv_mss = hint;
}

// kernel: __tcp_select_window(), net/ipv4/tcp_output.c (sysctl_tcp_shrink_window = 0, no memory
// pressure, rcv_ssthresh taken as unlimited: see tcp_sock.h). tcp_space() and tcp_full_space() are
// rcvbuf - rmem_alloc and rcvbuf, in payload bytes.
uint32_t tcp_select_window_core(tcp_sock* tp) {
  int mss = static_cast<int>(tp->icsk_ack.rcv_mss);
  int free_space = static_cast<int>(tp->rcvbuf) - static_cast<int>(tp->rmem_alloc);
  int allowed_space = static_cast<int>(tp->rcvbuf);
  int full_space = std::min(static_cast<int>(tp->window_clamp), allowed_space);
  if (free_space < 0) free_space = 0;
  if (mss > full_space) {
    mss = full_space;
    if (mss <= 0) return 0;
  }
  // "do not allow window to shrink"
  if (free_space < (full_space >> 1)) {
    tp->icsk_ack.quick = 0;
    // "free_space might become our new window, make sure we don't increase it due to wscale."
    free_space &= ~((1 << tp->rx_opt.rcv_wscale) - 1);
    // "if free space is less than mss estimate, or is below 1/16th of the maximum allowed, try to
    // move to zero-window"
    if (free_space < (allowed_space >> 4) || free_space < mss) return 0;
  }
  int window;
  if (tp->rx_opt.rcv_wscale != 0) {
    // "Advertise enough space so that it won't get scaled away."
    int unit = 1 << tp->rx_opt.rcv_wscale;
    window = (free_space + unit - 1) & ~(unit - 1);
  } else {
    window = static_cast<int>(tp->rcv_wnd);
    // "Get the largest window that is a nice multiple of mss. ... If our current window offering
    // is within 1 mss of the free space we just keep it."
    if (window <= free_space - mss || window > free_space) {
      window = (free_space / mss) * mss;
    } else if (mss == full_space && free_space > window + (full_space >> 1)) {
      window = free_space;
    }
  }
  return static_cast<uint32_t>(window);
}

// kernel: tcp_event_ack_sent(), tcp_dec_quickack_mode(), net/ipv4/tcp_output.c
void tcp_event_ack_sent(tcp_sock* tp) {
  if (tp->icsk_ack.quick != 0) {
    // "How many ACKs S/ACKing new data have we sent?"
    uint32_t pkts = inet_csk_ack_scheduled(tp) ? 1 : 0;
    if (pkts >= tp->icsk_ack.quick) {
      tp->icsk_ack.quick = 0;
      // "Leaving quickack mode we deflate ATO."
      tp->icsk_ack.ato = TCP_ATO_MIN;
    } else {
      tp->icsk_ack.quick = static_cast<uint8_t>(tp->icsk_ack.quick - pkts);
    }
  }
  tp->icsk_ack.pending = 0;  // kernel: inet_csk_clear_xmit_timer(sk, ICSK_TIME_DACK)
  sk_stop_timer(&tp->icsk_delack_timer);
}

// kernel: __tcp_send_ack(), net/ipv4/tcp_output.c
void tcp_send_ack(tcp_sock* tp, TcpXmitFn xmit) {
  sk_buff* buff = tp->skb_pool->alloc_skb();
  if (buff == nullptr) {
    // "If we have no memory, let the delayed-ACK timer retry."
    inet_csk_schedule_ack(tp);
    tp->icsk_ack.ato = TCP_ATO_MIN;
    inet_csk_reset_dack_timer(tp, tcp_jiffies32(tp) + TCP_DELACK_MAX);
    return;
  }
  skb_reserve(buff, kTcpHeadroom);
  tcp_skb_cb* tcb = TCP_SKB_CB(buff);
  *tcb = tcp_skb_cb{};
  // kernel: tcp_acceptable_seq() — snd_nxt unless the peer's window shrank below it.
  tcb->seq = tcb->end_seq = !after(tp->snd_nxt, tcp_wnd_end(tp)) ? tp->snd_nxt : tcp_wnd_end(tp);
  tcb->tcp_flags = TCPHDR_ACK;
  tcb->tcp_gso_segs = 1;
  skb_set_tcp_pure_ack(buff);
  // "Send it off, this clears delayed acks for us." (tcp_transmit_skb() -> tcp_event_ack_sent())
  // Not cloned: nothing keeps a pure ACK (kernel: __tcp_transmit_skb(sk, buff, 0, ...)).
  tcp_transmit_skb_core(tp, buff, /*clone_it=*/false, xmit);
}

// kernel: tcp_send_delayed_ack(), net/ipv4/tcp_output.c
void tcp_send_delayed_ack(tcp_sock* tp, TcpXmitFn xmit) {
  uint32_t ato = tp->icsk_ack.ato;
  if (ato > TCP_DELACK_MIN) {
    uint32_t max_ato = 500;  // HZ / 2
    if (inet_csk_in_pingpong_mode(tp) || (tp->icsk_ack.pending & ICSK_ACK_PUSHED)) max_ato = TCP_DELACK_MAX;
    // "If some rtt estimate is known, use it to bound delayed ack."
    if (tp->srtt_us != 0) {
      uint32_t rtt = std::max(((tp->srtt_us >> 3) + 999) / 1000, TCP_DELACK_MIN);  // usecs_to_jiffies()
      if (rtt < max_ato) max_ato = rtt;
    }
    ato = std::min(ato, max_ato);
  }
  ato = std::min(ato, TCP_DELACK_MAX);  // icsk_delack_max
  // "Stay within the limit we were given"
  uint32_t now = tcp_jiffies32(tp);
  uint32_t timeout = now + ato;
  // "Use new timeout only if there wasn't a older one earlier."
  if (tp->icsk_ack.pending & ICSK_ACK_TIMER) {
    // "If delack timer is about to expire, send ACK now."
    if (static_cast<int32_t>(tp->icsk_ack.timeout - (now + (ato >> 2))) <= 0) {
      tcp_send_ack(tp, xmit);
      return;
    }
    if (static_cast<int32_t>(timeout - tp->icsk_ack.timeout) >= 0) timeout = tp->icsk_ack.timeout;
  }
  inet_csk_schedule_ack(tp);
  inet_csk_reset_dack_timer(tp, timeout);
}

// kernel: tcp_delack_timer_handler(), net/ipv4/tcp_timer.c
void tcp_delack_timer_handler(tcp_sock* tp, TcpXmitFn xmit) {
  if (!(tp->icsk_ack.pending & ICSK_ACK_TIMER)) return;
  tp->icsk_ack.pending &= static_cast<uint8_t>(~ICSK_ACK_TIMER);
  if (!inet_csk_ack_scheduled(tp)) return;
  if (!inet_csk_in_pingpong_mode(tp)) {
    // "Delayed ACK missed: inflate ATO."
    tp->icsk_ack.ato = std::min(tp->icsk_ack.ato << 1, tp->icsk_rto / 1000);
  } else {
    // "Delayed ACK missed: leave pingpong mode and deflate ATO."
    inet_csk_exit_pingpong_mode(tp);
    tp->icsk_ack.ato = TCP_ATO_MIN;
  }
  tcp_send_ack(tp, xmit);
}

}  // namespace xmit
