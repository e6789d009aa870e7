// tests/dev/flow_table_test.cc — receive-side flow parse and the steering table's matching rules.
#include "stack/dev/flow_table.h"

#include <arpa/inet.h>

#include <cerrno>
#include <vector>

#include "gtest/gtest.h"
#include "tests/dev/test_frames.h"

namespace xmit {
namespace {

using testing::L4Spec;
using testing::make_frame;

FlowKey key_of(const std::vector<uint8_t>& f) {
  FlowKey k;
  EXPECT_TRUE(flow_key_from_rx(f.data(), static_cast<uint32_t>(f.size()), &k));
  return k;
}

TEST(FlowKeyFromRx, SeenFromTheReceiver) {
  for (uint8_t proto : {uint8_t{6}, uint8_t{17}}) {
    auto f = make_frame({.protocol = proto, .sport = 1111, .dport = 2222});
    EXPECT_EQ(key_of(f), (FlowKey{.protocol = proto,
                                  .local_addr = htonl(testing::kAddrB),
                                  .local_port = htons(2222),
                                  .remote_addr = htonl(testing::kAddrA),
                                  .remote_port = htons(1111)}));
  }
}

TEST(FlowKeyFromRx, LeavesOtherFramesToTheKernel) {
  FlowKey k;
  auto arp = make_frame({});
  arp[13] = 0x06;
  EXPECT_FALSE(flow_key_from_rx(arp.data(), static_cast<uint32_t>(arp.size()), &k));
  auto icmp = make_frame({});
  icmp[23] = 1;
  EXPECT_FALSE(flow_key_from_rx(icmp.data(), static_cast<uint32_t>(icmp.size()), &k));
  auto later_fragment = make_frame({.frag_off = 0x2000 | 100});
  EXPECT_FALSE(flow_key_from_rx(later_fragment.data(), static_cast<uint32_t>(later_fragment.size()), &k));
  auto first_fragment = make_frame({.frag_off = 0x2000});
  EXPECT_TRUE(flow_key_from_rx(first_fragment.data(), static_cast<uint32_t>(first_fragment.size()), &k));
  auto f = make_frame({});
  EXPECT_FALSE(flow_key_from_rx(f.data(), 14 + 20 + 3, &k));  // ports cut off
  EXPECT_TRUE(flow_key_from_rx(f.data(), 14 + 20 + 4, &k));
  f[14] = 0x46;  // IHL 6: ports move 4 bytes on
  EXPECT_FALSE(flow_key_from_rx(f.data(), 14 + 24 + 3, &k));
}

TEST(FlowTable, AddRemoveErrors) {
  FlowTable t(2);
  const FlowKey a{.protocol = 17, .local_port = htons(1)};
  const FlowKey b{.protocol = 17, .local_port = htons(2)};
  const FlowKey c{.protocol = 6, .local_port = htons(1)};
  EXPECT_EQ(t.add(a), 0);
  EXPECT_EQ(t.add(a), -EEXIST);
  EXPECT_EQ(t.add(b), 0);
  EXPECT_EQ(t.add(c), -ENOSPC);
  EXPECT_EQ(t.remove(c), -ENOENT);
  EXPECT_EQ(t.remove(a), 0);
  EXPECT_EQ(t.remove(a), -ENOENT);
  EXPECT_EQ(t.add(c), 0);
  EXPECT_EQ(t.size(), 2u);
}

TEST(FlowTable, WildcardsAndExactMatches) {
  const FlowKey pkt{.protocol = 6, .local_addr = 1, .local_port = 80, .remote_addr = 2,
                    .remote_port = 5555};
  struct Case {
    FlowKey rule;
    bool match;
  } cases[] = {
      {{.protocol = 6, .local_port = 80}, true},                       // listener on any address
      {{.protocol = 6, .local_addr = 1, .local_port = 80}, true},
      {{.protocol = 6, .local_addr = 3, .local_port = 80}, false},
      {{.protocol = 17, .local_port = 80}, false},
      {{.protocol = 6, .local_port = 81}, false},
      {pkt, true},                                                     // connected socket
      {{.protocol = 6, .local_addr = 1, .local_port = 80, .remote_addr = 2, .remote_port = 1}, false},
      {{.protocol = 6, .local_addr = 1, .local_port = 80, .remote_addr = 9}, false},
  };
  for (const Case& c : cases) {
    FlowTable t(1);
    ASSERT_EQ(t.add(c.rule), 0);
    EXPECT_EQ(t.match(pkt), c.match) << int{c.rule.local_port} << " " << c.rule.remote_addr;
  }
  EXPECT_FALSE(FlowTable(4).match(pkt));
}

}  // namespace
}  // namespace xmit
