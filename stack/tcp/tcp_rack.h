// stack/tcp/tcp_rack.h — RACK loss detection (RFC 8985) for SACK connections: a segment is lost
// when a segment sent after it was (s)acked and more than RTT + reo_wnd has passed since it was
// sent. Kernel counterparts: tcp_rack_advance(), tcp_rack_reo_wnd(), tcp_rack_skb_timeout(),
// tcp_rack_detect_loss(), tcp_rack_mark_lost() (net/ipv4/tcp_recovery.c), tcp_mark_skb_lost()
// (net/ipv4/tcp_input.c).
// Simplified relative to Linux: the rtx queue is scanned in sequence order instead of the
// send-time ordered list (tsorted_sent_queue), so the scan cannot stop early; the reordering
// timer's expiry is tcp_rack_reo_timeout() (tcp_sack.h); no tail loss probe (TLP);
// reo_wnd_steps is 1 (no DSACK-driven growth).
#pragma once

#include <cstdint>

#include "stack/tcp/tcp_sock.h"

namespace xmit {

// kernel: tcp_min_rtt() — the windowed minimum (tcp_ack.cc's tcp_update_rtt_min(); ~0 before any
// sample)
inline uint32_t tcp_min_rtt(const tcp_sock* tp) { return minmax_get(&tp->rtt_min); }

// A segment sent at `xmit_time` ending at `end_seq` was (s)acked now. kernel: tcp_rack_advance()
void tcp_rack_advance(tcp_sock* tp, uint8_t sacked, uint32_t end_seq, uint64_t xmit_time);
// kernel: tcp_rack_reo_wnd() — 0 while no reordering was seen and either in recovery or at least
// `reordering` segments are SACKed (the DUPACK threshold); else min(min_rtt / 4, srtt).
uint32_t tcp_rack_reo_wnd(const tcp_sock* tp);
// kernel: tcp_mark_skb_lost() — LOST (lost_out), or a lost retransmission's SACKED_RETRANS cleared.
void tcp_mark_skb_lost(tcp_sock* tp, sk_buff* skb);
// The loss scan: marks what RACK finds lost; `*reo_timeout` gets the longest time (us) a
// segment still has before it would be (0: none). Returns the segments newly marked lost
// (retransmissions lost again included); `*lost_retrans` says whether any was a retransmission.
// kernel: tcp_rack_detect_loss()
uint32_t tcp_rack_detect_loss(tcp_sock* tp, uint32_t* reo_timeout, bool* lost_retrans);
// Runs the scan if RACK advanced since the last one and, when segments wait out their reordering
// window, arms the reordering timer (ICSK_TIME_REO_TIMEOUT, on the rtx timer as the kernel:
// usecs_to_jiffies(timeout) + TCP_TIMEOUT_MIN, at most the RTO). kernel: tcp_rack_mark_lost()
uint32_t tcp_rack_mark_lost(tcp_sock* tp, bool* lost_retrans);

}  // namespace xmit
