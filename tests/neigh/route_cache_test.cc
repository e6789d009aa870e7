// tests/neigh/route_cache_test.cc — RouteCache: a route is reused for its flow key while the FIB
// generation is the one it was taken at and for at most kTtlNs; ports are not part of the key.
#include "stack/neigh/route_cache.h"

#include <gtest/gtest.h>

namespace xmit {
namespace {

constexpr be32 kA = 0x010012c6;  // 198.18.0.1 in network order
constexpr be32 kB = 0x020012c6;  // 198.18.0.2

Flowi4 flow(be32 daddr, be32 saddr = kA) { return Flowi4{.daddr = daddr, .saddr = saddr, .proto = 6}; }
Rtable route(uint32_t mtu) { return Rtable{.type = RTN_UNICAST, .oif = 7, .prefsrc = kA, .mtu = mtu}; }

TEST(RouteCacheTest, HitWhileGenerationAndTtlHold) {
  RouteCache c;
  Rtable got;
  EXPECT_FALSE(c.lookup(flow(kB), 1, 0, &got));
  c.insert(flow(kB), route(1400), 1, 1000);
  ASSERT_TRUE(c.lookup(flow(kB), 1, 1000 + RouteCache::kTtlNs - 1, &got));
  EXPECT_EQ(got, route(1400));
  EXPECT_EQ(c.hits, 1u);
  EXPECT_EQ(c.misses, 1u);
}

TEST(RouteCacheTest, NewGenerationMisses) {
  RouteCache c;
  Rtable got;
  c.insert(flow(kB), route(1400), 1, 0);
  EXPECT_FALSE(c.lookup(flow(kB), 2, 1, &got));
}

TEST(RouteCacheTest, ExpiresAfterTtl) {
  RouteCache c;
  Rtable got;
  c.insert(flow(kB), route(1400), 1, 5);
  EXPECT_FALSE(c.lookup(flow(kB), 1, 5 + RouteCache::kTtlNs, &got));
  c.insert(flow(kB), route(1300), 1, 5 + RouteCache::kTtlNs);
  ASSERT_TRUE(c.lookup(flow(kB), 1, 6 + RouteCache::kTtlNs, &got));
  EXPECT_EQ(got.mtu, 1300u);
}

TEST(RouteCacheTest, PortsAreNotPartOfTheKeyButEveryLookupFieldIs) {
  RouteCache c;
  Rtable got;
  Flowi4 f = flow(kB);
  f.fl4_sport = 8080;
  f.fl4_dport = 40000;
  c.insert(f, route(1400), 1, 0);
  Flowi4 other_ports = flow(kB);
  other_ports.fl4_dport = 40001;
  EXPECT_TRUE(c.lookup(other_ports, 1, 0, &got));
  Flowi4 g = flow(kB);
  g.tos = 0x10;
  EXPECT_FALSE(c.lookup(g, 1, 0, &got));
  g = flow(kB);
  g.mark = 3;
  EXPECT_FALSE(c.lookup(g, 1, 0, &got));
  g = flow(kB);
  g.oif = 7;
  EXPECT_FALSE(c.lookup(g, 1, 0, &got));
  EXPECT_FALSE(c.lookup(flow(kB, 0), 1, 0, &got));  // another source
  EXPECT_FALSE(c.lookup(flow(kA), 1, 0, &got));     // another destination
}

TEST(RouteCacheTest, ManyDestinationsNeverAnswerForAnother) {
  RouteCache c;
  Rtable got;
  for (uint32_t i = 0; i < 1000; ++i) c.insert(flow(0xc6120000u + i), route(1000 + i), 1, 0);
  int hits = 0;
  for (uint32_t i = 0; i < 1000; ++i) {
    if (!c.lookup(flow(0xc6120000u + i), 1, 0, &got)) continue;
    ++hits;
    EXPECT_EQ(got.mtu, 1000 + i);
  }
  EXPECT_GT(hits, 0);
  EXPECT_LE(hits, static_cast<int>(RouteCache::kSlots));
  c.clear();
  EXPECT_FALSE(c.lookup(flow(kB), 1, 0, &got));
}

}  // namespace
}  // namespace xmit
