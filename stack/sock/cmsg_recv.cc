// stack/sock/cmsg_recv.cc — receive-side control messages. kernel: net/core/scm.c put_cmsg(),
// net/socket.c __sock_recv_timestamp()/sock_recv_cmsgs(), net/ipv4/ip_sockglue.c.
#include "stack/sock/cmsg_recv.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "stack/sock/cmsg.h"

namespace xmit {

void put_cmsg(CmsgOut* m, int level, int type, const void* data, size_t len) noexcept {
  if (m->control == nullptr || m->controllen < sizeof(cmsghdr)) {
    m->msg_flags |= MSG_CTRUNC;
    return;
  }
  size_t cmlen = cmsg_len(len);
  if (m->controllen < cmlen) {
    m->msg_flags |= MSG_CTRUNC;
    cmlen = m->controllen;
  }
  cmsghdr h{};
  h.cmsg_level = level;
  h.cmsg_type = type;
  h.cmsg_len = cmlen;
  std::memcpy(m->control, &h, sizeof h);
  std::memcpy(m->control + cmsg_align(sizeof(cmsghdr)), data, cmlen - cmsg_align(sizeof(cmsghdr)));
  size_t space = std::min(cmsg_align(cmsg_len(len)), m->controllen);
  m->control += space;
  m->controllen -= space;
  m->used += space;
}

uint32_t ip_cmsg_flag(int optname) noexcept {
  switch (optname) {
    case IP_PKTINFO: return IP_CMSG_PKTINFO;
    case IP_RECVTTL: return IP_CMSG_TTL;
    case IP_RECVTOS: return IP_CMSG_TOS;
    case IP_RECVOPTS: return IP_CMSG_RECVOPTS;
    case IP_RETOPTS: return IP_CMSG_RETOPTS;
    case IP_PASSSEC: return IP_CMSG_PASSSEC;
    case IP_RECVORIGDSTADDR: return IP_CMSG_ORIGDSTADDR;
    case IP_CHECKSUM: return IP_CMSG_CHECKSUM;
    case IP_RECVFRAGSIZE: return IP_CMSG_RECVFRAGSIZE;
    default: return 0;
  }
}

namespace {
// SOL_SOCKET types (include/uapi/asm-generic/socket.h); the _NEW ones postdate some libc headers.
constexpr int kSoTimestampOld = 29;
constexpr int kSoTimestampnsOld = 35;
constexpr int kSoTimestampNew = 63;
constexpr int kSoTimestampnsNew = 64;
constexpr int kSoRxqOvfl = 40;
}  // namespace

void sock_recv_cmsgs(CmsgOut* m, RcvTstamp ts, bool rxq_ovfl, const IpRecvInfo& info) noexcept {
  // kernel: __sock_recv_timestamp(): struct __kernel_old_timeval / old_timespec32-free 64-bit
  // layouts; on 64-bit the _NEW structures are the same two 64-bit words, only the type differs.
  const int64_t sec = static_cast<int64_t>(info.tstamp_ns / 1'000'000'000u);
  const int64_t nsec = static_cast<int64_t>(info.tstamp_ns % 1'000'000'000u);
  switch (ts) {
    case RcvTstamp::kNone:
      break;
    case RcvTstamp::kOldUsec:
    case RcvTstamp::kNewUsec: {
      int64_t tv[2] = {sec, nsec / 1000};
      put_cmsg(m, SOL_SOCKET, ts == RcvTstamp::kOldUsec ? kSoTimestampOld : kSoTimestampNew, tv, sizeof tv);
      break;
    }
    case RcvTstamp::kOldNsec:
    case RcvTstamp::kNewNsec: {
      int64_t tspec[2] = {sec, nsec};
      put_cmsg(m, SOL_SOCKET, ts == RcvTstamp::kOldNsec ? kSoTimestampnsOld : kSoTimestampnsNew, tspec,
               sizeof tspec);
      break;
    }
  }
  // kernel: sock_recv_drops()
  if (rxq_ovfl && info.dropcount != 0) put_cmsg(m, SOL_SOCKET, kSoRxqOvfl, &info.dropcount, sizeof info.dropcount);
}

void ip_cmsg_recv(CmsgOut* m, uint32_t flags, const IpRecvInfo& info) noexcept {
  if (flags & IP_CMSG_PKTINFO) {
    // kernel: ipv4_pktinfo_prepare(): ipi_spec_dst = fib_compute_spec_dst(), the local address
    // the packet was sent to (unicast here); ip_cmsg_recv_pktinfo(): ipi_addr = daddr.
    in_pktinfo pi{};
    pi.ipi_ifindex = info.ifindex;
    pi.ipi_spec_dst.s_addr = info.daddr;
    pi.ipi_addr.s_addr = info.daddr;
    put_cmsg(m, SOL_IP, IP_PKTINFO, &pi, sizeof pi);
  }
  if (flags & IP_CMSG_TTL) {
    int ttl = info.ttl;
    put_cmsg(m, SOL_IP, IP_TTL, &ttl, sizeof ttl);
  }
  if (flags & IP_CMSG_TOS) put_cmsg(m, SOL_IP, IP_TOS, &info.tos, 1);
  if ((flags & IP_CMSG_RECVOPTS) && info.optlen != 0) put_cmsg(m, SOL_IP, IP_RECVOPTS, info.opts, info.optlen);
  if (flags & IP_CMSG_ORIGDSTADDR) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = info.daddr;
    sin.sin_port = info.dport;
    put_cmsg(m, SOL_IP, IP_ORIGDSTADDR, &sin, sizeof sin);
  }
}

}  // namespace xmit
