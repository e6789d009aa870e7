// stack/tcp/tcp_ack.h — what an incoming ACK does to the send side: snd_una, the retransmit queue,
// the peer's window, RTT samples and the RTO, the timestamp to echo. Kernel counterparts:
// tcp_ack(), tcp_clean_rtx_queue(), tcp_tso_acked(), tcp_trim_head(), tcp_ack_update_window(),
// tcp_may_update_window(), tcp_ack_update_rtt(), tcp_rtt_estimator(), tcp_set_rto(),
// tcp_replace_ts_recent(), tcp_paws_check() (net/ipv4/tcp_input.c, tcp_output.c, include/net/tcp.h).
// With SACK, tcp_ack() runs tcp_sacktag_write_queue() and RACK (tcp_sack.h, tcp_rack.h); with or
// without, PRR while in recovery. Simplified relative to Linux: no DSACK undo, no delivery-rate sample (tcp_rate: only tx.delivered for FLAG_ACK_MAYBE_DELAYED), no challenge ACKs for old or
// unsent ACKs (they are ignored / dropped), no ECN. The loss-recovery part of tcp_ack()
// (tcp_fastretrans_alert) and cwnd growth live in tcp_recovery.h.
#pragma once

#include <cstdint>

#include "stack/tcp/tcp_output.h"
#include "stack/tcp/tcp_sock.h"

namespace xmit {

struct tcp_sacktag_state;  // stack/tcp/tcp_sack.h

inline constexpr uint32_t TCP_RTO_MIN_US = 200000;      // kernel: TCP_RTO_MIN (HZ / 5)
inline constexpr uint32_t TCP_RTO_MAX_US = 120000000;   // kernel: TCP_RTO_MAX (120 s)
inline constexpr uint32_t TCP_TIMEOUT_INIT_US = 1000000;  // kernel: TCP_TIMEOUT_INIT (1 s)

// kernel: FLAG_* of tcp_ack(), net/ipv4/tcp_input.c (the ones used here)
inline constexpr int FLAG_DATA = 0x01;              // incoming frame contained data
inline constexpr int FLAG_WIN_UPDATE = 0x02;        // incoming ACK was a window update
inline constexpr int FLAG_DATA_ACKED = 0x04;        // this ACK acknowledged new data
inline constexpr int FLAG_RETRANS_DATA_ACKED = 0x08;  // ... and some of it had been retransmitted
inline constexpr int FLAG_SET_XMIT_TIMER = 0x1000;  // set TLP or RTO timer
inline constexpr int FLAG_SND_UNA_ADVANCED = 0x400; // snd_una was changed (!= FLAG_DATA_ACKED)
inline constexpr int FLAG_UPDATE_TS_RECENT = 0x4000;  // tcp_replace_ts_recent()
inline constexpr int FLAG_ACK_MAYBE_DELAYED = 0x10000;  // "Likely a delayed ACK"
inline constexpr int FLAG_SYN_ACKED = 0x10;         // this ACK acknowledged SYN
inline constexpr int FLAG_ACKED = FLAG_DATA_ACKED | FLAG_SYN_ACKED;
inline constexpr int FLAG_NOT_DUP = FLAG_DATA | FLAG_WIN_UPDATE | FLAG_ACKED;

// kernel: tcp_rtt_estimator() — RFC 6298 §2.3 in the kernel's fixed point: srtt_us holds 8*SRTT,
// mdev_us 4*|error|, rttvar_us the largest mdev of the last RTT (at least TCP_RTO_MIN), decaying
// by a quarter of the excess once per RTT (rtt_seq).
void tcp_rtt_estimator(tcp_sock* tp, long mrtt_us);
// kernel: tcp_set_rto() — RTO = SRTT + rttvar (which is >= 200 ms), rounded up to a jiffy (1 ms
// here), at most TCP_RTO_MAX.
void tcp_set_rto(tcp_sock* tp);
// kernel: tcp_update_pacing_rate() — sk_pacing_rate = mss * max(cwnd, packets_out) / SRTT, times
// tcp_pacing_ss_ratio % while cwnd < ssthresh / 2, else tcp_pacing_ca_ratio %; at most
// sk_max_pacing_rate. Run after every ACK's congestion control (tcp_cong_control()) and when a
// passive open completes. Nothing is paced by it here: TSQ and TSO autosizing read it.
void tcp_update_pacing_rate(tcp_sock* tp);
// kernel: tcp_ack_update_rtt() — srtt/rttvar take `seq_rtt_us` (the send time of the oldest
// newly acked, never-retransmitted skb: Karn), else `sack_rtt_us` (the lowest newly SACKed such
// skb), else the echoed timestamp; resets icsk_backoff. The windowed min RTT (tcp_update_rtt_min(),
// skipped under FLAG_ACK_MAYBE_DELAYED when above the min) and the congestion control's
// pkts_acked() take `ca_rtt_us`, the newest (S)ACKed skb's (-1: none). Negative: no sample.
void tcp_ack_update_rtt(tcp_sock* tp, int flag, long seq_rtt_us, long sack_rtt_us, long ca_rtt_us);

// kernel: tcp_paws_check() — the segment's TSval is not older than ts_recent by more than
// paws_win (or ts_recent is unset / more than 24 days old).
bool tcp_paws_check(const tcp_sock* tp, int paws_win);
// kernel: tcp_replace_ts_recent() — ts_recent takes the segment's TSval when the segment starts
// at or before rcv_wup (RFC 7323 §4.3) and passes tcp_paws_check(0).
void tcp_replace_ts_recent(tcp_sock* tp, uint32_t seq);

// Removes `len` bytes from the front of a sent skb's payload (all in fragments) and advances its
// seq; recomputes the GSO count. All of it may go only from a FIN skb (the caller's rule).
// 0 or -EINVAL (payload in the head, or len past the payload). kernel: tcp_trim_head()
int tcp_trim_head(sk_buff* skb, uint32_t len);

// kernel: tcp_ack_update_window() — snd_wnd from the header's window shifted by snd_wscale when
// tcp_may_update_window() (newer ACK, newer seq, or same seq and a larger/zero window); raises
// max_window (and re-syncs the MSS against it); advances snd_una. Returns FLAG_WIN_UPDATE or 0.
int tcp_ack_update_window(tcp_sock* tp, uint16_t window, uint32_t ack, uint32_t ack_seq, bool syn);

// kernel: tcp_clean_rtx_queue() — frees fully acked skbs, trims a partially acked multi-segment
// head (tcp_tso_acked()), updates packets_out/lost_out/retrans_out, takes the RTT sample.
// With `sack` (what tcp_sacktag_write_queue() found on the same ACK), the SACK RTT samples: srtt
// from first_sackt when nothing cumulatively acked gave one, ca_rtt from last_sackt.
// `*pkts_acked` gets the segment count acked. Returns FLAG_* bits.
int tcp_clean_rtx_queue(tcp_sock* tp, uint32_t prior_snd_una, uint32_t* pkts_acked, const tcp_sacktag_state* sack);

// kernel: tcp_probe0_base(), tcp_probe0_when() — max(RTO, 200 ms) << min(backoff, 10), at most
// TCP_RTO_MAX.
inline uint64_t tcp_probe0_when(const tcp_sock* tp) {
  uint64_t base = tp->icsk_rto > TCP_RTO_MIN_US ? tp->icsk_rto : TCP_RTO_MIN_US;
  uint32_t backoff = tp->icsk_backoff < 10 ? tp->icsk_backoff : 10;  // ilog2(120 s / 200 ms) + 1
  uint64_t when = base << backoff;
  return when < TCP_RTO_MAX_US ? when : TCP_RTO_MAX_US;
}

// The rtx timer after an ACK: stopped when nothing is in flight, else re-armed RTO from now.
// kernel: tcp_rearm_rto()
void tcp_rearm_rto(tcp_sock* tp);

// kernel: tcp_ack() — `skb` is a validated incoming segment, data at its TCP header, cb filled by
// tcp_v4_check_segment(), options parsed into tp->rx_opt. Returns 1 when processed, 0 for an old
// ACK (ignored), -1 for an ACK of data never sent (the segment is dropped). Sends what the ACK
// allows (retransmissions in recovery; new data is the caller's tcp_data_snd_check()).
int tcp_ack(tcp_sock* tp, const sk_buff* skb, int flag, TcpXmitFn xmit);

}  // namespace xmit
