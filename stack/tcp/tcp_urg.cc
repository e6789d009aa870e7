// stack/tcp/tcp_urg.cc — urgent data on receive. Kernel counterparts in tcp_urg.h.
#include "stack/tcp/tcp_urg.h"

#include <sys/socket.h>  // MSG_*

#include <cerrno>
#include <cstring>

#include "stack/wire/tcp.h"

namespace xmit {

// net.ipv4.tcp_stdurg (default 0): the urgent pointer points one byte past the urgent data (BSD),
// not at it (RFC 1122 §4.2.2.4).
inline constexpr bool kSysctlTcpStdurg = false;

// kernel: tcp_check_urg(), net/ipv4/tcp_input.c
static void tcp_check_urg(tcp_sock* tp, uint32_t seq, uint16_t urg_ptr) {
  uint32_t ptr = urg_ptr;
  if (ptr != 0 && !kSysctlTcpStdurg) ptr--;
  ptr += seq;
  // "Ignore urgent data that we've already seen and read."
  if (after(tp->copied_seq, ptr)) return;
  // "Do not replay urg ptr." (a pointer into data already received, in order or not, stays unseen)
  if (before(ptr, tp->rcv_nxt)) return;
  // "Do we already have a newer (or duplicate) urgent pointer?"
  if (tp->urg_data != 0 && !after(ptr, tp->urg_seq)) return;
  // "Tell the world about our new urgent pointer." — sk_send_sigurg(), by the owner of the socket
  // (SIGURG to the F_SETOWN owner: TcpStack, after this segment).
  tp->sigurg_pending = true;
  // A previous urgent byte that is the next to read, not inline and not the last received, is
  // skipped now: the reader would otherwise get it as data ("Double Dutch" in the kernel).
  if (tp->urg_seq == tp->copied_seq && tp->urg_data != 0 && !tp->sock_urginline && tp->copied_seq != tp->rcv_nxt) {
    sk_buff* skb = tp->receive_queue.head;
    tp->copied_seq++;
    if (skb != nullptr && !before(tp->copied_seq, TCP_SKB_CB(skb)->end_seq)) {
      skb_unlink(skb, &tp->receive_queue);
      tp->rmem_alloc -= skb->len;
      kfree_skb(skb);
    }
  }
  tp->urg_data = TCP_URG_NOTYET;
  tp->urg_seq = ptr;
}

// kernel: tcp_urg(), net/ipv4/tcp_input.c — "This is the 'fast' part of urgent handling."
void tcp_urg(tcp_sock* tp, const sk_buff* skb) {
  const tcp_skb_cb* tcb = TCP_SKB_CB(skb);
  // "Check if we get a new urgent pointer - normally not."
  if (tcb->tcp_flags & TCPHDR_URG) tcp_check_urg(tp, tcb->seq, load_be16(skb->data + 18));
  // "Do we wait for any urgent data? - normally not..."
  if (tp->urg_data == TCP_URG_NOTYET) {
    const uint32_t doff = (skb->data[12] >> 4) * 4u;
    const uint32_t ptr = tp->urg_seq - tcb->seq + doff - ((tcb->tcp_flags & TCPHDR_SYN) ? 1 : 0);
    // "Is the urgent pointer pointing into this packet?"
    if (ptr < skb->len) tp->urg_data = TCP_URG_VALID | skb->data[ptr];
  }
}

// kernel: tcp_recv_urg(), net/ipv4/tcp.c
int tcp_recv_urg(tcp_sock* tp, void* buf, size_t len, int flags, int* msg_flags) {
  // "No URG data to read."
  if (tp->sock_urginline || tp->urg_data == 0 || tp->urg_data == TCP_URG_READ) return -EINVAL;  // "Yes this is right !"
  if (tp->sk_state == TCP_CLOSE && !tp->sock_done) return -ENOTCONN;
  if (tp->urg_data & TCP_URG_VALID) {
    const uint8_t c = static_cast<uint8_t>(tp->urg_data);
    if (!(flags & MSG_PEEK)) tp->urg_data = TCP_URG_READ;
    *msg_flags |= MSG_OOB;  // "Read urgent data."
    if (len > 0) {
      if (!(flags & MSG_TRUNC)) std::memcpy(buf, &c, 1);
      return 1;
    }
    *msg_flags |= MSG_TRUNC;
    return 0;
  }
  if (tp->sk_state == TCP_CLOSE || (tp->sk_shutdown & RCV_SHUTDOWN)) return 0;
  // "this call should never block, independent of the blocking state of the socket."
  return -EAGAIN;
}

}  // namespace xmit
