// stack/base/win_minmax.h — Kathleen Nichols' windowed min/max tracker: the best, 2nd best and 3rd
// best samples of the last `win` time units in constant space (TCP's min RTT over
// net.ipv4.tcp_min_rtt_wlen). Kernel counterparts: include/linux/win_minmax.h, lib/win_minmax.c.
#pragma once

#include <cstdint>

namespace xmit {

// kernel: struct minmax_sample — "A single data point for our parameterized min-max tracker"
struct minmax_sample {
  uint32_t t = 0;  // "time measurement was taken"
  uint32_t v = 0;  // "value measured"
};

// kernel: struct minmax — "State for the parameterized min-max tracker"
struct minmax {
  minmax_sample s[3];
};

// kernel: minmax_get()
inline uint32_t minmax_get(const minmax* m) { return m->s[0].v; }

// kernel: minmax_reset()
inline uint32_t minmax_reset(minmax* m, uint32_t t, uint32_t meas) {
  const minmax_sample val{.t = t, .v = meas};
  m->s[2] = m->s[1] = m->s[0] = val;
  return m->s[0].v;
}

// kernel: minmax_subwin_update() — "As time advances, update the 1st, 2nd, and 3rd choices."
inline uint32_t minmax_subwin_update(minmax* m, uint32_t win, const minmax_sample* val) {
  const uint32_t dt = val->t - m->s[0].t;
  if (dt > win) {
    // "Passed entire window without a new val so make 2nd choice the new val & 3rd choice the new
    // 2nd choice. we may have to iterate this since our 2nd choice may also be outside the window
    // (we checked on entry that the third choice was in the window)."
    m->s[0] = m->s[1];
    m->s[1] = m->s[2];
    m->s[2] = *val;
    if (val->t - m->s[0].t > win) {
      m->s[0] = m->s[1];
      m->s[1] = m->s[2];
      m->s[2] = *val;
    }
  } else if (m->s[1].t == m->s[0].t && dt > win / 4) {
    // "We've passed a quarter of the window without a new val so take a 2nd choice from the 2nd
    // quarter of the window."
    m->s[2] = m->s[1] = *val;
  } else if (m->s[2].t == m->s[1].t && dt > win / 2) {
    // "We've passed half the window without finding a new val so take a 3rd choice from the last
    // half of the window"
    m->s[2] = *val;
  }
  return m->s[0].v;
}

// kernel: minmax_running_min() — "Check if new measurement updates the 1st, 2nd or 3rd choice min."
inline uint32_t minmax_running_min(minmax* m, uint32_t win, uint32_t t, uint32_t meas) {
  const minmax_sample val{.t = t, .v = meas};
  // "found new min?" / "nothing left in window?": "forget earlier samples"
  if (val.v <= m->s[0].v || val.t - m->s[2].t > win) return minmax_reset(m, t, meas);
  if (val.v <= m->s[1].v) {
    m->s[2] = m->s[1] = val;
  } else if (val.v <= m->s[2].v) {
    m->s[2] = val;
  }
  return minmax_subwin_update(m, win, &val);
}

}  // namespace xmit
