// stack/tcp/tcp_recvmsg.h — reading the receive queue. Kernel counterparts: tcp_recvmsg_locked()
// (the copy loop, MSG_PEEK, FIN as end of stream, the urgent mark), tcp_eat_recv_skb(),
// tcp_cleanup_rbuf() (net/ipv4/tcp.c). Simplified: non-blocking only (-EAGAIN when empty; no
// SO_RCVTIMEO, no rcvlowat, no MSG_WAITALL, no MSG_TRUNC, no receive timestamps/cmsgs);
// recv(MSG_OOB) is tcp_recv_urg() (tcp_urg.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "stack/tcp/tcp_output.h"
#include "stack/tcp/tcp_sock.h"

namespace xmit {

// Copies up to `len` bytes from copied_seq. Returns the bytes copied; 0 at end of stream (a FIN
// reached with nothing copied before it, or shutdown(SHUT_RD)); the pending error (ECONNRESET...,
// cleared) on a reset connection; -ENOTCONN when closed or listening; -EAGAIN when nothing is
// queued yet. With MSG_PEEK the
// data stays queued and copied_seq does not move. Urgent data (tcp_urg.h): a read stops before
// the mark once it copied something; at the mark the urgent byte is stepped over unless
// SO_OOBINLINE, and reading past it ends the urgent state (urg_data 0). After a read, an ACK goes out when the read
// opened the window "significantly" (tcp_cleanup_rbuf()). kernel: tcp_recvmsg_locked()
int tcp_recvmsg(tcp_sock* tp, void* buf, size_t len, int flags, TcpXmitFn xmit);

// kernel: tcp_cleanup_rbuf() — ACK now if one is scheduled and two segments wait unacknowledged
// or the reader emptied the queue after a push; or if the window can now be offered at twice
// what is left of the current one.
void tcp_cleanup_rbuf(tcp_sock* tp, int copied, TcpXmitFn xmit);

// setsockopt(TCP_QUICKACK): 0 enters pingpong mode (delayed ACKs); non-zero leaves it and sends a
// scheduled ACK now (an even value re-enters pingpong after it). kernel: __tcp_sock_set_quickack()
void tcp_sock_set_quickack(tcp_sock* tp, int val, TcpXmitFn xmit);

}  // namespace xmit
