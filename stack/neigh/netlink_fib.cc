// stack/neigh/netlink_fib.cc — Fib over rtnetlink; see netlink_fib.h.
// Kernel counterparts: inet_rtm_getroute()/rt_fill_info() (net/ipv4/route.c), neigh_get(),
// neigh_add(), neigh_fill_info() (net/core/neighbour.c).
#include "stack/neigh/netlink_fib.h"

#include <fcntl.h>
#include <linux/in_route.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace xmit {
namespace {


// A request under construction: header, fixed payload, then attributes.
struct NlReq {
  alignas(NLMSG_ALIGNTO) uint8_t buf[512] = {};
  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf); }

  template <class Fixed>
  Fixed* start(uint16_t type, uint16_t flags) {
    nlmsghdr* h = hdr();
    h->nlmsg_len = NLMSG_LENGTH(sizeof(Fixed));
    h->nlmsg_type = type;
    h->nlmsg_flags = flags;
    return static_cast<Fixed*>(NLMSG_DATA(h));
  }
  // Appends one attribute; the buffer is sized for every request this file makes.
  void put(uint16_t type, const void* data, uint16_t len) {
    nlmsghdr* h = hdr();
    size_t off = NLMSG_ALIGN(h->nlmsg_len);
    rtattr* rta = reinterpret_cast<rtattr*>(buf + off);
    rta->rta_type = type;
    rta->rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
    std::memcpy(RTA_DATA(rta), data, len);
    h->nlmsg_len = static_cast<uint32_t>(off + RTA_ALIGN(rta->rta_len));
  }
  template <class T>
  void put(uint16_t type, T v) {
    put(type, &v, sizeof v);
  }
};

// Walks the attributes that follow a fixed header of `fixed` bytes; every length is checked by
// RTA_OK (header fits, rta_len >= header, rta_len <= what is left).
template <class Fn>
int for_each_attr(const nlmsghdr* h, size_t fixed, Fn&& fn) {
  if (h->nlmsg_len < NLMSG_LENGTH(fixed)) return -EINVAL;
  int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(fixed));
  auto* rta = reinterpret_cast<const rtattr*>(static_cast<const uint8_t*>(NLMSG_DATA(h)) + NLMSG_ALIGN(fixed));
  for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
    if (int err = fn(rta); err != 0) return err;
  }
  return 0;
}

bool attr_u32(const rtattr* rta, uint32_t* v) {
  if (RTA_PAYLOAD(rta) != sizeof *v) return false;
  std::memcpy(v, RTA_DATA(rta), sizeof *v);
  return true;
}

int read_u32_file(const char* path, uint32_t* v) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  char text[32];
  ssize_t n;
  do n = read(fd, text, sizeof text - 1);
  while (n < 0 && errno == EINTR);
  int err = n < 0 ? -errno : 0;
  close(fd);
  if (err != 0) return err;
  text[n] = '\0';
  char* end = nullptr;
  unsigned long parsed = std::strtoul(text, &end, 10);
  if (end == text || parsed > UINT32_MAX) return -EINVAL;
  *v = static_cast<uint32_t>(parsed);
  return 0;
}

int open_route_socket(int flags) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | flags, NETLINK_ROUTE);
  if (fd < 0) return -errno;
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  return fd;
}

// One receive; the message came from the kernel (nl_pid 0) and was not truncated. Bytes or -errno.
ssize_t recv_from_kernel(int fd, uint32_t* buf, size_t words, int flags) {
  sockaddr_nl from{};
  iovec iov{buf, words * sizeof(uint32_t)};
  msghdr msg{};
  msg.msg_name = &from;
  msg.msg_namelen = sizeof from;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ssize_t n = recvmsg(fd, &msg, flags);
  if (n < 0) return -errno;
  if (msg.msg_flags & MSG_TRUNC) return -EMSGSIZE;
  if (msg.msg_namelen != sizeof from || from.nl_pid != 0) return 0;  // not the kernel: ignore
  return n;
}

}  // namespace

// kernel: rt_fill_info(), net/ipv4/route.c — the RTM_NEWROUTE that answers RTM_GETROUTE.
int parse_route_reply(const nlmsghdr* h, Rtable* rt) noexcept {
  if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg))) return -EINVAL;
  const auto* r = static_cast<const rtmsg*>(NLMSG_DATA(h));
  if (r->rtm_family != AF_INET) return -EAFNOSUPPORT;
  Rtable out;
  out.type = r->rtm_type;
  out.flags = r->rtm_flags & 0xffff0000u;  // rtm_flags = (rt_flags & ~0xFFFF) | RTM_F_CLONED
  int err = for_each_attr(h, sizeof(rtmsg), [&](const rtattr* rta) {
    uint32_t v = 0;
    switch (rta->rta_type) {
      case RTA_OIF:
        if (!attr_u32(rta, &v)) return -EINVAL;
        out.oif = static_cast<int>(v);
        break;
      case RTA_GATEWAY:
        if (!attr_u32(rta, &out.gateway)) return -EINVAL;
        break;
      case RTA_PREFSRC:
        if (!attr_u32(rta, &out.prefsrc)) return -EINVAL;
        break;
      case RTA_VIA:  // an IPv6 next hop for an IPv4 route: not something ARP resolves
        return -EAFNOSUPPORT;
      case RTA_METRICS: {
        int mlen = static_cast<int>(RTA_PAYLOAD(rta));
        for (auto* m = static_cast<const rtattr*>(RTA_DATA(rta)); RTA_OK(m, mlen); m = RTA_NEXT(m, mlen)) {
          if ((m->rta_type & NLA_TYPE_MASK) == RTAX_MTU && !attr_u32(m, &out.mtu)) return -EINVAL;
        }
        break;
      }
      default:
        break;
    }
    return 0;
  });
  if (err != 0) return err;
  *rt = out;
  return 0;
}

// kernel: neigh_fill_info(), net/core/neighbour.c
int parse_neigh_msg(const nlmsghdr* h, int* ifindex, be32* ip, NeighInfo* info) noexcept {
  if ((h->nlmsg_type != RTM_NEWNEIGH && h->nlmsg_type != RTM_DELNEIGH) ||
      h->nlmsg_len < NLMSG_LENGTH(sizeof(ndmsg))) {
    return -EINVAL;
  }
  const auto* ndm = static_cast<const ndmsg*>(NLMSG_DATA(h));
  if (ndm->ndm_family != AF_INET) return -EAFNOSUPPORT;
  NeighInfo out;
  out.nud_state = ndm->ndm_state;
  bool have_dst = false;
  be32 dst = 0;
  int err = for_each_attr(h, sizeof(ndmsg), [&](const rtattr* rta) {
    if (rta->rta_type == NDA_DST) {
      if (!attr_u32(rta, &dst)) return -EINVAL;
      have_dst = true;
    } else if (rta->rta_type == NDA_LLADDR && RTA_PAYLOAD(rta) == kEthAlen) {
      std::memcpy(out.ha.data(), RTA_DATA(rta), kEthAlen);
      out.has_ha = true;
    }
    return 0;
  });
  if (err != 0) return err;
  if (!have_dst) return -EINVAL;
  *ifindex = ndm->ndm_ifindex;
  *ip = dst;
  *info = out;
  return 0;
}

int NetlinkFib::create(std::unique_ptr<NetlinkFib>* out) noexcept {
  std::unique_ptr<NetlinkFib> fib(new NetlinkFib());
  fib->buf_.reset(new uint32_t[kBufWords]);
  int fd = open_route_socket(0);
  if (fd < 0) return fd;
  fib->req_fd_ = fd;
  // rtnetlink answers before sendmsg() returns; the timeout only bounds a kernel that does not.
  timeval tv{.tv_sec = 1, .tv_usec = 0};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) return -errno;

  fd = open_route_socket(SOCK_NONBLOCK);
  if (fd < 0) return fd;
  fib->notify_fd_ = fd;
  for (int group : {RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV4_IFADDR, RTNLGRP_LINK, RTNLGRP_NEIGH}) {
    if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0) return -errno;
  }
  int rcvbuf = 1 << 20;
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);  // best effort
  *out = std::move(fib);
  return 0;
}

NetlinkFib::~NetlinkFib() {
  if (req_fd_ >= 0) close(req_fd_);
  if (notify_fd_ >= 0) close(notify_fd_);
}

int NetlinkFib::request(nlmsghdr* req, absl::FunctionRef<int(const nlmsghdr*)> on_reply) noexcept {
  uint32_t seq = ++seq_;
  req->nlmsg_seq = seq;
  req->nlmsg_pid = 0;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t sent;
  do sent = sendto(req_fd_, req, req->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
  while (sent < 0 && errno == EINTR);
  if (sent < 0) return -errno;

  for (;;) {
    ssize_t n = recv_from_kernel(req_fd_, buf_.get(), kBufWords, 0);
    if (n == -EINTR) continue;
    if (n == -EAGAIN) return -ETIMEDOUT;
    if (n < 0) return static_cast<int>(n);
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<const nlmsghdr*>(buf_.get()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq) continue;  // a late answer to an earlier request
      if (h->nlmsg_type == NLMSG_ERROR) {
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return -EINVAL;
        int error = static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
        return error > 0 ? -EINVAL : error;  // 0: the ACK of a request without a reply
      }
      if (h->nlmsg_type == NLMSG_DONE) return -ENOENT;
      return on_reply(h);
    }
  }
}

// kernel: inet_rtm_getroute() -> ip_route_output_key_hash_rcu(), net/ipv4/route.c
int NetlinkFib::route_output(const Flowi4& fl4, Rtable* rt) noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);  // the control plane's clock: the cache's TTL only
  const uint64_t now = static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
  // A change the kernel announced but poll_changes() has not read yet (it runs once per control
  // interval) may concern this route: the kernel is asked, as it would answer at once.
  char peek;
  const bool changes_queued = notify_fd_ >= 0 && recv(notify_fd_, &peek, 1, MSG_PEEK | MSG_DONTWAIT) >= 0;
  if (!changes_queued && routes_.lookup(fl4, generation_, now, rt)) return 0;
  const uint64_t gen = generation_;
  NlReq req;
  rtmsg* r = req.start<rtmsg>(RTM_GETROUTE, NLM_F_REQUEST);
  r->rtm_family = AF_INET;
  r->rtm_dst_len = 32;
  r->rtm_tos = fl4.tos;
  r->rtm_flags = RTM_F_LOOKUP_TABLE;
  req.put<be32>(RTA_DST, fl4.daddr);
  if (fl4.saddr != 0) {
    r->rtm_src_len = 32;
    req.put<be32>(RTA_SRC, fl4.saddr);
  }
  if (fl4.oif != 0) req.put<uint32_t>(RTA_OIF, static_cast<uint32_t>(fl4.oif));
  if (fl4.mark != 0) req.put<uint32_t>(RTA_MARK, fl4.mark);
  if (fl4.proto != 0) req.put<uint8_t>(RTA_IP_PROTO, fl4.proto);
  int err = request(req.hdr(), [&](const nlmsghdr* h) {
    int e = parse_route_reply(h, rt);
    // rt_fill_info() leaves RTA_PREFSRC out when it equals the source the request named.
    if (e == 0 && rt->prefsrc == 0) rt->prefsrc = fl4.saddr;
    return e;
  });
  if (err == 0) routes_.insert(fl4, *rt, gen, now);
  return err;
}

// kernel: neigh_get(), net/core/neighbour.c
int NetlinkFib::neigh_lookup(int ifindex, be32 ip, NeighInfo* out) noexcept {
  NlReq req;
  ndmsg* ndm = req.start<ndmsg>(RTM_GETNEIGH, NLM_F_REQUEST);
  ndm->ndm_family = AF_INET;
  ndm->ndm_ifindex = ifindex;
  req.put<be32>(NDA_DST, ip);
  return request(req.hdr(), [&](const nlmsghdr* h) {
    int got_ifindex = 0;
    be32 got_ip = 0;
    int err = parse_neigh_msg(h, &got_ifindex, &got_ip, out);
    if (err == 0 && (got_ifindex != ifindex || got_ip != ip)) return -EINVAL;
    return err;
  });
}

// kernel: neigh_add() with NTF_USE -> neigh_event_send(neigh, NULL), net/core/neighbour.c
int NetlinkFib::neigh_resolve(int ifindex, be32 ip) noexcept {
  NlReq req;
  ndmsg* ndm = req.start<ndmsg>(RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE);
  ndm->ndm_family = AF_INET;
  ndm->ndm_ifindex = ifindex;
  ndm->ndm_state = NUD_NONE;
  ndm->ndm_flags = NTF_USE;
  req.put<be32>(NDA_DST, ip);
  return request(req.hdr(), [](const nlmsghdr*) { return -EINVAL; });  // only an ACK is expected
}

int NetlinkFib::neigh_parms(int ifindex, NeighParms* out) noexcept {
  char name[IF_NAMESIZE];
  if (if_indextoname(static_cast<unsigned>(ifindex), name) == nullptr) return -ENODEV;
  struct Field {
    const char* file;
    uint32_t* value;
  };
  NeighParms p;
  const Field fields[] = {{"unres_qlen_bytes", &p.unres_qlen_bytes},
                          {"mcast_solicit", &p.mcast_probes},
                          {"app_solicit", &p.app_probes},
                          {"ucast_solicit", &p.ucast_probes},
                          {"retrans_time_ms", &p.retrans_time_ms}};
  for (const Field& f : fields) {
    char path[128];
    snprintf(path, sizeof path, "/proc/sys/net/ipv4/neigh/%s/%s", name, f.file);
    if (int err = read_u32_file(path, f.value); err != 0) return err;
  }
  *out = p;
  return 0;
}

int NetlinkFib::poll_changes(absl::FunctionRef<void(const NeighEvent&)> on_neigh) noexcept {
  int count = 0;
  for (;;) {
    ssize_t n = recv_from_kernel(notify_fd_, buf_.get(), kBufWords, MSG_DONTWAIT);
    if (n == -EAGAIN) return count;
    if (n == -EINTR) continue;
    if (n == -ENOBUFS || n == -EMSGSIZE) {  // notifications were lost: everything may have changed
      ++generation_;
      on_neigh(NeighEvent{.kind = NeighEvent::kResync});
      ++count;
      continue;
    }
    if (n < 0) return static_cast<int>(n);
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<const nlmsghdr*>(buf_.get()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      ++count;
      switch (h->nlmsg_type) {
        case RTM_NEWROUTE: case RTM_DELROUTE:
        case RTM_NEWADDR: case RTM_DELADDR:
        case RTM_NEWLINK: case RTM_DELLINK:
          ++generation_;
          break;
        case RTM_NEWNEIGH: case RTM_DELNEIGH: {
          NeighEvent ev{.kind = h->nlmsg_type == RTM_NEWNEIGH ? NeighEvent::kUpdate : NeighEvent::kDelete};
          if (parse_neigh_msg(h, &ev.ifindex, &ev.ip, &ev.info) == 0) {
            ++generation_;
            on_neigh(ev);
          }
          break;
        }
        default:
          break;
      }
    }
  }
}

}  // namespace xmit
