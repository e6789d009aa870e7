// stack/tcp/tcp_user_frags.h — a closing connection lets go of the program's memory: the MSG_ZEROCOPY
// bytes its queued skbs still reference (kUser fragments) are copied into the stack's buffers.
// Kernel counterpart: skb_copy_ubufs(), net/core/skbuff.c (here needed where the kernel needs
// nothing: it pinned the pages at the send, so a program may free a buffer before its completion).
#pragma once

#include "stack/tcp/tcp_conn.h"
#include "stack/tcp/tcp_sock.h"

namespace xmit {

// Copies every kUser fragment of the write and retransmit queues' skbs into tp->page_pool buffers,
// or heap memory when the pool is empty (their objects then say COPIED, skb_zcopy_clear(skb, false)). Called when the socket is closed
// (the orphan may go on sending after close() returned and the program freed the buffer) and at
// exit. Clones already posted to the device keep their fragments until their completion (a NIC
// reads registered, pinned pages). Returns the number of skbs that still reference user memory
// (no memory at all, or more fragments than an skb holds): 0 normally.
int tcp_copy_user_frags(tcp_sock* tp) noexcept;

// close() (and the exit drain's close) of a connection that may hold MSG_ZEROCOPY bytes:
// tcp_copy_user_frags(), then tcp_close(). When some could not be copied (no memory) the
// orphan must not go on reading the program's memory after close() returned: the connection is
// aborted instead (tcp_abort()'s counterpart, the memory failure counted as TCPAbortOnMemory): RST
// where tcp_need_reset(), write and receive queues purged — their MSG_ZEROCOPY objects complete —
// TCP_CLOSE and done(). Returns true when it aborted.
bool tcp_close_user_frags(tcp_sock* tp, uint32_t dst_mtu, TcpXmitFn xmit, TcpOps* ops);

}  // namespace xmit
