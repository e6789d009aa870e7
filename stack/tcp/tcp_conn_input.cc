// stack/tcp/tcp_conn_input.cc — segments for a socket in any state but LISTEN: SYN_SENT's
// handshake, the checks RST and SYN go through (RFC 5961), the FIN states' ACK transitions, TIME_WAIT.
// Kernel counterparts: tcp_v4_do_rcv() (net/ipv4/tcp_ipv4.c), tcp_rcv_state_process(),
// tcp_rcv_synsent_state_process(), tcp_validate_incoming(), tcp_reset(), tcp_finish_connect(),
// tcp_init_transfer(), tcp_send_challenge_ack() (net/ipv4/tcp_input.c), tcp_timewait_state_process()
// (net/ipv4/tcp_minisocks.c). Simplified: out-of-window and challenge ACKs rate-limited per socket
// only (no global tcp_challenge_ack_limit), no ECN.
#include <algorithm>

#include "stack/tcp/tcp_ack.h"
#include "stack/tcp/tcp_cong.h"
#include "stack/tcp/tcp_conn_int.h"
#include "stack/tcp/tcp_input.h"
#include "stack/tcp/tcp_input_parse.h"
#include "stack/tcp/tcp_mss.h"
#include "stack/tcp/tcp_output_ack.h"
#include "stack/tcp/tcp_sendmsg.h"
#include "stack/tcp/tcp_urg.h"
#include "stack/wire/tcp.h"

namespace xmit {

inline constexpr int FLAG_SLOWPATH = 0x100;  // kernel: tcp_input.c (no effect here)

// kernel: tcp_reset(), net/ipv4/tcp_input.c (with tcp_done_with_error())
void tcp_reset(tcp_sock* tp, TcpOps* ops) {
  int err;
  switch (tp->sk_state) {
    case TCP_SYN_SENT: err = ECONNREFUSED; break;
    case TCP_CLOSE_WAIT: err = EPIPE; break;
    case TCP_CLOSE: return;
    default: err = ECONNRESET;
  }
  tp->sk_err = err;
  tcp_write_queue_purge(tp);
  tp->packets_out = tp->lost_out = tp->retrans_out = tp->sacked_out = 0;
  tcp_done(tp, ops);
}

// kernel: tcp_init_transfer(), net/ipv4/tcp_input.c (no metrics cache, no BPF, Reno only)
void tcp_init_transfer(tcp_sock* tp) {
  // "Cut cwnd down to 1 per RFC5681 if SYN or SYN-ACK has been retransmitted."
  tp->snd_cwnd = tp->total_retrans > 1 ? 1 : 10;  // tcp_init_cwnd(): TCP_INIT_CWND
  tp->snd_ssthresh = 0x7fffffff;                  // tcp_init_metrics(): TCP_INFINITE_SSTHRESH
  tp->snd_cwnd_cnt = 0;
  tp->icsk_ca_state = TCP_CA_Open;
  tp->lost_out = tp->retrans_out = tp->sacked_out = 0;
  tp->rcvq_space = std::min<uint32_t>(tp->rcv_wnd, 10u * tp->advmss);  // tcp_init_buffer_space()
  // kernel: tcp_init_congestion_control() — the ops chosen for the socket, else the default
  // (net.ipv4.tcp_congestion_control = cubic), and their init.
  tcp_init_congestion_control(tp, tp->icsk_ca_ops != nullptr ? tp->icsk_ca_ops : &tcp_cubic);
}

// kernel: tcp_send_challenge_ack() — RFC 5961 §3.2/§4.2: an ACK the true peer answers with a
// correct RST (or ignores).
static void tcp_send_challenge_ack(tcp_sock* tp, TcpXmitFn xmit) {
  if (__tcp_oow_rate_limited(tp)) return;
  tcp_send_ack(tp, xmit);
}

// kernel: tcp_reset_check() — "RFC 5961 3.2 (extend to match against (RCV.NXT - 1) after a FIN)"
static bool tcp_reset_check(const tcp_sock* tp, const tcp_skb_cb* tcb) {
  return tcb->seq == tp->rcv_nxt - 1 && (TCPF(tp->sk_state) & (TCPF(TCP_CLOSE_WAIT) | TCPF(TCP_LAST_ACK) | TCPF(TCP_CLOSING)));
}

// Parses the options of a segment as tcp_rcv_established() / tcp_rcv_state_process() do.
static void tcp_parse_in(tcp_sock* tp, sk_buff* skb, bool estab) {
  const uint32_t hdr_len = (skb->data[12] >> 4) * 4u;
  uint8_t sack_off = 0;
  tcp_parse_options(absl::MakeConstSpan(skb->data, hdr_len), estab, &tp->rx_opt, &sack_off);
  TCP_SKB_CB(skb)->sacked = sack_off;  // kernel: tcp_parse_options() records it there (tcp_ack()'s SACK tagging)
  if (tp->rx_opt.saw_tstamp && tp->rx_opt.rcv_tsecr != 0) tp->rx_opt.rcv_tsecr -= tp->tsoffset;
}

// kernel: tcp_validate_incoming() — PAWS, the window, RST (RFC 5961 §3), SYN (§4). false: the
// segment was dealt with (and freed).
static bool tcp_validate_incoming(tcp_sock* tp, sk_buff* skb, TcpXmitFn xmit, TcpOps* ops) {
  const tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  const uint8_t flags = tcb->tcp_flags;
  // "RFC1323: H1. Apply PAWS check first."
  if (tp->rx_opt.saw_tstamp && tp->rx_opt.tstamp_ok && !(flags & TCPHDR_RST) && !tcp_paws_check(tp, 1)) {
    if (flags & TCPHDR_SYN) {
      tcp_send_challenge_ack(tp, xmit);  // syn_challenge
    } else if (!tcp_oow_rate_limited(tp, skb)) {
      tcp_send_dupack(tp, skb, xmit);
    }
    kfree_skb(skb);
    return false;
  }
  // "Step 1: check sequence number"
  if (!tcp_sequence(tp, tcb->seq, tcb->end_seq)) {
    if (!(flags & TCPHDR_RST)) {
      if (flags & TCPHDR_SYN) {
        tcp_send_challenge_ack(tp, xmit);  // syn_challenge
      } else if (!tcp_oow_rate_limited(tp, skb)) {
        tcp_send_dupack(tp, skb, xmit);
      }
    } else if (tcp_reset_check(tp, tcb)) {
      kfree_skb(skb);
      tcp_reset(tp, ops);
      return false;
    }
    kfree_skb(skb);
    return false;
  }
  // "Step 2: check RST bit"
  if (flags & TCPHDR_RST) {
    kfree_skb(skb);
    if (tcb->seq == tp->rcv_nxt || tcp_reset_check(tp, tcb)) {
      tcp_reset(tp, ops);
    } else {
      tcp_send_challenge_ack(tp, xmit);
    }
    return false;
  }
  // "step 4: Check for a SYN — RFC 5961 4.2 : Send a challenge ack" — except the peer's SYN-ACK
  // of a simultaneous open, which completes it.
  const bool crossed_synack = tp->sk_state == TCP_SYN_RECV && (flags & TCPHDR_ACK) && tcb->seq + 1 == tcb->end_seq &&
                              tcb->seq + 1 == tp->rcv_nxt && tcb->ack_seq == tp->snd_nxt;
  if ((flags & TCPHDR_SYN) && !crossed_synack) {
    tcp_send_challenge_ack(tp, xmit);
    kfree_skb(skb);
    return false;
  }
  return true;
}

// kernel: tcp_finish_connect(), net/ipv4/tcp_input.c
static void tcp_finish_connect(tcp_sock* tp) {
  tcp_set_state(tp, TCP_ESTABLISHED);
  tp->icsk_ack.lrcvtime = tcp_jiffies32(tp);
  tcp_init_transfer(tp);
  tp->lsndtime = tcp_jiffies32(tp);
  tp->rcv_tstamp = tcp_jiffies32(tp);
  if (tp->sock_keepopen) sk_reset_timer(&tp->sk_timer, tp->tcp_mstamp + keepalive_time_when(tp));
}

// kernel: tcp_rcv_synsent_state_process(). Returns 1 when the caller must answer with a reset,
// 0 when done (skb freed).
static int tcp_rcv_synsent_state_process(tcp_sock* tp, sk_buff* skb, uint32_t dst_mtu, TcpXmitFn xmit,
                                         TcpOps* ops) {
  const tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  const uint8_t flags = tcb->tcp_flags;
  const uint16_t saved_clamp = tp->rx_opt.mss_clamp;
  tcp_parse_in(tp, skb, false);
  auto undo = [&] {  // tcp_clear_options() + the saved clamp ("discard_and_undo", "reset_and_undo")
    tp->rx_opt.tstamp_ok = tp->rx_opt.sack_ok = tp->rx_opt.wscale_ok = false;
    tp->rx_opt.snd_wscale = 0;
    tp->rx_opt.mss_clamp = saved_clamp;
  };
  if (flags & TCPHDR_ACK) {
    // "If SEG.ACK =< ISS, or SEG.ACK > SND.NXT, send a reset (unless the RST bit is set, if so drop
    // the segment and return)"
    if (!after(tcb->ack_seq, tp->snd_una) || after(tcb->ack_seq, tp->snd_nxt)) {
      undo();
      return 1;  // tcp_v4_send_reset() never answers a RST
    }
    if (tp->rx_opt.saw_tstamp && tp->rx_opt.rcv_tsecr != 0 &&
        (before(tp->rx_opt.rcv_tsecr, tp->retrans_stamp) || after(tp->rx_opt.rcv_tsecr, tcp_jiffies32(tp)))) {
      undo();  // PAWSACTIVEREJECTED
      return 1;
    }
    // "Now ACK is acceptable. If the RST bit is set ... signal the user "error: connection reset""
    if (flags & TCPHDR_RST) {
      kfree_skb(skb);
      tcp_reset(tp, ops);
      return 0;
    }
    // "fifth, if neither of the SYN or RST bits is set then drop the segment and return."
    if (!(flags & TCPHDR_SYN)) {
      undo();
      kfree_skb(skb);
      return 0;
    }
    tp->snd_wl1 = tcb->seq;  // tcp_init_wl()
    tcp_ack(tp, skb, FLAG_SLOWPATH, xmit);
    // "Ok.. it's good. Set up sequence numbers and move to established."
    tp->rcv_nxt = tcb->seq + 1;
    tp->rcv_wup = tcb->seq + 1;
    // "RFC1323: The window in SYN & SYN/ACK segments is never scaled."
    tp->snd_wnd = load_be16(skb->data + 14);
    if (!tp->rx_opt.wscale_ok) {
      tp->rx_opt.snd_wscale = tp->rx_opt.rcv_wscale = 0;
      tp->window_clamp = std::min<uint32_t>(tp->window_clamp, 65535);
    }
    if (tp->rx_opt.saw_tstamp) {
      tp->rx_opt.tstamp_ok = true;
      tp->tcp_header_len = 20 + TCPOLEN_TSTAMP_ALIGNED;
      tp->advmss = static_cast<uint16_t>(tp->advmss - TCPOLEN_TSTAMP_ALIGNED);
      tp->rx_opt.ts_recent = tp->rx_opt.rcv_tsval;  // tcp_store_ts_recent()
      tp->ts_recent_stamp = static_cast<uint32_t>(tp->tcp_mstamp / 1000000);
    } else {
      tp->tcp_header_len = 20;
    }
    tcp_sync_mss(tp, tp->pmtu_cookie != 0 ? tp->pmtu_cookie : dst_mtu);
    tcp_initialize_rcv_mss(tp);
    tp->copied_seq = tp->rcv_nxt;
    tcp_finish_connect(tp);
    kfree_skb(skb);  // a SYN-ACK's data is not queued (the kernel's only with Fast Open)
    if (tp->rskq_defer_accept != 0 || inet_csk_in_pingpong_mode(tp)) {
      // "Save one ACK. Data will be ready after several ticks" — TCP_DEFER_ACCEPT set on the
      // connecting socket: the ACK waits for the first data (or TCP_DELACK_MAX), nothing else is
      // sent now (goto consume).
      inet_csk_schedule_ack(tp);
      tcp_enter_quickack_mode(tp, TCP_MAX_QUICKACKS);
      inet_csk_reset_dack_timer(tp, tcp_jiffies32(tp) + TCP_DELACK_MAX);
      return 0;
    }
    // "tcp_send_ack(sk)"; then step 6 onward by hand (tcp_data_snd_check()).
    tcp_send_ack(tp, xmit);
    if (tcp_send_head(tp) != nullptr) tcp_push_pending_frames(tp, tcp_current_mss(tp, dst_mtu), tp->nonagle, xmit);
    return 0;
  }
  // "No ACK in the segment"
  if (flags & TCPHDR_RST) {
    undo();
    kfree_skb(skb);
    return 0;
  }
  if (tp->ts_recent_stamp != 0 && tp->rx_opt.saw_tstamp && !tcp_paws_check(tp, 0)) {  // "PAWS check."
    undo();
    kfree_skb(skb);
    return 0;
  }
  if (flags & TCPHDR_SYN) {
    // "We see SYN without ACK. It is attempt of simultaneous connect with crossed SYNs."
    tcp_set_state(tp, TCP_SYN_RECV);
    if (tp->rx_opt.saw_tstamp) {
      tp->rx_opt.tstamp_ok = true;
      tp->rx_opt.ts_recent = tp->rx_opt.rcv_tsval;  // tcp_store_ts_recent()
      tp->ts_recent_stamp = static_cast<uint32_t>(tp->tcp_mstamp / 1000000);
      tp->tcp_header_len = 20 + TCPOLEN_TSTAMP_ALIGNED;
    } else {
      tp->tcp_header_len = 20;
    }
    tp->rcv_nxt = tp->copied_seq = tp->rcv_wup = tcb->seq + 1;
    // "RFC1323: The window in SYN & SYN/ACK segments is never scaled."
    tp->snd_wnd = load_be16(skb->data + 14);
    tp->snd_wl1 = tcb->seq;
    tp->max_window = tp->snd_wnd;
    tcp_sync_mss(tp, tp->pmtu_cookie != 0 ? tp->pmtu_cookie : dst_mtu);
    tcp_initialize_rcv_mss(tp);
    // tcp_send_synack(): the SYN in the retransmit queue becomes a SYN-ACK.
    if (sk_buff* syn = tp->rtx_queue.head; syn != nullptr && (TCP_SKB_CB(syn)->tcp_flags & TCPHDR_SYN)) {
      TCP_SKB_CB(syn)->tcp_flags |= TCPHDR_ACK;
      tcp_transmit_skb(tp, syn, xmit);
    }
    kfree_skb(skb);
    return 0;
  }
  // "fifth, if neither of the SYN or RST bits is set then drop the segment and return."
  undo();
  kfree_skb(skb);
  return 0;
}

// kernel: tcp_timewait_state_process() for a full socket its owner keeps in TIME_WAIT (the
// protocol's test harness; TcpStack makes a tcp_timewait_sock instead): a timewait sock copied from
// it does the work, and what that changed comes back (ts_recent, the rate limit, the deadline).
int tcp_timewait_state_process(tcp_sock* tp, sk_buff* skb, TcpXmitFn xmit, TcpOps* ops) {
  tcp_timewait_sock tw;
  tcp_twsk_init(&tw, tp, 0, 0, 0);
  tw.tw_last_oow_ack_time = tp->last_oow_ack_time;
  tw.tw_expires = tp->tw_timer.expires;
  const int status = tcp_timewait_state_process(&tw, skb, tp->tcp_mstamp);
  tp->rx_opt.ts_recent = tw.tw_ts_recent;
  tp->ts_recent_stamp = tw.tw_ts_recent_stamp;
  tp->last_oow_ack_time = tw.tw_last_oow_ack_time;
  if (status == TCP_TW_SYN) return TCP_TW_SYN;  // the skb stays the caller's
  kfree_skb(skb);
  if (tw.tw_expires == 0) {
    tcp_done(tp, ops);  // "TIME_WAIT assassination"
    return 0;
  }
  if (tw.tw_expires != tp->tw_timer.expires) sk_reset_timer(&tp->tw_timer, tw.tw_expires);
  if (status == TCP_TW_ACK) tcp_v4_timewait_ack(tp, xmit);
  return 0;
}

// kernel: tcp_v4_timewait_ack()
void tcp_v4_timewait_ack(tcp_sock* tp, TcpXmitFn xmit) { tcp_send_ack(tp, xmit); }

// kernel: tcp_rcv_state_process() for the synchronized states (and RST/SYN in ESTABLISHED, which
// tcp_rcv_established() leaves to tcp_validate_incoming()). Returns 1 when the caller must answer
// `skb` with a reset (and free it); else `skb` is consumed.
static int tcp_rcv_state_process(tcp_sock* tp, sk_buff* skb, uint32_t dst_mtu, TcpXmitFn xmit, TcpOps* ops) {
  const tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  const uint8_t flags = tcb->tcp_flags;
  if (!(flags & (TCPHDR_ACK | TCPHDR_RST | TCPHDR_SYN))) {
    kfree_skb(skb);
    return 0;
  }
  tcp_parse_in(tp, skb, true);
  if (!tcp_validate_incoming(tp, skb, xmit, ops)) return 0;
  // "step 5: check the ACK field"
  int acked = tcp_ack(tp, skb, FLAG_SLOWPATH | FLAG_UPDATE_TS_RECENT, xmit);
  if (acked <= 0 && tp->sk_state == TCP_SYN_RECV) {
    if (acked < 0) return 1;  // "send one RST"
    kfree_skb(skb);
    return 0;
  }
  if (acked < 0) {
    tcp_send_challenge_ack(tp, xmit);
    kfree_skb(skb);
    return 0;
  }
  const uint32_t hdr_len = (skb->data[12] >> 4) * 4u;
  switch (tp->sk_state) {
    case TCP_SYN_RECV:
      // A child's final ACK (tcp_check_req() made the child from its request).
      tp->delivered++;  // "SYN-ACK delivery isn't tracked in tcp_ack"
      tp->retrans_stamp = 0;
      tcp_init_transfer(tp);
      tp->copied_seq = tp->rcv_nxt;
      tcp_set_state(tp, TCP_ESTABLISHED);
      tp->snd_una = tcb->ack_seq;
      tp->snd_wnd = uint32_t{load_be16(skb->data + 14)} << tp->rx_opt.snd_wscale;
      tp->snd_wl1 = tcb->seq;  // tcp_init_wl()
      if (tp->rx_opt.tstamp_ok) tp->advmss = static_cast<uint16_t>(tp->advmss - TCPOLEN_TSTAMP_ALIGNED);
      tcp_update_pacing_rate(tp);  // "if (!inet_csk(sk)->icsk_ca_ops->cong_control)"
      tcp_initialize_rcv_mss(tp);
      break;
    case TCP_FIN_WAIT1:
      if (tp->snd_una != tp->write_seq) break;
      tcp_set_state(tp, TCP_FIN_WAIT2);
      tp->sk_shutdown |= SEND_SHUTDOWN;
      if (!tp->sock_dead) break;  // "Wake up lingering close()"
      if (tp->linger2 < 0) {
        tcp_done(tp, ops);
        return 1;
      }
      if (tcb->end_seq != tcb->seq && after(tcb->end_seq - ((flags & TCPHDR_FIN) ? 1 : 0), tp->rcv_nxt)) {
        // "Receive out of order FIN after close()"
        tcp_done(tp, ops);
        return 1;
      }
      {
        // The orphan waits tcp_fin_time() in FIN_WAIT2: beyond TCP_TIMEWAIT_LEN first in the
        // keepalive timer; with a FIN in this segment ("Bad case. We could lose such FIN
        // otherwise.") all of it there; else as a timewait sock in substate FIN_WAIT2.
        const uint64_t tmo = tcp_fin_time(tp);
        if (tmo > TCP_TIMEWAIT_LEN_US) {
          sk_reset_timer(&tp->sk_timer, tp->tcp_mstamp + tmo - TCP_TIMEWAIT_LEN_US);
        } else if (flags & TCPHDR_FIN) {
          sk_reset_timer(&tp->sk_timer, tp->tcp_mstamp + tmo);
        } else {
          kfree_skb(skb);  // "goto consume"
          tcp_time_wait_fin_wait2(tp, tmo, ops);  // tp may be gone
          return 0;
        }
      }
      break;
    case TCP_CLOSING:
      if (tp->snd_una == tp->write_seq) {
        tcp_time_wait(tp);
        kfree_skb(skb);
        return 0;
      }
      break;
    case TCP_LAST_ACK:
      if (tp->snd_una == tp->write_seq) {
        tcp_done(tp, ops);
        kfree_skb(skb);
        return 0;
      }
      break;
    default:
      break;
  }
  // "step 6: check the URG bit"
  tcp_urg(tp, skb);
  // "step 7: process the segment text"
  switch (tp->sk_state) {
    case TCP_CLOSE_WAIT:
    case TCP_CLOSING:
    case TCP_LAST_ACK:
      if (!before(tcb->seq, tp->rcv_nxt)) {  // after the peer's FIN: nothing to queue
        kfree_skb(skb);
        skb = nullptr;
      }
      break;
    case TCP_FIN_WAIT1:
    case TCP_FIN_WAIT2:
      // "RFC 793 says to queue data in these states, RFC 1122 says we MUST send a reset."
      if ((tp->sk_shutdown & RCV_SHUTDOWN) && tcb->end_seq != tcb->seq &&
          after(tcb->end_seq - ((flags & TCPHDR_FIN) ? 1 : 0), tp->rcv_nxt)) {
        tcp_reset(tp, ops);
        return 1;
      }
      break;
    default:
      break;
  }
  if (skb != nullptr) {
    skb_pull(skb, hdr_len);
    tcp_data_queue(tp, skb);
  }
  // "tcp_data could move socket to TIME-WAIT"
  if (tp->sk_state != TCP_CLOSE) {
    if (tcp_send_head(tp) != nullptr) tcp_push_pending_frames(tp, tcp_current_mss(tp, dst_mtu), tp->nonagle, xmit);
    tcp_ack_snd_check(tp, xmit);
  }
  return 0;
}

// kernel: tcp_v4_do_rcv(), net/ipv4/tcp_ipv4.c
void tcp_v4_do_rcv(tcp_sock* tp, sk_buff* skb, uint32_t dst_mtu, TcpXmitFn xmit, TcpOps* ops) {
  const uint8_t flags = TCP_SKB_CB(skb)->tcp_flags;
  SkbPool* const pool = tp->skb_pool;  // done() may have freed an orphan by the time a reset goes
  int reset = 0;
  // kernel: tcp_segs_in() — tcp_v4_rcv() for a full socket, tcp_child_process() for a new child
  // (a listener's segments and a TIME_WAIT's are not counted).
  if (tp->sk_state != TCP_LISTEN && tp->sk_state != TCP_TIME_WAIT) {
    const uint32_t segs_in = std::max<uint32_t>(1, skb_shinfo(skb)->gso_segs);
    tp->segs_in += segs_in;
    if (skb->len > (skb->data[12] >> 4) * 4u) tp->data_segs_in += segs_in;  // skb->len > __tcp_hdrlen()
  }
  switch (tp->sk_state) {
    case TCP_ESTABLISHED:
      if (!(flags & (TCPHDR_RST | TCPHDR_SYN))) {
        tcp_rcv_established(tp, skb, dst_mtu, xmit);
        return;
      }
      reset = tcp_rcv_state_process(tp, skb, dst_mtu, xmit, ops);
      break;
    case TCP_LISTEN:
      tcp_v4_listen_rcv(tp, skb, dst_mtu, xmit, ops);
      return;
    case TCP_SYN_SENT:
      // The reset answers the segment, so the segment must outlive the decision.
      if (tcp_rcv_synsent_state_process(tp, skb, dst_mtu, xmit, ops) == 1) {
        tcp_v4_send_reset(skb, *TCP_SKB_CB(skb), pool, xmit);
        kfree_skb(skb);
      }
      return;
    case TCP_TIME_WAIT:
      // A caller with listeners to offer a new SYN calls tcp_timewait_state_process() itself
      // (TcpStack::handler()); here no listener takes it: acknowledged as tcp_v4_rcv() does.
      if (tcp_timewait_state_process(tp, skb, xmit, ops) == TCP_TW_SYN) {
        tcp_v4_timewait_ack(tp, xmit);  // TCP_TW_SYN falls through to TCP_TW_ACK: not rate-limited
        kfree_skb(skb);
      }
      return;
    case TCP_CLOSE:
      // No socket wants it (the owner should have unhashed this one).
      tcp_v4_send_reset(skb, *TCP_SKB_CB(skb), tp->skb_pool, xmit);
      kfree_skb(skb);
      return;
    default:
      reset = tcp_rcv_state_process(tp, skb, dst_mtu, xmit, ops);
      break;
  }
  if (reset == 1) {
    tcp_v4_send_reset(skb, *TCP_SKB_CB(skb), pool, xmit);
    kfree_skb(skb);
  }
}

}  // namespace xmit
