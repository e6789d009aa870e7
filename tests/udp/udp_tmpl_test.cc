// tests/udp/udp_tmpl_test.cc — the per-socket send template (stack/ipv4/udp_tmpl.h): for the same
// calls, a stack with it and one without (every datagram through ip_make_skb() + udp_send_skb())
// put the same frames on the wire and move the same counters and charges, also across each change
// the template depends on (socket options, connect/disconnect, route, neighbour).
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "tests/udp/udp_bed.h"

namespace xmit {
namespace udp_testing {
namespace {

// One bed; run() drives it by hand (two of them in one test).
class Bed : public UdpSockTest {
 public:
  Bed(bool tmpl, bool l4_csum) {
    udp_send_template = tmpl;
    dev_l4_csum = l4_csum;
    SetUp();
    make();
  }
  ~Bed() override { TearDown(); }
  void TestBody() override {}
  using UdpSockTest::at_b;
  using UdpSockTest::cfg;
  using UdpSockTest::fib;
  using UdpSockTest::now;
  using UdpSockTest::sk;
  using UdpSockTest::stack;

  ssize_t send(size_t n, int flags = 0) {
    std::vector<uint8_t> p(n);
    for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(i * 7 + sent_);
    ++sent_;
    if (!connected_) return sendto(p, kB, 9000, flags);
    iovec iov{p.data(), p.size()};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    return sk->sendmsg(&m, flags);
  }
  void setopt(int level, int name, int v) { ASSERT_EQ(sk->setsockopt(level, name, &v, sizeof v), 0); }
  void connect_to(uint16_t port) {
    sockaddr_in to{.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = {kB}};
    ASSERT_EQ(sk->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, true), 0);
    connected_ = true;
  }
  void disconnect() {
    sockaddr_in un{.sin_family = AF_UNSPEC};
    ASSERT_EQ(sk->connect(reinterpret_cast<sockaddr*>(&un), sizeof un, true), 0);
    connected_ = false;
  }

  struct Result {
    std::vector<std::vector<uint8_t>> frames;
    std::vector<ssize_t> rets;
    uint32_t wmem;
    uint64_t out_datagrams, out_requests, out_transmits, out_discards, frag_creates, sndbuf_errors;
    // After each send: the resolutions asked of the kernel (STALE -> DELAY, NONE/FAILED -> INCOMPLETE).
    std::vector<size_t> resolves;
    uint16_t nud_state;
    MacAddr ha;
  };
  // The same sends before and after `change`: 0, 1, 64 and 1472 bytes (one frame each), 1473
  // (fragmented, full path), 600 (under the MTU of the route change below), 64.
  Result run(const std::function<void(Bed&)>& change) {
    Result r;
    for (size_t n : {0, 1, 64, 1472, 1473, 64}) r.rets.push_back(send(n));
    change(*this);
    for (size_t n : {64, 64, 600, 0, 1472, 1473}) {
      r.rets.push_back(send(n));
      r.resolves.push_back(fib.resolves.size());
    }
    r.wmem = sk->wmem_alloc();
    r.frames = at_b();
    r.out_datagrams = stack->udp_mib.OutDatagrams;
    r.sndbuf_errors = stack->udp_mib.SndbufErrors;
    r.out_requests = stack->mib.OutRequests;
    r.out_transmits = stack->mib.OutTransmits;
    r.out_discards = stack->mib.OutDiscards;
    r.frag_creates = stack->mib.FragCreates;
    const Neighbour* n = stack->neigh().find(FakeFib::kIfindex, kB);
    r.nud_state = n != nullptr ? n->nud_state : 0xffff;
    r.ha = n != nullptr ? n->ha : MacAddr{};
    return r;
  }

  bool connected_ = false;
  uint8_t sent_ = 0;
};

struct Change {
  std::string name;
  std::function<void(Bed&)> apply;
};
void PrintTo(const Change& c, std::ostream* os) { *os << c.name; }

const be32 kSrc2 = make_ipv4_addr(198, 18, 0, 3);
const be32 kGw = make_ipv4_addr(198, 18, 0, 254);
const uint8_t kMac2[6] = {0x02, 0, 0, 0, 0, 0x22};

// The kernel's entry for kB becomes `state` (with `mac`, or erased for NUD_NONE) and its
// notification reaches the stack (a deletion as kDelete).
void kernel_neigh(Bed& b, uint16_t state, const uint8_t* mac = nullptr) {
  if (mac == nullptr) mac = b.cfg.mac_b;
  NeighEvent ev{.kind = NeighEvent::kUpdate, .ifindex = FakeFib::kIfindex, .ip = kB};
  if (state == NUD_NONE) {
    b.fib.kernel.erase({FakeFib::kIfindex, kB});
    ev.kind = NeighEvent::kDelete;
  } else {
    ev.info = NeighInfo{.nud_state = state, .has_ha = true};
    std::memcpy(ev.info.ha.data(), mac, 6);
    b.fib.kernel[{FakeFib::kIfindex, kB}] = ev.info;
  }
  std::lock_guard<StackMutex> g(b.stack->mu());
  b.stack->neigh().neigh_update(ev, b.now);
}

void new_route(Bed& b, Rtable rt) {
  b.fib.routes[kB] = {0, rt};
  ++b.fib.gen;  // a route change notification
}

std::vector<Change> changes() {
  return {
      {"none", [](Bed&) {}},
      {"IP_TTL", [](Bed& b) { b.setopt(SOL_IP, IP_TTL, 7); }},
      {"IP_TTL_default", [](Bed& b) { b.setopt(SOL_IP, IP_TTL, 9); b.send(5); b.send(5); b.setopt(SOL_IP, IP_TTL, -1); }},
      {"IP_TOS", [](Bed& b) { b.setopt(SOL_IP, IP_TOS, 0x10); }},
      {"IP_MTU_DISCOVER_DONT", [](Bed& b) { b.setopt(SOL_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT); }},
      {"IP_MTU_DISCOVER_DO", [](Bed& b) { b.setopt(SOL_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO); }},
      {"SO_NO_CHECK", [](Bed& b) { b.setopt(SOL_SOCKET, SO_NO_CHECK, 1); }},
      {"SO_MARK_SO_PRIORITY", [](Bed& b) { b.setopt(SOL_SOCKET, SO_MARK, 5); b.setopt(SOL_SOCKET, SO_PRIORITY, 3); }},
      {"connect", [](Bed& b) { b.connect_to(9001); }},
      {"connect_disconnect", [](Bed& b) { b.connect_to(9001); b.send(64); b.send(64); b.disconnect(); }},
      {"route_source", [](Bed& b) {
         new_route(b, Rtable{.type = RTN_UNICAST, .oif = FakeFib::kIfindex, .prefsrc = kSrc2});
       }},
      {"route_mtu", [](Bed& b) {
         new_route(b, Rtable{.type = RTN_UNICAST, .oif = FakeFib::kIfindex, .prefsrc = kA, .mtu = 576});
       }},
      {"route_gateway", [](Bed& b) {
         NeighInfo n{.nud_state = NUD_REACHABLE, .has_ha = true};
         std::memcpy(n.ha.data(), kMac2, 6);
         b.fib.kernel[{FakeFib::kIfindex, kGw}] = n;
         new_route(b, Rtable{.type = RTN_UNICAST, .oif = FakeFib::kIfindex, .gateway = kGw, .prefsrc = kA});
       }},
      {"neighbour_mac", [](Bed& b) {
         NeighInfo n{.nud_state = NUD_REACHABLE, .has_ha = true};
         std::memcpy(n.ha.data(), kMac2, 6);
         std::lock_guard<StackMutex> g(b.stack->mu());
         b.stack->neigh().neigh_update(NeighEvent{.ifindex = FakeFib::kIfindex, .ip = kB, .info = n}, b.now);
       }},
      // The template holds the neighbour entry (IpCb::neigh): every change of it below must show
      // in the next datagram as in the full path's (its MAC, a re-confirmation asked of the
      // kernel, or the datagram held while the kernel resolves).
      {"neighbour_stale", [](Bed& b) { kernel_neigh(b, NUD_STALE); }},
      {"neighbour_stale_mac", [](Bed& b) { kernel_neigh(b, NUD_STALE, kMac2); }},
      {"neighbour_failed", [](Bed& b) { kernel_neigh(b, NUD_FAILED); }},
      {"neighbour_deleted", [](Bed& b) { kernel_neigh(b, NUD_NONE); }},
      {"neighbour_deleted_back_mac", [](Bed& b) {
         kernel_neigh(b, NUD_NONE);
         b.send(64);  // held while the kernel resolves
         kernel_neigh(b, NUD_REACHABLE, kMac2);
       }},
      {"neighbour_mac_back", [](Bed& b) {
         kernel_neigh(b, NUD_REACHABLE, kMac2);
         b.send(64);
         b.send(64);
         kernel_neigh(b, NUD_REACHABLE);  // back to the first MAC
       }},
  };
}

class UdpTmplTest : public ::testing::TestWithParam<std::tuple<Change, bool>> {};

TEST_P(UdpTmplTest, SameFramesCountersAndResultsAsTheFullPath) {
  const auto& [change, l4_csum] = GetParam();
  Bed with(/*tmpl=*/true, l4_csum);
  Bed without(/*tmpl=*/false, l4_csum);
  Bed::Result a = with.run(change.apply);
  Bed::Result b = without.run(change.apply);
  EXPECT_GT(with.stack->udp_tmpl_sends, 0u);  // the template sent some
  EXPECT_EQ(without.stack->udp_tmpl_sends, 0u);
  EXPECT_EQ(a.rets, b.rets);
  ASSERT_EQ(a.frames.size(), b.frames.size());
  for (size_t i = 0; i < a.frames.size(); ++i) EXPECT_EQ(a.frames[i], b.frames[i]) << "frame " << i;
  EXPECT_EQ(a.out_datagrams, b.out_datagrams);
  EXPECT_EQ(a.sndbuf_errors, b.sndbuf_errors);
  EXPECT_EQ(a.out_requests, b.out_requests);
  EXPECT_EQ(a.out_transmits, b.out_transmits);
  EXPECT_EQ(a.out_discards, b.out_discards);
  EXPECT_EQ(a.frag_creates, b.frag_creates);
  EXPECT_EQ(a.wmem, b.wmem);
  EXPECT_EQ(a.resolves, b.resolves);
  EXPECT_EQ(a.nud_state, b.nud_state);
  EXPECT_EQ(a.ha, b.ha);
}

INSTANTIATE_TEST_SUITE_P(Changes, UdpTmplTest, ::testing::Combine(::testing::ValuesIn(changes()), ::testing::Bool()),
                         [](const auto& info) {
                           return std::get<0>(info.param).name + (std::get<1>(info.param) ? "_csum_offload" : "_sw_csum");
                         });

// The neighbour's MAC changes between two datagrams the template sends: the second carries the
// new one (the kernel reads the neighbour's cached header per packet, neigh_hh_output()).
TEST(UdpTmplNeigh, NextDatagramCarriesTheNewMac) {
  Bed b(/*tmpl=*/true, /*l4_csum=*/true);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(b.send(64), 64);
  const uint64_t tmpl0 = b.stack->udp_tmpl_sends;
  ASSERT_GT(tmpl0, 0u);
  kernel_neigh(b, NUD_REACHABLE, kMac2);
  ASSERT_EQ(b.send(64), 64);
  EXPECT_EQ(b.stack->udp_tmpl_sends, tmpl0 + 1);  // the template sent it
  kernel_neigh(b, NUD_REACHABLE);
  ASSERT_EQ(b.send(64), 64);
  EXPECT_EQ(b.stack->udp_tmpl_sends, tmpl0 + 2);
  std::vector<std::vector<uint8_t>> f = b.at_b();
  ASSERT_EQ(f.size(), 5u);
  const uint8_t* mac_b = b.cfg.mac_b;
  EXPECT_TRUE(std::equal(mac_b, mac_b + 6, f[2].begin()));
  EXPECT_TRUE(std::equal(kMac2, kMac2 + 6, f[3].begin()));
  EXPECT_TRUE(std::equal(mac_b, mac_b + 6, f[4].begin()));
}

// A full send buffer, then shutdown(SHUT_WR): the template returns the full path's errnos and
// counts the same discards.
TEST(UdpTmplErrors, FullSendBufferAndShutdownAsTheFullPath) {
  std::vector<std::vector<int64_t>> got;
  for (bool tmpl : {true, false}) {
    Bed b(tmpl, false);
    std::vector<int64_t> r;
    r.push_back(b.send(64));
    r.push_back(b.send(64));
    b.setopt(SOL_SOCKET, SO_SNDBUF, 0);  // 4608 (SOCK_MIN_SNDBUF): a few datagrams, then EAGAIN
    int64_t sent = 0;
    while (b.send(64) == 64 && sent < 1000) ++sent;
    r.push_back(sent);
    r.push_back(b.send(64));
    ASSERT_EQ(b.sk->shutdown(SHUT_WR), 0);
    r.push_back(b.send(64));
    r.push_back(static_cast<int64_t>(b.stack->mib.OutDiscards));
    r.push_back(static_cast<int64_t>(b.sk->wmem_alloc()));
    EXPECT_EQ(b.stack->udp_tmpl_sends > 0, tmpl);
    got.push_back(r);
  }
  EXPECT_EQ(got[0], got[1]);
  EXPECT_EQ(got[0][3], -EAGAIN);
  EXPECT_EQ(got[0][4], -EPIPE);
}

}  // namespace
}  // namespace udp_testing
}  // namespace xmit
