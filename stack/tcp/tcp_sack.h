// stack/tcp/tcp_sack.h — SACK (RFC 2018) both ways. Receiver: the blocks our ACKs carry, kept as
// the kernel keeps tp->selective_acks (most recent first, extended and coalesced as out-of-order
// data arrives, removed as rcv_nxt passes them) and the DSACK block (RFC 2883) for duplicates.
// Sender: the scoreboard — tcp_sacktag_write_queue() marks the skbs the peer SACKed, and with SACK
// the recovery state machine (tcp_sack_fastretrans_alert) enters recovery when RACK (tcp_rack.h)
// marks a segment lost; cwnd is reduced by PRR (tcp_cwnd_reduction, RFC 6937), which the no-SACK
// path (tcp_recovery.h) uses too.
// Kernel counterparts: tcp_sack_extend(), tcp_dsack_set(), tcp_dsack_extend(),
// tcp_sack_maybe_coalesce(), tcp_sack_new_ofo_skb(), tcp_sack_remove(), tcp_sacktag_write_queue(),
// tcp_sacktag_one(), tcp_check_dsack(), tcp_is_sackblock_valid(), tcp_fastretrans_alert(),
// tcp_enter_recovery(), tcp_init/end_cwnd_reduction(), tcp_cwnd_reduction() (net/ipv4/tcp_input.c).
//
// Simplified relative to Linux:
//  * Only whole skbs inside a block are tagged: an skb a block covers in part (a GSO skb of
//    several segments) stays unmarked (the kernel splits or shifts it: tcp_match_skb_to_sack(),
//    tcp_shift_skb_data()). Segments sent one per skb, as the MSS-sized ones are, are exact.
//  * DSACK blocks are recognised (tcp_check_dsack) and ignored: no undo (tcp_try_undo_dsack,
//    tcp_try_undo_recovery, tcp_try_undo_partial, undo_marker/undo_retrans), no DSACK-driven
//    growth of reo_wnd (tcp_rack_update_reo_wnd).
//  * SACK blocks on an old ACK (below snd_una) are ignored; no reneging check (tcp_check_sack_reneging).
//  * Reordering: reord_seen counts SACKs that fill below the highest SACKed sequence with
//    never-retransmitted data, and reordering grows to that distance in segments (as
//    tcp_check_sack_reordering()); no tcp_sack_compress_send_ack (ACKs go at once with
//    out-of-order data held).
#pragma once

#include <cstdint>

#include "stack/tcp/tcp_output.h"
#include "stack/tcp/tcp_sock.h"

namespace xmit {

// kernel: tcp_is_sack(), tcp_is_reno()
inline bool tcp_is_sack(const tcp_sock* tp) { return tp->rx_opt.sack_ok; }

// Receiver. All of these are no-ops unless sack_ok (kernel: tcp_is_sack() and sysctl_tcp_dsack=1).
// kernel: tcp_sack_extend() — grows `sp` to cover [seq, end_seq) when the two touch or overlap.
bool tcp_sack_extend(tcp_sack_block* sp, uint32_t seq, uint32_t end_seq);
// kernel: tcp_dsack_set() — the next ACK reports [seq, end_seq) as a duplicate.
void tcp_dsack_set(tcp_sock* tp, uint32_t seq, uint32_t end_seq);
// kernel: tcp_dsack_extend() — tcp_dsack_set(), or extends the DSACK block already set.
void tcp_dsack_extend(tcp_sock* tp, uint32_t seq, uint32_t end_seq);
// kernel: tcp_sack_new_ofo_skb() — [seq, end_seq) was added to the out-of-order queue: the block
// it extends moves to the front (and swallows blocks it now touches), else a new block goes to the
// front and the oldest falls off past four.
void tcp_sack_new_ofo_skb(tcp_sock* tp, uint32_t seq, uint32_t end_seq);
// kernel: tcp_sack_remove() — rcv_nxt advanced: blocks it covers go (all of them when the
// out-of-order queue is empty).
void tcp_sack_remove(tcp_sock* tp);
// kernel: tcp_sack_reset()
inline void tcp_sack_reset(tcp_sock* tp) {
  tp->dsack = false;
  tp->num_sacks = 0;
}

// Sender. kernel: FLAG_* bits tcp_sacktag_write_queue() returns (net/ipv4/tcp_input.c).
inline constexpr int FLAG_DATA_SACKED = 0x20;   // "New SACK."
inline constexpr int FLAG_DSACKING_ACK = 0x800; // "SACK blocks contained D-SACK info"
inline constexpr int FLAG_LOST_RETRANS = 0x80;  // "This ACK marks some retransmission lost"

// What one ACK's SACK blocks did, for tcp_clean_rtx_queue()'s RTT samples and tcp_ack()'s
// delivered count. kernel: struct tcp_sacktag_state (without the rate sample and the skb hints)
struct tcp_sacktag_state {
  uint64_t first_sackt = 0;     // send time of the lowest newly SACKed never-retransmitted skb (0: none)
  uint64_t last_sackt = 0;      // send time of the highest such skb
  uint32_t reord = 0;           // lowest never-retransmitted skb SACKed below the highest SACK
  uint32_t sack_delivered = 0;  // segments newly SACKed
  int flag = 0;                 // FLAG_* bits
};

// The SACK option of `ack_skb` (a received segment at its TCP header, the option's offset in
// TCP_SKB_CB()->sacked as tcp_rcv_established() records it): validated blocks, sorted by start,
// tag the rtx queue's skbs TCPCB_SACKED_ACKED (sacked_out, clearing LOST / SACKED_RETRANS),
// advance RACK and record reordering. `*state` is reset, then gets the segments newly SACKed and
// the send times of the first and last newly SACKed never-retransmitted skbs (tcp_sacktag_one()).
// Returns FLAG_* bits. kernel: tcp_sacktag_write_queue()
int tcp_sacktag_write_queue(tcp_sock* tp, const sk_buff* ack_skb, uint32_t prior_snd_una, tcp_sacktag_state* state);

// The recovery state machine with SACK (tcp_recovery.cc's tcp_fastretrans_alert() calls it when
// sack_ok): RACK loss marking, recovery entered when something is lost (tcp_time_to_recover()),
// left when high_seq is acked, the loss state left likewise. `newly_lost` gets the segments RACK
// marked lost on this ACK. Retransmission itself is tcp_xmit_retransmit_queue() under PRR's cwnd.
// kernel: tcp_fastretrans_alert() (the SACK paths, without undo)
void tcp_sack_fastretrans_alert(tcp_sock* tp, int flag, uint32_t* newly_lost);

// The reordering timer expired: whatever RACK now finds lost is marked, recovery entered if not
// in it already (with one PRR step), the lost segments retransmitted, the RTO re-armed.
// kernel: tcp_rack_reo_timeout() (net/ipv4/tcp_recovery.c)
void tcp_rack_reo_timeout(tcp_sock* tp, TcpXmitFn xmit);

// kernel: tcp_in_cwnd_reduction()
inline bool tcp_in_cwnd_reduction(const tcp_sock* tp) {
  return tp->icsk_ca_state == TCP_CA_CWR || tp->icsk_ca_state == TCP_CA_Recovery;
}
// PRR, for the SACK and the no-SACK (tcp_recovery.h) paths alike. kernel: tcp_init_cwnd_reduction()
// — high_seq = snd_nxt, prior_cwnd = cwnd, ssthresh from the congestion control, PRR counts zeroed.
void tcp_init_cwnd_reduction(tcp_sock* tp);
// kernel: tcp_cwnd_reduction() — PRR (RFC 6937): while in flight is above ssthresh, send
// ssthresh/prior_cwnd of what is delivered; below it, slow-start back up to ssthresh (PRR-SSRB);
// at least one segment at the start (the fast retransmit). Sets cwnd = in flight + sndcnt.
void tcp_cwnd_reduction(tcp_sock* tp, uint32_t newly_acked_sacked, uint32_t newly_lost, int flag);
// kernel: tcp_end_cwnd_reduction() — cwnd = ssthresh (no undo here).
void tcp_end_cwnd_reduction(tcp_sock* tp);
// kernel: tcp_enter_recovery() — tcp_init_cwnd_reduction() unless already reducing, state Recovery.
void tcp_enter_recovery(tcp_sock* tp);

}  // namespace xmit
