// tests/tcp/tcp_alloc_test.cc — no operator new on the send path: tcp_sendmsg_locked() through
// tcp_write_xmit() and the header build, for small (Nagle/NODELAY) and multi-segment (GSO) sends.
#include <sys/socket.h>

#include "gtest/gtest.h"
#include "tests/stack/count_new.h"
#include "tests/tcp/tcp_bed.h"

namespace xmit::testing_tcp {
namespace {

TEST(TcpAlloc, SendPathDoesNotAllocate) {
  TcpBed bed;
  bed.nodelay(true);
  static uint8_t data[20000];
  size_t sent_segments = 0;
  auto xmit = [&](sk_buff* skb) {
    ++sent_segments;
    kfree_skb(skb);
    return 0;
  };
  auto round = [&](size_t n, int flags) {
    EXPECT_EQ(tcp_sendmsg_locked(&bed.tp, data, n, flags, bed.mtu, xmit), static_cast<int>(n));
    bed.ack_all();
  };
  round(100, 0);  // warm-up
  size_t before = testing_support::operator_new_calls();
  for (int i = 0; i < 100; ++i) {
    round(100, 0);
    round(20000, 0);
    round(300, MSG_MORE);
    round(1, 0);
  }
  EXPECT_EQ(testing_support::operator_new_calls() - before, 0u);
  EXPECT_GT(sent_segments, 300u);
}

}  // namespace
}  // namespace xmit::testing_tcp
