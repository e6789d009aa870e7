// stack/sock/msg_zerocopy.cc — see msg_zerocopy.h.
#include "stack/sock/msg_zerocopy.h"

#include <linux/errqueue.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "stack/sock/cmsg_recv.h"

namespace xmit {

void MsgZerocopy::sent(uint64_t charged, bool copied, bool new_object, ubuf_info* pin, MmPin* mmp) {
  pending_.push_back({zckey_++, charged, copied, new_object, pin, mmp != nullptr ? *mmp : MmPin{}});
  if (mmp != nullptr) *mmp = MmPin{};  // the entry holds the charge now
  if (new_object) omem_ += kUargTruesize;
}

// A completed object kept for reuse, else a new one (nullptr when out of memory).
ubuf_info* MsgZerocopy::take_object() {
  if (free_.empty()) return new (std::nothrow) ubuf_info;
  ubuf_info* u = free_.back();
  free_.pop_back();
  return u;
}

ubuf_info* MsgZerocopy::dgram_pin() {
  ubuf_info* u = take_object();
  if (u == nullptr) return nullptr;
  ubuf_info_init(u, complete_pin, this);
  return u;
}

// The last fragment of a datagram send and its pending entry let go: the object is free again.
void MsgZerocopy::complete_pin(ubuf_info* uarg, bool) {
  static_cast<MsgZerocopy*>(uarg->ctx)->free_.push_back(uarg);
}

MsgZerocopy::~MsgZerocopy() {
  // Sends still pending may have fragments on the device (a socket freed at its last completion
  // frees its skbs' fragments after their destructor): their objects then delete themselves.
  for (Pending& p : pending_) {
    mm_unaccount_pinned_pages(&p.mmp);
    if (p.pin == nullptr) continue;
    p.pin->complete = [](ubuf_info* u, bool) { delete u; };
    net_zcopy_put(p.pin);
  }
  for (ubuf_info* u : free_) delete u;
}

bool MsgZerocopy::notify(uint32_t lo, uint32_t len, bool copied) {
  ++notified_;
  // kernel: __msg_zerocopy_callback(): extend the queue's tail when this range follows it
  // (skb_zerocopy_notify_extend(): lo == old_hi + 1 and the sum stays below 2^32; the tail keeps
  // its own code), else queue a new notification.
  if (!queue_.empty()) {
    Note& tail = queue_.back();
    uint64_t sum_len = uint64_t{tail.hi} - tail.lo + 1 + len;
    if (sum_len < (uint64_t{1} << 32) && lo == tail.hi + 1) {
      tail.hi += len;
      return true;
    }
  }
  queue_.push_back({lo, lo + len - 1, copied, false});
  return false;
}

void MsgZerocopy::complete_upto(uint64_t released) {
  while (!pending_.empty() && pending_.front().charged <= released) {
    Pending p = pending_.front();
    pending_.pop_front();
    mm_unaccount_pinned_pages(&p.mmp);
    // Every skb of the send is freed, so the device is done with its fragments: whether it read
    // them in place is known (kernel: uarg->zerocopy, read by __msg_zerocopy_callback()).
    const bool copied = p.copied || (p.pin != nullptr && !p.pin->zerocopy_success);
    if (p.pin != nullptr) net_zcopy_put(p.pin);
    // The object's skb becomes the notification (charge kept) unless it extends the tail; an
    // extending send's id joins its object's notification.
    const bool extended = notify(p.id, 1, copied);
    if (p.object && extended) omem_ -= kUargTruesize;
    if (p.object && !extended) queue_.back().charged = true;
  }
}

// kernel: msg_zerocopy_alloc() — sock_omalloc(sk, 0) fails past optmem_max, then
// mm_account_pinned_pages() past RLIMIT_MEMLOCK.
ubuf_info* MsgZerocopy::alloc_stream(size_t size, bool copied) {
  if (!omem_may_alloc()) return nullptr;
  ubuf_info* u = take_object();
  if (u == nullptr) return nullptr;
  ubuf_info_init(u, complete_stream, this);
  if (mm_account_pinned_pages(&u->mmp, size) != 0) {
    free_.push_back(u);
    return nullptr;
  }
  u->id = zckey_++;
  u->len = 1;
  u->bytelen = static_cast<uint32_t>(size);
  u->zerocopy_success = !copied;
  omem_ += kUargTruesize;
  ++live_;
  return u;
}

// kernel: msg_zerocopy_realloc(), net/core/skbuff.c
ubuf_info* MsgZerocopy::realloc_stream(size_t size, ubuf_info* tail, bool copied) {
  if (tail != nullptr && tail->complete == complete_stream && tail->ctx == this) {
    constexpr uint32_t kByteLimit = 1u << 19;  // "limit to a few TSO"
    uint64_t bytelen = uint64_t{tail->bytelen} + size;
    // "TCP can create new skb to attach new uarg"
    if (tail->len != 0xffff - 1 && bytelen <= kByteLimit && tail->id + tail->len == zckey_) {
      if (mm_account_pinned_pages(&tail->mmp, size) != 0) return nullptr;
      ++tail->len;
      tail->bytelen = static_cast<uint32_t>(bytelen);
      ++zckey_;
      net_zcopy_get(tail);  // "no extra ref when appending to datagram": a stream takes one
      return tail;
    }
  }
  return alloc_stream(size, copied);
}

// kernel: msg_zerocopy_put_abort()
void MsgZerocopy::put_abort(ubuf_info* uarg) {
  --zckey_;
  --uarg->len;
  net_zcopy_put(uarg);
}

// kernel: msg_zerocopy_callback() -> __msg_zerocopy_callback()
void MsgZerocopy::complete_stream(ubuf_info* uarg, bool zerocopy_success) {
  auto* z = static_cast<MsgZerocopy*>(uarg->ctx);
  mm_unaccount_pinned_pages(&uarg->mmp);
  // "if !len, there was only 1 call, and it was aborted so do not queue a completion notification"
  bool freed_charge = true;
  if (uarg->len != 0 && !z->dead_) {
    // The object's skb becomes the notification (charge kept) unless it extends the tail.
    if (!z->notify(uarg->id, uarg->len, !zerocopy_success)) {
      z->queue_.back().charged = true;
      freed_charge = false;
    }
  }
  if (freed_charge) z->omem_ -= kUargTruesize;
  z->free_.push_back(uarg);
  if (--z->live_ == 0 && z->dead_) delete z;
}

void MsgZerocopy::orphan() {
  dead_ = true;
  for (const Note& n : queue_) {
    if (n.charged) omem_ -= kUargTruesize;
  }
  queue_.clear();  // kernel: the error queue is purged when the socket is destroyed
  if (live_ == 0) delete this;
}

ssize_t MsgZerocopy::recv_error(msghdr* msg) {
  if (queue_.empty()) return -EAGAIN;
  const Note n = queue_.front();
  queue_.pop_front();
  if (n.charged) omem_ -= kUargTruesize;  // kernel: sock_ofree() as the skb is freed
  struct {
    sock_extended_err ee;
    sockaddr_in offender;
  } errhdr;
  std::memset(&errhdr, 0, sizeof errhdr);
  errhdr.ee.ee_errno = 0;
  errhdr.ee.ee_origin = SO_EE_ORIGIN_ZEROCOPY;
  errhdr.ee.ee_code = n.copied ? SO_EE_CODE_ZEROCOPY_COPIED : 0;
  errhdr.ee.ee_info = n.lo;
  errhdr.ee.ee_data = n.hi;
  // ipv4_datagram_support_addr() is false for this origin: msg_name is left alone, namelen 0.
  msg->msg_namelen = 0;
  CmsgOut cm{.control = static_cast<uint8_t*>(msg->msg_control), .controllen = msg->msg_controllen};
  put_cmsg(&cm, SOL_IP, IP_RECVERR, &errhdr, sizeof errhdr);
  msg->msg_controllen = cm.used;
  msg->msg_flags = cm.msg_flags | MSG_ERRQUEUE;
  return 0;
}

}  // namespace xmit
