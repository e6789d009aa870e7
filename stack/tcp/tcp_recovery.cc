// stack/tcp/tcp_recovery.cc — fast retransmit, NewReno recovery, the loss state, Reno cwnd growth.
// Kernel counterparts and what is simplified: tcp_recovery.h.
#include "stack/tcp/tcp_recovery.h"

#include <algorithm>

#include "stack/tcp/tcp_ack.h"
#include "stack/tcp/tcp_cong.h"
#include "stack/tcp/tcp_mss.h"
#include "stack/tcp/tcp_output.h"
#include "stack/tcp/tcp_output_ack.h"
#include "stack/tcp/tcp_sack.h"
#include "stack/tcp/tcp_tsq.h"

namespace xmit {

// kernel: tcp_is_cwnd_limited(), include/net/tcp.h
bool tcp_is_cwnd_limited(const tcp_sock* tp) {
  if (tp->is_cwnd_limited) return true;
  // "If in slow start, ensure cwnd grows to twice what was ACKed."
  if (tcp_in_slow_start(tp)) return tp->snd_cwnd < 2 * tp->max_packets_out;
  return false;
}

// kernel: tcp_cwnd_validate(), net/ipv4/tcp_output.c
void tcp_cwnd_validate(tcp_sock* tp, bool is_cwnd_limited) {
  if (!before(tp->snd_una, tp->cwnd_usage_seq) || is_cwnd_limited ||
      (!tp->is_cwnd_limited && tp->packets_out > tp->max_packets_out)) {
    tp->is_cwnd_limited = is_cwnd_limited;
    tp->max_packets_out = tp->packets_out;
    tp->cwnd_usage_seq = tp->snd_nxt;
  }
}

// kernel: tcp_reno_cong_avoid(), net/ipv4/tcp_cong.c
void tcp_reno_cong_avoid(tcp_sock* tp, uint32_t acked) {
  if (!tcp_is_cwnd_limited(tp)) return;
  // "In "safe" area, increase."
  if (tcp_in_slow_start(tp)) {
    acked = tcp_slow_start(tp, acked);
    if (acked == 0) return;
  }
  // "In dangerous area, increase slowly."
  tcp_cong_avoid_ai(tp, tp->snd_cwnd, acked);
}

// kernel: tcp_retransmit_skb() / __tcp_retransmit_skb(), net/ipv4/tcp_output.c
int tcp_retransmit_skb(tcp_sock* tp, sk_buff* skb, uint32_t segs, TcpXmitFn xmit) {
  tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  if (before(tcb->seq, tp->snd_una)) {
    if (!after(tcb->end_seq, tp->snd_una)) return -EINVAL;  // fully acked: the kernel WARNs
    uint32_t pcount = tcp_skb_pcount(skb);
    if (tcp_trim_head(skb, tp->snd_una - tcb->seq) != 0) return -ENOMEM;
    // The trim may drop a segment from the skb's count: keep the counters in step.
    uint32_t gone = pcount - tcp_skb_pcount(skb);
    tp->packets_out -= gone;
    if (tcb->sacked & TCPCB_LOST) tp->lost_out -= gone;
    if (tcb->sacked & TCPCB_SACKED_RETRANS) tp->retrans_out -= gone;
  }
  // "cur_mss = tcp_current_mss(sk)": SACK blocks in our header leave less room for payload.
  const uint32_t cur_mss = tcp_current_mss(tp, 0);
  // "len = cur_mss * segs" (the kernel's avail_wnd cut, for a window the peer shrank, is left out).
  const uint32_t len = cur_mss * std::max(1u, segs);
  if (skb->len > len) {
    if (tcp_fragment_rtx(tp, skb, len, cur_mss) != 0) return -ENOMEM;  // "We'll try again later."
  } else if (tcp_skb_pcount(skb) > 1 && tcb->tcp_gso_size != cur_mss) {
    // A GSO skb whose segments no longer fit: re-count it at cur_mss (kernel: tcp_set_skb_tso_segs()
    // + tcp_adjust_pcount()).
    int diff = static_cast<int>(tcp_skb_pcount(skb));
    tcp_set_skb_tso_segs(skb, cur_mss);
    diff -= static_cast<int>(tcp_skb_pcount(skb));
    tp->packets_out -= diff;
    if (tcb->sacked & TCPCB_LOST) tp->lost_out -= diff;
    if (tcb->sacked & TCPCB_SACKED_RETRANS) tp->retrans_out -= diff;
  }
  // "tp->total_retrans += segs; tp->bytes_retrans += skb->len;" — counted before the transmission
  tp->total_retrans += tcp_skb_pcount(skb);
  tp->bytes_retrans += skb->len;
  int err = tcp_transmit_skb(tp, skb, xmit);
  if (err != 0) return err;
  if (!(tcb->sacked & TCPCB_SACKED_RETRANS)) tp->retrans_out += tcp_skb_pcount(skb);
  if (tcp_in_cwnd_reduction(tp)) tp->prr_out += tcp_skb_pcount(skb);  // kernel: tcp_xmit_retransmit_queue()
  tcb->sacked |= TCPCB_SACKED_RETRANS | TCPCB_EVER_RETRANS;  // kernel: TCPCB_RETRANS
  return 0;
}

// kernel: tcp_xmit_retransmit_queue(), net/ipv4/tcp_output.c
void tcp_xmit_retransmit_queue(tcp_sock* tp, TcpXmitFn xmit) {
  const uint32_t max_segs = tcp_tso_segs(tp, tcp_current_mss(tp, 0));
  for (sk_buff* skb = tp->rtx_queue.head; skb != nullptr; skb = skb->next) {
    if (tcp_packets_in_flight(tp) >= tp->snd_cwnd) break;
    // "In case tcp_shift_skb_data() have aggregated large skbs, we need to make sure not sending
    // too bigs TSO packets"
    const uint32_t segs = std::min(tp->snd_cwnd - tcp_packets_in_flight(tp), max_segs);
    uint8_t sacked = TCP_SKB_CB(skb)->sacked;
    if (!(sacked & TCPCB_LOST) || (sacked & TCPCB_SACKED_RETRANS)) continue;
    if (tcp_small_queue_check(tp, skb, 1)) break;
    if (tcp_retransmit_skb(tp, skb, segs, xmit) != 0) break;
    // kernel: "if (skb == rtx_head && icsk->icsk_pending != ICSK_TIME_REO_TIMEOUT) rearm_timer = true"
    if (skb == tp->rtx_queue.head && tp->icsk_pending != ICSK_TIME_REO_TIMEOUT) tcp_rearm_rto(tp);
  }
}

// kernel: tcp_enter_loss() as in Linux 4.x (tcp_clear_retrans_partial(), every skb marked lost)
void tcp_enter_loss(tcp_sock* tp) {
  // "Reduce ssthresh if it has not yet been made inside this window."
  if (tp->icsk_ca_state <= TCP_CA_Disorder || !before(tp->snd_una, tp->high_seq) ||
      (tp->icsk_ca_state == TCP_CA_Loss && tp->icsk_retransmits == 0)) {
    tp->prior_cwnd = tp->snd_cwnd;
    tp->snd_ssthresh = tcp_ca_ssthresh(tp);
    tcp_ca_event(tp, CA_EVENT_LOSS);
  }
  // kernel: tcp_timeout_mark_lost() (first, so that the cwnd below counts nothing in flight);
  // with SACK the skbs the peer SACKed keep their mark (sacked_out) and are not lost.
  if (!tcp_is_sack(tp)) tp->sacked_out = 0;  // kernel: tcp_reset_reno_sack()
  tp->retrans_out = 0;
  tp->lost_out = 0;
  for (sk_buff* skb = tp->rtx_queue.head; skb != nullptr; skb = skb->next) {
    uint8_t keep = TCP_SKB_CB(skb)->sacked & (tcp_is_sack(tp) ? (TCPCB_EVER_RETRANS | TCPCB_SACKED_ACKED) : TCPCB_EVER_RETRANS);
    TCP_SKB_CB(skb)->sacked = keep;
    if (keep & TCPCB_SACKED_ACKED) continue;
    TCP_SKB_CB(skb)->sacked |= TCPCB_LOST;
    tp->lost_out += tcp_skb_pcount(skb);
  }
  tp->snd_cwnd = tcp_packets_in_flight(tp) + 1;
  tp->snd_cwnd_cnt = 0;
  tcp_set_ca_state(tp, TCP_CA_Loss);
  tp->high_seq = tp->snd_nxt;
}

// kernel: tcp_limit_reno_sacked() — "Limits sacked_out so that sum with lost_out isn't ever
// larger than packets_out." True when it had to.
static bool tcp_limit_reno_sacked(tcp_sock* tp) {
  uint32_t holes = std::min(std::max(tp->lost_out, 1u), tp->packets_out);
  if (tp->sacked_out + holes > tp->packets_out) {
    tp->sacked_out = tp->packets_out - holes;
    return true;
  }
  return false;
}

// kernel: tcp_check_reno_reordering() — "If we receive more dupacks than we expected counting
// segments in assumption of absent reordering, interpret this as reordering."
static void tcp_check_reno_reordering(tcp_sock* tp, uint32_t addend) {
  if (!tcp_limit_reno_sacked(tp)) return;
  tp->reordering = std::min(tp->packets_out + addend, TCP_MAX_REORDERING);
  tp->reord_seen++;
}

// kernel: tcp_add_reno_sack() — "Emulate SACKs for SACKless connection: account for a new dupack."
// The dupack delivered a segment (tcp_count_delivered()): PRR counts it.
static void tcp_add_reno_sack(tcp_sock* tp, uint32_t num_dupack) {
  if (num_dupack == 0) return;
  const uint32_t prior_sacked = tp->sacked_out;
  tp->sacked_out += num_dupack;
  tcp_check_reno_reordering(tp, 0);
  if (tp->sacked_out > prior_sacked) tp->delivered += tp->sacked_out - prior_sacked;
}

// kernel: tcp_remove_reno_sacks(), net/ipv4/tcp_input.c
void tcp_remove_reno_sacks(tcp_sock* tp, uint32_t acked) {
  if (acked > 0) {
    // "One ACK acked hole. The rest eat duplicate ACKs."
    tp->delivered += acked > tp->sacked_out + 1 ? acked - tp->sacked_out : 1;  // tcp_count_delivered()
    if (acked - 1 >= tp->sacked_out) {
      tp->sacked_out = 0;
    } else {
      tp->sacked_out -= acked - 1;
    }
  }
  tcp_check_reno_reordering(tp, acked);
}

// kernel: tcp_reset_reno_sack()
static void tcp_reset_reno_sack(tcp_sock* tp) { tp->sacked_out = 0; }

// kernel: tcp_newreno_mark_lost(), net/ipv4/tcp_recovery.c — before recovery, `reordering`
// duplicate ACKs; in recovery, a partial ACK: the oldest unacked segment is lost. A GSO skb at the
// head is cut after its first MSS (tcp_fragment()), so that only that segment counts as lost and
// is resent.
static void tcp_newreno_mark_lost(tcp_sock* tp, bool snd_una_advanced) {
  const uint8_t state = tp->icsk_ca_state;
  if (!((state < TCP_CA_Recovery && tp->sacked_out >= tp->reordering) ||
        (state == TCP_CA_Recovery && snd_una_advanced)))
    return;
  sk_buff* skb = tp->rtx_queue.head;
  if (skb == nullptr || (TCP_SKB_CB(skb)->sacked & TCPCB_LOST)) return;
  const uint32_t mss = TCP_SKB_CB(skb)->tcp_gso_size;  // kernel: tcp_skb_mss()
  if (tcp_skb_pcount(skb) > 1 && skb->len > mss) (void)tcp_fragment_rtx(tp, skb, mss, mss);
  TCP_SKB_CB(skb)->sacked |= TCPCB_LOST;
  tp->lost_out += tcp_skb_pcount(skb);
}

// kernel: tcp_any_retrans_done(), net/ipv4/tcp_input.c
bool tcp_any_retrans_done(const tcp_sock* tp) {
  if (tp->retrans_out != 0) return true;
  const sk_buff* skb = tp->rtx_queue.head;
  return skb != nullptr && (TCP_SKB_CB(skb)->sacked & TCPCB_EVER_RETRANS);
}

// kernel: tcp_try_keep_open()
static void tcp_try_keep_open(tcp_sock* tp) {
  uint8_t state = TCP_CA_Open;
  if (tcp_left_out(tp) != 0 || tcp_any_retrans_done(tp)) state = TCP_CA_Disorder;
  if (tp->icsk_ca_state != state) {
    tcp_set_ca_state(tp, state);
    tp->high_seq = tp->snd_nxt;
  }
}

// kernel: tcp_try_to_open() (no ECE, so never CWR; retrans_stamp is not cleared here: xmit takes
// it at the first RTO, tcp_retransmit_timer())
void tcp_try_to_open(tcp_sock* tp) {
  if (tp->icsk_ca_state != TCP_CA_CWR) tcp_try_keep_open(tp);
}

// kernel: tcp_is_non_sack_preventing_reopen() — "Hold old state until something *above* high_seq
// is ACKed. For Reno it is MUST to prevent false fast retransmits (RFC2582). SACK TCP is safe."
// (retrans_stamp is not cleared here: xmit takes it at the first RTO, tcp_retransmit_timer().)
static bool tcp_is_non_sack_preventing_reopen(const tcp_sock* tp) {
  return tp->snd_una == tp->high_seq && !tcp_is_sack(tp);
}

// kernel: tcp_try_undo_recovery() without undo (tcp_recovery.h): the state opens unless Reno
// holds it; true when held.
static bool tcp_try_undo_recovery(tcp_sock* tp) {
  if (tcp_is_non_sack_preventing_reopen(tp)) return true;
  tcp_set_ca_state(tp, TCP_CA_Open);
  return false;
}

// kernel: tcp_process_loss() (no undo, no F-RTO) — the loss state ends once all that was sent
// when it began is acked; else Reno counts dupacks for data sent since and the lost are resent.
static int tcp_process_loss(tcp_sock* tp, int flag, uint32_t num_dupack) {
  if (!before(tp->snd_una, tp->high_seq)) {
    (void)tcp_try_undo_recovery(tp);
    return REXMIT_NONE;
  }
  if (after(tp->snd_nxt, tp->high_seq) && num_dupack != 0) {
    tcp_add_reno_sack(tp, num_dupack);
  } else if (flag & FLAG_SND_UNA_ADVANCED) {
    tcp_reset_reno_sack(tp);
  }
  return REXMIT_LOST;
}

// kernel: tcp_update_rto_time() — an RTO recovery ended: its time joins total_rto_time.
static void tcp_update_rto_time(tcp_sock* tp) {
  if (tp->rto_stamp != 0) {
    tp->total_rto_time += tcp_jiffies32(tp) - tp->rto_stamp;
    tp->rto_stamp = 0;
  }
}

// kernel: tcp_fastretrans_alert(), net/ipv4/tcp_input.c (the no-SACK paths; with SACK,
// tcp_sack_fastretrans_alert()). Marks losses and moves the state; the cwnd is PRR's, in
// tcp_ack()'s tcp_cong_control().
int tcp_fastretrans_alert(tcp_sock* tp, uint32_t prior_snd_una, uint32_t num_dupack, int flag) {
  (void)prior_snd_una;
  if (tcp_is_sack(tp)) {
    uint32_t newly_lost;
    const bool in_loss = tp->icsk_ca_state == TCP_CA_Loss;
    tcp_sack_fastretrans_alert(tp, flag, &newly_lost);
    if (in_loss && tp->icsk_ca_state != TCP_CA_Loss) tcp_update_rto_time(tp);  // "case TCP_CA_Loss:"
    return tcp_in_cwnd_reduction(tp) || tp->icsk_ca_state == TCP_CA_Loss ? REXMIT_LOST : REXMIT_NONE;
  }
  const bool snd_una_advanced = (flag & FLAG_SND_UNA_ADVANCED) != 0;
  if (tp->packets_out == 0 && tp->sacked_out != 0) tp->sacked_out = 0;
  // "D. Check state exit conditions. State can be terminated when high_seq is ACKed."
  if (tp->icsk_ca_state == TCP_CA_Recovery && !before(tp->snd_una, tp->high_seq)) {
    tcp_reset_reno_sack(tp);
    if (tcp_try_undo_recovery(tp)) return REXMIT_NONE;
    tcp_end_cwnd_reduction(tp);
  }
  // "E. Process state."
  switch (tp->icsk_ca_state) {
    case TCP_CA_Recovery:
      if (!snd_una_advanced) tcp_add_reno_sack(tp, num_dupack);
      // else a partial ACK (RFC 6582 §3.2 step 5): tcp_try_undo_partial() has no undo here.
      tcp_newreno_mark_lost(tp, snd_una_advanced);  // kernel: tcp_identify_packet_loss()
      return REXMIT_LOST;
    case TCP_CA_Loss: {
      const int rexmit = tcp_process_loss(tp, flag, num_dupack);
      if (tp->icsk_ca_state != TCP_CA_Loss) tcp_update_rto_time(tp);
      tcp_newreno_mark_lost(tp, snd_una_advanced);
      if (tp->icsk_ca_state != TCP_CA_Open) return rexmit;
      // "Change state if cwnd is undone or retransmits are lost"
      [[fallthrough]];
    }
    default:
      if (snd_una_advanced) tcp_reset_reno_sack(tp);
      tcp_add_reno_sack(tp, num_dupack);
      tcp_newreno_mark_lost(tp, snd_una_advanced);
      // kernel: tcp_time_to_recover() with RACK on (the default): "if (tp->lost_out) return true"
      if (tp->lost_out == 0) {
        tcp_try_to_open(tp);
        return REXMIT_NONE;
      }
      tcp_enter_recovery(tp);
      return REXMIT_LOST;
  }
}

}  // namespace xmit
