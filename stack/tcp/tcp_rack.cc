// stack/tcp/tcp_rack.cc — RACK loss detection. Kernel counterparts and what is simplified:
// tcp_rack.h.
#include "stack/tcp/tcp_rack.h"

#include <algorithm>

namespace xmit {

// kernel: tcp_skb_sent_after(), include/net/tcp.h
static bool tcp_skb_sent_after(uint64_t t1, uint64_t t2, uint32_t seq1, uint32_t seq2) {
  return t1 > t2 || (t1 == t2 && after(seq1, seq2));
}

// kernel: tcp_rack_advance(), net/ipv4/tcp_recovery.c
void tcp_rack_advance(tcp_sock* tp, uint8_t sacked, uint32_t end_seq, uint64_t xmit_time) {
  uint32_t rtt_us = static_cast<uint32_t>(tp->tcp_mstamp - xmit_time);  // tcp_stamp_us_delta()
  if (rtt_us < tcp_min_rtt(tp) && (sacked & TCPCB_RETRANS)) {
    // "If the sacked packet was retransmitted, it's ambiguous whether the retransmission or the
    // original (or the prior retransmission) was sacked. If we recorded this as an RTT sample we
    // could mistake a spurious retransmission for a genuine delivery."
    return;
  }
  tp->rack.advanced = true;
  tp->rack.rtt_us = rtt_us;
  if (tcp_skb_sent_after(xmit_time, tp->rack.mstamp, end_seq, tp->rack.end_seq)) {
    tp->rack.mstamp = xmit_time;
    tp->rack.end_seq = end_seq;
  }
}

// kernel: tcp_rack_reo_wnd(), net/ipv4/tcp_recovery.c (reo_wnd_steps 1)
uint32_t tcp_rack_reo_wnd(const tcp_sock* tp) {
  if (tp->reord_seen == 0) {
    // "If reordering has not been observed, be aggressive during the recovery or starting the
    // recovery by DUPACK threshold."
    if (tp->icsk_ca_state >= TCP_CA_Recovery) return 0;
    if (tp->sacked_out >= tp->reordering) return 0;
  }
  // "To be more reordering resilient, allow min_rtt/4 settling delay."
  return std::min(tcp_min_rtt(tp) >> 2, tp->srtt_us >> 3);
}

// kernel: tcp_mark_skb_lost(), net/ipv4/tcp_input.c
void tcp_mark_skb_lost(tcp_sock* tp, sk_buff* skb) {
  tcp_skb_cb* scb = TCP_SKB_CB(skb);
  if (scb->sacked & TCPCB_SACKED_ACKED) return;
  if (scb->sacked & TCPCB_LOST) {
    if (scb->sacked & TCPCB_SACKED_RETRANS) {
      // "Account for retransmits that are lost again"
      scb->sacked &= static_cast<uint8_t>(~TCPCB_SACKED_RETRANS);
      tp->retrans_out -= std::min(tp->retrans_out, tcp_skb_pcount(skb));
    }
  } else {
    tp->lost_out += tcp_skb_pcount(skb);
    scb->sacked |= TCPCB_LOST;
  }
}

// kernel: tcp_rack_detect_loss(), net/ipv4/tcp_recovery.c
uint32_t tcp_rack_detect_loss(tcp_sock* tp, uint32_t* reo_timeout, bool* lost_retrans) {
  *lost_retrans = false;
  *reo_timeout = 0;
  const uint32_t reo_wnd = tcp_rack_reo_wnd(tp);
  uint32_t newly_lost = 0;
  for (sk_buff* skb = tp->rtx_queue.head; skb != nullptr; skb = skb->next) {
    tcp_skb_cb* scb = TCP_SKB_CB(skb);
    if (scb->sacked & TCPCB_SACKED_ACKED) continue;  // not on the kernel's tsorted list
    // "Skip ones marked lost but not yet retransmitted"
    if ((scb->sacked & TCPCB_LOST) && !(scb->sacked & TCPCB_SACKED_RETRANS)) continue;
    if (!tcp_skb_sent_after(tp->rack.mstamp, scb->sent_us, tp->rack.end_seq, scb->end_seq)) continue;
    // "A packet is lost if it has not been s/acked beyond the recent RTT plus the reordering
    // window." kernel: tcp_rack_skb_timeout()
    int64_t remaining = static_cast<int64_t>(tp->rack.rtt_us) + reo_wnd - static_cast<int64_t>(tp->tcp_mstamp - scb->sent_us);
    if (remaining <= 0) {
      if (scb->sacked & TCPCB_SACKED_RETRANS) *lost_retrans = true;
      tcp_mark_skb_lost(tp, skb);
      newly_lost += tcp_skb_pcount(skb);
    } else {
      // "Record maximum wait time"
      *reo_timeout = std::max(*reo_timeout, static_cast<uint32_t>(remaining));
    }
  }
  return newly_lost;
}

// kernel: tcp_rack_mark_lost(), net/ipv4/tcp_recovery.c
uint32_t tcp_rack_mark_lost(tcp_sock* tp, bool* lost_retrans) {
  *lost_retrans = false;
  if (!tp->rack.advanced) return 0;
  // "Reset the advanced flag to avoid unnecessary queue scanning"
  tp->rack.advanced = false;
  uint32_t timeout = 0;
  uint32_t newly_lost = tcp_rack_detect_loss(tp, &timeout, lost_retrans);
  if (timeout != 0) {
    // "timeout = usecs_to_jiffies(timeout) + TCP_TIMEOUT_MIN", inet_csk_reset_xmit_timer(...,
    // icsk_rto) caps it at the RTO. Jiffies are ms here (HZ = 1000); TCP_TIMEOUT_MIN is 2.
    uint64_t when = (uint64_t{(timeout + 999) / 1000} + 2) * 1000;
    when = std::min<uint64_t>(when, tp->icsk_rto);
    tp->icsk_pending = ICSK_TIME_REO_TIMEOUT;
    sk_reset_timer(&tp->icsk_retransmit_timer, tp->tcp_mstamp + when);
  }
  return newly_lost;
}

}  // namespace xmit
