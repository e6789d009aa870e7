// stack/sock/msg_zerocopy.h — MSG_ZEROCOPY completions: the id each zerocopy send takes, the
// notification queued when the stack is done with its bytes, coalesced with the previous one when
// the ids follow on, and the error-queue record recvmsg(MSG_ERRQUEUE) returns for it.
// Kernel counterparts: msg_zerocopy_realloc()/msg_zerocopy_alloc() (sk->sk_zckey),
// __msg_zerocopy_callback() + skb_zerocopy_notify_extend() (net/core/skbuff.c), ip_recv_error()
// (net/ipv4/ip_sockglue.c) for an SO_EE_ORIGIN_ZEROCOPY record.
//
// Two ways to tell when a send is done with:
//  * UDP (sent() / complete_upto()): when every skb it charged to the send buffer is freed. The
//    socket's skbs are freed in the order they were charged (one device queue, completions in
//    order), so a send completes once the socket's released bytes reach what it had charged by the
//    end of the send (stack/ipv4/sk_wmem.h keeps both running totals). As the kernel, each
//    datagram holds one object (a corked datagram's later sends extend it), charged to the option
//    memory until its notification is read or coalesced (dgram_may_alloc(): ENOBUFS past it).
//  * TCP (realloc_stream() / put() / put_abort()): as the kernel, a ubuf_info that the skbs
//    carrying the send's bytes hold (skb_zcopy_set()); it completes when the last of them is freed,
//    for TCP when the peer has ACKed the bytes and the device is done with every clone. Consecutive
//    sends into the same tail skb share one object (one notification for their range). Each live
//    object and each queued notification is charged to the socket's option memory like the kernel's
//    sock_omalloc()'d skb; past net.core.optmem_max realloc_stream() fails (ENOBUFS).
// Lifetime (TCP): skbs may outlive the socket (an orphaned connection draining, a clone on the
// device); the object then lives on until its last ubuf_info completes (orphan(), kernel:
// sock_hold() per ubuf_info) and queues nothing more (SOCK_DEAD).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

#include "stack/skb/ubuf.h"

namespace xmit {

class MsgZerocopy {
 public:
  // kernel: SKB_TRUESIZE(0) as sock_omalloc() checks it, and the truesize of the skb each
  // ubuf_info lives in (alloc_skb(0): a 576-byte small head + 256), what the socket's option
  // memory is charged per object. Measured on Linux 6.18 x86-64 with every object live (the peer
  // drops the data): optmem_max 4096/8192/65536/131072/262144 give 5/10/79/157/315 objects,
  // which only 576 and 832 explain; tests/e2e/tcp_zerocopy.py's optmem case checks it.
  static constexpr uint32_t kOmallocCheck = 576;
  static constexpr uint32_t kUargTruesize = 832;

  MsgZerocopy() = default;
  MsgZerocopy(const MsgZerocopy&) = delete;
  MsgZerocopy& operator=(const MsgZerocopy&) = delete;
  ~MsgZerocopy();

  // net.core.optmem_max (kernel: sysctl_optmem_max); 0 leaves it unlimited.
  void set_optmem_max(uint32_t v) { optmem_max_ = v; }
  // kernel: sk->sk_omem_alloc, the part MSG_ZEROCOPY holds.
  uint32_t omem_alloc() const { return omem_; }

  // A MSG_ZEROCOPY send of `size` (> 0) bytes on a stream socket: extends `tail` (the write
  // queue's tail skb's object) when it holds the latest id and stays under 512 KiB, with one more
  // reference for the caller; else a new object (one reference, the caller's). nullptr: the
  // option memory is full (ENOBUFS). `copied`: the bytes are copied (the notification then says
  // SO_EE_CODE_ZEROCOPY_COPIED). kernel: msg_zerocopy_realloc() for SOCK_STREAM
  ubuf_info* realloc_stream(size_t size, ubuf_info* tail, bool copied);
  // The send queued bytes: drops the caller's reference. kernel: net_zcopy_put()
  static void put(ubuf_info* uarg) { net_zcopy_put(uarg); }
  // The send queued nothing: gives its id back, drops the caller's reference.
  // kernel: msg_zerocopy_put_abort(uarg, true)
  void put_abort(ubuf_info* uarg);
  // The socket is closed: no more notifications; deletes this once no ubuf_info is live, now or
  // at the last completion. kernel: sock_orphan() (SOCK_DEAD), sock_put() per ubuf_info
  void orphan();

  // Whether a datagram's send may take a new object: false once the option memory is full
  // (the send fails with ENOBUFS). kernel: msg_zerocopy_alloc() -> sock_omalloc()
  bool dgram_may_alloc() const { return omem_may_alloc(); }
  // A MSG_ZEROCOPY send of at least one byte succeeded; by its end the socket had charged
  // `charged` bytes in all. `copied`: the bytes were copied (AF_XDP: always) — the notification
  // then carries SO_EE_CODE_ZEROCOPY_COPIED. `new_object`: the send took an object (charged to
  // the option memory) rather than extending its corked datagram's.
  // kernel: msg_zerocopy_realloc() takes sk_zckey++
  // `pin` (or nullptr): the object the send's in-place fragments held (dgram_pin()); the send takes
  // over the caller's reference, and the notification says COPIED if the device had to copy them
  // after all (its zerocopy_success cleared).
  // `mmp`: the send's charge against RLIMIT_MEMLOCK (taken over, given back at its completion).
  void sent(uint64_t charged, bool copied, bool new_object, ubuf_info* pin = nullptr, MmPin* mmp = nullptr);
  // An object for a datagram send's in-place fragments (kUser) on a device that reads user
  // memory: one reference, the caller's; each fragment takes its own. Not charged to the option
  // memory (the send's id is, through sent()). nullptr: no memory (the send then copies).
  ubuf_info* dgram_pin();
  // The socket has released `released` bytes in all: the sends now done with queue notifications.
  // kernel: msg_zerocopy_complete() -> __msg_zerocopy_callback()
  void complete_upto(uint64_t released);
  bool has_notification() const { return !queue_.empty(); }
  // Notifications queued or extended so far (a wakeup count for edge-triggered epoll).
  uint64_t notifications() const { return notified_; }
  // Dequeues the oldest notification into `msg` as ip_recv_error() does: returns 0 (the record has
  // no payload), MSG_ERRQUEUE in msg_flags, msg_namelen 0, one SOL_IP/IP_RECVERR cmsg holding a
  // sock_extended_err and a zeroed offender address (MSG_CTRUNC when it does not fit). -EAGAIN
  // when none waits.
  ssize_t recv_error(msghdr* msg);

 private:
  // kernel: sock_omalloc()'s test: size 0 (its SKB_TRUESIZE) must fit under optmem_max.
  bool omem_may_alloc() const { return optmem_max_ == 0 || uint64_t{omem_} + kOmallocCheck <= optmem_max_; }
  // kernel: msg_zerocopy_alloc(), __msg_zerocopy_callback()
  ubuf_info* take_object();
  ubuf_info* alloc_stream(size_t size, bool copied);
  static void complete_stream(ubuf_info* uarg, bool zerocopy_success);
  static void complete_pin(ubuf_info* uarg, bool zerocopy_success);
  // Queues [lo, lo + len) or extends the tail notification. Returns true when extended.
  // kernel: skb_zerocopy_notify_extend() and the queueing of __msg_zerocopy_callback()
  bool notify(uint32_t lo, uint32_t len, bool copied);

  struct Note {
    uint32_t lo, hi;
    bool copied;
    bool charged;  // holds kUargTruesize of omem_ until read (the stream path's)
  };
  struct Pending {
    uint32_t id;
    uint64_t charged;
    bool copied;
    bool object;  // holds kUargTruesize of omem_: the datagram's object (its first zerocopy send)
    ubuf_info* pin;  // the send's in-place fragments' object (one reference), or nullptr
    MmPin mmp;       // the send's pages charged to RLIMIT_MEMLOCK (kernel: the object's mmp)
  };
  uint32_t zckey_ = 0;             // kernel: sk->sk_zckey
  std::deque<Pending> pending_;    // sends whose bytes the stack still holds, oldest first
  std::deque<Note> queue_;         // kernel: the SO_EE_ORIGIN_ZEROCOPY skbs on sk_error_queue
  std::vector<ubuf_info*> free_;   // completed objects kept for the next sends
  uint32_t live_ = 0;              // objects not completed yet
  uint32_t omem_ = 0;              // kernel: sk_omem_alloc (live objects + queued notifications)
  uint32_t optmem_max_ = 0;        // kernel: net.core.optmem_max
  bool dead_ = false;              // kernel: SOCK_DEAD
  uint64_t notified_ = 0;
};

}  // namespace xmit
