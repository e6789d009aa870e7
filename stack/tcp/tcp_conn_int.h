// stack/tcp/tcp_conn_int.h — what the state machine's files share among themselves (not for the
// socket layer: tcp_conn.h is the interface).
#pragma once

#include <cstdint>

#include "stack/tcp/tcp_conn.h"
#include "stack/tcp/tcp_options.h"

namespace xmit {

inline constexpr int TCP_SYN_LINEAR_TIMEOUTS = 4;  // kernel: sysctl_tcp_syn_linear_timeouts (6.5+)
inline constexpr uint32_t TCP_INVALID_RATELIMIT_MS = 500;  // kernel: sysctl_tcp_invalid_ratelimit

// kernel: tcp_select_initial_window(), net/ipv4/tcp_output.c — rcv_wnd from the free space rounded
// down to whole MSS (at most 65535: the SYN's window is never scaled), rcv_wscale from the largest
// buffer the socket may grow to (max(tcp_rmem[2], rmem_max), under the clamp), window_clamp
// capped at what that scale can express. `rmem_max` is that largest buffer (tcp_sock::sysctl_rmem_max).
void tcp_select_initial_window(uint32_t space, uint32_t mss, uint32_t* rcv_wnd, uint32_t* window_clamp,
                               bool wscale_ok, uint8_t* rcv_wscale, uint32_t init_rcv_wnd, uint32_t rmem_max);

// A control segment built from nothing (SYN-ACK of a request, a reset without a socket): header
// with `opts`, the checksum in software, TCP_SKB_CB addresses set; handed to `xmit`. 0 or -ENOBUFS.
int tcp_send_ctl(SkbPool* pool, be32 saddr, be32 daddr, uint16_t sport, uint16_t dport, uint32_t seq,
                 uint32_t ack, uint8_t flags, uint16_t window, const tcp_out_options& opts, uint64_t now_us,
                 TcpXmitFn xmit);

// kernel: tcp_send_active_reset() — RST|ACK at tcp_acceptable_seq() through tcp_transmit_skb().
void tcp_send_active_reset(tcp_sock* tp, TcpXmitFn xmit);
// kernel: tcp_reset() — the error the state calls for (ECONNREFUSED in SYN_SENT, EPIPE in
// CLOSE_WAIT, else ECONNRESET), queues purged, tcp_done().
void tcp_reset(tcp_sock* tp, TcpOps* ops);
// kernel: tcp_write_err() — sk_err = sk_err_soft or ETIMEDOUT, tcp_done().
void tcp_write_err(tcp_sock* tp, TcpOps* ops);
// kernel: tcp_time_wait(sk, TCP_TIME_WAIT, 0) — the socket enters TIME_WAIT (for TCP_TIMEWAIT_LEN
// unless its owner hands it to a tcp_timewait_sock at once).
void tcp_time_wait(tcp_sock* tp);
// kernel: tcp_time_wait(sk, TCP_FIN_WAIT2, timeo) — an orphan in FIN_WAIT2 waits `timeo_us` (at
// least 3.5 RTO) for the peer's FIN in tw_timer, then ops->time_wait() (tp may be freed).
void tcp_time_wait_fin_wait2(tcp_sock* tp, uint64_t timeo_us, TcpOps* ops);
// kernel: tcp_init_transfer() — the congestion window to start with (1 after a retransmitted
// SYN or SYN-ACK, else 10), ssthresh unlimited.
void tcp_init_transfer(tcp_sock* tp);
// kernel: keepalive_time_when() — microseconds.
inline uint64_t keepalive_time_when(const tcp_sock* tp) {
  return uint64_t{tp->keepalive_time != 0 ? tp->keepalive_time : 7200u} * 1000000;
}
// kernel: tcp_fin_time() — how long an orphan waits in FIN_WAIT2, microseconds.
uint64_t tcp_fin_time(const tcp_sock* tp);

// The listener side (tcp_minisocks.cc): a segment for a listener; SYN-ACK retransmits.
void tcp_v4_listen_rcv(tcp_sock* listener, sk_buff* skb, uint32_t dst_mtu, TcpXmitFn xmit, TcpOps* ops);
void tcp_reqsk_timers_run(tcp_sock* listener, TcpXmitFn xmit);
uint64_t tcp_reqsk_next_timer(const tcp_sock* listener);
// kernel: tcp_v4_syn_recv_sock() + tcp_create_openreq_child() — the child of `req` in SYN_RECV, not
// yet hashed; nullptr when the accept queue is full (ListenOverflows) or no socket can be had
// (ListenDrops both).
tcp_sock* tcp_create_openreq_child(tcp_sock* listener, const tcp_request_sock& req, const sk_buff* skb,
                                   uint32_t dst_mtu, TcpOps* ops);
// kernel: inet_csk_reqsk_queue_add() — the child hashed (ops->hash()) and on the accept queue.
void inet_csk_reqsk_queue_add(tcp_sock* listener, tcp_sock* child, TcpOps* ops);
// kernel: inet_csk_listen_stop() — requests dropped, queued children reset and handed to done().
void inet_csk_listen_stop(tcp_sock* listener, uint32_t dst_mtu, TcpXmitFn xmit, TcpOps* ops);

}  // namespace xmit
