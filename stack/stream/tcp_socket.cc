// stack/stream/tcp_socket.cc — opening, listening, accepting, names, options, closing (see
// tcp_socket.h). The data path is tcp_socket_io.cc.
#include "stack/stream/tcp_socket.h"

#include <poll.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "stack/tcp/tcp_sendmsg.h"
#include "stack/tcp/tcp_user_frags.h"

#include <netinet/tcp.h>  // after the stack's headers: its macros (TCP_MSS_DEFAULT...) would rename their constants

namespace xmit {

TcpSocket::TcpSocket(TcpStack* stack, ShadowOps* shadow, int fd, bool nonblock, TcpConn* conn)
    : stack_(stack), shadow_(shadow), fd_(fd), nonblock_(nonblock), c_(conn) {
  c_->user = this;
  sk_sndbuf_ = stack_->options().wmem_default;
  if (fd_ >= 0) {
    // kernel: sock_init_data(): sk_ll_usec = net.core.busy_read (XMIT_BUSY_POLL's), sk_prefer_busy_poll
    // = 0 (a child's are its listener's: accept()).
    busy_.sk_ll_usec = stack_->options().busy_read;
    set_busy_poll_usec(busy_.sk_ll_usec);
  }
  if (c_->tp.sk_state != TCP_CLOSE) {  // an accepted child
    child_ = true;
    state_ = SockState::kConnected;
    tcp_sndbuf_expand();
  }
}

void TcpSocket::release() {
  {
    std::lock_guard<StackMutex> g(stack_->mu());
    if (!passthrough_ && !stack_->exiting()) {  // at exit the drain closed every connection
      TcpConn* c = c_;
      c->user = nullptr;
      if (c->tp.sk_state == TCP_CLOSE) {
        // Never connected, or already done() (reset, timed out): nothing to send.
        c->tp.sock_dead = true;
        stack_->conn_free(c);
      } else {
        // The orphan may send after close() returned and the program freed its buffers: the
        // MSG_ZEROCOPY bytes still queued are copied now (the kernel pinned them at the send), or,
        // with no buffer to copy them into, the connection is aborted (RST).
        // kernel: tcp_close(): FIN or RST per state; the connection lives on as an orphan until
        // done() frees it (TcpStack::done()).
        c->tp.tcp_mstamp = stack_->now_us();  // the FIN's send time and RTO (as close_all_at_exit())
        tcp_close_user_frags(&c->tp, stack_->dst_mtu(c), [this, c](sk_buff* s) { return stack_->xmit(c, s); },
                             stack_);
      }
      stack_->base().dev().flush_tx();
    }
    // kernel: sock_orphan() — no notification is queued after close; the completion objects still
    // held by skbs keep the state alive until they complete.
    if (zc_ != nullptr) zc_->orphan();
    zc_ = nullptr;
  }
  delete this;
}

int TcpSocket::pass_through(be32 daddr, const char* why) {
  shadow_disconnect();  // the kernel serves it from here: a closed socket, as it would have it
  passthrough_ = true;
  hand_to_kernel();
  shadow_->note_pass_through(fd_, daddr, why);
  c_->user = nullptr;
  c_->tp.sock_dead = true;
  stack_->conn_free(c_);
  c_ = nullptr;
  return kPassThrough;
}

namespace {
// The payload bytes of `q`'s skbs from sequence number `from` on, appended to *out (stopping at a
// gap or a FIN). kernel: what CRIU reads from TCP_REPAIR_QUEUE with recvmsg(MSG_PEEK).
void queue_bytes(const SkbQueue& q, uint32_t from, std::vector<uint8_t>* out) {
  for (const sk_buff* skb = q.head; skb != nullptr; skb = skb->next) {
    const tcp_skb_cb* tcb = TCP_SKB_CB(skb);
    if (tcb->tcp_flags & (TCPHDR_SYN | TCPHDR_FIN)) return;
    uint32_t off = from - tcb->seq;
    if (static_cast<int32_t>(off) < 0) return;  // a gap
    if (off >= skb->len) continue;
    size_t at = out->size();
    out->resize(at + (skb->len - off));
    skb_copy_bits(skb, off, out->data() + at, skb->len - off);
    from += skb->len - off;
  }
}
}  // namespace

int TcpSocket::to_kernel() {
  if (passthrough_ || c_ == nullptr || listening_.load(std::memory_order_relaxed)) return 0;
  const int r = to_kernel_repair();
  if (r <= 0) shadow_unconnect_for_fork();
  return r;
}

// At fork(), a connection that stays in this process's stack: its kernel socket, which the child
// shares, must not stay a deferred connect — a send on it (the child's, or an exec'd program's)
// would send a SYN with data on the connection's 4-tuple (tcp_sendmsg_fastopen()), and the peer's
// challenge ACK, answered with a reset, can end the connection. Back to closed, as the unconnected
// socket the child is documented to get, the port bound again so the kernel keeps it (bind() may
// refuse it when other 4-tuples' TIME_WAITs share its bucket: it is then the kernel's to give).
void TcpSocket::shadow_unconnect_for_fork() {
  if (shadow_conn_ == ShadowConn::kNone) return;
  const bool bound = shadow_conn_ == ShadowConn::kBound;
  shadow_conn_ = ShadowConn::kNone;
  (void)shadow_->disconnect(fd_, fastopen_opts());
  if (!bound) {
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = c_->tp.saddr;
    src.sin_port = c_->inet.inet_sport;
    (void)shadow_->bind(fd_, reinterpret_cast<const sockaddr*>(&src), sizeof src);
  }
}

int TcpSocket::to_kernel_repair() {
  tcp_sock& tp = c_->tp;
  if (tp.sk_state != TCP_ESTABLISHED) return 0;
  std::vector<uint8_t> rcvq, sendq;
  queue_bytes(tp.receive_queue, tp.copied_seq, &rcvq);
  queue_bytes(tp.rtx_queue, tp.snd_una, &sendq);
  queue_bytes(tp.write_queue, tp.snd_una + static_cast<uint32_t>(sendq.size()), &sendq);
  const uint32_t sent = tp.snd_nxt - tp.snd_una;
  if (rcvq.size() != tp.rcv_nxt - tp.copied_seq || sendq.size() != tp.write_seq - tp.snd_una || sent > sendq.size()) {
    return -EPROTO;  // not the queues this expects: leave the connection where it is
  }
  TcpRepairState st{.saddr = tp.saddr, .daddr = tp.daddr, .sport = tp.sport, .dport = tp.dport,
                    .snd_una = tp.snd_una, .copied_seq = tp.copied_seq, .mss_clamp = tp.rx_opt.mss_clamp,
                    .wscale_ok = tp.rx_opt.wscale_ok, .sack_ok = tp.rx_opt.sack_ok,
                    .tstamp_ok = tp.rx_opt.tstamp_ok, .snd_wscale = tp.rx_opt.snd_wscale,
                    .rcv_wscale = tp.rx_opt.rcv_wscale,
                    .tsval = static_cast<uint32_t>(stack_->now_us() / 1000) + tp.tsoffset,
                    .snd_wl1 = tp.snd_wl1, .snd_wnd = tp.snd_wnd, .max_window = tp.max_window,
                    .rcv_wnd = tp.rcv_wnd, .rcv_wup = tp.rcv_wup,
                    .shadow_deferred = shadow_conn_ != ShadowConn::kNone,
                    .shadow_bound = shadow_conn_ == ShadowConn::kBound,
                    .fastopen_connect = fastopen_connect_,
                    // (pointer and length, not first()/subspan(): those may throw, from an abseil
                    // library libxmit.so does not link)
                    .rcvq = absl::MakeConstSpan(rcvq),
                    .sentq = absl::MakeConstSpan(sendq.data(), sent),
                    .unsent = absl::MakeConstSpan(sendq.data() + sent, sendq.size() - sent)};
  if (int err = shadow_->tcp_repair(fd_, st); err != 0) return err;
  passthrough_ = true;
  hand_to_kernel();
  stack_->moved_to_kernel(c_);
  c_ = nullptr;
  return 1;
}

void TcpSocket::connections_to_kernel(TcpStack* stack, int* moved, int* failed) {
  stack->listeners_to_kernel();  // first: a child riding on its listener's rule gets its own
  for (TcpConn* c : stack->conns()) {
    if (c->user == nullptr) continue;
    int r = c->user->to_kernel();
    if (r > 0) ++*moved;
    if (r < 0) ++*failed;
  }
  stack->base().dev().flush_tx();
}

int TcpSocket::mirror_name() {
  sockaddr_in sin{};
  socklen_t len = sizeof sin;
  int err = shadow_->getname(fd_, reinterpret_cast<sockaddr*>(&sin), &len, false);
  if (err != 0) return err;
  c_->inet.inet_saddr = sin.sin_addr.s_addr;
  c_->inet.inet_sport = sin.sin_port;
  c_->tp.saddr = sin.sin_addr.s_addr;
  c_->tp.sport = be16_to_cpu(sin.sin_port);
  return 0;
}

int TcpSocket::bind(const sockaddr* addr, socklen_t len) {
  std::lock_guard<StackMutex> g(stack_->mu());
  if (passthrough_) return kPassThrough;
  shadow_settle();
  int err = shadow_->bind(fd_, addr, len);  // the kernel's errnos; it reserves the port
  if (err != 0) return err;
  sockaddr_in sin{};
  std::memcpy(&sin, addr, std::min<size_t>(len, sizeof sin));
  bindport_lock_ = sin.sin_port != 0;  // kernel: __inet_bind(): SOCK_BINDPORT_LOCK "if (snum)"
  return mirror_name();
}

// kernel: __inet_stream_connect() + tcp_v4_connect()
int TcpSocket::connect(const sockaddr* addr, socklen_t len, bool nonblock) {
  Lock lk(stack_->mu());
  if (passthrough_) return kPassThrough;
  if (addr == nullptr || len < sizeof(sa_family_t)) return addr == nullptr && len > 0 ? -EFAULT : -EINVAL;
  tcp_sock* tp = &c_->tp;
  if (addr->sa_family == AF_UNSPEC) {
    // kernel: tcp_disconnect(): a reset to the peer unless closed or listening. Not supported
    // beyond the states that need nothing sent.
    if (tp->sk_state != TCP_CLOSE) return -EOPNOTSUPP;
    shadow_disconnect();
    state_ = SockState::kUnconnected;
    return 0;
  }
  sockopts_.reset();  // the options kept for children: a connecting socket has none
  switch (state_) {
    case SockState::kConnected: return -EISCONN;
    case SockState::kConnecting:
      if (tp->sk_state == TCP_CLOSE) {  // a failed non-blocking connect: its error, once
        state_ = SockState::kUnconnected;
        int e = tcp_sock_error(tp);
        return e != 0 ? -e : -ECONNABORTED;
      }
      if (tp->sk_state == TCP_ESTABLISHED || tp->sk_state == TCP_CLOSE_WAIT) {
        state_ = SockState::kConnected;
        return -EISCONN;
      }
      if (nonblock) return -EALREADY;
      break;  // a blocking connect() waits on
    case SockState::kUnconnected: {
      if (tp->sk_state != TCP_CLOSE) return -EISCONN;
      if (len < sizeof(sockaddr_in)) return -EINVAL;  // kernel: tcp_v4_connect()
      if (addr->sa_family != AF_INET) return -EAFNOSUPPORT;
      // A connection that failed: the kernel's tcp_done() freed its port unless bound.
      shadow_disconnect();
      sockaddr_in sin;
      std::memcpy(&sin, addr, sizeof sin);
      int r = stack_->route_connect(c_, sin.sin_addr.s_addr);
      if (r < 0) return r == -EINVAL ? -ENETUNREACH : r;
      if (r > 0) return pass_through(sin.sin_addr.s_addr, "does not leave through the interface");
      uint32_t kernel_ts_off = 0;
      const int kernel_port =
          kernel_hash_connect(sin.sin_addr.s_addr, be16_to_cpu(sin.sin_port), nonblock, &kernel_ts_off);
      if (kernel_port < 0) return kernel_port;
      if (kernel_port > 0 && tp->sport == 0) {
        if (int err = hash_connect(sin.sin_addr.s_addr, be16_to_cpu(sin.sin_port)); err != 0) return err;
      } else if (kernel_port > 0 && stack_->established(c_->inet.inet_saddr, tp->sport, sin.sin_addr.s_addr,
                                                        be16_to_cpu(sin.sin_port))) {
        return -EADDRNOTAVAIL;  // kernel: __inet_hash_connect()'s check_established() on a bound port
      }
      tp->saddr = c_->inet.inet_saddr;
      tp->daddr = sin.sin_addr.s_addr;
      tp->dport = be16_to_cpu(sin.sin_port);
      c_->inet.inet_daddr = sin.sin_addr.s_addr;
      c_->inet.inet_dport = sin.sin_port;
      c_->inet.inet_id = shadow_->random_u16();  // kernel: get_random_u16()
      if (int err = stack_->ehash(c_); err != 0) {  // steered before the SYN leaves
        shadow_disconnect();
        return err;
      }
      tp->tcp_mstamp = stack_->now_us();
      tcp_v4_connect_seq(tp, stack_);
      if (kernel_port == 0) tp->tsoffset = kernel_ts_off;  // the host's clock for this 4-tuple
      if (int err = tcp_connect(tp, stack_->dst_mtu(c_), [this](sk_buff* s) { return stack_->xmit(c_, s); });
          err != 0) {
        stack_->unhash(c_);
        shadow_disconnect();
        return err;
      }
      ++stack_->mib.ActiveOpens;
      stack_->base().dev().flush_tx();
      state_ = SockState::kConnecting;
      if (nonblock) return -EINPROGRESS;
      break;
    }
  }
  // kernel: inet_wait_for_connect() with sk_sndtimeo; out of time: -EINPROGRESS.
  const uint64_t deadline = sndtimeo_ns_ != 0 ? now_ns() + sndtimeo_ns_ : 0;
  while (tp->sk_state == TCP_SYN_SENT || tp->sk_state == TCP_SYN_RECV) {
    int err = wait(lk, deadline, false);
    if (passthrough_) return kPassThrough;
    if (err == -EAGAIN) return -EINPROGRESS;
    if (err == -EINTR) return -EINTR;
  }
  if (tp->sk_state == TCP_CLOSE) {
    state_ = SockState::kUnconnected;
    int e = tcp_sock_error(tp);
    return e != 0 ? -e : -ECONNABORTED;
  }
  state_ = SockState::kConnected;
  tcp_sndbuf_expand();
  return 0;
}

// The kernel's own choice, taken by the kernel socket itself (ShadowOps::connect_deferred(): its
// connect() with the SYN deferred): the port its connect() takes for this destination — one whose
// bind bucket holds TIME_WAITs of other 4-tuples too, which bind() could not take, so after a
// kernel client's churn (wrk's, which closes first) most of them — or the bound one, and its
// timestamp offset for that 4-tuple, so that this connection continues the host's. A peer that
// still holds the 4-tuple in TIME_WAIT from an earlier connection of the host (a kernel socket's,
// another process's) takes the new SYN for its newer timestamp (tcp_timewait_state_process()); a
// timestamp on this stack's own key is older half the time, the SYN dropped (TcpExtPAWSTimewait)
// and sent again a second later (wrk churning under xmit right after a kernel wrk: 34-1034
// requests/s instead of about 6000). The kernel socket then holds the 4-tuple for as long as the
// fd is open, as the connection's own would. 0 with it connected, 1 when the kernel cannot tell
// (the stack chooses), or -errno: the kernel's (EADDRNOTAVAIL: no port left, a bound port's
// 4-tuple in use).
int TcpSocket::kernel_hash_connect(be32 daddr, uint16_t dport, bool nonblock, uint32_t* ts_off) {
  const be32 saddr = c_->inet.inet_saddr;
  const bool bound = c_->tp.sport != 0;  // bind(addr, port) or bind(addr, 0): the port is fixed
  // The kernel's __inet_hash_connect() walks the whole range past 4-tuples in use; those of this
  // stack's TIME_WAITs it cannot see, and each answer starts after the last (table_perturb), so a
  // run of them (the ports of this process's earlier connections, in the order the kernel gave
  // them) takes a try each: 16 at most (~9 system calls a try), then the stack's own choice, whose
  // offset is not the kernel's (wrk churning under xmit right after a kernel wrk, one server port:
  // with 2 tries one such SYN dropped as PAWS in 5 s, with 16 none).
  constexpr int kTries = 16;
  for (int tries = 0; tries < kTries; ++tries) {
    uint16_t port = 0;
    int r = shadow_->connect_deferred(fd_, saddr, daddr, dport, nonblock, fastopen_opts(), &port, ts_off);
    if (r == -EOPNOTSUPP || r == 1) return 1;
    if (r < 0) return r;
    shadow_conn_ = bindport_lock_ ? ShadowConn::kBound : ShadowConn::kEphemeral;
    c_->inet.inet_sport = cpu_to_be16(port);
    c_->tp.saddr = saddr;
    c_->tp.sport = port;
    // A TIME_WAIT of this stack (the kernel does not see it) on the 4-tuple: the kernel's next
    // choice, as its check_established() would move on; a bound port has no other (and the
    // kernel's failed connect frees one bind(addr, 0) chose: tcp_v4_connect()'s failure path).
    if (stack_->established(saddr, port, daddr, dport)) {
      shadow_disconnect();
      c_->inet.inet_saddr = saddr;  // the route's, which the kernel socket's disconnect forgot
      if (bound) return -EADDRNOTAVAIL;
      continue;
    }
    return 0;
  }
  return 1;
}

// The kernel socket back to closed (after a connection that failed, or one that could not start):
// its port freed unless bound, as the kernel's tcp_set_state(TCP_CLOSE) frees it (its
// getsockname() still says the freed port: inet_put_port() leaves inet_sport).
void TcpSocket::shadow_disconnect() {
  if (shadow_conn_ == ShadowConn::kNone) return;
  const bool bound = shadow_conn_ == ShadowConn::kBound;
  shadow_conn_ = ShadowConn::kNone;
  (void)shadow_->disconnect(fd_, fastopen_opts());
  (void)mirror_name();
  if (!bound) {
    c_->inet.inet_sport = 0;
    c_->tp.sport = 0;
  }
}

// kernel: tcp_done() frees a failed connection's port at once (unless bound by number) and leaves
// a closed socket that bind(), listen() and setsockopt() take as any other; here the kernel
// socket's deferred connect is undone when the next such call finds the connection closed.
void TcpSocket::shadow_settle() {
  if (shadow_conn_ != ShadowConn::kNone && c_->tp.sk_state == TCP_CLOSE) shadow_disconnect();
}

// kernel: __inet_hash_connect(): the ports of ip_local_port_range from the destination's offset
// (TcpStack::table_perturb()), those of the range's low parity first (bind(0) prefers the other),
// skipping the reserved ones. A port is
// taken when the shadow may bind it (no kernel socket holds it: the kernel keeps it reserved for
// as long as the fd is open) and no connection of this stack — a TIME_WAIT one that outlived its
// fd — has the same 4-tuple (check_established()). -EADDRNOTAVAIL when none is left.
int TcpSocket::hash_connect(be32 daddr, uint16_t dport) {
  const TcpStackOptions& o = stack_->options();
  const uint32_t low = o.port_low, high = uint32_t{o.port_high} + 1;
  uint32_t remaining = high > low ? high - low : 1;
  if (remaining > 1) remaining &= ~1u;
  uint32_t hash_high = 0;
  uint32_t& perturb = stack_->table_perturb(c_->inet.inet_saddr, daddr, dport, &hash_high);
  uint32_t offset = (perturb + hash_high) % remaining;
  offset &= ~1u;
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = c_->inet.inet_saddr;
  for (int pass = 0; pass < 2; ++pass, ++offset) {
    uint32_t port = low + offset;
    for (uint32_t i = 0; i < remaining; i += 2, port += 2) {
      if (port >= high) port -= remaining;
      if (stack_->reserved_port(port) || stack_->established(src.sin_addr.s_addr, port, daddr, dport)) continue;
      src.sin_port = cpu_to_be16(port);
      int err = shadow_->bind(fd_, reinterpret_cast<const sockaddr*>(&src), sizeof src);
      if (err == -EADDRINUSE) continue;
      if (err != 0) return err;
      perturb += std::max<uint32_t>(i, (shadow_->random_u16() & 7u) * 2) + 2;
      c_->inet.inet_sport = src.sin_port;
      c_->tp.saddr = src.sin_addr.s_addr;
      c_->tp.sport = static_cast<uint16_t>(port);
      return 0;
    }
    if (remaining <= 1) break;
  }
  return -EADDRNOTAVAIL;
}

// kernel: inet_listen()
int TcpSocket::listen(int backlog) {
  std::lock_guard<StackMutex> g(stack_->mu());
  if (passthrough_) return kPassThrough;
  tcp_sock* tp = &c_->tp;
  if (state_ != SockState::kUnconnected || (tp->sk_state != TCP_CLOSE && tp->sk_state != TCP_LISTEN)) return -EINVAL;
  shadow_settle();
  // The kernel socket listens too: it autobinds an unbound socket, and takes what the stack does
  // not see (loopback; anything not steered).
  if (int err = shadow_->listen(fd_, backlog); err != 0) return err;
  return listen_start(backlog);
}

int TcpSocket::listen_start(int backlog) {
  tcp_sock* tp = &c_->tp;
  if (int err = mirror_name(); err != 0) return err;
  if (tp->saddr != 0 && tp->saddr != stack_->base().if_addr()) {
    return pass_through(tp->saddr, "bound to an address not on the interface");
  }
  // kernel: sk_max_ack_backlog = min(backlog, somaxconn) (__sys_listen() clamps).
  if (int err = inet_csk_listen_start(tp, std::min(backlog, SOMAXCONN_DEFAULT)); err != 0) return err;
  if (int err = stack_->lhash(c_); err != 0) {
    // The device cannot steer the port: the kernel's listener serves it alone.
    return pass_through(tp->saddr, "the device refused to steer the port");
  }
  listening_.store(true, std::memory_order_release);
  return 0;
}

int TcpSocket::adopt_listener(TcpStack* stack, ShadowOps* shadow, int fd, int backlog, bool nonblock,
                              const SockOptRecord& opts, Socket** out) {
  TcpConn* c;
  {
    std::lock_guard<StackMutex> g(stack->mu());
    c = stack->conn_alloc();
  }
  if (c == nullptr) return -ENOMEM;
  auto* s = new (std::nothrow) TcpSocket(stack, shadow, fd, nonblock, c);
  if (s == nullptr) {
    std::lock_guard<StackMutex> g(stack->mu());
    stack->conn_free(c);
    return -ENOMEM;
  }
  // A listener adopted from the kernel keeps the busy-polling values it had.
  int v = 0;
  socklen_t len = sizeof v;
  if (shadow->getsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &v, &len) == 0 && v >= 0) s->busy_.sk_ll_usec = static_cast<uint32_t>(v);
  len = sizeof v;
  if (shadow->getsockopt(fd, SOL_SOCKET, SO_PREFER_BUSY_POLL, &v, &len) == 0) s->busy_.sk_prefer_busy_poll = v != 0;
  s->set_busy_poll_usec(s->busy_.sk_ll_usec);
  // Each set again: the kernel keeps its value, the stack mirrors it, the children inherit it.
  for (const SockOptRecord::Opt& o : opts) (void)s->setsockopt(o.level, o.name, o.val, o.len);
  int r;
  {
    std::lock_guard<StackMutex> g(stack->mu());
    r = s->c_->tp.sk_state == TCP_CLOSE ? s->listen_start(backlog) : -EINVAL;
  }
  if (r != 0) {
    s->put();
    return r == kPassThrough ? -EADDRNOTAVAIL : r;
  }
  *out = s;
  return 0;
}

// kernel: inet_accept() -> inet_csk_accept()
int TcpSocket::accept(Socket** newsock, sockaddr* addr, socklen_t* len, int flags) {
  Lock lk(stack_->mu());
  if (passthrough_) return kPassThrough;
  *newsock = nullptr;
  if (c_->tp.sk_state != TCP_LISTEN) return -EINVAL;
  const uint64_t deadline = rcvtimeo_ns_ != 0 ? now_ns() + rcvtimeo_ns_ : 0;
  for (;;) {
    poll_stack();
    if (tcp_sock* child = inet_csk_accept(&c_->tp)) {
      TcpConn* cc = tcp_conn(child);
      auto* s = new (std::nothrow) TcpSocket(stack_, shadow_, -1, (flags & SOCK_NONBLOCK) != 0, cc);
      if (s == nullptr) {
        cc->tp.sock_dead = true;
        cc->tp.tcp_mstamp = stack_->now_us();
        tcp_close(child, stack_->dst_mtu(cc), [this, cc](sk_buff* sk) { return stack_->xmit(cc, sk); }, stack_);
        return -ENOMEM;
      }
      s->sock_zerocopy_ = sock_zerocopy_;  // kernel: sk_clone_lock() copies sk_flags
      if (!sockopts_.empty()) s->sockopts_ = sockopts_;  // for the child's kernel socket (adopt_fd())
      s->busy_ = busy_;                    // and sk_ll_usec, sk_prefer_busy_poll, sk_busy_poll_budget
      s->set_busy_poll_usec(busy_.sk_ll_usec);
      if (addr != nullptr && len != nullptr) {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = child->daddr;
        sin.sin_port = cpu_to_be16(child->dport);
        std::memcpy(addr, &sin, std::min<size_t>(*len, sizeof sin));
        *len = sizeof sin;
      }
      *newsock = s;
      return 0;
    }
    int kfd = shadow_->accept(fd_, addr, len, flags);  // one the kernel accepted itself
    if (kfd != -EAGAIN) return kfd;
    if (nonblock_) return -EAGAIN;  // the listener's O_NONBLOCK (flags are the new fd's)
    int err = wait(lk, deadline, true);
    if (passthrough_) return kPassThrough;
    if (err != 0) return err;
  }
}

int TcpSocket::getname(sockaddr* addr, socklen_t* len, bool peer) {
  std::lock_guard<StackMutex> g(stack_->mu());
  if (passthrough_) return kPassThrough;
  const tcp_sock& tp = c_->tp;
  // The local name of a socket not connected (or listening) is the shadow's bind; a connection's is
  // its own (a shadow bound to INADDR_ANY would say 0.0.0.0).
  const bool connection = child_ || state_ != SockState::kUnconnected || tp.sk_state != TCP_CLOSE;
  if (!peer && (!connection || tp.sk_state == TCP_LISTEN)) return shadow_->getname(fd_, addr, len, false);
  // kernel: inet_getname(): the peer only while connected — not once the connection has ended
  // (CLOSE after a reset or after TIME_WAIT took the 4-tuple); the local name stays.
  if (peer && (tp.dport == 0 || tp.sk_state == TCP_CLOSE || tp.sk_state == TCP_SYN_SENT)) return -ENOTCONN;
  if (len == nullptr) return -EFAULT;
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = peer ? tp.daddr : tp.saddr;
  sin.sin_port = cpu_to_be16(peer ? tp.dport : tp.sport);
  if (static_cast<int>(*len) < 0) return -EINVAL;
  std::memcpy(addr, &sin, std::min<size_t>(*len, sizeof sin));
  *len = sizeof sin;
  return 0;
}

// kernel: inet_shutdown()
int TcpSocket::shutdown(int how) {
  std::lock_guard<StackMutex> g(stack_->mu());
  if (passthrough_) return kPassThrough;
  TcpConn* c = c_;
  c->tp.tcp_mstamp = stack_->now_us();  // the FIN's send time and RTO
  int err = tcp_shutdown(&c->tp, how, stack_->dst_mtu(c), [this, c](sk_buff* s) { return stack_->xmit(c, s); }, stack_);
  stack_->base().dev().flush_tx();
  return err;
}

// An accepted child's fd: a new kernel socket, given the options its listener had (the kernel's
// child is the listener's clone, sk_clone_lock()); through setsockopt(), so the stack's copy of
// each (timeouts, buffer sizes, SO_LINGER, ...) is the socket's own too. The kernel calls are made
// without the stack's lock (they touch only the new kernel socket), in the listener's order, each
// read back as setsockopt() reads it; the stack's side then takes them all in one hold of the lock,
// as one setsockopt() after another would have.
void TcpSocket::adopt_fd(int fd) {
  SockOptRef inherited;
  {
    std::lock_guard<StackMutex> g(stack_->mu());
    fd_ = fd;
    inherited = std::move(sockopts_);
  }
  const SockOptRecord* rec = inherited.get();
  if (rec == nullptr || rec->empty()) return;
  static_assert(SockOptRecord::kMax <= 32, "took has a bit per option");
  KernelValue kv[SockOptRecord::kMax];
  uint32_t took = 0;  // bit i: the kernel took the record's option i
  int i = 0;
  for (const SockOptRecord::Opt& o : *rec) {
    if (shadow_->setsockopt(fd, o.level, o.name, o.val, o.len) == 0) {
      took |= 1u << i;
      kv[i] = sockopt_readback(fd, o.level, o.name);
    }
    ++i;
  }
  std::lock_guard<StackMutex> g(stack_->mu());
  if (passthrough_) return;
  i = 0;
  for (const SockOptRecord::Opt& o : *rec) {
    if (took & (1u << i)) setsockopt_mirror(o.level, o.name, o.val, o.len, kv[i]);
    ++i;
  }
}

void TcpSocket::fd_moved(int from, int to) {
  std::lock_guard<StackMutex> g(stack_->mu());
  if (fd_ == from) fd_ = to;
}

}  // namespace xmit
