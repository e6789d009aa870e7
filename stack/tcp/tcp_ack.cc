// stack/tcp/tcp_ack.cc — ACK processing. Kernel counterparts in tcp_ack.h.
#include "stack/tcp/tcp_ack.h"

#include "stack/tcp/tcp_info.h"
#include "stack/tcp/tcp_output_ack.h"

#include <algorithm>
#include <cerrno>

#include "stack/tcp/tcp_mss.h"
#include "stack/tcp/tcp_cong.h"
#include "stack/tcp/tcp_rack.h"
#include "stack/tcp/tcp_recovery.h"
#include "stack/tcp/tcp_sack.h"
#include "stack/tcp/tcp_sendmsg.h"
#include "stack/wire/tcp.h"

namespace xmit {

// kernel: tcp_rtt_estimator(), net/ipv4/tcp_input.c
void tcp_rtt_estimator(tcp_sock* tp, long mrtt_us) {
  long m = mrtt_us;  // RTT
  uint32_t srtt = tp->srtt_us;
  if (srtt != 0) {
    m -= static_cast<long>(srtt >> 3);  // "m is now error in rtt est"
    srtt += static_cast<uint32_t>(m);   // "rtt = 7/8 rtt + 1/8 new"
    if (m < 0) {
      m = -m;                                   // "m is now abs(error)"
      m -= static_cast<long>(tp->mdev_us >> 2);  // "similar update on mdev"
      // "This is similar to one of Eifel findings. Eifel blocks mdev updates when rtt decreases."
      if (m > 0) m >>= 3;
    } else {
      m -= static_cast<long>(tp->mdev_us >> 2);
    }
    tp->mdev_us += static_cast<uint32_t>(m);  // "mdev = 3/4 mdev + 1/4 new"
    if (tp->mdev_us > tp->mdev_max_us) {
      tp->mdev_max_us = tp->mdev_us;
      if (tp->mdev_max_us > tp->rttvar_us) tp->rttvar_us = tp->mdev_max_us;
    }
    if (after(tp->snd_una, tp->rtt_seq)) {
      if (tp->mdev_max_us < tp->rttvar_us) tp->rttvar_us -= (tp->rttvar_us - tp->mdev_max_us) >> 2;
      tp->rtt_seq = tp->snd_nxt;
      tp->mdev_max_us = TCP_RTO_MIN_US;  // kernel: tcp_rto_min_us()
    }
  } else {
    // "no previous measure."
    srtt = static_cast<uint32_t>(m << 3);             // "take the measured time to be rtt"
    tp->mdev_us = static_cast<uint32_t>(m << 1);      // "make sure rto = 3*rtt"
    tp->rttvar_us = std::max(tp->mdev_us, TCP_RTO_MIN_US);
    tp->mdev_max_us = tp->rttvar_us;
    tp->rtt_seq = tp->snd_nxt;
  }
  tp->srtt_us = std::max(1u, srtt);
}

// kernel: tcp_set_rto() = __tcp_set_rto() (usecs_to_jiffies(srtt/8 + rttvar)) + tcp_bound_rto()
// kernel: tcp_update_pacing_rate(), net/ipv4/tcp_input.c
void tcp_update_pacing_rate(tcp_sock* tp) {
  // "set sk_pacing_rate to 200 % of current rate (mss * cwnd / srtt)"
  uint64_t rate = uint64_t{tp->mss_cache} * ((1000000 / 100) << 3);
  // "In Slow Start [1], set sk_pacing_rate to 200 % the current rate. In Congestion Avoidance
  // phase, set it to 120 % the current rate. [1] : Normal Slow Start condition is (tp->snd_cwnd <
  // tp->snd_ssthresh) If snd_cwnd >= (tp->snd_ssthresh / 2), we are approaching end of slow start
  // and should slow down."
  if (tp->snd_cwnd < tp->snd_ssthresh / 2) {
    rate *= tp->sysctl_tcp_pacing_ss_ratio;
  } else {
    rate *= tp->sysctl_tcp_pacing_ca_ratio;
  }
  rate *= std::max(tp->snd_cwnd, tp->packets_out);
  if (tp->srtt_us != 0) rate /= tp->srtt_us;
  tp->sk_pacing_rate = std::min(rate, tp->sk_max_pacing_rate);
}

void tcp_set_rto(tcp_sock* tp) {
  uint64_t rto = (tp->srtt_us >> 3) + tp->rttvar_us;
  rto = (rto + 999) / 1000 * 1000;  // usecs_to_jiffies() rounds up; HZ = 1000
  tp->icsk_rto = static_cast<uint32_t>(std::min<uint64_t>(rto, TCP_RTO_MAX_US));
}

// kernel: tcp_update_rtt_min(), net/ipv4/tcp_input.c — minmax_running_min() over
// tcp_min_rtt_wlen seconds of jiffies; a 0 us sample counts as one jiffy.
static void tcp_update_rtt_min(tcp_sock* tp, uint32_t rtt_us, int flag) {
  const uint32_t wlen = tp->sysctl_tcp_min_rtt_wlen * 1000;  // HZ = 1000
  if ((flag & FLAG_ACK_MAYBE_DELAYED) && rtt_us > tcp_min_rtt(tp)) {
    // "If the remote keeps returning delayed ACKs, eventually the min filter would pick it up and
    // overestimate the prop. delay when it expires. Skip suspected delayed ACKs."
    return;
  }
  minmax_running_min(&tp->rtt_min, wlen, tcp_jiffies32(tp), rtt_us != 0 ? rtt_us : 1000);
}

// kernel: tcp_ack_update_rtt(), net/ipv4/tcp_input.c
void tcp_ack_update_rtt(tcp_sock* tp, int flag, long seq_rtt_us, long sack_rtt_us, long ca_rtt_us) {
  if (seq_rtt_us < 0) seq_rtt_us = sack_rtt_us;
  // "Prefer RTT measured from ACK's timing to TS-ECR. This is because broken middle-boxes or
  // peers may confuse us by echoing a stale timestamp." RFC 7323 §4.1.
  if (seq_rtt_us < 0 && tp->rx_opt.saw_tstamp && tp->rx_opt.rcv_tsecr != 0 && (flag & FLAG_ACKED)) {
    uint32_t delta = static_cast<uint32_t>(tp->tcp_mstamp / 1000) - tp->rx_opt.rcv_tsecr;  // tcp_time_stamp_ts()
    if (delta < 0x7fffffffu / 1000) {
      if (delta == 0) delta = 1;
      seq_rtt_us = ca_rtt_us = static_cast<long>(delta) * 1000;
    }
  }
  tcp_ca_pkts_acked(tp, 0, ca_rtt_us);  // kernel: in tcp_clean_rtx_queue(), sample.rtt_us = rs->rtt_us = ca_rtt_us
  if (seq_rtt_us < 0) return;
  tcp_update_rtt_min(tp, static_cast<uint32_t>(ca_rtt_us), flag);
  tcp_rtt_estimator(tp, seq_rtt_us);
  tcp_set_rto(tp);
  tp->icsk_backoff = 0;  // "RFC6298: only reset backoff on valid RTT measurement."
}

// kernel: tcp_paws_check(), include/net/tcp.h (TCP_PAWS_24DAYS)
bool tcp_paws_check(const tcp_sock* tp, int paws_win) {
  const tcp_options_received& rx = tp->rx_opt;
  if (static_cast<int32_t>(rx.ts_recent - rx.rcv_tsval) <= paws_win) return true;
  if (static_cast<uint32_t>(tp->tcp_mstamp / 1000000) >= tp->ts_recent_stamp + 60 * 60 * 24 * 24) return true;
  // "Some OSes send SYN and SYNACK messages with tsval=0 tsecr=0, then following tcp messages
  // have valid values. Ignore 0 value, or else 'negative' tsval might forbid us to accept their
  // packets."
  return rx.ts_recent == 0;
}

// kernel: tcp_replace_ts_recent() + tcp_store_ts_recent(), net/ipv4/tcp_input.c
void tcp_replace_ts_recent(tcp_sock* tp, uint32_t seq) {
  if (tp->rx_opt.saw_tstamp && !after(seq, tp->rcv_wup) && tcp_paws_check(tp, 0)) {
    tp->rx_opt.ts_recent = tp->rx_opt.rcv_tsval;
    tp->ts_recent_stamp = static_cast<uint32_t>(tp->tcp_mstamp / 1000000);
  }
}

// kernel: tcp_trim_head() + __pskb_trim_head(), net/ipv4/tcp_output.c
int tcp_trim_head(sk_buff* skb, uint32_t len) {
  if (skb_headlen(skb) != 0 || len > skb->len) return -EINVAL;  // len == skb->len: a FIN stays
  skb_shared_info* sh = skb_shinfo(skb);
  uint32_t eat = len;
  int k = 0;
  for (int i = 0; i < sh->nr_frags; ++i) {
    uint32_t size = skb_frag_size(&sh->frags[i]);
    if (size <= eat) {
      skb_frag_unref(skb, i);
      eat -= size;
    } else {
      sh->frags[k] = sh->frags[i];
      if (eat != 0) {
        skb_frag_off_add(&sh->frags[k], eat);
        skb_frag_size_sub(&sh->frags[k], eat);
        eat = 0;
      }
      ++k;
    }
  }
  sh->nr_frags = static_cast<uint8_t>(k);
  skb->data_len -= len;
  skb->len -= len;
  TCP_SKB_CB(skb)->seq += len;
  // "Any change of skb->len requires recalculation of tso factor."
  if (tcp_skb_pcount(skb) > 1) tcp_set_skb_tso_segs(skb, TCP_SKB_CB(skb)->tcp_gso_size);
  return 0;
}

// kernel: tcp_may_update_window(), net/ipv4/tcp_input.c
static bool tcp_may_update_window(const tcp_sock* tp, uint32_t ack, uint32_t ack_seq, uint32_t nwin) {
  return after(ack, tp->snd_una) || after(ack_seq, tp->snd_wl1) || (ack_seq == tp->snd_wl1 && (nwin > tp->snd_wnd || nwin == 0));
}

// kernel: tcp_ack_update_window(), net/ipv4/tcp_input.c
int tcp_ack_update_window(tcp_sock* tp, uint16_t window, uint32_t ack, uint32_t ack_seq, bool syn) {
  int flag = 0;
  uint32_t nwin = window;
  // "RFC1323: The window in SYN & SYN/ACK segments is never scaled."
  if (!syn) nwin <<= tp->rx_opt.snd_wscale;
  if (tcp_may_update_window(tp, ack, ack_seq, nwin)) {
    flag |= FLAG_WIN_UPDATE;
    tp->snd_wl1 = ack_seq;  // kernel: tcp_update_wl()
    if (tp->snd_wnd != nwin) {
      tp->snd_wnd = nwin;
      if (nwin > tp->max_window) {
        tp->max_window = nwin;
        if (tp->pmtu_cookie != 0) tcp_sync_mss(tp, tp->pmtu_cookie);
      }
    }
  }
  // kernel: tcp_snd_una_update()
  tp->bytes_acked += ack - tp->snd_una;
  tp->snd_una = ack;
  return flag;
}

// kernel: tcp_clean_rtx_queue() with tcp_tso_acked(), net/ipv4/tcp_input.c
int tcp_clean_rtx_queue(tcp_sock* tp, uint32_t prior_snd_una, uint32_t* pkts_acked, const tcp_sacktag_state* sack) {
  int flag = 0;
  uint64_t first_ackt = 0, last_ackt = 0;
  bool have_ackt = false;
  bool fully_acked = true;
  uint32_t prior_delivered = 0;  // kernel: sack->rate->prior_delivered (tcp_rate_skb_delivered())
  const uint32_t prior_sacked = tp->sacked_out;
  *pkts_acked = 0;
  while (sk_buff* skb = tp->rtx_queue.head) {
    tcp_skb_cb* scb = TCP_SKB_CB(skb);
    uint32_t acked_pcount;
    if (after(scb->end_seq, tp->snd_una)) {
      if (tcp_skb_pcount(skb) == 1 || !after(tp->snd_una, scb->seq)) break;
      // kernel: tcp_tso_acked() — trim the acked MSS-multiple off a GSO skb.
      uint32_t before_pcount = tcp_skb_pcount(skb);
      if (tcp_trim_head(skb, tp->snd_una - scb->seq) != 0) break;
      acked_pcount = before_pcount - tcp_skb_pcount(skb);
      if (acked_pcount == 0) break;
      fully_acked = false;
    } else {
      acked_pcount = tcp_skb_pcount(skb);
    }
    if (scb->sacked & TCPCB_EVER_RETRANS) {
      if (scb->sacked & TCPCB_SACKED_RETRANS) tp->retrans_out -= std::min(tp->retrans_out, acked_pcount);
      flag |= FLAG_RETRANS_DATA_ACKED;
    } else if (!(scb->sacked & TCPCB_SACKED_ACKED)) {
      last_ackt = scb->sent_us;
      if (!have_ackt) first_ackt = last_ackt;
      have_ackt = true;
    }
    prior_delivered = scb->tx_delivered;
    if (scb->sacked & TCPCB_LOST) tp->lost_out -= std::min(tp->lost_out, acked_pcount);
    if (scb->sacked & TCPCB_SACKED_ACKED) {
      tp->sacked_out -= std::min(tp->sacked_out, acked_pcount);
    } else if (tcp_is_sack(tp)) {
      tp->delivered += acked_pcount;  // kernel: tcp_count_delivered()
      tcp_rack_advance(tp, scb->sacked, scb->end_seq, scb->sent_us);
    }
    tp->packets_out -= std::min(tp->packets_out, acked_pcount);
    *pkts_acked += acked_pcount;
    flag |= (scb->tcp_flags & TCPHDR_SYN) ? FLAG_SYN_ACKED : FLAG_DATA_ACKED;
    if (!fully_acked) break;
    skb_dequeue(&tp->rtx_queue);
    kfree_skb(skb);
  }
  if (tp->rtx_queue.head == nullptr) tcp_chrono_stop(tp, TCP_CHRONO_BUSY);  // "if (!skb)"
  if (between(tp->snd_up, prior_snd_una, tp->snd_una)) tp->snd_up = tp->snd_una;  // urgent data acked
  long sack_rtt_us = -1, seq_rtt_us = -1, ca_rtt_us = -1;
  if (have_ackt && !(flag & FLAG_RETRANS_DATA_ACKED)) {
    seq_rtt_us = static_cast<long>(tp->tcp_mstamp - first_ackt);
    ca_rtt_us = static_cast<long>(tp->tcp_mstamp - last_ackt);
    // "Conservatively mark a delayed ACK. It's typically from a lone runt packet over the round
    // trip to a receiver w/o out-of-order or CE events." (flag is this function's own: no
    // FLAG_CA_ALERT bits; for Reno tp->delivered does not count this ACK yet, as the kernel's.)
    if (*pkts_acked == 1 && fully_acked && prior_sacked == 0 && tp->snd_una - prior_snd_una < tp->mss_cache &&
        prior_delivered + 1 == tp->delivered && !(flag & FLAG_SYN_ACKED))
      flag |= FLAG_ACK_MAYBE_DELAYED;
  }
  // The SACKed skbs' samples: srtt from the first newly SACKed, the min RTT and the congestion
  // control's sample from the last, which replaces the cumulative one (the newest data wins).
  if (sack->first_sackt != 0) {
    sack_rtt_us = static_cast<long>(tp->tcp_mstamp - sack->first_sackt);
    ca_rtt_us = static_cast<long>(tp->tcp_mstamp - sack->last_sackt);
  }
  tcp_ack_update_rtt(tp, flag, seq_rtt_us, sack_rtt_us, ca_rtt_us);
  if (flag & FLAG_ACKED) {
    flag |= FLAG_SET_XMIT_TIMER;  // "set TLP or RTO timer"
    if (!tcp_is_sack(tp)) tcp_remove_reno_sacks(tp, *pkts_acked);
  }
  return flag;
}

// kernel: tcp_rearm_rto() (no TLP, no RACK reorder timer)
void tcp_rearm_rto(tcp_sock* tp) {
  if (tp->packets_out == 0) {
    sk_stop_timer(&tp->icsk_retransmit_timer);  // kernel: inet_csk_clear_xmit_timer(ICSK_TIME_RETRANS)
    tp->icsk_pending = 0;
    return;
  }
  tp->icsk_pending = ICSK_TIME_RETRANS;
  sk_reset_timer(&tp->icsk_retransmit_timer, tp->tcp_mstamp + tp->icsk_rto);
}

// kernel: tcp_ack_probe() — "Was it a usable window open?" Then the probe timer stops (and its
// backoff is cleared); else it is re-armed at the backed-off probe interval.
static void tcp_ack_probe(tcp_sock* tp) {
  sk_buff* head = tcp_send_head(tp);
  if (head == nullptr) return;
  if (!after(TCP_SKB_CB(head)->end_seq, tcp_wnd_end(tp))) {
    tp->icsk_backoff = 0;
    tp->icsk_pending = 0;
    sk_stop_timer(&tp->icsk_retransmit_timer);
  } else {
    tp->icsk_pending = ICSK_TIME_PROBE0;
    sk_reset_timer(&tp->icsk_retransmit_timer, tp->tcp_mstamp + tcp_probe0_when(tp));
  }
}

// kernel: tcp_ack(), net/ipv4/tcp_input.c
// kernel: tcp_ack_is_dubious() (FLAG_CA_ALERT without ECE: new SACK or DSACK information)
static bool tcp_ack_is_dubious(const tcp_sock* tp, int flag) {
  return !(flag & FLAG_NOT_DUP) || (flag & (FLAG_DATA_SACKED | FLAG_DSACKING_ACK)) || tp->icsk_ca_state != TCP_CA_Open;
}

// kernel: tcp_may_raise_cwnd() — "If reordering is high then always grow cwnd whenever data is
// delivered regardless of its ordering." (reordering only grows with SACK: tcp_sack.h)
static bool tcp_may_raise_cwnd(const tcp_sock* tp, int flag) {
  if (tp->icsk_ca_state == TCP_CA_CWR || tp->icsk_ca_state == TCP_CA_Recovery) return false;
  if (tp->reordering > TCP_REORDERING) return (flag & (FLAG_DATA_ACKED | FLAG_DATA_SACKED)) != 0;
  return (flag & FLAG_DATA_ACKED) != 0;
}

int tcp_ack(tcp_sock* tp, const sk_buff* skb, int flag, TcpXmitFn xmit) {
  const tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  TcpHdrView th = *TcpHdrView::at(absl::MakeConstSpan(skb->data, skb_headlen(skb)));
  uint32_t prior_snd_una = tp->snd_una;
  uint32_t ack = tcb->ack_seq;
  // "If the ack is older than previous acks then we can probably ignore it."
  if (before(ack, prior_snd_una)) return 0;
  // "If the ack includes data we haven't sent yet, discard this segment (RFC793 Section 3.9)."
  if (after(ack, tp->snd_nxt)) return -1;
  // "We passed data and got it acked, remove any soft error log. Something worked..."
  tp->sk_err_soft = 0;
  tp->icsk_probes_out = 0;
  tp->rcv_tstamp = tcp_jiffies32(tp);
  if (after(ack, prior_snd_una)) {
    flag |= FLAG_SND_UNA_ADVANCED;
    tp->icsk_retransmits = 0;
  }
  if (flag & FLAG_UPDATE_TS_RECENT) tcp_replace_ts_recent(tp, tcb->seq);
  if (tcb->seq != tcb->end_seq) flag |= FLAG_DATA;
  flag |= tcp_ack_update_window(tp, th.window(), ack, tcb->seq, (tcb->tcp_flags & TCPHDR_SYN) != 0);
  if (tp->packets_out == 0) {
    // no_queue: "If this ack opens up a zero window, clear backoff."
    if (tcp_send_head(tp) != nullptr) tcp_ack_probe(tp);
    return 1;
  }
  const uint32_t prior_delivered = tp->delivered;
  tcp_sacktag_state sack_state;
  if (tcb->sacked != 0) flag |= tcp_sacktag_write_queue(tp, skb, prior_snd_una, &sack_state);
  tp->delivered += sack_state.sack_delivered;  // kernel: tcp_count_delivered(sack_state.sack_delivered)
  uint32_t pkts_acked = 0;
  flag |= tcp_clean_rtx_queue(tp, prior_snd_una, &pkts_acked, &sack_state);
  if (tp->rtx_queue.head == nullptr && tp->write_queue.head == nullptr) sk_page_frag_release(tp);
  if (flag & FLAG_SET_XMIT_TIMER) tcp_rearm_rto(tp);
  int rexmit = REXMIT_NONE;
  const uint32_t prior_lost = tp->lost_out;
  if (tcp_ack_is_dubious(tp, flag)) {
    const uint32_t num_dupack = (flag & (FLAG_SND_UNA_ADVANCED | FLAG_NOT_DUP | FLAG_DSACKING_ACK)) ? 0 : 1;
    rexmit = tcp_fastretrans_alert(tp, prior_snd_una, num_dupack, flag);
  }
  // kernel: tcp_newly_delivered() — segments acked or SACKed by this ACK (for Reno: the dupack,
  // or the acked minus the dupacks that already counted them: tcp_add/remove_reno_sack[s]()).
  const uint32_t delivered = tp->delivered - prior_delivered;
  // kernel: tcp_cong_control() — PRR while reducing cwnd (tcp_sack.h), else the congestion
  // control's growth.
  if (tcp_in_cwnd_reduction(tp)) {
    tcp_cwnd_reduction(tp, delivered, tp->lost_out > prior_lost ? tp->lost_out - prior_lost : 0, flag);
  } else if (tcp_may_raise_cwnd(tp, flag)) {
    tcp_cong_avoid(tp, ack, delivered);
  }
  tcp_update_pacing_rate(tp);
  // kernel: tcp_xmit_recovery() — the lost segments go under the cwnd PRR just set; on entering
  // recovery PRR's "at least one" is the fast retransmit.
  if (rexmit == REXMIT_LOST) tcp_xmit_retransmit_queue(tp, xmit);
  return 1;
}

}  // namespace xmit
