// stack/tcp/tcp_output_ack.h — when and how the receive side acknowledges: the window offered from
// free receive space, pure ACKs, the delayed-ACK engine and quick-ACK mode. Kernel counterparts:
// __tcp_select_window(), tcp_send_ack(), tcp_send_delayed_ack(), tcp_event_ack_sent()
// (net/ipv4/tcp_output.c); tcp_incr_quickack(), tcp_enter_quickack_mode(), tcp_in_quickack_mode(),
// tcp_dec_quickack_mode(), inet_csk_schedule_ack() (net/ipv4/tcp_input.c, include/net/*.h).
// Simplified: no ACK compression for SACK flows (tcp_sack_compress_send_ack), no DCTCP/ECN
// special ACKs, no memory-pressure paths (ICSK_ACK_NOMEM).
#pragma once

#include <cstdint>

#include "stack/tcp/tcp_output.h"
#include "stack/tcp/tcp_sock.h"

namespace xmit {

inline constexpr uint32_t TCP_ATO_MIN = 40;      // ms, kernel: HZ / 25
inline constexpr uint32_t TCP_DELACK_MIN = 40;   // ms, kernel: HZ / 25
inline constexpr uint32_t TCP_DELACK_MAX = 200;  // ms, kernel: HZ / 5 (icsk_delack_max)
inline constexpr uint32_t TCP_MAX_QUICKACKS = 16;
inline constexpr uint32_t TCP_MIN_MSS = 88;      // kernel: include/net/tcp.h

// The kernel's jiffies at HZ = 1000: tcp_mstamp in ms. kernel: tcp_jiffies32
inline uint32_t tcp_jiffies32(const tcp_sock* tp) { return static_cast<uint32_t>(tp->tcp_mstamp / 1000); }

// kernel: inet_csk_schedule_ack(), inet_csk_ack_scheduled()
inline void inet_csk_schedule_ack(tcp_sock* tp) { tp->icsk_ack.pending |= ICSK_ACK_SCHED; }
inline bool inet_csk_ack_scheduled(const tcp_sock* tp) { return (tp->icsk_ack.pending & ICSK_ACK_SCHED) != 0; }
// kernel: inet_csk_reset_xmit_timer(sk, ICSK_TIME_DACK, ...) — the delayed-ACK timer armed for
// `timeout` (tcp_jiffies32's ms clock).
inline void inet_csk_reset_dack_timer(tcp_sock* tp, uint32_t timeout) {
  tp->icsk_ack.pending |= ICSK_ACK_TIMER;
  tp->icsk_ack.timeout = timeout;
  sk_reset_timer(&tp->icsk_delack_timer, uint64_t{timeout} * 1000);
}
// kernel: tcp_in_quickack_mode() (no dst_quick_ack route metric)
// Interactive (pingpong) mode: ACKs wait for a reply to ride on. A reply sent within ato of the
// data it answers counts (tcp_event_data_sent()); a missed delayed ACK or quick-ACK mode leaves it.
// kernel: inet_csk_in_pingpong_mode(), inet_csk_enter_pingpong_mode(), inet_csk_exit_pingpong_mode(),
// inet_csk_inc_pingpong_cnt(), include/net/inet_connection_sock.h
inline bool inet_csk_in_pingpong_mode(const tcp_sock* tp) { return tp->icsk_ack.pingpong >= tp->sysctl_tcp_pingpong_thresh; }
inline void inet_csk_enter_pingpong_mode(tcp_sock* tp) { tp->icsk_ack.pingpong = tp->sysctl_tcp_pingpong_thresh; }
inline void inet_csk_exit_pingpong_mode(tcp_sock* tp) { tp->icsk_ack.pingpong = 0; }
inline void inet_csk_inc_pingpong_cnt(tcp_sock* tp) {
  if (tp->icsk_ack.pingpong < 255) ++tp->icsk_ack.pingpong;
}
// kernel: tcp_in_quickack_mode() (no dst_quick_ack route metric)
inline bool tcp_in_quickack_mode(const tcp_sock* tp) { return tp->icsk_ack.quick != 0 && !inet_csk_in_pingpong_mode(tp); }
// kernel: tcp_incr_quickack() — up to rcv_wnd / (2 * rcv_mss) quick ACKs (at least 2), at most max.
void tcp_incr_quickack(tcp_sock* tp, uint32_t max_quickacks);
// kernel: tcp_enter_quickack_mode() — plus leaves pingpong and resets ato to TCP_ATO_MIN.
void tcp_enter_quickack_mode(tcp_sock* tp, uint32_t max_quickacks);
// kernel: tcp_initialize_rcv_mss() — min(advmss, mss_cache, rcv_wnd / 2, 536), at least 88.
void tcp_initialize_rcv_mss(tcp_sock* tp);

// The window the free receive space allows (unscaled bytes); see the rules at the definition.
// kernel: __tcp_select_window()
uint32_t tcp_select_window_core(tcp_sock* tp);

// Every segment sent with ACK: one quick ACK used up, the delayed ACK cancelled.
// kernel: tcp_event_ack_sent() + tcp_dec_quickack_mode() + inet_csk_clear_xmit_timer(ICSK_TIME_DACK)
void tcp_event_ack_sent(tcp_sock* tp);
// A segment with data left: "If it is a reply for ato after last received packet, increase
// pingpong count." (No CA_EVENT_TX_START: tcp_cong.h.) kernel: tcp_event_data_sent()
inline void tcp_event_data_sent(tcp_sock* tp) {
  tp->lsndtime = tcp_jiffies32(tp);
  if (tcp_jiffies32(tp) - tp->icsk_ack.lrcvtime < tp->icsk_ack.ato) inet_csk_inc_pingpong_cnt(tp);
}

// A pure ACK now (seq snd_nxt). When no skb is free: ACK scheduled, retried by the delayed-ACK
// timer after TCP_DELACK_MAX. kernel: tcp_send_ack() / __tcp_send_ack()
void tcp_send_ack(tcp_sock* tp, TcpXmitFn xmit);
// Arms the delayed-ACK timer: ato bounded by the RTT estimate and 500 ms (200 ms in pingpong or
// after a push), an earlier deadline kept, an ACK sent now when the armed one is within ato/4.
// kernel: tcp_send_delayed_ack()
void tcp_send_delayed_ack(tcp_sock* tp, TcpXmitFn xmit);
// kernel: tcp_delack_timer_handler() — the delayed ACK is due: inflate ato (or leave pingpong), ACK.
void tcp_delack_timer_handler(tcp_sock* tp, TcpXmitFn xmit);

}  // namespace xmit
