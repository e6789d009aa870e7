// stack/tcp/tcp_options.cc — established options and the advertised window. Kernel counterparts in
// tcp_options.h.
#include "stack/tcp/tcp_options.h"

#include <algorithm>

#include "stack/base/byteorder.h"
#include "stack/tcp/tcp_input_parse.h"
#include "stack/tcp/tcp_output_ack.h"
#include "stack/wire/tcp.h"

namespace xmit {

// kernel: tcp_established_options(), net/ipv4/tcp_output.c
uint32_t tcp_established_options(const tcp_sock* tp, const sk_buff* skb, tcp_out_options* opts) {
  uint32_t size = 0;
  opts->options = 0;
  if (tp->rx_opt.tstamp_ok) {
    opts->options |= OPTION_TS;
    // kernel: tcp_skb_timestamp_ts() — a millisecond clock (TCP_TS_HZ 1000)
    opts->tsval = skb != nullptr ? static_cast<uint32_t>(TCP_SKB_CB(skb)->sent_us / 1000) + tp->tsoffset : 0;
    opts->tsecr = tp->rx_opt.ts_recent;
    size += TCPOLEN_TSTAMP_ALIGNED;
  }
  // "eff_sacks = tp->rx_opt.num_sacks + tp->rx_opt.dsack"
  opts->num_sack_blocks = 0;
  uint32_t eff_sacks = tp->num_sacks + (tp->dsack ? 1u : 0u);
  if (eff_sacks != 0) {
    const uint32_t remaining = uint32_t{MAX_TCP_OPTION_SPACE} - size;
    if (remaining < TCPOLEN_SACK_BASE_ALIGNED + TCPOLEN_SACK_PERBLOCK) return size;
    uint32_t n = std::min(eff_sacks, (remaining - TCPOLEN_SACK_BASE_ALIGNED) / TCPOLEN_SACK_PERBLOCK);
    opts->num_sack_blocks = static_cast<uint8_t>(n);
    // kernel: tcp_options_write() reads from duplicate_sack on, which selective_acks follows.
    uint32_t k = 0;
    if (tp->dsack) opts->sack[k++] = tp->duplicate_sack[0];
    for (uint32_t i = 0; k < n; ++i) opts->sack[k++] = tp->selective_acks[i];
    size += TCPOLEN_SACK_BASE_ALIGNED + n * TCPOLEN_SACK_PERBLOCK;
  }
  return size;
}

// kernel: tcp_syn_options(), net/ipv4/tcp_output.c (sysctl_tcp_timestamps, _window_scaling and
// _sack at their defaults, 1)
uint32_t tcp_syn_options(const tcp_sock* tp, const sk_buff* skb, tcp_out_options* opts) {
  uint32_t size = TCPOLEN_MSS_ALIGNED;
  *opts = tcp_out_options{};
  opts->mss = tp->advmss;  // tcp_advertise_mss(): the route's advmss is what advmss was set from
  opts->options |= OPTION_TS;
  opts->tsval = skb != nullptr ? static_cast<uint32_t>(TCP_SKB_CB(skb)->sent_us / 1000) + tp->tsoffset : 0;
  opts->tsecr = tp->rx_opt.ts_recent;
  size += TCPOLEN_TSTAMP_ALIGNED;
  opts->ws = tp->rx_opt.rcv_wscale;
  opts->options |= OPTION_WSCALE;
  size += TCPOLEN_WSCALE_ALIGNED;
  opts->options |= OPTION_SACK_ADVERTISE;  // rides in the timestamp's first word
  return size;
}

// kernel: tcp_options_write(), net/ipv4/tcp_output.c
void tcp_options_write(uint8_t* ptr, const tcp_out_options& opts) {
  uint16_t options = opts.options;
  if (opts.mss != 0) {
    ptr[0] = TCPOPT_MSS;
    ptr[1] = TCPOLEN_MSS;
    store_be16(ptr + 2, opts.mss);
    ptr += 4;
  }
  if (options & OPTION_TS) {
    // RFC 7323 Appendix A: NOP, NOP, then kind 8 length 10 keeps TSval 4-byte aligned; Linux puts
    // SACK_PERM in place of the two NOPs.
    if (options & OPTION_SACK_ADVERTISE) {
      ptr[0] = TCPOPT_SACK_PERM;
      ptr[1] = TCPOLEN_SACK_PERM;
      options = static_cast<uint16_t>(options & ~OPTION_SACK_ADVERTISE);
    } else {
      ptr[0] = TCPOPT_NOP;
      ptr[1] = TCPOPT_NOP;
    }
    ptr[2] = TCPOPT_TIMESTAMP;
    ptr[3] = TCPOLEN_TIMESTAMP;
    store_be32(ptr + 4, opts.tsval);
    store_be32(ptr + 8, opts.tsecr);
    ptr += TCPOLEN_TSTAMP_ALIGNED;
  }
  if (options & OPTION_SACK_ADVERTISE) {
    ptr[0] = TCPOPT_NOP;
    ptr[1] = TCPOPT_NOP;
    ptr[2] = TCPOPT_SACK_PERM;
    ptr[3] = TCPOLEN_SACK_PERM;
    ptr += 4;
  }
  if (options & OPTION_WSCALE) {
    ptr[0] = TCPOPT_NOP;
    ptr[1] = TCPOPT_WINDOW;
    ptr[2] = TCPOLEN_WINDOW;
    ptr[3] = opts.ws;
    ptr += 4;
  }
  if (opts.num_sack_blocks != 0) {
    ptr[0] = TCPOPT_NOP;
    ptr[1] = TCPOPT_NOP;
    ptr[2] = TCPOPT_SACK;
    ptr[3] = static_cast<uint8_t>(TCPOLEN_SACK_BASE + opts.num_sack_blocks * TCPOLEN_SACK_PERBLOCK);
    ptr += 4;
    for (int i = 0; i < opts.num_sack_blocks; ++i, ptr += 8) {
      store_be32(ptr, opts.sack[i].start_seq);
      store_be32(ptr + 4, opts.sack[i].end_seq);
    }
  }
}

// kernel: tcp_receive_window(), include/net/tcp.h
static uint32_t tcp_receive_window(const tcp_sock* tp) {
  int32_t win = static_cast<int32_t>(tp->rcv_wup + tp->rcv_wnd - tp->rcv_nxt);
  return win < 0 ? 0 : static_cast<uint32_t>(win);
}

// kernel: tcp_select_window(), net/ipv4/tcp_output.c
uint16_t tcp_select_window(tcp_sock* tp) {
  uint32_t cur_win = tcp_receive_window(tp);
  // Without a configured receive buffer (rcvbuf 0) rcv_wnd stands for __tcp_select_window().
  uint32_t new_win = tp->rcvbuf != 0 ? tcp_select_window_core(tp) : tp->rcv_wnd;
  if (new_win < cur_win) {
    // "Never shrink the offered window" — rounded up to what the scale can express (ALIGN()).
    uint32_t unit = 1u << tp->rx_opt.rcv_wscale;
    new_win = (cur_win + unit - 1) & ~(unit - 1);
  }
  tp->rcv_wnd = new_win;
  tp->rcv_wup = tp->rcv_nxt;
  new_win = std::min<uint32_t>(new_win, 65535u << tp->rx_opt.rcv_wscale);
  new_win >>= tp->rx_opt.rcv_wscale;
  return static_cast<uint16_t>(new_win);
}

}  // namespace xmit
