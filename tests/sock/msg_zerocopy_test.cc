// tests/sock/msg_zerocopy_test.cc — MSG_ZEROCOPY notifications: ids in send order, completion when
// the socket's released bytes reach a send's charge, coalescing of following ids into the queue's
// tail (never across a gap, and the tail keeps its code), and ip_recv_error()'s record layout.
#include <netinet/in.h>
#include <time.h>
#include <linux/errqueue.h>

#include <sys/resource.h>

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

// RLIMIT_MEMLOCK (kernel: mm_account_pinned_pages()): a stream send charges (size >> 12) + 2
// pages to a new object and again to an extension, refuses (nullptr: ENOBUFS) past the limit, and
// gives them back at the object's completion; with CAP_IPC_LOCK or an infinite limit nothing counts.
bool g_cap = false;
uint64_t g_limit = 16 * 4096;  // 16 pages
struct PinLimits {
  PinLimits() { mm_pin_set_limits({.cap_ipc_lock = [] { return g_cap; }, .memlock = [] { return g_limit; }}); }
  ~PinLimits() { mm_pin_set_limits({}); }
};

TEST(MsgZerocopy, StreamSendsChargeLockedMemoryUntilTheirCompletion) {
  PinLimits limits;
  g_cap = false;
  g_limit = 16 * 4096;
  auto* zc = new MsgZerocopy();
  EXPECT_EQ(zc->realloc_stream(100000, nullptr, true), nullptr);  // 26 pages
  EXPECT_EQ(mm_pinned_pages(), 0u);
  ubuf_info* a = zc->realloc_stream(20000, nullptr, true);  // 6
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(mm_pinned_pages(), 6u);
  ubuf_info* b = zc->realloc_stream(20000, a, true);  // extends a: 12
  ASSERT_EQ(b, a);
  EXPECT_EQ(mm_pinned_pages(), 12u);
  EXPECT_EQ(zc->realloc_stream(20000, a, true), nullptr);  // 18: refused, the id not taken
  EXPECT_EQ(a->len, 2u);
  EXPECT_EQ(mm_pinned_pages(), 12u);
  ubuf_info* c = zc->realloc_stream(1, nullptr, true);  // a new object: 14
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(mm_pinned_pages(), 14u);
  MsgZerocopy::put(c);  // completes: its 2 pages come back
  EXPECT_EQ(mm_pinned_pages(), 12u);
  MsgZerocopy::put(a);  // the extension's reference, then the send's
  MsgZerocopy::put(a);
  EXPECT_EQ(mm_pinned_pages(), 0u);
  g_cap = true;  // CAP_IPC_LOCK: nothing counts
  ubuf_info* d = zc->realloc_stream(1 << 20, nullptr, true);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(mm_pinned_pages(), 0u);
  MsgZerocopy::put(d);
  g_cap = false;
  g_limit = RLIM_INFINITY;  // no limit: nothing counts
  ubuf_info* e = zc->realloc_stream(1 << 20, nullptr, true);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(mm_pinned_pages(), 0u);
  MsgZerocopy::put(e);
  zc->orphan();
}

// A datagram send's charge (taken by ip_append_data() into the socket's MmPin) moves into its
// pending entry and comes back when the socket has released the send's bytes.
TEST(MsgZerocopy, DatagramChargeComesBackAtCompletion) {
  PinLimits limits;
  g_cap = false;
  g_limit = 16 * 4096;
  MsgZerocopy zc;
  MmPin call;
  ASSERT_EQ(mm_account_pinned_pages(&call, 20008), 0);  // 6 pages
  EXPECT_EQ(mm_account_pinned_pages(&call, 40008), -ENOBUFS);  // 6 + 11 > 16
  EXPECT_EQ(call.num_pg, 6u);
  zc.sent(/*charged=*/1000, /*copied=*/true, /*new_object=*/true, nullptr, &call);
  EXPECT_EQ(call.num_pg, 0u);
  EXPECT_EQ(mm_pinned_pages(), 6u);
  zc.complete_upto(999);
  EXPECT_EQ(mm_pinned_pages(), 6u);
  zc.complete_upto(1000);
  EXPECT_EQ(mm_pinned_pages(), 0u);
}

}  // namespace
}  // namespace xmit
