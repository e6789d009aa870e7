// tests/ibv/ibv_netdev_test.cc — IbvNetdev against the verbs contract, on the software device
// with the in-memory carrier: zero-copy/inline/copied sends, selective signalling, a full queue,
// completion errors and recovery, RX refill in batches, flow rules removed while frames arrive,
// memory that cannot be deregistered under a send in flight, and clear open failures.
#include "verbs/ibv/ibv_netdev.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <deque>
#include <vector>

#include "gtest/gtest.h"
#include "stack/dev/sw_offload.h"
#include "tests/dev/test_frames.h"
#include "verbs/ibv/sw/sw_verbs.h"

namespace xmit::ibv {
namespace {

using xmit::testing::make_frame;
constexpr const char* kDev = "xmit_sw_nd";

// The payload the device put on the wire for frames [first, first + n): the bytes after each
// segment's 54 bytes of headers, in order.
std::vector<uint8_t> tso_payload(const std::deque<std::vector<uint8_t>>& sent, size_t first, size_t n) {
  std::vector<uint8_t> p;
  for (size_t i = first; i < first + n; ++i) p.insert(p.end(), sent[i].begin() + 54, sent[i].end());
  return p;
}

class IbvNetdevTest : public ::testing::Test {
 protected:
  void SetUp() override { open({}); }
  void open(IbvOptions opt, bool ip_csum = false, uint32_t max_tso = 0) {
    sw::SwDeviceConfig cfg;
    cfg.name = kDev;
    cfg.ifname = "lo";
    cfg.mtu = 1500;
    cfg.ip_csum = ip_csum;
    cfg.max_tso = max_tso;
    ASSERT_EQ(sw::sw_add_device(cfg), 0);
    opt.ifname = "lo";
    if (opt.ops == nullptr) opt.ops = &ibv_sw_ops();
    if (opt.rx_bufs == IbvOptions{}.rx_bufs) opt.rx_bufs = 64;
    if (opt.tx_depth == IbvOptions{}.tx_depth) opt.tx_depth = 64;
    std::string why;
    ASSERT_EQ(IbvNetdev::open(opt, &dev_, &why), 0) << why;
    wire_ = sw::sw_mem_wire(kDev);
    ASSERT_NE(wire_, nullptr);
  }
  void reopen(IbvOptions opt, bool ip_csum = false, uint32_t max_tso = 0) {
    dev_.reset();
    ASSERT_EQ(sw::sw_remove_all_devices(), 0);
    open(opt, ip_csum, max_tso);
  }
  void TearDown() override {
    dev_.reset();
    sw::SwStats st = sw::sw_stats(kDev);
    EXPECT_EQ(st.live_objects, 0u);
    EXPECT_EQ(st.open_contexts, 0u);
    EXPECT_EQ(st.dereg_in_flight, 0u);  // the backend never pulls memory from under a send
    EXPECT_EQ(sw::sw_remove_all_devices(), 0);
  }
  // A UDP frame to us (our MAC) for port `dport`.
  std::vector<uint8_t> frame_to_us(uint16_t dport, uint32_t payload = 100) {
    auto f = make_frame({.dport = dport, .payload_len = payload});
    memcpy(f.data(), dev_->mac(), 6);
    return f;
  }
  std::vector<uint64_t> reap() {
    std::vector<uint64_t> c;
    dev_->poll_tx([&](uint64_t cookie) { c.push_back(cookie); });
    return c;
  }

  std::unique_ptr<IbvNetdev> dev_;
  sw::SwMemWire* wire_ = nullptr;
};

TEST_F(IbvNetdevTest, OpensTheDeviceOfTheInterface) {
  EXPECT_EQ(dev_->ibdev(), kDev);
  EXPECT_EQ(dev_->port(), 1);
  EXPECT_STREQ(dev_->ops_name(), "software");
  EXPECT_EQ(dev_->ifindex(), int(if_nametoindex("lo")));
  EXPECT_FALSE(dev_->features().ip_csum);  // the device does not report IBV_RAW_PACKET_CAP_IP_CSUM
  EXPECT_FALSE(dev_->features().l4_csum);
  EXPECT_FALSE(dev_->features().tso);
  EXPECT_EQ(dev_->features().max_segs, IbvNetdev::kMaxSegs);
  EXPECT_EQ(dev_->max_inline(), 128u);
}

TEST_F(IbvNetdevTest, SendsInlineInPlaceOrCopied) {
  std::vector<uint8_t> pool(16384);
  ASSERT_EQ(dev_->register_memory(pool.data(), pool.size()), 0);
  EXPECT_EQ(dev_->register_memory(pool.data(), pool.size()), -EEXIST);
  auto small = make_frame({.payload_len = 40});  // 82 bytes: inline
  auto big = make_frame({.payload_len = 1000});
  memcpy(pool.data() + 100, big.data(), 42);                 // headers in the pool ...
  memcpy(pool.data() + 8000, big.data() + 42, big.size() - 42);  // ... payload elsewhere in it
  FrameSeg in_pool[2] = {{pool.data() + 100, 42}, {pool.data() + 8000, uint32_t(big.size() - 42)}};
  FrameSeg outside[2] = {{big.data(), 42}, {big.data() + 42, uint32_t(big.size() - 42)}};
  FrameSeg inl[1] = {{small.data(), uint32_t(small.size())}};
  TxFrame frames[3] = {{.segs = inl, .cookie = 1}, {.segs = in_pool, .cookie = 2}, {.segs = outside, .cookie = 3}};
  ASSERT_EQ(dev_->xmit(frames), 3);
  ASSERT_EQ(wire_->sent.size(), 3u);
  EXPECT_EQ(wire_->sent[0], small);
  EXPECT_EQ(wire_->sent[1], big);
  EXPECT_EQ(wire_->sent[2], big);
  EXPECT_EQ(dev_->stats().tx_inline, 1u);
  EXPECT_EQ(dev_->stats().tx_zero_copy, 1u);
  EXPECT_EQ(dev_->stats().tx_copied, 1u);
  EXPECT_EQ(reap(), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(dev_->unregister_memory(pool.data()), 0);
  EXPECT_EQ(dev_->unregister_memory(pool.data()), -ENOENT);
}

TEST_F(IbvNetdevTest, EveryNthSendAndTheLastOfACallAreSignaledCookiesCompleteInOrder) {
  reopen({.signal_every = 4});
  auto f = make_frame({.payload_len = 500});
  FrameSeg seg[1] = {{f.data(), uint32_t(f.size())}};
  std::vector<TxFrame> frames;
  for (uint64_t i = 0; i < 10; ++i) frames.push_back({.segs = seg, .cookie = 100 + i});
  ASSERT_EQ(dev_->xmit(frames), 10);
  EXPECT_EQ(dev_->stats().tx_signaled, 3u);  // WRs 3, 7 and 9 (the last of the call)
  std::vector<uint64_t> want;
  for (uint64_t i = 0; i < 10; ++i) want.push_back(100 + i);
  EXPECT_EQ(reap(), want);
  // Held by the device: no completion, so no cookie, until it has sent.
  sw::sw_hold(kDev, true);
  ASSERT_EQ(dev_->xmit(absl::MakeSpan(frames).subspan(0, 2)), 2);
  EXPECT_TRUE(reap().empty());
  EXPECT_EQ(dev_->tx_outstanding(), 2u);
  sw::sw_hold(kDev, false);
  EXPECT_EQ(reap(), (std::vector<uint64_t>{100, 101}));
}

TEST_F(IbvNetdevTest, AFullSendQueueTakesNothingUntilCompletionsAreReaped) {
  reopen({.tx_depth = 8});
  auto f = make_frame({.payload_len = 500});
  FrameSeg seg[1] = {{f.data(), uint32_t(f.size())}};
  std::vector<TxFrame> frames;
  for (uint64_t i = 0; i < 10; ++i) frames.push_back({.segs = seg, .cookie = i});
  sw::sw_hold(kDev, true);
  EXPECT_EQ(dev_->xmit(frames), 8);
  EXPECT_EQ(dev_->xmit(absl::MakeSpan(frames).subspan(8)), 0);
  EXPECT_GE(dev_->stats().tx_full, 1u);
  sw::sw_hold(kDev, false);
  EXPECT_EQ(dev_->xmit(absl::MakeSpan(frames).subspan(8)), 0);  // sent, but not yet reaped
  EXPECT_EQ(reap().size(), 8u);
  EXPECT_EQ(dev_->xmit(absl::MakeSpan(frames).subspan(8)), 2);
  EXPECT_EQ(wire_->sent.size(), 10u);
  EXPECT_EQ(reap(), (std::vector<uint64_t>{8, 9}));
}

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1;
}

// The completion channel's fd wakes a waiting caller for a received frame and for a completed
// send; poll_rx()/poll_tx() take the events and re-arm.
TEST_F(IbvNetdevTest, WaitFdWakesForFramesAndCompletions) {
  const int fd = dev_->wait_fd();
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(readable(fd));
  ASSERT_EQ(dev_->steer({.protocol = IPPROTO_UDP, .local_port = htons(2000)}), 0);
  auto in = frame_to_us(2000);
  wire_->inject(in.data(), uint32_t(in.size()));
  EXPECT_TRUE(readable(fd));
  EXPECT_EQ(dev_->poll_rx(8, [](const RxFrame&) { return false; }), 1);
  EXPECT_FALSE(readable(fd));
  wire_->inject(in.data(), uint32_t(in.size()));  // re-armed: wakes again
  EXPECT_TRUE(readable(fd));
  EXPECT_EQ(dev_->poll_rx(8, [](const RxFrame&) { return false; }), 1);
  EXPECT_FALSE(readable(fd));
  auto f = make_frame({.payload_len = 500});
  FrameSeg seg[1] = {{f.data(), uint32_t(f.size())}};
  TxFrame fr[1] = {{.segs = seg, .cookie = 7}};
  sw::sw_hold(kDev, true);
  ASSERT_EQ(dev_->xmit(fr), 1);
  EXPECT_FALSE(readable(fd));  // not sent yet
  sw::sw_hold(kDev, false);
  EXPECT_TRUE(readable(fd));
  EXPECT_EQ(reap(), (std::vector<uint64_t>{7}));
  EXPECT_FALSE(readable(fd));
}

TEST_F(IbvNetdevTest, CompletionErrorsAreSurfacedAndTheQueueRecovers) {
  ASSERT_EQ(dev_->steer({.protocol = IPPROTO_UDP, .local_addr = htonl(xmit::testing::kAddrB), .local_port = htons(2000)}), 0);
  auto f = make_frame({.payload_len = 500});
  FrameSeg seg[1] = {{f.data(), uint32_t(f.size())}};
  TxFrame frames[3] = {{.segs = seg, .cookie = 1}, {.segs = seg, .cookie = 2}, {.segs = seg, .cookie = 3}};
  sw::sw_fail_next_send(kDev, IBV_WC_LOC_PROT_ERR);
  ASSERT_EQ(dev_->xmit(frames), 3);
  // The first fails, the QP goes to the error state and the other two are flushed; every cookie
  // comes back (the device no longer reads the memory), the error is counted and named.
  EXPECT_EQ(reap(), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(dev_->stats().tx_errors, 3u);
  EXPECT_NE(dev_->last_error().find("local protection error"), std::string::npos) << dev_->last_error();
  EXPECT_EQ(dev_->stats().qp_recoveries, 1u);
  EXPECT_TRUE(wire_->sent.empty());
  // Back in RTS: sends leave, and the receive ring was posted again.
  ASSERT_EQ(dev_->xmit(absl::MakeSpan(frames).subspan(0, 1)), 1);
  EXPECT_EQ(wire_->sent.size(), 1u);
  EXPECT_EQ(reap(), (std::vector<uint64_t>{1}));
  auto in = frame_to_us(2000);
  wire_->inject(in.data(), uint32_t(in.size()));
  int got = dev_->poll_rx(8, [&](const RxFrame& rf) {
    EXPECT_EQ(std::vector<uint8_t>(rf.data, rf.data + rf.len), in);
    return false;
  });
  EXPECT_EQ(got, 1);
}

TEST_F(IbvNetdevTest, ReceiveRingIsRefilledInBatches) {
  reopen({.rx_bufs = 64, .rx_refill_batch = 16});
  EXPECT_EQ(dev_->stats().rx_posts, 4u);  // 64 buffers in 4 chains
  ASSERT_EQ(dev_->steer({.protocol = IPPROTO_UDP, .local_port = htons(7)}), 0);
  auto in = frame_to_us(7);
  for (int i = 0; i < 20; ++i) wire_->inject(in.data(), uint32_t(in.size()));
  std::vector<uint64_t> held;
  int got = 0;
  while (int n = dev_->poll_rx(64, [&](const RxFrame& rf) {
           held.push_back(rf.buf_id);
           return true;
         }))
    got += n;
  EXPECT_EQ(got, 20);
  EXPECT_EQ(dev_->stats().rx_posts, 4u);  // all 20 are held: nothing to post
  for (int i = 0; i < 15; ++i) dev_->rx_recycle(held[size_t(i)]);
  EXPECT_EQ(dev_->stats().rx_posts, 4u);  // 15 free: less than a batch
  dev_->rx_recycle(held[15]);
  EXPECT_EQ(dev_->stats().rx_posts, 5u);  // the 16th makes a batch
  dev_->rx_recycle(held[15]);             // a double recycle is ignored
  for (int i = 16; i < 20; ++i) dev_->rx_recycle(held[size_t(i)]);
  EXPECT_EQ(dev_->stats().rx_posts, 5u);
}

TEST_F(IbvNetdevTest, FlowRuleRemovedWhileFramesArrive) {
  const FlowKey key{.protocol = IPPROTO_UDP, .local_addr = htonl(xmit::testing::kAddrB), .local_port = htons(2000)};
  ASSERT_EQ(dev_->steer(key), 0);
  EXPECT_EQ(dev_->steer(key), -EEXIST);
  auto in = frame_to_us(2000);
  for (int i = 0; i < 3; ++i) wire_->inject(in.data(), uint32_t(in.size()));
  int got = dev_->poll_rx(1, [](const RxFrame&) { return false; });
  EXPECT_EQ(got, 1);
  ASSERT_EQ(dev_->unsteer(key), 0);  // two frames already landed in the ring, two more on the way
  for (int i = 0; i < 2; ++i) wire_->inject(in.data(), uint32_t(in.size()));
  got = dev_->poll_rx(64, [](const RxFrame&) { return false; });
  EXPECT_EQ(got, 2);                     // the ones received before the rule went
  EXPECT_EQ(wire_->kernel.size(), 2u);   // the later ones are the kernel's
  EXPECT_EQ(dev_->unsteer(key), -ENOENT);
  EXPECT_EQ(sw::sw_stats(kDev).rx_no_wqe, 0u);
}

TEST_F(IbvNetdevTest, MemoryUnderASendInFlightIsNotDeregistered) {
  std::vector<uint8_t> pool(8192);
  ASSERT_EQ(dev_->register_memory(pool.data(), pool.size()), 0);
  auto f = make_frame({.payload_len = 1000});
  memcpy(pool.data(), f.data(), f.size());
  FrameSeg seg[1] = {{pool.data(), uint32_t(f.size())}};
  TxFrame fr[1] = {{.segs = seg, .cookie = 9}};
  sw::sw_hold(kDev, true);
  ASSERT_EQ(dev_->xmit(fr), 1);
  EXPECT_EQ(dev_->unregister_memory(pool.data()), -EBUSY);
  sw::sw_hold(kDev, false);
  EXPECT_EQ(dev_->unregister_memory(pool.data()), -EBUSY);  // sent, but its completion not reaped
  EXPECT_EQ(reap(), (std::vector<uint64_t>{9}));
  EXPECT_EQ(dev_->unregister_memory(pool.data()), 0);
  // Closing with sends in flight: the backend flushes them before deregistering anything
  // (TearDown checks the device saw no deregistration under a posted send).
  ASSERT_EQ(dev_->register_memory(pool.data(), pool.size()), 0);
  sw::sw_hold(kDev, true);
  ASSERT_EQ(dev_->xmit(fr), 1);
  dev_.reset();
  sw::sw_hold(kDev, false);
}

// MSG_ZEROCOPY on verbs: a user segment (FrameSeg::user) is registered through the MR cache, read
// by the device when it executes the WR (so in place: a change before then shows on the wire),
// and deregistered when the WR completes (a change or an unmap after that changes nothing).
TEST_F(IbvNetdevTest, UserSegmentsAreReadInPlaceAndDeregisteredAtTheirCompletion) {
  EXPECT_TRUE(dev_->features().sg_user);
  std::vector<uint8_t> pool(4096);
  ASSERT_EQ(dev_->register_memory(pool.data(), pool.size()), 0);
  auto f = make_frame({.payload_len = 1000});
  memcpy(pool.data(), f.data(), 42);
  void* m = mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  auto* user = static_cast<uint8_t*>(m) + 3000;  // across a page boundary
  memcpy(user, f.data() + 42, 1000);
  FrameSeg seg[2] = {{pool.data(), 42}, {user, 1000, /*user=*/true}};
  bool success = true;
  TxFrame fr[1] = {{.segs = seg, .cookie = 5, .zerocopy_success = &success}};
  sw::sw_hold(kDev, true);
  ASSERT_EQ(dev_->xmit(fr), 1);
  EXPECT_EQ(dev_->mr_cache().entries(), 1u);
  EXPECT_EQ(dev_->mr_cache().in_use(), 1u);
  user[0] ^= 0xff;  // before the device ran the WR: it reads the program's memory, not a copy
  sw::sw_hold(kDev, false);
  ASSERT_EQ(wire_->sent.size(), 1u);
  EXPECT_NE(wire_->sent[0], f);
  EXPECT_EQ(wire_->sent[0][42], uint8_t(f[42] ^ 0xff));
  EXPECT_EQ(reap(), (std::vector<uint64_t>{5}));
  EXPECT_TRUE(success);
  EXPECT_EQ(dev_->stats().tx_user_in_place, 1u);
  EXPECT_EQ(dev_->stats().tx_user_copied, 0u);
  EXPECT_EQ(dev_->stats().tx_copied, 0u);
  EXPECT_EQ(dev_->mr_cache().entries(), 0u);  // nothing kept after use
  const std::vector<uint8_t> sent = wire_->sent[0];
  memset(user, 0x55, 1000);  // after its completion: the frame on the wire stays what it was
  ASSERT_EQ(munmap(m, 8192), 0);  // and the memory may go (no registration names it any more)
  EXPECT_EQ(wire_->sent[0], sent);
  EXPECT_EQ(dev_->mr_cache().stats().registrations, 1u);
  EXPECT_EQ(dev_->mr_cache().stats().deregistrations, 1u);
  EXPECT_EQ(dev_->unregister_memory(pool.data()), 0);
}

TEST_F(IbvNetdevTest, UserSegmentsThatCannotBeRegisteredAreCopiedAndTheFrameSaysSo) {
  reopen({.mr_cache_entries = 1});
  std::vector<uint8_t> pool(4096);
  ASSERT_EQ(dev_->register_memory(pool.data(), pool.size()), 0);
  auto f = make_frame({.payload_len = 1000});
  memcpy(pool.data(), f.data(), 42);
  std::vector<uint8_t> a(f.begin() + 42, f.end()), b(64 * 1024);
  memcpy(b.data() + 40000, f.data() + 42, 1000);  // pages apart from a's: an entry of its own
  FrameSeg s1[2] = {{pool.data(), 42}, {a.data(), 1000, true}};
  FrameSeg s2[2] = {{pool.data(), 42}, {b.data() + 40000, 1000, true}};
  bool ok1 = true, ok2 = true;
  TxFrame fr[2] = {{.segs = s1, .cookie = 1, .zerocopy_success = &ok1},
                   {.segs = s2, .cookie = 2, .zerocopy_success = &ok2}};
  sw::sw_hold(kDev, true);
  ASSERT_EQ(dev_->xmit(fr), 2);  // the one cache entry is a's while its WR is posted
  sw::sw_hold(kDev, false);
  EXPECT_EQ(reap(), (std::vector<uint64_t>{1, 2}));
  EXPECT_TRUE(ok1);
  EXPECT_FALSE(ok2);  // copied: its MSG_ZEROCOPY notification says COPIED
  EXPECT_EQ(dev_->stats().tx_user_in_place, 1u);
  EXPECT_EQ(dev_->stats().tx_user_copied, 1u);
  EXPECT_EQ(dev_->mr_cache().stats().full, 1u);
  ASSERT_EQ(wire_->sent.size(), 2u);
  EXPECT_EQ(wire_->sent[0], f);
  EXPECT_EQ(wire_->sent[1], f);
  EXPECT_EQ(dev_->unregister_memory(pool.data()), 0);
}

TEST_F(IbvNetdevTest, ClosingWithUserSendsInFlightNeverDeregistersUnderThem) {
  std::vector<uint8_t> pool(4096);
  ASSERT_EQ(dev_->register_memory(pool.data(), pool.size()), 0);
  auto f = make_frame({.payload_len = 1000});
  memcpy(pool.data(), f.data(), 42);
  std::vector<uint8_t> user(f.begin() + 42, f.end());
  FrameSeg seg[2] = {{pool.data(), 42}, {user.data(), 1000, true}};
  TxFrame fr[1] = {{.segs = seg, .cookie = 1}};
  sw::sw_hold(kDev, true);
  ASSERT_EQ(dev_->xmit(fr), 1);
  dev_.reset();  // flushes the WR, then deregisters (TearDown: dereg_in_flight stays 0)
  sw::sw_hold(kDev, false);
}

TEST_F(IbvNetdevTest, ChecksumOffloadOnlyWhenTheDeviceReportsIt) {
  auto f = make_frame({.protocol = 17, .payload_len = 300, .partial_csum = true});
  FrameSeg seg[1] = {{f.data(), uint32_t(f.size())}};
  TxFrame fr[1] = {{.segs = seg, .flags = kTxL4Csum, .csum_start = 34, .csum_offset = 6, .cookie = 1}};
  EXPECT_EQ(dev_->xmit(fr), -EINVAL);  // features say no: the stack must finish it itself
  reopen({}, /*ip_csum=*/true);
  EXPECT_TRUE(dev_->features().ip_csum);
  EXPECT_TRUE(dev_->features().l4_csum);
  ASSERT_EQ(dev_->xmit(fr), 1);
  ASSERT_EQ(wire_->sent.size(), 1u);
  EXPECT_TRUE(xmit::testing::l4_csum_ok(wire_->sent[0]));
  EXPECT_TRUE(xmit::testing::ipv4_csum_ok(wire_->sent[0]));
  reap();
}

// TSO is offered only when tso_caps covers raw packet QPs; a TSO frame then leaves as one
// IBV_WR_TSO (headers as wr.tso.hdr, payload in place or copied) and arrives as gso_size segments.
TEST_F(IbvNetdevTest, TsoOnlyWhenReportedOneWorkRequestManySegments) {
  auto f = make_frame({.protocol = 6, .payload_len = 4000, .partial_csum = true});
  TxFrame fr{.flags = kTxTso | kTxL4Csum, .csum_start = 34, .csum_offset = 16, .gso_size = 1448, .cookie = 1};
  FrameSeg whole[1] = {{f.data(), uint32_t(f.size())}};
  fr.segs = whole;
  EXPECT_FALSE(dev_->features().tso);
  EXPECT_EQ(dev_->xmit({&fr, 1}), -EINVAL);
  reopen({}, /*ip_csum=*/true, /*max_tso=*/65536);
  ASSERT_TRUE(dev_->features().tso);
  EXPECT_EQ(dev_->features().tso_max_size, 65536u);
  // In place: headers and payload split across two pieces of a registered pool.
  std::vector<uint8_t> pool(16384);
  ASSERT_EQ(dev_->register_memory(pool.data(), pool.size()), 0);
  memcpy(pool.data(), f.data(), 60);                        // headers and 6 payload bytes
  memcpy(pool.data() + 8192, f.data() + 60, f.size() - 60);  // the rest of the payload
  FrameSeg split[2] = {{pool.data(), 60}, {pool.data() + 8192, uint32_t(f.size() - 60)}};
  TxFrame in_place = fr;
  in_place.segs = split;
  TxFrame copied = fr;  // unregistered, but the payload fits a bounce slot
  copied.cookie = 2;
  TxFrame both[2] = {in_place, copied};
  ASSERT_EQ(dev_->xmit(both), 2);
  EXPECT_EQ(dev_->stats().tx_frames, 2u);  // one work request per TSO frame
  EXPECT_EQ(dev_->stats().tx_tso, 2u);
  EXPECT_EQ(dev_->stats().tx_zero_copy, 1u);
  EXPECT_EQ(dev_->stats().tx_copied, 1u);
  ASSERT_EQ(wire_->sent.size(), 6u);  // 1448 + 1448 + 1104, twice
  std::vector<uint8_t> payload;
  for (size_t i = 0; i < 3; ++i) {
    const auto& s = wire_->sent[i];
    EXPECT_EQ(s.size(), 54 + (i < 2 ? 1448u : 1104u));
    EXPECT_TRUE(xmit::testing::ipv4_csum_ok(s));
    EXPECT_TRUE(xmit::testing::l4_csum_ok(s));
    payload.insert(payload.end(), s.begin() + 54, s.end());
  }
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), f.begin() + 54, f.end()));
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(wire_->sent[i], wire_->sent[i + 3]);
  EXPECT_EQ(reap(), (std::vector<uint64_t>{1, 2}));
  // Unregistered and larger than a bounce slot (4 KiB; more for an interface with a jumbo MTU, as
  // lo's): copied into a 64 KiB bounce buffer.
  const uint32_t big_len = dev_->buf_size() + 2000;
  const size_t big_segs = (big_len + 1447) / 1448;
  auto big = make_frame({.protocol = 6, .payload_len = big_len, .partial_csum = true});
  FrameSeg bigseg[1] = {{big.data(), uint32_t(big.size())}};
  TxFrame bf = fr;
  bf.segs = bigseg;
  EXPECT_EQ(dev_->xmit({&bf, 1}), 1);
  EXPECT_EQ(dev_->stats().tx_tso_bounced, 1u);
  EXPECT_EQ(reap(), (std::vector<uint64_t>{1}));
  ASSERT_EQ(wire_->sent.size(), 6u + big_segs);
  EXPECT_EQ(tso_payload(wire_->sent, 6, big_segs), std::vector<uint8_t>(big.begin() + 54, big.end()));
}

// reg_mr of the software device, refused for memory overlapping [g_refuse_lo, g_refuse_hi) (the
// program's buffers) as RLIMIT_MEMLOCK refuses it on a real one; everything else registers.
uintptr_t g_refuse_lo = 0, g_refuse_hi = 0;
ibv_mr* reg_mr_refusing_user(ibv_pd* pd, void* addr, size_t len, int access) {
  const auto a = reinterpret_cast<uintptr_t>(addr);
  if (a < g_refuse_hi && a + len > g_refuse_lo) {
    errno = ENOMEM;
    return nullptr;
  }
  return ibv_sw_ops().reg_mr(pd, addr, len, access);
}

// A 64 KiB TSO frame whose user payload cannot be registered — the MR cache's one entry held by a
// send in flight, or reg_mr refused for good — leaves at once, copied (a 64 KiB bounce buffer),
// byte-exact, its zerocopy notification COPIED; the first frame goes in place meanwhile. (It was
// refused with -EMSGSIZE: only 4 KiB could be copied, and TCP sent it again later.)
TEST_F(IbvNetdevTest, LargeTsoUserFrameThatCannotBeRegisteredLeavesCopied) {
  static IbvOps refusing = ibv_sw_ops();
  refusing.reg_mr = reg_mr_refusing_user;
  for (const IbvOps* ops : {&ibv_sw_ops(), static_cast<const IbvOps*>(&refusing)}) {
    SCOPED_TRACE(ops == &refusing ? "reg_mr refused" : "registration table full");
    reopen({.ops = ops, .mr_cache_entries = 1}, /*ip_csum=*/true, /*max_tso=*/65536);
    std::vector<uint8_t> pool(4096);
    ASSERT_EQ(dev_->register_memory(pool.data(), pool.size()), 0);
    const uint32_t plen = 65536 - 54;
    auto f = make_frame({.protocol = 6, .payload_len = plen, .payload_seed = 7, .partial_csum = true});
    memcpy(pool.data(), f.data(), 54);
    std::vector<uint8_t> user(2 * size_t(plen));  // two send buffers, one after the other
    std::copy(f.begin() + 54, f.end(), user.begin());
    std::copy(f.begin() + 54, f.end(), user.begin() + plen);
    g_refuse_lo = reinterpret_cast<uintptr_t>(user.data());
    g_refuse_hi = g_refuse_lo + user.size();
    FrameSeg s1[2] = {{pool.data(), 54}, {user.data(), plen, true}};
    FrameSeg s2[2] = {{pool.data(), 54}, {user.data() + plen, plen, true}};
    bool ok1 = true, ok2 = true;
    TxFrame t{.flags = kTxTso | kTxL4Csum, .csum_start = 34, .csum_offset = 16, .gso_size = 1448};
    TxFrame fr[2] = {t, t};
    fr[0].segs = s1, fr[0].cookie = 1, fr[0].zerocopy_success = &ok1;
    fr[1].segs = s2, fr[1].cookie = 2, fr[1].zerocopy_success = &ok2;
    sw::sw_hold(kDev, true);
    ASSERT_EQ(dev_->xmit(fr), 2);  // both taken at once
    sw::sw_hold(kDev, false);
    EXPECT_EQ(reap(), (std::vector<uint64_t>{1, 2}));
    const bool refused = ops == &refusing;
    EXPECT_EQ(ok1, !refused);  // in place while the table had room
    EXPECT_FALSE(ok2);         // copied: COPIED
    EXPECT_EQ(dev_->stats().tx_user_copied, refused ? 2u : 1u);
    EXPECT_EQ(dev_->stats().tx_tso_bounced, refused ? 2u : 1u);
    EXPECT_EQ(dev_->mr_cache().stats().full, refused ? 0u : 1u);
    EXPECT_EQ(dev_->mr_cache().stats().reg_failures, refused ? 2u : 0u);
    const size_t segs = (plen + 1447) / 1448;
    ASSERT_EQ(wire_->sent.size(), 2 * segs);
    const std::vector<uint8_t> want(f.begin() + 54, f.end());
    EXPECT_EQ(tso_payload(wire_->sent, 0, segs), want);
    EXPECT_EQ(tso_payload(wire_->sent, segs, segs), want);
    for (const auto& seg : wire_->sent) EXPECT_TRUE(xmit::testing::l4_csum_ok(seg));
    EXPECT_EQ(dev_->unregister_memory(pool.data()), 0);
  }
}

// The 64 KiB bounce buffers are few (tso_bounce) and each held until its WR completes: with all in
// use a further copied TSO frame is not taken (as at a full send queue) and goes once they are free.
TEST_F(IbvNetdevTest, LargeCopiedTsoFramesWaitForAFreeBounceBuffer) {
  reopen({.tso_bounce = 1}, /*ip_csum=*/true, /*max_tso=*/65536);
  auto f = make_frame({.protocol = 6, .payload_len = 20000, .partial_csum = true});
  FrameSeg seg[1] = {{f.data(), uint32_t(f.size())}};  // unregistered: copied
  TxFrame t{.segs = seg, .flags = kTxTso | kTxL4Csum, .csum_start = 34, .csum_offset = 16, .gso_size = 1448};
  TxFrame fr[2] = {t, t};
  fr[0].cookie = 1, fr[1].cookie = 2;
  sw::sw_hold(kDev, true);
  EXPECT_EQ(dev_->xmit(fr), 1);
  EXPECT_EQ(dev_->xmit({&fr[1], 1}), 0);  // the one buffer is read by the posted WR
  EXPECT_EQ(dev_->stats().tx_bounce_full, 2u);
  sw::sw_hold(kDev, false);
  EXPECT_EQ(reap(), (std::vector<uint64_t>{1}));
  EXPECT_EQ(dev_->xmit({&fr[1], 1}), 1);
  EXPECT_EQ(reap(), (std::vector<uint64_t>{2}));
  const size_t segs = (20000 + 1447) / 1448;
  ASSERT_EQ(wire_->sent.size(), 2 * segs);
  const std::vector<uint8_t> want(f.begin() + 54, f.end());
  EXPECT_EQ(tso_payload(wire_->sent, 0, segs), want);
  EXPECT_EQ(tso_payload(wire_->sent, segs, segs), want);
}

TEST(IbvNetdevOpen, AttachingTheSoftwareDeviceTwiceFindsTheFirst) {
  std::string name;
  ASSERT_EQ(sw::sw_attach_interface("lo", true, &name), 0);
  EXPECT_EQ(name, "xmit_sw_lo");
  ASSERT_EQ(sw::sw_attach_interface("lo", false, &name), 0);
  int n = 0;
  ibv_device** list = ibv_sw_ops().get_device_list(&n);
  ibv_sw_ops().free_device_list(list);
  EXPECT_EQ(n, 1);
  std::string dev, why;
  uint8_t port = 0;
  EXPECT_EQ(ibv_sw_ops().netdev_to_ibdev("lo", &dev, &port, &why), 0);
  EXPECT_EQ(dev, "xmit_sw_lo");
  EXPECT_EQ(sw::sw_remove_all_devices(), 0);
}

// The device the preload attaches reports mlx5's offloads (IP/L4 checksums, TSO on raw packet
// QPs up to 64 KiB) unless XMIT_VERBS_SW_OFFLOADS=off asked for neither; a second attach keeps
// what the first made.
TEST(IbvNetdevOpen, TheAttachedSoftwareDeviceReportsOffloadsUnlessTurnedOff) {
  const IbvOps& ops = ibv_sw_ops();
  auto query = [&](ibv_device_attr_ex* a) {
    int n = 0;
    ibv_device** list = ops.get_device_list(&n);
    ASSERT_EQ(n, 1);
    ibv_context* ctx = ops.open_device(list[0]);
    ops.free_device_list(list);
    ASSERT_NE(ctx, nullptr);
    EXPECT_EQ(ops.query_device_ex(ctx, nullptr, a), 0);
    EXPECT_EQ(ops.close_device(ctx), 0);
  };
  for (bool offloads : {false, true}) {
    SCOPED_TRACE(offloads);
    std::string name;
    ASSERT_EQ(sw::sw_attach_interface("lo", offloads, &name), 0);
    ASSERT_EQ(sw::sw_attach_interface("lo", !offloads, &name), 0);
    ibv_device_attr_ex a{};
    query(&a);
    EXPECT_EQ(a.tso_caps.max_tso, offloads ? 65536u : 0u);
    EXPECT_EQ(a.tso_caps.supported_qpts, offloads ? 1u << IBV_QPT_RAW_PACKET : 0u);
    EXPECT_EQ(a.raw_packet_caps & IBV_RAW_PACKET_CAP_IP_CSUM, offloads ? uint64_t{IBV_RAW_PACKET_CAP_IP_CSUM} : 0u);
    EXPECT_EQ(sw::sw_remove_all_devices(), 0);
  }
}

TEST(IbvNetdevOpen, FailuresSayWhatWasMissing) {
  std::unique_ptr<IbvNetdev> d;
  std::string why;
  // The real libibverbs: loopback has no RDMA device.
  EXPECT_EQ(IbvNetdev::open({.ifname = "lo"}, &d, &why), -ENODEV);
  EXPECT_NE(why.find("lo has no RDMA device"), std::string::npos) << why;
  // The software device with nothing bound to the interface.
  why.clear();
  EXPECT_EQ(IbvNetdev::open({.ifname = "lo", .ops = &ibv_sw_ops()}, &d, &why), -ENODEV);
  EXPECT_NE(why.find("no software verbs device is bound to lo"), std::string::npos) << why;
  // A device bound to an interface that does not exist.
  sw::SwDeviceConfig cfg;
  cfg.name = "xmit_sw_ghost";
  cfg.ifname = "ghost0";
  ASSERT_EQ(sw::sw_add_device(cfg), 0);
  why.clear();
  EXPECT_EQ(IbvNetdev::open({.ifname = "ghost0", .ops = &ibv_sw_ops()}, &d, &why), -ENODEV);
  EXPECT_NE(why.find("interface ghost0"), std::string::npos) << why;
  // Bad options.
  EXPECT_EQ(IbvNetdev::open({.ifname = "lo", .ops = &ibv_sw_ops(), .rx_bufs = 100}, &d, &why), -EINVAL);
  EXPECT_EQ(d, nullptr);
  EXPECT_EQ(sw::sw_stats("xmit_sw_ghost").open_contexts, 0u);
  EXPECT_EQ(sw::sw_remove_all_devices(), 0);
}

// The preload protects these fds from the program and closes them in a forked child.
TEST_F(IbvNetdevTest, ForEachFdNamesEveryOpenFdOfTheDevice) {
  std::vector<int> fds;
  dev_->for_each_fd([&](int fd) { fds.push_back(fd); });
  ASSERT_GE(dev_->wait_fd(), 0);
  EXPECT_NE(std::find(fds.begin(), fds.end(), dev_->wait_fd()), fds.end()) << "the completion channel";
  EXPECT_NE(std::find(fds.begin(), fds.end(), wire_->arrival_fd), fds.end()) << "the carrier's arrival fd";
  std::vector<int> sorted = fds;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end()) << "an fd named twice";
  for (int fd : fds) EXPECT_GE(fcntl(fd, F_GETFD), 0) << "fd " << fd << " is not open";
}

// A forked child lets go: every fd goes to the closer, the parent's device is forgotten (a device
// of the same name can be added afresh), and nothing is reported any more. The parent is untouched.
TEST_F(IbvNetdevTest, AbandonAfterForkClosesEveryFdAndForgetsTheParentsDevice) {
  std::vector<int> fds;
  dev_->for_each_fd([&](int fd) { fds.push_back(fd); });
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::vector<int> closed;
    dev_->abandon_after_fork([&](int fd) {
      closed.push_back(fd);
      close(fd);
    });
    int code = 0;
    std::sort(fds.begin(), fds.end());
    std::sort(closed.begin(), closed.end());
    if (closed != fds) code |= 1;
    for (int fd : fds)
      if (fcntl(fd, F_GETFD) >= 0) code |= 2;
    int after = 0;
    dev_->for_each_fd([&](int) { ++after; });
    if (after != 0) code |= 4;
    sw::SwDeviceConfig cfg;
    cfg.name = kDev;
    cfg.ifname = "lo";
    if (sw::sw_add_device(cfg) != 0) code |= 8;  // the parent's device is gone in the child
    _exit(code);  // the abandoned objects are the parent's: no destructors, no leak check
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0) << "1: fds differ, 2: an fd left open, 4: fds still reported, 8: device not forgotten";
  for (int fd : fds) EXPECT_GE(fcntl(fd, F_GETFD), 0) << "the parent's fd " << fd;
  EXPECT_EQ(sw::sw_add_device([] {
              sw::SwDeviceConfig c;
              c.name = kDev;
              c.ifname = "lo";
              return c;
            }()),
            -EEXIST);  // still the parent's
}

}  // namespace
}  // namespace xmit::ibv
