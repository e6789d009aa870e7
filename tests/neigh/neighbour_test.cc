// tests/neigh/neighbour_test.cc — NeighTable and DstCache against a fake FIB: sending with a known
// MAC, queueing while resolving, the byte bound on the queue, flush order, failure, the backstop
// timer, multicast/broadcast mapping, a held entry whose header the sender wrote (the UDP send
// template's), and route cache invalidation by generation.
#include <linux/if_ether.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stack/neigh/dst_cache.h"
#include "stack/neigh/neighbour.h"
#include "stack/skb/pool.h"
#include "stack/wire/eth.h"
#include "tests/neigh/fake_fib.h"

namespace xmit {
namespace {

using testing::FakeFib;
using testing::RecordingOps;
using ::testing::ElementsAre;

constexpr int kIf = FakeFib::kIfindex;
constexpr uint64_t kMs = 1000000;
const be32 kPeer = make_ipv4_addr(198, 18, 0, 2);
const be32 kGw = make_ipv4_addr(198, 18, 0, 254);
const MacAddr kPeerMac{0x02, 0x11, 0x22, 0x33, 0x44, 0x55};

class NeighTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(BufPool::create(64, 2048, &bufs_), 0);
    ASSERT_EQ(SkbPool::create(64, bufs_.get(), &skbs_), 0);
    table_ = std::make_unique<NeighTable>(&fib_, &ops_, 8);
  }
  void TearDown() override {
    table_.reset();
    EXPECT_EQ(skbs_->nr_free(), skbs_->nr_skbs()) << "an skb leaked";
  }

  // A 20-byte "IP header" whose first byte identifies the packet.
  sk_buff* make_skb(uint8_t id, uint32_t headroom = 64) {
    sk_buff* skb = skbs_->alloc_skb();
    EXPECT_NE(skb, nullptr);
    EXPECT_EQ(skb_reserve(skb, headroom), 0);
    uint8_t* p = skb_put_zero(skb, 20);
    p[0] = id;
    return skb;
  }
  Rtable onlink() const { return Rtable{.type = RTN_UNICAST, .oif = kIf, .prefsrc = make_ipv4_addr(198, 18, 0, 1)}; }
  void kernel_has(be32 ip, uint16_t state, MacAddr mac = kPeerMac) {
    fib_.kernel[{kIf, ip}] = NeighInfo{.ha = mac, .nud_state = state, .has_ha = true};
  }
  NeighEvent event(be32 ip, uint16_t state, MacAddr mac = kPeerMac) const {
    return NeighEvent{.ifindex = kIf, .ip = ip, .info = NeighInfo{.ha = mac, .nud_state = state, .has_ha = true}};
  }
  // The id byte of every transmitted frame, in order.
  std::vector<int> sent_ids() const {
    std::vector<int> ids;
    for (const auto& f : ops_.frames) ids.push_back(f.size() > ETH_HLEN ? f[ETH_HLEN] : -1);
    return ids;
  }
  // A UDP GSO packet's three segments, linked through next, ids first..first+2.
  sk_buff* list(uint8_t first) {
    sk_buff* head = make_skb(first);
    head->next = make_skb(static_cast<uint8_t>(first + 1));
    head->next->next = make_skb(static_cast<uint8_t>(first + 2));
    return head;
  }
  uint32_t truesize() {
    sk_buff* skb = make_skb(0);
    uint32_t t = neigh_skb_truesize(skb);
    kfree_skb(skb);
    return t;
  }

  FakeFib fib_;
  RecordingOps ops_;
  std::unique_ptr<BufPool> bufs_;
  std::unique_ptr<SkbPool> skbs_;
  std::unique_ptr<NeighTable> table_;
};

TEST_F(NeighTest, KnownMacIsSentAtOnceWithTheEthernetHeader) {
  kernel_has(kPeer, NUD_REACHABLE);
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(1), 0), 0);
  ASSERT_EQ(ops_.frames.size(), 1u);
  const auto& f = ops_.frames[0];
  ASSERT_EQ(f.size(), ETH_HLEN + 20u);
  EthRepr eth;
  ASSERT_EQ(EthRepr::parse(*EthHdrView::parse(absl::MakeConstSpan(f)), &eth), 0);
  EXPECT_EQ(eth, (EthRepr{.h_dest = kPeerMac, .h_source = ops_.mac, .h_proto = ETH_P_IP}));
  EXPECT_EQ(f[ETH_HLEN], 1);
  EXPECT_TRUE(fib_.resolves.empty());
  EXPECT_EQ(table_->find(kIf, kPeer)->nud_state, NUD_REACHABLE);
}

TEST_F(NeighTest, MissingEntryQueuesResolvesOnceAndFlushesInOrder) {
  for (uint8_t id = 1; id <= 3; ++id) ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(id), id * kMs), 0);
  EXPECT_TRUE(ops_.frames.empty());
  EXPECT_THAT(fib_.resolves, ElementsAre(std::make_pair(kIf, kPeer)));
  const Neighbour* n = table_->find(kIf, kPeer);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->nud_state, NUD_INCOMPLETE);
  EXPECT_EQ(n->arp_queue_len, 3u);

  table_->neigh_update(event(kPeer, NUD_INCOMPLETE), 4 * kMs);  // the kernel started: still held
  EXPECT_TRUE(ops_.frames.empty());
  table_->neigh_update(event(kPeer, NUD_REACHABLE), 5 * kMs);
  EXPECT_THAT(sent_ids(), ElementsAre(1, 2, 3));
  EXPECT_EQ(n->arp_queue_len, 0u);
  EXPECT_EQ(n->arp_queue_len_bytes, 0u);
  EthRepr eth;
  ASSERT_EQ(EthRepr::parse(*EthHdrView::parse(absl::MakeConstSpan(ops_.frames[2])), &eth), 0);
  EXPECT_EQ(eth.h_dest, kPeerMac);

  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(4), 6 * kMs), 0);  // now straight out
  EXPECT_THAT(sent_ids(), ElementsAre(1, 2, 3, 4));
  EXPECT_EQ(fib_.resolves.size(), 1u);
  EXPECT_EQ(table_->stats().unres_discards, 0u);
}

// A UDP GSO packet's segments, linked through next (ip_finish_output2()), are one packet, as the
// kernel's GSO skb: while the address resolves it waits as one entry of the queue, and it reaches
// the device in one call, each segment with its header, whether it waited or not.
TEST_F(NeighTest, GsoSegmentsAreOnePacketQueuedAndSentWhole) {
  ASSERT_EQ(table_->output(onlink(), kPeer, list(1), kMs), 0);
  const Neighbour* n = table_->find(kIf, kPeer);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->arp_queue_len, 1u);
  EXPECT_EQ(n->arp_queue_len_bytes, 3 * truesize());
  EXPECT_EQ(fib_.resolves.size(), 1u);
  table_->neigh_update(event(kPeer, NUD_REACHABLE), 2 * kMs);
  EXPECT_THAT(sent_ids(), ElementsAre(1, 2, 3));
  EXPECT_EQ(ops_.calls, 1);  // the waiting packet in one hand-off
  ASSERT_EQ(table_->output(onlink(), kPeer, list(4), 3 * kMs), 0);
  EXPECT_THAT(sent_ids(), ElementsAre(1, 2, 3, 4, 5, 6));
  EXPECT_EQ(ops_.calls, 2);
  for (const auto& f : ops_.frames) {
    EthRepr eth;
    ASSERT_EQ(EthRepr::parse(*EthHdrView::parse(absl::MakeConstSpan(f)), &eth), 0);
    EXPECT_EQ(eth.h_dest, kPeerMac);
  }
}

// The queue's byte bound evicts whole packets, oldest first: never part of a GSO packet.
TEST_F(NeighTest, QueueBoundEvictsAGsoPacketWhole) {
  fib_.parms.unres_qlen_bytes = 4 * truesize();
  ASSERT_EQ(table_->output(onlink(), kPeer, list(1), 0), 0);
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(4), 0), 0);  // 4 skbs: fits
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(5), 0), 0);  // the 3-segment packet goes
  const Neighbour* n = table_->find(kIf, kPeer);
  EXPECT_EQ(n->arp_queue_len, 2u);
  EXPECT_EQ(n->arp_queue_len_bytes, 2 * truesize());
  EXPECT_EQ(table_->stats().unres_discards, 1u);
  table_->neigh_update(event(kPeer, NUD_REACHABLE), kMs);
  EXPECT_THAT(sent_ids(), ElementsAre(4, 5));
}

// Where the neighbour layer refuses a packet (a local route, a full table), every segment of a GSO
// packet is freed, not only the first (TearDown() finds any skb left behind).
TEST_F(NeighTest, RefusedGsoPacketIsFreedWhole) {
  Rtable local = onlink();
  local.type = RTN_LOCAL;
  EXPECT_EQ(table_->output(local, kPeer, list(1), 0), -EINVAL);
  for (uint8_t i = 1;; ++i) {  // fill the table
    const int err = table_->output(onlink(), make_ipv4_addr(198, 18, 1, i), make_skb(i), 0);
    if (err == -ENOBUFS) break;
    ASSERT_EQ(err, 0);
    ASSERT_LT(i, 100);
  }
  EXPECT_EQ(table_->output(onlink(), make_ipv4_addr(198, 18, 2, 1), list(1), 0), -ENOBUFS);
}

TEST_F(NeighTest, QueueIsBoundedByUnresQlenBytesOldestDroppedFirst) {
  fib_.parms.unres_qlen_bytes = 3 * truesize();  // what /proc/sys/.../unres_qlen_bytes says
  for (uint8_t id = 1; id <= 5; ++id) ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(id), 0), 0);
  const Neighbour* n = table_->find(kIf, kPeer);
  EXPECT_EQ(n->arp_queue_len, 3u);
  EXPECT_EQ(n->arp_queue_len_bytes, 3 * truesize());
  EXPECT_EQ(table_->stats().unres_discards, 2u);
  EXPECT_EQ(skbs_->nr_free(), skbs_->nr_skbs() - 3) << "dropped skbs go back to the pool";
  table_->neigh_update(event(kPeer, NUD_REACHABLE), kMs);
  EXPECT_THAT(sent_ids(), ElementsAre(3, 4, 5));
}

TEST_F(NeighTest, AnSkbLargerThanTheBoundEmptiesTheQueueButIsHeld) {
  fib_.parms.unres_qlen_bytes = truesize() / 2;  // kernel: the while loop stops at an empty queue
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(1), 0), 0);
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(2), 0), 0);
  EXPECT_EQ(table_->find(kIf, kPeer)->arp_queue_len, 1u);
  EXPECT_EQ(table_->stats().unres_discards, 1u);
  table_->neigh_update(event(kPeer, NUD_REACHABLE), kMs);
  EXPECT_THAT(sent_ids(), ElementsAre(2));
}

TEST_F(NeighTest, FailedResolutionDropsTheQueueAndTheNextSendRetries) {
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(1), 0), 0);
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(2), 0), 0);
  table_->neigh_update(event(kPeer, NUD_FAILED, MacAddr{}), 3000 * kMs);
  EXPECT_TRUE(ops_.frames.empty());
  EXPECT_EQ(table_->stats().res_failed, 1u);
  EXPECT_EQ(table_->stats().failed_drops, 2u);
  EXPECT_EQ(table_->find(kIf, kPeer)->nud_state, NUD_FAILED);
  EXPECT_EQ(skbs_->nr_free(), skbs_->nr_skbs());
  table_->neigh_update(event(kPeer, NUD_FAILED, MacAddr{}), 3001 * kMs);  // repeated: counted once
  EXPECT_EQ(table_->stats().res_failed, 1u);

  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(3), 4000 * kMs), 0);  // FAILED -> INCOMPLETE again
  EXPECT_EQ(fib_.resolves.size(), 2u);
  EXPECT_EQ(table_->find(kIf, kPeer)->nud_state, NUD_INCOMPLETE);
  table_->neigh_update(event(kPeer, NUD_REACHABLE), 4001 * kMs);
  EXPECT_THAT(sent_ids(), ElementsAre(3));
}

// An entry that failed and resolves again to the address it had is valid again and sends what
// waited (the kernel's neigh_update() takes the state whether or not the address changed).
TEST_F(NeighTest, ResolvingAgainToTheSameAddressSendsTheQueue) {
  kernel_has(kPeer, NUD_REACHABLE);
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(1), 0), 0);
  table_->neigh_update(event(kPeer, NUD_FAILED, MacAddr{}), kMs);
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(2), 2 * kMs), 0);  // FAILED -> INCOMPLETE
  EXPECT_EQ(table_->find(kIf, kPeer)->nud_state, NUD_INCOMPLETE);
  table_->neigh_update(event(kPeer, NUD_REACHABLE), 3 * kMs);  // the same MAC as before
  EXPECT_EQ(table_->find(kIf, kPeer)->nud_state, NUD_REACHABLE);
  EXPECT_THAT(sent_ids(), ElementsAre(1, 2));
}

TEST_F(NeighTest, NoProbesAllowedFailsAtOnce) {
  fib_.parms.mcast_probes = 0;
  fib_.parms.app_probes = 0;
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(1), 0), 0);
  EXPECT_EQ(table_->find(kIf, kPeer)->nud_state, NUD_FAILED);
  EXPECT_EQ(table_->stats().failed_drops, 1u);
  EXPECT_TRUE(fib_.resolves.empty());
}

TEST_F(NeighTest, ResolveRequestErrorFailsTheEntry) {
  fib_.resolve_err = -ENODEV;
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(1), 0), 0);
  EXPECT_EQ(table_->find(kIf, kPeer)->nud_state, NUD_FAILED);
  EXPECT_EQ(table_->stats().failed_drops, 1u);
  EXPECT_EQ(table_->stats().res_failed, 1u);
}

TEST_F(NeighTest, StaleEntrySendsAndAsksTheKernelToReconfirmOnce) {
  kernel_has(kPeer, NUD_STALE);
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(1), 0), 0);
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(2), 0), 0);
  EXPECT_THAT(sent_ids(), ElementsAre(1, 2));
  EXPECT_EQ(fib_.resolves.size(), 1u);
  EXPECT_EQ(table_->find(kIf, kPeer)->nud_state, NUD_DELAY);  // kernel: STALE -> DELAY
}

TEST_F(NeighTest, BackstopTimerRereadsTheKernelWhenTheEventIsLost) {
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(1), 0), 0);
  uint64_t deadline = table_->next_deadline();
  EXPECT_EQ(deadline, (3 + 0 + 1) * 1000 * kMs);  // (mcast_solicit + app_solicit + 1) * retrans_time
  table_->neigh_timer_handler(deadline - 1);
  EXPECT_EQ(fib_.lookup_calls, 1) << "only the lookup at creation";
  kernel_has(kPeer, NUD_REACHABLE);  // resolved, but the notification never came
  table_->neigh_timer_handler(deadline);
  EXPECT_THAT(sent_ids(), ElementsAre(1));
  EXPECT_EQ(table_->next_deadline(), 0u);
}

TEST_F(NeighTest, BackstopTimerGivesUpOnAnEntryThatStaysIncomplete) {
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(1), 0), 0);
  kernel_has(kPeer, NUD_INCOMPLETE, MacAddr{});
  for (uint32_t i = 0; i < NeighTable::kMaxTimerRearms; ++i) {
    uint64_t d = table_->next_deadline();
    ASSERT_NE(d, 0u);
    table_->neigh_timer_handler(d);
    EXPECT_EQ(table_->find(kIf, kPeer)->nud_state, NUD_INCOMPLETE);
  }
  table_->neigh_timer_handler(table_->next_deadline());
  EXPECT_EQ(table_->find(kIf, kPeer)->nud_state, NUD_FAILED);
  EXPECT_EQ(table_->stats().failed_drops, 1u);
  EXPECT_EQ(table_->next_deadline(), 0u);
}

// The handler runs on every stack poll: before the earliest deadline it must not walk the table
// (nor ask the kernel anything); each entry's timer fires at its own deadline, not before.
TEST_F(NeighTest, TimersFireEachAtItsDeadlineAndNothingIsWalkedBefore) {
  const be32 other = make_ipv4_addr(198, 18, 0, 3);
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(1), 0), 0);
  ASSERT_EQ(table_->output(onlink(), other, make_skb(2), 500 * kMs), 0);
  const uint64_t d1 = 4000 * kMs, d2 = 4500 * kMs;  // (3 + 0 + 1) * 1000 ms after each send
  EXPECT_EQ(table_->next_deadline(), d1);
  const int lookups = fib_.lookup_calls;
  for (uint64_t t = 0; t < d1; t += kMs) table_->neigh_timer_handler(t);
  EXPECT_EQ(table_->stats().timer_walks, 0u);
  EXPECT_EQ(fib_.lookup_calls, lookups);

  kernel_has(kPeer, NUD_REACHABLE);  // both resolved; neither notification came
  kernel_has(other, NUD_REACHABLE);
  table_->neigh_timer_handler(d1);
  EXPECT_THAT(sent_ids(), ElementsAre(1)) << "only the first entry is due";
  EXPECT_EQ(fib_.lookup_calls, lookups + 1);
  EXPECT_EQ(table_->next_deadline(), d2);
  for (uint64_t t = d1; t < d2; t += kMs) table_->neigh_timer_handler(t);
  EXPECT_EQ(table_->stats().timer_walks, 1u);
  EXPECT_THAT(sent_ids(), ElementsAre(1));
  table_->neigh_timer_handler(d2);
  EXPECT_THAT(sent_ids(), ElementsAre(1, 2));
  EXPECT_EQ(table_->stats().timer_walks, 2u);
  EXPECT_EQ(table_->next_deadline(), 0u);
  for (uint64_t t = d2; t < d2 + 10000 * kMs; t += kMs) table_->neigh_timer_handler(t);
  EXPECT_EQ(table_->stats().timer_walks, 2u) << "no timer armed: nothing to walk";
}

// A timer cancelled by the kernel's answer costs at most one walk that finds nothing; a later,
// earlier-armed entry is still seen on time.
TEST_F(NeighTest, CancelledTimersCostOneEmptyWalkAndLaterTimersStillFire) {
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(1), 0), 0);
  table_->neigh_update(event(kPeer, NUD_REACHABLE), 10 * kMs);
  EXPECT_EQ(table_->next_deadline(), 0u);
  const int lookups = fib_.lookup_calls;
  for (uint64_t t = 0; t < 8000 * kMs; t += kMs) table_->neigh_timer_handler(t);
  EXPECT_EQ(table_->stats().timer_walks, 1u);
  EXPECT_EQ(fib_.lookup_calls, lookups);

  const be32 other = make_ipv4_addr(198, 18, 0, 3);
  ASSERT_EQ(table_->output(onlink(), other, make_skb(2), 8000 * kMs), 0);
  kernel_has(other, NUD_FAILED, MacAddr{});
  table_->neigh_timer_handler(12000 * kMs - 1);
  EXPECT_EQ(table_->find(kIf, other)->nud_state, NUD_INCOMPLETE);
  table_->neigh_timer_handler(12000 * kMs);
  EXPECT_EQ(table_->find(kIf, other)->nud_state, NUD_FAILED);
  EXPECT_EQ(table_->stats().failed_drops, 1u);
}

TEST_F(NeighTest, DeletedKernelEntryDropsWhatWaitedButAReplacementIsFollowed) {
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(1), 0), 0);
  kernel_has(kPeer, NUD_REACHABLE);  // deleted and re-created before we read the delete
  table_->neigh_update(NeighEvent{.kind = NeighEvent::kDelete, .ifindex = kIf, .ip = kPeer}, 1);
  EXPECT_THAT(sent_ids(), ElementsAre(1));

  const be32 other = make_ipv4_addr(198, 18, 0, 3);
  ASSERT_EQ(table_->output(onlink(), other, make_skb(2), 2), 0);
  table_->neigh_update(NeighEvent{.kind = NeighEvent::kDelete, .ifindex = kIf, .ip = other}, 3);
  EXPECT_EQ(table_->find(kIf, other)->nud_state, NUD_NONE);
  EXPECT_EQ(table_->stats().failed_drops, 1u);
}

TEST_F(NeighTest, ResyncRereadsEveryEntry) {
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(1), 0), 0);
  kernel_has(kPeer, NUD_REACHABLE);
  table_->neigh_update(NeighEvent{.kind = NeighEvent::kResync}, 1);
  EXPECT_THAT(sent_ids(), ElementsAre(1));
}

TEST_F(NeighTest, EventsForOtherAddressesAreIgnored) {
  table_->neigh_update(event(kPeer, NUD_REACHABLE), 0);
  EXPECT_EQ(table_->find(kIf, kPeer), nullptr);
}

TEST_F(NeighTest, GatewayRoutesResolveTheGateway) {
  kernel_has(kGw, NUD_REACHABLE, MacAddr{0x02, 0, 0, 0, 0, 0xfe});
  Rtable rt = onlink();
  rt.gateway = kGw;
  ASSERT_EQ(table_->output(rt, make_ipv4_addr(198, 19, 0, 9), make_skb(1), 0), 0);
  ASSERT_EQ(ops_.frames.size(), 1u);
  EXPECT_EQ(ops_.frames[0][5], 0xfe);
  EXPECT_NE(table_->find(kIf, kGw), nullptr);
  EXPECT_EQ(table_->find(kIf, make_ipv4_addr(198, 19, 0, 9)), nullptr);
}

struct McCase {
  const char* name;
  uint8_t type;
  be32 daddr;
  MacAddr mac;
};

void PrintTo(const McCase& c, std::ostream* os) { *os << c.name; }

class NeighMapTest : public NeighTest, public ::testing::WithParamInterface<McCase> {};

// kernel: arp_constructor() -> arp_mc_map(): NUD_NOARP, no solicitation, no kernel lookup.
TEST_P(NeighMapTest, MapsWithoutArp) {
  const McCase& c = GetParam();
  Rtable rt = onlink();
  rt.type = c.type;
  ASSERT_EQ(table_->output(rt, c.daddr, make_skb(1), 0), 0);
  ASSERT_EQ(ops_.frames.size(), 1u);
  MacAddr dest;
  std::memcpy(dest.data(), ops_.frames[0].data(), dest.size());
  EXPECT_EQ(dest, c.mac);
  EXPECT_TRUE(fib_.resolves.empty());
  EXPECT_EQ(fib_.lookup_calls, 0);
  EXPECT_EQ(table_->find(kIf, c.daddr)->nud_state, NUD_NOARP);
}

constexpr MacAddr kBcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
INSTANTIATE_TEST_SUITE_P(Kernel, NeighMapTest, ::testing::Values(
    McCase{"AllHosts", RTN_MULTICAST, make_ipv4_addr(224, 0, 0, 1), {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}},
    McCase{"Ssdp", RTN_MULTICAST, make_ipv4_addr(239, 255, 255, 250), {0x01, 0x00, 0x5e, 0x7f, 0xff, 0xfa}},
    McCase{"HighBitDropped", RTN_MULTICAST, make_ipv4_addr(224, 129, 2, 3), {0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}},
    McCase{"SubnetBroadcast", RTN_BROADCAST, make_ipv4_addr(198, 18, 0, 255), kBcast},
    McCase{"LimitedBroadcast", RTN_BROADCAST, make_ipv4_addr(255, 255, 255, 255), kBcast}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(NeighTest, LocalRoutesAndOtherDevicesAreRefused) {
  Rtable rt = onlink();
  rt.type = RTN_LOCAL;
  EXPECT_EQ(table_->output(rt, kPeer, make_skb(1), 0), -EINVAL);
  rt = onlink();
  rt.oif = kIf + 1;
  EXPECT_EQ(table_->output(rt, kPeer, make_skb(2), 0), -ENODEV);
  EXPECT_TRUE(ops_.frames.empty());
}

TEST_F(NeighTest, AFullTableRefusesNewNextHops) {
  // capacity 8: 6 entries (3/4) fit
  for (uint8_t i = 1; i <= 6; ++i) {
    kernel_has(make_ipv4_addr(198, 18, 0, i), NUD_REACHABLE);
    ASSERT_EQ(table_->output(onlink(), make_ipv4_addr(198, 18, 0, i), make_skb(i), 0), 0);
  }
  EXPECT_EQ(table_->output(onlink(), make_ipv4_addr(198, 18, 0, 7), make_skb(7), 0), -ENOBUFS);
  EXPECT_EQ(table_->stats().table_fulls, 1u);
  EXPECT_EQ(ops_.frames.size(), 6u);
  ASSERT_EQ(table_->output(onlink(), make_ipv4_addr(198, 18, 0, 3), make_skb(8), 0), 0);  // existing ones still work
  EXPECT_EQ(ops_.frames.size(), 7u);
}

// The Ethernet header is built once per entry (kernel: hh_cache); a new MAC from the kernel's
// table rewrites it (neigh_update_hhs()), so the next frame goes to the new address.
TEST_F(NeighTest, APrebuiltHeaderFollowsAMacChange) {
  const MacAddr moved{0x02, 0x66, 0x77, 0x88, 0x99, 0xaa};
  kernel_has(kPeer, NUD_REACHABLE);
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(1), 0), 0);
  table_->neigh_update(event(kPeer, NUD_REACHABLE, moved), 1);
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(2), 2), 0);
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(3, /*headroom=*/ETH_HLEN), 3), 0);
  ASSERT_EQ(ops_.frames.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EthRepr eth;
    ASSERT_EQ(EthRepr::parse(*EthHdrView::parse(absl::MakeConstSpan(ops_.frames[i])), &eth), 0);
    EXPECT_EQ(eth, (EthRepr{.h_dest = i == 0 ? kPeerMac : moved, .h_source = ops_.mac, .h_proto = ETH_P_IP}))
        << "frame " << i;
    EXPECT_EQ(ops_.frames[i].size(), ETH_HLEN + 20u);
  }
  EXPECT_THAT(sent_ids(), ElementsAre(1, 2, 3));
}

// A sender that holds the entry (neigh_lookup(): nothing created or counted) and writes its header
// itself (neigh_hh_write()) gets the bytes neigh_output() would send; on any path but the hh_cache
// one (here STALE, then the kernel's deletion) the header written is not trusted: the entry
// re-confirms, or holds the packet, as for any other packet. MAC changes show in the next write.
TEST_F(NeighTest, AHeldEntryWithItsHeaderWrittenSendsWhatNeighOutputWould) {
  EXPECT_EQ(table_->neigh_lookup(kIf, kPeer), nullptr);
  kernel_has(kPeer, NUD_REACHABLE);
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(1), 0), 0);  // creates it, builds the header
  const NeighStats stats = table_->stats();
  Neighbour* n = table_->neigh_lookup(kIf, kPeer);
  ASSERT_EQ(n, table_->find(kIf, kPeer));
  EXPECT_EQ(table_->stats().lookups, stats.lookups);
  auto written = [&](uint8_t id) {
    sk_buff* skb = make_skb(id, 16);
    EXPECT_TRUE(neigh_hh_write(*n, skb));
    return table_->neigh_output(n, skb, 0, /*hh_written=*/true);
  };
  ASSERT_EQ(written(2), 0);
  table_->neigh_update(event(kPeer, NUD_REACHABLE, MacAddr{0x02, 0, 0, 0, 0, 0x22}), 0);
  ASSERT_EQ(written(3), 0);
  ASSERT_EQ(ops_.frames.size(), 3u);
  std::vector<uint8_t> want = ops_.frames[0];
  want[ETH_HLEN] = 2;
  EXPECT_EQ(ops_.frames[1], want);
  EXPECT_THAT(std::vector<uint8_t>(ops_.frames[2].begin(), ops_.frames[2].begin() + 6),
              ElementsAre(0x02, 0, 0, 0, 0, 0x22));
  table_->neigh_update(event(kPeer, NUD_STALE, MacAddr{0x02, 0, 0, 0, 0, 0x22}), 0);
  ASSERT_EQ(written(4), 0);
  EXPECT_EQ(n->nud_state, NUD_DELAY);  // kernel: STALE -> DELAY, re-confirmed by the kernel
  EXPECT_EQ(fib_.resolves.size(), 1u);
  fib_.kernel.erase({kIf, kPeer});
  table_->neigh_update(NeighEvent{.kind = NeighEvent::kDelete, .ifindex = kIf, .ip = kPeer}, 0);
  ASSERT_EQ(written(5), 0);  // held while the kernel resolves
  EXPECT_EQ(n->nud_state, NUD_INCOMPLETE);
  EXPECT_THAT(sent_ids(), ElementsAre(1, 2, 3, 4));
}

TEST_F(NeighTest, ShortHeadroomAndClonedHeadsGetAPrivateHead) {
  kernel_has(kPeer, NUD_REACHABLE);
  ASSERT_EQ(table_->output(onlink(), kPeer, make_skb(1, /*headroom=*/0), 0), 0);
  sk_buff* orig = make_skb(2);
  sk_buff* clone = skb_clone(orig);
  ASSERT_NE(clone, nullptr);
  ASSERT_EQ(table_->output(onlink(), kPeer, clone, 0), 0);
  EXPECT_EQ(orig->data[0], 2) << "the original's head was not written";
  EXPECT_EQ(skb_headroom(orig), 64u);
  kfree_skb(orig);
  EXPECT_THAT(sent_ids(), ElementsAre(1, 2));
  EXPECT_EQ(ops_.frames[0].size(), ETH_HLEN + 20u);
}

// --- DstCache: the per-socket route (kernel: sk_dst_cache, __sk_dst_check()) ---

TEST(DstCache, CachesUntilTheGenerationChanges) {
  FakeFib fib;
  Flowi4 fl{.daddr = kPeer, .proto = 17};
  Rtable want{.type = RTN_UNICAST, .oif = kIf, .prefsrc = make_ipv4_addr(198, 18, 0, 1)};
  fib.routes[kPeer] = {0, want};
  DstCache cache;
  EXPECT_EQ(cache.dst_check(fib), nullptr);
  const Rtable* rt = nullptr;
  ASSERT_EQ(cache.lookup(fib, fl, &rt), 0);
  EXPECT_EQ(*rt, want);
  ASSERT_EQ(cache.lookup(fib, fl, &rt), 0);
  EXPECT_EQ(fib.route_calls, 1);
  EXPECT_NE(cache.dst_check(fib), nullptr);

  fib.gen++;  // a route, address, link or neighbour changed
  EXPECT_EQ(cache.dst_check(fib), nullptr);
  EXPECT_FALSE(cache.valid);
  want.gateway = kGw;
  fib.routes[kPeer] = {0, want};
  ASSERT_EQ(cache.lookup(fib, fl, &rt), 0);
  EXPECT_EQ(fib.route_calls, 2);
  EXPECT_EQ(rt->gateway, kGw);
  EXPECT_EQ(cache.generation, fib.gen);

  Flowi4 other = fl;
  other.mark = 5;  // another flow is not served from the cache
  ASSERT_EQ(cache.lookup(fib, other, &rt), 0);
  EXPECT_EQ(fib.route_calls, 3);
}

TEST(DstCache, FailedLookupsAreNotCached) {
  FakeFib fib;
  fib.routes[kPeer] = {-EHOSTUNREACH, Rtable{}};
  DstCache cache;
  const Rtable* rt = nullptr;
  EXPECT_EQ(cache.lookup(fib, Flowi4{.daddr = kPeer}, &rt), -EHOSTUNREACH);
  EXPECT_EQ(cache.lookup(fib, Flowi4{.daddr = kGw}, &rt), -ENETUNREACH);
  EXPECT_EQ(cache.dst_check(fib), nullptr);
  EXPECT_EQ(fib.route_calls, 2);
}

}  // namespace
}  // namespace xmit
