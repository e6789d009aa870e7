// stack/sock/cmsg.cc — send-side control message parsing with the kernel's order and errnos.
// kernel: __sock_cmsg_send(), sock_cmsg_send(), net/core/sock.c; ip_cmsg_send(),
// net/ipv4/ip_sockglue.c; __udp_cmsg_send(), udp_cmsg_send(), net/ipv4/udp.c
#include "stack/sock/cmsg.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>

#include <cstring>

namespace xmit {
namespace {

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// kernel: TC_PRIO_*, include/uapi/linux/pkt_sched.h
constexpr uint32_t kTcPrioBesteffort = 0;
constexpr uint32_t kTcPrioBulk = 2;
constexpr uint32_t kTcPrioInteractiveBulk = 4;
constexpr uint32_t kTcPrioInteractive = 6;

// kernel: sk_set_prio_allowed(), net/core/sock.c: 0..6 for anyone, else CAP_NET_RAW or CAP_NET_ADMIN.
bool sk_set_prio_allowed(const CmsgCtx& ctx, int val) {
  return (val >= static_cast<int>(kTcPrioBesteffort) && val <= static_cast<int>(kTcPrioInteractive)) ||
         ctx.cap_net_raw || ctx.cap_net_admin;
}

// SO_* values (include/uapi/asm-generic/socket.h), spelled out so older headers do not matter.
constexpr int kSoPriority = 12;
constexpr int kSoMark = 36;
constexpr int kSoTimestampingOld = 37;
constexpr int kSoTimestampingNew = 65;
constexpr int kScmTxtime = 61;
constexpr int kScmRights = 1;
constexpr int kScmCredentials = 2;
constexpr int kIpProtocol = 52;

}  // namespace

bool CmsgWalk::load_ok() {
  std::memcpy(&hdr_, base_ + off_, sizeof(hdr_));
  return hdr_.cmsg_len >= sizeof(cmsghdr) && hdr_.cmsg_len <= len_ - off_;
}

void CmsgWalk::next() {
  // kernel: __cmsg_nxthdr(): ptr = cmsg + CMSG_ALIGN(cmsg_len); ptr + 1 past size → NULL.
  // cmsg_len <= len_ - off_ (load_ok), so the sum cannot overflow.
  size_t nxt = off_ + cmsg_align(hdr_.cmsg_len);
  if (nxt + sizeof(cmsghdr) > len_ || nxt < off_) {
    off_ = kEnd;
    return;
  }
  off_ = nxt;
}

uint32_t rt_tos2priority(uint8_t tos) noexcept {
  // kernel: ip_tos2prio[16], net/ipv4/route.c (ECN_OR_COST(class) is TC_PRIO_##class).
  static constexpr uint8_t kIpTos2Prio[16] = {
      kTcPrioBesteffort,      kTcPrioBesteffort,      kTcPrioBesteffort,  kTcPrioBesteffort,
      kTcPrioBulk,            kTcPrioBulk,            kTcPrioBulk,        kTcPrioBulk,
      kTcPrioInteractive,     kTcPrioInteractive,     kTcPrioInteractive, kTcPrioInteractive,
      kTcPrioInteractiveBulk, kTcPrioInteractiveBulk, kTcPrioInteractiveBulk,
      kTcPrioInteractiveBulk};
  return kIpTos2Prio[(tos & 0x1E) >> 1];  // IPTOS_TOS(tos) >> 1
}

int sock_cmsg_send_core(const cmsghdr& cmsg, const uint8_t* data, const CmsgCtx& ctx,
                        Sockcm* sockc) noexcept {
  switch (cmsg.cmsg_type) {
    case kSoMark:
      // The capability check comes before the length check.
      if (!ctx.cap_net_raw && !ctx.cap_net_admin) return -EPERM;
      if (cmsg.cmsg_len != cmsg_len(sizeof(uint32_t))) return -EINVAL;
      sockc->mark = load<uint32_t>(data);
      break;
    case kSoTimestampingOld:
    case kSoTimestampingNew: {
      if (cmsg.cmsg_len != cmsg_len(sizeof(uint32_t))) return -EINVAL;
      uint32_t tsflags = load<uint32_t>(data);
      if (tsflags & ~kSofTimestampingTxRecordMask) return -EINVAL;
      sockc->tsflags &= ~kSofTimestampingTxRecordMask;
      sockc->tsflags |= tsflags;
      break;
    }
    case kScmTxtime:
      if (!ctx.sock_txtime) return -EINVAL;
      if (cmsg.cmsg_len != cmsg_len(sizeof(uint64_t))) return -EINVAL;
      sockc->transmit_time = load<uint64_t>(data);
      break;
    case kScmTsOptId:
      if (ctx.sk_is_tcp) return -EINVAL;
      if (!(ctx.sk_tsflags & kSofTimestampingOptId)) return -EINVAL;
      if (cmsg.cmsg_len != cmsg_len(sizeof(uint32_t))) return -EINVAL;
      sockc->ts_opt_id = load<uint32_t>(data);
      sockc->tsflags |= kSockcmFlagTsOptId;
      break;
    // kernel: "SCM_RIGHTS and SCM_CREDENTIALS are semantically in SOL_UNIX."
    case kScmRights:
    case kScmCredentials:
      break;
    case kSoPriority:
      if (cmsg.cmsg_len != cmsg_len(sizeof(uint32_t))) return -EINVAL;
      if (!sk_set_prio_allowed(ctx, static_cast<int>(load<uint32_t>(data)))) return -EPERM;
      sockc->priority = load<uint32_t>(data);
      break;
    case kScmDevmemDmabuf:
      if (cmsg.cmsg_len != cmsg_len(sizeof(uint32_t))) return -EINVAL;
      sockc->dmabuf_id = load<uint32_t>(data);
      break;
    default:
      return -EINVAL;
  }
  return 0;
}

int sock_cmsg_send(const Kmsg& msg, const CmsgCtx& ctx, Sockcm* sockc) noexcept {
  for (CmsgWalk w(msg); !w.done(); w.next()) {
    if (!w.load_ok()) return -EINVAL;
    if (w.hdr().cmsg_level != SOL_SOCKET) continue;
    int ret = sock_cmsg_send_core(w.hdr(), w.data(), ctx, sockc);
    if (ret) return ret;
  }
  return 0;
}

int ip_cmsg_send(const Kmsg& msg, const CmsgCtx& ctx, Ipcm* ipc) noexcept {
  for (CmsgWalk w(msg); !w.done(); w.next()) {
    if (!w.load_ok()) return -EINVAL;
    const cmsghdr& cmsg = w.hdr();
    const uint8_t* data = w.data();
    if (cmsg.cmsg_level == SOL_SOCKET) {
      int err = sock_cmsg_send_core(cmsg, data, ctx, &ipc->sockc);
      if (err) return err;
      continue;
    }
    if (cmsg.cmsg_level != SOL_IP) continue;
    int val;
    switch (cmsg.cmsg_type) {
      case IP_RETOPTS: {
        int optlen = static_cast<int>(cmsg.cmsg_len - sizeof(cmsghdr));
        int err = ip_options_get(data, optlen < 40 ? optlen : 40, ctx.cap_net_raw, &ipc->opt);
        if (err) return err;
        ipc->has_opt = true;
        break;
      }
      case IP_PKTINFO: {
        if (cmsg.cmsg_len != cmsg_len(sizeof(in_pktinfo))) return -EINVAL;
        in_pktinfo info = load<in_pktinfo>(data);
        if (info.ipi_ifindex) ipc->oif = info.ipi_ifindex;
        ipc->addr = info.ipi_spec_dst.s_addr;
        break;
      }
      case IP_TTL:
        if (cmsg.cmsg_len != cmsg_len(sizeof(int))) return -EINVAL;
        val = load<int>(data);
        if (val < 1 || val > 255) return -EINVAL;
        ipc->ttl = static_cast<uint8_t>(val);
        break;
      case IP_TOS:
        if (cmsg.cmsg_len == cmsg_len(sizeof(int)))
          val = load<int>(data);
        else if (cmsg.cmsg_len == cmsg_len(sizeof(uint8_t)))
          val = *data;
        else
          return -EINVAL;
        if (val < 0 || val > 255) return -EINVAL;
        ipc->tos = static_cast<int16_t>(val);
        ipc->sockc.priority = rt_tos2priority(static_cast<uint8_t>(val));
        break;
      case kIpProtocol:
        if (cmsg.cmsg_len != cmsg_len(sizeof(int))) return -EINVAL;
        val = load<int>(data);
        if (val < 1 || val > 255) return -EINVAL;
        ipc->protocol = static_cast<uint8_t>(val);
        break;
      default:
        return -EINVAL;
    }
  }
  return 0;
}

int udp_cmsg_send_core(const cmsghdr& cmsg, const uint8_t* data, uint16_t* gso_size) noexcept {
  switch (cmsg.cmsg_type) {
    case UDP_SEGMENT:
      if (cmsg.cmsg_len != cmsg_len(sizeof(uint16_t))) return -EINVAL;
      *gso_size = load<uint16_t>(data);
      return 0;
    default:
      return -EINVAL;
  }
}

int udp_cmsg_send(const Kmsg& msg, uint16_t* gso_size) noexcept {
  bool need_ip = false;
  for (CmsgWalk w(msg); !w.done(); w.next()) {
    if (!w.load_ok()) return -EINVAL;
    if (w.hdr().cmsg_level != SOL_UDP) {
      need_ip = true;
      continue;
    }
    int err = udp_cmsg_send_core(w.hdr(), w.data(), gso_size);
    if (err) return err;
  }
  return need_ip ? 1 : 0;
}

}  // namespace xmit
