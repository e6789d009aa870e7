// stack/sock/cmsg.h — send-side control messages (SOL_SOCKET, SOL_IP, SOL_UDP) into an Ipcm, with
// the kernel's walk, order and errnos. kernel: sock_cmsg_send(), __sock_cmsg_send(), net/core/sock.c;
// ip_cmsg_send(), net/ipv4/ip_sockglue.c; udp_cmsg_send(), net/ipv4/udp.c; CMSG_*, include/linux/socket.h
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "stack/sock/ip_options.h"
#include "stack/sock/msghdr.h"

namespace xmit {

// kernel: CMSG_ALIGN(), CMSG_LEN(), include/linux/socket.h (alignment: sizeof(long)).
constexpr size_t cmsg_align(size_t len) { return (len + sizeof(long) - 1) & ~(sizeof(long) - 1); }
constexpr size_t cmsg_len(size_t data_len) { return cmsg_align(sizeof(cmsghdr)) + data_len; }

// SOL_SOCKET types newer than Debian 12's headers (include/uapi/asm-generic/socket.h).
inline constexpr int kScmDevmemDmabuf = 79;  // SO_DEVMEM_DMABUF
inline constexpr int kScmTsOptId = 81;
// kernel: SOF_TIMESTAMPING_* (include/uapi/linux/net_tstamp.h).
inline constexpr uint32_t kSofTimestampingTxHardware = 1u << 0;
inline constexpr uint32_t kSofTimestampingTxSoftware = 1u << 1;
inline constexpr uint32_t kSofTimestampingOptId = 1u << 7;
inline constexpr uint32_t kSofTimestampingTxSched = 1u << 8;
inline constexpr uint32_t kSofTimestampingTxAck = 1u << 9;
inline constexpr uint32_t kSofTimestampingTxCompletion = 1u << 18;  // Linux 6.16
inline constexpr uint32_t kSofTimestampingTxRecordMask =
    kSofTimestampingTxHardware | kSofTimestampingTxSoftware | kSofTimestampingTxSched |
    kSofTimestampingTxAck | kSofTimestampingTxCompletion;
// kernel: SOCKCM_FLAG_TS_OPT_ID, include/net/sock.h: "ts_opt_id is valid" in sockc.tsflags.
inline constexpr uint32_t kSockcmFlagTsOptId = 1u << 31;

// What the cmsg parsers need from the socket and the process. Capabilities are the answers of
// ns_capable(net->user_ns, ...) for the socket's netns, computed once by the caller (no capget()
// on the fast path).
struct CmsgCtx {
  bool cap_net_raw = false;
  bool cap_net_admin = false;
  bool sock_txtime = false;  // kernel: sock_flag(sk, SOCK_TXTIME), set by SO_TXTIME
  bool sk_is_tcp = false;
  uint32_t sk_tsflags = 0;   // kernel: sk->sk_tsflags (SO_TIMESTAMPING)
};

// kernel: struct sockcm_cookie, include/net/sock.h.
struct Sockcm {
  uint64_t transmit_time = 0;
  uint32_t mark = 0;
  uint32_t tsflags = 0;
  uint32_t ts_opt_id = 0;
  uint32_t priority = 0;
  uint32_t dmabuf_id = 0;
};

// kernel: struct ipcm_cookie, include/net/ip.h. Start from the socket's values (ipcm_init_sk():
// sockc.{mark,priority,tsflags} from the socket, oif = sk_bound_dev_if, addr = inet_saddr,
// gso_size = up->gso_size); "unset" is tos -1 and ttl 0.
struct Ipcm {
  Sockcm sockc;
  uint32_t addr = 0;  // __be32: IP_PKTINFO ipi_spec_dst (the source address to use)
  int oif = 0;        // IP_PKTINFO ipi_ifindex when non-zero
  bool has_opt = false;
  IpOptions opt;      // IP_RETOPTS, valid when has_opt
  uint8_t ttl = 0;
  int16_t tos = -1;
  uint8_t protocol = 0;
  uint16_t gso_size = 0;
};

// Walks control bytes the way for_each_cmsghdr() does: the first header exists only if
// controllen >= sizeof(cmsghdr); the next starts CMSG_ALIGN(cmsg_len) further and exists only if
// a whole header fits. Headers are read with memcpy (user control data need not be aligned).
class CmsgWalk {
 public:
  CmsgWalk(const void* control, size_t controllen)
      : base_(static_cast<const uint8_t*>(control)), len_(controllen) {
    off_ = (control != nullptr && controllen >= sizeof(cmsghdr)) ? 0 : kEnd;
  }
  explicit CmsgWalk(const Kmsg& m) : CmsgWalk(m.msg_control, m.msg_controllen) {}
  bool done() const { return off_ == kEnd; }
  const cmsghdr& hdr() const { return hdr_; }
  // The first byte of CMSG_DATA(); valid to read cmsg_len - sizeof(cmsghdr) bytes once ok().
  const uint8_t* data() const { return base_ + off_ + cmsg_align(sizeof(cmsghdr)); }
  // kernel: CMSG_OK(): cmsg_len >= sizeof(cmsghdr) && cmsg_len <= controllen - offset.
  bool load_ok();
  // kernel: __cmsg_nxthdr(). Only after load_ok() returned true.
  void next();

 private:
  static constexpr size_t kEnd = ~size_t{0};
  const uint8_t* base_;
  size_t len_;
  size_t off_;
  cmsghdr hdr_{};
};

// kernel: __sock_cmsg_send(sk, cmsg, sockc): one SOL_SOCKET message. SO_MARK (caps first, then
// length), SO_TIMESTAMPING_OLD/NEW, SCM_TXTIME, SCM_TS_OPT_ID, SO_PRIORITY (6.14+),
// SCM_DEVMEM_DMABUF; SCM_RIGHTS/SCM_CREDENTIALS are ignored; any other type: -EINVAL.
int sock_cmsg_send_core(const cmsghdr& cmsg, const uint8_t* data, const CmsgCtx& ctx, Sockcm* sockc) noexcept;

// kernel: sock_cmsg_send(): every message CMSG_OK or -EINVAL; SOL_SOCKET ones go to
// sock_cmsg_send_core(); other levels are skipped. (TCP's path; UDP's goes through ip_cmsg_send.)
int sock_cmsg_send(const Kmsg& msg, const CmsgCtx& ctx, Sockcm* sockc) noexcept;

// kernel: ip_cmsg_send(sk, msg, ipc, allow_ipv6 = false): one pass in order, first error wins:
// !CMSG_OK → -EINVAL; SOL_SOCKET → sock_cmsg_send_core(); levels other than SOL_IP skipped;
// SOL_IP: IP_RETOPTS (up to 40 option bytes, ip_options_get()), IP_PKTINFO (exact length),
// IP_TTL (int, 1..255: 0 and -1 are -EINVAL, unlike setsockopt's -1), IP_TOS (int or one byte,
// 0..255; sets sockc.priority = rt_tos2priority(tos)), IP_PROTOCOL (int, 1..255); any other
// SOL_IP type (IP_OPTIONS included) → -EINVAL. IPV6_PKTINFO on a v4-mapped socket: not served.
int ip_cmsg_send(const Kmsg& msg, const CmsgCtx& ctx, Ipcm* ipc) noexcept;

// kernel: __udp_cmsg_send(): SOL_UDP type UDP_SEGMENT with a u16 payload; anything else -EINVAL.
int udp_cmsg_send_core(const cmsghdr& cmsg, const uint8_t* data, uint16_t* gso_size) noexcept;

// kernel: udp_cmsg_send(): a first pass over all messages: !CMSG_OK → -EINVAL; SOL_UDP →
// udp_cmsg_send_core(); returns 1 if any message has another level (ip_cmsg_send() must run),
// 0 if none, or -errno. So a bad SOL_UDP message beats an earlier bad SOL_IP/SOL_SOCKET one.
int udp_cmsg_send(const Kmsg& msg, uint16_t* gso_size) noexcept;

// kernel: rt_tos2priority(), include/net/route.h (ip_tos2prio[IPTOS_TOS(tos) >> 1]).
uint32_t rt_tos2priority(uint8_t tos) noexcept;

}  // namespace xmit
