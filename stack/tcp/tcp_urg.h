// stack/tcp/tcp_urg.h — urgent data on receive (RFC 9293 §3.8.5, RFC 6093): the urgent pointer
// of an arriving segment noted, the byte it points at taken out of the stream (unless
// SO_OOBINLINE) for recv(MSG_OOB), SIOCATMARK's mark. Kernel counterparts: tcp_check_urg(),
// tcp_urg() (net/ipv4/tcp_input.c), tcp_recv_urg() (net/ipv4/tcp.c); the reader's stop at the
// mark is in tcp_recvmsg() (tcp_recvmsg.h), POLLPRI in tcp_poll() (tcp_conn.h).
// sk_send_sigurg() is left to the owner of the socket: tcp_sock::sigurg_pending says one is due.
#pragma once

#include <cstddef>
#include <cstdint>

#include "stack/tcp/tcp_sock.h"

namespace xmit {

// kernel: TCP_URG_* (include/net/tcp.h) — tp->urg_data's state bits; with TCP_URG_VALID the low
// 8 bits hold the byte.
inline constexpr uint16_t TCP_URG_VALID = 0x0100;   // the byte arrived (and is not read)
inline constexpr uint16_t TCP_URG_NOTYET = 0x0200;  // the pointer arrived, the byte not yet
inline constexpr uint16_t TCP_URG_READ = 0x0400;    // read by recv(MSG_OOB)

// The urgent part of an arriving segment's processing: a new urgent pointer noted (URG set), then
// the byte taken when this segment carries it. `skb` is at its TCP header (before the data
// queue pulls it), cb filled. Call after tcp_ack(), before tcp_data_queue(). kernel: tcp_urg()
void tcp_urg(tcp_sock* tp, const sk_buff* skb);

// recv(MSG_OOB): the urgent byte into buf (len 0: MSG_TRUNC in *msg_flags; MSG_TRUNC in flags:
// not copied, 1 returned), MSG_OOB in *msg_flags. -EINVAL with SO_OOBINLINE, without urgent data
// or once it was read; -ENOTCONN when closed before a FIN; 0 at end of stream; -EAGAIN while the
// byte has not arrived — never blocks. MSG_PEEK leaves it readable. kernel: tcp_recv_urg()
int tcp_recv_urg(tcp_sock* tp, void* buf, size_t len, int flags, int* msg_flags);

// SIOCATMARK: is the next byte to read the urgent mark? kernel: tcp_ioctl()
inline bool tcp_at_mark(const tcp_sock* tp) { return tp->urg_data != 0 && tp->urg_seq == tp->copied_seq; }

}  // namespace xmit
