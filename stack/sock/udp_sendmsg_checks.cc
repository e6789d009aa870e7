// stack/sock/udp_sendmsg_checks.cc — udp_sendmsg()'s checks before routing, in the kernel's order.
// kernel: udp_sendmsg(), net/ipv4/udp.c
#include "stack/sock/udp_sendmsg_checks.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace xmit {

int udp_sendmsg_check_flags(size_t len, unsigned flags) noexcept {
  if (len > 0xFFFF) return -EMSGSIZE;
  if (flags & MSG_OOB) return -EOPNOTSUPP;
  return 0;
}

int udp_sendmsg_check_addr(const Kmsg& msg, const UdpSendCtx& ctx, uint32_t* daddr,
                           uint16_t* dport) noexcept {
  if (msg.has_name) {
    if (static_cast<size_t>(msg.msg_namelen) < sizeof(sockaddr_in)) return -EINVAL;
    sockaddr_in usin;
    std::memcpy(&usin, &msg.address, sizeof(usin));
    if (usin.sin_family != AF_INET && usin.sin_family != AF_UNSPEC) return -EAFNOSUPPORT;
    *daddr = usin.sin_addr.s_addr;
    *dport = usin.sin_port;
    if (*dport == 0) return -EINVAL;
  } else {
    if (!ctx.established) return -EDESTADDRREQ;
    *daddr = ctx.inet_daddr;
    *dport = ctx.inet_dport;
  }
  return 0;
}

int udp_sendmsg_args(const Kmsg& msg, const UdpSendCtx& ctx, Ipcm* ipc, uint32_t* daddr,
                     uint16_t* dport) noexcept {
  int err = udp_sendmsg_check_flags(msg.count, msg.msg_flags);
  if (err) return err;
  if (ctx.pending) {
    if (ctx.pending != AF_INET) return -EINVAL;
    return kUdpAppendPending;
  }
  err = udp_sendmsg_check_addr(msg, ctx, daddr, dport);
  if (err) return err;
  ipc->gso_size = ctx.gso_size;
  if (msg.msg_controllen) {
    err = udp_cmsg_send(msg, &ipc->gso_size);
    if (err > 0) err = ip_cmsg_send(msg, ctx.cmsg, ipc);
    if (err < 0) return err;
  }
  // kernel: "if (ipc.opt && ipc.opt->opt.srr) { if (!daddr) ... -EINVAL; faddr = opt.faddr; }"
  if (ipc->has_opt && ipc->opt.srr && *daddr == 0) return -EINVAL;
  return 0;
}

}  // namespace xmit
