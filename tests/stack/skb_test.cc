// tests/stack/skb_test.cc — BufPool, SkbPool and sk_buff: headroom arithmetic, fragments and their
// references, clone/copy sharing, zerocopy completions, linearising, summing, device segments.
#include <cerrno>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stack/skb/pool.h"
#include "stack/skb/sk_buff.h"
#include "stack/skb/skb_frame.h"

namespace xmit {
namespace {

TEST(BufPool, RejectsBadGeometry) {
  std::unique_ptr<BufPool> p;
  EXPECT_EQ(BufPool::create(0, 2048, &p), -EINVAL);
  EXPECT_EQ(BufPool::create(4, 32, &p), -EINVAL);
  EXPECT_EQ(BufPool::create(4, 3000, &p), -EINVAL);
  EXPECT_EQ(BufPool::create(4, 131072, &p), -EINVAL);
  EXPECT_EQ(p, nullptr);
}

TEST(BufPool, CarvesOneRegionAndReportsExhaustion) {
  std::unique_ptr<BufPool> p;
  ASSERT_EQ(BufPool::create(8, 2048, &p), 0);
  EXPECT_EQ(p->size(), 8u * 2048);
  EXPECT_EQ(p->buf_size(), 2048u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p->base()) % 4096, 0u);
  std::set<uint8_t*> seen;
  for (int i = 0; i < 8; ++i) {
    uint8_t* b = p->alloc();
    ASSERT_NE(b, nullptr);
    EXPECT_TRUE(p->contains(b));
    EXPECT_EQ((b - p->base()) % 2048, 0);
    EXPECT_EQ(p->index_of(b + 2047), p->index_of(b));
    EXPECT_EQ(p->buf_start(b + 100), b);
    std::memset(b, i, 2048);  // writable, and no overlap (checked below)
    seen.insert(b);
  }
  EXPECT_EQ(seen.size(), 8u);
  EXPECT_EQ(p->nr_free(), 0u);
  EXPECT_EQ(p->alloc(), nullptr);
  for (uint8_t* b : seen) EXPECT_EQ(b[0], b[2047]);
  uint8_t* b = *seen.begin();
  p->get(b + 10);
  EXPECT_EQ(p->refcount(b), 2u);
  p->put(b);
  EXPECT_EQ(p->nr_free(), 0u);
  p->put(b + 2000);
  EXPECT_EQ(p->nr_free(), 1u);
  EXPECT_EQ(p->alloc(), b);  // LIFO
}

class SkbTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(BufPool::create(64, 2048, &bufs_), 0);
    ASSERT_EQ(SkbPool::create(16, bufs_.get(), &skbs_), 0);
  }
  // A pool buffer holding `n` bytes 0, 1, 2, ... starting at `start`, as a fragment.
  skb_frag pool_frag(uint32_t n, uint8_t start = 0, uint32_t off = 0) {
    uint8_t* b = bufs_->alloc();
    EXPECT_NE(b, nullptr);
    for (uint32_t i = 0; i < n; ++i) b[off + i] = static_cast<uint8_t>(start + i);
    return skb_frag_pool(bufs_.get(), b + off, n);
  }
  void expect_all_free() {
    EXPECT_EQ(bufs_->nr_free(), bufs_->nr_bufs());
    EXPECT_EQ(skbs_->nr_free(), skbs_->nr_skbs());
  }
  std::vector<uint8_t> linear(const sk_buff* skb) {
    std::vector<uint8_t> out(skb->len);
    EXPECT_EQ(skb_copy_bits(skb, 0, out.data(), skb->len), 0);
    return out;
  }
  std::unique_ptr<BufPool> bufs_;
  std::unique_ptr<SkbPool> skbs_;
};

TEST_F(SkbTest, HeadroomPushPutPull) {
  sk_buff* skb = skbs_->alloc_skb();
  ASSERT_NE(skb, nullptr);
  EXPECT_EQ(skb_headroom(skb), 0u);
  EXPECT_EQ(skb_tailroom(skb), 2048u);
  ASSERT_EQ(skb_reserve(skb, 128), 0);
  EXPECT_EQ(skb_headroom(skb), 128u);
  EXPECT_EQ(skb_tailroom(skb), 1920u);

  uint8_t* p = skb_put_data(skb, "payload", 7);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p, skb->head + 128);
  EXPECT_EQ(skb->len, 7u);
  EXPECT_EQ(skb_reserve(skb, 1), -EINVAL);  // only on an empty skb

  uint8_t* h = skb_push(skb, 8);
  ASSERT_EQ(h, skb->head + 120);
  std::memcpy(h, "UDPHDR..", 8);
  skb_reset_transport_header(skb);
  ASSERT_NE(skb_push(skb, 20), nullptr);
  skb_reset_network_header(skb);
  EXPECT_EQ(skb->len, 35u);
  EXPECT_EQ(skb_headroom(skb), 100u);
  EXPECT_EQ(skb_transport_offset(skb), 20);
  EXPECT_EQ(skb_network_offset(skb), 0);

  // Failures leave the skb as it was (the kernel would panic).
  EXPECT_EQ(skb_push(skb, 101), nullptr);
  EXPECT_EQ(skb_put(skb, 1921 - 7), nullptr);
  EXPECT_EQ(skb_pull(skb, 36), nullptr);
  EXPECT_EQ(skb->len, 35u);
  EXPECT_EQ(skb_headroom(skb), 100u);

  EXPECT_EQ(skb_pull(skb, 20), skb->head + 120);
  EXPECT_EQ(std::memcmp(skb->data, "UDPHDR..payload", 15), 0);
  EXPECT_NE(skb_put_zero(skb, 3), nullptr);
  EXPECT_EQ(skb->tail[-1], 0);
  kfree_skb(skb);
  expect_all_free();
}

TEST_F(SkbTest, FragmentsAccountLenAndBlockPut) {
  sk_buff* skb = skbs_->alloc_skb();
  skb_reserve(skb, 64);
  skb_put_data(skb, "hd", 2);
  ASSERT_EQ(skb_append_frag(skb, pool_frag(100)), 0);
  EXPECT_EQ(skb->len, 102u);
  EXPECT_EQ(skb->data_len, 100u);
  EXPECT_EQ(skb_headlen(skb), 2u);
  EXPECT_TRUE(skb_is_nonlinear(skb));
  EXPECT_EQ(skb_tailroom(skb), 0u);
  EXPECT_EQ(skb_put(skb, 1), nullptr);  // would put bytes after the fragments' place
  EXPECT_EQ(skb_pull(skb, 3), nullptr);
  EXPECT_NE(skb_push(skb, 14), nullptr);  // headers still go in front
  kfree_skb(skb);
  expect_all_free();
}

TEST_F(SkbTest, AdjacentFragmentsCoalesceWithinOneBuffer) {
  sk_buff* skb = skbs_->alloc_skb();
  skb_frag a = pool_frag(100);
  ASSERT_EQ(skb_append_frag(skb, a), 0);
  // The next 50 bytes of the same buffer, with their own reference (as tcp_sendmsg takes one).
  bufs_->get(a.data);
  ASSERT_EQ(skb_append_frag(skb, skb_frag_pool(bufs_.get(), a.data + 100, 50)), 0);
  EXPECT_EQ(skb_shinfo(skb)->nr_frags, 1);
  EXPECT_EQ(skb_frag_size(&skb_shinfo(skb)->frags[0]), 150u);
  EXPECT_EQ(bufs_->refcount(a.data), 1u);  // the redundant reference was dropped
  EXPECT_EQ(skb->len, 150u);

  // A buffer that happens to follow in the region does not merge: separate references.
  uint8_t* b0 = bufs_->alloc();
  uint8_t* b1 = bufs_->alloc();
  ASSERT_EQ(b1, b0 + 2048);  // a fresh pool hands out buffers in address order
  ASSERT_EQ(skb_append_frag(skb, skb_frag_pool(bufs_.get(), b0 + 2000, 48)), 0);
  ASSERT_EQ(skb_append_frag(skb, skb_frag_pool(bufs_.get(), b1, 16)), 0);
  EXPECT_EQ(skb_shinfo(skb)->nr_frags, 3);
  kfree_skb(skb);
  expect_all_free();
}

TEST_F(SkbTest, MaxSkbFragsThenEmsgsize) {
  sk_buff* skb = skbs_->alloc_skb();
  for (int i = 0; i < MAX_SKB_FRAGS; ++i) ASSERT_EQ(skb_append_frag(skb, pool_frag(10)), 0);
  skb_frag extra = pool_frag(10);
  EXPECT_EQ(skb_append_frag(skb, extra), -EMSGSIZE);
  EXPECT_EQ(skb->len, 170u);
  EXPECT_EQ(bufs_->refcount(extra.data), 1u);  // still the caller's
  skb_frag_unref_core(&extra);
  kfree_skb(skb);
  expect_all_free();
}

struct Completion {
  int calls = 0;
  bool success = false;
  static void fn(ubuf_info* u, bool ok) {
    auto* c = static_cast<Completion*>(u->ctx);
    ++c->calls;
    c->success = ok;
  }
};

TEST_F(SkbTest, CloneSharesHeadAndFragmentsUntilBothAreFreed) {
  Completion done;
  ubuf_info uarg;
  ubuf_info_init(&uarg, &Completion::fn, &done);  // the sendmsg call's reference
  std::vector<uint8_t> user(3000);
  std::iota(user.begin(), user.end(), 0);

  sk_buff* skb = skbs_->alloc_skb();
  skb_reserve(skb, 128);
  net_zcopy_get(&uarg);
  ASSERT_EQ(skb_append_frag(skb, skb_frag_user(user.data(), 1000, &uarg)), 0);
  net_zcopy_get(&uarg);  // contiguous user memory of the same uarg coalesces
  ASSERT_EQ(skb_append_frag(skb, skb_frag_user(user.data() + 1000, 500, &uarg)), 0);
  EXPECT_EQ(skb_shinfo(skb)->nr_frags, 1);
  ASSERT_EQ(skb_append_frag(skb, pool_frag(200, 7)), 0);
  net_zcopy_put(&uarg);  // sendmsg returns: only the skb keeps the memory now
  EXPECT_EQ(uarg.refcnt, 1u);
  EXPECT_FALSE(skb_cloned(skb));

  sk_buff* clone = skb_clone(skb);
  ASSERT_NE(clone, nullptr);
  EXPECT_NE(clone, skb);
  EXPECT_TRUE(skb_cloned(skb));
  EXPECT_TRUE(skb_cloned(clone));
  EXPECT_EQ(clone->data, skb->data);
  EXPECT_EQ(clone->len, 1700u);
  EXPECT_EQ(uarg.refcnt, 2u);
  EXPECT_EQ(bufs_->refcount(skb_shinfo(skb)->frags[1].data), 2u);
  std::vector<uint8_t> before = linear(skb);

  // The device still holds the clone after the write queue drops the original (ACKed).
  kfree_skb(skb);
  EXPECT_EQ(done.calls, 0);
  EXPECT_FALSE(skb_cloned(clone));
  EXPECT_EQ(linear(clone), before);
  kfree_skb(clone);  // TX completion
  EXPECT_EQ(done.calls, 1);
  EXPECT_TRUE(done.success);
  expect_all_free();
}

TEST_F(SkbTest, SkbGetKeepsItAlive) {
  sk_buff* skb = skbs_->alloc_skb();
  skb_get(skb);
  kfree_skb(skb);
  EXPECT_EQ(skbs_->nr_free(), skbs_->nr_skbs() - 1);
  consume_skb(skb);
  expect_all_free();
}

TEST_F(SkbTest, PskbCopyHasAPrivateHead) {
  sk_buff* skb = skbs_->alloc_skb();
  skb_reserve(skb, 100);
  skb_put_data(skb, "abc", 3);
  skb_reset_network_header(skb);
  skb->cb[0] = 42;
  ASSERT_EQ(skb_append_frag(skb, pool_frag(10)), 0);
  sk_buff* copy = pskb_copy(skb);
  ASSERT_NE(copy, nullptr);
  EXPECT_NE(copy->head, skb->head);
  EXPECT_FALSE(skb_cloned(skb));
  EXPECT_FALSE(skb_cloned(copy));
  EXPECT_EQ(skb_headroom(copy), 100u);
  EXPECT_EQ(copy->network_header, skb->network_header);
  EXPECT_EQ(copy->cb[0], 42);
  EXPECT_EQ(linear(copy), linear(skb));
  EXPECT_EQ(skb_shinfo(copy)->frags[0].data, skb_shinfo(skb)->frags[0].data);
  // Writing a header into the copy does not touch the original.
  std::memcpy(skb_push(copy, 4), "HDR!", 4);
  EXPECT_EQ(skb_headroom(skb), 100u);
  EXPECT_NE(std::memcmp(skb->head + 96, "HDR!", 4), 0);
  kfree_skb(skb);
  kfree_skb(copy);
  expect_all_free();
}

TEST_F(SkbTest, CowHeadUnsharesAndGrowsHeadroom) {
  sk_buff* skb = skbs_->alloc_skb();
  skb_reserve(skb, 16);
  skb_put_data(skb, "0123456789", 10);
  skb_reset_network_header(skb);
  skb_set_transport_header(skb, 4);
  skb->ip_summed = CHECKSUM_PARTIAL;
  skb->csum_start = skb->transport_header;
  sk_buff* clone = skb_clone(skb);
  ASSERT_NE(clone, nullptr);

  ASSERT_EQ(skb_cow_head(clone, 64), 0);
  EXPECT_FALSE(skb_cloned(clone));
  EXPECT_FALSE(skb_cloned(skb));
  EXPECT_EQ(skb_headroom(clone), 64u);
  EXPECT_EQ(skb_network_offset(clone), 0);
  EXPECT_EQ(skb_transport_offset(clone), 4);
  EXPECT_EQ(skb_checksum_start_offset(clone), 4);
  EXPECT_EQ(std::memcmp(clone->data, "0123456789", 10), 0);
  std::memcpy(skb_push(clone, 2), "XX", 2);
  EXPECT_EQ(std::memcmp(skb->data, "0123456789", 10), 0);

  EXPECT_EQ(skb_cow_head(skb, 8), 0);  // private and deep enough: nothing to do
  EXPECT_EQ(skb_cow_head(skb, 2048), -EINVAL);
  kfree_skb(clone);
  kfree_skb(skb);
  expect_all_free();
}

TEST_F(SkbTest, ExhaustionReturnsNullAndLeaksNothing) {
  std::vector<sk_buff*> held;
  while (sk_buff* s = skbs_->alloc_skb()) held.push_back(s);
  EXPECT_EQ(held.size(), 16u);
  EXPECT_EQ(skb_clone(held[0]), nullptr);
  EXPECT_EQ(pskb_copy(held[0]), nullptr);
  kfree_skb(held.back());
  held.pop_back();
  // Now an skb is free but no buffer is: alloc_skb must not keep the sk_buff.
  std::vector<uint8_t*> bufs;
  while (uint8_t* b = bufs_->alloc()) bufs.push_back(b);
  EXPECT_EQ(skbs_->alloc_skb(), nullptr);
  EXPECT_EQ(skbs_->nr_free(), 1u);
  EXPECT_EQ(skb_cow_head(held[0], 4), -ENOBUFS);
  for (uint8_t* b : bufs) bufs_->put(b);
  for (sk_buff* s : held) kfree_skb(s);
  expect_all_free();
}

// Builds an skb of `head` linear bytes then fragments of the given sizes from one byte stream.
class SkbLayout : public SkbTest {
 protected:
  sk_buff* build(uint32_t head, const std::vector<uint32_t>& frags, std::vector<uint8_t>* stream) {
    std::mt19937 rng(head * 131 + frags.size());
    sk_buff* skb = skbs_->alloc_skb();
    skb_reserve(skb, 64);
    uint8_t* p = skb_put(skb, head);
    for (uint32_t i = 0; i < head; ++i) stream->push_back(p[i] = static_cast<uint8_t>(rng()));
    for (uint32_t n : frags) {
      uint32_t off = rng() % 64;  // odd in-buffer offsets too
      uint8_t* b = bufs_->alloc() + off;
      for (uint32_t i = 0; i < n; ++i) stream->push_back(b[i] = static_cast<uint8_t>(rng()));
      EXPECT_EQ(skb_append_frag(skb, skb_frag_pool(bufs_.get(), b, n)), 0);
    }
    return skb;
  }
};

TEST_F(SkbLayout, CopyBitsLinearisesAnyRange) {
  std::vector<uint8_t> stream;
  sk_buff* skb = build(13, {1, 100, 7, 1000, 3}, &stream);
  ASSERT_EQ(skb->len, stream.size());
  std::mt19937 rng(3);
  for (int i = 0; i < 300; ++i) {
    uint32_t off = rng() % (skb->len + 1);
    uint32_t len = rng() % (skb->len - off + 1);
    std::vector<uint8_t> out(len + 1, 0xEE);
    ASSERT_EQ(skb_copy_bits(skb, off, out.data(), len), 0);
    ASSERT_TRUE(std::equal(out.begin(), out.begin() + len, stream.begin() + off));
    ASSERT_EQ(out[len], 0xEE);
  }
  uint8_t x;
  EXPECT_EQ(skb_copy_bits(skb, skb->len, &x, 1), -EFAULT);
  EXPECT_EQ(skb_copy_bits(skb, skb->len + 1, &x, 0), -EFAULT);
  EXPECT_EQ(skb_copy_bits(skb, 1, &x, 0xffffffffu), -EFAULT);
  kfree_skb(skb);
  expect_all_free();
}

TEST_F(SkbLayout, ChecksumAcrossOddFragmentsEqualsLinearChecksum) {
  std::mt19937 rng(11);
  for (int iter = 0; iter < 50; ++iter) {
    std::vector<uint32_t> sizes(1 + rng() % 6);
    for (auto& s : sizes) s = 1 + rng() % 301;
    std::vector<uint8_t> stream;
    sk_buff* skb = build(rng() % 40, sizes, &stream);
    uint32_t off = rng() % (skb->len + 1);
    uint32_t len = skb->len - off;
    wsum seed = rng();
    ASSERT_EQ(csum_fold(skb_checksum(skb, off, len, seed)),
              csum_fold(csum_partial(stream.data() + off, len, seed)))
        << "iter " << iter;
    kfree_skb(skb);
  }
  expect_all_free();
}

TEST_F(SkbLayout, SegmentsForTheDevice) {
  std::vector<uint8_t> stream;
  sk_buff* skb = build(42, {10, 20}, &stream);
  FrameSeg sg[4];
  ASSERT_EQ(skb_to_sgvec(skb, absl::MakeSpan(sg)), 3);
  EXPECT_EQ(sg[0].data, skb->data);
  EXPECT_EQ(sg[0].len, 42u);
  EXPECT_EQ(sg[1].len, 10u);
  EXPECT_EQ(sg[2].data, skb_frag_address(&skb_shinfo(skb)->frags[1]));
  EXPECT_EQ(skb_to_sgvec(skb, absl::MakeSpan(sg, 2)), -EMSGSIZE);

  skb->ip_summed = CHECKSUM_PARTIAL;
  skb->csum_start = static_cast<uint16_t>(skb_headroom(skb) + 34);
  skb->csum_offset = 6;
  skb_shinfo(skb)->gso_size = 1448;
  TxFrame tx;
  ASSERT_EQ(skb_to_txframe(skb, absl::MakeSpan(sg), 99, &tx), 3);
  EXPECT_EQ(tx.segs.size(), 3u);
  EXPECT_EQ(tx.flags, kTxL4Csum | kTxTso);
  EXPECT_EQ(tx.csum_start, 34);
  EXPECT_EQ(tx.csum_offset, 6);
  EXPECT_EQ(tx.gso_size, 1448);
  EXPECT_EQ(tx.cookie, 99u);
  kfree_skb(skb);

  stream.clear();
  skb = build(0, {5}, &stream);  // empty linear part: no segment for it
  ASSERT_EQ(skb_to_sgvec(skb, absl::MakeSpan(sg)), 1);
  EXPECT_EQ(sg[0].len, 5u);
  ASSERT_EQ(skb_to_txframe(skb, absl::MakeSpan(sg), 1, &tx), 1);
  EXPECT_EQ(tx.flags, 0u);
  kfree_skb(skb);
  expect_all_free();
}

TEST_F(SkbTest, FileFragmentsCompleteLikeUserOnes) {
  Completion done;
  ubuf_info pages;
  ubuf_info_init(&pages, &Completion::fn, &done);
  std::vector<uint8_t> file(4096, 0x5A);
  sk_buff* skb = skbs_->alloc_skb();
  ASSERT_EQ(skb_append_frag(skb, skb_frag_file(file.data(), 4096, &pages)), 0);
  EXPECT_EQ(skb_shinfo(skb)->frags[0].kind, FragKind::kFile);
  sk_buff* copy = pskb_copy(skb);
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(pages.refcnt, 2u);
  kfree_skb(skb);
  EXPECT_EQ(done.calls, 0);
  pages.zerocopy_success = false;  // e.g. a path had to copy the bytes
  kfree_skb(copy);
  EXPECT_EQ(done.calls, 1);
  EXPECT_FALSE(done.success);
  expect_all_free();
}

}  // namespace
}  // namespace xmit
