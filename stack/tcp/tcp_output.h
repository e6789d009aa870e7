// stack/tcp/tcp_output.h — from the write queue to segments: the send tests (Nagle, congestion
// window, receive window), splitting an skb at the send limit, and the TCP header of each segment.
// Kernel counterparts: tcp_write_xmit(), tcp_nagle_test(), tcp_cwnd_test(), tcp_snd_wnd_test(),
// tcp_mss_split_point(), tcp_tso_should_defer(), tso_fragment(), __tcp_transmit_skb(),
// __tcp_push_pending_frames(), tcp_push_one() (net/ipv4/tcp_output.c).
#pragma once

#include <cstdint>

#include "absl/functional/function_ref.h"
#include "stack/tcp/tcp_sock.h"

namespace xmit {

// Takes a segment ready for the IP layer (data at the TCP header, transport header set, checksum
// seeded or finished, gso_size/gso_segs set when it carries more than one MSS). Owns the skb.
// Returns 0 or -errno (the kernel's net_xmit_eval() of ip_queue_xmit()).
using TcpXmitFn = absl::FunctionRef<int(sk_buff* skb)>;

// The most MSS one TSO skb should carry, from the pacing rate and the min RTT (at least
// net.ipv4.tcp_min_tso_segs, at most gso_max_segs). kernel: tcp_tso_segs(), tcp_tso_autosize()
uint32_t tcp_tso_segs(const tcp_sock* tp, uint32_t mss_now);

// kernel: tcp_set_skb_tso_segs() — pcount and gso size for mss_now.
void tcp_set_skb_tso_segs(sk_buff* skb, uint32_t mss_now);

// kernel: tcp_nagle_check() — true when Nagle holds back a segment:
//   partial (a sub-MSS segment) and either TCP_CORK, or Nagle is on (nonagle == 0), data is in
//   flight and the last small segment sent is not yet acked (Minshall's variant).
bool tcp_nagle_check(bool partial, const tcp_sock* tp, uint8_t nonagle);
// kernel: tcp_nagle_test() — true when the skb may go now (TCP_NAGLE_PUSH, FIN, or Nagle allows).
bool tcp_nagle_test(const tcp_sock* tp, const sk_buff* skb, uint32_t cur_mss, uint8_t nonagle);
// kernel: tcp_urg_mode() — MSG_OOB data sent and not yet acknowledged.
inline bool tcp_urg_mode(const tcp_sock* tp) { return tp->snd_una != tp->snd_up; }
// kernel: tcp_cwnd_test() — how many segments the congestion window allows now (at most half of
// it at once), 0 for none; a lone FIN always goes.
uint32_t tcp_cwnd_test(const tcp_sock* tp, const sk_buff* skb);
// kernel: tcp_snd_wnd_test() — true when the first MSS of the skb fits the peer's window.
bool tcp_snd_wnd_test(const tcp_sock* tp, const sk_buff* skb, uint32_t cur_mss);

// Writes the TCP header and options into a private copy of `skb` and hands it to `xmit`; the
// original stays queued (for retransmission). A segment with ACK counts as the ACK the receive
// side owed (tcp_event_ack_sent()). -ENOBUFS when no copy can be made.
// kernel: __tcp_transmit_skb() (clone_it = 1) + tcp_v4_send_check()
int tcp_transmit_skb(tcp_sock* tp, sk_buff* skb, TcpXmitFn xmit);
// The same with the kernel's clone_it: false sends `skb` itself (a segment nothing keeps, such
// as a pure ACK) and takes it, also on failure. kernel: __tcp_transmit_skb()
int tcp_transmit_skb_core(tcp_sock* tp, sk_buff* skb, bool clone_it, TcpXmitFn xmit);

// Splits a sent skb of the rtx queue after `len` bytes (the rest goes to a new skb after it with
// the same marks) and keeps packets_out and the sacked/retrans/lost counts in step. 0 or -errno.
// kernel: tcp_fragment(TCP_FRAG_IN_RTX_QUEUE)
int tcp_fragment_rtx(tcp_sock* tp, sk_buff* skb, uint32_t len, uint32_t mss_now);

// Sends what the tests allow from send_head; arms the RTO when the first segment goes into an
// empty pipe (tcp_event_new_data_sent()) and records cwnd use (tcp_cwnd_validate()). Returns true
// when nothing is in flight yet data is queued (tcp_push_pending_frames() then arms the
// zero-window probe timer). TSQ's limit holds it back (tcp_small_queue_check(), tcp_tsq.h).
// TSO skbs carry at most tcp_tso_segs() MSS. Simplifications, each documented at its place in the
// .cc: no pacing, no MTU probing, no urgent mode. kernel: tcp_write_xmit()
bool tcp_write_xmit(tcp_sock* tp, uint32_t mss_now, uint8_t nonagle, bool push_one, TcpXmitFn xmit);
// kernel: __tcp_push_pending_frames() (arms the zero-window probe timer, tcp_check_probe_timer()),
// tcp_push_one()
bool tcp_push_pending_frames(tcp_sock* tp, uint32_t cur_mss, uint8_t nonagle, TcpXmitFn xmit);
void tcp_push_one(tcp_sock* tp, uint32_t mss_now, TcpXmitFn xmit);

}  // namespace xmit
