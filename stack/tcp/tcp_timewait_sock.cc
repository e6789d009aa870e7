// stack/tcp/tcp_timewait_sock.cc — see tcp_timewait_sock.h.
#include "stack/tcp/tcp_timewait_sock.h"

#include "stack/tcp/tcp_conn.h"
#include "stack/tcp/tcp_conn_int.h"
#include "stack/tcp/tcp_input.h"
#include "stack/tcp/tcp_input_parse.h"
#include "stack/wire/tcp.h"

namespace xmit {

namespace {
constexpr uint32_t TCP_PAWS_WRAP = 60 * 60 * 24 * 24;  // kernel: TCP_PAWS_WRAP (24 days, seconds)
constexpr uint32_t TCP_PAWS_MSL = 60;                  // kernel: TCP_PAWS_MSL (seconds)

// kernel: tcp_paws_reject() over tcp_paws_check(rx_opt, 0), with the timewait sock's ts_recent.
bool tcp_tw_paws_reject(const tcp_timewait_sock& tw, uint32_t rcv_tsval, bool rst, uint32_t now_s) {
  if (static_cast<int32_t>(tw.tw_ts_recent - rcv_tsval) <= 0) return false;
  if (now_s >= tw.tw_ts_recent_stamp + TCP_PAWS_WRAP) return false;
  if (tw.tw_ts_recent == 0) return false;
  // "RST segments are not recommended to carry timestamp, and, if they do, it is recommended to
  // ignore PAWS because sender of RST is not guaranteed to have any valid timestamps."
  return !(rst && now_s >= tw.tw_ts_recent_stamp + TCP_PAWS_MSL);
}
}  // namespace

// kernel: tcp_time_wait(), net/ipv4/tcp_minisocks.c
void tcp_twsk_init(tcp_timewait_sock* tw, const tcp_sock* tp, uint8_t tos, uint32_t mark, uint32_t priority) {
  *tw = tcp_timewait_sock{};
  tw->tw_rcv_saddr = tp->saddr;
  tw->tw_daddr = tp->daddr;
  tw->tw_num = tp->sport;
  tw->tw_dport = tp->dport;
  tw->tw_tos = tos;
  tw->tw_mark = mark;
  tw->tw_priority = priority;
  tw->tw_rcv_wscale = tp->rx_opt.rcv_wscale;
  tw->tw_rcv_nxt = tp->rcv_nxt;
  tw->tw_snd_nxt = tp->snd_nxt;
  tw->tw_rcv_wnd = tcp_receive_window(tp);
  tw->tw_tstamp_ok = tp->rx_opt.tstamp_ok;
  tw->tw_ts_recent = tp->rx_opt.ts_recent;
  tw->tw_ts_recent_stamp = tp->ts_recent_stamp;
  tw->tw_ts_offset = tp->tsoffset;
  tw->tw_last_oow_ack_time = 0;
  tw->tw_substate = tp->sk_state == TCP_FIN_WAIT2 ? TCP_FIN_WAIT2 : TCP_TIME_WAIT;
  // inet_twsk_schedule(tw, timeo)
  tw->tw_expires = tp->tw_timer.pending ? tp->tw_timer.expires : tp->tcp_mstamp + TCP_TIMEWAIT_LEN_US;
}

namespace {
// kernel: tcp_in_window(), net/ipv4/tcp_minisocks.c
bool tcp_in_window(uint32_t seq, uint32_t end_seq, uint32_t s_win, uint32_t e_win) {
  if (seq == s_win) return true;
  if (after(end_seq, s_win) && before(seq, e_win)) return true;
  return seq == e_win && seq == end_seq;
}

// kernel: tcp_timewait_check_oow_rate_limit()
int tcp_timewait_check_oow_rate_limit(tcp_timewait_sock* tw, const sk_buff* skb, uint64_t now_us) {
  const uint32_t now_ms = static_cast<uint32_t>(now_us / 1000);
  return tcp_oow_rate_limited(skb, now_ms, &tw->tw_last_oow_ack_time) ? TCP_TW_SUCCESS : TCP_TW_ACK;
}
}  // namespace

// kernel: tcp_timewait_state_process(), net/ipv4/tcp_minisocks.c
int tcp_timewait_state_process(tcp_timewait_sock* tw, sk_buff* skb, uint64_t now_us) {
  tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  const uint8_t flags = tcb->tcp_flags;
  const uint32_t now_s = static_cast<uint32_t>(now_us / 1000000);
  tcp_options_received tmp_opt;
  bool paws_reject = false;
  const uint32_t hdr_len = (skb->data[12] >> 4) * 4u;
  if (hdr_len > 20 && tw->tw_tstamp_ok) {
    uint8_t sack_off = 0;
    tcp_parse_options(absl::MakeConstSpan(skb->data, hdr_len), false, &tmp_opt, &sack_off);
    if (tmp_opt.saw_tstamp) paws_reject = tcp_tw_paws_reject(*tw, tmp_opt.rcv_tsval, flags & TCPHDR_RST, now_s);
  }
  const uint32_t rcv_nxt = tw->tw_rcv_nxt;
  if (tw->tw_substate == TCP_FIN_WAIT2) {
    // "Just repeat all the checks of tcp_rcv_state_process()"
    // "Out of window, send ACK"
    if (paws_reject || !tcp_in_window(tcb->seq, tcb->end_seq, rcv_nxt, rcv_nxt + tw->tw_rcv_wnd))
      return tcp_timewait_check_oow_rate_limit(tw, skb, now_us);
    if (flags & TCPHDR_RST) {
      tw->tw_expires = 0;  // kill: inet_twsk_deschedule_put()
      return TCP_TW_SUCCESS;
    }
    if ((flags & TCPHDR_SYN) && !before(tcb->seq, rcv_nxt)) return TCP_TW_RST;
    // "Dup ACK?"
    if (!(flags & TCPHDR_ACK) || !after(tcb->end_seq, rcv_nxt) || tcb->end_seq == tcb->seq) return TCP_TW_SUCCESS;
    // "New data or FIN. If new data arrive after half-duplex close, reset."
    if (!(flags & TCPHDR_FIN) || tcb->end_seq != rcv_nxt + 1) return TCP_TW_RST;
    // "FIN arrived, enter true time-wait state."
    tw->tw_substate = TCP_TIME_WAIT;
    tw->tw_rcv_nxt = tcb->end_seq;
    if (tmp_opt.saw_tstamp) {
      tw->tw_ts_recent_stamp = now_s;
      tw->tw_ts_recent = tmp_opt.rcv_tsval;
    }
    tw->tw_expires = now_us + TCP_TIMEWAIT_LEN_US;  // inet_twsk_reschedule(tw, TCP_TIMEWAIT_LEN)
    return TCP_TW_ACK;
  }
  if (!paws_reject && tcb->seq == rcv_nxt && (tcb->seq == tcb->end_seq || (flags & TCPHDR_RST))) {
    // "In window segment, it may be only reset or bare ack."
    if (flags & TCPHDR_RST) {
      tw->tw_expires = 0;  // "TIME_WAIT assassination": inet_twsk_deschedule_put()
      return TCP_TW_SUCCESS;
    }
    tw->tw_expires = now_us + TCP_TIMEWAIT_LEN_US;  // inet_twsk_reschedule()
    if (tmp_opt.saw_tstamp) {
      tw->tw_ts_recent = tmp_opt.rcv_tsval;
      tw->tw_ts_recent_stamp = now_s;
    }
    return TCP_TW_SUCCESS;
  }
  // "Out of window segment. All the segments are ACKed immediately. The only exception is new
  // SYN." — newer sequence number, or newer timestamp.
  if ((flags & TCPHDR_SYN) && !(flags & (TCPHDR_RST | TCPHDR_ACK)) && !paws_reject &&
      (after(tcb->seq, rcv_nxt) ||
       (tmp_opt.saw_tstamp && static_cast<int32_t>(tw->tw_ts_recent - tmp_opt.rcv_tsval) < 0))) {
    uint32_t isn = tw->tw_snd_nxt + 65535 + 2;
    if (isn == 0) ++isn;
    tcb->tcp_tw_isn = isn;
    return TCP_TW_SYN;
  }
  if (flags & TCPHDR_RST) return TCP_TW_SUCCESS;
  // "If it is ACKless SYN it may be both old duplicate and new good SYN with random sequence
  // number <rcv_nxt. Do not reschedule in the last case."
  if (paws_reject || (flags & TCPHDR_ACK)) tw->tw_expires = now_us + TCP_TIMEWAIT_LEN_US;
  return tcp_timewait_check_oow_rate_limit(tw, skb, now_us);
}

// kernel: tcp_v4_timewait_ack() -> tcp_v4_send_ack(), net/ipv4/tcp_ipv4.c
int tcp_v4_timewait_ack(const tcp_timewait_sock& tw, SkbPool* pool, uint64_t now_us, TcpXmitFn xmit) {
  tcp_out_options opts;
  if (tw.tw_ts_recent != 0) {  // "if (tsecr)"
    opts.options |= OPTION_TS;
    opts.tsval = static_cast<uint32_t>(now_us / 1000) + tw.tw_ts_offset;  // tcp_tw_tsval()
    opts.tsecr = tw.tw_ts_recent;
  }
  const uint32_t win = tw.tw_rcv_wnd >> tw.tw_rcv_wscale;
  return tcp_send_ctl(pool, tw.tw_rcv_saddr, tw.tw_daddr, tw.tw_num, tw.tw_dport, tw.tw_snd_nxt, tw.tw_rcv_nxt,
                      TCPHDR_ACK, static_cast<uint16_t>(win > 65535 ? 65535 : win), opts, now_us, xmit);
}

}  // namespace xmit
