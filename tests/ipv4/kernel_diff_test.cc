// tests/ipv4/kernel_diff_test.cc — differential test against the running kernel: a kernel UDP
// socket in a throw-away namespace (veth, 198.18.0.1 → 198.18.0.2, TX checksum offload off) sends a
// datagram, an AF_PACKET socket captures the IP packets, and stack/ipv4 must build the same bytes
// (ids aligned: the kernel's first id seeds ours) and move the same SNMP counters.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/ipv4/harness.h"

namespace xmit::testing_ipv4 {
namespace {

std::string g_ns;
int g_orig_ns = -1;
bool g_ready = false;

bool sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

// "Ip:" and "Udp:" counters of the current namespace, by name.
std::map<std::string, uint64_t> snmp() {
  std::map<std::string, uint64_t> out;
  std::ifstream f("/proc/self/net/snmp");
  std::string names, values;
  while (std::getline(f, names) && std::getline(f, values)) {
    std::istringstream n(names), v(values);
    std::string prefix, name, value;
    n >> prefix;
    v >> value;
    while (n >> name && v >> value) out[prefix + name] = std::strtoull(value.c_str(), nullptr, 10);
  }
  return out;
}

class KernelDiff : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    g_ns = "xmit-" + std::to_string(getpid()) + "-h5";
    std::string n = "ip -n " + g_ns + " ";
    if (!sh("ip netns add " + g_ns)) return;
    bool ok = sh(n + "link add d0 type veth peer name d1") && sh(n + "link set d0 up") &&
              sh(n + "link set d1 up") && sh(n + "addr add 198.18.0.1/24 dev d0") &&
              sh(n + "neigh add 198.18.0.2 lladdr 02:00:00:00:00:02 dev d0 nud permanent") &&
              sh("ip netns exec " + g_ns + " ethtool -K d0 tx off");
    if (!ok) return;
    g_orig_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int fd = open(("/var/run/netns/" + g_ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || g_orig_ns < 0 || setns(fd, CLONE_NEWNET) != 0) return;
    close(fd);
    g_ready = true;
  }
  static void TearDownTestSuite() {
    if (g_orig_ns >= 0) {
      setns(g_orig_ns, CLONE_NEWNET);
      close(g_orig_ns);
      g_orig_ns = -1;
    }
    if (!g_ns.empty()) sh("ip netns del " + g_ns);
    g_ready = false;
  }
  void SetUp() override {
    if (!g_ready) GTEST_SKIP() << "needs root, ip, ethtool and veth";
  }
};

struct DiffCase {
  std::string name;
  uint32_t payload;
  uint32_t mtu;
  int pmtudisc;
  bool connected;
  int ttl;  // -1: default
  int tos;
};

class KernelDiffP : public KernelDiff, public ::testing::WithParamInterface<DiffCase> {};

// What the kernel's socket puts on d0 for one send: the IP packets, in order.
std::vector<std::vector<uint8_t>> kernel_send(const DiffCase& c, const std::vector<uint8_t>& payload,
                                              uint16_t* sport) {
  std::vector<std::vector<uint8_t>> pkts;
  int cap = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
  EXPECT_GE(cap, 0);
  int rcv = 8 << 20;
  setsockopt(cap, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv);
  sockaddr_ll ll{};
  ll.sll_family = AF_PACKET;
  ll.sll_protocol = htons(ETH_P_ALL);
  ll.sll_ifindex = static_cast<int>(if_nametoindex("d0"));
  EXPECT_EQ(bind(cap, reinterpret_cast<sockaddr*>(&ll), sizeof ll), 0);

  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(s, 0);
  EXPECT_EQ(setsockopt(s, IPPROTO_IP, IP_MTU_DISCOVER, &c.pmtudisc, sizeof c.pmtudisc), 0);
  if (c.ttl >= 0) {
    EXPECT_EQ(setsockopt(s, IPPROTO_IP, IP_TTL, &c.ttl, sizeof c.ttl), 0);
  }
  EXPECT_EQ(setsockopt(s, IPPROTO_IP, IP_TOS, &c.tos, sizeof c.tos), 0);
  sockaddr_in src{.sin_family = AF_INET, .sin_port = 0, .sin_addr = {kSaddr}};
  EXPECT_EQ(bind(s, reinterpret_cast<sockaddr*>(&src), sizeof src), 0);
  sockaddr_in dst{.sin_family = AF_INET, .sin_port = htons(kDport), .sin_addr = {kDaddr}};
  if (c.connected) {
    EXPECT_EQ(connect(s, reinterpret_cast<sockaddr*>(&dst), sizeof dst), 0);
  }
  socklen_t sl = sizeof src;
  getsockname(s, reinterpret_cast<sockaddr*>(&src), &sl);
  *sport = ntohs(src.sin_port);
  EXPECT_EQ(sendto(s, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst),
            static_cast<ssize_t>(payload.size()));
  std::vector<uint8_t> frame(70000);
  pollfd p{cap, POLLIN, 0};
  while (poll(&p, 1, 300) > 0) {
    sockaddr_ll from{};
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(cap, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&from), &fl);
    if (n < 34 || from.sll_pkttype != PACKET_OUTGOING || frame[12] != 0x08 || frame[13] != 0x00) continue;
    uint16_t tot = static_cast<uint16_t>(frame[16] << 8 | frame[17]);
    if (frame[23] != IPPROTO_UDP || tot + 14 > n) continue;
    pkts.emplace_back(frame.begin() + 14, frame.begin() + 14 + tot);
  }
  close(s);
  close(cap);
  return pkts;
}

TEST_P(KernelDiffP, SameBytesAndCounters) {
  const DiffCase& c = GetParam();
  ASSERT_TRUE(sh("ip link set d0 mtu " + std::to_string(c.mtu)));
  auto payload = pattern(c.payload, 3);
  auto before = snmp();
  uint16_t sport = 0;
  auto kpkts = kernel_send(c, payload, &sport);
  auto after = snmp();
  ASSERT_FALSE(kpkts.empty());

  Bed bed;
  bed.dev.mtu = c.mtu;
  bed.sport = sport;
  InetSock sk = bed.sock();
  sk.inet_sport = htons(sport);
  sk.pmtudisc = static_cast<uint8_t>(c.pmtudisc);
  sk.uc_ttl = static_cast<int16_t>(c.ttl);
  sk.tos = static_cast<uint8_t>(c.tos);
  uint16_t kid = be16_at(kpkts[0], 4);
  if (c.connected) {
    sk.inet_daddr = kDaddr;
    sk.inet_dport = htons(kDport);
    sk.inet_id = static_cast<uint16_t>(kid - 1);  // the kernel's random start, learned
  } else {
    bed.idents.next = kid;  // the kernel's hashed generator, learned
  }
  ASSERT_EQ(bed.send(&sk, payload), 0);
  ASSERT_EQ(bed.neigh.sent.size(), kpkts.size());
  for (size_t i = 0; i < kpkts.size(); ++i)
    EXPECT_EQ(bed.neigh.sent[i].bytes, kpkts[i]) << "packet " << i << " of " << kpkts.size();

  auto delta = [&](const std::string& k) { return after[k] - before[k]; };
  EXPECT_EQ(bed.mib.OutRequests, delta("Ip:OutRequests"));
  EXPECT_EQ(bed.mib.FragOKs, delta("Ip:FragOKs"));
  EXPECT_EQ(bed.mib.FragCreates, delta("Ip:FragCreates"));
  EXPECT_EQ(bed.mib.OutTransmits, delta("Ip:OutTransmits"));
  EXPECT_EQ(bed.udp_mib.OutDatagrams, delta("Udp:OutDatagrams"));
  inet_sock_destruct(&sk);
}

std::vector<DiffCase> diff_cases() {
  std::vector<DiffCase> v;
  for (uint32_t payload : {10u, 1472u, 1473u, 2000u, 3000u, 65507u})
    for (uint32_t mtu : {1500u, 576u})
      v.push_back(DiffCase{"want_p" + std::to_string(payload) + "_mtu" + std::to_string(mtu), payload, mtu,
                           IP_PMTUDISC_WANT, true, -1, 0});
  v.push_back(DiffCase{"do_ttl_tos", 100, 1500, IP_PMTUDISC_DO, true, 7, 0x28});
  v.push_back(DiffCase{"do_unconnected_id0", 1472, 1500, IP_PMTUDISC_DO, false, -1, 0});
  v.push_back(DiffCase{"want_unconnected_frag", 3000, 1500, IP_PMTUDISC_WANT, false, 200, 0xb8});
  v.push_back(DiffCase{"dont_frag", 2000, 576, IP_PMTUDISC_DONT, true, -1, 0});
  v.push_back(DiffCase{"probe", 1472, 1500, IP_PMTUDISC_PROBE, true, -1, 0});
  v.push_back(DiffCase{"odd_payload_mtu1280", 4097, 1280, IP_PMTUDISC_WANT, true, -1, 0x10});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Sends, KernelDiffP, ::testing::ValuesIn(diff_cases()),
                         [](const auto& info) { return info.param.name; });

TEST_F(KernelDiff, EmsgsizeAgrees) {
  // IP_PMTUDISC_DO: one byte over the MTU is refused by both.
  ASSERT_TRUE(sh("ip link set d0 mtu 1500"));
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int v = IP_PMTUDISC_DO;
  setsockopt(s, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof v);
  sockaddr_in dst{.sin_family = AF_INET, .sin_port = htons(kDport), .sin_addr = {kDaddr}};
  auto p = pattern(1473);
  EXPECT_EQ(sendto(s, p.data(), p.size(), 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst), -1);
  EXPECT_EQ(errno, EMSGSIZE);
  auto big = pattern(65508);
  v = IP_PMTUDISC_WANT;
  setsockopt(s, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof v);
  EXPECT_EQ(sendto(s, big.data(), big.size(), 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst), -1);
  EXPECT_EQ(errno, EMSGSIZE);
  close(s);
  Bed bed;
  InetSock sk = bed.sock();
  sk.pmtudisc = IP_PMTUDISC_DO;
  EXPECT_EQ(bed.send(&sk, p), -EMSGSIZE);
  sk.pmtudisc = IP_PMTUDISC_WANT;
  EXPECT_EQ(bed.send(&sk, big), -EMSGSIZE);
}

}  // namespace
}  // namespace xmit::testing_ipv4
