// stack/tcp/tcp_input.cc — the established receive path. Kernel counterparts and what is
// simplified: tcp_input.h.
#include "stack/tcp/tcp_input.h"

#include <algorithm>

#include "stack/tcp/tcp_ack.h"
#include "stack/tcp/tcp_conn_int.h"
#include "stack/tcp/tcp_input_parse.h"
#include "stack/tcp/tcp_mss.h"
#include "stack/tcp/tcp_options.h"
#include "stack/tcp/tcp_output_ack.h"
#include "stack/tcp/tcp_sack.h"
#include "stack/tcp/tcp_urg.h"
#include "stack/wire/tcp.h"

namespace xmit {

inline constexpr int TCP_PAWS_WINDOW = 1;  // kernel: include/net/tcp.h

static void tcp_drop(tcp_sock* tp, sk_buff* skb, bool charged) {
  if (charged) tp->rmem_alloc -= skb->len;
  kfree_skb(skb);
}

// kernel: tcp_prune_ofo_queue() — frees out-of-order segments from the highest sequence down until
// `need` more bytes fit in rcvbuf, stopping at `in_skb`'s sequence when one is being inserted
// (nullptr: in-order data, which may take everything held out of order). The SACK blocks go with
// them (tcp_sack_reset()). Returns true when something was freed. (The kernel first tries to
// collapse the queues, tcp_collapse(); here each segment is its own skb and nothing collapses.)
static bool tcp_prune_ofo_queue(tcp_sock* tp, const sk_buff* in_skb, uint32_t need) {
  SkbQueue* q = &tp->out_of_order_queue;
  bool pruned = false;
  while (q->tail != nullptr && tp->rmem_alloc + need > tp->rcvbuf) {
    sk_buff* last = q->tail;
    if (in_skb != nullptr && !after(TCP_SKB_CB(last)->seq, TCP_SKB_CB(in_skb)->seq)) break;
    skb_unlink(last, q);
    tcp_drop(tp, last, true);
    pruned = true;
  }
  if (pruned && tp->rx_opt.sack_ok) tcp_sack_reset(tp);
  return pruned;
}

// Whether `skb` may be charged to the receive buffer: it fits in rcvbuf, or it ends inside the
// window we offered. The kernel's offered window is a fraction of sk_rcvbuf (tcp_win_from_space()),
// so data inside it always finds memory; here rcvbuf counts payload and the window offers all of
// it, rounded up to the window scale, so the last in-window segment can overshoot by less than
// one scale unit: refusing it would stall the sender until its RTO.
static bool tcp_rmem_admits(const tcp_sock* tp, const sk_buff* skb) {
  return tp->rmem_alloc + skb->len <= tp->rcvbuf || !after(TCP_SKB_CB(skb)->end_seq, tp->rcv_wup + tp->rcv_wnd);
}

static void tcp_queue_rcv(tcp_sock* tp, sk_buff* skb) {  // kernel: tcp_queue_rcv() (no coalescing)
  skb_queue_tail(&tp->receive_queue, skb);
  // kernel: tcp_rcv_nxt_update()
  tp->bytes_received += TCP_SKB_CB(skb)->end_seq - tp->rcv_nxt;
  tp->rcv_nxt = TCP_SKB_CB(skb)->end_seq;
}

// kernel: tcp_measure_rcv_mss() (the last_seg_size / TCP_REMNANT refinement is left out)
static void tcp_measure_rcv_mss(tcp_sock* tp, const sk_buff* skb) {
  uint32_t len = skb->len;
  if (len >= tp->icsk_ack.rcv_mss) {
    tp->icsk_ack.rcv_mss = std::min<uint32_t>(len, tp->advmss);
  } else {
    // "Otherwise, we make more careful check taking into account, that SACKs block is variable."
    if (tp->icsk_ack.pending & ICSK_ACK_PUSHED) tp->icsk_ack.pending |= ICSK_ACK_PUSHED2;
    tp->icsk_ack.pending |= ICSK_ACK_PUSHED;
  }
}

// kernel: tcp_event_data_recv(), net/ipv4/tcp_input.c — the delayed-ACK engine's clock.
static void tcp_event_data_recv(tcp_sock* tp, const sk_buff* skb) {
  inet_csk_schedule_ack(tp);
  tcp_measure_rcv_mss(tp, skb);
  uint32_t now = tcp_jiffies32(tp);
  if (tp->icsk_ack.ato == 0) {
    // "The _first_ data packet received, initialize delayed ACK engine."
    tcp_incr_quickack(tp, TCP_MAX_QUICKACKS);
    tp->icsk_ack.ato = TCP_ATO_MIN;
  } else {
    uint32_t m = now - tp->icsk_ack.lrcvtime;
    if (m <= TCP_ATO_MIN / 2) {
      // "The fastest case is the first."
      tp->icsk_ack.ato = (tp->icsk_ack.ato >> 1) + TCP_ATO_MIN / 2;
    } else if (m < tp->icsk_ack.ato) {
      tp->icsk_ack.ato = (tp->icsk_ack.ato >> 1) + m;
      tp->icsk_ack.ato = std::min(tp->icsk_ack.ato, tp->icsk_rto / 1000);
    } else if (m > tp->icsk_rto / 1000) {
      // "Too long gap. Apparently sender failed to restart window, so that we send ACKs quickly."
      tcp_incr_quickack(tp, TCP_MAX_QUICKACKS);
    }
  }
  tp->icsk_ack.lrcvtime = now;
}

// kernel: tcp_fin(): RCV_SHUTDOWN; ESTABLISHED -> CLOSE_WAIT (pingpong), FIN_WAIT1 -> CLOSING and
// FIN_WAIT2 -> TIME_WAIT with an ACK at once (the kernel's tcp_send_ack() here: ICSK_ACK_NOW, sent by
// the caller's tcp_ack_snd_check() in the same call); the out-of-order queue purged ("It _is_
// possible, that we have something out-of-order _after_ FIN.").
static void tcp_fin(tcp_sock* tp) {
  inet_csk_schedule_ack(tp);
  tp->sk_shutdown |= RCV_SHUTDOWN;
  tp->sock_done = true;
  switch (tp->sk_state) {
    case TCP_SYN_RECV:
    case TCP_ESTABLISHED:
      tcp_set_state(tp, TCP_CLOSE_WAIT);  // "Move to CLOSE_WAIT"
      inet_csk_enter_pingpong_mode(tp);
      break;
    case TCP_FIN_WAIT1:
      // "This case occurs when a simultaneous close happens, we must ack the received FIN and
      // enter the CLOSING state."
      tp->icsk_ack.pending |= ICSK_ACK_NOW;
      tcp_set_state(tp, TCP_CLOSING);
      break;
    case TCP_FIN_WAIT2:
      // "Received a FIN -- send ACK and enter TIME_WAIT."
      tp->icsk_ack.pending |= ICSK_ACK_NOW;
      tcp_time_wait(tp);
      break;
    default:  // CLOSE_WAIT, CLOSING: "Received a retransmission of the FIN, do nothing."; LAST_ACK
      break;
  }
  while (sk_buff* skb = skb_dequeue(&tp->out_of_order_queue)) tcp_drop(tp, skb, true);
  if (tcp_is_sack(tp)) tcp_sack_reset(tp);
}

// kernel: tcp_ofo_queue() — moves what now continues rcv_nxt to the receive queue.
static void tcp_ofo_queue(tcp_sock* tp) {
  uint32_t dsack_high = tp->rcv_nxt;
  while (sk_buff* skb = tp->out_of_order_queue.head) {
    if (after(TCP_SKB_CB(skb)->seq, tp->rcv_nxt)) break;
    if (before(TCP_SKB_CB(skb)->seq, dsack_high)) {
      uint32_t dsack = dsack_high;
      if (before(TCP_SKB_CB(skb)->end_seq, dsack_high)) dsack_high = TCP_SKB_CB(skb)->end_seq;
      tcp_dsack_extend(tp, TCP_SKB_CB(skb)->seq, dsack);
    }
    skb_unlink(skb, &tp->out_of_order_queue);
    if (!after(TCP_SKB_CB(skb)->end_seq, tp->rcv_nxt)) {  // covered by what came in order
      tcp_drop(tp, skb, true);
      continue;
    }
    bool fin = TCP_SKB_CB(skb)->tcp_flags & TCPHDR_FIN;
    tcp_queue_rcv(tp, skb);
    if (fin) {
      tcp_fin(tp);  // "tcp_fin() purges whole OFO queue, so we must end this loop right now."
      break;
    }
  }
}

// kernel: tcp_data_queue_ofo() — sorted insert; a segment all of whose bytes are held is dropped,
// held segments the new one covers are dropped; partial overlaps are kept (tcp_recvmsg() reads
// from copied_seq whatever the skb's start).
static void tcp_data_queue_ofo(tcp_sock* tp, sk_buff* skb) {
  // kernel: tcp_try_rmem_schedule() -> tcp_prune_ofo_queue(sk, skb): room is made only by freeing
  // segments above this one.
  if (!tcp_rmem_admits(tp, skb) && (!tcp_prune_ofo_queue(tp, skb, skb->len) || !tcp_rmem_admits(tp, skb))) {
    kfree_skb(skb);
    return;
  }
  tp->rcv_ooopack += std::max<uint32_t>(1, skb_shinfo(skb)->gso_segs);
  inet_csk_schedule_ack(tp);
  uint32_t seq = TCP_SKB_CB(skb)->seq, end_seq = TCP_SKB_CB(skb)->end_seq;
  SkbQueue* q = &tp->out_of_order_queue;
  // "In the typical case, we are adding an skb to the end of the list."
  sk_buff* pos = q->tail;
  while (pos != nullptr && before(seq, TCP_SKB_CB(pos)->seq)) pos = pos->prev;
  // pos: the last held skb starting at or before seq (or none).
  if (pos != nullptr && before(seq, TCP_SKB_CB(pos)->end_seq)) {
    if (!after(end_seq, TCP_SKB_CB(pos)->end_seq)) {
      kfree_skb(skb);  // "All the bits are present. Drop."
      tcp_dsack_set(tp, seq, end_seq);
      tcp_sack_new_ofo_skb(tp, seq, end_seq);  // add_sack
      return;
    }
    if (after(seq, TCP_SKB_CB(pos)->seq)) {
      tcp_dsack_set(tp, seq, TCP_SKB_CB(pos)->end_seq);  // "Partial overlap."
    } else {
      // "skb's seq == skb1's seq and skb covers skb1. Replace skb1 with skb."
      tcp_dsack_extend(tp, TCP_SKB_CB(pos)->seq, TCP_SKB_CB(pos)->end_seq);
      sk_buff* prev = pos->prev;
      skb_unlink(pos, q);
      tcp_drop(tp, pos, true);
      pos = prev;
    }
  }
  if (pos != nullptr) {
    skb_queue_after(q, pos, skb);
  } else if (q->head != nullptr) {
    skb_queue_before(q, q->head, skb);
  } else {
    skb_queue_tail(q, skb);
  }
  tp->rmem_alloc += skb->len;
  // merge_right: "Remove other segments covered by skb."
  while (sk_buff* next = skb->next) {
    if (!after(end_seq, TCP_SKB_CB(next)->seq)) break;
    if (before(end_seq, TCP_SKB_CB(next)->end_seq)) {
      tcp_dsack_extend(tp, TCP_SKB_CB(next)->seq, end_seq);
      break;
    }
    tcp_dsack_extend(tp, TCP_SKB_CB(next)->seq, TCP_SKB_CB(next)->end_seq);
    skb_unlink(next, q);
    tcp_drop(tp, next, true);
  }
  tcp_sack_new_ofo_skb(tp, seq, end_seq);  // add_sack
  // "For non sack flows, do not grow window to force DUPACK and trigger fast retransmit."
}

// kernel: tcp_data_queue(), net/ipv4/tcp_input.c
void tcp_data_queue(tcp_sock* tp, sk_buff* skb) {
  const tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  if (tcb->seq == tcb->end_seq) {  // a pure ACK
    kfree_skb(skb);
    return;
  }
  if (tcb->seq == tp->rcv_nxt || (before(tcb->seq, tp->rcv_nxt) && after(tcb->end_seq, tp->rcv_nxt))) {
    // "Partial packet, seq < rcv_next < end_seq"
    if (before(tcb->seq, tp->rcv_nxt)) tcp_dsack_set(tp, tcb->seq, tp->rcv_nxt);
    if (tcp_receive_window(tp) == 0) {
      // "Some stacks are known to send bare FIN packets in a loop even if we send RWIN 0"
      if (!(skb->len == 0 && (tcb->tcp_flags & TCPHDR_FIN))) {
        tcp_enter_quickack_mode(tp, TCP_MAX_QUICKACKS);  // out_of_window
        inet_csk_schedule_ack(tp);
        kfree_skb(skb);
        return;
      }
    }
    // queue_and_out: "Ok. In sequence. In window." (a partial packet, seq < rcv_nxt < end_seq,
    // is queued whole; tcp_recvmsg() skips its old bytes)
    // kernel: tcp_try_rmem_schedule(): the in-order segment takes the room of what is held out of
    // order (tcp_prune_queue() -> tcp_prune_ofo_queue()) before it is dropped.
    if (!tcp_rmem_admits(tp, skb)) tcp_prune_ofo_queue(tp, nullptr, skb->len);
    if (!tcp_rmem_admits(tp, skb) && !skb_queue_empty(tp->receive_queue) && skb->len != 0) {
      tp->icsk_ack.pending |= ICSK_ACK_NOW;
      inet_csk_schedule_ack(tp);
      kfree_skb(skb);
      return;
    }
    tp->rmem_alloc += skb->len;
    bool fin = tcb->tcp_flags & TCPHDR_FIN;
    bool has_data = skb->len != 0;
    if (has_data) tcp_event_data_recv(tp, skb);
    tcp_queue_rcv(tp, skb);
    if (fin) tcp_fin(tp);
    if (!skb_queue_empty(tp->out_of_order_queue)) {
      tcp_ofo_queue(tp);
      // "RFC5681. 4.2. SHOULD send immediate ACK, when gap in queue is filled."
      if (skb_queue_empty(tp->out_of_order_queue)) tp->icsk_ack.pending |= ICSK_ACK_NOW;
    }
    if (tp->num_sacks != 0) tcp_sack_remove(tp);
    return;
  }
  if (!after(tcb->end_seq, tp->rcv_nxt)) {
    // "A retransmit, 2nd most common case.  Force an immediate ack."
    tcp_dsack_set(tp, tcb->seq, tcb->end_seq);
    tcp_enter_quickack_mode(tp, TCP_MAX_QUICKACKS);
    inet_csk_schedule_ack(tp);
    kfree_skb(skb);
    return;
  }
  // "Out of window. F.e. zero window probe."
  if (!before(tcb->seq, tp->rcv_nxt + tcp_receive_window(tp))) {
    tcp_enter_quickack_mode(tp, TCP_MAX_QUICKACKS);
    inet_csk_schedule_ack(tp);
    kfree_skb(skb);
    return;
  }
  tcp_data_queue_ofo(tp, skb);
}

// kernel: __tcp_ack_snd_check(sk, ofo_possible = 1), net/ipv4/tcp_input.c (sk_rcvlowat = 1)
static void tcp_ack_snd_check_core(tcp_sock* tp, TcpXmitFn xmit) {
  // "More than one full frame received..." "... and right edge of window advances far enough."
  if (((tp->rcv_nxt - tp->rcv_wup) > tp->icsk_ack.rcv_mss &&
       (tp->rcv_nxt - tp->copied_seq < 1 || (tp->rcvbuf != 0 ? tcp_select_window_core(tp) : tp->rcv_wnd) >= tp->rcv_wnd)) ||
      // "We ACK each frame or..."
      tcp_in_quickack_mode(tp) ||
      // "Protocol state mandates a one-time immediate ACK"
      (tp->icsk_ack.pending & ICSK_ACK_NOW)) {
    tcp_send_ack(tp, xmit);
    return;
  }
  if (skb_queue_empty(tp->out_of_order_queue)) {
    tcp_send_delayed_ack(tp, xmit);
    return;
  }
  // Out-of-order data held: without SACK there is no ACK compression, ACK now.
  tcp_send_ack(tp, xmit);
}

// kernel: tcp_ack_snd_check()
void tcp_ack_snd_check(tcp_sock* tp, TcpXmitFn xmit) {
  if (!inet_csk_ack_scheduled(tp)) return;
  tcp_ack_snd_check_core(tp, xmit);
}

// kernel: __tcp_oow_rate_limited()
static bool oow_rate_limited_core(uint32_t now, uint32_t* last_oow_ack_time) {
  if (*last_oow_ack_time != 0 && static_cast<int32_t>(now - *last_oow_ack_time) < static_cast<int32_t>(TCP_INVALID_RATELIMIT_MS))
    return true;
  *last_oow_ack_time = now == 0 ? 1 : now;
  return false;
}
bool __tcp_oow_rate_limited(tcp_sock* tp) { return oow_rate_limited_core(tcp_jiffies32(tp), &tp->last_oow_ack_time); }

// kernel: tcp_oow_rate_limited()
bool tcp_oow_rate_limited(const sk_buff* skb, uint32_t now_ms, uint32_t* last_oow_ack_time) {
  const tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  if (tcb->seq != tcb->end_seq && !(tcb->tcp_flags & TCPHDR_SYN)) return false;
  return oow_rate_limited_core(now_ms, last_oow_ack_time);
}
bool tcp_oow_rate_limited(tcp_sock* tp, const sk_buff* skb) {
  return tcp_oow_rate_limited(skb, tcp_jiffies32(tp), &tp->last_oow_ack_time);
}

// kernel: tcp_send_dupack()
void tcp_send_dupack(tcp_sock* tp, const sk_buff* skb, TcpXmitFn xmit) {
  const tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  if (tcb->end_seq != tcb->seq && before(tcb->seq, tp->rcv_nxt)) {
    tcp_enter_quickack_mode(tp, TCP_MAX_QUICKACKS);
    tcp_dsack_set(tp, tcb->seq, after(tcb->end_seq, tp->rcv_nxt) ? tp->rcv_nxt : tcb->end_seq);
  }
  tcp_send_ack(tp, xmit);
}

// kernel: tcp_paws_discard() — RFC 7323 §5: an older TSval than ts_recent by more than a tick.
static bool tcp_paws_discard(const tcp_sock* tp) {
  return !tcp_paws_check(tp, TCP_PAWS_WINDOW);
}

// kernel: tcp_rcv_established(), net/ipv4/tcp_input.c (the slow path), with tcp_validate_incoming()
void tcp_rcv_established(tcp_sock* tp, sk_buff* skb, uint32_t dst_mtu, TcpXmitFn xmit) {
  const tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  const uint32_t hdr_len = (skb->data[12] >> 4) * 4u;
  uint8_t sack_off = 0;
  tcp_parse_options(absl::MakeConstSpan(skb->data, hdr_len), true, &tp->rx_opt, &sack_off);
  TCP_SKB_CB(skb)->sacked = sack_off;  // kernel: tcp_parse_options() records it there
  if (tp->rx_opt.saw_tstamp && tp->rx_opt.rcv_tsecr != 0) tp->rx_opt.rcv_tsecr -= tp->tsoffset;
  const uint8_t flags = tcb->tcp_flags;
  // tcp_validate_incoming(): "RFC1323: H1. Apply PAWS check first."
  if (tp->rx_opt.saw_tstamp && tp->rx_opt.tstamp_ok && !(flags & TCPHDR_RST) && tcp_paws_discard(tp)) {
    if (!tcp_oow_rate_limited(tp, skb)) tcp_send_dupack(tp, skb, xmit);
    kfree_skb(skb);
    return;
  }
  // "Step 1: check sequence number"
  if (!tcp_sequence(tp, tcb->seq, tcb->end_seq)) {
    // "RFC793, page 37: If a segment's contents straddle the boundary ... send an ACK"
    if (!(flags & TCPHDR_RST) && !tcp_oow_rate_limited(tp, skb)) tcp_send_dupack(tp, skb, xmit);
    kfree_skb(skb);
    return;
  }
  // RST and SYN in this state are the handshake/teardown slice's (dropped here); "if (!th->ack
  // && !th->rst && !th->syn) goto discard".
  if ((flags & (TCPHDR_RST | TCPHDR_SYN)) || !(flags & TCPHDR_ACK)) {
    kfree_skb(skb);
    return;
  }
  if (tcp_ack(tp, skb, FLAG_UPDATE_TS_RECENT, xmit) < 0) {
    kfree_skb(skb);
    return;
  }
  tcp_urg(tp, skb);  // "Process urgent data."
  skb_pull(skb, hdr_len);
  tcp_data_queue(tp, skb);
  // kernel: tcp_data_snd_check() -> tcp_push_pending_frames()
  if (tcp_send_head(tp) != nullptr) tcp_push_pending_frames(tp, tcp_current_mss(tp, dst_mtu), tp->nonagle, xmit);
  tcp_ack_snd_check(tp, xmit);
}

void tcp_rcv_queues_purge(tcp_sock* tp) {
  skb_queue_purge(&tp->receive_queue);
  skb_queue_purge(&tp->out_of_order_queue);
  tp->rmem_alloc = 0;
}

}  // namespace xmit
