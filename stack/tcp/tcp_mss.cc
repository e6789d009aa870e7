// stack/tcp/tcp_mss.cc — MSS and size goal. Kernel counterparts in tcp_mss.h.
#include "stack/tcp/tcp_mss.h"

#include <sys/socket.h>  // MSG_OOB

#include <algorithm>

#include "stack/tcp/tcp_options.h"

namespace xmit {

// kernel: __tcp_mtu_to_mss(), net/ipv4/tcp_output.c
int tcp_mtu_to_mss_core(const tcp_sock* tp, int pmtu) {
  // "Calculate base mss without TCP options: It is MMS_S - sizeof(tcphdr) of rfc1122"
  int mss_now = pmtu - tp->net_header_len - 20;
  // "Clamp it (mss_clamp does not include tcp options)"
  if (mss_now > tp->rx_opt.mss_clamp) mss_now = tp->rx_opt.mss_clamp;
  // "Now subtract optional transport overhead"
  mss_now -= tp->ext_hdr_len;
  // "Then reserve room for full set of TCP options and 8 bytes of data"
  return std::max<int>(mss_now, TCP_MIN_SND_MSS);
}

// kernel: tcp_mtu_to_mss()
int tcp_mtu_to_mss(const tcp_sock* tp, int pmtu) {
  return tcp_mtu_to_mss_core(tp, pmtu) - (tp->tcp_header_len - 20);
}

// kernel: tcp_mss_to_mtu()
int tcp_mss_to_mtu(const tcp_sock* tp, int mss) {
  return mss + tp->tcp_header_len + tp->ext_hdr_len + tp->net_header_len;
}

// kernel: tcp_bound_to_half_wnd(), include/net/tcp.h
int tcp_bound_to_half_wnd(const tcp_sock* tp, int pktsize) {
  // "When peer uses tiny windows, there is no use in packetizing to sub-MSS pieces for the sake
  // of SWS or making sure there are enough packets in the pipe for fast recovery."
  uint32_t cutoff = tp->max_window > TCP_MSS_DEFAULT ? tp->max_window >> 1 : tp->max_window;
  if (cutoff != 0 && static_cast<uint32_t>(pktsize) > cutoff)
    return std::max<int>(static_cast<int>(cutoff), 68 - tp->tcp_header_len);
  return pktsize;
}

// kernel: tcp_sync_mss() (MTU probing left out: icsk_mtup.enabled is off by default,
// sysctl_tcp_mtu_probing = 0)
uint32_t tcp_sync_mss(tcp_sock* tp, uint32_t pmtu) {
  int mss_now = tcp_mtu_to_mss(tp, static_cast<int>(pmtu));
  mss_now = tcp_bound_to_half_wnd(tp, mss_now);
  tp->pmtu_cookie = pmtu;
  tp->mss_cache = static_cast<uint32_t>(mss_now);
  return tp->mss_cache;
}

// kernel: tcp_current_mss()
uint32_t tcp_current_mss(tcp_sock* tp, uint32_t dst_mtu) {
  uint32_t mss_now = tp->mss_cache;
  if (dst_mtu != 0 && dst_mtu != tp->pmtu_cookie) mss_now = tcp_sync_mss(tp, dst_mtu);
  // "The mss_cache is sized based on tp->tcp_header_len, which assumes some common options. If
  // this is an odd packet (because of SACK blocks, say), we need to adjust the MSS."
  tcp_out_options opts;
  uint32_t header_len = tcp_established_options(tp, nullptr, &opts) + 20;
  if (header_len != tp->tcp_header_len) mss_now -= header_len - tp->tcp_header_len;
  return mss_now;
}

// kernel: tcp_xmit_size_goal(), net/ipv4/tcp.c
uint32_t tcp_xmit_size_goal(tcp_sock* tp, uint32_t mss_now, bool large_allowed) {
  if (!large_allowed || tp->gso_max_size == 0) return mss_now;
  // "Note : tcp_tso_autosize() will eventually split this later"
  uint32_t new_size_goal = static_cast<uint32_t>(tcp_bound_to_half_wnd(tp, static_cast<int>(tp->gso_max_size)));
  // "We try hard to avoid divides here"
  uint32_t size_goal = tp->gso_segs * mss_now;
  if (new_size_goal < size_goal || new_size_goal >= size_goal + mss_now) {
    tp->gso_segs = static_cast<uint16_t>(std::min<uint32_t>(new_size_goal / mss_now, tp->gso_max_segs));
    size_goal = tp->gso_segs * mss_now;
  }
  return std::max(size_goal, mss_now);
}

// kernel: tcp_send_mss(), net/ipv4/tcp.c
uint32_t tcp_send_mss(tcp_sock* tp, uint32_t dst_mtu, int flags, uint32_t* size_goal) {
  uint32_t mss_now = tcp_current_mss(tp, dst_mtu);
  *size_goal = tcp_xmit_size_goal(tp, mss_now, !(flags & MSG_OOB));
  return mss_now;
}

// kernel: sk_setup_caps(), sk_dst_gso_max_size(), net/core/sock.c
void tcp_sk_setup_caps(tcp_sock* tp, const NetdevFeatures& features, bool sw_gso) {
  tp->hw_csum = features.l4_csum;
  tp->sg_user = features.sg_user && features.max_segs >= 2;
  tp->sg_max_frags = static_cast<uint8_t>(std::min<int>(MAX_SKB_FRAGS, features.max_segs - 1));
  tp->gso_segs = 0;
  if (!features.tso && !sw_gso) {
    tp->gso_max_size = 0;
    tp->gso_max_segs = 1;  // "u32 max_segs = 1": tcp_tso_segs() is then 1
    return;
  }
  uint32_t dev_max = GSO_LEGACY_MAX_SIZE;
  if (features.tso && features.tso_max_size != 0) dev_max = std::min(dev_max, features.tso_max_size);
  // A device limit below the header reserve would underflow (as it once did in the kernel with a
  // tiny gso_ipv4_max_size): no GSO then.
  tp->gso_max_size = dev_max > MAX_TCP_HEADER + 1 ? dev_max - (MAX_TCP_HEADER + 1) : 0;
  tp->gso_max_segs = GSO_MAX_SEGS;
}

}  // namespace xmit
