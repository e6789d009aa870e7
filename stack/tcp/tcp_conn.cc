// stack/tcp/tcp_conn.cc — socket-state helpers of the state machine: tcp_set_state(), tcp_done(),
// listen/accept, tcp_poll(), sock_error(). Kernel counterparts in tcp_conn.h.
#include "stack/tcp/tcp_conn.h"

#include <poll.h>

#include <cerrno>

#include "stack/tcp/tcp_input.h"

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

// kernel: inet_csk_accept() (the non-blocking part: -EAGAIN is the caller's when this is null)
tcp_sock* inet_csk_accept(tcp_sock* listener) {
  if (listener->sk_state != TCP_LISTEN) return nullptr;
  tcp_sock* child = listener->accept_head;
  if (child == nullptr) return nullptr;
  listener->accept_head = child->accept_next;
  if (listener->accept_head == nullptr) listener->accept_tail = nullptr;
  child->accept_next = nullptr;
  child->listener = nullptr;
  listener->sk_ack_backlog--;
  return child;
}

// kernel: tcp_poll(), net/ipv4/tcp.c (target = 1: no SO_RCVLOWAT)
int tcp_poll(const tcp_sock* tp) {
  const uint8_t state = tp->sk_state;
  if (state == TCP_LISTEN) return tp->accept_head != nullptr ? POLLIN | POLLRDNORM : 0;  // inet_csk_listen_poll()
  int mask = 0;
  if (tp->sk_shutdown == SHUTDOWN_MASK || state == TCP_CLOSE) mask |= POLLHUP;
  if (tp->sk_shutdown & RCV_SHUTDOWN) mask |= POLLIN | POLLRDNORM | POLLRDHUP;
  // "Connected or passive Fast Open socket?"
  if (state != TCP_SYN_SENT && state != TCP_SYN_RECV) {
    // tcp_stream_is_readable(): data past copied_seq
    if (tp->rcv_nxt != tp->copied_seq) mask |= POLLIN | POLLRDNORM;
    if (!(tp->sk_shutdown & SEND_SHUTDOWN)) {
      const uint32_t queued = tp->write_seq - tp->snd_una;
      if (tp->sndbuf == 0 || (tp->sndbuf > queued && tp->sndbuf - queued >= queued / 2)) mask |= POLLOUT | POLLWRNORM;
    } else {
      mask |= POLLOUT | POLLWRNORM;
    }
  }
  if (tp->sk_err != 0) mask |= POLLERR;
  return mask;
}

// kernel: sock_error(), include/net/sock.h
int tcp_sock_error(tcp_sock* tp) {
  int err = tp->sk_err;
  tp->sk_err = 0;
  return err;
}

// STEP 0 STUBS (replaced by the following commits): connect, close, shutdown, reset.
int tcp_connect(tcp_sock*, uint32_t, TcpXmitFn, TcpOps*) { return -EOPNOTSUPP; }
void tcp_close(tcp_sock* tp, uint32_t, TcpXmitFn, TcpOps* ops) {
  tp->sock_dead = true;
  tcp_done(tp, ops);
}
int tcp_shutdown(tcp_sock*, int, uint32_t, TcpXmitFn, TcpOps*) { return -EOPNOTSUPP; }
void tcp_v4_send_reset(const sk_buff*, const tcp_skb_cb&, SkbPool*, TcpXmitFn) {}
void tcp_v4_do_rcv(tcp_sock* tp, sk_buff* skb, uint32_t dst_mtu, TcpXmitFn xmit, TcpOps*) {
  if (tp->sk_state == TCP_ESTABLISHED) {
    tcp_rcv_established(tp, skb, dst_mtu, xmit);
    return;
  }
  kfree_skb(skb);
}

}  // namespace xmit
