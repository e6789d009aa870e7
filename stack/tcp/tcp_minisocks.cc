// stack/tcp/tcp_minisocks.cc — a listener's side of the handshake: SYN -> request + SYN-ACK (or a
// SYN cookie when the request queue is full), its retransmissions, the final ACK -> a child socket
// on the accept queue. Kernel counterparts: tcp_conn_request(), tcp_syn_flood_action(),
// tcp_openreq_init(), tcp_openreq_init_rwin() (net/ipv4/tcp_input.c, tcp_minisocks.c),
// tcp_make_synack()/tcp_synack_options() (tcp_output.c), tcp_check_req(),
// tcp_create_openreq_child() (tcp_minisocks.c), tcp_v4_syn_recv_sock(), tcp_v4_cookie_check()
// (tcp_ipv4.c), reqsk_timer_handler() (inet_connection_sock.c). Simplified: requests live in the
// listener (a vector bounded by the backlog; the owner hands every segment without an established
// socket to the listener); no young-request pruning of the SYN-ACK retries, no
// tcp_max_syn_backlog (with tcp_syncookies=0 the kernel keeps the last quarter of it for proven
// peers), no ECN negotiation, no Fast Open; the child's first RTT sample is
// the SYN-ACK's only when it was not retransmitted. Cookies: tcp_syncookies.h.
#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "stack/tcp/tcp_ack.h"
#include "stack/tcp/tcp_conn_int.h"
#include "stack/tcp/tcp_input_parse.h"
#include "stack/tcp/tcp_mss.h"
#include "stack/tcp/tcp_output_ack.h"
#include "stack/tcp/tcp_syncookies.h"
#include "stack/wire/tcp.h"

namespace xmit {

// dst_metric_advmss() (ipv4_default_advmss(): MTU - 40, at least 256) clamped by TCP_MAXSEG.
static uint16_t tcp_route_advmss(const tcp_sock* tp, uint32_t dst_mtu) {
  uint32_t mss = std::max<uint32_t>(dst_mtu - 40, 256);
  if (tp->rx_opt.user_mss != 0) mss = std::min<uint32_t>(mss, tp->rx_opt.user_mss);  // tcp_mss_clamp()
  return static_cast<uint16_t>(mss);
}

// kernel: reqsk_timeout() — the request's RTO after num_timeout expiries.
static uint64_t reqsk_timeout(const tcp_request_sock& req) {
  uint64_t t = uint64_t{TCP_TIMEOUT_INIT_US} << std::min<uint32_t>(req.num_timeout, 16);
  return std::min<uint64_t>(t, TCP_RTO_MAX_US);
}

// kernel: tcp_make_synack() + tcp_synack_options() + tcp_v4_send_synack()
static int tcp_send_synack(tcp_sock* listener, tcp_request_sock* req, uint32_t dst_mtu, TcpXmitFn xmit) {
  tcp_out_options opts;
  opts.mss = tcp_route_advmss(listener, dst_mtu);  // "We always send an MSS option."
  if (req->wscale_ok) {
    opts.ws = req->rcv_wscale;
    opts.options |= OPTION_WSCALE;
  }
  const uint64_t now = listener->tcp_mstamp;
  if (req->tstamp_ok) {
    opts.options |= OPTION_TS;
    // tcp_make_synack(): a cookie's timestamp carries the SYN's options (cookie_init_timestamp())
    const uint32_t ts = req->syncookie ? cookie_init_timestamp(*req, now) : static_cast<uint32_t>(now / 1000);
    opts.tsval = ts + req->ts_off;
    opts.tsecr = req->ts_recent;
  }
  if (req->sack_ok) opts.options |= OPTION_SACK_ADVERTISE;
  // "Timestamp first SYNACK" (not a cookie's: nothing keeps it)
  if (!req->syncookie && req->snt_synack == 0) req->snt_synack = now == 0 ? 1 : now;
  // "RFC1323: The window in SYN & SYN/ACK segments is never scaled."
  return tcp_send_ctl(listener->skb_pool, req->loc_addr, req->rmt_addr, req->loc_port, req->rmt_port, req->snt_isn,
                      req->rcv_isn + 1, TCPHDR_SYN | TCPHDR_ACK, static_cast<uint16_t>(std::min<uint32_t>(req->rsk_rcv_wnd, 65535)),
                      opts, now, xmit);
}

// kernel: tcp_v4_reqsk_send_ack() — an out-of-window segment for a request is answered with an ACK.
static void tcp_reqsk_send_ack(tcp_sock* listener, const tcp_request_sock& req, TcpXmitFn xmit) {
  tcp_out_options opts;
  if (req.tstamp_ok) {
    opts.options |= OPTION_TS;
    opts.tsval = static_cast<uint32_t>(listener->tcp_mstamp / 1000) + req.ts_off;
    opts.tsecr = req.ts_recent;
  }
  tcp_send_ctl(listener->skb_pool, req.loc_addr, req.rmt_addr, req.loc_port, req.rmt_port, req.snt_isn + 1,
               req.rcv_isn + 1, TCPHDR_ACK, static_cast<uint16_t>(req.rsk_rcv_wnd >> req.rcv_wscale), opts,
               listener->tcp_mstamp, xmit);
}

// kernel: tcp_listendrop() — LINUX_MIB_LISTENDROPS
static void tcp_listendrop(tcp_sock* listener) {
  if (listener->net_mib != nullptr) ++listener->net_mib->ListenDrops;
}

// kernel: sk_acceptq_is_full(), inet_csk_reqsk_queue_is_full() — "len > backlog" both.
static bool sk_acceptq_is_full(const tcp_sock* listener) {
  return listener->sk_ack_backlog > listener->sk_max_ack_backlog;
}
static bool inet_csk_reqsk_queue_is_full(const tcp_sock* listener) {
  return static_cast<int>(listener->reqsk_queue.size()) > listener->sk_max_ack_backlog;
}

// kernel: tcp_syn_flood_action(), net/ipv4/tcp_input.c — true if a cookie should be sent; the
// first time for this listener (unless tcp_syncookies = 2), the kernel's info line as Linux 6.18
// prints it (net_info_ratelimited("%s: Possible SYN flooding on port %pISpc. %s.\n", proto,
// &addr, msg) with proto the request socks' slab, "request_sock_TCP", under pr_fmt "TCP: ").
static bool tcp_syn_flood_action(tcp_sock* listener, TcpOps* ops) {
  const char* msg = "Dropping request";
  bool want_cookie = false;
  const uint8_t syncookies = listener->sysctl_tcp_syncookies;
  if (syncookies != 0) {
    msg = "Sending cookies";
    want_cookie = true;
    if (listener->net_mib != nullptr) ++listener->net_mib->TCPReqQFullDoCookies;
  } else if (listener->net_mib != nullptr) {
    ++listener->net_mib->TCPReqQFullDrop;
  }
  if (!listener->synflood_warned && syncookies != 2) {
    listener->synflood_warned = true;
    const auto* a = reinterpret_cast<const uint8_t*>(&listener->saddr);  // network order: a[0] first
    char line[128];
    snprintf(line, sizeof line, "TCP: request_sock_TCP: Possible SYN flooding on port %u.%u.%u.%u:%u. %s.", a[0],
             a[1], a[2], a[3], listener->sport, msg);
    ops->log_info(line);
  }
  return want_cookie;
}

// kernel: tcp_conn_request(), net/ipv4/tcp_input.c
static void tcp_conn_request(tcp_sock* listener, const sk_buff* skb, uint32_t dst_mtu, TcpXmitFn xmit, TcpOps* ops) {
  const tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  uint32_t isn = tcb->tcp_tw_isn;
  bool want_cookie = false;
  // "TW buckets are converted to open requests without limitations, they conserve resources and
  // peer is evidently real one."
  if ((listener->sysctl_tcp_syncookies == 2 || inet_csk_reqsk_queue_is_full(listener)) && isn == 0) {
    want_cookie = tcp_syn_flood_action(listener, ops);
    if (!want_cookie) {
      tcp_listendrop(listener);
      return;
    }
  }
  if (sk_acceptq_is_full(listener)) {
    if (listener->net_mib != nullptr) ++listener->net_mib->ListenOverflows;  // LINUX_MIB_LISTENOVERFLOWS
    tcp_listendrop(listener);
    return;
  }
  tcp_options_received tmp_opt;
  tmp_opt.mss_clamp = TCP_MSS_DEFAULT;  // af_ops->mss_clamp
  tmp_opt.user_mss = listener->rx_opt.user_mss;
  const uint32_t hdr_len = (skb->data[12] >> 4) * 4u;
  uint8_t sack_off = 0;
  tcp_parse_options(absl::MakeConstSpan(skb->data, hdr_len), false, &tmp_opt, &sack_off);
  // A cookie without timestamps has nowhere to keep window scale and SACK: none offered.
  if (want_cookie && !tmp_opt.saw_tstamp) {
    tmp_opt.tstamp_ok = tmp_opt.sack_ok = tmp_opt.wscale_ok = false;  // tcp_clear_options()
    tmp_opt.snd_wscale = 0;
  }
  tmp_opt.tstamp_ok = tmp_opt.saw_tstamp;
  tcp_request_sock req;
  req.syncookie = want_cookie;
  // tcp_openreq_init()
  req.rcv_isn = tcb->seq;
  req.mss = tmp_opt.mss_clamp;
  req.ts_recent = tmp_opt.saw_tstamp ? tmp_opt.rcv_tsval : 0;
  req.tstamp_ok = tmp_opt.tstamp_ok;
  req.sack_ok = tmp_opt.sack_ok;
  req.snd_wscale = tmp_opt.snd_wscale;
  req.wscale_ok = tmp_opt.wscale_ok;
  req.rmt_addr = tcb->saddr;
  req.loc_addr = tcb->daddr;
  req.rmt_port = load_be16(skb->data);
  req.loc_port = load_be16(skb->data + 2);
  req.snd_wnd = load_be16(skb->data + 14);
  if (req.tstamp_ok) req.ts_off = ops->secure_ts_off(req.loc_addr, req.rmt_addr, req.loc_port, req.rmt_port);  // init_ts_off()
  // "if (!want_cookie && !isn) ... isn = af_ops->init_seq(skb)"
  if (!want_cookie && isn == 0) isn = ops->secure_seq(req.loc_addr, req.rmt_addr, req.loc_port, req.rmt_port);
  if (want_cookie) {
    // cookie_init_sequence(): tcp_synq_overflow(), LINUX_MIB_SYNCOOKIESSENT, the cookie (req->mss
    // rounded down to what it encodes)
    tcp_synq_overflow(listener);
    if (listener->net_mib != nullptr) ++listener->net_mib->SyncookiesSent;
    isn = cookie_v4_init_sequence_core(listener->syncookie_secret, req.rmt_addr, req.loc_addr, req.rmt_port,
                                       req.loc_port, tcb->seq, &req.mss, listener->tcp_mstamp);
  }
  req.snt_isn = isn;
  // tcp_openreq_init_rwin(): "tcp_full_space because it is guaranteed to be the first packet"
  const uint32_t mss = tcp_route_advmss(listener, dst_mtu);
  req.rsk_window_clamp = listener->window_clamp;
  uint8_t rcv_wscale = 0;
  tcp_select_initial_window(listener->rcvbuf, mss - (req.tstamp_ok ? TCPOLEN_TSTAMP_ALIGNED : 0), &req.rsk_rcv_wnd,
                            &req.rsk_window_clamp, req.wscale_ok, &rcv_wscale, 0, listener->sysctl_rmem_max);
  req.rcv_wscale = rcv_wscale;
  req.dst_mtu = dst_mtu;
  if (want_cookie) {
    // TCP_SYNACK_COOKIE: the request is not kept ("reqsk_free(req)").
    tcp_send_synack(listener, &req, dst_mtu, xmit);
    return;
  }
  req.expires = listener->tcp_mstamp + reqsk_timeout(req);  // req->timeout = tcp_timeout_init()
  listener->reqsk_queue.push_back(req);
  tcp_send_synack(listener, &listener->reqsk_queue.back(), dst_mtu, xmit);
}

// kernel: tcp_in_window(), net/ipv4/tcp_minisocks.c
static bool tcp_in_window(uint32_t seq, uint32_t end_seq, uint32_t s_win, uint32_t e_win) {
  if (seq == s_win) return true;
  if (after(end_seq, s_win) && before(seq, e_win)) return true;
  return seq == e_win && seq == end_seq;
}

// kernel: tcp_v4_syn_recv_sock() + tcp_create_openreq_child()
tcp_sock* tcp_create_openreq_child(tcp_sock* listener, const tcp_request_sock& req, const sk_buff* skb,
                                   uint32_t dst_mtu, TcpOps* ops) {
  if (sk_acceptq_is_full(listener)) {  // exit_overflow
    if (listener->net_mib != nullptr) ++listener->net_mib->ListenOverflows;
    tcp_listendrop(listener);
    return nullptr;
  }
  tcp_sock* c = ops->clone(listener);
  if (c == nullptr) {  // exit_nonewsk
    tcp_listendrop(listener);
    return nullptr;
  }
  c->net_mib = listener->net_mib;
  // What sk_clone_lock() copies from the listener (its settings), then the request's values.
  c->skb_pool = listener->skb_pool;
  c->page_pool = listener->page_pool;
  c->rcvbuf = listener->rcvbuf;
  c->sndbuf = listener->sndbuf;
  c->rx_opt.user_mss = listener->rx_opt.user_mss;
  c->nonagle = listener->nonagle;
  c->linger = listener->linger;
  c->linger2 = listener->linger2;
  c->icsk_syn_retries = listener->icsk_syn_retries;
  c->icsk_user_timeout = listener->icsk_user_timeout;
  c->icsk_ca_ops = listener->icsk_ca_ops;  // TCP_CONGESTION set on the listener (icsk_ca_setsockopt)
  c->sock_keepopen = listener->sock_keepopen;
  c->keepalive_time = listener->keepalive_time;
  c->keepalive_intvl = listener->keepalive_intvl;
  c->keepalive_probes = listener->keepalive_probes;
  c->gso_max_size = listener->gso_max_size;
  c->sock_urginline = listener->sock_urginline;  // kernel: sk_clone_lock() copies sk_flags
  c->gso_max_segs = listener->gso_max_segs;
  c->hw_csum = listener->hw_csum;
  c->sg_user = listener->sg_user;
  c->sg_max_frags = listener->sg_max_frags;
  c->tcp_mstamp = listener->tcp_mstamp;
  c->saddr = req.loc_addr;
  c->daddr = req.rmt_addr;
  c->sport = req.loc_port;
  c->dport = req.rmt_port;
  tcp_set_state(c, TCP_SYN_RECV);  // inet_csk_clone_lock()
  c->rcv_wup = c->copied_seq = c->rcv_nxt = req.rcv_isn + 1;
  c->snd_sml = c->snd_una = c->snd_nxt = c->snd_up = req.snt_isn + 1;
  c->snd_wl1 = req.rcv_isn;  // tcp_init_wl()
  c->icsk_ack.lrcvtime = tcp_jiffies32(c);
  c->lsndtime = tcp_jiffies32(c);
  c->segs_in = 1;  // the SYN
  c->total_retrans = req.num_retrans;
  c->write_seq = c->pushed_seq = req.snt_isn + 1;
  c->rx_opt.tstamp_ok = req.tstamp_ok;
  c->rx_opt.sack_ok = req.sack_ok;
  c->window_clamp = req.rsk_window_clamp;
  c->rcv_wnd = req.rsk_rcv_wnd;
  c->rx_opt.wscale_ok = req.wscale_ok;
  if (req.wscale_ok) {
    c->rx_opt.snd_wscale = req.snd_wscale;
    c->rx_opt.rcv_wscale = req.rcv_wscale;
  } else {
    c->rx_opt.snd_wscale = c->rx_opt.rcv_wscale = 0;
    c->window_clamp = std::min<uint32_t>(c->window_clamp, 65535);
  }
  c->snd_wnd = uint32_t{load_be16(skb->data + 14)} << c->rx_opt.snd_wscale;
  c->max_window = c->snd_wnd;
  if (req.tstamp_ok) {
    c->rx_opt.ts_recent = req.ts_recent;
    c->ts_recent_stamp = static_cast<uint32_t>(c->tcp_mstamp / 1000000);
    c->tcp_header_len = 20 + TCPOLEN_TSTAMP_ALIGNED;
  } else {
    c->ts_recent_stamp = 0;
    c->tcp_header_len = 20;
  }
  if (req.num_timeout != 0) {
    c->total_rto = req.num_timeout;
    c->retrans_stamp = static_cast<uint32_t>(req.snt_synack / 1000);
    c->total_rto_recoveries = 1;
    c->total_rto_time = tcp_jiffies32(c) - c->retrans_stamp;
  }
  c->tsoffset = req.ts_off;
  c->rx_opt.mss_clamp = req.mss;
  c->icsk_rto = TCP_TIMEOUT_INIT_US;
  c->rcv_tstamp = tcp_jiffies32(c);
  if (c->sock_keepopen) sk_reset_timer(&c->sk_timer, c->tcp_mstamp + keepalive_time_when(c));
  // tcp_v4_syn_recv_sock(): the route's MSS
  tcp_sync_mss(c, dst_mtu);
  c->advmss = tcp_route_advmss(c, dst_mtu);
  tcp_initialize_rcv_mss(c);
  // tcp_synack_rtt_meas(): "if (req && !req->num_retrans && tcp_rsk(req)->snt_synack)"
  if (req.num_retrans == 0 && req.snt_synack != 0) {
    const long rtt_us = static_cast<long>(c->tcp_mstamp - req.snt_synack);
    tcp_ack_update_rtt(c, 0, rtt_us, -1, rtt_us);
  }
  return c;
}

// kernel: inet_csk_reqsk_queue_add() (with the child's hashing: inet_ehash_nolisten())
void inet_csk_reqsk_queue_add(tcp_sock* listener, tcp_sock* child, TcpOps* ops) {
  ops->hash(child);
  child->listener = listener;
  child->accept_next = nullptr;
  if (listener->accept_tail != nullptr) {
    listener->accept_tail->accept_next = child;
  } else {
    listener->accept_head = child;
  }
  listener->accept_tail = child;
  listener->sk_ack_backlog++;
}

// kernel: tcp_check_req(), net/ipv4/tcp_minisocks.c. `idx` is the request's place in the listener.
static void tcp_check_req(tcp_sock* listener, size_t idx, sk_buff* skb, uint32_t dst_mtu, TcpXmitFn xmit, TcpOps* ops) {
  tcp_request_sock* req = &listener->reqsk_queue[idx];
  const tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  uint8_t flg = tcb->tcp_flags & (TCPHDR_RST | TCPHDR_SYN | TCPHDR_ACK | TCPHDR_FIN | TCPHDR_PSH | TCPHDR_URG);
  tcp_options_received tmp_opt;
  bool paws_reject = false;
  const uint32_t hdr_len = (skb->data[12] >> 4) * 4u;
  if (hdr_len > 20) {
    uint8_t sack_off = 0;
    tcp_parse_options(absl::MakeConstSpan(skb->data, hdr_len), false, &tmp_opt, &sack_off);
    if (tmp_opt.saw_tstamp) {
      // tcp_paws_reject() against the request's ts_recent
      paws_reject = req->ts_recent != 0 && static_cast<int32_t>(req->ts_recent - tmp_opt.rcv_tsval) > 0 &&
                    !(flg & TCPHDR_RST);
    }
  }
  // "Check for pure retransmitted SYN."
  if (tcb->seq == req->rcv_isn && flg == TCPHDR_SYN && !paws_reject) {
    if (tcp_send_synack(listener, req, dst_mtu, xmit) == 0) {  // inet_rtx_syn_ack()
      req->num_retrans++;
      req->expires = listener->tcp_mstamp + reqsk_timeout(*req);
    }
    kfree_skb(skb);
    return;
  }
  // "Invalid ACK: reset will be sent by listening socket."
  if ((flg & TCPHDR_ACK) && tcb->ack_seq != req->snt_isn + 1) {
    tcp_v4_send_reset(skb, *tcb, listener->skb_pool, xmit);
    kfree_skb(skb);
    return;
  }
  // "RFC793: "first check sequence number"."
  if (paws_reject || !tcp_in_window(tcb->seq, tcb->end_seq, req->rcv_isn + 1, req->rcv_isn + 1 + req->rsk_rcv_wnd)) {
    // "Out of window: send ACK and drop."
    if (!(flg & TCPHDR_RST)) tcp_reqsk_send_ack(listener, *req, xmit);
    kfree_skb(skb);
    return;
  }
  // "In sequence, PAWS is OK."
  if (tmp_opt.saw_tstamp && !after(tcb->seq, req->rcv_isn + 1)) req->ts_recent = tmp_opt.rcv_tsval;
  // "Truncate SYN, it is out of window starting at tcp_rsk(req)->rcv_isn + 1."
  if (tcb->seq == req->rcv_isn) flg &= static_cast<uint8_t>(~TCPHDR_SYN);
  // "RFC793: "second check the RST bit" and "fourth, check the SYN bit""
  if (flg & (TCPHDR_RST | TCPHDR_SYN)) {
    if (!(flg & TCPHDR_RST)) tcp_v4_send_reset(skb, *tcb, listener->skb_pool, xmit);  // embryonic_reset
    listener->reqsk_queue.erase(listener->reqsk_queue.begin() + static_cast<std::ptrdiff_t>(idx));
    kfree_skb(skb);
    return;
  }
  if (!(flg & TCPHDR_ACK)) {
    kfree_skb(skb);
    return;
  }
  // "While TCP_DEFER_ACCEPT is active, drop bare ACK."
  if (req->num_timeout < listener->rskq_defer_accept && tcb->end_seq == req->rcv_isn + 1) {
    req->acked = true;
    if (listener->net_mib != nullptr) ++listener->net_mib->TCPDeferAcceptDrop;
    kfree_skb(skb);
    return;
  }
  // "OK, ACK is valid, create big socket and feed this segment to it."
  tcp_sock* child = tcp_create_openreq_child(listener, *req, skb, dst_mtu, ops);
  if (child == nullptr) {
    // listen_overflow (tcp_abort_on_overflow = 0): "inet_rsk(req)->acked = 1" — the request stays,
    // its SYN-ACK retransmissions bring the peer's ACK again.
    req->acked = true;
    kfree_skb(skb);
    return;
  }
  listener->reqsk_queue.erase(listener->reqsk_queue.begin() + static_cast<std::ptrdiff_t>(idx));
  // inet_csk_complete_hashdance() -> inet_csk_reqsk_queue_add()
  inet_csk_reqsk_queue_add(listener, child, ops);
  // tcp_child_process() -> tcp_rcv_state_process() in SYN_RECV
  tcp_v4_do_rcv(child, skb, dst_mtu, xmit, ops);
}

// kernel: tcp_v4_rcv()'s request lookup + tcp_rcv_state_process() for TCP_LISTEN
void tcp_v4_listen_rcv(tcp_sock* listener, sk_buff* skb, uint32_t dst_mtu, TcpXmitFn xmit, TcpOps* ops) {
  const tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  const uint16_t sport = load_be16(skb->data), dport = load_be16(skb->data + 2);
  for (size_t i = 0; i < listener->reqsk_queue.size(); ++i) {
    const tcp_request_sock& r = listener->reqsk_queue[i];
    if (r.rmt_addr == tcb->saddr && r.loc_addr == tcb->daddr && r.rmt_port == sport && r.loc_port == dport) {
      tcp_check_req(listener, i, skb, dst_mtu, xmit, ops);
      return;
    }
  }
  const uint8_t flags = tcb->tcp_flags;
  // tcp_v4_do_rcv() for a listener: tcp_v4_cookie_check() — "if (!th->syn) sk = cookie_v4_check(sk, skb)"
  if (!(flags & TCPHDR_SYN)) {
    tcp_sock* nsk = cookie_v4_check(listener, skb, dst_mtu, ops);
    if (nsk == nullptr) {  // a valid cookie, no room for the child: dropped
      kfree_skb(skb);
      return;
    }
    if (nsk != listener) {  // tcp_child_process()
      tcp_v4_do_rcv(nsk, skb, dst_mtu, xmit, ops);
      return;
    }
  }
  if (flags & TCPHDR_ACK) {
    tcp_v4_send_reset(skb, *tcb, listener->skb_pool, xmit);  // "if (th->ack) return 1;"
  } else if (!(flags & TCPHDR_RST) && (flags & TCPHDR_SYN) && !(flags & TCPHDR_FIN)) {
    tcp_conn_request(listener, skb, dst_mtu, xmit, ops);
  }
  kfree_skb(skb);
}

// kernel: syn_ack_recalc(), net/ipv4/inet_connection_sock.c — "Decide when to expire the request
// and when to resend SYN-ACK"
static void syn_ack_recalc(const tcp_request_sock& req, uint32_t max_syn_ack_retries, uint8_t rskq_defer_accept,
                           bool* expire, bool* resend) {
  if (rskq_defer_accept == 0) {
    *expire = req.num_timeout >= max_syn_ack_retries;
    *resend = true;
    return;
  }
  *expire = req.num_timeout >= max_syn_ack_retries && (!req.acked || req.num_timeout >= rskq_defer_accept);
  // "Do not resend while waiting for data after ACK, start to resend on end of deferring period to
  // give last chance for data or ACK to create established socket."
  *resend = !req.acked || req.num_timeout >= rskq_defer_accept - 1;
}

// kernel: reqsk_timer_handler(), net/ipv4/inet_connection_sock.c (no pruning of old requests when
// the queue is half full)
void tcp_reqsk_timers_run(tcp_sock* listener, TcpXmitFn xmit) {
  const uint32_t max_retries = listener->icsk_syn_retries != 0 ? listener->icsk_syn_retries : TCP_SYNACK_RETRIES;
  auto& q = listener->reqsk_queue;
  for (size_t i = 0; i < q.size();) {
    tcp_request_sock& req = q[i];
    if (req.expires > listener->tcp_mstamp) {
      ++i;
      continue;
    }
    bool expire, resend;
    syn_ack_recalc(req, max_retries, listener->rskq_defer_accept, &expire, &resend);
    // "if (!expire && (!resend || !inet_rtx_syn_ack(sk_listener, req) || inet_rsk(req)->acked))"
    // the request lives on; else inet_csk_reqsk_queue_drop_and_put().
    bool keep = !expire && !resend;
    if (!expire && resend) {
      if (tcp_send_synack(listener, &req, req.dst_mtu, xmit) == 0) {  // inet_rtx_syn_ack()
        req.num_retrans++;
        keep = true;
      } else {
        keep = req.acked;
      }
    }
    if (!keep) {
      q.erase(q.begin() + static_cast<std::ptrdiff_t>(i));
      continue;
    }
    req.num_timeout++;
    req.expires = listener->tcp_mstamp + reqsk_timeout(req);
    ++i;
  }
}

uint64_t tcp_reqsk_next_timer(const tcp_sock* listener) {
  uint64_t next = UINT64_MAX;
  for (const tcp_request_sock& r : listener->reqsk_queue) next = std::min(next, r.expires);
  return next;
}

}  // namespace xmit
