// tests/ipv4/sk_wmem_test.cc — what __ip_append_data() charges to sk_wmem_alloc: the kernel's
// truesize of each allocation (SKB_TRUESIZE, x86_64), page-fragment bytes, the EAGAIN and ENOBUFS
// limits against sk_sndbuf, and the release when the last skb is freed.
#include <sys/socket.h>

#include "gtest/gtest.h"
#include "stack/ipv4/ip_output.h"
#include "stack/ipv4/sk_wmem.h"
#include "tests/ipv4/harness.h"

namespace xmit {
namespace {

using testing_ipv4::Bed;
using testing_ipv4::pattern;

// The datagram's train, built and charged, not sent.
int make_train(Bed* bed, InetSock* sk, size_t payload, uint16_t gso_size, sk_buff** out) {
  std::vector<uint8_t> p = pattern(payload);
  iovec iov{p.data(), p.size()};
  IovIter it;
  if (int err = iov_iter_init(&it, absl::MakeConstSpan(&iov, 1)); err) return err;
  IpcmCookie ipc;
  ipcm_init_sk(&ipc, *sk);
  ipc.gso_size = gso_size;
  InetCork cork;
  return ip_make_skb(bed->ctx(), sk, bed->fl4(), bed->route(), &it, static_cast<int>(payload + 8), 8, ipc,
                     &cork, 0, out);
}

void free_train(sk_buff* skb) {
  while (skb != nullptr) {
    sk_buff* next = skb->next;
    kfree_skb(skb);
    skb = next;
  }
}

TEST(SkbTruesize, X86_64Slabs) {
  // alloclen = IP + UDP + payload + hh_len 16 + 15
  EXPECT_EQ(skb_alloc_truesize(20 + 8 + 10 + 31), 832u);    // skb_small_head_cache
  EXPECT_EQ(skb_alloc_truesize(20 + 8 + 500 + 31), 1280u);  // kmalloc-1k
  EXPECT_EQ(skb_alloc_truesize(20 + 8 + 1000 + 31), 2304u); // kmalloc-2k
  EXPECT_EQ(skb_alloc_truesize(1500 + 31), 2304u);
  EXPECT_EQ(skb_alloc_truesize(9000 + 31), 16640u);         // kmalloc-16k (page order 2)
}

struct ChargeCase {
  const char* name;
  size_t payload;
  uint16_t gso_size;
  uint32_t charge;  // sk_wmem_alloc_get() with the train built
};

class ChargeTest : public ::testing::TestWithParam<ChargeCase> {};

TEST_P(ChargeTest, TrainChargesWhatTheKernelDoes) {
  const ChargeCase& c = GetParam();
  Bed bed;
  bed.dev.max_segs = 17;  // SG, as veth
  InetSock sk = bed.sock();
  sk_buff* skb = nullptr;
  ASSERT_EQ(make_train(&bed, &sk, c.payload, c.gso_size, &skb), 0);
  EXPECT_EQ(sk_wmem_alloc_get(sk), c.charge);
  free_train(skb);
  EXPECT_EQ(sk.sk_wmem_alloc, 1u);
  inet_sock_destruct(&sk);
  EXPECT_TRUE(bed.pools_full());
}

// Linear skbs: measured on the kernel (SIOCOUTQ behind a stalled qdisc). GSO: the kernel's one
// paged skb before segmentation, 59-byte head (832) + every payload byte in page fragments.
INSTANTIATE_TEST_SUITE_P(
    Kernel, ChargeTest,
    ::testing::Values(ChargeCase{"one_10B", 10, 0, 832}, ChargeCase{"one_1000B", 1000, 0, 2304},
                      ChargeCase{"two_fragments_1473B", 1473, 0, 2304 + 832},
                      ChargeCase{"four_fragments_5000B", 5000, 0, 3 * 2304 + 1280},
                      ChargeCase{"gso_20000B", 20000, 1000, 832 + 20000}),
    [](const ::testing::TestParamInfo<ChargeCase>& i) { return std::string(i.param.name); });

// kernel: appends to a corked packet go into page fragments (SG): truesize grows by the bytes.
TEST(Charge, CorkedAppendAddsItsBytes) {
  Bed bed;
  bed.dev.max_segs = 17;
  InetSock sk = bed.sock();
  ASSERT_EQ(bed.append(&sk, pattern(10), MSG_MORE), 0);
  EXPECT_EQ(sk_wmem_alloc_get(sk), 832u);
  ASSERT_EQ(bed.append(&sk, pattern(10), MSG_MORE), 0);
  EXPECT_EQ(sk_wmem_alloc_get(sk), 842u);
  ip_flush_pending_frames(&sk);
  EXPECT_EQ(sk_wmem_alloc_get(sk), 0u);
  inet_sock_destruct(&sk);
}

TEST(Charge, SndbufLimits) {
  Bed bed;
  bed.dev.max_segs = 17;
  InetSock sk = bed.sock();
  sk.sk_sndbuf = SOCK_MIN_SNDBUF;
  sk_buff* a = nullptr;
  sk_buff* b = nullptr;
  sk_buff* c = nullptr;
  ASSERT_EQ(make_train(&bed, &sk, 1000, 0, &a), 0);
  ASSERT_EQ(make_train(&bed, &sk, 1000, 0, &b), 0);  // 2304 < 4608: may start
  EXPECT_EQ(make_train(&bed, &sk, 10, 0, &c), -EAGAIN);  // 4608: full, whatever the size
  free_train(b);
  // 2304 charged: an 8000-byte datagram's sixth fragment passes 2 * sk_sndbuf: -ENOBUFS.
  EXPECT_EQ(make_train(&bed, &sk, 8000, 0, &c), -ENOBUFS);
  EXPECT_EQ(sk_wmem_alloc_get(sk), 2304u);
  free_train(a);
  ASSERT_EQ(make_train(&bed, &sk, 5000, 0, &c), 0);  // four fragments fit under 9216
  free_train(c);
  EXPECT_EQ(sk.sk_wmem_alloc, 1u);
  inet_sock_destruct(&sk);
  EXPECT_TRUE(bed.pools_full());
}

TEST(Charge, ClonesAreNotCharged) {
  Bed bed;
  InetSock sk = bed.sock();
  sk_buff* skb = nullptr;
  ASSERT_EQ(make_train(&bed, &sk, 100, 0, &skb), 0);
  sk_buff* clone = skb_clone(skb);
  ASSERT_NE(clone, nullptr);
  EXPECT_EQ(clone->destructor, nullptr);
  kfree_skb(skb);
  EXPECT_EQ(sk.sk_wmem_alloc, 1u);  // the original's charge went with it
  kfree_skb(clone);
  EXPECT_EQ(sk.sk_wmem_alloc, 1u);
  inet_sock_destruct(&sk);
}

}  // namespace
}  // namespace xmit
