// stack/neigh/netlink_fib.h — Fib over rtnetlink: route lookups as `ip route get` does them,
// neighbour reads and resolution requests, and a notification socket that tracks changes.
// Kernel counterparts: inet_rtm_getroute() (net/ipv4/route.c), neigh_get()/neigh_add() (net/core/neighbour.c).
#pragma once

// Control plane: these calls make syscalls and may allocate; none blocks for long (a request
// waits at most a second for the kernel's reply, which rtnetlink queues before send returns).
// Both sockets live in the network namespace of the thread that called create().
// Threading: one thread at a time.

#include <memory>

#include "absl/functional/function_ref.h"
#include "stack/neigh/fib.h"
#include "stack/neigh/route_cache.h"

namespace xmit {

class NetlinkFib final : public Fib {
 public:
  // Opens the request socket and the notification socket (RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV4_IFADDR,
  // RTNLGRP_LINK, RTNLGRP_NEIGH). 0 or -errno.
  static int create(std::unique_ptr<NetlinkFib>* out) noexcept;
  ~NetlinkFib() override;
  NetlinkFib(const NetlinkFib&) = delete;
  NetlinkFib& operator=(const NetlinkFib&) = delete;

  // RTM_GETROUTE with RTM_F_LOOKUP_TABLE (the lookup `ip route get` makes), answered from the
  // route cache while its entry is current (RouteCache: this generation, at most 100 ms old). See Fib.
  int route_output(const Flowi4& fl4, Rtable* rt) noexcept override;
  // RTM_GETNEIGH for one address (kernel: neigh_get()).
  int neigh_lookup(int ifindex, be32 ip, NeighInfo* out) noexcept override;
  // RTM_NEWNEIGH, NLM_F_CREATE, NTF_USE: the kernel creates the entry if needed and calls
  // neigh_event_send() on it, which sends ARP (kernel: neigh_add()).
  int neigh_resolve(int ifindex, be32 ip) noexcept override;
  // /proc/sys/net/ipv4/neigh/<dev>/{unres_qlen_bytes,mcast_solicit,app_solicit,ucast_solicit,retrans_time_ms},
  // read in the calling thread's namespace.
  int neigh_parms(int ifindex, NeighParms* out) noexcept override;
  uint64_t generation() const noexcept override { return generation_; }

  // Drains the notification socket without blocking: every route, address, link or neighbour
  // message advances the generation; IPv4 neighbour messages are also reported to `on_neigh`. A
  // notification overflow (ENOBUFS) advances the generation and reports NeighEvent::kResync.
  // Returns how many messages were read, or -errno.
  int poll_changes(absl::FunctionRef<void(const NeighEvent&)> on_neigh) noexcept;
  // Readable when notifications wait (for poll/epoll).
  int notify_fd() const noexcept { return notify_fd_; }
  int request_fd() const noexcept { return req_fd_; }
  const RouteCache& route_cache() const noexcept { return routes_; }

 private:
  NetlinkFib() = default;
  // Sends `req` (an nlmsghdr with its payload) and hands the reply with the same sequence number
  // to `on_reply`; an NLMSG_ERROR reply returns its error. 0 or -errno.
  int request(struct nlmsghdr* req, absl::FunctionRef<int(const struct nlmsghdr*)> on_reply) noexcept;

  static constexpr size_t kBufWords = 8192;  // 32 KiB, 4-byte aligned as netlink wants
  std::unique_ptr<uint32_t[]> buf_;         // receive buffer of both sockets
  int req_fd_ = -1;
  int notify_fd_ = -1;
  uint32_t seq_ = 0;
  uint64_t generation_ = 1;
  RouteCache routes_;
};

// Parsers of single rtnetlink messages, shared with the fuzz/unit tests. Each checks every length
// and returns 0 or -EINVAL (malformed) / -EAFNOSUPPORT (not IPv4). kernel: rt_fill_info(), neigh_fill_info()
int parse_route_reply(const struct nlmsghdr* h, Rtable* rt) noexcept;
int parse_neigh_msg(const struct nlmsghdr* h, int* ifindex, be32* ip, NeighInfo* info) noexcept;

}  // namespace xmit
