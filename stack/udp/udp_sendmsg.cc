// stack/udp/udp_sendmsg.cc — UdpSock's send path: udp_sendmsg() with its uncorked fast path and its
// corked path (MSG_MORE, UDP_CORK), udp_push_pending_frames(), udp_flush_pending_frames().
// kernel: net/ipv4/udp.c; inet_sendmsg()/inet_send_prepare(), net/ipv4/af_inet.c.
#include <algorithm>
#include <cerrno>

#include "stack/ipv4/iov_iter.h"
#include "stack/ipv4/sk_wmem.h"
#include "stack/ipv4/udp_send.h"
#include "stack/ipv4/udp_tmpl.h"
#include "stack/sock/msghdr.h"
#include "stack/sock/udp_sendmsg_checks.h"
#include "stack/udp/udp_sock.h"

namespace xmit {

// kernel: ____sys_sendmsg() → sock_sendmsg() → inet_sendmsg() → udp_sendmsg()
ssize_t UdpSock::sendmsg(const msghdr* umsg, int flags) {
  SendArgsCtx actx;
  actx.optmem_max = static_cast<int>(stack_->optmem_max());  // sock_kmalloc() of a long control buffer
  Kmsg kmsg;
  int err = sys_sendmsg_prepare(umsg, static_cast<unsigned>(flags), &kmsg, actx);
  std::unique_lock<StackMutex> lk(stack_->mu());
  if (passthrough_) return kPassThrough;
  if (err != 0) return err;
  const bool appending = pending_ != 0;
  ubuf_info* pin = zerocopy_pin(flags);
  MmPin mmp;
  return zerocopy_sent(udp_sendmsg(kmsg, lk, pin, &mmp), flags, appending, pin, &mmp);
}

// kernel: __sys_sendto() → sock_sendmsg() → inet_sendmsg() → udp_sendmsg()
ssize_t UdpSock::sendto(const void* buf, size_t len, int flags, const sockaddr* to, socklen_t tolen) {
  SendArgsCtx actx;
  Kmsg kmsg;
  int err = sys_sendto_prepare(buf, len, static_cast<unsigned>(flags), to, static_cast<int>(tolen), &kmsg, actx);
  std::unique_lock<StackMutex> lk(stack_->mu());
  if (passthrough_) return kPassThrough;
  if (err != 0) return err;
  const bool appending = pending_ != 0;
  ubuf_info* pin = zerocopy_pin(flags);
  MmPin mmp;
  return zerocopy_sent(udp_sendmsg(kmsg, lk, pin, &mmp), flags, appending, pin, &mmp);
}

// kernel: __ip_append_data(): "(flags & MSG_ZEROCOPY) && length" with SOCK_ZEROCOPY set takes a
// ubuf_info (msg_zerocopy_realloc(): sk_zckey++); without SO_ZEROCOPY the flag is ignored. `length`
// counts the UDP header when the call starts a datagram, so an empty datagram takes an id too; an
// empty append to a corked one does not. A failed send gives its id back (net_zcopy_put_abort()),
// so only successes count. The payload was copied into the stack's buffers (AF_XDP sends from its
// UMEM): the notification says COPIED, as the kernel's does when it had to copy (uarg->zerocopy = 0).
// A datagram holds one object: the first zerocopy send into it takes it, later ones into the same
// corked datagram extend it (cork.zc_uarg, reset by ip_setup_cork() for the next datagram).
// On a device that reads user memory (sg_user) the send offers `pin` for its payload's in-place
// fragments: the notification says COPIED unless they went (and the device read them) in place.
ssize_t UdpSock::zerocopy_sent(ssize_t r, int flags, bool appending, ubuf_info* pin, MmPin* mmp) {
  if ((r > 0 || (r == 0 && !appending)) && (flags & MSG_ZEROCOPY) && sock_zerocopy_) {
    zc_.sent(inet_.sk_wmem_charged, /*copied=*/pin == nullptr, /*new_object=*/!(appending && inet_.cork.zc_uarg), pin,
             mmp);
    if (pending_) inet_.cork.zc_uarg = true;
  } else if (pin != nullptr) {
    net_zcopy_put(pin);  // fragments a failed send left (in a cork) keep it until they go
  }
  mm_unaccount_pinned_pages(mmp);  // a failed send's charge (a successful one's moved above)
  return r;
}

ubuf_info* UdpSock::zerocopy_pin(int flags) {
  if (!(flags & MSG_ZEROCOPY) || !sock_zerocopy_ || !stack_->dev_features().sg_user) return nullptr;
  return zc_.dgram_pin();
}

// A send the kernel socket must make: the kernel's would first return the error held here (its
// sk_err, consumed in sock_alloc_send_pskb()), so that is this call's result; the next one hands
// the socket back.
int UdpSock::send_pass_through(be32 daddr, const char* why) {
  if (int err = sock_error(); err != 0) return err;
  return pass_through(daddr, why);
}

int UdpSock::udp_push_pending_frames(uint64_t now) {
  int err = xmit::udp_push_pending_frames(stack_->out_ctx(now), &inet_, &stack_->udp_mib);
  pending_ = 0;
  return err;
}

void UdpSock::udp_flush_pending_frames() {
  if (pending_) {
    pending_ = 0;
    ip_flush_pending_frames(&inet_);
  }
}

ssize_t UdpSock::udp_sendmsg(const Kmsg& kmsg, std::unique_lock<StackMutex>& lk, ubuf_info* zc_pin, MmPin* zc_mmp) {
  unsigned flags = kmsg.msg_flags;
  if (nonblock_) flags |= MSG_DONTWAIT;
  const size_t len = kmsg.count;
  uint64_t deadline = 0;  // SO_SNDTIMEO, from the first wait of this call on (kernel: timeo)
retry:
  // kernel: inet_sendmsg() → inet_send_prepare() autobinds before udp_sendmsg() looks at anything,
  // so even a send that fails its checks leaves the socket bound.
  if (int err = inet_autobind(); err != 0) return err;
  const bool corkreq = corkflag_ || (flags & MSG_MORE);
  UdpSendCtx uctx{.established = connected_, .inet_daddr = inet_.inet_daddr,
                  .inet_dport = inet_.inet_dport, .pending = pending_, .gso_size = gso_size_};
  Ipcm ipcm;
  ipcm.addr = inet_.inet_saddr;
  ipcm.tos = static_cast<int16_t>(inet_.tos);
  ipcm.sockc.mark = inet_.sk_mark;
  ipcm.sockc.priority = inet_.sk_priority;
  be32 daddr = 0;
  be16 dport = 0;
  int err = udp_sendmsg_args(kmsg, uctx, &ipcm, &daddr, &dport);
  if (err < 0) return err;

  uint64_t now = shadow_->now_ns();
  poll_stack(now);  // reap completions (and deliver what arrived) on every call
  IpOutCtx ctx = stack_->out_ctx(now);
  ctx.sock_zerocopy = sock_zerocopy_;
  ctx.zc_may_alloc = zc_.dgram_may_alloc();
  ctx.zc_ubuf = zc_pin;
  ctx.zc_mmp = zc_mmp;
  IovIter it;
  // kernel: "There are pending frames": the data joins the corked datagram; its address and
  // control messages are not looked at, and ulen has no UDP header.
  if (err == kUdpAppendPending) {
    hash_and_steer();  // a disconnect may have released the port the cork was opened with
    err = iov_iter_init(&it, absl::MakeConstSpan(kmsg.segs(), kmsg.iter_ubuf ? 1 : kmsg.nr_segs));
    it.count = std::min(it.count, len);
    if (err == 0) {
      IpcmCookie unused;  // the cork is set up: ip_append_data() reads neither ipc nor the route
      err = ip_append_data(ctx, &inet_, inet_.cork.fl4, inet_.cork.dst, &it, static_cast<int>(len),
                           8, unused, corkreq ? flags | MSG_MORE : flags);
    }
    return udp_sendmsg_done(err, corkreq, len, now);
  }
  if (ipcm.has_opt) return send_pass_through(daddr, "IP options");

  Flowi4 fl4{.daddr = daddr, .saddr = ipcm.addr, .oif = ipcm.oif,
             .tos = static_cast<uint8_t>((ipcm.tos >= 0 ? ipcm.tos : inet_.tos) & 0x1c),
             .mark = ipcm.sockc.mark, .proto = IPPROTO_UDP, .fl4_sport = inet_.inet_sport,
             .fl4_dport = dport};
  const Rtable* rt = nullptr;
  err = dst_.lookup(stack_->fib(), fl4, &rt);
  if (err != 0) {
    stack_->request_control();  // a route may be on its way: the next poll reads the notifications
    return err;
  }
  // kernel: SO_DONTROUTE (SOCK_LOCALROUTE), MSG_DONTROUTE: the lookup is made with scope link, so
  // only an on-link destination has a route; anything behind a gateway is -ENETUNREACH. (Reduced
  // here to the gateway test on the ordinary lookup's answer: a link-scope route shadowed by a
  // more specific gateway route would be found by the kernel and is refused here.)
  if ((sock_localroute_ || (flags & MSG_DONTROUTE)) && rt->gateway != 0) return -ENETUNREACH;
  if (rt->oif != stack_->ifindex() || rt->type != RTN_UNICAST) {
    return send_pass_through(daddr, rt->type == RTN_UNICAST ? "does not leave through the interface"
                                                             : "local, broadcast or multicast destination");
  }
  if (!steered_as_bound()) hash_and_steer();
  // The route's answer as the IPv4 output path reads it. kernel: struct rtable -> dst_entry
  Ipv4Route route{.oif = rt->oif,
                  .saddr = fl4.saddr != 0 ? fl4.saddr : rt->prefsrc,
                  .daddr = daddr,
                  .nexthop = rt_nexthop(*rt, daddr),
                  .pmtu = rt->mtu,
                  .dev = &stack_->dev_features()};
  Flowi4 out = fl4;
  out.saddr = route.saddr;
  IpcmCookie ipc{.addr = route.saddr, .oif = ipcm.oif, .tos = ipcm.tos, .ttl = ipcm.ttl,
                 .gso_size = ipcm.gso_size, .mark = ipcm.sockc.mark, .priority = ipcm.sockc.priority};

  err = iov_iter_init(&it, absl::MakeConstSpan(kmsg.segs(), kmsg.iter_ubuf ? 1 : kmsg.nr_segs));
  it.count = std::min(it.count, len);
  const int ulen = static_cast<int>(len + 8);

  // kernel: "Lockless fast path for the non-corking case."
  if (!corkreq) {
    if (err != 0) return err;
    sk_buff* skb = nullptr;
    // kernel: the on-stack cork of the fast path (UDP_SEGMENT's gso_size lives in it); a member
    // here, which ip_make_skb() sets up, so that no call zeroes it twice.
    InetCork& cork = fast_cork_;
    // The per-socket template (stack/ipv4/udp_tmpl.h) sends what the full path would, with the
    // headers prebuilt for this flow, route and socket state; anything else takes the full path,
    // after which the template is (re)built for these inputs.
    if (udp_tmpl_fits(tmpl_, ulen, flags) &&
        udp_tmpl_match(tmpl_, dst_.seq, inet_, ipc, stack_->dev_features(), *ctx.sysctl)) {
      err = udp_tmpl_send(ctx, tmpl_, &inet_, &stack_->udp_mib, &it, ulen);
      ++stack_->udp_tmpl_sends;
    } else {
      err = ip_make_skb(ctx, &inet_, out, route, &it, ulen, 8, ipc, &cork, flags, &skb);
      if (err == 0 && skb != nullptr) err = udp_send_skb(ctx, &inet_, &stack_->udp_mib, skb, out, cork);
      const bool again = dst_.seq == tmpl_last_seq_;
      tmpl_last_seq_ = dst_.seq;
      if (err == 0 && again && stack_->udp_send_template() && !(flags & kMsgProbe) &&
          !(tmpl_.valid && udp_tmpl_match(tmpl_, dst_.seq, inet_, ipc, stack_->dev_features(), *ctx.sysctl))) {
        udp_tmpl_build(&tmpl_, dst_.seq, inet_, out, route, ipc, *ctx.sysctl,
                       ctx.skbs->heads()->buf_size() - route.hh_len, ctx.neigh);
      }
    }
  } else {
    if (pending_) {
      // kernel: "The socket is already corked while preparing it. ... which is an evident
      // application bug. --ANK" (net_dbg "socket already corked"). Here the stack lock is held
      // from the pending check on, so no other thread can cork in between.
      return -EINVAL;
    }
    // kernel: "Now cork the socket to pend data."
    inet_.cork.fl4 = out;
    pending_ = AF_INET;
    if (err == 0) err = ip_append_data(ctx, &inet_, out, route, &it, ulen, 8, ipc, flags | MSG_MORE);
    if ((err == -EAGAIN || err == kNoTxMem) && !(flags & MSG_DONTWAIT)) {
      // Everything queued came from this call: drop it, wait, start again (the kernel sleeps in
      // sock_alloc_send_skb() before the first packet, so it has appended nothing either).
      udp_flush_pending_frames();
    } else {
      if (err == kNoTxMem) err = -EAGAIN;
      return udp_sendmsg_done(err, corkreq, len, now);
    }
  }
  if ((err == -EAGAIN || err == kNoTxMem) && !(flags & MSG_DONTWAIT)) {
    // kernel: sock_alloc_send_skb() sleeps for send buffer space: here, for TX completions.
    if (err == kNoTxMem) ++stack_->tx_pool_empty;
    err = sk_wait_wmem(lk, err == kNoTxMem, &deadline);
    if (err == 0) goto retry;
    return err;
  }
  if (err == kNoTxMem) {
    ++stack_->tx_pool_empty;
    err = -EAGAIN;
  }
  if (err == -ENOBUFS) ++stack_->udp_mib.SndbufErrors;
  return err != 0 ? err : static_cast<ssize_t>(len);
}

// kernel: sock_alloc_send_pskb()'s loop over sock_wait_for_wmem(). Waits, with the stack's lock
// released, on the device's wait fd in slices of at most kWaitSliceMs, then reaps. The slice bounds
// the wake-up latency: an AF_XDP socket's fd is readable for RX frames only (xsk_poll() has no
// event for the completion ring), and another thread may reap our completions; 1 ms slices cost
// ~1000 wake-ups a second while blocked, not a spinning CPU. Returns 0 to try again,
// -EAGAIN when SO_SNDTIMEO ran out (the kernel's error on timeout), -EINTR for a signal, or
// kPassThrough.
//  * Send buffer full (pool = false): goes on once sock_writeable() (under half the buffer in use),
//    the condition on which sock_def_write_space_wfree() wakes a blocked writer; or after
//    shutdown(SHUT_WR) (the retry then fails with EPIPE, as the kernel's loop does).
//  * Pool empty (pool = true): not a kernel condition (the kernel would have had memory); tries
//    again after every wait, whatever completed.
//  * Signals: the kernel returns sock_intr_errno(timeo): -ERESTARTSYS without SO_SNDTIMEO, which
//    the kernel restarts if the handler has SA_RESTART, else -EINTR. The interposer cannot restart
//    a call libc made, so the restart happens here: the wait goes on when the shadow says the
//    handler restarts (ShadowOps::signal_restarts()) and no SO_SNDTIMEO is set; otherwise -EINTR.
int UdpSock::sk_wait_wmem(std::unique_lock<StackMutex>& lk, bool pool, uint64_t* deadline) {
  constexpr uint64_t kWaitSliceMs = 1;
  uint64_t now = shadow_->now_ns();
  if (sk_sndtimeo_ns_ != 0 && *deadline == 0) *deadline = now + sk_sndtimeo_ns_;
  const int dev_fd = stack_->dev().wait_fd();
  for (;;) {
    if (*deadline != 0 && now >= *deadline) return -EAGAIN;
    uint64_t slice_ms = kWaitSliceMs;
    if (*deadline != 0) slice_ms = std::min(slice_ms, (*deadline - now + 999'999) / 1'000'000);
    stack_->dev().flush_tx();  // our frames held below the doorbell batch must go to complete
    lk.unlock();
    int err = shadow_->wait(-1, dev_fd, static_cast<int>(slice_ms));
    lk.lock();
    if (passthrough_) return kPassThrough;
    if (err == -EINTR && !(sk_sndtimeo_ns_ == 0 && shadow_->signal_restarts())) return -EINTR;
    now = shadow_->now_ns();
    poll_stack(now);  // completions: sock_wfree() uncharges our frames
    if (pool || sock_writeable(inet_) || (inet_.sk_shutdown & SEND_SHUTDOWN)) return 0;
  }
}

// kernel: the end of udp_sendmsg()'s corked path (do_append_data:): an error drops the whole
// corked datagram, a send without MSG_MORE (and UDP_CORK off) pushes it, a cork left empty
// (MSG_PROBE) is no cork.
ssize_t UdpSock::udp_sendmsg_done(int err, bool corkreq, size_t len, uint64_t now) {
  if (err == kNoTxMem) {
    // The pool ran dry while appending to a corked datagram: the kernel would have had memory.
    // The datagram is dropped as after any error, with the errno of a failed later allocation.
    ++stack_->tx_pool_empty;
    err = -ENOBUFS;
  }
  if (err != 0) {
    udp_flush_pending_frames();
  } else if (!corkreq) {
    err = udp_push_pending_frames(now);
  } else if (skb_queue_empty(inet_.sk_write_queue)) {
    pending_ = 0;
  }
  if (err == -ENOBUFS) ++stack_->udp_mib.SndbufErrors;
  return err != 0 ? err : static_cast<ssize_t>(len);
}

}  // namespace xmit
