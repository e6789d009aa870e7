// stack/udp/udp_sock.h — an offloaded UDP socket: the kernel's UDP proto_ops over UdpStack.
// Kernel counterparts: udp_sendmsg(), udp_recvmsg(), ip4_datagram_connect(), inet_autobind()
// (net/ipv4/udp.c, net/ipv4/datagram.c, net/ipv4/af_inet.c).
#pragma once

// The kernel "shadow" socket (same fd) is the authority for everything but the data path: bind,
// connect, socket options and names go to it first (Linux's own errnos, and it reserves the port);
// on success their result is mirrored here. Datagrams that still reach the shadow (IP fragments,
// which the XDP program leaves to the kernel to reassemble and a verbs queue's stack hands back to
// it, UdpStackOptions::ip_frag_to_kernel; or anything that arrived before the port was steered)
// are read from it too, so nothing is lost.
//
// kPassThrough: a call that returns it did nothing; the socket has become a kernel socket for good
// (destination not through the accelerated interface, IP options, UDP GSO, SO_BINDTODEVICE) and
// the caller must drop it from its fd table and make the same call on the kernel fd. Corked data
// (MSG_MORE, UDP_CORK) lives here, not in the kernel socket: a hand-back while data is pending
// drops it (counted in corked_dropped()), where the kernel would still send it.
//
// The send buffer is the kernel's (stack/ipv4/sk_wmem.h): every skb is charged its kernel truesize
// until the device completes the frame; sk_sndbuf and SO_SNDTIMEO are mirrored from the shadow. A
// full buffer gives EAGAIN to a non-blocking send and makes a blocking one wait (udp_sendmsg.cc).
// A closed socket lives on until its last frame completes (kernel: sk_wmem_alloc holds the sock).
//
// Corking follows udp_sendmsg(): the first corked send routes and opens the cork (the flow is
// kept in inet_.cork.fl4, up->pending = AF_INET); later sends append without looking at their
// address or control messages; the send without MSG_MORE (UDP_CORK off) or setsockopt(UDP_CORK, 0)
// pushes the datagram; an error drops everything pending; close() drops it too.
//
// Socket errors (sk_err): ICMP is not steered to the queue, so the kernel's ICMP errors land on the
// shadow (kernel: __udp4_lib_err() sets sk->sk_err: a hard error such as port unreachable on a
// connected socket, any error with IP_RECVERR) and make it report EPOLLERR. The stack's control
// cadence (UdpStack) notices that within 1 ms, shadow_error() moves the error here
// (getsockopt(SO_ERROR) consumes it as sock_error() does) into inet_.sk_err, and the next send or
// receive returns and consumes it where the kernel's would: a send at its first packet's
// allocation (kernel: sock_alloc_send_pskb() -> sock_error(), after the route and length checks;
// never for MSG_PROBE), a receive before it looks at the queue (kernel: __skb_recv_udp()).
// getsockopt(SO_ERROR) reports the shadow's error, else the one held here. The kernel keeps one
// error per socket: a newer one replaces an older one that was not yet consumed. Gaps: poll() on
// the fd (the kernel's) no longer reports POLLERR once the error moved here; an error held when
// the socket is handed back to the kernel (other than by a send, which returns it) is lost.
// MSG_ERRQUEUE (IP_RECVERR) is read from the shadow.

#include <netinet/in.h>

#include <cerrno>
#include <cstdint>
#include <deque>

#include "stack/ipv4/udp_tmpl.h"
#include "stack/neigh/dst_cache.h"
#include "stack/sock/busy_poll.h"
#include "stack/sock/cmsg_recv.h"
#include "stack/sock/msg_zerocopy.h"
#include "stack/sock/msghdr.h"
#include "stack/sock/socket.h"
#include "stack/sock/tcp_repair.h"
#include "stack/udp/udp_stack.h"

namespace xmit {

inline constexpr int kShadowErrOnly = 1;  // ShadowOps::wait(): the shadow has only an error pending
inline constexpr int kPassThrough = -4096;  // not an errno: "hand this socket back to the kernel"

// The kernel socket behind the fd, as the UDP socket uses it. Every call: 0/count or -errno.
class ShadowOps {
 public:
  virtual ~ShadowOps() = default;
  virtual int bind(int fd, const sockaddr* addr, socklen_t len) = 0;
  virtual int connect(int fd, const sockaddr* addr, socklen_t len) = 0;
  virtual int getname(int fd, sockaddr* addr, socklen_t* len, bool peer) = 0;
  virtual int setsockopt(int fd, int level, int name, const void* val, socklen_t len) = 0;
  virtual int getsockopt(int fd, int level, int name, void* val, socklen_t* len) = 0;
  virtual int shutdown(int fd, int how) = 0;
  // TCP's (stack/stream/tcp_socket.h): the kernel socket listens beside the stack (connections the
  // kernel receives itself: loopback, anything not steered) and hands those over by accept.
  virtual int listen(int fd, int backlog) { (void)fd, (void)backlog; return -EOPNOTSUPP; }
  // accept4(fd, ..., flags) without waiting: a new fd, or -errno (-EAGAIN: none waiting).
  virtual int accept(int fd, sockaddr* addr, socklen_t* len, int flags) {
    (void)fd, (void)addr, (void)len, (void)flags;
    return -EOPNOTSUPP;
  }
  // TCP's: the kernel socket `fd` connects from saddr to daddr:dport without a packet sent (its SYN
  // deferred: preload/kernel_connect.h), holding the 4-tuple in the kernel; its ephemeral port
  // (__inet_hash_connect(), or the bound one) and its timestamp offset for that 4-tuple
  // (secure_tcp_seq_and_ts_off()); ports in host order; `nonblock`: fd is O_NONBLOCK. 0; 1 when
  // the kernel's source address is another (fd left as it was); -EOPNOTSUPP when the kernel cannot
  // (the caller chooses itself); else the kernel's connect() errno. `fastopen`: the program's
  // TCP_FASTOPEN_CONNECT (kFastopenConnect) and TCP_FASTOPEN_NO_COOKIE (kFastopenNoCookie), which
  // the socket gets back whenever the deferred connect is undone.
  static constexpr int kFastopenConnect = 1, kFastopenNoCookie = 2;
  virtual int connect_deferred(int fd, be32 saddr, be32 daddr, uint16_t dport, bool nonblock, int fastopen,
                               uint16_t* sport, uint32_t* ts_off) {
    (void)fd, (void)saddr, (void)daddr, (void)dport, (void)nonblock, (void)fastopen, (void)sport, (void)ts_off;
    return -EOPNOTSUPP;
  }
  // TCP's: connect_deferred() undone, without a packet (the port freed unless bound to a port the
  // program asked for), the program's Fast Open options (`fastopen`) set back. 0 or -errno.
  virtual int disconnect(int fd, int fastopen) { (void)fd, (void)fastopen; return 0; }
  // TCP's: makes the kernel socket `fd` the established connection `st` (TCP_REPAIR), moving it out
  // of the stack (TcpSocket::connections_to_kernel(), at fork()). 0 or -errno.
  virtual int tcp_repair(int fd, const TcpRepairState& st) { (void)fd, (void)st; return -EOPNOTSUPP; }
  virtual ssize_t recvmsg(int fd, msghdr* msg, int flags) = 0;
  // Waits until `fd` (if >= 0) or the device's wait fd is readable, at most timeout_ms. 0,
  // kShadowErrOnly when `fd` woke the wait with POLLERR and nothing to read, or -errno (-EINTR).
  virtual int wait(int fd, int dev_fd, int timeout_ms) = 0;
  // After wait() gave -EINTR: would the kernel restart a call that returned -ERESTARTSYS, i.e. did
  // the handler that ran have SA_RESTART? (A blocking send without SO_SNDTIMEO is such a call.)
  virtual bool signal_restarts() { return false; }
  // The stack's clock, monotonic ns, read once per send; it may tick coarsely (the engine's is
  // CLOCK_MONOTONIC_COARSE, the kernel's jiffies), and timeouts and cadences then round to a tick.
  virtual uint64_t now_ns() = 0;
  virtual uint16_t random_u16() = 0;
  // Logs (debug) why the socket passes through.
  virtual void note_pass_through(int fd, be32 daddr, const char* why) = 0;
  // TCP's: SIGURG to the owner the program set on `fd` with F_SETOWN/F_SETOWN_EX, if any, errno
  // kept. kernel: send_sigurg() (without sigio_perm()'s credential check)
  virtual void send_sigurg(int fd) { (void)fd; }
};

// One received datagram held in a device RX buffer. kernel: an skb on sk_receive_queue
struct UdpRxDatagram {
  uint64_t buf_id = 0;
  const uint8_t* data = nullptr;  // the UDP payload
  uint32_t len = 0;
  be32 saddr = 0;
  be16 sport = 0;
  uint32_t truesize = 0;
  IpRecvInfo info;  // what the receive control messages report
};

class UdpSock final : public Socket {
 public:
  // Takes no reference on `stack`, which outlives every socket. `fd` is the shadow.
  UdpSock(UdpStack* stack, ShadowOps* shadow, int fd, bool nonblock);

  int bind(const sockaddr* addr, socklen_t len) override;
  int connect(const sockaddr* addr, socklen_t len, bool nonblock) override;
  int listen(int) override { return -EOPNOTSUPP; }
  int accept(Socket**, sockaddr*, socklen_t*, int) override { return -EOPNOTSUPP; }
  int getname(sockaddr* addr, socklen_t* len, bool peer) override;
  int shutdown(int how) override;
  int setsockopt(int level, int name, const void* val, socklen_t len) override;
  int getsockopt(int level, int name, void* val, socklen_t* len) override;
  ssize_t sendmsg(const msghdr* msg, int flags) override;
  ssize_t sendto(const void* buf, size_t len, int flags, const sockaddr* to, socklen_t tolen) override;
  ssize_t recvmsg(msghdr* msg, int flags) override;
  int ioctl(unsigned long request, void* arg) override;
  void set_nonblock(bool nonblock) override { nonblock_ = nonblock; }
  int poll_mask(int* wait_fd) override;
  int poll_mask_scan(int* wait_fd, PollScan* scan) override;
  void fd_moved(int from, int to) override;

  // With the stack's mutex held, for the receive demux (UdpStack::udp4_lib_lookup()).
  // kernel: compute_score() for a datagram from saddr:sport (the bound address is the caller's
  // test): -1 no match; 2, plus 4 each for a matching connected address and port.
  int compute_score(be32 saddr, be16 sport) const;
  be32 rcv_saddr() const { return rcv_saddr_; }
  bool connected() const { return connected_; }
  bool in_reuseport_group() const { return reuseport_group_; }  // SO_REUSEPORT was on at bind
  // kernel: __udp_enqueue_schedule_skb(): false (dropped, counted) when sk_rmem_alloc > sk_rcvbuf.
  bool enqueue(const UdpRxDatagram& d);
  uint64_t drops() const { return sk_drops_; }
  bool wants_tstamp() const { return rcv_tstamp_ != RcvTstamp::kNone; }
  int pending() const { return pending_; }  // kernel: up->pending (0 or AF_INET)
  // With the stack's mutex held: the shadow reported EPOLLERR; fetch its pending error into
  // inet_.sk_err (see above). Called by UdpStack at its control cadence.
  void shadow_error();
  int sk_err() const { return inet_.sk_err; }  // the error held here (positive errno), 0: none
  uint64_t corked_dropped() const { return corked_dropped_; }
  // kernel: sk_wmem_alloc_get(), sk->sk_sndbuf: the bytes charged for frames not yet completed.
  uint32_t wmem_alloc() const;
  uint32_t sndbuf() const { return inet_.sk_sndbuf; }

 protected:
  void release() override;

 private:
  ~UdpSock() override = default;
  // With mu held.
  int mirror_name();                       // getsockname() of the shadow into inet_
  int hash_and_steer();                    // demux + XDP steering for the bound port
  // The send path's test before hash_and_steer(), which would find nothing to do: steered for the
  // bound port and address (steered implies hashed and watched; both go only with the steering).
  bool steered_as_bound() const {
    return is_steered_ && steered_.local_port == inet_.inet_sport &&
           steered_.local_addr == (rcv_saddr_ != 0 ? rcv_saddr_ : stack_->if_addr());
  }
  void unhash_and_unsteer();
  int inet_autobind();                     // kernel: inet_autobind(), done on the shadow
  int pass_through(be32 daddr, const char* why);
  // kernel: sock_error(): the held error as -errno, consumed; 0 when none.
  int sock_error();
  // The stack's poll (completions reaped, arrivals delivered), then the MSG_ZEROCOPY objects whose
  // skbs all freed complete, as the kernel's do when the last skb goes.
  void poll_stack(uint64_t now);
  int send_pass_through(be32 daddr, const char* why);  // pass_through() from udp_sendmsg()
  // kernel: udp_sendmsg(), after ____sys_sendmsg()/__sys_sendto() built `kmsg` (udp_sendmsg.cc).
  // `zc_pin`: a MSG_ZEROCOPY send's object for in-place fragments (zerocopy_pin()), or nullptr;
  // `zc_mmp`: the call's own RLIMIT_MEMLOCK charge (its waits let other threads' sends run).
  ssize_t udp_sendmsg(const Kmsg& kmsg, std::unique_lock<StackMutex>& lk, ubuf_info* zc_pin = nullptr,
                      MmPin* zc_mmp = nullptr);
  ssize_t udp_sendmsg_done(int err, bool corkreq, size_t len, uint64_t now);
  // kernel: sock_wait_for_wmem() as sock_alloc_send_pskb() loops on it (udp_sendmsg.cc).
  int sk_wait_wmem(std::unique_lock<StackMutex>& lk, bool pool, uint64_t* deadline);
  // kernel: udp_push_pending_frames(): sends the corked datagram; pending_ = 0.
  int udp_push_pending_frames(uint64_t now);
  // kernel: udp_flush_pending_frames(): drops it.
  void udp_flush_pending_frames();
  ssize_t dequeue(msghdr* msg, int flags);
  // A send returned `r`: a MSG_ZEROCOPY one on an SO_ZEROCOPY socket takes an id (udp_sendmsg.cc).
  ssize_t zerocopy_sent(ssize_t r, int flags, bool appending, ubuf_info* pin, MmPin* mmp);
  // The object a MSG_ZEROCOPY send offers for its payload's in-place fragments, when the device
  // reads user memory (NetdevFeatures::sg_user); nullptr otherwise (the bytes are copied).
  ubuf_info* zerocopy_pin(int flags);
  void mirror_recv_opts(int level, int name);
  // An int option of the shadow into *out; false (nothing written) when getsockopt fails.
  bool shadow_int(int level, int name, int* out);
  // A timeout option of the shadow (SO_RCVTIMEO_OLD / SO_SNDTIMEO_OLD) into *out in ns.
  void shadow_timeo_ns(int name, uint64_t* out);

  UdpStack* stack_;
  ShadowOps* shadow_;
  int fd_;
  bool nonblock_;
  bool passthrough_ = false;
  int pending_ = 0;          // kernel: up->pending: AF_INET while corked data waits
  bool corkflag_ = false;    // kernel: udp_test_bit(CORK, sk) (setsockopt UDP_CORK)
  uint64_t corked_dropped_ = 0;  // corked datagrams dropped by a hand-back to the kernel
  bool connected_ = false;   // kernel: sk_state == TCP_ESTABLISHED
  be32 rcv_saddr_ = 0;       // kernel: inet_rcv_saddr (the bound address; 0 = any)
  bool hashed_ = false;
  bool reuseport_ = false;        // kernel: sk->sk_reuseport (SO_REUSEPORT)
  bool reuseport_group_ = false;  // kernel: sk->sk_reuseport_cb: joined the port's group at bind
  bool shadow_watched_ = false;  // registered with UdpStack::watch_shadow()
  FlowKey steered_{};
  bool is_steered_ = false;
  InetSock inet_;
  InetCork fast_cork_;       // the uncorked fast path's cork (kernel: on udp_sendmsg()'s stack)
  DstCache dst_;
  UdpTmpl tmpl_;             // the uncorked one-packet datagram's prebuilt headers (stack/ipv4/udp_tmpl.h)
  uint64_t tmpl_last_seq_ = 0;  // DstCache::seq of the last full-path send: a template is built for a
                                // route used twice in a row, not for every new peer of a server
  std::deque<UdpRxDatagram> rxq_;  // kernel: sk_receive_queue
  uint32_t sk_rmem_alloc_ = 0;
  uint32_t sk_rcvbuf_ = 212992;
  uint64_t sk_sndtimeo_ns_ = 0;      // SO_SNDTIMEO; 0: none (kernel: MAX_SCHEDULE_TIMEOUT)
  uint64_t sk_drops_ = 0;
  bool sock_localroute_ = false;     // kernel: sock_flag(sk, SOCK_LOCALROUTE) (SO_DONTROUTE)
  uint64_t rcvtimeo_ns_ = 0;         // kernel: sk_rcvtimeo (SO_RCVTIMEO); 0: for ever
  uint16_t gso_size_ = 0;            // kernel: up->gso_size (UDP_SEGMENT)
  uint32_t cmsg_flags_ = 0;          // kernel: inet->cmsg_flags (IP_PKTINFO, IP_RECVTTL, ...)
  RcvTstamp rcv_tstamp_ = RcvTstamp::kNone;  // SO_TIMESTAMP / SO_TIMESTAMPNS (old or new)
  bool rxq_ovfl_ = false;            // SO_RXQ_OVFL
  bool sock_zerocopy_ = false;       // kernel: sock_flag(sk, SOCK_ZEROCOPY) (SO_ZEROCOPY)
  BusyPollOpts busy_;                // SO_BUSY_POLL & co. (the shadow reports them)
  MsgZerocopy zc_;                   // MSG_ZEROCOPY ids and completions
};

}  // namespace xmit
