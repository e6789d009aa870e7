// tests/sock/msg_zerocopy_test.cc — MSG_ZEROCOPY notifications: ids in send order, completion when
// the socket's released bytes reach a send's charge, coalescing of following ids into the queue's
// tail (never across a gap, and the tail keeps its code), and ip_recv_error()'s record layout.
#include <netinet/in.h>
#include <time.h>
#include <linux/errqueue.h>

#include <cstring>

#include "gtest/gtest.h"
#include "stack/sock/msg_zerocopy.h"

namespace xmit {
namespace {

struct Record {
  ssize_t ret;
  int flags;
  socklen_t namelen;
  size_t controllen;
  sock_extended_err ee;
};

Record read(MsgZerocopy& zc, size_t control = 512) {
  alignas(8) uint8_t buf[512];
  std::memset(buf, 0xee, sizeof buf);
  msghdr m{};
  sockaddr_in name{};
  m.msg_name = &name;
  m.msg_namelen = sizeof name;
  m.msg_control = buf;
  m.msg_controllen = control;
  Record r{zc.recv_error(&m), m.msg_flags, m.msg_namelen, m.msg_controllen, {}};
  if (r.ret == 0 && m.msg_controllen >= CMSG_LEN(sizeof(sock_extended_err))) {
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    EXPECT_EQ(c->cmsg_level, SOL_IP);
    EXPECT_EQ(c->cmsg_type, IP_RECVERR);
    EXPECT_EQ(c->cmsg_len, CMSG_LEN(sizeof(sock_extended_err) + sizeof(sockaddr_in)));
    std::memcpy(&r.ee, CMSG_DATA(c), sizeof r.ee);
    sockaddr_in offender;
    std::memcpy(&offender, CMSG_DATA(c) + sizeof r.ee, sizeof offender);
    sockaddr_in zero{};
    EXPECT_EQ(std::memcmp(&offender, &zero, sizeof zero), 0) << "the offender is zeroed";
  }
  return r;
}

TEST(MsgZerocopy, CompletesInOrderAndCoalescesFollowingIds) {
  MsgZerocopy zc;
  zc.sent(100, true, true);   // id 0
  zc.sent(250, true, true);   // id 1
  zc.sent(400, true, true);   // id 2
  EXPECT_FALSE(zc.has_notification());
  EXPECT_EQ(read(zc).ret, -EAGAIN);
  zc.complete_upto(99);
  EXPECT_FALSE(zc.has_notification()) << "id 0 still holds a byte";
  zc.complete_upto(250);
  ASSERT_TRUE(zc.has_notification());
  zc.complete_upto(400);  // id 2 follows on: extends the unread record
  Record r = read(zc);
  EXPECT_EQ(r.ret, 0);
  EXPECT_EQ(r.flags, MSG_ERRQUEUE);
  EXPECT_EQ(r.namelen, 0u);
  EXPECT_EQ(r.ee.ee_errno, 0u);
  EXPECT_EQ(r.ee.ee_origin, SO_EE_ORIGIN_ZEROCOPY);
  EXPECT_EQ(r.ee.ee_code, SO_EE_CODE_ZEROCOPY_COPIED);
  EXPECT_EQ(r.ee.ee_info, 0u);
  EXPECT_EQ(r.ee.ee_data, 2u);
  EXPECT_EQ(read(zc).ret, -EAGAIN);

  // After a read the next completion starts a new record.
  zc.sent(500, false, true);  // id 3
  zc.complete_upto(500);
  r = read(zc);
  EXPECT_EQ(r.ee.ee_info, 3u);
  EXPECT_EQ(r.ee.ee_data, 3u);
  EXPECT_EQ(r.ee.ee_code, 0) << "copy-free";
}

TEST(MsgZerocopy, TailKeepsItsCodeAndTruncatedControlIsFlagged) {
  MsgZerocopy zc;
  zc.sent(10, false, true);
  zc.sent(20, true, true);
  zc.complete_upto(20);
  Record r = read(zc, CMSG_LEN(4));  // room for the header and 4 bytes
  EXPECT_EQ(r.ret, 0);
  EXPECT_EQ(r.flags, MSG_ERRQUEUE | MSG_CTRUNC);
  EXPECT_EQ(r.controllen, CMSG_LEN(4));
  EXPECT_FALSE(zc.has_notification()) << "the record is consumed even when truncated";
  zc.sent(30, true, true);
  zc.sent(40, false, true);
  zc.complete_upto(40);
  r = read(zc);
  EXPECT_EQ(r.ee.ee_info, 2u);
  EXPECT_EQ(r.ee.ee_data, 3u);
  EXPECT_EQ(r.ee.ee_code, SO_EE_CODE_ZEROCOPY_COPIED) << "skb_zerocopy_notify_extend() keeps the tail's code";
}

}  // namespace
}  // namespace xmit
