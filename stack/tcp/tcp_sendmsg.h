// stack/tcp/tcp_sendmsg.h — copying a send into the write queue and deciding when to push it.
// Kernel counterparts: tcp_sendmsg_locked() (copy path), tcp_push(), forced_push(), tcp_mark_push(),
// tcp_skb_entail(), __tcp_sock_set_cork(), __tcp_sock_set_nodelay() (net/ipv4/tcp.c).
#pragma once

#include <cstddef>
#include <cstdint>

#include "stack/ipv4/iov_iter.h"
#include "stack/tcp/tcp_output.h"
#include "stack/tcp/tcp_sock.h"
#include "stack/wire/tcp.h"

namespace xmit {

// kernel: forced_push() — more than half the peer's largest window written since the last push.
inline bool forced_push(const tcp_sock* tp) {
  return after(tp->write_seq, tp->pushed_seq + (tp->max_window >> 1));
}
// kernel: tcp_mark_push()
inline void tcp_mark_push(tcp_sock* tp, sk_buff* skb) {
  TCP_SKB_CB(skb)->tcp_flags |= TCPHDR_PSH;
  tp->pushed_seq = tp->write_seq;
}

// kernel: tcp_skb_can_collapse_to()
inline bool tcp_skb_can_collapse_to(const sk_buff* skb) { return !TCP_SKB_CB(skb)->eor; }

// kernel: tcp_should_autocork() — hold a tail skb under size_goal while an earlier skb of this
// socket is still at the device (sk_wmem_alloc above the tail's truesize, tcp_tsq.h): its TX
// completion pushes it (tcp_wfree() -> tcp_tsq_write()), with whatever later sends added.
bool tcp_should_autocork(const tcp_sock* tp, const sk_buff* skb, uint32_t size_goal);

// kernel: tcp_push() — marks PSH unless MSG_MORE (or forced); autocorks (TSQF_THROTTLED,
// TcpExtTCPAutoCorking) when tcp_should_autocork() says so; else turns MSG_MORE into
// TCP_NAGLE_CORK for this push and sends.
void tcp_push(tcp_sock* tp, int flags, uint32_t mss_now, uint8_t nonagle, uint32_t size_goal, TcpXmitFn xmit);

// Copies `size` bytes into the write queue (appending to the tail skb while it is under
// size_goal and not EOR-marked) and pushes as the kernel does: tcp_push_one() each time the
// send head fills to size_goal, a forced push after half a window, tcp_push() at the end.
// `dst_mtu` is the route's MTU (tcp_current_mss() re-syncs on a change). Returns the bytes
// copied, or -EAGAIN when nothing could be queued (no skb or buffer free: the non-blocking
// sk_stream_wait_memory()). MSG_MORE, MSG_EOR and MSG_OOB (no urgent data: only its size-goal
// effect) are honoured. Memory accounting (sk_wmem_queued, sndbuf) is not done yet. Not
// connected (sk_stream_wait_connect(), non-blocking): the pending error (cleared) if any, else
// -EAGAIN while SYN_SENT/SYN_RECV, else -EPIPE; -EPIPE after shutdown(SHUT_WR) or with an error
// pending on a connection (SIGPIPE is the socket layer's).
// `uarg`: a MSG_ZEROCOPY send's completion object (stack/sock/msg_zerocopy.h): every skb the bytes
// go into holds `uarg`, so it completes when the last is freed (ACKed); a tail skb holding another
// send's object is not appended to (PSH on it, a new skb), as the kernel's zerocopy path does. On a
// device that reads user memory (tp->sg_user) the bytes are referenced in place (kUser fragments;
// `buf` must stay mapped until the completion), else copied into the stack's buffers (the caller
// made `uarg` say COPIED). kernel: tcp_sendmsg_locked()
int tcp_sendmsg_locked(tcp_sock* tp, const void* buf, size_t size, int flags, uint32_t dst_mtu, TcpXmitFn xmit,
                       ubuf_info* uarg = nullptr);

// The same copy with its bytes pulled from `src` (stack/ipv4/iov_iter.h) straight into the payload
// page, each pull made only once the skb and page room for it are held: splice's and sendfile's
// MSG_SPLICE_PAGES send, with one copy (the kernel hands the pipe's or page cache's pages over; the
// stack's device sends from its own buffers). A source that ends early (src->ended) ends the send
// there: the count pulled is returned (0 if none; src->err says whether it failed), and a new skb
// left empty is removed (kernel: tcp_remove_empty_skb()).
int tcp_sendmsg_locked_pull(tcp_sock* tp, PullSource* src, size_t size, int flags, uint32_t dst_mtu, TcpXmitFn xmit);

// setsockopt(TCP_CORK) and setsockopt(TCP_NODELAY): uncorking / setting NODELAY pushes what is
// queued. kernel: __tcp_sock_set_cork(), __tcp_sock_set_nodelay()
void tcp_sock_set_cork(tcp_sock* tp, bool on, uint32_t dst_mtu, TcpXmitFn xmit);
void tcp_sock_set_nodelay(tcp_sock* tp, bool on, uint32_t dst_mtu, TcpXmitFn xmit);

// shutdown(SHUT_WR)'s FIN: set on the unsent tail skb, else a new empty skb; then pushed.
// 0 or -ENOBUFS. The state machine (FIN_WAIT1 ...) is the next slice's. kernel: tcp_send_fin()
int tcp_send_fin(tcp_sock* tp, uint32_t dst_mtu, TcpXmitFn xmit);

// Drops every queued skb and the payload buffer. Not the kernel's close; for tests and teardown.
void tcp_write_queue_purge(tcp_sock* tp);
// Drops the socket's reference on the payload page it was filling. The kernel fills a page per
// task (current->task_frag), not per socket, so an idle socket holds no page; here each socket has
// its own, given back once nothing is queued or unacknowledged (tcp_ack()), and at TIME_WAIT.
void sk_page_frag_release(tcp_sock* tp);

}  // namespace xmit
