// tests/neigh/netlink_fib_e2e_test.cc — NetlinkFib and NeighTable against the kernel on a namespace
// bed (tests/xdp/bed.h; the test thread is in namespace a): route lookups compared field by field
// with `ip -j route get`, ARP through neigh_resolve(), notifications, the generation counter.
#include <arpa/inet.h>
#include <linux/in_route.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stack/neigh/dst_cache.h"
#include "stack/neigh/netlink_fib.h"
#include "stack/neigh/neighbour.h"
#include "stack/skb/pool.h"
#include "tests/neigh/fake_fib.h"
#include "tests/xdp/bed.h"

namespace xmit {
namespace {

using xdp::testing::BedTest;

struct CmdResult {
  std::string out;  // stdout and stderr
  int status = -1;
};

CmdResult run(const std::string& cmd) {
  CmdResult r;
  FILE* f = popen((cmd + " 2>&1").c_str(), "re");
  if (f == nullptr) return r;
  char buf[512];
  while (fgets(buf, sizeof buf, f) != nullptr) r.out += buf;
  r.status = pclose(f);
  return r;
}

be32 ip(const char* s) {
  be32 a = 0;
  EXPECT_EQ(inet_pton(AF_INET, s, &a), 1) << s;
  return a;
}
std::string ip_str(be32 a) {
  char buf[INET_ADDRSTRLEN];
  return inet_ntop(AF_INET, &a, buf, sizeof buf);
}
bool parse_mac(const std::string& s, MacAddr* mac) {
  unsigned v[6];
  if (sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return false;
  for (int i = 0; i < 6; ++i) (*mac)[i] = static_cast<uint8_t>(v[i]);
  return true;
}
// "key":"value" (or "key":number) from ip's flat JSON; empty when absent.
std::string json_field(const std::string& json, const std::string& key) {
  std::string tag = "\"" + key + "\":";
  size_t at = json.find(tag);
  if (at == std::string::npos) return "";
  at += tag.size();
  if (at < json.size() && json[at] == '"') ++at;
  size_t end = json.find_first_of("\",}]", at);
  return json.substr(at, end == std::string::npos ? std::string::npos : end - at);
}
const char* rtn_name(uint8_t type) {
  switch (type) {
    case RTN_UNICAST: return "";  // ip omits the type of a unicast route
    case RTN_LOCAL: return "local";
    case RTN_BROADCAST: return "broadcast";
    case RTN_MULTICAST: return "multicast";
    default: return "?";
  }
}

class NetlinkFibTest : public BedTest {
 protected:
  void SetUp() override {
    BedTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_EQ(NetlinkFib::create(&fib_), 0);
    xa_ = static_cast<int>(if_nametoindex(if_a_.c_str()));  // the test thread is in namespace a
    ASSERT_GT(xa_, 0);
    ASSERT_TRUE(parse_mac(bed_["XMIT_MAC_B"], &mac_b_)) << bed_["XMIT_MAC_B"];
    ASSERT_TRUE(parse_mac(bed_["XMIT_MAC_A"], &mac_a_)) << bed_["XMIT_MAC_A"];
  }
  void TearDown() override {
    fib_.reset();
    BedTest::TearDown();
  }
  void ip_a(const std::string& args) {
    CmdResult r = run("ip -n " + ns_a_ + " " + args);
    ASSERT_EQ(r.status, 0) << "ip " << args << ": " << r.out;
  }
  void sysctl_a(const std::string& setting) {
    CmdResult r = run("ip netns exec " + ns_a_ + " sysctl -qw " + setting);
    ASSERT_EQ(r.status, 0) << setting << ": " << r.out;
  }
  // Drains notifications into `table` (when given) and `events`.
  void poll(NeighTable* table = nullptr, uint64_t now = 0) {
    int n = fib_->poll_changes([&](const NeighEvent& ev) {
      events_.push_back(ev);
      if (table != nullptr) table->neigh_update(ev, now);
    });
    ASSERT_GE(n, 0) << strerror(-n);
  }

  std::unique_ptr<NetlinkFib> fib_;
  int xa_ = 0;
  MacAddr mac_a_{}, mac_b_{};
  std::vector<NeighEvent> events_;
};

// route_output() against `ip -j route get`, field by field; errors against ip's error line.
TEST_F(NetlinkFibTest, RouteOutputMatchesIpRouteGet) {
  ip_a("route add 198.19.0.0/24 via 198.18.0.2 mtu 1400");
  ip_a("route add unreachable 198.19.1.0/24");
  ip_a("route add prohibit 198.19.2.0/24");
  ip_a("route add blackhole 198.19.3.0/24");

  struct Case {
    const char* dst;
    const char* from;  // "" = let the kernel select
    int want_err;
  };
  const Case cases[] = {
      {"198.18.0.2", "", 0},          {"198.18.0.2", "198.18.0.1", 0},
      {"198.19.0.9", "", 0},          {"198.18.0.1", "", 0},
      {"198.18.0.255", "", 0},        {"198.19.1.5", "", -EHOSTUNREACH},
      {"198.19.2.5", "", -EACCES},    {"198.19.3.5", "", -EINVAL},
      {"198.19.99.1", "", -ENETUNREACH},
      {"198.18.0.2", "198.18.0.99", -ENETUNREACH},  // not a local address
      {"198.18.0.2", "224.0.0.1", -EINVAL},         // not a unicast source
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.dst) + " from '" + c.from + "'");
    Flowi4 fl{.daddr = ip(c.dst)};
    std::string cmd = "ip -n " + ns_a_ + " -j route get " + c.dst;
    if (*c.from) {
      fl.saddr = ip(c.from);
      cmd += std::string(" from ") + c.from;
    }
    Rtable rt;
    int err = fib_->route_output(fl, &rt);
    CmdResult ipr = run(cmd);
    EXPECT_EQ(err, c.want_err) << strerror(-err);
    if (err != 0) {
      EXPECT_NE(ipr.status, 0);
      EXPECT_THAT(ipr.out, ::testing::HasSubstr(std::string("RTNETLINK answers: ") + strerror(-err)));
      continue;
    }
    ASSERT_EQ(ipr.status, 0) << ipr.out;
    char ifname[IF_NAMESIZE] = "";
    ASSERT_NE(if_indextoname(static_cast<unsigned>(rt.oif), ifname), nullptr) << rt.oif;
    EXPECT_EQ(json_field(ipr.out, "dev"), ifname) << ipr.out;
    EXPECT_EQ(json_field(ipr.out, "type"), rtn_name(rt.type)) << ipr.out;
    EXPECT_EQ(json_field(ipr.out, "gateway"), rt.gateway ? ip_str(rt.gateway) : "") << ipr.out;
    // ip prints the kernel's RTA_PREFSRC, or "from" when the request named the source.
    EXPECT_EQ(json_field(ipr.out, *c.from ? "from" : "prefsrc"), ip_str(rt.prefsrc)) << ipr.out;
    EXPECT_EQ(json_field(ipr.out, "mtu"), rt.mtu ? std::to_string(rt.mtu) : "") << ipr.out;
  }

  // And what each one must be, independently of ip.
  Rtable rt;
  ASSERT_EQ(fib_->route_output(Flowi4{.daddr = ip("198.19.0.9"), .proto = IPPROTO_UDP}, &rt), 0);
  EXPECT_EQ(rt, (Rtable{.type = RTN_UNICAST, .oif = xa_, .gateway = ip("198.18.0.2"),
                        .prefsrc = ip("198.18.0.1"), .mtu = 1400, .flags = 0}));
  ASSERT_EQ(fib_->route_output(Flowi4{.daddr = ip("198.18.0.1")}, &rt), 0);
  EXPECT_EQ(rt.type, RTN_LOCAL);
  EXPECT_TRUE(rt.flags & RTCF_LOCAL);
  EXPECT_EQ(rt.oif, 1);  // lo
  ASSERT_EQ(fib_->route_output(Flowi4{.daddr = ip("198.18.0.255")}, &rt), 0);
  EXPECT_EQ(rt.type, RTN_BROADCAST);
  EXPECT_TRUE(rt.flags & RTCF_BROADCAST);
  EXPECT_EQ(fib_->route_output(Flowi4{.daddr = ip("198.18.0.2"), .oif = 999}, &rt), -ENODEV);
}

TEST_F(NetlinkFibTest, NeighResolveMakesTheKernelArpAndTheAnswerIsNotified) {
  const be32 peer = ip("198.18.0.2");
  NeighInfo info;
  EXPECT_EQ(fib_->neigh_lookup(xa_, peer, &info), -ENOENT) << "a fresh bed has no entry";
  ASSERT_EQ(fib_->neigh_resolve(xa_, peer), 0);
  // NTF_USE ran neigh_event_send(): the entry is resolving (or already resolved), not NUD_NONE.
  ASSERT_EQ(fib_->neigh_lookup(xa_, peer, &info), 0);
  EXPECT_TRUE(info.nud_state & (NUD_INCOMPLETE | NUD_VALID_MASK)) << std::hex << info.nud_state;

  bool notified = false;
  EXPECT_TRUE(eventually([&] {
    poll();
    for (const NeighEvent& ev : events_) {
      notified |= ev.kind == NeighEvent::kUpdate && ev.ifindex == xa_ && ev.ip == peer && ev.info.has_ha &&
                  ev.info.ha == mac_b_ && (ev.info.nud_state & NUD_VALID_MASK);
    }
    return notified;
  })) << "no RTM_NEWNEIGH with b's MAC";
  ASSERT_EQ(fib_->neigh_lookup(xa_, peer, &info), 0);
  EXPECT_EQ(info.ha, mac_b_);
  EXPECT_TRUE(info.has_ha);
  EXPECT_EQ(info.nud_state, NUD_REACHABLE);
  CmdResult shown = run("ip -n " + ns_a_ + " neigh show 198.18.0.2 dev " + if_a_);
  EXPECT_THAT(shown.out, ::testing::HasSubstr("lladdr " + bed_["XMIT_MAC_B"]));
  EXPECT_THAT(shown.out, ::testing::HasSubstr("REACHABLE"));
}

TEST_F(NetlinkFibTest, NeighParmsAreTheNamespacesSysctls) {
  sysctl_a("net.ipv4.neigh." + if_a_ + ".unres_qlen_bytes=123456");
  sysctl_a("net.ipv4.neigh." + if_a_ + ".mcast_solicit=2");
  NeighParms p;
  ASSERT_EQ(fib_->neigh_parms(xa_, &p), 0);
  EXPECT_EQ(p.unres_qlen_bytes, 123456u);
  EXPECT_EQ(p.mcast_probes, 2u);
  EXPECT_EQ(p.retrans_time_ms, 1000u);
  EXPECT_EQ(fib_->neigh_parms(9999, &p), -ENODEV);
}

class NetlinkNeighTableTest : public NetlinkFibTest {
 protected:
  void SetUp() override {
    NetlinkFibTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_EQ(BufPool::create(32, 2048, &bufs_), 0);
    ASSERT_EQ(SkbPool::create(32, bufs_.get(), &skbs_), 0);
    ops_ = std::make_unique<Ops>(xa_, mac_a_);
    table_ = std::make_unique<NeighTable>(fib_.get(), ops_.get());
  }
  void TearDown() override {
    table_.reset();
    NetlinkFibTest::TearDown();
  }
  sk_buff* make_skb(uint8_t id) {
    sk_buff* skb = skbs_->alloc_skb();
    EXPECT_NE(skb, nullptr);
    EXPECT_EQ(skb_reserve(skb, 64), 0);
    skb_put_zero(skb, 20)[0] = id;
    return skb;
  }
  struct Ops : testing::RecordingOps {
    Ops(int ifindex, MacAddr m) : ifindex(ifindex) { mac = m; }
    const uint8_t* dev_addr(int i) override { return i == ifindex ? mac.data() : nullptr; }
    int ifindex;
  };
  std::unique_ptr<BufPool> bufs_;
  std::unique_ptr<SkbPool> skbs_;
  std::unique_ptr<Ops> ops_;
  std::unique_ptr<NeighTable> table_;
};

// The whole path: no kernel entry -> held, the kernel ARPs, its notification flushes the queue.
TEST_F(NetlinkNeighTableTest, HeldPacketsLeaveWhenTheKernelLearnsTheMac) {
  sysctl_a("net.ipv4.neigh." + if_a_ + ".unres_qlen_bytes=123456");
  const be32 peer = ip("198.18.0.2");
  Rtable rt;
  ASSERT_EQ(fib_->route_output(Flowi4{.daddr = peer}, &rt), 0);
  ASSERT_EQ(table_->output(rt, peer, make_skb(1), 0), 0);
  ASSERT_EQ(table_->output(rt, peer, make_skb(2), 0), 0);
  const Neighbour* n = table_->find(xa_, peer);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->parms.unres_qlen_bytes, 123456u) << "read from the namespace's sysctl";
  EXPECT_EQ(n->nud_state, NUD_INCOMPLETE);
  EXPECT_TRUE(ops_->frames.empty());

  EXPECT_TRUE(eventually([&] {
    poll(table_.get());  // only notifications; the backstop timer is never run here
    return ops_->frames.size() == 2;
  }));
  ASSERT_EQ(ops_->frames.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    MacAddr dest;
    std::memcpy(dest.data(), ops_->frames[i].data(), 6);
    EXPECT_EQ(dest, mac_b_);
    EXPECT_EQ(ops_->frames[i][14], i + 1) << "in order";
  }
  EXPECT_EQ(n->nud_state, NUD_REACHABLE);
}

TEST_F(NetlinkNeighTableTest, AnAddressNobodyAnswersFailsAndDropsWhatWaited) {
  sysctl_a("net.ipv4.neigh." + if_a_ + ".mcast_solicit=1");
  sysctl_a("net.ipv4.neigh." + if_a_ + ".retrans_time_ms=200");
  const be32 nobody = ip("198.18.0.77");
  Rtable rt;
  ASSERT_EQ(fib_->route_output(Flowi4{.daddr = nobody}, &rt), 0);
  ASSERT_EQ(table_->output(rt, nobody, make_skb(1), 0), 0);
  NeighInfo info;
  ASSERT_EQ(fib_->neigh_lookup(xa_, nobody, &info), 0);
  EXPECT_EQ(info.nud_state, NUD_INCOMPLETE) << "the kernel is soliciting";
  EXPECT_TRUE(eventually([&] {
    poll(table_.get());
    return table_->stats().res_failed == 1;
  }));
  EXPECT_EQ(table_->stats().failed_drops, 1u);
  EXPECT_EQ(table_->find(xa_, nobody)->nud_state, NUD_FAILED);
  EXPECT_TRUE(ops_->frames.empty());
  EXPECT_EQ(skbs_->nr_free(), skbs_->nr_skbs());
}

TEST_F(NetlinkFibTest, GenerationChangesWhenARouteIsAdded) {
  poll();  // whatever the bed's creation left
  DstCache cache;
  const Rtable* rt = nullptr;
  const Flowi4 onlink{.daddr = ip("198.18.0.2")};
  ASSERT_EQ(cache.lookup(*fib_, onlink, &rt), 0);
  EXPECT_EQ(cache.lookup(*fib_, Flowi4{.daddr = ip("198.19.0.9")}, &rt), -ENETUNREACH);
  ASSERT_EQ(cache.lookup(*fib_, onlink, &rt), 0);
  uint64_t g0 = fib_->generation();
  poll();
  EXPECT_EQ(fib_->generation(), g0) << "nothing changed";
  EXPECT_NE(cache.dst_check(*fib_), nullptr);

  ip_a("route add 198.19.0.0/24 via 198.18.0.2");
  EXPECT_TRUE(eventually([&] {
    poll();
    return fib_->generation() != g0;
  }));
  EXPECT_EQ(cache.dst_check(*fib_), nullptr) << "the socket's cached route is stale";
  ASSERT_EQ(cache.lookup(*fib_, Flowi4{.daddr = ip("198.19.0.9")}, &rt), 0);
  EXPECT_EQ(rt->gateway, ip("198.18.0.2"));

  // NetlinkFib's own route cache (RouteCache) answers a repeated lookup without asking the
  // kernel, and a replaced route is seen once the generation moved.
  Rtable r1, r2;
  const uint64_t hits0 = fib_->route_cache().hits;
  ASSERT_EQ(fib_->route_output(Flowi4{.daddr = ip("198.19.0.9")}, &r1), 0);
  ASSERT_EQ(fib_->route_output(Flowi4{.daddr = ip("198.19.0.9")}, &r2), 0);
  EXPECT_EQ(r1, r2);
  EXPECT_EQ(r2.mtu, 0u);
  EXPECT_GE(fib_->route_cache().hits, hits0 + 1);
  const uint64_t g_mtu = fib_->generation();
  ip_a("route replace 198.19.0.0/24 via 198.18.0.2 mtu 1300");
  EXPECT_TRUE(eventually([&] {
    poll();
    return fib_->generation() != g_mtu;
  }));
  ASSERT_EQ(fib_->route_output(Flowi4{.daddr = ip("198.19.0.9")}, &r2), 0);
  EXPECT_EQ(r2.mtu, 1300u) << "the replaced route, not the cached one";

  uint64_t g1 = fib_->generation();
  ip_a("addr add 198.18.0.10/24 dev " + if_a_);
  EXPECT_TRUE(eventually([&] {
    poll();
    return fib_->generation() != g1;
  })) << "an address change";
}

}  // namespace
}  // namespace xmit
