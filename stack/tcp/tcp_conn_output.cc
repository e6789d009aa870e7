// stack/tcp/tcp_conn_output.cc — segments that open and abort connections: the SYN (tcp_connect),
// the initial window, resets with and without a socket. Kernel counterparts: tcp_connect(),
// tcp_connect_init(), tcp_select_initial_window(), tcp_send_active_reset() (net/ipv4/tcp_output.c),
// tcp_v4_connect()'s sequence part, tcp_v4_send_reset() (net/ipv4/tcp_ipv4.c).
#include <netinet/in.h>

#include <algorithm>
#include <bit>
#include <cerrno>

#include "stack/base/checksum.h"
#include "stack/tcp/tcp_ack.h"
#include "stack/tcp/tcp_conn_int.h"
#include "stack/tcp/tcp_input_parse.h"
#include "stack/tcp/tcp_mss.h"
#include "stack/tcp/tcp_output_ack.h"
#include "stack/tcp/tcp_sendmsg.h"
#include "stack/wire/tcp.h"

namespace xmit {

// kernel: tcp_select_initial_window(), net/ipv4/tcp_output.c (sysctl_tcp_workaround_signed_windows 0)
void tcp_select_initial_window(uint32_t space, uint32_t mss, uint32_t* rcv_wnd, uint32_t* window_clamp,
                               bool wscale_ok, uint8_t* rcv_wscale, uint32_t init_rcv_wnd, uint32_t rmem_max) {
  // "If no clamp set the clamp to the max possible scaled window"
  if (*window_clamp == 0) *window_clamp = 65535u << TCP_MAX_WSCALE;
  space = std::min(*window_clamp, space);
  // "Quantize space offering to a multiple of mss if possible."
  if (space > mss) space = space / mss * mss;
  *rcv_wnd = std::min<uint32_t>(space, 65535);
  if (init_rcv_wnd != 0) *rcv_wnd = std::min(*rcv_wnd, init_rcv_wnd * mss);
  *rcv_wscale = 0;
  if (wscale_ok) {
    // "Set window scaling on max possible window"
    space = std::max(space, rmem_max);  // max(tcp_rmem[2], rmem_max)
    space = std::min(space, *window_clamp);
    int ws = static_cast<int>(std::bit_width(space)) - 1 - 15;  // ilog2(space) - 15
    *rcv_wscale = static_cast<uint8_t>(std::clamp(ws, 0, static_cast<int>(TCP_MAX_WSCALE)));
  }
  // "Set the clamp no higher than max representable value"
  *window_clamp = std::min<uint32_t>(65535u << *rcv_wscale, *window_clamp);
}

int tcp_send_ctl(SkbPool* pool, be32 saddr, be32 daddr, uint16_t sport, uint16_t dport, uint32_t seq,
                 uint32_t ack, uint8_t flags, uint16_t window, const tcp_out_options& opts, uint64_t now_us,
                 TcpXmitFn xmit) {
  sk_buff* skb = pool->alloc_skb();
  if (skb == nullptr) return -ENOBUFS;
  skb_reserve(skb, kTcpHeadroom);
  uint32_t optlen = 0;
  if (opts.mss != 0) optlen += TCPOLEN_MSS_ALIGNED;
  if (opts.options & OPTION_TS) optlen += TCPOLEN_TSTAMP_ALIGNED;
  if ((opts.options & OPTION_SACK_ADVERTISE) && !(opts.options & OPTION_TS)) optlen += TCPOLEN_SACKPERM_ALIGNED;
  if (opts.options & OPTION_WSCALE) optlen += TCPOLEN_WSCALE_ALIGNED;
  const uint32_t hl = 20 + optlen;
  uint8_t* p = skb_put(skb, hl);
  if (p == nullptr) {
    kfree_skb(skb);
    return -ENOBUFS;
  }
  skb_reset_transport_header(skb);
  TcpHdr th = *TcpHdr::at(absl::MakeSpan(p, hl));
  th.set_source(sport);
  th.set_dest(dport);
  th.set_seq(seq);
  th.set_ack_seq(ack);
  th.set_doff(static_cast<uint8_t>(hl >> 2));
  th.set_flags(flags);
  th.set_window(window);
  th.set_check(0);
  th.set_urg_ptr(0);
  tcp_options_write(p + 20, opts);
  tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  *tcb = tcp_skb_cb{};
  tcb->seq = seq;
  tcb->end_seq = seq + ((flags & (TCPHDR_SYN | TCPHDR_FIN)) ? 1 : 0);
  tcb->tcp_flags = flags;
  tcb->tcp_gso_segs = 1;
  tcb->sent_us = now_us;
  tcb->saddr = saddr;
  tcb->daddr = daddr;
  skb->ip_summed = CHECKSUM_NONE;
  th.set_check(csum_tcpudp_magic(saddr, daddr, hl, IPPROTO_TCP, csum_partial(p, hl, 0)));
  return xmit(skb);
}

// kernel: tcp_v4_send_reset(), net/ipv4/tcp_ipv4.c (no MD5/AO; the route check is the owner's)
void tcp_v4_send_reset(const sk_buff* skb, const tcp_skb_cb& tcb, SkbPool* pool, TcpXmitFn xmit) {
  // "Never send a reset in response to a reset."
  if (tcb.tcp_flags & TCPHDR_RST) return;
  auto th = TcpHdrView::parse(absl::MakeConstSpan(skb->data, skb_headlen(skb)));
  if (!th) return;
  tcp_out_options none;
  if (tcb.tcp_flags & TCPHDR_ACK) {
    tcp_send_ctl(pool, tcb.daddr, tcb.saddr, th->dest(), th->source(), tcb.ack_seq, 0, TCPHDR_RST, 0, none, 0, xmit);
  } else {
    // "rep.th.ack_seq = htonl(ntohl(th->seq) + th->syn + th->fin + skb->len - (th->doff << 2))"
    tcp_send_ctl(pool, tcb.daddr, tcb.saddr, th->dest(), th->source(), 0, tcb.end_seq, TCPHDR_RST | TCPHDR_ACK, 0,
                 none, 0, xmit);
  }
}

// kernel: tcp_send_active_reset(), net/ipv4/tcp_output.c
void tcp_send_active_reset(tcp_sock* tp, TcpXmitFn xmit) {
  sk_buff* skb = tp->skb_pool->alloc_skb();
  if (skb == nullptr) return;  // the kernel counts TCP_MIB_OUTRSTS failures and gives up too
  skb_reserve(skb, kTcpHeadroom);
  tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  *tcb = tcp_skb_cb{};
  // tcp_init_nondata_skb(skb, tcp_acceptable_seq(sk), TCPHDR_ACK | TCPHDR_RST)
  tcb->seq = tcb->end_seq = !after(tp->snd_nxt, tcp_wnd_end(tp)) ? tp->snd_nxt : tcp_wnd_end(tp);
  tcb->tcp_flags = TCPHDR_ACK | TCPHDR_RST;
  tcb->tcp_gso_segs = 1;
  tcp_transmit_skb(tp, skb, xmit);
  kfree_skb(skb);
}

// kernel: tcp_v4_connect(): "st = secure_tcp_seq_and_ts_off(...); if (!tp->write_seq) ...
// WRITE_ONCE(tp->tsoffset, st.ts_off);"
void tcp_v4_connect_seq(tcp_sock* tp, TcpOps* ops) {
  if (tp->write_seq == 0) tp->write_seq = ops->secure_seq(tp->saddr, tp->daddr, tp->sport, tp->dport);
  tp->tsoffset = ops->secure_ts_off(tp->saddr, tp->daddr, tp->sport, tp->dport);
}

// kernel: tcp_connect_init(), tcp_connect()
int tcp_connect(tcp_sock* tp, uint32_t dst_mtu, TcpXmitFn xmit) {
  if (tp->sk_state != TCP_CLOSE) return tp->sk_state == TCP_SYN_SENT ? -EALREADY : -EISCONN;
  tp->rx_opt.ts_recent = 0;
  tp->ts_recent_stamp = 0;
  tp->rx_opt.mss_clamp = TCP_MSS_DEFAULT;  // "tp->rx_opt.mss_clamp = TCP_MSS_DEFAULT;" until the SYN-ACK says
  tp->rx_opt.tstamp_ok = tp->rx_opt.sack_ok = tp->rx_opt.wscale_ok = false;
  tcp_set_state(tp, TCP_SYN_SENT);
  tp->sk_shutdown = 0;
  tp->sock_dead = false;

  // tcp_connect_init()
  tp->tcp_header_len = 20 + TCPOLEN_TSTAMP_ALIGNED;  // sysctl_tcp_timestamps
  if (tp->rx_opt.user_mss != 0) tp->rx_opt.mss_clamp = tp->rx_opt.user_mss;
  tp->max_window = 0;
  tcp_sync_mss(tp, dst_mtu);
  // dst_metric_advmss(): ipv4_default_advmss() = MTU - 40, at least 256; tcp_mss_clamp() by user_mss.
  uint32_t advmss = std::max<uint32_t>(dst_mtu - 40, 256);
  if (tp->rx_opt.user_mss != 0) advmss = std::min<uint32_t>(advmss, tp->rx_opt.user_mss);
  tp->advmss = static_cast<uint16_t>(advmss);
  tcp_initialize_rcv_mss(tp);
  uint32_t rcv_wnd = 0;
  uint8_t rcv_wscale = 0;
  // tcp_full_space(): rcvbuf is already in payload bytes here (tcp_sock.h).
  tcp_select_initial_window(tp->rcvbuf, tp->advmss, &rcv_wnd, &tp->window_clamp, true, &rcv_wscale, 0,
                            tp->sysctl_rmem_max);
  tp->rcv_wnd = rcv_wnd;
  tp->rx_opt.rcv_wscale = rcv_wscale;
  tp->sk_err = 0;
  tp->snd_wnd = 0;
  tp->snd_wl1 = 0;  // tcp_init_wl(tp, 0)
  tcp_write_queue_purge(tp);
  tp->snd_una = tp->snd_sml = tp->snd_up = tp->snd_nxt = tp->write_seq;
  tp->rcv_nxt = 0;
  tp->rcv_wup = tp->copied_seq = tp->rcv_nxt;
  tp->icsk_rto = TCP_TIMEOUT_INIT_US;  // tcp_timeout_init()
  tp->icsk_retransmits = 0;
  tp->icsk_backoff = 0;
  tp->total_retrans = 0;
  tp->total_rto = 0;
  // tcp_disconnect()'s zeroing of what TCP_INFO reports (tcp_info.h)
  tp->total_rto_recoveries = 0;
  tp->total_rto_time = tp->rto_stamp = tp->timeout_rehash = 0;
  tp->bytes_acked = tp->bytes_received = tp->bytes_sent = tp->bytes_retrans = 0;
  tp->segs_in = tp->data_segs_in = tp->segs_out = tp->data_segs_out = 0;
  tp->dsack_dups = tp->rcv_ooopack = tp->delivered = 0;
  tp->chrono_type = 0;
  tp->chrono_stat[0] = tp->chrono_stat[1] = tp->chrono_stat[2] = 0;
  tp->packets_out = tp->lost_out = tp->retrans_out = tp->sacked_out = 0;  // tcp_clear_retrans()

  // tcp_connect()
  sk_buff* buff = tp->skb_pool->alloc_skb();
  if (buff == nullptr) {
    tcp_set_state(tp, TCP_CLOSE);
    return -ENOBUFS;
  }
  skb_reserve(buff, kTcpHeadroom);
  tcp_skb_cb* tcb = TCP_SKB_CB(buff);
  *tcb = tcp_skb_cb{};
  tcb->seq = tp->write_seq++;  // tcp_init_nondata_skb(buff, tp->write_seq++, TCPHDR_SYN)
  tcb->end_seq = tcb->seq + 1;
  tcb->tcp_flags = TCPHDR_SYN;
  tcb->tcp_gso_segs = 1;
  tp->retrans_stamp = tcp_jiffies32(tp);  // tcp_time_stamp_ts()
  // tcp_connect_queue_skb() + tcp_rbtree_insert(&sk->tcp_rtx_queue, buff)
  tp->packets_out += 1;
  skb_queue_tail(&tp->rtx_queue, buff);
  tcp_transmit_skb(tp, buff, xmit);  // a failed send is retried by the SYN timer, as in the kernel
  tp->snd_nxt = tp->pushed_seq = tp->write_seq;
  // "Timer for repeating the SYN until an answer."
  tp->icsk_pending = ICSK_TIME_RETRANS;
  sk_reset_timer(&tp->icsk_retransmit_timer, tp->tcp_mstamp + tp->icsk_rto);
  return 0;
}

}  // namespace xmit
