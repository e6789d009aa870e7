// stack/sock/udp_sendmsg_checks.h — the checks udp_sendmsg() makes before it routes: length,
// flags, destination, corking, control messages. The UDP layer calls these first, in this order.
// kernel: udp_sendmsg() (up to ip_route_output_flow()), net/ipv4/udp.c
#pragma once

#include <cstddef>
#include <cstdint>

#include "stack/sock/cmsg.h"
#include "stack/sock/msghdr.h"

namespace xmit {

// What udp_sendmsg() reads from the socket before routing.
struct UdpSendCtx {
  bool established = false;  // kernel: sk->sk_state == TCP_ESTABLISHED (connect() done)
  uint32_t inet_daddr = 0;   // __be32: the connected peer (used when no address is given)
  uint16_t inet_dport = 0;   // __be16
  int pending = 0;           // kernel: up->pending: 0, AF_INET (corked), or another family
  uint16_t gso_size = 0;     // kernel: up->gso_size (setsockopt UDP_SEGMENT)
  CmsgCtx cmsg;
};

// kernel: the "Check the flags." block at the top of udp_sendmsg(): a datagram longer than
// 0xFFFF → -EMSGSIZE (first); MSG_OOB → -EOPNOTSUPP ("Mirror BSD error message compatibility").
// Every other MSG_* bit is accepted (ignored or acted on later: MSG_MORE corks, MSG_PROBE and
// MSG_CONFIRM confirm the neighbour, MSG_DONTWAIT/MSG_DONTROUTE/MSG_ZEROCOPY/MSG_ERRQUEUE etc.).
int udp_sendmsg_check_flags(size_t len, unsigned flags) noexcept;

// kernel: "Get and verify the address." An address: msg_namelen < sizeof(sockaddr_in) → -EINVAL;
// family neither AF_INET nor AF_UNSPEC → -EAFNOSUPPORT; port 0 → -EINVAL. No address: not
// connected → -EDESTADDRREQ, else the connected peer. *daddr/*dport are network order.
int udp_sendmsg_check_addr(const Kmsg& msg, const UdpSendCtx& ctx, uint32_t* daddr,
                           uint16_t* dport) noexcept;

inline constexpr int kUdpAppendPending = 1;

// kernel: udp_sendmsg() up to routing, in the kernel's order: udp_sendmsg_check_flags(msg.count),
// corking (pending for another family → -EINVAL; pending AF_INET → returns kUdpAppendPending:
// the data joins the corked datagram and the address and control messages are NOT looked at),
// udp_sendmsg_check_addr(), then if msg_controllen != 0: udp_cmsg_send() and, if it saw any other
// level, ip_cmsg_send(); then a source-route option with daddr 0 → -EINVAL.
// *ipc must come in initialised from the socket (ipcm_init_sk()); gso_size is set from ctx.
int udp_sendmsg_args(const Kmsg& msg, const UdpSendCtx& ctx, Ipcm* ipc, uint32_t* daddr,
                     uint16_t* dport) noexcept;

}  // namespace xmit
