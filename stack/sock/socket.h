// stack/sock/socket.h — what an offloaded socket offers the interposer: the kernel's
// struct proto_ops (include/linux/net.h), one virtual per socket call, each returning 0, a count,
// or -errno. Sockets are reference counted: every fd that names one (dup, dup2, fork) holds a ref.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

namespace xmit {

struct PullSource;  // stack/ipv4/iov_iter.h
struct PushSink;    // stack/ipv4/iov_iter.h

class Socket {
 public:
  Socket() = default;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // kernel: proto_ops.{bind,connect,listen,accept,getname,shutdown,setsockopt,getsockopt,sendmsg,
  // recvmsg,ioctl}. `accept` returns a new Socket (ref held by the caller) through *newsock.
  virtual int bind(const sockaddr* addr, socklen_t len) = 0;
  virtual int connect(const sockaddr* addr, socklen_t len, bool nonblock) = 0;
  virtual int listen(int backlog) = 0;
  virtual int accept(Socket** newsock, sockaddr* addr, socklen_t* len, int flags) = 0;
  virtual int getname(sockaddr* addr, socklen_t* len, bool peer) = 0;
  virtual int shutdown(int how) = 0;
  virtual int setsockopt(int level, int name, const void* val, socklen_t len) = 0;
  virtual int getsockopt(int level, int name, void* val, socklen_t* len) = 0;
  virtual ssize_t sendmsg(const msghdr* msg, int flags) = 0;
  // send(2)/sendto(2)/write(2): the kernel's __sys_sendto() differs from sendmsg() in its address
  // checks (addrlen 0 is an empty address, not "no address"; addrlen > 128 is -EINVAL). The
  // default goes through sendmsg() and so takes sendmsg()'s rules.
  virtual ssize_t sendto(const void* buf, size_t len, int flags, const sockaddr* to, socklen_t tolen) {
    iovec iov{const_cast<void*>(buf), len};
    msghdr msg{};
    msg.msg_name = const_cast<sockaddr*>(to);
    msg.msg_namelen = tolen;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    return sendmsg(&msg, flags);
  }
  // splice()/sendfile() into the socket: up to `len` bytes pulled from `src` as the socket takes
  // them (kernel: splice_to_socket()'s sock_sendmsg() with MSG_SPLICE_PAGES over the pipe's pages).
  // The count taken, or -errno when none was; what was not taken was never pulled. -EOPNOTSUPP:
  // this socket takes no pulled bytes (the caller then makes the kernel's call).
  virtual ssize_t sendmsg_pull(PullSource* src, size_t len, int flags) {
    (void)src, (void)len, (void)flags;
    return -EOPNOTSUPP;
  }
  // splice() from the socket into a pipe: up to `len` received bytes pushed into `sink` and
  // consumed from the receive queue as one step under the socket's lock (kernel: tcp_splice_read()
  // under lock_sock()), so no other reader sees bytes the sink took. `flags`: MSG_DONTWAIT. The
  // count moved, or -errno as recvmsg() gives it; -EOPNOTSUPP: not this socket's (the caller then
  // makes the kernel's call).
  virtual ssize_t splice_read(PushSink* sink, size_t len, int flags) {
    (void)sink, (void)len, (void)flags;
    return -EOPNOTSUPP;
  }
  virtual ssize_t recvmsg(msghdr* msg, int flags) = 0;
  virtual int ioctl(unsigned long request, void* arg) = 0;
  // The fd's O_NONBLOCK changed (fcntl F_SETFL or ioctl FIONBIO on the shadow socket).
  virtual void set_nonblock(bool nonblock) = 0;
  // Readiness as far as the stack knows it (kernel: proto_ops.poll, e.g. udp_poll()): POLL* bits
  // for data queued here, send space, an error held here, shutdown. The kernel socket behind the
  // fd is polled by the caller for what it holds (error queue, datagrams it received itself).
  // *wait_fd: an fd that becomes readable when the device has frames for the stack (-1: none).
  // kPassThrough when the socket went back to the kernel.
  virtual int poll_mask(int* wait_fd) = 0;
  // poll_mask() as one step of a scan over many sockets (poll(), epoll_wait()): the stack instance
  // is looked at (frames moved into the sockets' queues, timers run) once per scan, by the first
  // member that reaches it, not once per member — with a listener and N connections in one epoll
  // set, N+1 looks each walking N connections' timers. The kernel's scan reads each socket's mask
  // (ep_item_poll()) without running the stack either. `scan` starts value-initialised.
  struct PollScan {
    const void* polled = nullptr;  // the stack instance looked at in this scan
  };
  virtual int poll_mask_scan(int* wait_fd, PollScan* scan) {
    (void)scan;
    return poll_mask(wait_fd);
  }
  // Changes whenever something arrived that the kernel would wake the socket's waiters for
  // (sk_data_ready(), sk_write_space(), sk_state_change()), as of the last poll_mask(): an
  // edge-triggered epoll entry reports the current mask again when it moved, even though the mask
  // itself did not (new data behind unread data; data read and more arrived between two scans).
  // 0 for a socket that does not count (its entries report rising bits only).
  virtual uint64_t poll_seq() const { return 0; }

  // Whether the kernel socket behind the fd tells anything about this socket's readiness (poll,
  // select, epoll merge the two): a UDP shadow may hold datagrams the kernel received itself; a TCP
  // connection's shadow is an unconnected kernel socket whose POLLHUP means nothing here.
  virtual bool kernel_readiness() const { return true; }

  // SO_BUSY_POLL's value (sk_ll_usec), read without the lock as sk_can_busy_loop() reads it:
  // poll/select busy-poll only for a set holding such a socket (kernel: sock_poll()'s POLL_BUSY_LOOP).
  uint32_t busy_poll_usec() const { return ll_usec_.load(std::memory_order_relaxed); }

  // The stack gave this socket back to the kernel for good: its fds pass straight through from
  // now on (the object lives until they are closed).
  bool handed_to_kernel() const { return kernel_.load(std::memory_order_acquire); }

  // The fd the socket reaches its kernel socket through (`from`) is being closed (close, or dup2 over
  // it) while `to` still names the socket: use `to` from now on. `from` is still open during the call
  // when the program closes it, already another file after a dup2.
  virtual void fd_moved(int from, int to) { (void)from, (void)to; }
  // accept() returned this socket and the interposer made `fd` (a kernel socket) to name it.
  virtual void adopt_fd(int fd) { (void)fd; }
  // More than one fd names it (dup).
  bool shared() const { return refs_.load(std::memory_order_acquire) > 1; }

  void get() { refs_.fetch_add(1, std::memory_order_relaxed); }
  // kernel: sock_release() on the last put.
  void put() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) release();
  }

 protected:
  void hand_to_kernel() { kernel_.store(true, std::memory_order_release); }
  void set_busy_poll_usec(uint32_t us) { ll_usec_.store(us, std::memory_order_relaxed); }
  virtual ~Socket() = default;
  // Called once, when the last fd naming this socket is closed. Usually `delete this`.
  virtual void release() = 0;

 private:
  std::atomic<uint32_t> refs_{1};
  std::atomic<bool> kernel_{false};
  std::atomic<uint32_t> ll_usec_{0};
};

}  // namespace xmit
