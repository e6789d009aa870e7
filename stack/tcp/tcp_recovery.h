// stack/tcp/tcp_recovery.h — loss recovery and congestion control on the send side: duplicate-ACK
// fast retransmit with NewReno partial-ACK handling, the RTO's loss state, retransmission of the
// skbs marked lost, Reno slow start / congestion avoidance. Kernel counterparts:
// tcp_fastretrans_alert(), tcp_add_reno_sack(), tcp_remove_reno_sacks(), tcp_limit_reno_sacked(),
// tcp_enter_recovery(), tcp_mark_head_lost(), tcp_enter_loss() (net/ipv4/tcp_input.c);
// tcp_retransmit_skb(), tcp_xmit_retransmit_queue(), tcp_cwnd_validate() (net/ipv4/tcp_output.c);
// tcp_reno_cong_avoid(), tcp_slow_start(), tcp_cong_avoid_ai(), tcp_reno_ssthresh()
// (net/ipv4/tcp_cong.c).
//
// With SACK negotiated, tcp_fastretrans_alert() hands over to tcp_sack_fastretrans_alert()
// (tcp_sack.h: scoreboard, RACK loss marking, PRR). What this file's no-SACK path does differently
// from Linux's:
//  * Loss detection: the kernel's own no-SACK ("Reno") path: duplicate ACKs counted as sacked_out,
//    recovery at reordering (3) + 1, the head marked lost, NewReno (RFC 6582) retransmission on
//    each partial ACK. No tail loss probe.
//  * cwnd during recovery: Linux runs PRR (RFC 6937, tcp_cwnd_reduction()) for non-SACK flows too;
//    here cwnd drops to ssthresh at once (the dupacks in sacked_out keep packets flowing, as RFC
//    5681's inflation).
//  * Congestion control goes through the ops table (tcp_cong.h: Reno for a tcp_sock nobody
//    initialised, CUBIC after tcp_init_congestion_control()). No undo (DSACK / timestamps,
//    tcp_try_undo_*), no ECN, no F-RTO.
//  * A full ACK ends recovery at once; Linux's Reno path holds the Recovery state until an ACK
//    above high_seq (tcp_try_undo_recovery(), RFC 2582's false-fast-retransmit guard).
//  * tcp_enter_loss() clears every retransmission mark and marks the whole queue lost (with SACK:
//    all but the SACKed skbs), as Linux did before RACK (4.x); a retransmission is split only to
//    fit the current MSS (SACK blocks take header room), not to the cwnd.
#pragma once

#include <cstdint>

#include "stack/tcp/tcp_output.h"
#include "stack/tcp/tcp_sock.h"

namespace xmit {

inline constexpr uint32_t TCP_REORDERING = 3;  // kernel: sysctl_tcp_reordering default

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
// The RTO's loss state: ssthresh (unless already in loss), cwnd = in flight + 1, every skb lost.
// kernel: tcp_enter_loss()
void tcp_enter_loss(tcp_sock* tp);
// The loss-recovery state machine for an ACK that tcp_ack() found dubious (a duplicate, or any ACK
// outside the Open state). Returns true when the head must be retransmitted now whatever the cwnd
// (entering recovery, RFC 5681 §3.2 step 2; a partial ACK, RFC 6582 §3.2 step 5) — what PRR's
// "at least one segment on fast retransmit" gives Linux. kernel: tcp_fastretrans_alert()
bool tcp_fastretrans_alert(tcp_sock* tp, uint32_t prior_snd_una, uint32_t pkts_acked, int flag);

}  // namespace xmit
