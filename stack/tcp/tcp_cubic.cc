// stack/tcp/tcp_cubic.cc — CUBIC with HyStart. Kernel counterparts and what is simplified:
// tcp_cubic.h.
#include "stack/tcp/tcp_cubic.h"

#include <algorithm>
#include <cstring>

#include "stack/tcp/tcp_recovery.h"

namespace xmit {

// kernel: cubictcp_register() — "Precompute a bunch of the scaling factors that are used
// per-packet based on SRTT of 100ms"
static constexpr uint32_t beta_scale = 8 * (BICTCP_BETA_SCALE + kCubicBeta) / 3 / (BICTCP_BETA_SCALE - kCubicBeta);
static constexpr uint32_t cube_rtt_scale = kCubicBicScale * 10;  // "1024*c/rtt"
// "1/c * 2^2*bictcp_HZ * srtt", "divide by bic_scale and by constant Srtt (100ms)"
static constexpr uint64_t cube_factor = (1ull << (10 + 3 * BICTCP_HZ)) / (kCubicBicScale * 10);
static_assert(beta_scale == 15);

static uint32_t jiffies(const tcp_sock* tp) { return static_cast<uint32_t>(tp->tcp_mstamp / 1000); }  // HZ = 1000
static uint32_t bictcp_clock_us(const tcp_sock* tp) { return static_cast<uint32_t>(tp->tcp_mstamp); }

// kernel: bictcp_reset()
static void bictcp_reset(bictcp* ca) {
  std::memset(ca, 0, offsetof(bictcp, unused));
  ca->found = 0;
}

// kernel: bictcp_hystart_reset()
static void bictcp_hystart_reset(tcp_sock* tp) {
  bictcp* ca = inet_csk_ca(tp);
  ca->round_start = ca->last_ack = bictcp_clock_us(tp);
  ca->end_seq = tp->snd_nxt;
  ca->curr_rtt = ~0u;
  ca->sample_cnt = 0;
}

// kernel: cubictcp_init() (hystart = 1, so initial_ssthresh is not applied)
static void cubictcp_init(tcp_sock* tp) {
  bictcp_reset(inet_csk_ca(tp));
  bictcp_hystart_reset(tp);
}

// kernel: cubictcp_cwnd_event() — "We were application limited (idle) for a while. Shift
// epoch_start to keep cwnd growth to cubic curve." (lsndtime: not kept here — never raised yet)
static void cubictcp_cwnd_event(tcp_sock* tp, enum tcp_ca_event event) {
  (void)tp;
  (void)event;
}

// kernel: cubic_root(), net/ipv4/tcp_cubic.c
uint32_t cubic_root(uint64_t a) {
  // "cbrt(x) MSB values for x MSB values in [0..63]. Precomputed then refined by hand - Willy
  // Tarreau. For x in [0..63], v = cbrt(x << 18) - 1, cbrt(x) = (v[x] + 10) >> 6"
  static const uint8_t v[] = {
      0,   54,  54,  54,  118, 118, 118, 118, 123, 129, 134, 138, 143, 147, 151, 156,
      157, 161, 164, 168, 170, 173, 176, 179, 181, 185, 187, 190, 192, 194, 197, 199,
      200, 202, 204, 206, 209, 211, 213, 215, 217, 219, 221, 222, 224, 225, 227, 229,
      231, 232, 234, 236, 237, 239, 240, 242, 244, 245, 246, 248, 250, 251, 252, 254,
  };
  uint32_t b = a == 0 ? 0 : 64 - static_cast<uint32_t>(__builtin_clzll(a));  // fls64()
  if (b < 7) return (static_cast<uint32_t>(v[static_cast<uint32_t>(a)]) + 35) >> 6;  // "a in [0..63]"
  b = ((b * 84) >> 8) - 1;
  uint32_t shift = static_cast<uint32_t>(a >> (b * 3));
  uint32_t x = static_cast<uint32_t>((static_cast<uint32_t>(v[shift]) + 10) << b) >> 6;
  // "Newton-Raphson iteration: x_{k+1} = (2 * x_k + a / x_k^2) / 3"
  x = 2 * x + static_cast<uint32_t>(a / (static_cast<uint64_t>(x) * static_cast<uint64_t>(x - 1)));
  x = (x * 341) >> 10;
  return x;
}

// kernel: bictcp_update(), net/ipv4/tcp_cubic.c
void bictcp_update(tcp_sock* tp, uint32_t cwnd, uint32_t acked) {
  bictcp* ca = inet_csk_ca(tp);
  const uint32_t now = jiffies(tp);
  ca->ack_cnt += acked;  // "count the number of ACKed packets"
  if (ca->last_cwnd == cwnd && static_cast<int32_t>(now - ca->last_time) <= 1000 / 32) return;
  // "The CUBIC function can update ca->cnt at most once per jiffy. On all cwnd reduction events,
  // ca->epoch_start is set to 0, which will force a recalculation of ca->cnt."
  if (!(ca->epoch_start != 0 && now == ca->last_time)) {
    ca->last_cwnd = cwnd;
    ca->last_time = now;
    if (ca->epoch_start == 0) {
      ca->epoch_start = now;  // "record beginning"
      ca->ack_cnt = acked;    // "start counting"
      ca->tcp_cwnd = cwnd;    // "syn with cubic"
      if (ca->last_max_cwnd <= cwnd) {
        ca->bic_K = 0;
        ca->bic_origin_point = cwnd;
      } else {
        // "Compute new K based on (wmax-cwnd) * (srtt>>3 / HZ) / c * 2^(3*bictcp_HZ)"
        ca->bic_K = cubic_root(cube_factor * (ca->last_max_cwnd - cwnd));
        ca->bic_origin_point = ca->last_max_cwnd;
      }
    }
    // "cubic function - calc": t in 1/1024 s since the epoch, plus delay_min.
    uint64_t t = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(now - ca->epoch_start)));
    t += (ca->delay_min + 999) / 1000;  // usecs_to_jiffies()
    t <<= BICTCP_HZ;  // "change the unit from HZ to bictcp_HZ"
    t /= 1000;
    uint64_t offs = t < ca->bic_K ? ca->bic_K - t : t - ca->bic_K;
    // "c/rtt * (t-K)^3"
    uint32_t delta = static_cast<uint32_t>((cube_rtt_scale * offs * offs * offs) >> (10 + 3 * BICTCP_HZ));
    uint32_t bic_target = t < ca->bic_K ? ca->bic_origin_point - delta : ca->bic_origin_point + delta;
    // "cubic function - calc bictcp_cnt"
    if (bic_target > cwnd) {
      ca->cnt = cwnd / (bic_target - cwnd);
    } else {
      ca->cnt = 100 * cwnd;  // "very small increment"
    }
    // "The initial growth of cubic function may be too conservative when the available bandwidth
    // is still unknown."
    if (ca->last_max_cwnd == 0 && ca->cnt > 20) ca->cnt = 20;  // "increase cwnd 5% per RTT"
  }
  // tcp_friendliness: "TCP Friendly"
  {
    uint32_t delta = (cwnd * beta_scale) >> 3;
    while (ca->ack_cnt > delta) {  // "update tcp cwnd"
      ca->ack_cnt -= delta;
      ca->tcp_cwnd++;
    }
    if (ca->tcp_cwnd > cwnd) {  // "if bic is slower than tcp"
      delta = ca->tcp_cwnd - cwnd;
      uint32_t max_cnt = cwnd / delta;
      if (ca->cnt > max_cnt) ca->cnt = max_cnt;
    }
  }
  // "The maximum rate of cwnd increase CUBIC allows is 1 packet per 2 packets ACKed, meaning cwnd
  // grows at 1.5x per RTT."
  ca->cnt = std::max(ca->cnt, 2u);
}

// kernel: cubictcp_cong_avoid()
static void cubictcp_cong_avoid(tcp_sock* tp, uint32_t ack, uint32_t acked) {
  (void)ack;
  if (!tcp_is_cwnd_limited(tp)) return;
  if (tcp_in_slow_start(tp)) {
    acked = tcp_slow_start(tp, acked);
    if (acked == 0) return;
  }
  bictcp_update(tp, tp->snd_cwnd, acked);
  tcp_cong_avoid_ai(tp, inet_csk_ca(tp)->cnt, acked);
}

// kernel: cubictcp_recalc_ssthresh()
static uint32_t cubictcp_recalc_ssthresh(tcp_sock* tp) {
  bictcp* ca = inet_csk_ca(tp);
  ca->epoch_start = 0;  // "end of epoch"
  // "Wmax and fast convergence"
  if (tp->snd_cwnd < ca->last_max_cwnd) {
    ca->last_max_cwnd = (tp->snd_cwnd * (BICTCP_BETA_SCALE + kCubicBeta)) / (2 * BICTCP_BETA_SCALE);
  } else {
    ca->last_max_cwnd = tp->snd_cwnd;
  }
  return std::max((tp->snd_cwnd * kCubicBeta) / BICTCP_BETA_SCALE, 2u);
}

// kernel: cubictcp_state()
static void cubictcp_state(tcp_sock* tp, uint8_t new_state) {
  if (new_state == TCP_CA_Loss) {
    bictcp_reset(inet_csk_ca(tp));
    bictcp_hystart_reset(tp);
  }
}

// kernel: hystart_update() (no pacing: hystart_ack_delay() = 0, threshold halved)
static void hystart_update(tcp_sock* tp, uint32_t delay) {
  bictcp* ca = inet_csk_ca(tp);
  if (after(tp->snd_una, ca->end_seq)) bictcp_hystart_reset(tp);
  // "first detection parameter - ack-train detection"
  uint32_t now = bictcp_clock_us(tp);
  if (static_cast<int32_t>(now - ca->last_ack) <= static_cast<int32_t>(kHystartAckDeltaUs)) {
    ca->last_ack = now;
    uint32_t threshold = ca->delay_min >> 1;
    if (static_cast<int32_t>(now - ca->round_start) > static_cast<int32_t>(threshold)) {
      ca->found = 1;
      tp->snd_ssthresh = tp->snd_cwnd;
    }
  }
  // "obtain the minimum delay of more than sampling packets"
  if (ca->curr_rtt > delay) ca->curr_rtt = delay;
  if (ca->sample_cnt < HYSTART_MIN_SAMPLES) {
    ca->sample_cnt++;
  } else if (ca->curr_rtt > ca->delay_min + std::clamp(ca->delay_min >> 3, HYSTART_DELAY_MIN, HYSTART_DELAY_MAX)) {
    ca->found = 1;
    tp->snd_ssthresh = tp->snd_cwnd;
  }
}

// kernel: cubictcp_acked()
static void cubictcp_acked(tcp_sock* tp, uint32_t pkts_acked, long rtt_us) {
  (void)pkts_acked;
  bictcp* ca = inet_csk_ca(tp);
  // "Some calls are for duplicates without timetamps"
  if (rtt_us < 0) return;
  // "Discard delay samples right after fast recovery"
  if (ca->epoch_start != 0 && static_cast<int32_t>(jiffies(tp) - ca->epoch_start) < 1000) return;
  uint32_t delay = rtt_us == 0 ? 1 : static_cast<uint32_t>(rtt_us);
  // "first time call or link delay decreases"
  if (ca->delay_min == 0 || ca->delay_min > delay) ca->delay_min = delay;
  if (!ca->found && tcp_in_slow_start(tp) && tp->snd_cwnd >= kHystartLowWindow) hystart_update(tp, delay);
}

// kernel: tcp_reno_undo_cwnd()
static uint32_t cubictcp_undo_cwnd(tcp_sock* tp) { return std::max(tp->snd_cwnd, tp->prior_cwnd); }

// kernel: struct tcp_congestion_ops cubictcp
const tcp_congestion_ops tcp_cubic = {
    .name = "cubic",
    .init = cubictcp_init,
    .ssthresh = cubictcp_recalc_ssthresh,
    .cong_avoid = cubictcp_cong_avoid,
    .set_state = cubictcp_state,
    .cwnd_event = cubictcp_cwnd_event,
    .pkts_acked = cubictcp_acked,
    .undo_cwnd = cubictcp_undo_cwnd,
};

}  // namespace xmit
