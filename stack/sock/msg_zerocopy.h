// stack/sock/msg_zerocopy.h — MSG_ZEROCOPY completions: the id each zerocopy send takes, the
// notification queued when the stack is done with its bytes, coalesced with the previous one when
// the ids follow on, and the error-queue record recvmsg(MSG_ERRQUEUE) returns for it.
// Kernel counterparts: msg_zerocopy_realloc()/msg_zerocopy_alloc() (sk->sk_zckey),
// __msg_zerocopy_callback() + skb_zerocopy_notify_extend() (net/core/skbuff.c), ip_recv_error()
// (net/ipv4/ip_sockglue.c) for an SO_EE_ORIGIN_ZEROCOPY record.
//
// A send is done with when every skb it charged to the send buffer is freed. The socket's skbs are
// freed in the order they were charged (one device queue, completions in order), so a send
// completes once the socket's released bytes reach what it had charged by the end of the send
// (stack/ipv4/sk_wmem.h keeps both running totals). Not modelled yet: the optmem limit (ENOBUFS
// when notifications pile up unread: net.core.optmem_max).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <utility>

namespace xmit {

class MsgZerocopy {
 public:
  // A MSG_ZEROCOPY send of at least one byte succeeded; by its end the socket had charged
  // `charged` bytes in all. `copied`: the bytes were copied (AF_XDP: always) — the notification
  // then carries SO_EE_CODE_ZEROCOPY_COPIED. kernel: msg_zerocopy_realloc() takes sk_zckey++
  void sent(uint64_t charged, bool copied);
  // The socket has released `released` bytes in all: the sends now done with queue notifications.
  // kernel: msg_zerocopy_complete() -> __msg_zerocopy_callback()
  void complete_upto(uint64_t released);
  bool has_notification() const { return !queue_.empty(); }
  // Dequeues the oldest notification into `msg` as ip_recv_error() does: returns 0 (the record has
  // no payload), MSG_ERRQUEUE in msg_flags, msg_namelen 0, one SOL_IP/IP_RECVERR cmsg holding a
  // sock_extended_err and a zeroed offender address (MSG_CTRUNC when it does not fit). -EAGAIN
  // when none waits.
  ssize_t recv_error(msghdr* msg);

 private:
  struct Note {
    uint32_t lo, hi;
    bool copied;
  };
  struct Pending {
    uint32_t id;
    uint64_t charged;
    bool copied;
  };
  uint32_t zckey_ = 0;             // kernel: sk->sk_zckey
  std::deque<Pending> pending_;    // sends whose bytes the stack still holds, oldest first
  std::deque<Note> queue_;         // kernel: the SO_EE_ORIGIN_ZEROCOPY skbs on sk_error_queue
};

}  // namespace xmit
