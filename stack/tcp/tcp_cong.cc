// stack/tcp/tcp_cong.cc — the congestion-control ops table, Reno, and the helpers every algorithm
// uses. Kernel counterparts and what is simplified: tcp_cong.h.
#include "stack/tcp/tcp_cong.h"

#include <algorithm>

#include "stack/tcp/tcp_recovery.h"
#include "stack/tcp/tcp_sock.h"

namespace xmit {

// kernel: tcp_slow_start(), net/ipv4/tcp_cong.c
uint32_t tcp_slow_start(tcp_sock* tp, uint32_t acked) {
  uint32_t cwnd = std::min(tp->snd_cwnd + acked, tp->snd_ssthresh);
  acked -= cwnd - tp->snd_cwnd;
  tp->snd_cwnd = std::min(cwnd, tp->snd_cwnd_clamp);
  return acked;
}

// kernel: tcp_cong_avoid_ai(), net/ipv4/tcp_cong.c
void tcp_cong_avoid_ai(tcp_sock* tp, uint32_t w, uint32_t acked) {
  // "If credits accumulated at a higher w, apply them gently now."
  if (tp->snd_cwnd_cnt >= w) {
    tp->snd_cwnd_cnt = 0;
    tp->snd_cwnd++;
  }
  tp->snd_cwnd_cnt += acked;
  if (tp->snd_cwnd_cnt >= w) {
    uint32_t delta = tp->snd_cwnd_cnt / w;
    tp->snd_cwnd_cnt -= delta * w;
    tp->snd_cwnd += delta;
  }
  tp->snd_cwnd = std::min(tp->snd_cwnd, tp->snd_cwnd_clamp);
}

static uint32_t tcp_reno_ssthresh_op(tcp_sock* tp) { return tcp_reno_ssthresh(tp); }
static void tcp_reno_cong_avoid_op(tcp_sock* tp, uint32_t ack, uint32_t acked) {
  (void)ack;
  tcp_reno_cong_avoid(tp, acked);
}
// kernel: tcp_reno_undo_cwnd() — "max(tcp_snd_cwnd(tp), tp->prior_cwnd)"
static uint32_t tcp_reno_undo_cwnd(tcp_sock* tp) { return std::max(tp->snd_cwnd, tp->prior_cwnd); }

// kernel: struct tcp_congestion_ops tcp_reno, net/ipv4/tcp_cong.c
const tcp_congestion_ops tcp_reno = {
    .name = "reno",
    .init = nullptr,
    .ssthresh = tcp_reno_ssthresh_op,
    .cong_avoid = tcp_reno_cong_avoid_op,
    .set_state = nullptr,
    .cwnd_event = nullptr,
    .pkts_acked = nullptr,
    .undo_cwnd = tcp_reno_undo_cwnd,
};

const tcp_congestion_ops* tcp_ca_ops(const tcp_sock* tp) {
  return tp->icsk_ca_ops != nullptr ? tp->icsk_ca_ops : &tcp_reno;
}

// kernel: tcp_assign_congestion_control() + tcp_init_congestion_control(), net/ipv4/tcp_cong.c
void tcp_init_congestion_control(tcp_sock* tp, const tcp_congestion_ops* ops) {
  tp->icsk_ca_ops = ops;
  std::fill(std::begin(tp->icsk_ca_priv), std::end(tp->icsk_ca_priv), 0);
  if (ops->init != nullptr) ops->init(tp);
}

// kernel: tcp_set_ca_state(), include/net/tcp.h
void tcp_set_ca_state(tcp_sock* tp, uint8_t ca_state) {
  const tcp_congestion_ops* ops = tcp_ca_ops(tp);
  if (ops->set_state != nullptr) ops->set_state(tp, ca_state);
  tp->icsk_ca_state = ca_state;
}

// kernel: tcp_ca_event(), include/net/tcp.h
void tcp_ca_event(tcp_sock* tp, enum tcp_ca_event ev) {
  const tcp_congestion_ops* ops = tcp_ca_ops(tp);
  if (ops->cwnd_event != nullptr) ops->cwnd_event(tp, ev);
}

uint32_t tcp_ca_ssthresh(tcp_sock* tp) { return tcp_ca_ops(tp)->ssthresh(tp); }

// kernel: tcp_cong_avoid(), net/ipv4/tcp_input.c
void tcp_cong_avoid(tcp_sock* tp, uint32_t ack, uint32_t acked) { tcp_ca_ops(tp)->cong_avoid(tp, ack, acked); }

void tcp_ca_pkts_acked(tcp_sock* tp, uint32_t pkts_acked, long rtt_us) {
  const tcp_congestion_ops* ops = tcp_ca_ops(tp);
  if (ops->pkts_acked != nullptr) ops->pkts_acked(tp, pkts_acked, rtt_us);
}

}  // namespace xmit
