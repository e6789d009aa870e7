// stack/tcp/tcp_recovery.h — loss recovery and congestion control on the send side: duplicate-ACK
// fast retransmit with NewReno partial-ACK handling, the RTO's loss state, retransmission of the
// skbs marked lost, Reno slow start / congestion avoidance. Kernel counterparts:
// tcp_fastretrans_alert(), tcp_add_reno_sack(), tcp_remove_reno_sacks(), tcp_limit_reno_sacked(),
// tcp_check_reno_reordering(), tcp_process_loss(), tcp_try_to_open(), tcp_try_keep_open(),
// tcp_any_retrans_done(), tcp_enter_loss()
// (net/ipv4/tcp_input.c); tcp_newreno_mark_lost() (net/ipv4/tcp_recovery.c);
// tcp_retransmit_skb(), tcp_xmit_retransmit_queue(), tcp_cwnd_validate() (net/ipv4/tcp_output.c);
// tcp_reno_cong_avoid(), tcp_slow_start(), tcp_cong_avoid_ai(), tcp_reno_ssthresh()
// (net/ipv4/tcp_cong.c).
//
// With SACK negotiated, tcp_fastretrans_alert() hands over to tcp_sack_fastretrans_alert()
// (tcp_sack.h: scoreboard, RACK loss marking). What this file's no-SACK path does differently
// from Linux's:
//  * Loss detection: the kernel's own no-SACK ("Reno") path: duplicate ACKs counted as sacked_out
//    (and as delivered), the head marked lost at `reordering` (3) of them and recovery entered,
//    NewReno (RFC 6582) marking of the new head on each partial ACK. No tail loss probe.
//  * cwnd during recovery: PRR (RFC 6937), the SACK path's tcp_init_cwnd_reduction() /
//    tcp_cwnd_reduction() / tcp_end_cwnd_reduction() (tcp_sack.h), run by tcp_ack() as Linux's
//    tcp_cong_control(); the lost segments go under that cwnd (tcp_xmit_recovery()).
//  * Congestion control goes through the ops table (tcp_cong.h: Reno for a tcp_sock nobody
//    initialised, CUBIC after tcp_init_congestion_control()). No undo (DSACK / timestamps,
//    tcp_try_undo_*), no ECN, no F-RTO.
//  * Recovery and Loss end as Linux's tcp_try_undo_recovery() ends them: with SACK once high_seq
//    is acked; without, Recovery (PRR still running) and Loss are held until an ACK above
//    high_seq (RFC 2582's false-fast-retransmit guard), then cwnd = ssthresh.
//  * tcp_enter_loss() clears every retransmission mark and marks the whole queue lost (with SACK:
//    all but the SACKed skbs), as Linux did before RACK (4.x); a retransmission is split only to
//    fit the current MSS (SACK blocks take header room), not to the cwnd.
#pragma once

#include <cstdint>

#include "stack/tcp/tcp_output.h"
#include "stack/tcp/tcp_sock.h"

namespace xmit {

inline constexpr uint32_t TCP_REORDERING = 3;  // kernel: sysctl_tcp_reordering default
inline constexpr uint32_t TCP_MAX_REORDERING = 300;  // kernel: sysctl_tcp_max_reordering

// kernel: tcp_reno_ssthresh() — half the cwnd, at least 2.
inline uint32_t tcp_reno_ssthresh(const tcp_sock* tp) { return tp->snd_cwnd >> 1 > 2 ? tp->snd_cwnd >> 1 : 2; }
// kernel: tcp_in_slow_start()
inline bool tcp_in_slow_start(const tcp_sock* tp) { return tp->snd_cwnd < tp->snd_ssthresh; }
// kernel: tcp_is_cwnd_limited()
bool tcp_is_cwnd_limited(const tcp_sock* tp);
// kernel: tcp_cwnd_validate() (the is_cwnd_limited / max_packets_out record only; no idle restart)
void tcp_cwnd_validate(tcp_sock* tp, bool is_cwnd_limited);
// kernel: tcp_reno_cong_avoid() — slow start up to ssthresh (+acked), then +1 per cwnd acked.
void tcp_reno_cong_avoid(tcp_sock* tp, uint32_t acked);

// Retransmits at most `segs` MSS of `skb` (the rtx queue's, trimmed to snd_una first; the rest
// split off) and marks it. 0 or -errno. kernel: tcp_retransmit_skb() / __tcp_retransmit_skb()
int tcp_retransmit_skb(tcp_sock* tp, sk_buff* skb, uint32_t segs, TcpXmitFn xmit);
// Retransmits the skbs marked lost and not yet retransmitted while in flight < cwnd, each at most
// min(cwnd - in flight, tcp_tso_segs()) MSS. kernel: tcp_xmit_retransmit_queue()
void tcp_xmit_retransmit_queue(tcp_sock* tp, TcpXmitFn xmit);
// kernel: tcp_any_retrans_done() — retransmissions in flight (retrans_out), or the oldest unacked
// skb was retransmitted at some time (TCPCB_EVER_RETRANS).
bool tcp_any_retrans_done(const tcp_sock* tp);
// No loss to recover from on this ACK: Disorder while anything is SACKed, lost or
// tcp_any_retrans_done(), else Open; high_seq = snd_nxt when the state changes. Both the SACK and
// the no-SACK paths. kernel: tcp_try_to_open() + tcp_try_keep_open() (no ECE: never CWR)
void tcp_try_to_open(tcp_sock* tp);
// The RTO's loss state: ssthresh (unless already in loss), cwnd = in flight + 1, every skb lost.
// kernel: tcp_enter_loss()
void tcp_enter_loss(tcp_sock* tp);
// kernel: REXMIT_* of tcp_fastretrans_alert(), net/ipv4/tcp_input.c (no F-RTO: no REXMIT_NEW)
inline constexpr int REXMIT_NONE = 0;  // "no loss recovery to do"
inline constexpr int REXMIT_LOST = 1;  // "retransmit packets marked lost"

// The no-SACK (Reno) scoreboard for an ACK of new data, from tcp_clean_rtx_queue(): one acked
// segment fills the hole, the rest eat the duplicate ACKs counted in sacked_out; what was
// delivered goes to tp->delivered. kernel: tcp_remove_reno_sacks()
void tcp_remove_reno_sacks(tcp_sock* tp, uint32_t acked);
// The loss-recovery state machine for an ACK that tcp_ack() found dubious (a duplicate, or any ACK
// outside the Open state); `num_dupack` is 1 for a duplicate ACK. It marks losses and moves the
// state (entering recovery inits PRR); the cwnd is then PRR's (tcp_ack()'s tcp_cong_control()).
// Returns REXMIT_LOST when the lost segments are to be retransmitted. kernel: tcp_fastretrans_alert()
int tcp_fastretrans_alert(tcp_sock* tp, uint32_t prior_snd_una, uint32_t num_dupack, int flag);

}  // namespace xmit
