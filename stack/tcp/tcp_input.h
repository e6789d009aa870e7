// stack/tcp/tcp_input.h — an established connection's receive path: a validated segment in,
// its ACK processed, its data queued in order (or held out of order until the hole fills), an ACK
// sent now or delayed, a FIN taken as end of stream. Kernel counterparts: tcp_rcv_established()
// (its slow path), tcp_validate_incoming() (PAWS and sequence checks), tcp_data_queue(),
// tcp_data_queue_ofo(), tcp_ofo_queue(), tcp_event_data_recv(), tcp_measure_rcv_mss(), tcp_fin(),
// tcp_urg() (tcp_urg.h),
// __tcp_ack_snd_check(), tcp_send_dupack(), tcp_data_snd_check() (net/ipv4/tcp_input.c).
// Simplified relative to Linux: no header prediction fast path (every segment takes the slow
// path, with the same results); RST and SYN are the state machine's (tcp_v4_do_rcv(), tcp_conn.h,
// does not hand them here; called directly, this drops them); no coalescing of
// received skbs (tcp_try_coalesce: each segment keeps its own skb); SACK/DSACK blocks for our ACKs
// are kept by tcp_sack.h (ACKs with out-of-order data held go at once: no SACK compression); no
// receive-buffer pruning
// (tcp_prune_queue: a segment over rcvbuf is dropped); the out-of-order queue is a sorted list.
#pragma once

#include <cstdint>

#include "stack/tcp/tcp_output.h"
#include "stack/tcp/tcp_sock.h"

namespace xmit {

// kernel: tcp_receive_window(), include/net/tcp.h — what is left of the window we offered.
inline uint32_t tcp_receive_window(const tcp_sock* tp) {
  int32_t win = static_cast<int32_t>(tp->rcv_wup + tp->rcv_wnd - tp->rcv_nxt);
  return win < 0 ? 0 : static_cast<uint32_t>(win);
}

// kernel: tcp_sequence() — RFC 9293 §3.10.7.4: the segment overlaps the receive window.
inline bool tcp_sequence(const tcp_sock* tp, uint32_t seq, uint32_t end_seq) {
  return !before(end_seq, tp->rcv_wup) && !after(seq, tp->rcv_nxt + tcp_receive_window(tp));
}

// Takes `skb`: a segment tcp_v4_check_segment() accepted (data at the TCP header, cb filled),
// linear. Parses its options, checks PAWS and the window (a failing segment is answered with a
// duplicate ACK and dropped), runs tcp_ack(), queues its payload, then sends what the ACK
// allows (tcp_data_snd_check) and acknowledges (tcp_ack_snd_check). `dst_mtu` as for
// tcp_sendmsg_locked(). kernel: tcp_rcv_established()
void tcp_rcv_established(tcp_sock* tp, sk_buff* skb, uint32_t dst_mtu, TcpXmitFn xmit);

// The data part: in order to receive_queue (then whatever the out-of-order queue now continues),
// old data dropped with a quick ACK, beyond the window dropped, the rest to the out-of-order
// queue. Takes `skb` (data at the payload). kernel: tcp_data_queue()
void tcp_data_queue(tcp_sock* tp, sk_buff* skb);

// Sends an ACK now or arms the delayed ACK, if one is scheduled. kernel: tcp_ack_snd_check()
void tcp_ack_snd_check(tcp_sock* tp, TcpXmitFn xmit);

// Out-of-window ACKs are rate-limited per socket to one per tcp_invalid_ratelimit (500 ms): true
// when this one must be skipped (else the time is recorded). A segment with data and no SYN is
// never limited ("Data packets without SYNs are not likely part of an ACK loop"); the variant
// without a segment limits everything (challenge ACKs). kernel: tcp_oow_rate_limited(),
// __tcp_oow_rate_limited() (per socket only: no per-netns MIB)
bool __tcp_oow_rate_limited(tcp_sock* tp);
bool tcp_oow_rate_limited(tcp_sock* tp, const sk_buff* skb);
// The same against a timestamp of one's own (a timewait sock's tw_last_oow_ack_time), at `now_ms`.
bool tcp_oow_rate_limited(const sk_buff* skb, uint32_t now_ms, uint32_t* last_oow_ack_time);

// An old or out-of-window segment: ACK at once, with a D-SACK block and quick-ACK mode when it
// repeated data we already had (the peer may not have seen our ACK). kernel: tcp_send_dupack()
void tcp_send_dupack(tcp_sock* tp, const sk_buff* skb, TcpXmitFn xmit);

// Frees both receive queues (teardown; not the kernel's close).
void tcp_rcv_queues_purge(tcp_sock* tp);

}  // namespace xmit
