// stack/stream/tcp_socket.h — an offloaded TCP socket: the kernel's inet_stream_ops over TcpStack.
// Kernel counterparts: inet_stream_connect()/__inet_stream_connect(), inet_listen(), inet_accept(),
// inet_getname(), inet_shutdown() (net/ipv4/af_inet.c); tcp_sendmsg()'s socket part (the state
// and error checks, sk_stream_wait_connect(), sk_stream_wait_memory(), sk_stream_error()),
// tcp_recvmsg()'s waiting, tcp_ioctl(), do_tcp_setsockopt()/do_tcp_getsockopt() and tcp_get_info()
// (net/ipv4/tcp.c). The protocol itself is stack/tcp.
//
// The kernel socket behind the fd (the "shadow") reserves the port: bind() goes to it first (the
// kernel's errnos and port rules), connect() binds it to the source address and port 0 and takes
// the port the kernel chose. A listener listens on the shadow too, so connections the kernel
// receives itself (loopback, anything the device did not steer) are accepted from it as kernel
// sockets. Socket options go to the shadow first and are mirrored where the stack reads them.
//
// A connection whose route does not leave through the interface is the kernel's from connect() on
// (kPassThrough, before anything was sent); so is a listener bound to an address not on it.
//
// The send buffer: payload bytes queued and not yet acknowledged (write_seq - snd_una) against
// sk_sndbuf, which grows as the kernel's tcp_sndbuf_expand() does unless SO_SNDBUF was set. The
// kernel counts skb truesize (payload plus overhead) instead, so the same sk_sndbuf holds somewhat
// more payload here.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "stack/sock/busy_poll.h"
#include "stack/sock/msg_zerocopy.h"
#include "stack/sock/socket.h"
#include "stack/sock/sockopt_clone.h"
#include "stack/stream/tcp_stack.h"
#include "stack/udp/udp_sock.h"  // ShadowOps, kPassThrough

namespace xmit {

class TcpSocket final : public Socket {
 public:
  // A new socket: `conn` from stack->conn_alloc(), or an accepted child (then `fd` is the shadow
  // made for it and the connection is already established). Takes `conn`.
  TcpSocket(TcpStack* stack, ShadowOps* shadow, int fd, bool nonblock, TcpConn* conn);

  int bind(const sockaddr* addr, socklen_t len) override;
  int connect(const sockaddr* addr, socklen_t len, bool nonblock) override;
  int listen(int backlog) override;
  // A connection off the stack's accept queue (*newsock set), or one the kernel accepted on the
  // shadow: then *newsock is nullptr and the result is its fd.
  int accept(Socket** newsock, sockaddr* addr, socklen_t* len, int flags) override;
  int getname(sockaddr* addr, socklen_t* len, bool peer) override;
  int shutdown(int how) override;
  int setsockopt(int level, int name, const void* val, socklen_t len) override;
  int getsockopt(int level, int name, void* val, socklen_t* len) override;
  ssize_t sendmsg(const msghdr* msg, int flags) override;
  ssize_t sendto(const void* buf, size_t len, int flags, const sockaddr* to, socklen_t tolen) override;
  ssize_t sendmsg_pull(PullSource* src, size_t len, int flags) override;
  ssize_t splice_read(PushSink* sink, size_t len, int flags) override;
  ssize_t recvmsg(msghdr* msg, int flags) override;
  int ioctl(unsigned long request, void* arg) override;
  void set_nonblock(bool nonblock) override { nonblock_ = nonblock; }
  int poll_mask(int* wait_fd) override;
  int poll_mask_scan(int* wait_fd, PollScan* scan) override;
  uint64_t poll_seq() const override { return poll_seq_.load(std::memory_order_relaxed); }
  bool kernel_readiness() const override;
  void fd_moved(int from, int to) override;
  void adopt_fd(int fd) override;
  // Urgent data's new pointer arrived: SIGURG to the fd's F_SETOWN owner (ShadowOps::send_sigurg()).
  // With the stack's lock held; the engine raises it once the thread leaves the stack
  // (StackMutex::after_unlock()). kernel: sk_send_sigurg()
  void send_sigurg() {
    if (fd_ >= 0) shadow_->send_sigurg(fd_);
  }
  // fork(): the child inherits every fd, and a connection in this process's stack cannot serve two
  // processes. So before the fork each ESTABLISHED connection an fd names moves into the kernel
  // socket behind that fd (TCP_REPAIR: sequence numbers, options, windows, unread and unsent bytes;
  // ShadowOps::tcp_repair()) and the socket becomes a kernel socket in both processes, as the
  // listeners do (TcpStack::listeners_to_kernel(), first). A connection in another state, or one
  // the kernel refuses (no CAP_NET_ADMIN), stays with the stack (the child cannot use it). With
  // stack->mu() held; *moved and *failed count.
  static void connections_to_kernel(TcpStack* stack, int* moved, int* failed);
  // A listening kernel socket this process inherited from the process that made it (a pre-fork
  // worker: preload/workers.h) becomes an offloaded listener with that socket as its shadow (bound
  // and listening already): listen()'s part after the kernel's. `opts`: the options set on it (what
  // differs from a new socket's, preload/workers.cc), set again through setsockopt() so the stack
  // mirrors them and its children inherit them. *out holds the fd table's reference. 0 or -errno
  // (-EADDRNOTAVAIL: bound to an address not on the interface, or the port cannot be steered).
  static int adopt_listener(TcpStack* stack, ShadowOps* shadow, int fd, int backlog, bool nonblock,
                            const SockOptRecord& opts, Socket** out);

 protected:
  void release() override;

 private:
  ~TcpSocket() override = default;
  enum class SockState : uint8_t { kUnconnected, kConnecting, kConnected };  // kernel: socket_state
  using Lock = std::unique_lock<StackMutex>;
  int pass_through(be32 daddr, const char* why);
  int listen_start(int backlog);  // listen() once the shadow listens: the stack's listener, steered
  int to_kernel();  // connections_to_kernel() for this socket: 1 moved, 0 not established, -errno
  struct KernelValue {  // sockopt_readback(): the kernel socket's answer, if it gave one
    bool ok = false;
    int got = 0;
  };
  KernelValue sockopt_readback(int fd, int level, int name) const;
  void setsockopt_mirror(int level, int name, const void* val, socklen_t len, KernelValue kv);
  // kernel: tcp_sendmsg_locked()'s checks and waits around stack/tcp's copy path; the MSG_ZEROCOPY
  // object taken first (msg_zerocopy_realloc()) and given back or dropped at the end.
  ssize_t tcp_sendmsg(const iovec* iov, size_t nr_segs, size_t count, int flags, Lock& lk);
  ssize_t tcp_sendmsg_burst(const iovec* iov, size_t nr_segs, size_t count, int flags, Lock& lk);
  // The copy loop over `iov`, or, with `src`, over bytes pulled from it (sendmsg_pull()).
  ssize_t tcp_sendmsg_copy(const iovec* iov, size_t nr_segs, size_t count, int flags, Lock& lk, ubuf_info* uarg,
                           PullSource* src = nullptr);
  // A pull source that would have blocked: its wait() with the lock released (the burst paused,
  // as in wait()), then the stack run. wait()'s result.
  int wait_source(PullSource* src, Lock& lk);
  // The socket's MSG_ZEROCOPY state, made at the first SO_ZEROCOPY (or inherited flag).
  MsgZerocopy* zerocopy();
  ssize_t tcp_recvmsg(msghdr* msg, int flags, Lock& lk);
  // Waits (the lock released) until the device has frames, a timer of this connection is due, or
  // `deadline_ns` (0: none; at most one slice); then runs the stack. 0, -EAGAIN at the deadline,
  // -EINTR / -ERESTARTSYS (restart) after a signal. `shadow` also wakes on the kernel socket.
  int wait(Lock& lk, uint64_t deadline_ns, bool shadow);
  // kernel: tcp_recvmsg()'s sk_busy_loop(): polls the device (the lock free between looks) for up
  // to sk_ll_usec µs or until the connection has something for a reader.
  void busy_loop(Lock& lk);
  void poll_stack();
  // How many bytes the copy may take now: the kernel's sk_stream_memory_free() checks with the
  // stand-in accounting (header comment), made before each new skb.
  size_t send_room(int flags);
  uint32_t sk_stream_wspace() const;
  void tcp_sndbuf_expand();
  int sk_stream_error(int flags, int err);
  int mirror_name();
  int kernel_hash_connect(be32 daddr, uint16_t dport, bool nonblock, uint32_t* ts_off);
  void shadow_disconnect();
  void shadow_settle();
  int fastopen_opts() const {
    return (fastopen_connect_ ? ShadowOps::kFastopenConnect : 0) | (fastopen_no_cookie_ ? ShadowOps::kFastopenNoCookie : 0);
  }
  void shadow_unconnect_for_fork();
  int to_kernel_repair();
  int hash_connect(be32 daddr, uint16_t dport);
  int get_tcp_info(void* val, socklen_t* len);
  uint64_t now_ns() const { return stack_->options().clock_ns(); }

  TcpStack* stack_;
  ShadowOps* shadow_;
  int fd_;
  bool nonblock_;
  bool passthrough_ = false;
  bool child_ = false;
  // The kernel socket holds the 4-tuple (connect_deferred()) on a port its disconnect frees (one its
  // connect() or a bind(addr, 0) chose), or on a port the program bound by number, which it keeps
  // (SOCK_BINDPORT_LOCK: bindport_lock_).
  enum class ShadowConn : uint8_t { kNone, kEphemeral, kBound } shadow_conn_ = ShadowConn::kNone;
  bool bindport_lock_ = false;
  // TCP_FASTOPEN_CONNECT / TCP_FASTOPEN_NO_COOKIE as the program set them (the kernel socket's
  // are the deferred connect's)
  bool fastopen_connect_ = false, fastopen_no_cookie_ = false;
  std::atomic<uint64_t> poll_seq_{0};   // poll_seq(): set by poll_mask()
  std::atomic<bool> listening_{false};  // kernel_readiness(): read without the lock            // accepted: the shadow is an unbound kernel socket
  SockState state_ = SockState::kUnconnected;
  TcpConn* c_;
  uint32_t sk_sndbuf_;            // SO_SNDBUF as the kernel reports it
  bool sndbuf_locked_ = false;    // kernel: SOCK_SNDBUF_LOCK (SO_SNDBUF was set)
  uint64_t sndtimeo_ns_ = 0;      // SO_SNDTIMEO (0: for ever)
  uint64_t rcvtimeo_ns_ = 0;      // SO_RCVTIMEO
  int rcvlowat_ = 1;              // SO_RCVLOWAT
  bool sock_zerocopy_ = false;    // kernel: sock_flag(sk, SOCK_ZEROCOPY) (SO_ZEROCOPY; a child inherits it)
  // A listener's (or a socket's before it listens): the options set on it, for its children
  // (sockopt_clone.h); a new child's: those to set on its kernel socket at adopt_fd(). Made at the
  // first such setsockopt(): none for a program that sets nothing. Shared, not copied (SockOptRef).
  SockOptRef sockopts_;
  BusyPollOpts busy_;             // SO_BUSY_POLL & co. (a child inherits them: sk_clone_lock())
  MsgZerocopy* zc_ = nullptr;     // ids, completions, notifications; outlives the socket while
                                  // skbs hold its objects (MsgZerocopy::orphan())
};

}  // namespace xmit
