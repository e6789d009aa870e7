// stack/sock/msg_zerocopy.cc — see msg_zerocopy.h.
#include "stack/sock/msg_zerocopy.h"

#include <linux/errqueue.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>

#include "stack/sock/cmsg_recv.h"

namespace xmit {

void MsgZerocopy::sent(uint64_t charged, bool copied) {
  pending_.push_back({zckey_++, charged, copied});
}

void MsgZerocopy::complete_upto(uint64_t released) {
  while (!pending_.empty() && pending_.front().charged <= released) {
    const Pending p = pending_.front();
    pending_.pop_front();
    // kernel: __msg_zerocopy_callback(): extend the queue's tail when this range follows it
    // (skb_zerocopy_notify_extend(): lo == old_hi + 1 and the sum stays below 2^32; the tail keeps
    // its own code), else queue a new notification.
    if (!queue_.empty()) {
      Note& tail = queue_.back();
      uint64_t sum_len = uint64_t{tail.hi} - tail.lo + 1 + 1;
      if (sum_len < (uint64_t{1} << 32) && p.id == tail.hi + 1) {
        ++tail.hi;
        continue;
      }
    }
    queue_.push_back({p.id, p.id, p.copied});
  }
}

ssize_t MsgZerocopy::recv_error(msghdr* msg) {
  if (queue_.empty()) return -EAGAIN;
  const Note n = queue_.front();
  queue_.pop_front();
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
