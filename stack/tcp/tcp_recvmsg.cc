// stack/tcp/tcp_recvmsg.cc — the receive queue's copy-out. Kernel counterparts in tcp_recvmsg.h.
#include "stack/tcp/tcp_recvmsg.h"

#include <sys/socket.h>  // MSG_PEEK

#include <algorithm>
#include <cerrno>

#include "stack/tcp/tcp_input.h"
#include "stack/tcp/tcp_output_ack.h"
#include "stack/wire/tcp.h"

namespace xmit {

// kernel: tcp_eat_recv_skb()
static void tcp_eat_recv_skb(tcp_sock* tp, sk_buff* skb) {
  skb_unlink(skb, &tp->receive_queue);
  tp->rmem_alloc -= skb->len;
  kfree_skb(skb);
}

// kernel: tcp_cleanup_rbuf(), net/ipv4/tcp.c
void tcp_cleanup_rbuf(tcp_sock* tp, int copied, TcpXmitFn xmit) {
  bool time_to_ack = false;
  if (inet_csk_ack_scheduled(tp)) {
    // "Once-per-two-segments ACK was not sent by tcp_input.c"
    if (tp->rcv_nxt - tp->rcv_wup > tp->icsk_ack.rcv_mss ||
        // "If this read emptied read buffer, we send ACK, if connection is not bidirectional,
        // user drained receive buffer and there was a small segment in queue."
        (copied > 0 &&
         ((tp->icsk_ack.pending & ICSK_ACK_PUSHED2) || ((tp->icsk_ack.pending & ICSK_ACK_PUSHED) && !inet_csk_in_pingpong_mode(tp))) &&
         tp->rmem_alloc == 0)) {
      time_to_ack = true;
    }
  }
  // "We send an ACK if we can now advertise a non-zero window which has been raised
  // "significantly". Even if window raised up to infinity, do not send window open ACK in
  // states, where we will not receive more."
  if (copied > 0 && !time_to_ack && !(tp->sk_shutdown & RCV_SHUTDOWN) && tp->rcvbuf != 0) {
    uint32_t rcv_window_now = tcp_receive_window(tp);
    if (2 * rcv_window_now <= tp->window_clamp) {
      uint32_t new_window = tcp_select_window_core(tp);
      // ""Lots" means "at least twice" here."
      if (new_window != 0 && new_window >= 2 * rcv_window_now) time_to_ack = true;
    }
  }
  if (time_to_ack) tcp_send_ack(tp, xmit);
}

// kernel: tcp_recvmsg_locked(), net/ipv4/tcp.c
int tcp_recvmsg(tcp_sock* tp, void* buf, size_t len, int flags, TcpXmitFn xmit) {
  const bool peek = flags & MSG_PEEK;
  uint32_t peek_seq = tp->copied_seq;
  uint32_t* seq = peek ? &peek_seq : &tp->copied_seq;
  uint8_t* to = static_cast<uint8_t*>(buf);
  size_t copied = 0;
  sk_buff* skb = tp->receive_queue.head;
  while (copied < len && skb != nullptr) {
    // "Are we at urgent data? Stop if we have read anything or have SIGURG pending."
    if (tp->urg_data != 0 && tp->urg_seq == *seq && copied > 0) break;
    sk_buff* next = skb->next;
    const tcp_skb_cb* tcb = TCP_SKB_CB(skb);
    uint32_t offset = *seq - tcb->seq;
    if (offset < skb->len) {
      // found_ok_skb: "Ok so how much can we use?"
      uint32_t used = static_cast<uint32_t>(std::min<size_t>(skb->len - offset, len - copied));
      // "Do we have urgent data here?" The urgent byte is stepped over unless SO_OOBINLINE; a read
      // reaching it from before ends just before it.
      if (tp->urg_data != 0) {
        const uint32_t urg_offset = tp->urg_seq - *seq;
        if (urg_offset < used) {
          if (urg_offset == 0) {
            if (!tp->sock_urginline) {
              ++*seq;
              ++offset;
              --used;
            }
          } else {
            used = urg_offset;
          }
        }
      }
      if (used > 0) {
        skb_copy_bits(skb, offset, to + copied, used);
        *seq += used;
        copied += used;
      }
      // skip_copy: the mark read past, urgent data is over.
      if (tp->urg_data != 0 && after(tp->copied_seq, tp->urg_seq)) tp->urg_data = 0;
      if (used + offset < skb->len) continue;  // the reader's buffer is full, or the mark is next
    }
    if (tcb->tcp_flags & TCPHDR_FIN) {
      // found_fin_ok: "Process the FIN."
      ++*seq;
      if (!peek) tcp_eat_recv_skb(tp, skb);
      break;
    }
    if (!peek) tcp_eat_recv_skb(tp, skb);
    skb = next;
  }
  if (copied == 0) {
    // tcp_recvmsg_locked() with nothing copied, non-blocking: end of stream after a FIN
    // (SOCK_DONE), else the pending error (cleared), else end of stream after shutdown, else
    // ENOTCONN on a closed socket, else EAGAIN.
    if (tp->sock_done) return 0;
    if (tp->sk_err != 0) {
      int err = tp->sk_err;
      tp->sk_err = 0;
      return -err;
    }
    if (tp->sk_shutdown & RCV_SHUTDOWN) return 0;
    if (tp->sk_state == TCP_CLOSE || tp->sk_state == TCP_LISTEN) return -ENOTCONN;
    return -EAGAIN;
  }
  tcp_cleanup_rbuf(tp, static_cast<int>(copied), xmit);
  return static_cast<int>(copied);
}

// kernel: __tcp_sock_set_quickack(), net/ipv4/tcp.c
void tcp_sock_set_quickack(tcp_sock* tp, int val, TcpXmitFn xmit) {
  if (val == 0) {
    inet_csk_enter_pingpong_mode(tp);
    return;
  }
  inet_csk_exit_pingpong_mode(tp);
  if ((TCPF(tp->sk_state) & (TCPF(TCP_ESTABLISHED) | TCPF(TCP_CLOSE_WAIT))) && inet_csk_ack_scheduled(tp)) {
    tp->icsk_ack.pending |= ICSK_ACK_PUSHED;
    tcp_cleanup_rbuf(tp, 1, xmit);
    if (!(val & 1)) inet_csk_enter_pingpong_mode(tp);
  }
}

}  // namespace xmit
