// stack/sock/cmsg_recv.h — receive-side control messages: put_cmsg() into the caller's control
// buffer with the kernel's truncation rules, the SOL_SOCKET ones sock_recv_cmsgs() adds (receive
// timestamps, SO_RXQ_OVFL) and the SOL_IP ones ip_cmsg_recv_offset() adds, in the kernel's order.
// kernel: put_cmsg(), net/core/scm.c; sock_recv_cmsgs()/__sock_recv_timestamp(), net/socket.c;
// ip_cmsg_recv_offset(), net/ipv4/ip_sockglue.c
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "stack/base/byteorder.h"

namespace xmit {

// What is left of msg_control while messages are put. kernel: msg->msg_control/msg_controllen as
// put_cmsg() advances them; ____sys_recvmsg() then reports the bytes used as msg_controllen.
struct CmsgOut {
  uint8_t* control = nullptr;
  size_t controllen = 0;
  size_t used = 0;
  int msg_flags = 0;  // MSG_CTRUNC when a message did not fit whole
};

// kernel: put_cmsg(): no room for a header → MSG_CTRUNC and nothing; room for part → as much as
// fits, cmsg_len says what was written, MSG_CTRUNC; then advance by CMSG_SPACE(len) (or what is left).
void put_cmsg(CmsgOut* m, int level, int type, const void* data, size_t len) noexcept;

// kernel: inet->cmsg_flags bits (IP_CMSG_*, include/net/inet_sock.h), set by the SOL_IP options
// of the same name.
inline constexpr uint32_t IP_CMSG_PKTINFO = 1u << 0;
inline constexpr uint32_t IP_CMSG_TTL = 1u << 1;
inline constexpr uint32_t IP_CMSG_TOS = 1u << 2;
inline constexpr uint32_t IP_CMSG_RECVOPTS = 1u << 3;
inline constexpr uint32_t IP_CMSG_RETOPTS = 1u << 4;
inline constexpr uint32_t IP_CMSG_PASSSEC = 1u << 5;
inline constexpr uint32_t IP_CMSG_ORIGDSTADDR = 1u << 6;
inline constexpr uint32_t IP_CMSG_CHECKSUM = 1u << 7;
inline constexpr uint32_t IP_CMSG_RECVFRAGSIZE = 1u << 8;

// The IP_CMSG_* bit a SOL_IP option sets or clears (do_ip_setsockopt()); 0 for other options.
uint32_t ip_cmsg_flag(int optname) noexcept;

// How the socket asked for receive timestamps (sock flags SOCK_RCVTSTAMP, SOCK_RCVTSTAMPNS,
// SOCK_TSTAMP_NEW), read back from the kernel socket after SO_TIMESTAMP*.
enum class RcvTstamp : uint8_t { kNone, kOldUsec, kOldNsec, kNewUsec, kNewNsec };

// The received packet's facts the messages report.
struct IpRecvInfo {
  be32 daddr = 0;        // ip_hdr(skb)->daddr
  be16 dport = 0;        // the UDP destination port (IP_ORIGDSTADDR)
  uint8_t ttl = 0;
  uint8_t tos = 0;
  int ifindex = 0;       // inet_iif(skb)
  const uint8_t* opts = nullptr;  // IP options (ihl > 5)
  uint8_t optlen = 0;
  uint64_t tstamp_ns = 0;  // CLOCK_REALTIME at receive (skb->tstamp)
  uint32_t dropcount = 0;  // sk_drops when the packet was queued (SOCK_SKB_CB(skb)->dropcount)
};

// kernel: sock_recv_cmsgs(): the timestamp (if asked for) then SO_RXQ_OVFL (if set and non-zero).
// SO_TIMESTAMPING receive reports, SO_RCVMARK and SO_RCVPRIORITY are not produced.
void sock_recv_cmsgs(CmsgOut* m, RcvTstamp ts, bool rxq_ovfl, const IpRecvInfo& info) noexcept;

// kernel: ip_cmsg_recv_offset(): PKTINFO, TTL, TOS, RECVOPTS, ORIGDSTADDR, in that order.
// Not produced: IP_RETOPTS (needs ip_options_echo()), SCM_SECURITY (no LSM label here),
// IP_CHECKSUM, IP_RECVFRAGSIZE (fragments are reassembled by the kernel and read from it).
void ip_cmsg_recv(CmsgOut* m, uint32_t cmsg_flags, const IpRecvInfo& info) noexcept;

}  // namespace xmit
