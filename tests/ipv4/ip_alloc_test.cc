// tests/ipv4/ip_alloc_test.cc — the output path allocates nothing: after warm-up, uncorked sends
// (one packet, fragmented, SG and not, hardware checksum) and a corked send count 0 operator new.
#include <sys/socket.h>

#include "gtest/gtest.h"
#include "stack/ipv4/skb_queue.h"
#include "tests/ipv4/harness.h"
#include "tests/stack/count_new.h"

namespace xmit::testing_ipv4 {
namespace {

TEST(Ipv4Alloc, NoHeapAllocationAfterWarmup) {
  Bed bed;
  bed.neigh.sent.reserve(4096);
  InetSock sk = bed.sock();
  auto small = pattern(200);
  auto big = pattern(4000);
  auto piece = pattern(700);
  auto round = [&] {
    for (int sg = 0; sg < 2; ++sg) {
      bed.dev.max_segs = sg ? 17 : 1;
      bed.dev.l4_csum = sg;
      if (bed.send(&sk, small) != 0 || bed.send(&sk, big) != 0) return false;
      if (bed.append(&sk, piece, MSG_MORE) != 0 || bed.append(&sk, piece, MSG_MORE) != 0) return false;
      if (bed.push(&sk) != 0) return false;
    }
    return true;
  };
  ASSERT_TRUE(round());  // warm-up
  // The recording neighbour copies each packet into a std::vector: count only the stack's part
  // by replacing it with one that frees and keeps nothing.
  struct Sink final : NeighOutput {
    int neigh_output(sk_buff* skb, const IpTxInfo&) override {
      ++n;
      kfree_skb_list(skb);
      return 0;
    }
    int n = 0;
  } sink;
  IpOutCtx c = bed.ctx();
  c.neigh = &sink;
  size_t before = testing_support::operator_new_calls();
  for (int i = 0; i < 100; ++i) {
    for (int sg = 0; sg < 2; ++sg) {
      bed.dev.max_segs = sg ? 17 : 1;
      iovec iov{big.data(), big.size()};
      IovIter it;
      ASSERT_EQ(iov_iter_init(&it, absl::MakeConstSpan(&iov, 1)), 0);
      IpcmCookie ipc;
      ipcm_init_sk(&ipc, sk);
      sk_buff* skb = nullptr;
      ASSERT_EQ(ip_make_skb(c, &sk, bed.fl4(), bed.route(), &it, 4008, 8, ipc, 0, &skb), 0);
      ASSERT_EQ(udp_send_skb(c, &sk, &bed.udp_mib, skb, bed.fl4()), 0);
      iovec iov2{piece.data(), piece.size()};
      ASSERT_EQ(iov_iter_init(&it, absl::MakeConstSpan(&iov2, 1)), 0);
      ASSERT_EQ(ip_append_data(c, &sk, bed.fl4(), bed.route(), &it, 708, 8, ipc, MSG_MORE), 0);
      ASSERT_EQ(iov_iter_init(&it, absl::MakeConstSpan(&iov2, 1)), 0);
      ASSERT_EQ(ip_append_data(c, &sk, bed.fl4(), bed.route(), &it, 700, 0, ipc, MSG_MORE), 0);
      ASSERT_EQ(udp_push_pending_frames(c, &sk, &bed.udp_mib), 0);
    }
  }
  EXPECT_EQ(testing_support::operator_new_calls() - before, 0u);
  EXPECT_EQ(sink.n, 100 * 2 * (3 + 1));
  inet_sock_destruct(&sk);
  EXPECT_TRUE(bed.pools_full());
}

}  // namespace
}  // namespace xmit::testing_ipv4
