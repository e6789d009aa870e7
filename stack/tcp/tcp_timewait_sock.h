// stack/tcp/tcp_timewait_sock.h — the small socket a connection leaves in TIME_WAIT: its 4-tuple,
// the sequence numbers and timestamps its ACKs need, the IP fields they go out with, its deadline.
// Kernel counterparts: struct inet_timewait_sock / struct tcp_timewait_sock (include/net/
// inet_timewait_sock.h, include/linux/tcp.h), tcp_time_wait()'s copy and
// tcp_timewait_state_process() (net/ipv4/tcp_minisocks.c), tcp_v4_timewait_ack() (tcp_ipv4.c).
// The owner (TcpStack) keeps them in its ehash and in a list by deadline (inet_twsk_hashdance(),
// inet_twsk_reschedule(), inet_twsk_deschedule_put()). Substates TIME_WAIT and FIN_WAIT2 (an
// orphan waiting for the peer's FIN, tcp_time_wait(sk, TCP_FIN_WAIT2, tmo)). Simplified: no
// MD5/AO, no ECN bits, sysctl_tcp_rfc1337 = 0.
#pragma once

#include <cstdint>

#include "stack/base/byteorder.h"
#include "stack/skb/pool.h"
#include "stack/tcp/tcp_output.h"
#include "stack/tcp/tcp_sock.h"

namespace xmit {

struct tcp_timewait_sock {
  // inet_timewait_sock: the 4-tuple (host order ports, as tcp_sock's)
  be32 tw_rcv_saddr = 0;   // local
  be32 tw_daddr = 0;       // remote
  uint16_t tw_num = 0;     // local port
  uint16_t tw_dport = 0;   // remote port
  uint8_t tw_rcv_wscale = 0;
  uint8_t tw_tos = 0;      // the socket's IP_TOS, for its ACKs
  bool tw_tstamp_ok = false;  // timestamps negotiated (the kernel tests tw_ts_recent_stamp != 0)
  bool tw_steered = false;    // the owner's steering rule for the 4-tuple is this socket's
  uint32_t tw_mark = 0;       // SO_MARK
  uint32_t tw_priority = 0;   // SO_PRIORITY
  // tcp_timewait_sock
  uint32_t tw_rcv_nxt = 0;
  uint32_t tw_snd_nxt = 0;
  uint32_t tw_rcv_wnd = 0;          // tcp_receive_window() when it was made
  uint32_t tw_ts_offset = 0;
  uint32_t tw_ts_recent = 0;
  uint32_t tw_ts_recent_stamp = 0;  // seconds
  uint32_t tw_last_oow_ack_time = 0;  // ms (tcp_oow_rate_limited())
  uint8_t tw_substate = 0;          // TCP_TIME_WAIT, or TCP_FIN_WAIT2 (an orphan's wait for the FIN)
  // tw_timer: the deadline (µs, tcp_mstamp's clock); 0 once descheduled (the owner frees it)
  uint64_t tw_expires = 0;
  // The owner's list, oldest deadline first (TIME_WAIT's are now + TCP_TIMEWAIT_LEN, FIN_WAIT2's at most that).
  tcp_timewait_sock* tw_prev = nullptr;
  tcp_timewait_sock* tw_next = nullptr;
};

// kernel: enum tcp_tw_status
inline constexpr int TCP_TW_SUCCESS = 0;
inline constexpr int TCP_TW_ACK = 1;
inline constexpr int TCP_TW_SYN = 2;
inline constexpr int TCP_TW_RST = 3;

// kernel: tcp_time_wait()'s copy of the full socket (inet_twsk_alloc() + the tcptw fields): the
// substate is tp's state (TIME_WAIT or FIN_WAIT2), the deadline tp->tw_timer's (else
// TCP_TIMEWAIT_LEN from tp->tcp_mstamp). The IP fields come from the owner (inet_sock).
void tcp_twsk_init(tcp_timewait_sock* tw, const tcp_sock* tp, uint8_t tos, uint32_t mark, uint32_t priority);

// kernel: tcp_timewait_state_process(), at `now_us`. `skb` stays the caller's (it
// frees it, or hands a TCP_TW_SYN to a listener). TCP_TW_SYN: a SYN that may open a new
// connection on the 4-tuple (its sequence number after tw_rcv_nxt or its timestamp newer);
// TCP_SKB_CB(skb)->tcp_tw_isn holds the ISN to answer with (tw_snd_nxt + 65537); with no listener
// the caller acknowledges it (tcp_v4_timewait_ack()). TCP_TW_ACK: send tcp_v4_timewait_ack()
// (an out-of-window segment, a retransmitted FIN; rate-limited). TCP_TW_SUCCESS: nothing to send.
// The deadline may move to now + TCP_TIMEWAIT_LEN (inet_twsk_reschedule()), or become 0 for an
// in-window RST ("TIME_WAIT assassination": the owner deschedules and frees it).
// Substate FIN_WAIT2 repeats tcp_rcv_state_process()'s checks: out of window TCP_TW_ACK (rate-
// limited), an RST ends it, the peer's FIN (alone, at tw_rcv_nxt) makes it TIME_WAIT for
// TCP_TIMEWAIT_LEN with TCP_TW_ACK, new data or a SYN TCP_TW_RST (the owner answers the segment
// with a reset, tcp_v4_send_reset(), and frees the timewait sock), anything else nothing.
int tcp_timewait_state_process(tcp_timewait_sock* tw, sk_buff* skb, uint64_t now_us);

// kernel: tcp_v4_timewait_ack() -> tcp_v4_send_ack(): ACK of tw_rcv_nxt at tw_snd_nxt, window
// tw_rcv_wnd >> tw_rcv_wscale, a timestamp option when tw_ts_recent is set. 0 or -ENOBUFS.
int tcp_v4_timewait_ack(const tcp_timewait_sock& tw, SkbPool* pool, uint64_t now_us, TcpXmitFn xmit);

}  // namespace xmit
