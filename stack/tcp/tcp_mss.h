// stack/tcp/tcp_mss.h — MSS and the send size goal: what one segment and one skb may carry.
// Kernel counterparts: tcp_mtu_to_mss(), tcp_mss_to_mtu(), tcp_bound_to_half_wnd(), tcp_sync_mss(),
// tcp_current_mss() (net/ipv4/tcp_output.c); tcp_xmit_size_goal(), tcp_send_mss() (net/ipv4/tcp.c);
// sk_setup_caps() / sk_dst_gso_max_size() (net/core/sock.c).
#pragma once

#include <cstdint>

#include "stack/dev/netdev.h"
#include "stack/tcp/tcp_sock.h"

namespace xmit {

// kernel: __tcp_mtu_to_mss() — MSS without options: pmtu - IP header - 20, capped by the peer's
// MSS, minus IP options, at least TCP_MIN_SND_MSS.
int tcp_mtu_to_mss_core(const tcp_sock* tp, int pmtu);
// kernel: tcp_mtu_to_mss() — less the options every segment carries (tcp_header_len - 20).
int tcp_mtu_to_mss(const tcp_sock* tp, int pmtu);
// kernel: tcp_mss_to_mtu() — the inverse.
int tcp_mss_to_mtu(const tcp_sock* tp, int mss);
// kernel: tcp_bound_to_half_wnd() — at most half the largest window the peer offered (when that
// exceeds 536), but never below 68 - tcp_header_len.
int tcp_bound_to_half_wnd(const tcp_sock* tp, int pktsize);
// Recomputes mss_cache for a path MTU and remembers the MTU. No MTU probing. kernel: tcp_sync_mss()
uint32_t tcp_sync_mss(tcp_sock* tp, uint32_t pmtu);
// The MSS for data sent now: mss_cache (re-synced if the route MTU changed) corrected for options
// beyond tcp_header_len. kernel: tcp_current_mss()
uint32_t tcp_current_mss(tcp_sock* tp, uint32_t dst_mtu);
// Bytes one skb should hold: one MSS without GSO, else the largest multiple of mss_now under
// gso_max_size (and half the peer's window), at most gso_max_segs of them. kernel: tcp_xmit_size_goal()
uint32_t tcp_xmit_size_goal(tcp_sock* tp, uint32_t mss_now, bool large_allowed);
// kernel: tcp_send_mss() — large_allowed unless MSG_OOB.
uint32_t tcp_send_mss(tcp_sock* tp, uint32_t dst_mtu, int flags, uint32_t* size_goal);

// What the route's device lets TCP build. The kernel has built GSO skbs for every TCP socket since
// 4.19 ("tcp: switch to GSO being always on") and segments them in software when the device has
// no TSO; `sw_gso` false turns that off (size_goal = one MSS). gso_max_size is the device's
// (tso_max_size, or 65536) less MAX_TCP_HEADER + 1. kernel: sk_setup_caps(), sk_dst_gso_max_size()
void tcp_sk_setup_caps(tcp_sock* tp, const NetdevFeatures& features, bool sw_gso = true);

}  // namespace xmit
