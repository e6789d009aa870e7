// stack/stream/tcp_socket_io.cc — sending, receiving, waiting, readiness, options (see
// tcp_socket.h).
#include <poll.h>
#include <signal.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <new>

#include "stack/sock/msghdr.h"
#include "stack/stream/tcp_socket.h"
#include "stack/tcp/tcp_cong.h"
#include "stack/tcp/tcp_info.h"
#include "stack/tcp/tcp_mss.h"
#include "stack/tcp/tcp_recvmsg.h"
#include "stack/tcp/tcp_urg.h"
#include "stack/tcp/tcp_sendmsg.h"
#include "stack/tcp/tcp_timer.h"

#include <netinet/tcp.h>  // after the stack's headers: its macros (TCP_MSS_DEFAULT...) would rename their constants

namespace xmit {

namespace {

constexpr uint64_t kSliceNs = 50'000'000;  // the longest sleep before looking again (frames
                                           // another thread took off the device for us)
constexpr uint32_t kTcpWmemMax = 4194304;  // net.ipv4.tcp_wmem[2]

uint32_t roundup_pow_of_two(uint32_t v) {
  uint32_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

uint64_t timeo_ns(const void* val, socklen_t len) {
  timeval tv{};
  std::memcpy(&tv, val, std::min<size_t>(len, sizeof tv));
  return static_cast<uint64_t>(tv.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(tv.tv_usec) * 1000u;
}

}  // namespace

// Frames the poll sends (ACKs, SYN-ACKs, what timers and completions release) leave with one
// doorbell at its end, not one each: the lock is held throughout, so nothing waits for another
// thread, and nothing outlives the poll. kernel: the xmit_more a NAPI poll's bulk gives the driver.
void TcpSocket::poll_stack() {
  XmitMoreScope burst(stack_->base().dev());
  stack_->base().poll(shadow_->now_ns());
}

int TcpSocket::wait(Lock& lk, uint64_t deadline_ns, bool shadow) {
  // A burst of ours (XmitMoreScope) pauses while the lock is free: other threads' frames go at once.
  Netdev& dev = stack_->base().dev();
  dev.flush_tx();
  const uint64_t now = now_ns();
  if (deadline_ns != 0 && now >= deadline_ns) return -EAGAIN;
  const bool more = dev.xmit_more();
  dev.set_xmit_more(false);
  uint64_t until = std::min(now + kSliceNs, stack_->next_timer_ns());
  if (deadline_ns != 0) until = std::min(until, deadline_ns);
  const int ms = until <= now ? 0 : static_cast<int>((until - now + 999'999) / 1'000'000);
  const int dev_fd = stack_->base().dev().wait_fd();
  std::atomic<int>& sleepers = stack_->base().rx_sleepers;
  sleepers.fetch_add(1, std::memory_order_acq_rel);  // before the unlock: see UdpStack::rx_sleepers
  lk.unlock();
  int err = shadow_->wait(shadow ? fd_ : -1, dev_fd, ms);
  lk.lock();
  dev.set_xmit_more(more);
  sleepers.fetch_sub(1, std::memory_order_acq_rel);
  if (!passthrough_) poll_stack();
  // kernel: sock_intr_errno(): a wait without a timeout restarts when the handler has SA_RESTART.
  if (err == -EINTR) return deadline_ns == 0 && shadow_->signal_restarts() ? 0 : -EINTR;
  return 0;
}

void TcpSocket::busy_loop(Lock& lk) {
  Netdev& dev = stack_->base().dev();
  dev.flush_tx();  // the request goes before the reply is awaited
  const bool more = dev.xmit_more();
  dev.set_xmit_more(false);  // no burst of ours held while the lock is free (as wait())
  const tcp_sock* tp = &c_->tp;
  uint64_t (*clock)() = stack_->options().clock_ns;
  UdpStack& base = stack_->base();
  ++base.busy_polls;
  auto poll = [this, &base] {
    XmitMoreScope burst(base.dev());
    base.busy_poll_rx_packets += std::max(base.poll(shadow_->now_ns()), 0);
  };
  sk_busy_loop(lk, base.rx_sleepers, clock() + uint64_t{busy_.sk_ll_usec} * 1000, clock, poll,
               [this, tp] {
                 return passthrough_ || tp->rcv_nxt != tp->copied_seq || tp->sk_err != 0 ||
                        (tp->sk_shutdown & RCV_SHUTDOWN) || tp->sk_state != TCP_ESTABLISHED;
               });
  dev.set_xmit_more(more);
}

// kernel: tcp_sndbuf_expand() — room for twice the congestion window of worst-case skbs, unless
// the user set SO_SNDBUF.
void TcpSocket::tcp_sndbuf_expand() {
  if (sndbuf_locked_) return;
  const tcp_sock& tp = c_->tp;
  uint32_t per_mss = std::max<uint32_t>(tp.rx_opt.mss_clamp == 0xffff ? 0 : tp.rx_opt.mss_clamp, tp.mss_cache) +
                     MAX_TCP_HEADER + 320;  // + SKB_DATA_ALIGN(sizeof(struct skb_shared_info))
  per_mss = roundup_pow_of_two(per_mss) + 256;  // + SKB_DATA_ALIGN(sizeof(struct sk_buff))
  uint32_t nr_segs = std::max<uint32_t>(10, tp.snd_cwnd);
  uint32_t sndmem = 2 * nr_segs * per_mss;
  if (sk_sndbuf_ < sndmem) sk_sndbuf_ = std::min(sndmem, kTcpWmemMax);
  c_->tp.sndbuf = sk_sndbuf_;
}

uint32_t TcpSocket::sk_stream_wspace() const {
  const tcp_sock& tp = c_->tp;
  uint32_t queued = tp.write_seq - tp.snd_una;
  return sk_sndbuf_ > queued ? sk_sndbuf_ - queued : 0;
}

// What the copy may take now. kernel: tcp_sendmsg_locked() fills the tail skb to size_goal
// whatever the memory, and checks sk_stream_memory_free() only before it starts a new skb, which
// it then fills to size_goal too: the room is the tail's free space, plus, while the buffer is not
// full, whole skbs until it is.
size_t TcpSocket::send_room(int flags) {
  tcp_sock* tp = &c_->tp;
  uint32_t size_goal = 0;
  tcp_send_mss(tp, stack_->dst_mtu(c_), flags, &size_goal);
  if (size_goal == 0) size_goal = tp->mss_cache;
  size_t tail_space = 0;
  if (const sk_buff* tail = tcp_write_queue_tail(tp); tail != nullptr && !TCP_SKB_CB(tail)->eor && tail->len < size_goal) {
    tail_space = size_goal - tail->len;
  }
  const size_t free = sk_stream_wspace();
  size_t room = free <= tail_space ? tail_space : tail_space + (free - tail_space + size_goal - 1) / size_goal * size_goal;
  // sk_stream_memory_free()'s second test (TCP_NOTSENT_LOWAT): a new skb while the bytes not yet
  // sent, the tail filled, stay under the limit.
  const uint64_t lowat = tcp_notsent_lowat(tp);
  const uint64_t notsent = uint64_t{tp->write_seq - tp->snd_nxt} + tail_space;
  const uint64_t more = notsent >= lowat ? 0 : (lowat - notsent + size_goal - 1) / size_goal * size_goal;
  return std::min<uint64_t>(room, tail_space + more);
}

// kernel: sk_stream_error(): EPIPE (unless another error is held) raises SIGPIPE unless MSG_NOSIGNAL.
int TcpSocket::sk_stream_error(int flags, int err) {
  if (err == -EPIPE) {
    int e = tcp_sock_error(&c_->tp);
    err = e != 0 ? -e : -EPIPE;
  }
  if (err == -EPIPE && !(flags & MSG_NOSIGNAL)) ::raise(SIGPIPE);
  return err;
}

ssize_t TcpSocket::sendmsg(const msghdr* umsg, int flags) {
  SendArgsCtx actx;
  actx.optmem_max = static_cast<int>(stack_->options().optmem_max);  // sock_kmalloc() of a long control buffer
  Kmsg kmsg;
  int err = sys_sendmsg_prepare(umsg, static_cast<unsigned>(flags), &kmsg, actx);
  Lock lk(stack_->mu());
  if (passthrough_) return kPassThrough;
  if (err != 0) return err;
  // kernel: tcp_sendmsg() ignores msg_name on a connected socket; on any other the state check
  // below answers (EPIPE).
  return tcp_sendmsg(kmsg.segs(), kmsg.iter_ubuf ? 1 : kmsg.nr_segs, kmsg.count, static_cast<int>(kmsg.msg_flags), lk);
}

ssize_t TcpSocket::sendto(const void* buf, size_t len, int flags, const sockaddr* to, socklen_t tolen) {
  SendArgsCtx actx;
  Kmsg kmsg;
  int err = sys_sendto_prepare(buf, len, static_cast<unsigned>(flags), to, static_cast<int>(tolen), &kmsg, actx);
  Lock lk(stack_->mu());
  if (passthrough_) return kPassThrough;
  if (err != 0) return err;
  return tcp_sendmsg(kmsg.segs(), 1, kmsg.count, static_cast<int>(kmsg.msg_flags), lk);
}

// kernel: tcp_sendmsg_locked() — the socket's part: wait for the connection, the error and
// shutdown checks, the send buffer and its wait (sk_stream_wait_memory()), the partial count.
// stack/tcp's tcp_sendmsg_locked() copies and pushes; it is called per iovec segment, the ones
// before the last with MSG_MORE so that only the last push may send a partial segment (the
// kernel's one call pushes once, at its end).
ssize_t TcpSocket::tcp_sendmsg(const iovec* iov, size_t nr_segs, size_t count, int flags, Lock& lk) {
  const ssize_t r = tcp_sendmsg_burst(iov, nr_segs, count, flags, lk);
  // The burst's doorbell rang: a tail autocorking held behind its segments goes now if the device
  // has completed them already (tcp_should_autocork()).
  if (!passthrough_) stack_->base().tx_complete_now();
  return r;
}

ssize_t TcpSocket::tcp_sendmsg_burst(const iovec* iov, size_t nr_segs, size_t count, int flags, Lock& lk) {
  // One doorbell per batch of segments (what this call and the ACKs it takes in send), not per
  // segment; rung at the end and before each wait.
  XmitMoreScope burst(stack_->base().dev());
  poll_stack();
  c_->tp.tcp_mstamp = stack_->now_us();
  // kernel: tcp_sendmsg_locked(): "if ((flags & MSG_ZEROCOPY) && size)" with SOCK_ZEROCOPY set, a
  // completion object before anything else (so ENOBUFS comes first); without SO_ZEROCOPY the flag
  // is ignored. "if (sk->sk_route_caps & NETIF_F_SG) zc = MSG_ZEROCOPY; else uarg->zerocopy = 0":
  // a device that reads user memory (verbs: registered) sends the caller's bytes in place; one that
  // sends only from the stack's buffers (AF_XDP's UMEM) gets a copy, and the notification says
  // COPIED, as the kernel's over veth or loopback.
  if (!(flags & MSG_ZEROCOPY) || count == 0 || !sock_zerocopy_) return tcp_sendmsg_copy(iov, nr_segs, count, flags, lk, nullptr);
  MsgZerocopy* zc = zerocopy();
  ubuf_info* uarg = zc != nullptr ? zc->realloc_stream(count, skb_zcopy(tcp_write_queue_tail(&c_->tp)),
                                                       /*copied=*/!c_->tp.sg_user)
                                  : nullptr;
  if (uarg == nullptr) return -ENOBUFS;
  ssize_t r = tcp_sendmsg_copy(iov, nr_segs, count, flags, lk, uarg);
  // kernel: out_nopush: net_zcopy_put(); out_err: net_zcopy_put_abort() (the id is given back).
  if (r > 0) {
    MsgZerocopy::put(uarg);
  } else {
    zc->put_abort(uarg);
  }
  return r;
}

// kernel: splice_to_socket() -> sock_sendmsg(MSG_SPLICE_PAGES) -> tcp_sendmsg_locked(): the same
// checks, waits and pushes as a copy from user memory; the bytes are pulled from `src` into the
// payload pages once the room for them is held, so none is taken from the source that the
// socket does not queue.
ssize_t TcpSocket::sendmsg_pull(PullSource* src, size_t len, int flags) {
  Lock lk(stack_->mu());
  if (passthrough_) return kPassThrough;
  ssize_t r;
  {
    XmitMoreScope burst(stack_->base().dev());
    poll_stack();
    c_->tp.tcp_mstamp = stack_->now_us();
    r = tcp_sendmsg_copy(nullptr, 0, len, flags, lk, nullptr, src);
  }
  if (!passthrough_) stack_->base().tx_complete_now();  // as tcp_sendmsg()
  return r;
}

int TcpSocket::wait_source(PullSource* src, Lock& lk) {
  Netdev& dev = stack_->base().dev();
  dev.flush_tx();
  const bool more = dev.xmit_more();
  dev.set_xmit_more(false);
  lk.unlock();
  const int e = src->wait(src->ctx);
  lk.lock();
  dev.set_xmit_more(more);
  if (!passthrough_) {
    poll_stack();
    c_->tp.tcp_mstamp = stack_->now_us();
  }
  return e;
}

MsgZerocopy* TcpSocket::zerocopy() {
  if (zc_ == nullptr) {
    zc_ = new (std::nothrow) MsgZerocopy();
    if (zc_ != nullptr) zc_->set_optmem_max(stack_->options().optmem_max);
  }
  return zc_;
}

ssize_t TcpSocket::tcp_sendmsg_copy(const iovec* iov, size_t nr_segs, size_t count, int flags, Lock& lk, ubuf_info* uarg,
                                    PullSource* src) {
  tcp_sock* tp = &c_->tp;
  TcpConn* c = c_;
  const bool nonblock = nonblock_ || (flags & MSG_DONTWAIT);
  const uint64_t deadline = !nonblock && sndtimeo_ns_ != 0 ? now_ns() + sndtimeo_ns_ : 0;
  // kernel: sk_stream_wait_connect()
  while (tp->sk_state == TCP_SYN_SENT || tp->sk_state == TCP_SYN_RECV) {
    if (tp->sk_err != 0) break;
    if (nonblock) return -EAGAIN;
    int err = wait(lk, deadline, false);
    if (passthrough_) return kPassThrough;
    if (err != 0) return err;
  }
  if (tp->sk_err != 0) return sk_stream_error(flags, -tcp_sock_error(tp));
  if (!(TCPF(tp->sk_state) & (TCPF(TCP_ESTABLISHED) | TCPF(TCP_CLOSE_WAIT)))) return sk_stream_error(flags, -EPIPE);
  if (tp->sk_shutdown & SEND_SHUTDOWN) return sk_stream_error(flags, -EPIPE);

  size_t copied = 0;
  size_t seg = 0, off = 0;
  auto out = [this, c](sk_buff* s) { return stack_->xmit(c, s); };
  while (copied < count) {
    size_t want = count - copied;
    if (src == nullptr) {
      while (seg < nr_segs && off == iov[seg].iov_len) ++seg, off = 0;
      if (seg == nr_segs) break;
      // kernel: the copy faults (skb_copy_to_page_nocache() -> do_fault): what was copied, else
      // -EFAULT. Only a null base is detected here (stack/ipv4/iov_iter.h says why); before this
      // check the process took SIGSEGV in the copy.
      if (iov[seg].iov_base == nullptr) return copied > 0 ? static_cast<ssize_t>(copied) : sk_stream_error(flags, -EFAULT);
      want = std::min(iov[seg].iov_len - off, want);
    }
    size_t room = send_room(flags);
    int r = -EAGAIN;
    if (room > 0) {
      size_t n = std::min(want, room);
      const bool last = copied + n == count;
      const int f = last ? flags : flags | MSG_MORE;
      r = src != nullptr ? tcp_sendmsg_locked_pull(tp, src, n, f, stack_->dst_mtu(c), out)
                         : tcp_sendmsg_locked(tp, static_cast<const uint8_t*>(iov[seg].iov_base) + off, n, f,
                                              stack_->dst_mtu(c), out, uarg);
    }
    if (src != nullptr && src->blocked) {
      // The source would have blocked (a file outside the page cache, on FUSE or NFS): what went
      // stays queued under our MSG_MORE, the source waits with the lock released — the kernel
      // reads the next pages under no socket lock and sends them in a new sock_sendmsg() — and
      // the socket is checked again as that sendmsg() checks it.
      if (r > 0) copied += static_cast<size_t>(r);
      src->blocked = false;
      int e = wait_source(src, lk);
      if (passthrough_) return copied > 0 ? static_cast<ssize_t>(copied) : kPassThrough;
      if (e < 0) {
        src->err = e;
        src->ended = true;
        r = 0;
      } else {
        if (tp->sk_err != 0 || !(TCPF(tp->sk_state) & (TCPF(TCP_ESTABLISHED) | TCPF(TCP_CLOSE_WAIT))) ||
            (tp->sk_shutdown & SEND_SHUTDOWN)) {
          if (copied > 0) return static_cast<ssize_t>(copied);
          if (tp->sk_err != 0) return sk_stream_error(flags, -tcp_sock_error(tp));
          return sk_stream_error(flags, -EPIPE);
        }
        continue;
      }
    }
    if (src != nullptr && src->ended) {
      // The source ended before `count` (a file's end, a pipe emptied, a read error): what went,
      // pushed as the last piece of the send (its MSG_MORE was ours, not the caller's).
      if (r > 0) copied += static_cast<size_t>(r);
      if (copied > 0 && !(flags & MSG_MORE)) {
        uint32_t size_goal = 0;
        const uint32_t mss_now = tcp_send_mss(tp, stack_->dst_mtu(c), flags, &size_goal);
        tcp_push(tp, flags, mss_now, tp->nonagle, size_goal, out);
      }
      if (copied == 0 && src->err != 0) return src->err;
      break;
    }
    if (r > 0) {
      copied += static_cast<size_t>(r);
      off += static_cast<size_t>(r);
      continue;
    }
    if (r != -EAGAIN) return copied > 0 ? static_cast<ssize_t>(copied) : sk_stream_error(flags, r);
    // kernel: wait_for_space: push what is queued (without MSG_MORE's cork), then
    // sk_stream_wait_memory().
    uint32_t size_goal = 0;
    const uint32_t mss_now = tcp_send_mss(tp, stack_->dst_mtu(c), flags, &size_goal);
    tcp_push(tp, flags & ~MSG_MORE, mss_now, TCP_NAGLE_PUSH, size_goal, out);
    if (nonblock) return copied > 0 ? static_cast<ssize_t>(copied) : -EAGAIN;
    // kernel: sk_stream_wait_memory() → sk_wait_event(): release_sock() first processes what
    // arrived meanwhile (the backlog: ACKs), and the sender sleeps only if that freed nothing.
    // Once asleep it is woken by sk_stream_write_space() only when the free space reaches
    // sk_stream_min_wspace() (half of what is queued: a third of a full buffer), so it copies in
    // large rounds instead of a segment per ACK.
    // (room != 0: the send buffer had room but the stack's pools did not; their memory comes back
    // with TX completions, which the wait polls for.)
    bool slept = false;
    int err = 0;
    if (room == 0) poll_stack();
    for (;;) {
      tp->tcp_mstamp = stack_->now_us();
      tcp_sndbuf_expand();
      if (tp->sk_err != 0 || (tp->sk_shutdown & SEND_SHUTDOWN)) break;
      const uint32_t queued = tp->write_seq - tp->snd_una;
      // The pools were short: one wait (it polls completions). The send buffer was full: done
      // at once if the backlog freed room, else when sk_stream_write_space() would wake us.
      const bool pools_short = room != 0;
      const bool backlog_freed = !slept && sk_stream_wspace() > 0;
      const bool write_space = slept && sk_stream_wspace() >= queued / 2;
      if (pools_short ? slept : backlog_freed || write_space) break;
      err = wait(lk, deadline, false);  // polls the device again when it wakes
      if (passthrough_) return kPassThrough;
      if (err != 0) break;
      slept = true;
    }
    if (err == -EAGAIN || err == -EINTR) return copied > 0 ? static_cast<ssize_t>(copied) : err;
    if (tp->sk_err != 0 || (tp->sk_shutdown & SEND_SHUTDOWN)) {
      return copied > 0 ? static_cast<ssize_t>(copied) : sk_stream_error(flags, -EPIPE);
    }
  }
  stack_->base().dev().flush_tx();
  return static_cast<ssize_t>(copied);
}

// kernel: tcp_splice_read(), net/ipv4/tcp.c — under lock_sock(): the bytes are peeked (waiting as
// recv() waits, the lock released, only while nothing moved yet), pushed into the sink a slot
// (PIPE_BUF) at a time, and exactly what the sink took is consumed before the lock is let go, so
// another thread's recv() never sees them. Stops when the sink is full or the queue is empty.
ssize_t TcpSocket::splice_read(PushSink* sink, size_t len, int flags) {
  Lock lk(stack_->mu());
  if (passthrough_) return kPassThrough;
  uint8_t buf[4096];  // PIPE_BUF: one pipe slot
  size_t spliced = 0;
  while (spliced < len) {
    iovec iov{buf, std::min(len - spliced, sizeof buf)};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    ssize_t r = tcp_recvmsg(&m, MSG_PEEK | (flags & MSG_DONTWAIT) | (spliced > 0 ? MSG_DONTWAIT : 0), lk);
    if (passthrough_) return spliced > 0 ? static_cast<ssize_t>(spliced) : kPassThrough;
    if (r <= 0) return spliced > 0 ? static_cast<ssize_t>(spliced) : r;
    ssize_t w = sink->push(sink->ctx, buf, static_cast<size_t>(r));
    if (w <= 0) return spliced > 0 ? static_cast<ssize_t>(spliced) : (w < 0 ? w : -EAGAIN);
    iov.iov_len = static_cast<size_t>(w);
    (void)tcp_recvmsg(&m, MSG_DONTWAIT, lk);  // the same bytes, now consumed
    spliced += static_cast<size_t>(w);
    if (w < r) break;
  }
  return static_cast<ssize_t>(spliced);
}

ssize_t TcpSocket::recvmsg(msghdr* msg, int flags) {
  Lock lk(stack_->mu());
  if (passthrough_) return kPassThrough;
  if (msg == nullptr) return -EFAULT;
  if (flags & MSG_ERRQUEUE) {
    // kernel: inet_recv_error() -> ip_recv_error(): MSG_ZEROCOPY notifications are queued here
    // (after the ACKs that arrived), anything else on the shadow.
    if (zc_ != nullptr) {
      poll_stack();
      if (zc_->has_notification()) return zc_->recv_error(msg);
    }
    return shadow_->recvmsg(fd_, msg, flags);
  }
  return tcp_recvmsg(msg, flags, lk);
}

// kernel: tcp_recvmsg_locked()'s loop around the copy (stack/tcp's tcp_recvmsg()): errors, EOF,
// ENOTCONN, the timeout, MSG_WAITALL and SO_RCVLOWAT.
ssize_t TcpSocket::tcp_recvmsg(msghdr* msg, int flags, Lock& lk) {
  tcp_sock* tp = &c_->tp;
  TcpConn* c = c_;
  if (tp->sk_state == TCP_LISTEN) return -ENOTCONN;
  size_t total = 0;
  for (size_t i = 0; i < msg->msg_iovlen; ++i) total += msg->msg_iov[i].iov_len;
  msg->msg_flags = 0;
  if (flags & MSG_OOB) {
    // kernel: tcp_recvmsg_locked(): "goto recv_urg" — the byte goes to the first non-empty iovec.
    poll_stack();
    size_t i = 0;
    while (i < msg->msg_iovlen && msg->msg_iov[i].iov_len == 0) ++i;
    return tcp_recv_urg(tp, i < msg->msg_iovlen ? msg->msg_iov[i].iov_base : nullptr, total, flags, &msg->msg_flags);
  }
  const bool nonblock = nonblock_ || (flags & MSG_DONTWAIT);
  const uint64_t deadline = !nonblock && rcvtimeo_ns_ != 0 ? now_ns() + rcvtimeo_ns_ : 0;
  // kernel: sock_rcvlowat(): MSG_WAITALL wants everything; else SO_RCVLOWAT, at most len.
  const size_t target = (flags & MSG_WAITALL) ? total : std::min<size_t>(total, static_cast<size_t>(std::max(rcvlowat_, 1)));
  auto out = [this, c](sk_buff* s) { return stack_->xmit(c, s); };
  size_t copied = 0, seg = 0, off = 0;
  bool spun = false;
  poll_stack();
  for (;;) {
    tp->tcp_mstamp = stack_->now_us();
    while (seg < msg->msg_iovlen && off == msg->msg_iov[seg].iov_len) ++seg, off = 0;
    if (seg == msg->msg_iovlen) break;
    // MSG_PEEK reads from the head again each call: one pass only.
    int r = ::xmit::tcp_recvmsg(tp, static_cast<uint8_t*>(msg->msg_iov[seg].iov_base) + off,
                              msg->msg_iov[seg].iov_len - off, flags & ~MSG_WAITALL, out);
    if (r > 0) {
      copied += static_cast<size_t>(r);
      off += static_cast<size_t>(r);
      if (flags & MSG_PEEK) break;
      // "Are we at urgent data? Stop if we have read anything" — whatever the target.
      if (tp->urg_data != 0 && tp->urg_seq == tp->copied_seq) break;
      if (copied >= target && (off < msg->msg_iov[seg].iov_len || copied == total)) break;
      continue;
    }
    if (r == 0 && copied == 0) break;  // end of stream
    if (r == 0) break;
    if (r != -EAGAIN) return copied > 0 ? static_cast<ssize_t>(copied) : r;
    if (copied >= target && copied > 0) break;
    // kernel: the order of tcp_recvmsg_locked()'s checks with nothing (more) to copy.
    if (copied > 0 && (tp->sk_err != 0 || tp->sk_state == TCP_CLOSE || (tp->sk_shutdown & RCV_SHUTDOWN))) break;
    if (copied == 0) {
      if (tp->sk_err != 0) return -tcp_sock_error(tp);
      if (tp->sk_shutdown & RCV_SHUTDOWN) return 0;
      if (tp->sk_state == TCP_CLOSE) return -ENOTCONN;
    }
    if (nonblock) return copied > 0 ? static_cast<ssize_t>(copied) : -EAGAIN;
    // kernel: tcp_recvmsg(): an established connection with nothing queued and sk_ll_usec set
    // busy-polls once per call before it waits (a non-blocking call's one poll was the one above).
    if (!spun && busy_.sk_ll_usec != 0 && tp->sk_state == TCP_ESTABLISHED) {
      spun = true;
      busy_loop(lk);
      if (passthrough_) return kPassThrough;
      continue;
    }
    int err = wait(lk, deadline, false);
    if (passthrough_) return kPassThrough;
    if (err != 0) return copied > 0 ? static_cast<ssize_t>(copied) : err;
  }
  stack_->base().dev().flush_tx();
  return static_cast<ssize_t>(copied);
}

int TcpSocket::poll_mask(int* wait_fd) {
  PollScan scan;
  return poll_mask_scan(wait_fd, &scan);
}

int TcpSocket::poll_mask_scan(int* wait_fd, PollScan* scan) {
  std::lock_guard<StackMutex> g(stack_->mu());
  if (passthrough_) return kPassThrough;
  if (scan->polled != &stack_->base()) {
    poll_stack();
    scan->polled = &stack_->base();
  }
  *wait_fd = stack_->base().dev().wait_fd();
  tcp_sock* tp = &c_->tp;
  if (tp->sk_state == TCP_ESTABLISHED || tp->sk_state == TCP_CLOSE_WAIT) tcp_sndbuf_expand();
  int mask = tcp_poll(tp);
  if (!stack_->tx_memory_free()) mask &= ~(POLLOUT | POLLWRNORM);
  // kernel: tcp_poll(): "if (sk->sk_err || !skb_queue_empty_lockless(&sk->sk_error_queue))"
  if (zc_ != nullptr && zc_->has_notification()) mask |= POLLERR;
  // The kernel wakes the socket's waiters when data arrives (rcv_nxt moves), when an ACK frees
  // send space (snd_una moves), on a state change and an error; an edge-triggered epoll entry
  // reports on each. Their sum changes with any of them (a stand-in for a wakeup count; a
  // listener's is its accept queue's length, which misses a child queued as another was accepted
  // between two scans).
  poll_seq_.store((static_cast<uint64_t>(tp->rcv_nxt) << 32) + tp->snd_una + (static_cast<uint64_t>(tp->sk_state) << 8) +
                      static_cast<uint64_t>(tp->sk_err) + (static_cast<uint64_t>(tp->sk_ack_backlog) << 16) +
                      (zc_ != nullptr ? zc_->notifications() << 40 : 0),  // sk_error_report()
                  std::memory_order_relaxed);
  return mask;
}

// The shadow of a listener is a listening kernel socket (connections the kernel accepted); every
// other shadow is an unconnected one whose readiness (POLLHUP) says nothing of the connection.
bool TcpSocket::kernel_readiness() const { return listening_.load(std::memory_order_acquire); }

// kernel: tcp_ioctl()
int TcpSocket::ioctl(unsigned long request, void* arg) {
  std::lock_guard<StackMutex> g(stack_->mu());
  if (passthrough_) return kPassThrough;
  const tcp_sock& tp = c_->tp;
  int answ = 0;
  switch (request) {
    case SIOCINQ:
      if (tp.sk_state == TCP_LISTEN) return -EINVAL;
      poll_stack();
      // kernel: tcp_inq() — up to the urgent mark while one lies ahead in what arrived (unless
      // SO_OOBINLINE), else everything less the FIN.
      if (!tp.sock_urginline && tp.urg_data != 0 && !before(tp.urg_seq, tp.copied_seq) && before(tp.urg_seq, tp.rcv_nxt)) {
        answ = static_cast<int>(tp.urg_seq - tp.copied_seq);
        break;
      }
      answ = static_cast<int>(tp.rcv_nxt - tp.copied_seq);
      if (answ > 0 && (tp.sk_shutdown & RCV_SHUTDOWN) && tp.sk_state != TCP_SYN_SENT) --answ;  // the FIN
      if (answ < 0) answ = 0;
      break;
    case SIOCATMARK:  // (a listener: 0, no EINVAL)
      poll_stack();
      answ = tcp_at_mark(&tp) ? 1 : 0;
      break;
    case SIOCOUTQ:
      if (tp.sk_state == TCP_LISTEN) return -EINVAL;
      poll_stack();  // the ACKs that arrived (the kernel took them in softirq)
      answ = TCPF(tp.sk_state) & (TCPF(TCP_SYN_SENT) | TCPF(TCP_SYN_RECV)) ? 0 : static_cast<int>(tp.write_seq - tp.snd_una);
      break;
    case SIOCOUTQNSD:
      if (tp.sk_state == TCP_LISTEN) return -EINVAL;
      poll_stack();
      answ = TCPF(tp.sk_state) & (TCPF(TCP_SYN_SENT) | TCPF(TCP_SYN_RECV)) ? 0 : static_cast<int>(tp.write_seq - tp.snd_nxt);
      break;
    default: return -ENOTTY;  // the interposer passes only the four above
  }
  if (arg == nullptr) return -EFAULT;
  std::memcpy(arg, &answ, sizeof answ);
  return 0;
}

int TcpSocket::setsockopt(int level, int name, const void* val, socklen_t len) {
  std::lock_guard<StackMutex> g(stack_->mu());
  if (passthrough_) return kPassThrough;
  shadow_settle();
  if ((level == SOL_IP && name == IP_OPTIONS) || (level == SOL_SOCKET && name == SO_BINDTODEVICE)) {
    if (c_->tp.sk_state == TCP_CLOSE && state_ == SockState::kUnconnected) {
      return pass_through(0, "a socket option the TCP stack does not serve (IP_OPTIONS, SO_BINDTODEVICE)");
    }
  }
  int err = shadow_->setsockopt(fd_, level, name, val, len);  // the kernel's checks and errnos
  if (err != 0) return err;
  const tcp_sock* tp = &c_->tp;
  if (!child_ && (tp->sk_state == TCP_CLOSE || tp->sk_state == TCP_LISTEN) && SockOptRecord::cloneable(level, name, len)) {
    sockopts_.noted(level, name, val, len);  // the children accepted from now on get it
  }
  setsockopt_mirror(level, name, val, len, sockopt_readback(fd_, level, name));
  return 0;
}

// The kernel's value of an option it just took, where the stack mirrors that rather than what
// was asked (rounded, doubled or clamped): the kernel socket `fd`'s answer.
TcpSocket::KernelValue TcpSocket::sockopt_readback(int fd, int level, int name) const {
  int read = -1;
  if (level == SOL_SOCKET && (name == SO_SNDBUF || name == SO_SNDBUFFORCE)) read = SO_SNDBUF;
  if (level == SOL_SOCKET && (name == SO_RCVBUF || name == SO_RCVBUFFORCE)) read = SO_RCVBUF;
  if (level == SOL_SOCKET && name == SO_ZEROCOPY) read = SO_ZEROCOPY;
  if (level == SOL_IP) read = name;
  if (level == SOL_TCP && (name == TCP_FASTOPEN_CONNECT || name == TCP_FASTOPEN_NO_COOKIE)) read = name;
  KernelValue kv;
  if (read < 0) return kv;
  socklen_t l = sizeof kv.got;
  kv.ok = shadow_->getsockopt(fd, level, read, &kv.got, &l) == 0;
  return kv;
}

// What an option the kernel socket took means to the stack's side of the socket (lock held).
void TcpSocket::setsockopt_mirror(int level, int name, const void* val, socklen_t len, KernelValue kv) {
  tcp_sock* tp = &c_->tp;
  TcpConn* c = c_;
  int v = 0;
  std::memcpy(&v, val, std::min<size_t>(len, sizeof v));
  auto out = [this, c](sk_buff* s) { return stack_->xmit(c, s); };
  if (level == SOL_TCP) {
    tp->tcp_mstamp = stack_->now_us();
    switch (name) {
      case TCP_NODELAY: tcp_sock_set_nodelay(tp, v != 0, stack_->dst_mtu(c), out); break;
      case TCP_CORK: tcp_sock_set_cork(tp, v != 0, stack_->dst_mtu(c), out); break;
      case TCP_MAXSEG: tp->rx_opt.user_mss = static_cast<uint16_t>(v); break;
      case TCP_USER_TIMEOUT: tp->icsk_user_timeout = static_cast<uint32_t>(v); break;
      case TCP_SYNCNT: tp->icsk_syn_retries = static_cast<uint8_t>(v); break;
      case TCP_DEFER_ACCEPT: tp->rskq_defer_accept = secs_to_retrans(v); break;
      // The kernel's flags as set (a no-op without client Fast Open), before connect() sets both
      case TCP_FASTOPEN_CONNECT: fastopen_connect_ = kv.ok && kv.got != 0; break;
      case TCP_FASTOPEN_NO_COOKIE: fastopen_no_cookie_ = kv.ok && kv.got != 0; break;
      case TCP_CONGESTION: {
        // kernel: tcp_set_congestion_control(): the kernel took the name (its errnos: ENOENT,
        // EPERM); the stack has Reno and CUBIC, and for any other (BBR, DCTCP...) keeps the ops it has.
        char name_buf[16] = {};
        std::memcpy(name_buf, val, std::min<size_t>(len, sizeof name_buf - 1));
        const tcp_congestion_ops* ops = std::strcmp(name_buf, "reno") == 0    ? &tcp_reno
                                        : std::strcmp(name_buf, "cubic") == 0 ? &tcp_cubic
                                                                              : nullptr;
        if (ops == nullptr) break;
        if (tp->sk_state == TCP_CLOSE || tp->sk_state == TCP_LISTEN || tp->sk_state == TCP_SYN_SENT) {
          tp->icsk_ca_ops = ops;  // tcp_init_transfer() initialises them
        } else if (ops != tcp_ca_ops(tp)) {
          tcp_init_congestion_control(tp, ops);  // tcp_reinit_congestion_control()
        }
        break;
      }
      // kernel: do_tcp_setsockopt(): negative -1, at most TCP_FIN_TIMEOUT_MAX (120 s)
      case TCP_LINGER2: tp->linger2 = v < 0 ? -1 : std::min(v, 120); break;
      // kernel: tcp_sock_set_keepidle_locked(): a new idle time re-arms a running keepalive timer.
      case TCP_KEEPIDLE:
        tp->keepalive_time = static_cast<uint32_t>(v);
        if (tp->sock_keepopen) tcp_set_keepalive(tp, true);
        break;
      case TCP_KEEPINTVL: tp->keepalive_intvl = static_cast<uint32_t>(v); break;
      case TCP_KEEPCNT: tp->keepalive_probes = static_cast<uint8_t>(v); break;
      case TCP_NOTSENT_LOWAT: tp->notsent_lowat = static_cast<uint32_t>(v); break;
      case TCP_QUICKACK: tcp_sock_set_quickack(tp, v, out); break;
      default: break;
    }
    stack_->base().dev().flush_tx();
  } else if (level == SOL_SOCKET) {
    switch (name) {
      case SO_SNDBUF:
      case SO_SNDBUFFORCE:
        if (kv.ok) {
          sk_sndbuf_ = static_cast<uint32_t>(kv.got);
          sndbuf_locked_ = true;
          tp->sndbuf = sk_sndbuf_;
        }
        break;
      case SO_RCVBUF:
      case SO_RCVBUFFORCE:
        // kernel: the window offers about half of sk_rcvbuf (tcp_win_from_space()); the stack's
        // rcvbuf counts payload only.
        if (kv.ok && tp->sk_state == TCP_CLOSE) tp->rcvbuf = static_cast<uint32_t>(kv.got) / 2;
        break;
      case SO_SNDTIMEO_OLD: sndtimeo_ns_ = timeo_ns(val, len); break;
      case SO_RCVTIMEO_OLD: rcvtimeo_ns_ = timeo_ns(val, len); break;
      case SO_RCVLOWAT: rcvlowat_ = v; break;
      case SO_LINGER: {
        linger l{};
        std::memcpy(&l, val, std::min<size_t>(len, sizeof l));
        tp->linger = l.l_onoff ? l.l_linger : -1;
        break;
      }
      case SO_KEEPALIVE:
        tp->tcp_mstamp = stack_->now_us();
        tcp_set_keepalive(tp, v != 0);
        break;
      case SO_MARK: c->inet.sk_mark = static_cast<uint32_t>(v); c->dst.reset(); break;
      case SO_PRIORITY: c->inet.sk_priority = static_cast<uint32_t>(v); break;
      case SO_REUSEPORT: c->reuseport = v != 0; break;
      case SO_OOBINLINE: tp->sock_urginline = v != 0; break;  // kernel: sock_valbool_flag(SOCK_URGINLINE)
      case SO_BUSY_POLL:
      case SO_PREFER_BUSY_POLL:
      case SO_BUSY_POLL_BUDGET:  // the shadow checked them (EINVAL, EPERM) as sk_setsockopt() does
        busy_poll_setsockopt(&busy_, name, val, len);
        set_busy_poll_usec(busy_.sk_ll_usec);
        break;
      case SO_ZEROCOPY:  // the shadow checked the value (EINVAL) as sk_setsockopt() does
        if (kv.ok) sock_zerocopy_ = kv.got != 0;
        break;
      default: break;
    }
  } else if (level == SOL_IP && kv.ok) {
    if (name == IP_TOS) c->inet.tos = static_cast<uint8_t>(kv.got);
    if (name == IP_TTL) c->inet.uc_ttl = static_cast<int16_t>(v == -1 ? -1 : kv.got);
    if (name == IP_MTU_DISCOVER) c->inet.pmtudisc = static_cast<uint8_t>(kv.got);
  }
}

int TcpSocket::getsockopt(int level, int name, void* val, socklen_t* len) {
  std::lock_guard<StackMutex> g(stack_->mu());
  if (passthrough_) return kPassThrough;
  tcp_sock* tp = &c_->tp;
  if (level == SOL_SOCKET && name == SO_ERROR) {
    poll_stack();
    int err = tcp_sock_error(tp);
    if (err == 0) return shadow_->getsockopt(fd_, level, name, val, len);
    if (len == nullptr || val == nullptr) return -EFAULT;
    if (static_cast<int>(*len) < 0) return -EINVAL;
    socklen_t n = std::min<socklen_t>(*len, sizeof err);
    std::memcpy(val, &err, n);
    *len = n;
    return 0;
  }
  if (level == SOL_TCP && name == TCP_INFO) return get_tcp_info(val, len);
  if (level == SOL_TCP && name == TCP_TIMESTAMP) {
    // kernel: do_tcp_getsockopt(): tcp_clock_ts(tp->tcp_usec_ts) + tsoffset, its lowest bit the
    // usec flag (ms here: cleared); the shadow's offset is not the connection's. The length is
    // min_t(unsigned int, len, 4): a negative one gets the 4 bytes.
    if (len == nullptr) return -EFAULT;
    const uint32_t ts = (static_cast<uint32_t>(stack_->now_us() / 1000) + tp->tsoffset) & ~1u;
    *len = std::min<socklen_t>(*len, sizeof ts);
    if (*len != 0 && val == nullptr) return -EFAULT;
    std::memcpy(val, &ts, *len);
    return 0;
  }
  if (level == SOL_IP && name == IP_MTU) {
    // kernel: do_ip_getsockopt() IP_MTU: dst_mtu() of the socket's route, ENOTCONN without one (the
    // shadow has none: the connection is xmit's); the route's MTU is at most what the queue carries.
    if (len == nullptr) return -EFAULT;
    if (static_cast<int>(*len) < 0) return -EINVAL;
    if (c_->route.dev == nullptr) return -ENOTCONN;
    const int mtu = static_cast<int>(c_->route.dst_mtu());
    *len = std::min<socklen_t>(*len, sizeof mtu);  // an MTU is never under 256: no one-byte answer
    if (*len != 0 && val == nullptr) return -EFAULT;
    std::memcpy(val, &mtu, *len);
    return 0;
  }
  int r = shadow_->getsockopt(fd_, level, name, val, len);  // the kernel's checks, then ours
  if (r != 0 || val == nullptr || len == nullptr || *len < sizeof(int)) return r;
  int v = -1;
  if (level == SOL_TCP) {
    switch (name) {
      case TCP_NODELAY: v = (tp->nonagle & TCP_NAGLE_OFF) ? 1 : 0; break;
      case TCP_CORK: v = (tp->nonagle & TCP_NAGLE_CORK) ? 1 : 0; break;
      // the program's, not those of the kernel socket's deferred connect (kernel_hash_connect())
      case TCP_FASTOPEN_CONNECT: v = child_ ? -1 : fastopen_connect_; break;
      case TCP_FASTOPEN_NO_COOKIE: v = child_ ? -1 : fastopen_no_cookie_; break;
      case TCP_MAXSEG:  // kernel: do_tcp_getsockopt(): mss_cache (536 until a route sets it, kept
                        // after the connection ends); TCP_MAXSEG's value on a closed or listening socket
        v = static_cast<int>(tp->rx_opt.user_mss != 0 && (tp->sk_state == TCP_CLOSE || tp->sk_state == TCP_LISTEN)
                                 ? tp->rx_opt.user_mss
                                 : tp->mss_cache);
        break;
      default: break;
    }
  } else if (level == SOL_SOCKET && name == SO_SNDBUF) {
    v = static_cast<int>(sk_sndbuf_);
  } else if (level == SOL_SOCKET && name == SO_OOBINLINE) {
    v = tp->sock_urginline ? 1 : 0;  // an accepted child's shadow did not inherit it
  } else if (level == SOL_SOCKET && name == SO_ZEROCOPY) {
    v = sock_zerocopy_ ? 1 : 0;  // an accepted child's shadow did not inherit it
  } else if (level == SOL_SOCKET && name == SO_BUSY_POLL) {
    v = static_cast<int>(busy_.sk_ll_usec);  // likewise
  } else if (level == SOL_SOCKET && name == SO_PREFER_BUSY_POLL) {
    v = busy_.sk_prefer_busy_poll ? 1 : 0;
  }
  if (v >= 0) std::memcpy(val, &v, sizeof v);
  return 0;
}

// kernel: do_tcp_getsockopt() TCP_INFO — tcp_get_info() (stack/tcp/tcp_info.h), then
// "len = min_t(unsigned int, len, sizeof(info))": a negative length gets all 280 bytes.
int TcpSocket::get_tcp_info(void* val, socklen_t* len) {
  if (len == nullptr) return -EFAULT;
  tcp_info_kernel info;
  tcp_get_info(&c_->tp, static_cast<uint32_t>(stack_->now_us() / 1000), &info);
  const socklen_t n = std::min<socklen_t>(*len, sizeof info);
  if (n > 0 && val == nullptr) return -EFAULT;
  std::memcpy(val, &info, n);
  *len = n;
  return 0;
}

}  // namespace xmit
