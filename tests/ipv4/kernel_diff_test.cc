// tests/ipv4/kernel_diff_test.cc — differential test against the running kernel: a kernel UDP
// socket in a throw-away namespace (veth, 198.18.0.1 → 198.18.0.2, TX checksum offload off) sends a
// datagram, an AF_PACKET socket captures the IP packets, and stack/ipv4 must build the same bytes
// (ids aligned: the kernel's first id seeds ours) and move the same SNMP counters.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/udp.h>  // SOL_UDP
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
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
  // UDP GSO
  uint16_t gso_size = 0;  // UDP_SEGMENT; 0: none
  bool gso_cmsg = false;  // per call (cmsg) rather than setsockopt
  bool tx_csum = false;   // d0 with TX checksum offload (CHECKSUM_PARTIAL; both sides show the seed)
  int sends = 1;          // datagrams sent in a row (connected: the id sequence across them)
};

constexpr int kUdpSegment = 103;  // UDP_SEGMENT, include/uapi/linux/udp.h

// d0's offloads for a case: GSO always in software before the capture point (tx-udp-segmentation
// off: "our devices lack NETIF_F_GSO_UDP_L4"), TX checksum as the case says.
bool set_offloads(bool tx_csum) {
  return sh(std::string("ip netns exec ") + g_ns + " ethtool -K d0 tx " + (tx_csum ? "on" : "off")) &&
         sh("ip netns exec " + g_ns + " ethtool -K d0 tx-udp-segmentation off");
}

// One sendmsg() on the kernel socket, with UDP_SEGMENT as a cmsg when gso_cmsg. Returns -errno.
ssize_t kernel_sendmsg(int s, const std::vector<uint8_t>& payload, const sockaddr_in* dst, uint16_t gso_cmsg) {
  iovec iov{const_cast<uint8_t*>(payload.data()), payload.size()};
  msghdr m{};
  m.msg_name = const_cast<sockaddr_in*>(dst);
  m.msg_namelen = dst != nullptr ? sizeof *dst : 0;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(uint16_t))] = {};
  if (gso_cmsg != 0) {
    m.msg_control = ctl;
    m.msg_controllen = sizeof ctl;
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = kUdpSegment;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    std::memcpy(CMSG_DATA(c), &gso_cmsg, sizeof gso_cmsg);
  }
  ssize_t n = sendmsg(s, &m, 0);
  return n < 0 ? -errno : n;
}

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
  if (c.gso_size != 0 && !c.gso_cmsg) {
    int v = c.gso_size;
    EXPECT_EQ(setsockopt(s, SOL_UDP, kUdpSegment, &v, sizeof v), 0);
  }
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
  for (int i = 0; i < c.sends; ++i) {
    EXPECT_EQ(kernel_sendmsg(s, payload, c.connected ? nullptr : &dst, c.gso_cmsg ? c.gso_size : 0),
              static_cast<ssize_t>(payload.size()));
  }
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
  ASSERT_TRUE(set_offloads(c.tx_csum));
  auto payload = pattern(c.payload, 3);
  auto before = snmp();
  uint16_t sport = 0;
  auto kpkts = kernel_send(c, payload, &sport);
  auto after = snmp();
  ASSERT_TRUE(set_offloads(false));
  ASSERT_FALSE(kpkts.empty());

  Bed bed;
  bed.dev.mtu = c.mtu;
  bed.dev.l4_csum = c.tx_csum;
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
  IpcmCookie ipc;
  ipcm_init_sk(&ipc, sk);
  ipc.gso_size = c.gso_size;
  for (int i = 0; i < c.sends; ++i) ASSERT_EQ(bed.send(&sk, payload, 0, &ipc), 0);
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
  // UDP GSO: (payload, gso_size, IP_MTU_DISCOVER, connected) with the segments' ids, DF, lengths
  // and checksums; software checksums (tx off) and device ones (tx on: the pseudo-header seed).
  auto gso = [&](std::string name, uint32_t payload, uint16_t gso_size, uint32_t mtu, int pmtudisc,
                 bool connected, bool cmsg, bool tx_csum, int sends) {
    DiffCase d{"gso_" + name, payload, mtu, pmtudisc, connected, -1, 0};
    d.gso_size = gso_size;
    d.gso_cmsg = cmsg;
    d.tx_csum = tx_csum;
    d.sends = sends;
    v.push_back(d);
  };
  gso("want_3x1000", 3000, 1000, 1500, IP_PMTUDISC_WANT, true, false, false, 1);
  gso("want_3x1000_hwcsum", 3000, 1000, 1500, IP_PMTUDISC_WANT, true, false, true, 1);
  gso("want_short_last_df", 1000, 400, 1500, IP_PMTUDISC_WANT, true, false, false, 1);
  gso("want_connected_twice", 3000, 1000, 1500, IP_PMTUDISC_WANT, true, true, false, 2);
  gso("want_unconnected_cmsg", 2500, 1000, 1500, IP_PMTUDISC_WANT, false, true, false, 1);
  gso("do_unconnected_id0", 3000, 1000, 1500, IP_PMTUDISC_DO, false, false, false, 1);
  gso("do_connected_hwcsum", 4000, 1472, 1500, IP_PMTUDISC_DO, true, true, true, 1);
  gso("dont_mtu576", 2000, 548, 576, IP_PMTUDISC_DONT, true, false, false, 1);
  gso("full_mtu_segments", 2945, 1472, 1500, IP_PMTUDISC_WANT, true, false, false, 1);
  gso("largest", 65507, 1472, 1500, IP_PMTUDISC_WANT, true, false, false, 1);
  gso("largest_hwcsum", 65507, 1000, 1500, IP_PMTUDISC_WANT, true, true, true, 1);
  gso("128_segments", 1280, 10, 1500, IP_PMTUDISC_WANT, true, false, false, 1);
  gso("gso_larger_than_payload", 1000, 3000, 1500, IP_PMTUDISC_WANT, true, false, false, 1);
  gso("gso_larger_hwcsum", 1000, 3000, 1500, IP_PMTUDISC_WANT, true, true, true, 1);
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

// UDP GSO refusals: the kernel's errno for each limit, and nothing on the wire from either side.
TEST_F(KernelDiff, GsoErrnosAgree) {
  struct Case {
    const char* name;
    uint32_t payload;
    uint16_t gso_size;
    uint32_t mtu;
    int pmtudisc;
    bool no_check;
    bool cmsg;
  };
  const Case cases[] = {
      {"segment_over_mtu", 3000, 1473, 1500, IP_PMTUDISC_WANT, false, false},
      {"segment_over_mtu_cmsg", 3000, 1473, 1500, IP_PMTUDISC_DO, false, true},
      {"payload_over_mtu_gso_larger", 2000, 3000, 1500, IP_PMTUDISC_WANT, false, false},
      {"segment_over_mtu576", 3000, 549, 576, IP_PMTUDISC_DONT, false, false},
      {"129_segments", 1290, 10, 1500, IP_PMTUDISC_WANT, false, false},
      {"128_segments_and_a_byte", 1281, 10, 1500, IP_PMTUDISC_WANT, false, true},
      {"no_check", 3000, 1000, 1500, IP_PMTUDISC_WANT, true, false},
      {"no_check_single", 100, 1000, 1500, IP_PMTUDISC_WANT, true, true},
      {"over_ip_max", 65508, 1472, 1500, IP_PMTUDISC_DO, false, false},
  };
  ASSERT_TRUE(set_offloads(false));
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(sh("ip link set d0 mtu " + std::to_string(c.mtu)));
    int cap = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    sockaddr_ll ll{};
    ll.sll_family = AF_PACKET;
    ll.sll_protocol = htons(ETH_P_ALL);
    ll.sll_ifindex = static_cast<int>(if_nametoindex("d0"));
    ASSERT_EQ(bind(cap, reinterpret_cast<sockaddr*>(&ll), sizeof ll), 0);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    setsockopt(s, IPPROTO_IP, IP_MTU_DISCOVER, &c.pmtudisc, sizeof c.pmtudisc);
    int one = 1;
    if (c.no_check) setsockopt(s, SOL_SOCKET, SO_NO_CHECK, &one, sizeof one);
    if (!c.cmsg) {
      int v = c.gso_size;
      ASSERT_EQ(setsockopt(s, SOL_UDP, kUdpSegment, &v, sizeof v), 0);
    }
    sockaddr_in dst{.sin_family = AF_INET, .sin_port = htons(kDport), .sin_addr = {kDaddr}};
    auto p = pattern(c.payload);
    auto before = snmp();
    ssize_t kerr = kernel_sendmsg(s, p, &dst, c.cmsg ? c.gso_size : 0);
    pollfd pf{cap, POLLIN, 0};
    int seen = 0;
    std::vector<uint8_t> frame(70000);
    while (poll(&pf, 1, 100) > 0) {
      sockaddr_ll from{};
      socklen_t fl = sizeof from;
      ssize_t n = recvfrom(cap, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n >= 34 && from.sll_pkttype == PACKET_OUTGOING && frame[23] == IPPROTO_UDP) ++seen;
    }
    auto after = snmp();
    close(s);
    close(cap);
    EXPECT_LT(kerr, 0);
    EXPECT_EQ(seen, 0);

    Bed bed;
    bed.dev.mtu = c.mtu;
    InetSock sk = bed.sock();
    sk.pmtudisc = static_cast<uint8_t>(c.pmtudisc);
    sk.sk_no_check_tx = c.no_check;
    IpcmCookie ipc;
    ipcm_init_sk(&ipc, sk);
    ipc.gso_size = c.gso_size;
    EXPECT_EQ(bed.send(&sk, p, 0, &ipc), kerr);
    EXPECT_TRUE(bed.neigh.sent.empty());
    EXPECT_EQ(bed.mib.OutRequests, after["Ip:OutRequests"] - before["Ip:OutRequests"]);
    EXPECT_EQ(bed.mib.OutDiscards, after["Ip:OutDiscards"] - before["Ip:OutDiscards"]);
    EXPECT_EQ(bed.udp_mib.OutDatagrams, after["Udp:OutDatagrams"] - before["Udp:OutDatagrams"]);
    EXPECT_EQ(bed.udp_mib.SndbufErrors, after["Udp:SndbufErrors"] - before["Udp:SndbufErrors"]);
    inet_sock_destruct(&sk);
    EXPECT_TRUE(bed.pools_full());
  }
}

}  // namespace
}  // namespace xmit::testing_ipv4
