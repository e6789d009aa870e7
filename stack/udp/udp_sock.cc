// stack/udp/udp_sock.cc — UdpSock: udp_recvmsg() over UdpStack, control calls on the kernel shadow
// socket first (the send path is in udp_sendmsg.cc). kernel: net/ipv4/udp.c, net/ipv4/datagram.c,
// net/ipv4/af_inet.c.
#include "stack/udp/udp_sock.h"

#include <poll.h>

#include <linux/errqueue.h>
#include <linux/sockios.h>
#include <netinet/udp.h>
#include <sys/ioctl.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "stack/ipv4/sk_wmem.h"

namespace xmit {

UdpSock::UdpSock(UdpStack* stack, ShadowOps* shadow, int fd, bool nonblock)
    : stack_(stack), shadow_(shadow), fd_(fd), nonblock_(nonblock) {
  // kernel: sock_init_data(): sk_rcvbuf = net.core.rmem_default, sk_sndbuf = net.core.wmem_default
  // (read at engine open, as the new kernel socket reports them), sk_ll_usec = net.core.busy_read
  // (XMIT_BUSY_POLL's).
  sk_rcvbuf_ = stack_->rmem_default();
  inet_.sk_sndbuf = stack_->wmem_default();
  busy_.sk_ll_usec = stack_->busy_read();
  set_busy_poll_usec(busy_.sk_ll_usec);
  zc_.set_optmem_max(stack_->optmem_max());
  inet_.sk_destruct = [](void* self) { delete static_cast<UdpSock*>(self); };
  inet_.sk_destruct_arg = this;
}

uint32_t UdpSock::wmem_alloc() const { return sk_wmem_alloc_get(inet_); }

void UdpSock::release() {
  {
    std::lock_guard<StackMutex> g(stack_->mu());
    unhash_and_unsteer();
    if (shadow_watched_) stack_->unwatch_shadow(this, fd_);
    for (const UdpRxDatagram& d : rxq_) stack_->dev().rx_recycle(d.buf_id);
    rxq_.clear();
    // kernel: udp_destroy_sock() → udp_flush_pending_frames(): corked data is dropped, not sent.
    inet_sock_destruct(&inet_);
    stack_->dev().flush_tx();  // what was sent leaves now, not at the flusher's next tick
    // kernel: sk_free(): frames still on the device hold the socket; the last completion frees it
    // (sock_wfree() → sk_destruct, under this mutex, from the stack's poll()).
    if (!sk_free(&inet_)) return;
  }
  delete this;
}

int UdpSock::pass_through(be32 daddr, const char* why) {
  if (!passthrough_) {
    passthrough_ = true;
    hand_to_kernel();
    if (pending_) {  // the kernel socket knows nothing of it: lost (see udp_sock.h)
      udp_flush_pending_frames();
      ++corked_dropped_;
    }
    unhash_and_unsteer();
    if (shadow_watched_) stack_->unwatch_shadow(this, fd_);
    shadow_watched_ = false;
    for (const UdpRxDatagram& d : rxq_) stack_->dev().rx_recycle(d.buf_id);
    rxq_.clear();  // datagrams already taken from the queue would be lost; none are in the common case
    sk_rmem_alloc_ = 0;
    shadow_->note_pass_through(fd_, daddr, why);
  }
  return kPassThrough;
}

int UdpSock::mirror_name() {
  sockaddr_in sin{};
  socklen_t l = sizeof sin;
  int err = shadow_->getname(fd_, reinterpret_cast<sockaddr*>(&sin), &l, false);
  if (err != 0) return err;
  rcv_saddr_ = sin.sin_addr.s_addr;
  inet_.inet_saddr = sin.sin_addr.s_addr;
  inet_.inet_sport = sin.sin_port;
  return 0;
}

int UdpSock::hash_and_steer() {
  if (!shadow_watched_) {  // from its first bind, connect or send on, the kernel may post errors
    stack_->watch_shadow(this, fd_);
    shadow_watched_ = true;
  }
  if (inet_.inet_sport == 0) return 0;
  if (!hashed_) {
    stack_->hash(this, inet_.inet_sport);
    hashed_ = true;
    reuseport_group_ = reuseport_;  // kernel: udp_reuseport_add_sock() at udp_lib_get_port()
  }
  be32 local = rcv_saddr_ != 0 ? rcv_saddr_ : stack_->if_addr();
  FlowKey key{.protocol = IPPROTO_UDP, .local_addr = local, .local_port = inet_.inet_sport};
  if (is_steered_ && key == steered_) return 0;
  if (is_steered_) stack_->unsteer(steered_);
  is_steered_ = false;
  int err = stack_->steer(key);  // shared with the other sockets of the port
  if (err == 0) {
    steered_ = key;
    is_steered_ = true;
  }
  return err;  // not fatal: replies then reach the shadow, which recvmsg also reads
}

void UdpSock::unhash_and_unsteer() {
  if (hashed_) stack_->unhash(this, inet_.inet_sport);
  hashed_ = false;
  reuseport_group_ = false;
  if (is_steered_) stack_->unsteer(steered_);
  is_steered_ = false;
}

// kernel: inet_autobind() — here on the shadow, so the kernel reserves the port.
int UdpSock::inet_autobind() {
  if (inet_.inet_sport != 0) return 0;
  sockaddr_in any{.sin_family = AF_INET, .sin_port = 0, .sin_addr = {0}};
  int err = shadow_->bind(fd_, reinterpret_cast<sockaddr*>(&any), sizeof any);
  if (err != 0 && err != -EINVAL) return -EAGAIN;  // kernel: inet_autobind() fails with -EAGAIN
  return mirror_name();
}

int UdpSock::bind(const sockaddr* addr, socklen_t len) {
  std::lock_guard<StackMutex> g(stack_->mu());
  if (passthrough_) return kPassThrough;
  int err = shadow_->bind(fd_, addr, len);
  if (err != 0) return err;
  if (int e = mirror_name(); e != 0) return 0;
  // Bound to an address that is not the interface's (127.0.0.1, another device): the kernel's.
  if (rcv_saddr_ != 0 && rcv_saddr_ != stack_->if_addr()) {
    pass_through(rcv_saddr_, "bound to an address not on the interface");
    return 0;  // the bind is done; the caller drops the socket from its table on the next call
  }
  hash_and_steer();
  return 0;
}

// kernel: ip4_datagram_connect(): route first (its errnos), then the socket's new state.
int UdpSock::connect(const sockaddr* addr, socklen_t len, bool) {
  std::lock_guard<StackMutex> g(stack_->mu());
  if (passthrough_) return kPassThrough;
  if (addr == nullptr || len < sizeof(sockaddr_in) || addr->sa_family != AF_INET) {
    // AF_UNSPEC disconnects; anything malformed gets the kernel's errno.
    int err = shadow_->connect(fd_, addr, len);
    if (err != 0) return err;
    connected_ = false;
    inet_.inet_daddr = 0;
    inet_.inet_dport = 0;
    dst_.reset();
    tmpl_.reset();
    // kernel: __udp_disconnect() keeps the port only if bind() chose it (SOCK_BINDPORT_LOCK), else
    // unhashes the socket and sets inet_sport to 0 (the next send autobinds again). Corked data
    // stays pending; pushed now, it would leave with source port 0, as the kernel's does.
    unhash_and_unsteer();
    mirror_name();
    if (rcv_saddr_ != 0 && rcv_saddr_ != stack_->if_addr()) rcv_saddr_ = 0;
    hash_and_steer();
    return 0;
  }
  sockaddr_in sin;
  std::memcpy(&sin, addr, sizeof sin);
  Flowi4 fl4{.daddr = sin.sin_addr.s_addr, .saddr = rcv_saddr_, .tos = static_cast<uint8_t>(inet_.tos & 0x1c),
             .mark = inet_.sk_mark, .proto = IPPROTO_UDP};
  Rtable rt;
  int err = stack_->fib().route_output(fl4, &rt);
  if (err != 0 || rt.oif != stack_->ifindex() || rt.type != RTN_UNICAST) {
    return pass_through(sin.sin_addr.s_addr, err != 0 ? "no route" : "does not leave through the interface");
  }
  err = shadow_->connect(fd_, addr, len);
  if (err != 0) return err;
  mirror_name();
  if (pending_) {
    // kernel: __ip4_datagram_connect() routes with fl4 = &inet->cork.fl.u.ip4: the flow of the
    // corked datagram is overwritten, so pending data leaves for the new peer (through the route
    // taken when the cork opened: its next hop is recomputed from the new address when on-link,
    // as ip_finish_output2() does with rt_nexthop()).
    InetCork& cork = inet_.cork;
    if (cork.dst.nexthop == cork.fl4.daddr) cork.dst.nexthop = sin.sin_addr.s_addr;
    cork.fl4.daddr = sin.sin_addr.s_addr;
    cork.fl4.saddr = inet_.inet_saddr;
    cork.fl4.fl4_dport = sin.sin_port;
    cork.fl4.fl4_sport = inet_.inet_sport;
  }
  connected_ = true;
  inet_.inet_daddr = sin.sin_addr.s_addr;
  inet_.inet_dport = sin.sin_port;
  inet_.inet_id = shadow_->random_u16();  // kernel: get_random_u16()
  dst_.reset();
  tmpl_.reset();
  hash_and_steer();
  return 0;
}

int UdpSock::getname(sockaddr* addr, socklen_t* len, bool peer) {
  return shadow_->getname(fd_, addr, len, peer);
}

// kernel: inet_shutdown(): sk_shutdown |= how + 1 even when the socket is not connected (which
// still returns -ENOTCONN). Sends then fail with EPIPE (ip_append_data_core()); blocking receives
// on an empty queue return 0.
int UdpSock::shutdown(int how) {
  int err = shadow_->shutdown(fd_, how);
  if (err == 0 || err == -ENOTCONN) {
    std::lock_guard<StackMutex> g(stack_->mu());
    inet_.sk_shutdown |= static_cast<uint8_t>((how + 1) & (RCV_SHUTDOWN | SEND_SHUTDOWN));
  }
  return err;
}

// Options go to the kernel socket; the ones the send path reads are mirrored.
int UdpSock::setsockopt(int level, int name, const void* val, socklen_t len) {
  std::lock_guard<StackMutex> g(stack_->mu());
  if (passthrough_) return kPassThrough;
  // kernel: udp_setsockopt() hands SOL_UDP and SOL_UDPLITE alike to udp_lib_setsockopt().
  const bool udp_level = level == SOL_UDP || level == IPPROTO_UDPLITE;
  if ((level == SOL_IP && name == IP_OPTIONS) || (level == SOL_SOCKET && name == SO_BINDTODEVICE)) {
    return pass_through(0, "a socket option the UDP stack does not serve (IP_OPTIONS, SO_BINDTODEVICE)");
  }
  int err = shadow_->setsockopt(fd_, level, name, val, len);
  if (err != 0) return err;
  if (udp_level && name == UDP_SEGMENT) {
    // kernel: udp_lib_setsockopt(): the shadow refused val < 0 || val > USHRT_MAX; up->gso_size.
    int v = 0;
    if (shadow_int(SOL_UDP, UDP_SEGMENT, &v)) gso_size_ = static_cast<uint16_t>(v);
  }
  if (udp_level && name == UDP_CORK) {
    // kernel: udp_lib_setsockopt(): a non-zero value corks; 0 uncorks and pushes whatever is
    // pending (its result is not returned). The shadow checked optlen >= sizeof(int).
    int on = 0;
    std::memcpy(&on, val, sizeof on);
    corkflag_ = on != 0;
    if (!corkflag_) {
      uint64_t now = shadow_->now_ns();
      stack_->poll(now);
      udp_push_pending_frames(now);
    }
    return 0;
  }
  int v = 0;
  if (level == SOL_IP) {
    if (name == IP_TTL && shadow_int(SOL_IP, IP_TTL, &v)) {
      // getsockopt reports the effective TTL; -1 ("default") is what setsockopt(-1) stored.
      int set = 0;
      std::memcpy(&set, val, std::min<size_t>(len, sizeof set));
      inet_.uc_ttl = static_cast<int16_t>(set == -1 ? -1 : v);
    }
    if (name == IP_TOS && shadow_int(SOL_IP, IP_TOS, &v)) inet_.tos = static_cast<uint8_t>(v);
    if (name == IP_MTU_DISCOVER && shadow_int(SOL_IP, IP_MTU_DISCOVER, &v)) inet_.pmtudisc = static_cast<uint8_t>(v);
    if (name == IP_RECVERR && shadow_int(SOL_IP, IP_RECVERR, &v)) inet_.recverr = v != 0;
  } else if (level == SOL_SOCKET) {
    if ((name == SO_RCVBUF || name == SO_RCVBUFFORCE) && shadow_int(SOL_SOCKET, SO_RCVBUF, &v)) sk_rcvbuf_ = static_cast<uint32_t>(v);
    if (name == SO_DONTROUTE && shadow_int(SOL_SOCKET, SO_DONTROUTE, &v)) sock_localroute_ = v != 0;
    if (name == SO_REUSEPORT && shadow_int(SOL_SOCKET, SO_REUSEPORT, &v)) reuseport_ = v != 0;
    if (name == SO_ZEROCOPY && shadow_int(SOL_SOCKET, SO_ZEROCOPY, &v)) sock_zerocopy_ = v != 0;
    if (name == 20 || name == 66) shadow_timeo_ns(20, &rcvtimeo_ns_);  // SO_RCVTIMEO_OLD / _NEW
    // kernel: sk_setsockopt() stores max(val * 2, SOCK_MIN_SNDBUF) clamped by wmem_max (FORCE:
    // not clamped); getsockopt reports that. A larger buffer lets blocked writers go on at once
    // (kernel: sk->sk_write_space(sk)); ours re-check when their bounded wait ends.
    if ((name == SO_SNDBUF || name == SO_SNDBUFFORCE) && shadow_int(SOL_SOCKET, SO_SNDBUF, &v)) inet_.sk_sndbuf = static_cast<uint32_t>(v);
    if (name == 21 || name == 67) shadow_timeo_ns(21, &sk_sndtimeo_ns_);  // SO_SNDTIMEO_OLD / _NEW
    if (name == SO_MARK && shadow_int(SOL_SOCKET, SO_MARK, &v)) inet_.sk_mark = static_cast<uint32_t>(v);
    if (name == SO_PRIORITY && shadow_int(SOL_SOCKET, SO_PRIORITY, &v)) inet_.sk_priority = static_cast<uint32_t>(v);
    if (name == SO_NO_CHECK && shadow_int(SOL_SOCKET, SO_NO_CHECK, &v)) inet_.sk_no_check_tx = v != 0;
    if (busy_poll_setsockopt(&busy_, name, val, len)) set_busy_poll_usec(busy_.sk_ll_usec);
  }
  mirror_recv_opts(level, name);
  dst_.reset();
  tmpl_.reset();
  return 0;
}

bool UdpSock::shadow_int(int level, int name, int* out) {
  socklen_t l = sizeof *out;
  return shadow_->getsockopt(fd_, level, name, out, &l) == 0;
}

// SO_RCVTIMEO_OLD (20) / SO_SNDTIMEO_OLD (21), the _NEW names' values too: the kernel reports
// them as the old timeval (64-bit: the same layout). 0 stays 0: no timeout.
void UdpSock::shadow_timeo_ns(int name, uint64_t* out) {
  timeval tv{};
  socklen_t l = sizeof tv;
  if (shadow_->getsockopt(fd_, SOL_SOCKET, name, &tv, &l) == 0) {
    *out = static_cast<uint64_t>(tv.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(tv.tv_usec) * 1000u;
  }
}

// The receive-side options, read back from the kernel socket (its getsockopt is the authority on
// what a value of any length meant). kernel: do_ip_setsockopt() cmsg_flags, sock_set_timestamp(),
// SOCK_RXQ_OVFL.
void UdpSock::mirror_recv_opts(int level, int name) {
  auto read_int = [&](int lvl, int nm) {
    int v = 0;
    return shadow_int(lvl, nm, &v) && v != 0;
  };
  if (level == SOL_IP) {
    if (uint32_t bit = ip_cmsg_flag(name); bit != 0) {
      cmsg_flags_ = read_int(SOL_IP, name) ? (cmsg_flags_ | bit) : (cmsg_flags_ & ~bit);
    }
    return;
  }
  if (level != SOL_SOCKET) return;
  if (name == SO_RXQ_OVFL) rxq_ovfl_ = read_int(SOL_SOCKET, SO_RXQ_OVFL);
  // SO_TIMESTAMP_OLD 29, SO_TIMESTAMPNS_OLD 35, SO_TIMESTAMP_NEW 63, SO_TIMESTAMPNS_NEW 64: the
  // kernel answers each getsockopt only for the mode actually set (sock_getsockopt()).
  if (name == 29 || name == 35 || name == 63 || name == 64) {
    rcv_tstamp_ = read_int(SOL_SOCKET, 29)   ? RcvTstamp::kOldUsec
                  : read_int(SOL_SOCKET, 35) ? RcvTstamp::kOldNsec
                  : read_int(SOL_SOCKET, 63) ? RcvTstamp::kNewUsec
                  : read_int(SOL_SOCKET, 64) ? RcvTstamp::kNewNsec
                                             : RcvTstamp::kNone;
  }
}

int UdpSock::getsockopt(int level, int name, void* val, socklen_t* len) {
  if (level == SOL_IP && name == IP_MTU) {
    // The shadow's route MTU (ENOTCONN unless connected), at most what xmit's queue carries (a
    // jumbo MTU is cut to a buffer): what a DF datagram may fill here.
    int r = shadow_->getsockopt(fd_, level, name, val, len);
    int v = 0;
    if (r != 0 || val == nullptr || len == nullptr || *len < sizeof v) return r;
    std::memcpy(&v, val, sizeof v);
    v = std::min(v, static_cast<int>(stack_->dev_features().mtu));
    std::memcpy(val, &v, sizeof v);
    return 0;
  }
  if (level != SOL_SOCKET || name != SO_ERROR) return shadow_->getsockopt(fd_, level, name, val, len);
  // kernel: sk_getsockopt() SO_ERROR: -sock_error(sk) (consumed), copied as an int cut to *len.
  // The shadow checks the arguments and reports an error newer than the one held here (the
  // kernel's one sk_err would have been overwritten by it), else the held one is reported.
  if (len == nullptr) return shadow_->getsockopt(fd_, level, name, val, len);  // -EFAULT, nothing consumed
  std::lock_guard<StackMutex> g(stack_->mu());
  int v = 0;
  socklen_t l = *len;
  if (int err = shadow_->getsockopt(fd_, level, name, &v, &l); err != 0) return err;  // -EINVAL (len < 0)
  if (v == 0) v = -sock_error();
  inet_.sk_err = 0;
  if (l != 0 && val == nullptr) return -EFAULT;  // kernel: consumed, then copy_to_sockptr() fails
  if (l != 0) std::memcpy(val, &v, std::min<size_t>(l, sizeof v));
  *len = l;
  return 0;
}

void UdpSock::shadow_error() {
  int v = 0;
  socklen_t l = sizeof v;
  // kernel: sock_error() on the shadow (SO_ERROR consumes it); a newer error replaces a held one.
  if (shadow_->getsockopt(fd_, SOL_SOCKET, SO_ERROR, &v, &l) == 0 && v > 0) inet_.sk_err = v;
}

int UdpSock::sock_error() { return inet_.sk_err != 0 ? -std::exchange(inet_.sk_err, 0) : 0; }

void UdpSock::poll_stack(uint64_t now) {
  stack_->poll(now);
  zc_.complete_upto(sk_wmem_released(inet_));
}

// kernel: udp_poll() -> datagram_poll(): EPOLLIN when the queue has a datagram, EPOLLOUT while
// sock_writeable() (under half of SO_SNDBUF charged), EPOLLERR for a held error, EPOLLRDHUP with
// EPOLLIN after SHUT_RD, EPOLLHUP after both. The error queue is the shadow's (the caller polls it).
int UdpSock::poll_mask(int* wait_fd) {
  PollScan scan;
  return poll_mask_scan(wait_fd, &scan);
}

int UdpSock::poll_mask_scan(int* wait_fd, PollScan* scan) {
  std::lock_guard<StackMutex> g(stack_->mu());
  if (passthrough_) return kPassThrough;
  if (scan->polled != stack_) {
    stack_->poll(shadow_->now_ns());
    scan->polled = stack_;
  }
  zc_.complete_upto(sk_wmem_released(inet_));
  *wait_fd = stack_->dev().wait_fd();
  int mask = 0;
  if (inet_.sk_err != 0 || zc_.has_notification()) mask |= POLLERR;
  if (inet_.sk_shutdown & RCV_SHUTDOWN) mask |= POLLRDHUP | POLLIN | POLLRDNORM;
  if (inet_.sk_shutdown == (RCV_SHUTDOWN | SEND_SHUTDOWN)) mask |= POLLHUP;
  if (!rxq_.empty()) mask |= POLLIN | POLLRDNORM;
  if (sock_writeable(inet_)) mask |= POLLOUT | POLLWRNORM | POLLWRBAND;
  return mask;
}

// The shadow is reached through another of the program's fds (dup, then close of the first): the
// error watch follows it.
void UdpSock::fd_moved(int from, int to) {
  std::lock_guard<StackMutex> g(stack_->mu());
  if (fd_ != from) return;
  if (shadow_watched_) {
    stack_->unwatch_shadow(this, from);
    stack_->watch_shadow(this, to);
  }
  fd_ = to;
}

int UdpSock::ioctl(unsigned long request, void* arg) {
  std::lock_guard<StackMutex> g(stack_->mu());
  if (passthrough_) return kPassThrough;
  if (request == SIOCINQ) {  // kernel: udp_ioctl(): the size of the next datagram's payload
    stack_->poll(shadow_->now_ns());
    if (!rxq_.empty()) {
      *static_cast<int*>(arg) = static_cast<int>(rxq_.front().len);
      return 0;
    }
    // The next datagram may wait on the kernel socket (reassembled fragments): its size, as a
    // MSG_PEEK|MSG_TRUNC read gives it; none: 0.
    msghdr m{};
    ssize_t r = shadow_->recvmsg(fd_, &m, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
    *static_cast<int*>(arg) = r > 0 ? static_cast<int>(r) : 0;
    return 0;
  }
  if (request == SIOCOUTQ) {  // kernel: udp_ioctl(): sk_wmem_alloc_get(), frames not yet completed
    stack_->poll(shadow_->now_ns());
    *static_cast<int*>(arg) = static_cast<int>(sk_wmem_alloc_get(inet_));
    return 0;
  }
  // kernel: udp_ioctl() -ENOIOCTLCMD (SIOCOUTQNSD too), which sock_ioctl() turns into -ENOTTY
  return -ENOTTY;
}

int UdpSock::compute_score(be32 saddr, be16 sport) const {
  if (passthrough_) return -1;
  int score = 2;  // kernel: PF_INET
  if (connected_) {
    if (inet_.inet_daddr != saddr || inet_.inet_dport != sport) return -1;
    score += 4 + 4;  // inet_daddr, inet_dport
  }
  return score;
}

bool UdpSock::enqueue(const UdpRxDatagram& d) {
  // kernel: __udp_enqueue_schedule_skb(): "rmem > sk->sk_rcvbuf" drops (the first datagram of an
  // empty queue always fits).
  if (sk_rmem_alloc_ > sk_rcvbuf_) {
    ++sk_drops_;
    return false;
  }
  sk_rmem_alloc_ += d.truesize;
  rxq_.push_back(d);
  rxq_.back().info.dropcount = rxq_ovfl_ ? static_cast<uint32_t>(sk_drops_) : 0;
  return true;
}

ssize_t UdpSock::dequeue(msghdr* msg, int flags) {
  const UdpRxDatagram& d = rxq_.front();
  size_t copied = 0;
  for (size_t i = 0; i < msg->msg_iovlen && copied < d.len; ++i) {
    size_t n = std::min(msg->msg_iov[i].iov_len, static_cast<size_t>(d.len) - copied);
    if (n != 0) std::memcpy(msg->msg_iov[i].iov_base, d.data + copied, n);
    copied += n;
  }
  msg->msg_flags = copied < d.len ? MSG_TRUNC : 0;
  if (msg->msg_name != nullptr) {
    sockaddr_in sin{.sin_family = AF_INET, .sin_port = d.sport, .sin_addr = {d.saddr}};
    std::memcpy(msg->msg_name, &sin, std::min<size_t>(msg->msg_namelen, sizeof sin));
    msg->msg_namelen = sizeof sin;
  }
  // kernel: udp_recvmsg(): sock_recv_cmsgs(), then ip_cmsg_recv_offset() when any flag is set;
  // ____sys_recvmsg() reports the bytes used as msg_controllen.
  CmsgOut cm{.control = static_cast<uint8_t*>(msg->msg_control), .controllen = msg->msg_controllen};
  sock_recv_cmsgs(&cm, rcv_tstamp_, rxq_ovfl_, d.info);
  if (cmsg_flags_ != 0) ip_cmsg_recv(&cm, cmsg_flags_, d.info);
  msg->msg_controllen = cm.used;
  msg->msg_flags |= cm.msg_flags;
  ssize_t ret = (flags & MSG_TRUNC) ? d.len : static_cast<ssize_t>(copied);
  if (!(flags & MSG_PEEK)) {
    sk_rmem_alloc_ -= d.truesize;
    stack_->dev().rx_recycle(d.buf_id);
    rxq_.pop_front();
  }
  return ret;
}

// Whether an error queue read returned an ICMP error (its IP_RECVERR cmsg says so).
// kernel: is_icmp_err_skb(), net/core/skbuff.c
static bool dequeued_icmp_error(const msghdr* msg) {
  if (msg->msg_control == nullptr) return false;
  for (const cmsghdr* c = CMSG_FIRSTHDR(msg); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(msg), const_cast<cmsghdr*>(c))) {
    if (c->cmsg_level != SOL_IP || c->cmsg_type != IP_RECVERR) continue;
    if (c->cmsg_len < CMSG_LEN(sizeof(sock_extended_err))) return false;
    sock_extended_err ee;
    std::memcpy(&ee, CMSG_DATA(c), sizeof ee);
    return ee.ee_origin == SO_EE_ORIGIN_ICMP;
  }
  return false;
}

// kernel: udp_recvmsg() + __skb_recv_udp(): the queue, else the kernel socket, else wait.
ssize_t UdpSock::recvmsg(msghdr* msg, int flags) {
  std::unique_lock<StackMutex> lk(stack_->mu());
  if (passthrough_) return kPassThrough;
  // A receive is where a request/response program turns from sending to waiting: frames held
  // below the doorbell batch (Netdev::flush_tx()) go now, before the reply can be awaited.
  stack_->dev().flush_tx();
  if (flags & MSG_ERRQUEUE) {
    // MSG_ZEROCOPY notifications are queued here, ICMP errors on the shadow: ours first (the
    // kernel keeps one queue in arrival order).
    poll_stack(shadow_->now_ns());
    if (zc_.has_notification()) return zc_.recv_error(msg);
    ssize_t r = shadow_->recvmsg(fd_, msg, flags);
    // kernel: ip_recv_error() -> sock_dequeue_err_skb(): dequeuing an ICMP error sets sk_err to the
    // next queued ICMP error's errno, or 0. The shadow did that to its own sk_err; one held here
    // came from the same queue, so it goes.
    if (r >= 0 && inet_.sk_err != 0 && dequeued_icmp_error(msg)) inet_.sk_err = 0;
    return r;
  }
  if (flags & MSG_OOB) return -EOPNOTSUPP;
  // kernel: sock_rcvtimeo(): SO_RCVTIMEO, 0 = wait for ever.
  const uint64_t start = shadow_->now_ns();
  bool watch_shadow = true;
  bool spun = false;  // busy-polled since the last wait
  for (;;) {
    const uint64_t now = shadow_->now_ns();
    stack_->poll(now);
    // kernel: __skb_recv_udp() returns a pending error before it looks at the queue (and
    // __skb_wait_for_more_packets() after a wake-up); the shadow's own recvmsg below does the same.
    if (int err = sock_error(); err != 0) return err;
    if (!rxq_.empty()) return dequeue(msg, flags);
    ssize_t r = shadow_->recvmsg(fd_, msg, flags | MSG_DONTWAIT);
    if (r != -EAGAIN) return r;
    if (nonblock_ || (flags & MSG_DONTWAIT)) return -EAGAIN;
    // kernel: __skb_wait_for_more_packets(): after shutdown(SHUT_RD) a blocking read returns 0.
    if (inet_.sk_shutdown & RCV_SHUTDOWN) return 0;
    // kernel: __skb_recv_udp(): with sk_ll_usec set (sk_can_busy_loop()) the device is polled for
    // up to that long (sk_busy_loop()) before each sleep. A non-blocking call polled once, above.
    if (!spun && busy_.sk_ll_usec != 0) {
      spun = true;
      ++stack_->busy_polls;
      sk_busy_loop(
          lk, stack_->rx_sleepers, stack_->clock_now() + uint64_t{busy_.sk_ll_usec} * 1000,
          [this] { return stack_->clock_now(); },
          [this] { stack_->busy_poll_rx_packets += std::max(stack_->poll(shadow_->now_ns()), 0); },
          [this] { return passthrough_ || !rxq_.empty() || inet_.sk_err != 0; });
      if (passthrough_) return kPassThrough;
      continue;
    }
    // kernel: __skb_recv_udp(): the timeout ran out → -EAGAIN.
    uint64_t left_ms = 50;
    if (rcvtimeo_ns_ != 0) {
      if (now - start >= rcvtimeo_ns_) return -EAGAIN;
      left_ms = std::min<uint64_t>(left_ms, (rcvtimeo_ns_ - (now - start) + 999'999) / 1'000'000);
    }
    int dev_fd = stack_->dev().wait_fd();
    lk.unlock();
    // Bounded waits: another thread may take our frame off the device ring and queue it for us.
    // A shadow that reports only an error (IP_RECVERR's error queue, which this call does not
    // read) would wake every wait at once: it is then left out of this call's later waits, and
    // checked by the loop's own read every 50 ms.
    int err = shadow_->wait(watch_shadow ? fd_ : -1, dev_fd, static_cast<int>(left_ms));
    if (err == kShadowErrOnly) {
      watch_shadow = false;
      err = 0;
    }
    lk.lock();
    spun = false;
    // kernel: sock_intr_errno(): -ERESTARTSYS without a timeout (restarted when the handler has
    // SA_RESTART), -EINTR with one. Which handler ran is not known here: the wait goes on only
    // when the shadow says every installed handler restarts (ShadowOps::signal_restarts()).
    if (err == -EINTR && !(rcvtimeo_ns_ == 0 && shadow_->signal_restarts())) return -EINTR;
    if (passthrough_) return kPassThrough;
  }
}

}  // namespace xmit
