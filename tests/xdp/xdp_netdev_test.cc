// tests/xdp/xdp_netdev_test.cc — XdpNetdev end to end on a veth namespace bed: TX reaches the kernel
// peer byte-exact, steered flows reach the queue and bypass namespace a's kernel, unsteered ones do
// not, and the XDP program goes away with the device or with a SIGKILLed owner.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>

#include "tests/xdp/bed.h"
#include "verbs/xdp/xdp_netdev.h"
#include "verbs/xdp/xdp_udp_frame.h"

namespace xmit::xdp::testing {
namespace {

constexpr char kAddrA[] = "198.18.0.1";
constexpr char kAddrB[] = "198.18.0.2";

uint32_t inaddr(const char* s) {
  uint32_t a = 0;
  inet_pton(AF_INET, s, &a);
  return a;
}

// Receives one datagram within a generous deadline; "" with *ok=false when none came.
std::string recv_one(int fd, sockaddr_in* from, bool* ok) {
  pollfd pfd{fd, POLLIN, 0};
  *ok = poll(&pfd, 1, 10000) == 1;
  if (!*ok) return "";
  char buf[2048];
  socklen_t fl = sizeof *from;
  ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(from), &fl);
  *ok = n >= 0;
  return *ok ? std::string(buf, size_t(n)) : "";
}

void send_to(int fd, const char* addr, uint16_t port, const std::string& payload) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, addr, &to.sin_addr);
  ASSERT_EQ(sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
            ssize_t(payload.size()))
      << strerror(errno);
}

std::set<int> open_fds() {
  std::set<int> fds;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = d ? readdir(d) : nullptr)
    if (e->d_name[0] != '.') fds.insert(atoi(e->d_name));
  if (d) closedir(d);
  return fds;
}

class XdpNetdevTest : public BedTest {
 protected:
  std::unique_ptr<XdpNetdev> open_dev(XdpMode mode = XdpMode::kAuto, uint32_t tx_frames = 2048) {
    XdpOptions opt{.ifname = if_a_, .queue_id = 0, .mode = mode, .tx_frames = tx_frames};
    std::unique_ptr<XdpNetdev> dev;
    std::string why;
    int err = XdpNetdev::open(opt, &dev, &why);
    EXPECT_EQ(err, 0) << why;
    return dev;
  }

  UdpEndpoints a_to_b(const XdpNetdev& dev, uint16_t sport, uint16_t dport) {
    UdpEndpoints e;
    memcpy(e.src_mac, dev.mac(), 6);
    EXPECT_TRUE(parse_mac(bed_["XMIT_MAC_B"], e.dst_mac));
    e.saddr = inaddr(kAddrA);
    e.daddr = inaddr(kAddrB);
    e.sport = sport;
    e.dport = dport;
    return e;
  }

  // Reaps TX completions until `want` cookies came back (bounded).
  static std::multiset<uint64_t> reap(XdpNetdev& dev, size_t want) {
    std::multiset<uint64_t> cookies;
    BedTest::eventually([&] {
      dev.poll_tx([&](uint64_t c) { cookies.insert(c); });
      return cookies.size() >= want;
    });
    return cookies;
  }
};

// (a) Hand-built frames, some finished in software (kTxIpCsum|kTxL4Csum, split over segments),
// reach a UDP socket in namespace b byte-exact; a frame with a broken UDP checksum does not.
TEST_F(XdpNetdevTest, TxFramesReachKernelPeerByteExact) {
  auto dev = open_dev();
  ASSERT_NE(dev, nullptr);
  EXPECT_TRUE(dev->native_mode()) << "veth supports driver-mode XDP";
  // Checksums are finished and TSO frames cut during the copy into the UMEM.
  EXPECT_TRUE(dev->features().l4_csum && dev->features().ip_csum);
  EXPECT_TRUE(dev->features().tso);
  EXPECT_EQ(dev->features().tso_max_size, 65536u);
  EXPECT_EQ(dev->features().mtu, 1500u);
  int sb = udp_socket_in(ns_b_, kAddrB, 9000);
  ASSERT_GE(sb, 0);
  auto before = snmp_in(ns_b_);

  constexpr int kFrames = 8;
  std::vector<std::vector<uint8_t>> frames;
  std::vector<std::string> payloads;
  std::vector<std::vector<FrameSeg>> segs(kFrames + 1);
  std::vector<TxFrame> tx;
  UdpEndpoints e = a_to_b(*dev, 40000, 9000);

  // Frame 0: a corrupted UDP checksum; b's kernel must count it in InCsumErrors and drop it.
  frames.push_back(build_udp_frame(e, "corrupted", 100));
  frames[0][14 + 20 + 6] ^= 0x5a;
  for (int i = 1; i <= kFrames; ++i) {
    payloads.push_back("xdp tx frame " + std::to_string(i) + std::string(size_t(i) * 37, char('a' + i)));
    frames.push_back(build_udp_frame(e, payloads.back(), uint16_t(100 + i)));
  }
  for (int i = 0; i <= kFrames; ++i) {
    std::vector<uint8_t>& f = frames[size_t(i)];
    TxFrame t{.cookie = uint64_t(1000 + i)};
    if (i % 2 == 1) {
      // CHECKSUM_PARTIAL as the stack would hand it over: IP checksum 0, UDP field = pseudo-header sum.
      uint8_t* ip = f.data() + 14;
      store_be16(ip + 10, 0);
      uint32_t udp_len = uint32_t(f.size() - 34);
      be32 saddr, daddr;
      memcpy(&saddr, ip + 12, 4);
      memcpy(&daddr, ip + 16, 4);
      // kernel: udp4_hwcsum(): the field holds ~csum_tcpudp_magic(..., 0), the folded pseudo-header.
      const sum16 seed = static_cast<sum16>(~csum_tcpudp_magic(saddr, daddr, udp_len, IPPROTO_UDP, 0));
      memcpy(ip + 20 + 6, &seed, 2);
      t.flags = kTxIpCsum | kTxL4Csum;
      t.csum_start = 34;
      t.csum_offset = 6;
      segs[size_t(i)] = {{f.data(), 7}, {f.data() + 7, 30}, {f.data() + 37, uint32_t(f.size() - 37)}};
    } else {
      segs[size_t(i)] = {{f.data(), uint32_t(f.size())}};
    }
    t.segs = absl::MakeConstSpan(segs[size_t(i)]);
    tx.push_back(t);
  }
  ASSERT_EQ(dev->xmit(absl::MakeConstSpan(tx)), kFrames + 1);
  auto cookies = reap(*dev, kFrames + 1);
  std::multiset<uint64_t> want_cookies;
  for (int i = 0; i <= kFrames; ++i) want_cookies.insert(uint64_t(1000 + i));
  EXPECT_EQ(cookies, want_cookies);

  for (int i = 0; i < kFrames; ++i) {
    sockaddr_in from{};
    bool ok = false;
    std::string got = recv_one(sb, &from, &ok);
    ASSERT_TRUE(ok) << "datagram " << i + 1 << " never reached " << ns_b_;
    EXPECT_EQ(got, payloads[size_t(i)]);
    EXPECT_EQ(from.sin_addr.s_addr, inaddr(kAddrA));
    EXPECT_EQ(ntohs(from.sin_port), 40000);
  }
  char extra[64];
  EXPECT_LT(recv(sb, extra, sizeof extra, MSG_DONTWAIT), 0) << "the corrupted frame was delivered";
  auto after = snmp_in(ns_b_);
  EXPECT_EQ(after["InDatagrams"] - before["InDatagrams"], kFrames);
  EXPECT_EQ(after["InCsumErrors"] - before["InCsumErrors"], 1);
  EXPECT_EQ(dev->stats().tx_frames, uint64_t(kFrames + 1));
  close(sb);
}

// A kTxTso frame (Ethernet/IPv4/TCP, 3500 payload bytes in pieces, gso_size 1448) leaves as three
// frames that b's kernel TCP takes with valid checksums (InSegs +3, no InCsumErrors; it answers each
// with a reset, having no socket), and its cookie comes back once, after the last segment's frame.
TEST_F(XdpNetdevTest, TsoFrameLeavesAsCheckedSegments) {
  auto dev = open_dev();
  ASSERT_NE(dev, nullptr);
  UdpEndpoints e = a_to_b(*dev, 40003, 9003);
  constexpr uint32_t kPayload = 3500;
  std::vector<uint8_t> f(14 + 20 + 20 + kPayload, 0);
  memcpy(f.data(), e.dst_mac, 6);
  memcpy(f.data() + 6, e.src_mac, 6);
  store_be16(f.data() + 12, 0x0800);
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  store_be16(ip + 2, uint16_t(f.size() - 14));
  store_be16(ip + 4, 100);
  store_be16(ip + 6, 0x4000);  // DF
  ip[8] = 64;
  ip[9] = IPPROTO_TCP;
  memcpy(ip + 12, &e.saddr, 4);
  memcpy(ip + 16, &e.daddr, 4);
  uint8_t* th = ip + 20;
  store_be16(th, e.sport);
  store_be16(th + 2, e.dport);
  store_be32(th + 4, 12345);
  store_be32(th + 8, 1);
  th[12] = 5 << 4;
  th[13] = 0x18;  // PSH|ACK
  store_be16(th + 14, 512);
  for (uint32_t i = 0; i < kPayload; ++i) th[20 + i] = uint8_t(i);
  FrameSeg pieces[] = {{f.data(), 54}, {f.data() + 54, 2000}, {f.data() + 2054, uint32_t(f.size() - 2054)}};
  TxFrame t{.segs = absl::MakeConstSpan(pieces), .flags = kTxTso | kTxIpCsum | kTxL4Csum, .csum_start = 34,
            .csum_offset = 16, .gso_size = 1448, .cookie = 77};
  auto before = snmp_in(ns_b_, "Tcp");
  ASSERT_EQ(dev->xmit(absl::MakeConstSpan(&t, 1)), 1);
  dev->flush_tx();
  EXPECT_EQ(reap(*dev, 1), std::multiset<uint64_t>({77}));
  EXPECT_EQ(dev->stats().tx_frames, 3u);
  EXPECT_EQ(dev->stats().tx_tso_frames, 1u);
  EXPECT_EQ(dev->stats().tx_done, 3u);
  std::map<std::string, long long> after;
  EXPECT_TRUE(BedTest::eventually([&] {
    after = snmp_in(ns_b_, "Tcp");
    return after["InSegs"] - before["InSegs"] >= 3;
  })) << "b's kernel TCP saw " << after["InSegs"] - before["InSegs"] << " segments";
  EXPECT_EQ(after["InSegs"] - before["InSegs"], 3);
  EXPECT_EQ(after["InCsumErrors"] - before["InCsumErrors"], 0);
  EXPECT_EQ(after["InErrs"] - before["InErrs"], 0);
}

TEST_F(XdpNetdevTest, XmitRejectsWhatItCannotSendAndStopsWhenFull) {
  auto dev = open_dev(XdpMode::kAuto, /*tx_frames=*/8);
  ASSERT_NE(dev, nullptr);
  std::vector<uint8_t> big(dev->features().max_frame + 1, 0);
  std::vector<uint8_t> ok = build_udp_frame(a_to_b(*dev, 40001, 9), "full?");
  FrameSeg big_seg{big.data(), uint32_t(big.size())}, ok_seg{ok.data(), uint32_t(ok.size())};
  TxFrame too_big{.segs = absl::MakeConstSpan(&big_seg, 1)};
  TxFrame tso{.segs = absl::MakeConstSpan(&ok_seg, 1), .flags = kTxTso, .gso_size = 100};  // not TCP
  TxFrame good{.segs = absl::MakeConstSpan(&ok_seg, 1), .cookie = 7};
  TxFrame bad_csum{.segs = absl::MakeConstSpan(&ok_seg, 1), .flags = kTxL4Csum,
                   .csum_start = uint16_t(ok.size()), .csum_offset = 6};
  EXPECT_EQ(dev->xmit(absl::MakeConstSpan(&too_big, 1)), -EMSGSIZE);
  EXPECT_EQ(dev->xmit(absl::MakeConstSpan(&tso, 1)), -EINVAL);
  EXPECT_EQ(dev->xmit(absl::MakeConstSpan(&bad_csum, 1)), -EINVAL);
  TxFrame mixed[] = {good, too_big};
  EXPECT_EQ(dev->xmit(absl::MakeConstSpan(mixed)), 1) << "the frame before the bad one still goes";

  // 8 TX frames: one in use, 7 more fit, then xmit() says 0 until poll_tx() returns them.
  std::vector<TxFrame> burst(10, good);
  EXPECT_EQ(dev->xmit(absl::MakeConstSpan(burst)), 7);
  EXPECT_EQ(dev->xmit(absl::MakeConstSpan(burst)), 0);
  EXPECT_EQ(reap(*dev, 8).size(), 8u);
  EXPECT_EQ(dev->xmit(absl::MakeConstSpan(burst)), 8);
  EXPECT_EQ(reap(*dev, 8).size(), 8u);
}

// The doorbell batch (XdpOptions::tx_kick_batch): in copy mode (veth) the kernel sends TX frames only
// inside the sendto() doorbell, so what arrived at b says exactly which frames were rung for.
TEST_F(XdpNetdevTest, TxKickBatchHoldsFramesUntilBatchOrFlush) {
  XdpOptions opt{.ifname = if_a_, .queue_id = 0, .tx_kick_batch = 4};
  std::unique_ptr<XdpNetdev> dev;
  std::string why;
  ASSERT_EQ(XdpNetdev::open(opt, &dev, &why), 0) << why;
  ASSERT_FALSE(dev->zerocopy()) << "veth: copy mode";
  int sb = udp_socket_in(ns_b_, kAddrB, 9002);
  ASSERT_GE(sb, 0);
  UdpEndpoints e = a_to_b(*dev, 40002, 9002);
  std::vector<std::vector<uint8_t>> frames;
  for (int i = 0; i < 8; ++i) frames.push_back(build_udp_frame(e, "kick " + std::to_string(i), uint16_t(200 + i)));
  auto send = [&](int i) {
    FrameSeg seg{frames[size_t(i)].data(), uint32_t(frames[size_t(i)].size())};
    TxFrame t{.segs = absl::MakeConstSpan(&seg, 1), .cookie = uint64_t(i)};
    ASSERT_EQ(dev->xmit(absl::MakeConstSpan(&t, 1)), 1);
  };
  auto arrived = [&] {  // every datagram b holds now, in order
    std::vector<std::string> got;
    char buf[64];
    for (ssize_t n; (n = recv(sb, buf, sizeof buf, MSG_DONTWAIT)) >= 0;) got.emplace_back(buf, size_t(n));
    return got;
  };
  using V = std::vector<std::string>;

  send(0);  // the first frame after an idle ring rings at once: a lone datagram is never held
  EXPECT_EQ(arrived(), V({"kick 0"}));
  EXPECT_EQ(dev->stats().tx_kicks, 1u);
  send(1);
  send(2);
  send(3);
  size_t reaped = 0;
  dev->poll_tx([&](uint64_t) { ++reaped; });  // reaping does not ring for frames below the batch
  EXPECT_EQ(arrived(), V{});
  EXPECT_EQ(dev->stats().tx_kicks, 1u);
  send(4);  // four wait: the batch rings, in order
  EXPECT_EQ(arrived(), V({"kick 1", "kick 2", "kick 3", "kick 4"}));
  EXPECT_EQ(dev->stats().tx_kicks, 2u);
  send(5);
  EXPECT_EQ(arrived(), V{});
  dev->flush_tx();  // flush rings for what waits
  EXPECT_EQ(arrived(), V({"kick 5"}));
  EXPECT_EQ(dev->stats().tx_kicks, 3u);
  EXPECT_EQ(dev->stats().tx_flushes, 1u);
  dev->flush_tx();  // nothing waits: no doorbell, and the next frame rings at once again
  EXPECT_EQ(dev->stats().tx_kicks, 3u);
  send(6);
  EXPECT_EQ(arrived(), V({"kick 6"}));
  send(7);
  dev->set_tx_kick_batch(1);  // back to a doorbell per frame: what waits goes now
  EXPECT_EQ(arrived(), V({"kick 7"}));
  EXPECT_EQ(dev->stats().tx_kicks, 5u);
  EXPECT_EQ(reaped + reap(*dev, 8 - reaped).size(), 8u);
  close(sb);
}

// xmit_more (a TCP burst): with the default batch of 1, frames wait until a whole copy-mode batch
// (32: what one sendto() sends) is in the ring, or the burst's flush_tx(); the first frame of the
// burst is held too (no "idle ring rings at once").
TEST_F(XdpNetdevTest, XmitMoreRingsPerFullBatchOrFlush) {
  auto dev = open_dev();
  ASSERT_NE(dev, nullptr);
  int sb = udp_socket_in(ns_b_, kAddrB, 9004);
  ASSERT_GE(sb, 0);
  UdpEndpoints e = a_to_b(*dev, 40004, 9004);
  std::vector<std::vector<uint8_t>> frames;
  for (int i = 0; i < 34; ++i) frames.push_back(build_udp_frame(e, "more " + std::to_string(i), uint16_t(300 + i)));
  auto send = [&](int i) {
    FrameSeg seg{frames[size_t(i)].data(), uint32_t(frames[size_t(i)].size())};
    TxFrame t{.segs = absl::MakeConstSpan(&seg, 1), .cookie = uint64_t(i)};
    ASSERT_EQ(dev->xmit(absl::MakeConstSpan(&t, 1)), 1);
  };
  auto arrived = [&] {
    size_t n = 0;
    char buf[64];
    while (recv(sb, buf, sizeof buf, MSG_DONTWAIT) >= 0) ++n;
    return n;
  };
  dev->set_xmit_more(true);
  EXPECT_TRUE(dev->xmit_more());
  for (int i = 0; i < 31; ++i) send(i);
  EXPECT_EQ(arrived(), 0u);
  EXPECT_EQ(dev->stats().tx_kicks, 0u);
  send(31);  // the 32nd: one doorbell for the batch
  EXPECT_EQ(arrived(), 32u);
  EXPECT_EQ(dev->stats().tx_kicks, 1u);
  send(32);
  send(33);
  EXPECT_EQ(arrived(), 0u);
  dev->set_xmit_more(false);
  dev->flush_tx();  // the burst's end
  EXPECT_EQ(arrived(), 2u);
  EXPECT_EQ(dev->stats().tx_kicks, 2u);
  EXPECT_EQ(reap(*dev, 34).size(), 34u);
  close(sb);
}

// (b) Steered flows (wildcard and exact 5-tuple) arrive at poll_rx(); namespace a's kernel never
// sees them. Run with the program in driver mode and in generic mode.
class XdpSteerTest : public XdpNetdevTest, public ::testing::WithParamInterface<XdpMode> {};

TEST_P(XdpSteerTest, SteeredFlowsArriveOnQueueNotInKernel) {
  auto dev = open_dev(GetParam());
  ASSERT_NE(dev, nullptr);
  EXPECT_EQ(dev->native_mode(), GetParam() != XdpMode::kGeneric);
  FlowKey wild{.protocol = IPPROTO_UDP, .local_addr = inaddr(kAddrA), .local_port = htons(7000)};
  FlowKey exact{.protocol = IPPROTO_UDP, .local_addr = inaddr(kAddrA), .local_port = htons(7001),
                .remote_addr = inaddr(kAddrB), .remote_port = htons(5555)};
  ASSERT_EQ(dev->steer(wild), 0);
  EXPECT_EQ(dev->steer(wild), -EEXIST);
  ASSERT_EQ(dev->steer(exact), 0);
  EXPECT_EQ(dev->steer(FlowKey{.protocol = IPPROTO_ICMP, .local_addr = 1, .local_port = 1}), -EINVAL);

  int s1 = udp_socket_in(ns_b_, kAddrB, 0);
  int s2 = udp_socket_in(ns_b_, kAddrB, 5555);
  ASSERT_TRUE(s1 >= 0 && s2 >= 0);
  auto before = snmp_in(ns_a_);
  constexpr int kEach = 5;
  std::set<std::string> sent;
  for (int i = 0; i < kEach; ++i) {
    std::string p1 = "wild " + std::to_string(i), p2 = "exact " + std::to_string(i);
    send_to(s1, kAddrA, 7000, p1);
    send_to(s2, kAddrA, 7001, p2);
    sent.insert(p1);
    sent.insert(p2);
  }

  // Keep every buffer (deliver returns true) and check the bytes are still there before recycling.
  struct Held {
    const uint8_t* data;
    uint32_t len;
    uint64_t buf_id;
  };
  std::vector<Held> held;
  std::set<std::string> got;
  int other = 0;
  eventually([&] {
    dev->poll_rx(64, [&](const RxFrame& f) {
      ParsedUdp u;
      if (!parse_udp_frame(f.data, f.len, &u)) {
        ++other;
        return false;
      }
      held.push_back({f.data, f.len, f.buf_id});
      return true;
    });
    return held.size() >= 2 * kEach;
  });
  ASSERT_EQ(held.size(), size_t(2 * kEach)) << "steered datagrams missing from the queue";
  EXPECT_EQ(other, 0);
  for (const Held& h : held) {
    ParsedUdp u;
    ASSERT_TRUE(parse_udp_frame(h.data, h.len, &u));
    EXPECT_EQ(u.daddr, inaddr(kAddrA));
    EXPECT_EQ(u.saddr, inaddr(kAddrB));
    EXPECT_TRUE(u.dport == 7000 || (u.dport == 7001 && u.sport == 5555)) << u.dport << " from " << u.sport;
    got.insert(u.payload);
    dev->rx_recycle(h.buf_id);
    dev->rx_recycle(h.buf_id);  // a second recycle of the same buffer is ignored
  }
  EXPECT_EQ(got, sent);
  auto after = snmp_in(ns_a_);
  EXPECT_EQ(after["InDatagrams"], before["InDatagrams"]);
  EXPECT_EQ(after["NoPorts"], before["NoPorts"]);

  // Unsteered again, the port belongs to the kernel (nobody listens: NoPorts).
  EXPECT_EQ(dev->unsteer(wild), 0);
  EXPECT_EQ(dev->unsteer(wild), -ENOENT);
  send_to(s1, kAddrA, 7000, "after unsteer");
  EXPECT_TRUE(eventually([&] { return snmp_in(ns_a_)["NoPorts"] == before["NoPorts"] + 1; }));
  EXPECT_EQ(dev->poll_rx(64, [](const RxFrame&) { return false; }), 0);
  close(s1);
  close(s2);
}

INSTANTIATE_TEST_SUITE_P(Modes, XdpSteerTest, ::testing::Values(XdpMode::kAuto, XdpMode::kGeneric),
                         [](const auto& info) { return info.param == XdpMode::kAuto ? "Native" : "Generic"; });

// (c) Datagrams of an unsteered port (and of the wrong remote for an exact entry) go to namespace
// a's kernel, not to the queue.
TEST_F(XdpNetdevTest, UnsteeredPortsGoToKernel) {
  auto dev = open_dev();
  ASSERT_NE(dev, nullptr);
  ASSERT_EQ(dev->steer(FlowKey{.protocol = IPPROTO_UDP, .local_addr = inaddr(kAddrA), .local_port = htons(7000)}), 0);
  ASSERT_EQ(dev->steer(FlowKey{.protocol = IPPROTO_UDP, .local_addr = inaddr(kAddrA), .local_port = htons(7001),
                               .remote_addr = inaddr(kAddrB), .remote_port = htons(5555)}),
            0);
  int sa = udp_socket_in(ns_a_, kAddrA, 7002);
  int sb = udp_socket_in(ns_b_, kAddrB, 5556);
  ASSERT_TRUE(sa >= 0 && sb >= 0);
  auto before = snmp_in(ns_a_);
  constexpr int kN = 5;
  for (int i = 0; i < kN; ++i) send_to(sb, kAddrA, 7002, "to the kernel " + std::to_string(i));
  send_to(sb, kAddrA, 7001, "wrong remote port");  // exact entry is for :5555 only
  for (int i = 0; i < kN; ++i) {
    sockaddr_in from{};
    bool ok = false;
    EXPECT_EQ(recv_one(sa, &from, &ok), "to the kernel " + std::to_string(i));
    ASSERT_TRUE(ok);
  }
  EXPECT_TRUE(eventually([&] { return snmp_in(ns_a_)["NoPorts"] == before["NoPorts"] + 1; }));
  auto after = snmp_in(ns_a_);
  EXPECT_EQ(after["InDatagrams"] - before["InDatagrams"], kN);
  EXPECT_EQ(dev->poll_rx(64, [](const RxFrame&) { return false; }), 0);
  close(sa);
  close(sb);
}

// (c') An interface with several RX queues (a NIC's RSS) gets a socket on each, all sharing the
// UMEM, and wait_fd() is an epoll set of them; past the XSKMAP's 64 queues open() says why.
// (afxdp_queues, e2e, moves TCP and UDP over a 4-queue veth.)
TEST_F(XdpNetdevTest, EveryRxQueueGetsASocket) {
  auto ip_a = [&](const std::string& args) {
    return system(("ip -n " + ns_a_ + " " + args + " >/dev/null 2>&1").c_str()) == 0;
  };
  ASSERT_TRUE(ip_a("link add qa numtxqueues 3 numrxqueues 3 type veth peer name qb numtxqueues 3 numrxqueues 3"));
  ASSERT_TRUE(ip_a("link set qa up") && ip_a("link set qb up"));
  std::unique_ptr<XdpNetdev> dev;
  std::string why;
  ASSERT_EQ(XdpNetdev::open(XdpOptions{.ifname = "qa"}, &dev, &why), 0) << why;
  EXPECT_EQ(dev->rx_queues(), 3u);
  std::set<int> fds;
  dev->for_each_fd([&](int fd) {
    EXPECT_TRUE(fds.insert(fd).second) << fd;
    EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC) << fd;
  });
  EXPECT_GE(fds.size(), 3u + 1u + 2u) << "three sockets, the epoll set, the program's fds";
  EXPECT_NE(dev->wait_fd(), -1);
  xdp_statistics st{};
  EXPECT_EQ(dev->kernel_stats(&st), 0);
  dev.reset();
  ASSERT_TRUE(ip_a("link del qa"));

  ASSERT_TRUE(ip_a("link add qa numtxqueues 65 numrxqueues 65 type veth peer name qb numtxqueues 65 numrxqueues 65"));
  ASSERT_TRUE(ip_a("link set qa up"));
  EXPECT_EQ(XdpNetdev::open(XdpOptions{.ifname = "qa"}, &dev, &why), -EOPNOTSUPP);
  EXPECT_NE(why.find("65 RX queues"), std::string::npos) << why;
  EXPECT_EQ(dev, nullptr);
  ASSERT_TRUE(ip_a("link del qa"));
}

// (c'') Pre-fork workers (preload/workers.h): devices over one program another owner attached each
// take the queues of their share (q % slots == slot), a share some device holds already is -EBUSY,
// one past the queues -ENODEV; a listening port's rule is shared (steering it again is success,
// unsteering leaves it), a 4-tuple's is not.
TEST_F(XdpNetdevTest, WorkersShareTheProgramAndSplitTheQueues) {
  auto ip_a = [&](const std::string& args) {
    return system(("ip -n " + ns_a_ + " " + args + " >/dev/null 2>&1").c_str()) == 0;
  };
  ASSERT_TRUE(ip_a("link add qa numtxqueues 3 numrxqueues 3 type veth peer name qb numtxqueues 3 numrxqueues 3"));
  ASSERT_TRUE(ip_a("link set qa up") && ip_a("link set qb up"));
  std::unique_ptr<XdpProg> prog;
  std::string why;
  ASSERT_EQ(XdpProg::open(int(if_nametoindex("qa")), XdpMode::kAuto, &prog, &why), 0) << why;
  auto open_share = [&](uint32_t slot, uint32_t slots, std::unique_ptr<XdpNetdev>* out, bool bind_wait = true) {
    return XdpNetdev::open(
        XdpOptions{.ifname = "qa", .shared_prog = prog.get(), .slot = slot, .slots = slots, .bind_wait = bind_wait}, out,
        &why);
  };
  std::unique_ptr<XdpNetdev> w0, w1, again;
  ASSERT_EQ(open_share(0, 2, &w0), 0) << why;
  ASSERT_EQ(open_share(1, 2, &w1), 0) << why;
  ASSERT_EQ(w0->rx_queues(), 2u);
  EXPECT_EQ(w0->rx_queue_id(0), 0u);
  EXPECT_EQ(w0->rx_queue_id(1), 2u);
  EXPECT_EQ(w0->queue_id(), 0u);
  ASSERT_EQ(w1->rx_queues(), 1u);
  EXPECT_EQ(w1->queue_id(), 1u);
  EXPECT_EQ(w1->link_rx_queues(), 3u);
  EXPECT_EQ(open_share(0, 2, &again), -EBUSY) << why;
  EXPECT_EQ(open_share(3, 4, &again), -ENODEV) << why;
  EXPECT_NE(why.find("none left for worker 4 of 4"), std::string::npos) << why;

  const FlowKey port{.protocol = IPPROTO_TCP, .local_addr = inaddr(kAddrA), .local_port = htons(8080)};
  FlowKey flow = port;
  flow.remote_addr = inaddr(kAddrB);
  flow.remote_port = htons(40000);
  EXPECT_FALSE(prog->accepting(0)) << "no listener steered through w0 yet";
  EXPECT_EQ(w0->steer(port), 0);
  EXPECT_TRUE(prog->accepting(0));
  EXPECT_TRUE(prog->accepting(2));
  // Another worker looking for a share (a reload's new one) finds w0's busy: w0's queues keep
  // accepting (the flag is set only on a queue whose bind() succeeded).
  EXPECT_EQ(open_share(0, 2, &again, false), -EBUSY) << why;
  EXPECT_TRUE(prog->accepting(0));
  EXPECT_TRUE(prog->accepting(2));
  EXPECT_EQ(w1->steer(port), 0) << "the other worker's rule serves it";
  EXPECT_EQ(w1->unsteer(port), 0);
  EXPECT_EQ(prog->steer(port), -EEXIST) << "unsteer left the shared rule";
  EXPECT_EQ(w0->steer(flow), 0);
  EXPECT_EQ(w1->steer(flow), -EEXIST) << "a 4-tuple's rule is one worker's";
  EXPECT_EQ(w0->unsteer(flow), 0);
  EXPECT_EQ(prog->unsteer(flow), -ENOENT);
  w0.reset();
  w1.reset();
  // The program stays with its owner; its queues are free for other workers.
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  ASSERT_EQ(bpf_xdp_query(int(if_nametoindex("qa")), 0, &q), 0);
  EXPECT_NE(q.attach_mode, XDP_ATTACHED_NONE);
  EXPECT_EQ(open_share(0, 2, &again), 0) << why;
  again.reset();
  prog.reset();
  ASSERT_TRUE(ip_a("link del qa"));
}

// (d) The program leaves with the device; every fd the device opened is close-on-exec.
TEST_F(XdpNetdevTest, ProgramDetachedWhenDeviceDestroyed) {
  ASSERT_FALSE(xdp_attached()) << link_show();
  std::set<int> fds_before = open_fds();
  auto dev = open_dev();
  ASSERT_NE(dev, nullptr);
  std::set<int> fds_after = open_fds();
  int new_fds = 0;
  for (int fd : fds_after) {
    if (fds_before.count(fd)) continue;
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0) continue;  // the directory fd open_fds() used
    ++new_fds;
    EXPECT_TRUE(flags & FD_CLOEXEC) << "fd " << fd << " lacks O_CLOEXEC";
  }
  EXPECT_GE(new_fds, 4) << "xsk, link, two maps";
  EXPECT_TRUE(xdp_attached()) << link_show();

  // One program per interface: a second device on it fails cleanly and leaves the first alone.
  std::unique_ptr<XdpNetdev> second;
  std::string why;
  EXPECT_EQ(XdpNetdev::open(XdpOptions{.ifname = if_a_}, &second, &why), -EBUSY) << why;
  EXPECT_EQ(second, nullptr);
  EXPECT_NE(why.find("attach"), std::string::npos) << why;
  EXPECT_EQ(XdpNetdev::open(XdpOptions{.ifname = "xmit-nosuchif"}, &second, &why), -ENODEV) << why;
  EXPECT_TRUE(xdp_attached()) << link_show();
  dev.reset();
  EXPECT_FALSE(xdp_attached()) << link_show();
}

// (d) ... and with a process that is SIGKILLed while it holds the device.
TEST_F(XdpNetdevTest, ProgramDetachedWhenOwnerIsKilled) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // inherits namespace a from this thread
    std::unique_ptr<XdpNetdev> dev;
    char c = XdpNetdev::open(XdpOptions{.ifname = if_a_}, &dev) == 0 ? 'y' : 'n';
    (void)!write(p[1], &c, 1);
    for (;;) pause();
  }
  close(p[1]);
  pollfd pfd{p[0], POLLIN, 0};
  char c = 0;
  bool ready = poll(&pfd, 1, 10000) == 1 && read(p[0], &c, 1) == 1 && c == 'y';
  close(p[0]);
  bool attached = ready && xdp_attached();
  kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(ready) << "the child could not open the device";
  EXPECT_TRUE(attached) << link_show();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_TRUE(eventually([&] { return !xdp_attached(); })) << link_show();
}

}  // namespace
}  // namespace xmit::xdp::testing
