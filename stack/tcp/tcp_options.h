// stack/tcp/tcp_options.h — the options an established connection puts on every segment, and the
// window it advertises. Kernel counterparts: struct tcp_out_options, tcp_established_options(),
// tcp_options_write(), tcp_select_window() (net/ipv4/tcp_output.c).
#pragma once

#include <cstdint>

#include "stack/tcp/tcp_sock.h"

namespace xmit {

// kernel: OPTION_* bits, net/ipv4/tcp_output.c
inline constexpr uint16_t OPTION_SACK_ADVERTISE = 1 << 0;
inline constexpr uint16_t OPTION_TS = 1 << 1;
inline constexpr uint16_t OPTION_WSCALE = 1 << 3;

inline constexpr uint32_t TCPOLEN_MSS_ALIGNED = 4;     // kernel: include/net/tcp.h
inline constexpr uint32_t TCPOLEN_WSCALE_ALIGNED = 4;
inline constexpr uint32_t TCPOLEN_SACKPERM_ALIGNED = 4;

// kernel: struct tcp_out_options (no MD5, Fast Open or MPTCP)
struct tcp_out_options {
  uint16_t options = 0;  // OPTION_*
  uint16_t mss = 0;      // SYN / SYN-ACK: the MSS option when non-zero
  uint8_t ws = 0;        // OPTION_WSCALE: our shift
  uint32_t tsval = 0;
  uint32_t tsecr = 0;
  uint8_t num_sack_blocks = 0;  // SACK blocks to write: the DSACK block (if any) first
  tcp_sack_block sack[TCP_NUM_SACKS];
};

// Fills `opts` and returns their aligned length. With timestamps: 12 bytes, TSval = the skb's
// send time in ms + tsoffset (0 when skb is null, as in tcp_current_mss()), TSecr = ts_recent.
// With SACK: the DSACK block then the out-of-order blocks (tcp_sack.h), as many as fit in the 40
// option bytes (4, or 3 with timestamps). kernel: tcp_established_options()
uint32_t tcp_established_options(const tcp_sock* tp, const sk_buff* skb, tcp_out_options* opts);

// A SYN's options, as Linux with its default sysctls (timestamps, window scaling and SACK on):
// MSS = advmss, TS (TSval = send time in ms + tsoffset, TSecr = ts_recent), WS = rcv_wscale,
// SACK_PERM. Returns their aligned length (20 with timestamps). kernel: tcp_syn_options()
uint32_t tcp_syn_options(const tcp_sock* tp, const sk_buff* skb, tcp_out_options* opts);

// Writes the options at `ptr` in Linux's order: MSS, then SACK_PERM folded into the timestamp's
// first word (or NOP NOP TS), NOP NOP SACK_PERM without timestamps, NOP WS, then the SACK blocks
// (4-byte multiples, every byte initialised). The caller clears tp->dsack once a DSACK block was
// written (the kernel does it inside). kernel: tcp_options_write()
void tcp_options_write(uint8_t* ptr, const tcp_out_options& opts);

// The window field for a non-SYN segment: never shrinks what was offered (RFC 9293 §3.8.6), is
// capped at 65535 << rcv_wscale and scaled down by rcv_wscale (the kernel's default
// sysctl_tcp_workaround_signed_windows=0; its 32767 cap is not reproduced). Updates
// rcv_wnd and rcv_wup. The new window is __tcp_select_window()'s (tcp_output_ack.h), or rcv_wnd
// itself when no receive buffer is configured (rcvbuf 0). kernel: tcp_select_window()
uint16_t tcp_select_window(tcp_sock* tp);

}  // namespace xmit
