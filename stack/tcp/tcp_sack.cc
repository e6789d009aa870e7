// stack/tcp/tcp_sack.cc — SACK blocks in our ACKs, the sender's scoreboard, SACK recovery and PRR.
// Kernel counterparts and what is simplified: tcp_sack.h.
#include "stack/tcp/tcp_sack.h"

#include <algorithm>
#include <utility>

#include "stack/tcp/tcp_ack.h"
#include "stack/tcp/tcp_cong.h"
#include "stack/tcp/tcp_input_parse.h"
#include "stack/tcp/tcp_rack.h"
#include "stack/tcp/tcp_recovery.h"

namespace xmit {

// kernel: tcp_sack_extend(), net/ipv4/tcp_input.c
bool tcp_sack_extend(tcp_sack_block* sp, uint32_t seq, uint32_t end_seq) {
  if (!after(seq, sp->end_seq) && !after(sp->start_seq, end_seq)) {
    if (before(seq, sp->start_seq)) sp->start_seq = seq;
    if (after(end_seq, sp->end_seq)) sp->end_seq = end_seq;
    return true;
  }
  return false;
}

// kernel: tcp_dsack_set()
void tcp_dsack_set(tcp_sock* tp, uint32_t seq, uint32_t end_seq) {
  if (!tcp_is_sack(tp)) return;
  tp->dsack = true;
  tp->duplicate_sack[0].start_seq = seq;
  tp->duplicate_sack[0].end_seq = end_seq;
}

// kernel: tcp_dsack_extend()
void tcp_dsack_extend(tcp_sock* tp, uint32_t seq, uint32_t end_seq) {
  if (!tp->dsack) {
    tcp_dsack_set(tp, seq, end_seq);
  } else {
    tcp_sack_extend(tp->duplicate_sack, seq, end_seq);
  }
}

// kernel: tcp_sack_maybe_coalesce() — "See if the recent change to the first SACK eats into or
// hits the sequence space of other SACK blocks, if so coalesce."
static void tcp_sack_maybe_coalesce(tcp_sock* tp) {
  tcp_sack_block* sp = &tp->selective_acks[0];
  for (int this_sack = 1; this_sack < tp->num_sacks;) {
    if (tcp_sack_extend(sp, sp[this_sack].start_seq, sp[this_sack].end_seq)) {
      // "Zap SWALK, by moving every further SACK up by one slot. Decrease num_sacks."
      tp->num_sacks--;
      for (int i = this_sack; i < tp->num_sacks; ++i) sp[i] = sp[i + 1];
      continue;
    }
    this_sack++;
  }
}

// kernel: tcp_sack_new_ofo_skb()
void tcp_sack_new_ofo_skb(tcp_sock* tp, uint32_t seq, uint32_t end_seq) {
  if (!tcp_is_sack(tp)) return;
  tcp_sack_block* sp = tp->selective_acks;
  int cur_sacks = tp->num_sacks;
  int this_sack = 0;
  for (; this_sack < cur_sacks; ++this_sack) {
    if (tcp_sack_extend(&sp[this_sack], seq, end_seq)) {
      // "Rotate this_sack to the first one."
      for (; this_sack > 0; --this_sack) std::swap(sp[this_sack], sp[this_sack - 1]);
      if (cur_sacks > 1) tcp_sack_maybe_coalesce(tp);
      return;
    }
  }
  // "Could not find an adjacent existing SACK, build a new one, put it at the front, and shift
  // everyone else down. ... If the sack array is full, forget about the last one."
  if (this_sack >= TCP_NUM_SACKS) {
    this_sack--;
    tp->num_sacks--;
  }
  for (; this_sack > 0; --this_sack) sp[this_sack] = sp[this_sack - 1];
  sp[0].start_seq = seq;
  sp[0].end_seq = end_seq;
  tp->num_sacks++;
}

// kernel: tcp_sack_remove()
void tcp_sack_remove(tcp_sock* tp) {
  // "Empty ofo queue, hence, all the SACKs are eaten. Clear."
  if (skb_queue_empty(tp->out_of_order_queue)) {
    tp->num_sacks = 0;
    return;
  }
  int num_sacks = tp->num_sacks;
  for (int this_sack = 0; this_sack < num_sacks;) {
    // "Check if the start of the sack is covered by RCV.NXT."
    if (!before(tp->rcv_nxt, tp->selective_acks[this_sack].start_seq)) {
      // "Zap this SACK, by moving forward any other SACKS."
      for (int i = this_sack + 1; i < num_sacks; ++i) tp->selective_acks[i - 1] = tp->selective_acks[i];
      num_sacks--;
      continue;
    }
    this_sack++;
  }
  tp->num_sacks = static_cast<uint8_t>(num_sacks);
}

// kernel: tcp_check_dsack() — the first block is a DSACK when it starts below the ACK, or lies
// inside the second (RFC 2883 §4).
// kernel: tcp_dsack_seen() — the segments a DSACK block reports as received twice (a dubious
// block, longer than any window the peer offered, counts none; no undo here: tcp_sack.h).
static void tcp_dsack_seen(tcp_sock* tp, uint32_t start_seq, uint32_t end_seq) {
  if (!before(start_seq, end_seq)) return;
  const uint32_t seq_len = end_seq - start_seq;
  if (seq_len > tp->max_window) return;  // "Dubious DSACK: DSACKed range greater than maximum advertised rwnd"
  tp->dsack_dups += seq_len > tp->mss_cache ? (seq_len + tp->mss_cache - 1) / tp->mss_cache : 1;
}

static bool tcp_check_dsack(const tcp_sack_block* sp, int num_sacks, uint32_t ack_seq) {
  if (before(sp[0].start_seq, ack_seq)) return true;
  if (num_sacks > 1) return !after(sp[0].end_seq, sp[1].end_seq) && !before(sp[0].start_seq, sp[1].start_seq);
  return false;
}

// kernel: tcp_is_sackblock_valid() (a DSACK is never valid here: no undo)
static bool tcp_is_sackblock_valid(const tcp_sock* tp, uint32_t start_seq, uint32_t end_seq) {
  // "Too far in future, or reversed (interpretation is ambiguous)"
  if (after(end_seq, tp->snd_nxt) || !before(start_seq, end_seq)) return false;
  // "Nasty start_seq wrap-around check"
  if (!before(start_seq, tp->snd_nxt)) return false;
  // "In outstanding window? ...This is valid branch!"
  return after(start_seq, tp->snd_una);
}

// kernel: tcp_highest_sack_seq() — the end of the highest SACKed skb (snd_una when none).
static uint32_t tcp_highest_sack_seq(const tcp_sock* tp) {
  for (const sk_buff* skb = tp->rtx_queue.tail; skb != nullptr; skb = skb->prev) {
    if (TCP_SKB_CB(skb)->sacked & TCPCB_SACKED_ACKED) return TCP_SKB_CB(skb)->end_seq;
  }
  return tp->snd_una;
}

// kernel: tcp_check_sack_reordering()
static void tcp_check_sack_reordering(tcp_sock* tp, uint32_t low_seq) {
  const uint32_t mss = tp->mss_cache;
  uint32_t fack = tcp_highest_sack_seq(tp);
  if (!before(low_seq, fack)) return;
  uint32_t metric = fack - low_seq;
  if (mss != 0 && metric > tp->reordering * mss) tp->reordering = std::min((metric + mss - 1) / mss, TCP_MAX_REORDERING);
  // "This exciting event is worth to be remembered. 8)"
  tp->reord_seen++;
}

// kernel: tcp_sacktag_one()
static uint8_t tcp_sacktag_one(tcp_sock* tp, tcp_sacktag_state* state, uint32_t fack, uint8_t sacked,
                               uint32_t start_seq, uint32_t end_seq, uint32_t pcount, uint64_t xmit_time) {
  // "Nothing to do; acked frame is about to be dropped (was ACKed)."
  if (!after(end_seq, tp->snd_una)) return sacked;
  if (sacked & TCPCB_SACKED_ACKED) return sacked;
  tcp_rack_advance(tp, sacked, end_seq, xmit_time);
  if (sacked & TCPCB_SACKED_RETRANS) {
    // "If the segment is not tagged as lost, we do not clear RETRANS, believing that
    // retransmission is still in flight."
    if (sacked & TCPCB_LOST) {
      sacked &= static_cast<uint8_t>(~(TCPCB_LOST | TCPCB_SACKED_RETRANS));
      tp->lost_out -= std::min(tp->lost_out, pcount);
      tp->retrans_out -= std::min(tp->retrans_out, pcount);
    }
  } else {
    if (!(sacked & TCPCB_RETRANS)) {
      // "New sack for not retransmitted frame, which was in hole. It is reordering."
      if (before(start_seq, fack) && before(start_seq, state->reord)) state->reord = start_seq;
      // The walk goes up the sequence space (the blocks are sorted): first_sackt is the lowest
      // newly SACKed skb's send time, last_sackt the highest's.
      if (state->first_sackt == 0) state->first_sackt = xmit_time;
      state->last_sackt = xmit_time;
    }
    if (sacked & TCPCB_LOST) {
      sacked &= static_cast<uint8_t>(~TCPCB_LOST);
      tp->lost_out -= std::min(tp->lost_out, pcount);
    }
  }
  sacked |= TCPCB_SACKED_ACKED;
  state->flag |= FLAG_DATA_SACKED;
  tp->sacked_out += pcount;
  state->sack_delivered += pcount;
  return sacked;
}

// kernel: tcp_sacktag_write_queue(), net/ipv4/tcp_input.c
int tcp_sacktag_write_queue(tcp_sock* tp, const sk_buff* ack_skb, uint32_t prior_snd_una, tcp_sacktag_state* state) {
  (void)prior_snd_una;
  *state = tcp_sacktag_state{};
  const tcp_skb_cb* acb = TCP_SKB_CB(ack_skb);
  if (acb->sacked == 0 || !tcp_is_sack(tp)) return 0;
  const uint32_t hdr_len = (ack_skb->data[12] >> 4) * 4u;
  tcp_sack_block sp_wire[4];
  int num_sacks = tcp_sack_blocks(absl::MakeConstSpan(ack_skb->data, hdr_len), acb->sacked, sp_wire);
  if (num_sacks == 0) return 0;
  int first = 0;
  if (tcp_check_dsack(sp_wire, num_sacks, acb->ack_seq)) {
    tcp_dsack_seen(tp, sp_wire[0].start_seq, sp_wire[0].end_seq);
    state->flag |= FLAG_DSACKING_ACK;
    first = 1;  // recognised, not used (no undo: tcp_sack.h)
  }
  if (tp->packets_out == 0) return state->flag;
  tcp_sack_block sp[4];
  int used_sacks = 0;
  for (int i = first; i < num_sacks; ++i) {
    if (tcp_is_sackblock_valid(tp, sp_wire[i].start_seq, sp_wire[i].end_seq)) sp[used_sacks++] = sp_wire[i];
  }
  // "order SACK blocks to allow in order walk of the retrans queue"
  for (int i = used_sacks - 1; i > 0; --i) {
    for (int j = 0; j < i; ++j) {
      if (after(sp[j].start_seq, sp[j + 1].start_seq)) std::swap(sp[j], sp[j + 1]);
    }
  }
  const uint32_t fack = tcp_highest_sack_seq(tp);
  state->reord = tp->snd_nxt;
  for (int i = 0; i < used_sacks; ++i) {
    uint32_t start_seq = sp[i].start_seq, end_seq = sp[i].end_seq;
    // kernel: tcp_sacktag_walk() — whole skbs inside [start_seq, end_seq) (tcp_sack.h).
    for (sk_buff* skb = tp->rtx_queue.head; skb != nullptr; skb = skb->next) {
      tcp_skb_cb* scb = TCP_SKB_CB(skb);
      if (!after(scb->end_seq, start_seq)) continue;
      if (!before(scb->seq, end_seq)) break;
      if (before(scb->seq, start_seq) || after(scb->end_seq, end_seq)) continue;  // partly covered
      scb->sacked = tcp_sacktag_one(tp, state, fack, scb->sacked, scb->seq, scb->end_seq, tcp_skb_pcount(skb),
                                    scb->sent_us);
    }
  }
  if (before(state->reord, tp->snd_nxt)) tcp_check_sack_reordering(tp, state->reord);
  return state->flag;
}

// kernel: tcp_init_cwnd_reduction()
void tcp_init_cwnd_reduction(tcp_sock* tp) {
  tp->high_seq = tp->snd_nxt;
  tp->snd_cwnd_cnt = 0;
  tp->prior_cwnd = tp->snd_cwnd;
  tp->prr_delivered = 0;
  tp->prr_out = 0;
  tp->snd_ssthresh = tcp_ca_ssthresh(tp);
}

// kernel: tcp_end_cwnd_reduction() (no undo: always back to ssthresh)
void tcp_end_cwnd_reduction(tcp_sock* tp) {
  if (tp->snd_ssthresh < 0x7fffffffu) tp->snd_cwnd = tp->snd_ssthresh;
}

// kernel: tcp_enter_recovery() (no undo: no prior_ssthresh / tcp_init_undo())
void tcp_enter_recovery(tcp_sock* tp) {
  if (!tcp_in_cwnd_reduction(tp)) tcp_init_cwnd_reduction(tp);
  tcp_set_ca_state(tp, TCP_CA_Recovery);
}

// kernel: tcp_cwnd_reduction(), net/ipv4/tcp_input.c
void tcp_cwnd_reduction(tcp_sock* tp, uint32_t newly_acked_sacked, uint32_t newly_lost, int flag) {
  if (newly_acked_sacked == 0 || tp->prior_cwnd == 0) return;
  int sndcnt = 0;
  int delta = static_cast<int>(tp->snd_ssthresh) - static_cast<int>(tcp_packets_in_flight(tp));
  tp->prr_delivered += newly_acked_sacked;
  if (delta < 0) {
    uint64_t dividend = uint64_t{tp->snd_ssthresh} * tp->prr_delivered + tp->prior_cwnd - 1;
    sndcnt = static_cast<int>(dividend / tp->prior_cwnd) - static_cast<int>(tp->prr_out);
  } else {
    sndcnt = std::max(static_cast<int>(tp->prr_delivered) - static_cast<int>(tp->prr_out), static_cast<int>(newly_acked_sacked));
    if ((flag & FLAG_SND_UNA_ADVANCED) && newly_lost == 0) sndcnt++;
    sndcnt = std::min(delta, sndcnt);
  }
  // "Force a fast retransmit upon entering fast recovery"
  sndcnt = std::max(sndcnt, tp->prr_out != 0 ? 0 : 1);
  tp->snd_cwnd = static_cast<uint32_t>(std::max(0, static_cast<int>(tcp_packets_in_flight(tp)) + sndcnt));
}

// kernel: tcp_fastretrans_alert() with tcp_is_sack(), tcp_identify_packet_loss() (RACK only),
// tcp_time_to_recover() ("if (tp->lost_out) return true" with RACK), tcp_enter_recovery(),
// tcp_try_to_open(), tcp_process_loss() (no F-RTO), no undo.
void tcp_sack_fastretrans_alert(tcp_sock* tp, int flag, uint32_t* newly_lost) {
  (void)flag;
  *newly_lost = 0;
  if (tp->packets_out == 0 && tp->sacked_out != 0) tp->sacked_out = 0;
  bool lost_retrans = false;
  // "D. Check state exit conditions. State can be terminated when high_seq is ACKed."
  if (tp->icsk_ca_state == TCP_CA_Recovery && !before(tp->snd_una, tp->high_seq)) {
    tcp_end_cwnd_reduction(tp);
    tcp_set_ca_state(tp, TCP_CA_Open);
  }
  // "E. Process state."
  switch (tp->icsk_ca_state) {
    case TCP_CA_Recovery:
      *newly_lost = tcp_rack_mark_lost(tp, &lost_retrans);
      return;
    case TCP_CA_Loss:
      // kernel: tcp_process_loss() — "Recovery is complete" once all sent in loss is acked.
      if (!before(tp->snd_una, tp->high_seq)) {
        tcp_set_ca_state(tp, TCP_CA_Open);
      } else {
        *newly_lost = tcp_rack_mark_lost(tp, &lost_retrans);
        return;
      }
      [[fallthrough]];
    default:
      *newly_lost = tcp_rack_mark_lost(tp, &lost_retrans);
      if (tp->lost_out == 0) {  // !tcp_time_to_recover()
        tcp_try_to_open(tp);
        return;
      }
      tcp_enter_recovery(tp);
      return;
  }
}

// kernel: tcp_rack_reo_timeout(), net/ipv4/tcp_recovery.c
void tcp_rack_reo_timeout(tcp_sock* tp, TcpXmitFn xmit) {
  const uint32_t prior_inflight = tcp_packets_in_flight(tp);
  uint32_t timeout;
  bool lost_retrans;
  uint32_t lost = tcp_rack_detect_loss(tp, &timeout, &lost_retrans);
  if (prior_inflight != tcp_packets_in_flight(tp)) {
    if (tp->icsk_ca_state != TCP_CA_Recovery) {
      tcp_enter_recovery(tp);
      tcp_cwnd_reduction(tp, 1, lost, 0);
    }
    tcp_xmit_retransmit_queue(tp, xmit);
  }
  if (tp->icsk_pending != ICSK_TIME_RETRANS) tcp_rearm_rto(tp);
}

}  // namespace xmit
