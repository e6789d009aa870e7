// stack/tcp/tcp_cong.h — pluggable congestion control: a small ops table like the kernel's
// struct tcp_congestion_ops, Reno (tcp_reno_*) and CUBIC (tcp_cubic.h, Linux's default).
// Kernel counterparts: struct tcp_congestion_ops (include/net/tcp.h), tcp_init_congestion_control(),
// tcp_set_ca_state(), tcp_ca_event(), tcp_cong_avoid(), tcp_slow_start(), tcp_cong_avoid_ai(),
// tcp_reno_cong_avoid(), tcp_reno_ssthresh(), tcp_reno_undo_cwnd() (net/ipv4/tcp_cong.c,
// tcp_input.c). Simplified: no registry by name (setsockopt TCP_CONGESTION is the socket slice's),
// no cong_control / pacing hooks; CA_EVENT_TX_START (restart after idle) is never raised yet.
// A tcp_sock whose icsk_ca_ops is null runs Reno (what the unit tests written for Reno expect);
// tcp_init_congestion_control() gives it Linux's default, CUBIC — tcp_init_transfer() calls it when a
// connection is established.
#pragma once

#include <cstdint>

namespace xmit {

struct tcp_sock;

// kernel: enum tcp_ca_event (the ones raised here)
enum tcp_ca_event : uint8_t {
  CA_EVENT_TX_START,     // first transmit when no packets in flight
  CA_EVENT_CWND_RESTART,
  CA_EVENT_COMPLETE_CWR,
  CA_EVENT_LOSS,         // loss timeout
};

// kernel: struct tcp_congestion_ops (the hooks used here; optional ones may be null)
struct tcp_congestion_ops {
  const char* name;
  void (*init)(tcp_sock* tp);                                       // optional
  uint32_t (*ssthresh)(tcp_sock* tp);                               // new ssthresh after a loss
  void (*cong_avoid)(tcp_sock* tp, uint32_t ack, uint32_t acked);   // grow cwnd
  void (*set_state)(tcp_sock* tp, uint8_t new_state);               // optional
  void (*cwnd_event)(tcp_sock* tp, tcp_ca_event ev);                // optional
  void (*pkts_acked)(tcp_sock* tp, uint32_t pkts_acked, long rtt_us);  // optional: an ACK's RTT sample
  uint32_t (*undo_cwnd)(tcp_sock* tp);                              // cwnd before the loss
};

extern const tcp_congestion_ops tcp_reno;   // kernel: tcp_reno, net/ipv4/tcp_cong.c
extern const tcp_congestion_ops tcp_cubic;  // kernel: cubictcp, net/ipv4/tcp_cubic.c

// The socket's ops (Reno when none was set).
const tcp_congestion_ops* tcp_ca_ops(const tcp_sock* tp);
// Sets `ops` (default: CUBIC, Linux's tcp_congestion_control default) and runs its init.
// kernel: tcp_assign_congestion_control() + tcp_init_congestion_control()
void tcp_init_congestion_control(tcp_sock* tp, const tcp_congestion_ops* ops = &tcp_cubic);

// kernel: tcp_set_ca_state() — the ops hear of it first.
void tcp_set_ca_state(tcp_sock* tp, uint8_t ca_state);
// kernel: tcp_ca_event()
void tcp_ca_event(tcp_sock* tp, enum tcp_ca_event ev);
// kernel: icsk_ca_ops->ssthresh(sk)
uint32_t tcp_ca_ssthresh(tcp_sock* tp);
// kernel: tcp_cong_avoid() — icsk_ca_ops->cong_avoid(sk, ack, acked)
void tcp_cong_avoid(tcp_sock* tp, uint32_t ack, uint32_t acked);
// kernel: icsk_ca_ops->pkts_acked() — an RTT sample (negative: none) for the ACK just processed.
void tcp_ca_pkts_acked(tcp_sock* tp, uint32_t pkts_acked, long rtt_us);

// kernel: tcp_slow_start() — returns the part of `acked` left over once cwnd reached ssthresh.
uint32_t tcp_slow_start(tcp_sock* tp, uint32_t acked);
// kernel: tcp_cong_avoid_ai() — "In theory this is tp->snd_cwnd += 1 / tp->snd_cwnd (or alternative w)"
void tcp_cong_avoid_ai(tcp_sock* tp, uint32_t w, uint32_t acked);

}  // namespace xmit
