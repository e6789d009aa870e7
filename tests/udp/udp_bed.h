// tests/udp/udp_bed.h — a UdpSock over a UdpStack on a SimLink, for the UDP socket tests: a fake
// kernel shadow socket, a FIB with one on-link peer (b) and one route off the interface, frames
// from b, and send/receive helpers.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "stack/base/checksum.h"
#include "stack/dev/sim_link.h"
#include "stack/udp/udp_sock.h"
#include "tests/dev/forwarding_netdev.h"
#include "tests/neigh/fake_fib.h"
#include "tests/udp/fake_shadow.h"

namespace xmit {
namespace udp_testing {

using testing::FakeFib;
using testing::FakeShadow;

inline const be32 kA = make_ipv4_addr(198, 18, 0, 1);
inline const be32 kB = make_ipv4_addr(198, 18, 0, 2);
inline const be32 kOff = make_ipv4_addr(10, 9, 9, 9);  // routed through another device
inline constexpr uint16_t kPort = FakeShadow::kAutobindPort;  // what the fake kernel autobinds to

// A UDP/IPv4 frame from b to a, checksums complete (or a wrong UDP checksum).
inline std::vector<uint8_t> frame_to_a(const SimLinkConfig& cfg, uint16_t sport, uint16_t dport,
                                const std::vector<uint8_t>& payload, bool bad_csum = false) {
  std::vector<uint8_t> f(14 + 20 + 8 + payload.size(), 0);
  std::memcpy(&f[0], cfg.mac_a, 6);
  std::memcpy(&f[6], cfg.mac_b, 6);
  f[12] = 0x08;
  uint8_t* ip = &f[14];
  ip[0] = 0x45;
  uint16_t tot = static_cast<uint16_t>(20 + 8 + payload.size());
  ip[2] = tot >> 8;
  ip[3] = tot & 0xff;
  ip[8] = 64;
  ip[9] = IPPROTO_UDP;
  std::memcpy(ip + 12, &kB, 4);
  std::memcpy(ip + 16, &kA, 4);
  sum16 ipc = ip_fast_csum(ip, 5);
  std::memcpy(ip + 10, &ipc, 2);
  uint8_t* uh = ip + 20;
  uint16_t ulen = static_cast<uint16_t>(8 + payload.size());
  uh[0] = sport >> 8, uh[1] = sport & 0xff, uh[2] = dport >> 8, uh[3] = dport & 0xff;
  uh[4] = ulen >> 8, uh[5] = ulen & 0xff;
  std::memcpy(uh + 8, payload.data(), payload.size());
  sum16 c = csum_tcpudp_magic(kB, kA, ulen, IPPROTO_UDP, csum_partial(uh, ulen, 0));
  if (c == 0) c = 0xffff;
  if (bad_csum) c = static_cast<sum16>(c ^ 0x0101);
  std::memcpy(uh + 6, &c, 2);
  return f;
}

// A device in front of another that records what each xmit() hands it: the segments (where they
// point, whether they are the program's memory) and whether the frame names an object to mark a
// copy in. With `copy_user` it marks every frame with user segments copied, as a device that
// cannot register them does (IbvNetdev with its MR cache full).
class TxTap final : public ForwardingNetdev {
 public:
  struct Seg {
    const uint8_t* data;
    uint32_t len;
    bool user;
  };
  using ForwardingNetdev::ForwardingNetdev;
  int xmit(absl::Span<const TxFrame> frames) override {
    for (const TxFrame& f : frames) {
      std::vector<Seg> v;
      bool user = false;
      for (const FrameSeg& s : f.segs) {
        v.push_back({s.data, s.len, s.user});
        user |= s.user;
      }
      frames_.push_back(v);
      if (user && copy_user && f.zerocopy_success != nullptr) *f.zerocopy_success = false;
    }
    return in_->xmit(frames);
  }
  bool tx_completion_wakes() const override { return completion_wakes; }

  std::vector<std::vector<Seg>> frames_;
  bool copy_user = false;
  bool completion_wakes = false;  // as the verbs send CQ on its channel (set before the stack exists)
};

class UdpSockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg.ifindex_a = FakeFib::kIfindex;
    cfg.features = NetdevFeatures{.max_segs = 16, .mtu = 1500, .max_frame = 1514};
    cfg.features.l4_csum = dev_l4_csum;
    cfg.features.sg_user = dev_sg_user;
    link = std::make_unique<SimLink>(cfg);
    tap = std::make_unique<TxTap>(&link->a());
    fib.routes[kB] = {0, Rtable{.type = RTN_UNICAST, .oif = FakeFib::kIfindex, .prefsrc = kA}};
    fib.routes[kOff] = {0, Rtable{.type = RTN_UNICAST, .oif = 99, .prefsrc = make_ipv4_addr(10, 9, 9, 1)}};
    NeighInfo n{.nud_state = NUD_REACHABLE, .has_ha = true};
    std::memcpy(n.ha.data(), cfg.mac_b, 6);
    fib.kernel[{FakeFib::kIfindex, kB}] = n;
    ASSERT_EQ(UdpStack::create(tap.get(), &fib, UdpStackOptions{.udp_send_template = udp_send_template}, &stack), 0);
    stack->set_if_addr(kA);
  }
  void TearDown() override {
    {
      // Complete what is still on the device: a socket with frames in flight outlives its close
      // (also one the test closed itself), and is freed by its last completion.
      link->run(++now);
      std::lock_guard<StackMutex> g(stack->mu());
      stack->poll(now);
    }
    if (sk != nullptr) sk->put();
    stack.reset();
  }
  UdpSock* make(bool nonblock = true) {
    sk = new UdpSock(stack.get(), &shadow, 3, nonblock);
    return sk;
  }
  // sendmsg() of `p` to daddr:dport, with `ctllen` bytes of control messages at `ctl`.
  ssize_t sendto(const std::vector<uint8_t>& p, be32 daddr, uint16_t dport, int flags = 0, void* ctl = nullptr,
                 size_t ctllen = 0) {
    sockaddr_in to{.sin_family = AF_INET, .sin_port = htons(dport), .sin_addr = {daddr}};
    iovec iov{const_cast<uint8_t*>(p.data()), p.size()};
    msghdr m{};
    m.msg_name = &to;
    m.msg_namelen = sizeof to;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = ctllen;
    return sk->sendmsg(&m, flags);
  }
  ssize_t recvfrom(std::vector<uint8_t>* buf, sockaddr_in* from, int flags = 0, int* msg_flags = nullptr) {
    iovec iov{buf->data(), buf->size()};
    msghdr m{};
    m.msg_name = from;
    m.msg_namelen = sizeof *from;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    ssize_t r = sk->recvmsg(&m, flags);
    if (msg_flags != nullptr) *msg_flags = m.msg_flags;
    return r;
  }
  // Frames b's kernel got (b steers nothing).
  std::vector<std::vector<uint8_t>> at_b() {
    link->run(++now);
    std::vector<std::vector<uint8_t>> out;
    link->b().poll_kernel(64, [&](const RxFrame& f) { out.emplace_back(f.data, f.data + f.len); });
    return out;
  }
  void from_b(const std::vector<uint8_t>& f) {
    FrameSeg seg{f.data(), static_cast<uint32_t>(f.size())};
    TxFrame tf{.segs = absl::MakeConstSpan(&seg, 1)};
    ASSERT_EQ(link->b().xmit(absl::MakeConstSpan(&tf, 1)), 1);
    link->run(++now);
  }

  bool dev_l4_csum = false;  // a's device finishes checksums (set before SetUp())
  bool dev_sg_user = false;  // a's device reads user memory in place (verbs; set before SetUp())
  bool udp_send_template = true;  // UdpStackOptions::udp_send_template (set before SetUp())
  SimLinkConfig cfg;
  std::unique_ptr<SimLink> link;
  std::unique_ptr<TxTap> tap;  // in front of link->a(): what the stack handed the device
  FakeFib fib;
  FakeShadow shadow{kA};
  std::unique_ptr<UdpStack> stack;
  UdpSock* sk = nullptr;
  uint64_t now = 1;
};


}  // namespace udp_testing
}  // namespace xmit
