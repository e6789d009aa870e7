// stack/tcp/tcp_conn.cc — the user's side of the state machine: tcp_set_state(), tcp_done(),
// listen/accept, tcp_poll(), sock_error(), close, shutdown, TIME_WAIT entry. Kernel counterparts in
// tcp_conn.h.
#include "stack/tcp/tcp_conn.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>

#include "stack/tcp/tcp_conn_int.h"
#include "stack/tcp/tcp_input.h"
#include "stack/tcp/tcp_output_ack.h"
#include "stack/tcp/tcp_sendmsg.h"
#include "stack/tcp/tcp_urg.h"
#include "stack/tcp/tcp_user_frags.h"
#include "stack/wire/tcp.h"

namespace xmit {

// kernel: tcp_set_state(), net/ipv4/tcp.c
void tcp_set_state(tcp_sock* tp, uint8_t state) { tp->sk_state = state; }

// kernel: tcp_done(), net/ipv4/tcp.c
void tcp_done(tcp_sock* tp, TcpOps* ops) {
  tcp_set_state(tp, TCP_CLOSE);
  // kernel: tcp_clear_xmit_timers()
  sk_stop_timer(&tp->icsk_retransmit_timer);
  tp->icsk_pending = 0;
  sk_stop_timer(&tp->icsk_delack_timer);
  tp->icsk_ack.pending = 0;
  sk_stop_timer(&tp->sk_timer);
  sk_stop_timer(&tp->tw_timer);
  tp->sk_shutdown = SHUTDOWN_MASK;
  if (ops != nullptr) ops->done(tp);
}

// kernel: inet_listen() + inet_csk_listen_start(), net/ipv4/af_inet.c, inet_connection_sock.c
int inet_csk_listen_start(tcp_sock* tp, int backlog) {
  if (tp->sk_state != TCP_CLOSE && tp->sk_state != TCP_LISTEN) return -EINVAL;
  // kernel: __sys_listen() caps the backlog at somaxconn; a negative one counts as somaxconn too.
  if (backlog < 0 || backlog > SOMAXCONN_DEFAULT) backlog = SOMAXCONN_DEFAULT;
  tp->sk_max_ack_backlog = backlog;
  if (tp->sk_state == TCP_LISTEN) return 0;
  tp->sk_ack_backlog = 0;
  tp->reqsk_queue.clear();
  tp->accept_head = tp->accept_tail = nullptr;
  tcp_set_state(tp, TCP_LISTEN);
  return 0;
}

// The accept queue's head, off the queue. kernel: reqsk_queue_remove()
static tcp_sock* inet_csk_accept_core(tcp_sock* listener) {
  tcp_sock* child = listener->accept_head;
  if (child == nullptr) return nullptr;
  listener->accept_head = child->accept_next;
  if (listener->accept_head == nullptr) listener->accept_tail = nullptr;
  child->accept_next = nullptr;
  child->listener = nullptr;
  listener->sk_ack_backlog--;
  return child;
}

// kernel: inet_csk_accept() (the non-blocking part: -EAGAIN is the caller's when this is null)
tcp_sock* inet_csk_accept(tcp_sock* listener) {
  if (listener->sk_state != TCP_LISTEN) return nullptr;
  return inet_csk_accept_core(listener);
}

// kernel: tcp_poll(), net/ipv4/tcp.c (target = 1: no SO_RCVLOWAT; +1 before an urgent byte)
int tcp_poll(const tcp_sock* tp) {
  const uint8_t state = tp->sk_state;
  if (state == TCP_LISTEN) return tp->accept_head != nullptr ? POLLIN | POLLRDNORM : 0;  // inet_csk_listen_poll()
  int mask = 0;
  if (tp->sk_shutdown == SHUTDOWN_MASK || state == TCP_CLOSE) mask |= POLLHUP;
  if (tp->sk_shutdown & RCV_SHUTDOWN) mask |= POLLIN | POLLRDNORM | POLLRDHUP;
  // "Connected or passive Fast Open socket?"
  if (state != TCP_SYN_SENT && state != TCP_SYN_RECV) {
    // tcp_stream_is_readable(): data past copied_seq — past the urgent byte when it is next and
    // not inline (target + 1)
    uint32_t target = 1;
    if (tp->urg_data != 0 && tp->urg_seq == tp->copied_seq && !tp->sock_urginline) target++;
    const int32_t avail = static_cast<int32_t>(tp->rcv_nxt - tp->copied_seq);
    if (avail > 0 && static_cast<uint32_t>(avail) >= target) mask |= POLLIN | POLLRDNORM;
    if (!(tp->sk_shutdown & SEND_SHUTDOWN)) {
      const uint32_t queued = tp->write_seq - tp->snd_una;
      // __sk_stream_is_writeable(sk, 1): a third of the buffer free, and TCP_NOTSENT_LOWAT's test
      if ((tp->sndbuf == 0 || (tp->sndbuf > queued && tp->sndbuf - queued >= queued / 2)) &&
          tcp_stream_memory_free(tp, 1)) {
        mask |= POLLOUT | POLLWRNORM;
      }
    } else {
      mask |= POLLOUT | POLLWRNORM;
    }
    if (tp->urg_data & TCP_URG_VALID) mask |= POLLPRI;  // kernel: "if (urg_data & TCP_URG_VALID)"
  }
  if (tp->sk_err != 0) mask |= POLLERR;
  return mask;
}

// kernel: tcp_set_keepalive(), net/ipv4/tcp_timer.c
void tcp_set_keepalive(tcp_sock* tp, bool on) {
  tp->sock_keepopen = on;
  if (TCPF(tp->sk_state) & (TCPF(TCP_CLOSE) | TCPF(TCP_LISTEN))) return;
  if (on && !tp->sk_timer.pending) {
    sk_reset_timer(&tp->sk_timer, tp->tcp_mstamp + keepalive_time_when(tp));
  } else if (!on && !(tp->sk_state == TCP_FIN_WAIT2 && tp->sock_dead)) {
    sk_stop_timer(&tp->sk_timer);
  }
}

// kernel: sock_error(), include/net/sock.h
int tcp_sock_error(tcp_sock* tp) {
  int err = tp->sk_err;
  tp->sk_err = 0;
  return err;
}

// kernel: tcp_fin_time(), include/net/tcp.h — linger2 (or tcp_fin_timeout), at least 3.5 RTO.
uint64_t tcp_fin_time(const tcp_sock* tp) {
  uint64_t fin_timeout = uint64_t{tp->linger2 != 0 ? static_cast<uint32_t>(tp->linger2) : tp->sysctl_tcp_fin_timeout} * 1000000;
  const uint64_t rto = tp->icsk_rto;
  if (fin_timeout < (rto << 2) - (rto >> 1)) fin_timeout = (rto << 2) - (rto >> 1);
  return fin_timeout;
}

// kernel: tcp_time_wait(sk, TCP_TIME_WAIT, 0), net/ipv4/tcp_minisocks.c — here the socket enters
// TIME_WAIT; its owner then makes the tcp_timewait_sock and calls tcp_done() (TcpStack: the
// kernel's inet_twsk_hashdance()), or keeps the socket itself hashed until done(). A pending ACK survives
// (tcp_fin() asked for one). What the kernel frees with the full socket (tcp_done() of it) goes
// now: the send queues (empty: our FIN is acknowledged) and the payload page the socket was
// filling — 60 s of a churning server's TIME_WAITs held one page each and ran the pool dry.
// An orphan's receive queues go too (inet_csk_destroy_sock(): sk_stream_kill_queues(), the
// out-of-order rbtree in tcp_v4_destroy_sock()): the peer's FIN that ended FIN_WAIT2 is queued
// there, and a churning server's TIME_WAITs held one received segment each until the receive pool
// ran dry and the stack dropped every segment. A socket an fd still names keeps them for its
// reader, as the kernel's full socket does (in CLOSE) until close().
static void tcp_time_wait_core(tcp_sock* tp, uint64_t timeo_us) {
  tcp_write_queue_purge(tp);
  if (tp->sock_dead) tcp_rcv_queues_purge(tp);
  sk_stop_timer(&tp->icsk_retransmit_timer);
  tp->icsk_pending = 0;
  sk_stop_timer(&tp->sk_timer);
  sk_reset_timer(&tp->tw_timer, tp->tcp_mstamp + timeo_us);
}

void tcp_time_wait(tcp_sock* tp) {
  tcp_set_state(tp, TCP_TIME_WAIT);
  tcp_time_wait_core(tp, TCP_TIMEWAIT_LEN_US);
}

// kernel: tcp_time_wait(sk, TCP_FIN_WAIT2, timeo): "Get the TIME_WAIT timeout firing." — at least
// (icsk_rto << 2) - (icsk_rto >> 1); the timewait sock keeps substate FIN_WAIT2.
void tcp_time_wait_fin_wait2(tcp_sock* tp, uint64_t timeo_us, TcpOps* ops) {
  const uint64_t rto = (uint64_t{tp->icsk_rto} << 2) - (tp->icsk_rto >> 1);
  tcp_time_wait_core(tp, std::max(timeo_us, rto));
  if (ops != nullptr) ops->time_wait(tp);
}

// kernel: tcp_write_err(), net/ipv4/tcp_timer.c
void tcp_write_err(tcp_sock* tp, TcpOps* ops) {
  tp->sk_err = tp->sk_err_soft != 0 ? tp->sk_err_soft : ETIMEDOUT;
  tcp_write_queue_purge(tp);
  tp->packets_out = tp->lost_out = tp->retrans_out = tp->sacked_out = 0;
  tcp_done(tp, ops);
}

// kernel: tcp_close_state(), net/ipv4/tcp.c — the state close()/shutdown(SHUT_WR) moves to; true
// when a FIN must go (TCP_ACTION_FIN).
static bool tcp_close_state(tcp_sock* tp) {
  uint8_t next = TCP_CLOSE;
  bool fin = false;
  switch (tp->sk_state) {
    case TCP_ESTABLISHED:
    case TCP_SYN_RECV: next = TCP_FIN_WAIT1; fin = true; break;
    case TCP_CLOSE_WAIT: next = TCP_LAST_ACK; fin = true; break;
    case TCP_FIN_WAIT1:
    case TCP_FIN_WAIT2:
    case TCP_LAST_ACK:
    case TCP_CLOSING: next = tp->sk_state; break;
    default: next = TCP_CLOSE; break;  // SYN_SENT, TIME_WAIT, CLOSE, LISTEN
  }
  tcp_set_state(tp, next);
  return fin;
}

// kernel: tcp_need_reset(), net/ipv4/tcp.c
static bool tcp_need_reset(uint8_t state) {
  return TCPF(state) & (TCPF(TCP_ESTABLISHED) | TCPF(TCP_CLOSE_WAIT) | TCPF(TCP_FIN_WAIT1) | TCPF(TCP_FIN_WAIT2) |
                        TCPF(TCP_SYN_RECV));
}

// kernel: tcp_disconnect(), net/ipv4/tcp.c (the ABORT of RFC 793; the socket is not reinitialised
// for reuse: the owner frees it after done()).
static void tcp_disconnect(tcp_sock* tp, uint32_t dst_mtu, TcpXmitFn xmit, TcpOps* ops) {
  const uint8_t old_state = tp->sk_state;
  if (old_state == TCP_LISTEN) {
    inet_csk_listen_stop(tp, dst_mtu, xmit, ops);
  } else if (tcp_need_reset(old_state) ||
             (tp->snd_nxt != tp->write_seq && (TCPF(old_state) & (TCPF(TCP_CLOSING) | TCPF(TCP_LAST_ACK))))) {
    // "The last check adjusts for discrepancy of Linux wrt. RFC states"
    tcp_send_active_reset(tp, xmit);
    tp->sk_err = ECONNRESET;
  } else if (old_state == TCP_SYN_SENT) {
    tp->sk_err = ECONNRESET;
  }
  tcp_set_state(tp, TCP_CLOSE);
  tcp_write_queue_purge(tp);
  tcp_rcv_queues_purge(tp);
  tp->packets_out = tp->lost_out = tp->retrans_out = tp->sacked_out = 0;
}

// A socket no one will close again, aborted: disconnected (RST where due, queues purged), orphaned
// and handed to done(), which frees it. kernel: inet_child_forget() (disconnect, sock_orphan(),
// inet_csk_destroy_sock()); tcp_abort() of an orphan.
static void tcp_abort_orphan(tcp_sock* tp, uint32_t dst_mtu, TcpXmitFn xmit, TcpOps* ops) {
  tcp_disconnect(tp, dst_mtu, xmit, ops);
  tp->sock_dead = true;
  tcp_done(tp, ops);
}

// kernel: inet_csk_listen_stop(), net/ipv4/inet_connection_sock.c — requests dropped, each queued
// child disconnected (RST), orphaned and handed to done() (inet_child_forget()).
void inet_csk_listen_stop(tcp_sock* listener, uint32_t dst_mtu, TcpXmitFn xmit, TcpOps* ops) {
  listener->reqsk_queue.clear();
  while (tcp_sock* child = inet_csk_accept_core(listener)) tcp_abort_orphan(child, dst_mtu, xmit, ops);
}

// kernel: tcp_close() / __tcp_close(), net/ipv4/tcp.c (non-blocking: no lingering wait in
// sk_stream_wait_close(); SO_LINGER with a timeout behaves as without it)
void tcp_close(tcp_sock* tp, uint32_t dst_mtu, TcpXmitFn xmit, TcpOps* ops) {
  tp->sk_shutdown = SHUTDOWN_MASK;
  const uint8_t entry_state = tp->sk_state;
  tp->sock_dead = true;  // sock_orphan() (done before the work here: done() may free an orphan)
  if (entry_state == TCP_LISTEN) {
    tcp_set_state(tp, TCP_CLOSE);
    inet_csk_listen_stop(tp, dst_mtu, xmit, ops);
    tcp_done(tp, ops);
    return;
  }
  if (entry_state == TCP_TIME_WAIT) {
    // The kernel's socket is already CLOSE here and the timewait sock lives on; a socket its owner
    // keeps in TIME_WAIT (the tests' harness; TcpStack's are CLOSE) stays until tw_timer.
    tcp_rcv_queues_purge(tp);
    return;
  }
  // "We need to flush the recv. buffs."
  uint32_t data_was_unread = 0;
  while (sk_buff* skb = skb_dequeue(&tp->receive_queue)) {
    const tcp_skb_cb* tcb = TCP_SKB_CB(skb);
    uint32_t len = tcb->end_seq - tcb->seq;
    if (tcb->tcp_flags & TCPHDR_FIN) len--;
    // Bytes already read from a partly read skb do not count (the kernel's receive queue holds
    // only unread skbs after tcp_eat_recv_skb(); ours keeps a partly read head).
    if (before(tcb->seq, tp->copied_seq)) len -= std::min(len, tp->copied_seq - tcb->seq);
    data_was_unread += len;
    kfree_skb(skb);
  }
  tcp_rcv_queues_purge(tp);
  // "If socket has been already reset (e.g. in tcp_reset()) - kill it."
  if (tp->sk_state == TCP_CLOSE) {
    // Never opened, or reset/timed out before (done() ran then, with sock_dead still false):
    // done() again, now for an orphan the owner frees.
    if (ops != nullptr) ops->done(tp);
    return;
  }
  if (data_was_unread != 0) {
    // "Unread data was tossed, zap the connection." (RFC 2525 §2.17)
    tcp_set_state(tp, TCP_CLOSE);
    tcp_send_active_reset(tp, xmit);
  } else if (tp->linger == 0) {
    // "Check zero linger _after_ checking for unread data."
    tcp_disconnect(tp, dst_mtu, xmit, ops);
  } else if (tcp_close_state(tp)) {
    tcp_send_fin(tp, dst_mtu, xmit);
  }
  // adjudge_to_death: "This is a (useful) BSD violating of the RFC." — an orphan in FIN_WAIT2
  // waits tcp_fin_time() (up to TCP_TIMEWAIT_LEN as a timewait sock in substate FIN_WAIT2, the
  // rest first in the keepalive timer), or is reset at once with TCP_LINGER2 < 0.
  if (tp->sk_state == TCP_FIN_WAIT2) {
    if (tp->linger2 < 0) {
      tcp_set_state(tp, TCP_CLOSE);
      tcp_send_active_reset(tp, xmit);
    } else {
      const uint64_t tmo = tcp_fin_time(tp);
      if (tmo > TCP_TIMEWAIT_LEN_US) {
        sk_reset_timer(&tp->sk_timer, tp->tcp_mstamp + tmo - TCP_TIMEWAIT_LEN_US);
      } else {
        tcp_time_wait_fin_wait2(tp, tmo, ops);  // tp may be gone
        return;
      }
    }
  }
  if (tp->sk_state == TCP_CLOSE) tcp_done(tp, ops);  // inet_csk_destroy_sock()
}

// tcp_close() after tcp_copy_user_frags(); when the copy failed, the abort tcp_abort()
// (net/ipv4/tcp.c) makes of an orphan instead: see tcp_user_frags.h.
bool tcp_close_user_frags(tcp_sock* tp, uint32_t dst_mtu, TcpXmitFn xmit, TcpOps* ops) {
  if (tcp_copy_user_frags(tp) == 0) {
    tcp_close(tp, dst_mtu, xmit, ops);
    return false;
  }
  if (tp->net_mib != nullptr) ++tp->net_mib->TCPAbortOnMemory;
  tp->sk_shutdown = SHUTDOWN_MASK;
  // tcp_abort(): "if (tcp_need_reset(sk->sk_state)) tcp_send_active_reset(...); tcp_done_with_error();
  // ... tcp_write_queue_purge(sk);" — tcp_disconnect() sends that RST and purges; the queues go
  // before done(), which frees the orphan here.
  tcp_abort_orphan(tp, dst_mtu, xmit, ops);
  return true;
}

// kernel: inet_shutdown() (net/ipv4/af_inet.c) + tcp_shutdown() (net/ipv4/tcp.c)
int tcp_shutdown(tcp_sock* tp, int how, uint32_t dst_mtu, TcpXmitFn xmit, TcpOps* ops) {
  // "maps 0->1 has the advantage of making bit 1 rcvs and 1->2 bit 2 snds. 2->3"
  how++;
  if ((how & ~SHUTDOWN_MASK) || how == 0) return -EINVAL;
  int err = 0;
  switch (tp->sk_state) {
    case TCP_CLOSE:
    // The kernel's socket is TCP_CLOSE once tcp_time_wait() has handed the connection to a
    // timewait sock (tcp_done()), as TcpStack's is; one its owner keeps in TIME_WAIT answers alike.
    case TCP_TIME_WAIT:
      err = -ENOTCONN;
      [[fallthrough]];
    default:
      tp->sk_shutdown |= static_cast<uint8_t>(how);
      // tcp_shutdown(): "If we've already sent a FIN, or it's a closed state, skip this."
      if ((how & SEND_SHUTDOWN) && (TCPF(tp->sk_state) & (TCPF(TCP_ESTABLISHED) | TCPF(TCP_SYN_SENT) |
                                                          TCPF(TCP_SYN_RECV) | TCPF(TCP_CLOSE_WAIT)))) {
        // "Clear out any half completed packets.  FIN if needed."
        if (tcp_close_state(tp)) tcp_send_fin(tp, dst_mtu, xmit);
        if (tp->sk_state == TCP_CLOSE) tcp_done(tp, ops);  // SYN_SENT's tcp_close_state()
      }
      break;
    case TCP_LISTEN:
      if (!(how & RCV_SHUTDOWN)) break;
      [[fallthrough]];
    case TCP_SYN_SENT:
      tcp_disconnect(tp, dst_mtu, xmit, ops);
      tcp_done(tp, ops);
      break;
  }
  return err;
}

}  // namespace xmit
