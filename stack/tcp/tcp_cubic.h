// stack/tcp/tcp_cubic.h — CUBIC (RFC 9438), Linux's default congestion control, as net/ipv4/tcp_cubic.c
// computes it: the cubic window W(t) = C (t - K)^3 + W_max in the kernel's fixed point (C = 410/1024
// per 100 ms of "rtt", beta 717/1024, t in 1/1024 s from jiffies), cubic_root() by table and one
// Newton-Raphson step, fast convergence, TCP friendliness, HyStart (ACK train and delay).
// Kernel counterparts: struct bictcp, bictcp_reset(), bictcp_hystart_reset(), cubictcp_init(),
// cubictcp_cwnd_event(), cubic_root(), bictcp_update(), cubictcp_cong_avoid(),
// cubictcp_recalc_ssthresh(), cubictcp_state(), hystart_update(), cubictcp_acked().
// The RTT sample HyStart and delay_min see is the kernel's ca_rtt_us: the last segment the ACK
// acks or newly SACKs (tcp_clean_rtx_queue(), tcp_ack.h). Simplified: no pacing, so
// hystart_ack_delay() is 0 and the ACK train threshold is delay_min / 2 as the kernel's without
// pacing; no module parameters (the kernel's defaults are constants).
#pragma once

#include <cstdint>

#include "stack/tcp/tcp_cong.h"
#include "stack/tcp/tcp_sock.h"

namespace xmit {

inline constexpr uint32_t BICTCP_BETA_SCALE = 1024;  // "Scale factor beta calculation"
inline constexpr uint32_t BICTCP_HZ = 10;            // "BIC HZ 2^10 = 1024"
inline constexpr uint32_t kCubicBeta = 717;          // "= 717/1024 (BICTCP_BETA_SCALE)"
inline constexpr uint32_t kCubicBicScale = 41;       // cube_rtt_scale = bic_scale * 10 = 410
inline constexpr uint32_t kHystartLowWindow = 16;
inline constexpr uint32_t kHystartAckDeltaUs = 2000;
inline constexpr uint32_t HYSTART_MIN_SAMPLES = 8;
inline constexpr uint32_t HYSTART_DELAY_MIN = 4000;   // us
inline constexpr uint32_t HYSTART_DELAY_MAX = 16000;  // us

// kernel: struct bictcp, net/ipv4/tcp_cubic.c — kept in tcp_sock::icsk_ca_priv.
struct bictcp {
  uint32_t cnt;               // "increase cwnd by 1 after ACKs"
  uint32_t last_max_cwnd;     // "last maximum snd_cwnd"
  uint32_t last_cwnd;         // "the last snd_cwnd"
  uint32_t last_time;         // "time when updated last_cwnd" (jiffies)
  uint32_t bic_origin_point;  // "origin point of bic function"
  uint32_t bic_K;             // "time to origin point from the beginning of the current epoch"
  uint32_t delay_min;         // "min delay (usec)"
  uint32_t epoch_start;       // "beginning of an epoch" (jiffies)
  uint32_t ack_cnt;           // "number of acks"
  uint32_t tcp_cwnd;          // "estimated tcp cwnd"
  uint16_t unused;
  uint8_t sample_cnt;         // "number of samples to decide curr_rtt"
  uint8_t found;              // "the exit point is found?"
  uint32_t round_start;       // "beginning of each round" (us)
  uint32_t end_seq;           // "end_seq of the round"
  uint32_t last_ack;          // "last time when the ACK spacing is close" (us)
  uint32_t curr_rtt;          // "the minimum rtt of current round"
};
static_assert(sizeof(bictcp) <= sizeof(tcp_sock::icsk_ca_priv));

inline bictcp* inet_csk_ca(tcp_sock* tp) { return reinterpret_cast<bictcp*>(tp->icsk_ca_priv); }

// kernel: cubic_root() — cbrt(a) by a 64-entry table and one Newton-Raphson iteration.
uint32_t cubic_root(uint64_t a);
// kernel: bictcp_update() — sets ca->cnt (ACKs per +1 cwnd) for `cwnd` after `acked` more ACKed.
void bictcp_update(tcp_sock* tp, uint32_t cwnd, uint32_t acked);

}  // namespace xmit
