// tests/udp/udp_threads_test.cc — threads on one stack: several threads each on a socket of its own,
// several on one shared socket, and one more reading and changing that socket's options and readiness
// meanwhile, over a null device. Every datagram must reach the device once, the counters must add up,
// and each socket's send buffer must come back to empty once the device completes everything. Built
// also under ThreadSanitizer in CI (suite 'threads'), where any data race fails it.
#include <netinet/in.h>
#include <poll.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "stack/dev/null_netdev.h"
#include "stack/udp/udp_sock.h"
#include "tests/neigh/fake_fib.h"
#include "tests/udp/fake_shadow.h"

namespace xmit {
namespace {

using testing::FakeFib;
using testing::FakeShadow;

const be32 kA = make_ipv4_addr(198, 18, 0, 1);
const be32 kB = make_ipv4_addr(198, 18, 0, 2);
constexpr uint8_t kMacB[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
constexpr int kOwnThreads = 4;
constexpr int kSharedThreads = 4;
constexpr int kPerThread = 3000;

// Sends `n` datagrams of 64..127 bytes; on a full send buffer, polls the socket (which reaps the
// device's completions) and tries again.
void send_n(UdpSock* sk, int n, uint16_t port) {
  uint8_t payload[128];
  std::memset(payload, 0x5a, sizeof payload);
  sockaddr_in to{.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = {kB}};
  for (int i = 0; i < n;) {
    iovec iov{payload, 64 + static_cast<size_t>(i % 64)};
    msghdr m{};
    m.msg_name = &to;
    m.msg_namelen = sizeof to;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    ssize_t r = sk->sendmsg(&m, 0);
    if (r == static_cast<ssize_t>(iov.iov_len)) {
      ++i;
    } else {
      ASSERT_EQ(r, -EAGAIN);
      int dev = -1;
      sk->poll_mask(&dev);
      std::this_thread::yield();
    }
  }
}

TEST(UdpThreads, OwnAndSharedSocketsFromManyThreads) {
  NullNetdev dev(NullNetdevConfig{.features = NetdevFeatures{.ip_csum = true, .l4_csum = true, .max_segs = 17,
                                                             .mtu = 1500, .max_frame = 1514},
                                  .ifindex = FakeFib::kIfindex, .tx_depth = 256});
  FakeFib fib;
  fib.routes[kB] = {0, Rtable{.type = RTN_UNICAST, .oif = FakeFib::kIfindex, .prefsrc = kA}};
  NeighInfo nb{.nud_state = NUD_REACHABLE, .has_ha = true};
  std::memcpy(nb.ha.data(), kMacB, 6);
  fib.kernel[{FakeFib::kIfindex, kB}] = nb;
  std::unique_ptr<UdpStack> stack;
  ASSERT_EQ(UdpStack::create(&dev, &fib, UdpStackOptions{}, &stack), 0);
  stack->set_if_addr(kA);

  // One fake kernel socket per socket: the shared one's is reached by several threads, as the
  // kernel's would be.
  std::vector<std::unique_ptr<FakeShadow>> shadows;
  std::vector<UdpSock*> own;
  for (int i = 0; i < kOwnThreads + 1; ++i) {
    shadows.push_back(std::make_unique<FakeShadow>(kA));
    own.push_back(new UdpSock(stack.get(), shadows.back().get(), 3 + i, /*nonblock=*/true));
  }
  UdpSock* shared = own.back();
  own.pop_back();
  // Bind first (the autobind of the fake kernel socket is not what this test is about).
  for (size_t i = 0; i <= own.size(); ++i) {
    UdpSock* sk = i < own.size() ? own[i] : shared;
    sockaddr_in local{.sin_family = AF_INET, .sin_port = htons(static_cast<uint16_t>(5000 + i)), .sin_addr = {kA}};
    ASSERT_EQ(sk->bind(reinterpret_cast<sockaddr*>(&local), sizeof local), 0);
  }

  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kOwnThreads; ++i) threads.emplace_back(send_n, own[i], kPerThread, 7000 + i);
  for (int i = 0; i < kSharedThreads; ++i) threads.emplace_back(send_n, shared, kPerThread, 7100);
  std::thread meddler([&] {  // the shared socket's options and readiness, while it sends
    int n = 0;
    while (!done.load(std::memory_order_acquire)) {
      int ttl = 32 + (n++ % 32);
      EXPECT_EQ(shared->setsockopt(IPPROTO_IP, IP_TTL, &ttl, sizeof ttl), 0);
      int outq = -1;
      EXPECT_EQ(shared->ioctl(SIOCOUTQ, &outq), 0);
      EXPECT_GE(outq, 0);
      int dev_fd = -1;
      EXPECT_GE(shared->poll_mask(&dev_fd), 0);
      std::this_thread::yield();
    }
  });
  for (std::thread& t : threads) t.join();
  done.store(true, std::memory_order_release);
  meddler.join();

  {
    std::lock_guard<StackMutex> g(stack->mu());
    for (int i = 0; i < 8 && dev.tx_inflight() > 0; ++i) stack->poll(1);
    EXPECT_EQ(dev.tx_inflight(), 0u);
  }
  constexpr uint64_t kTotal = uint64_t{kOwnThreads + kSharedThreads} * kPerThread;
  EXPECT_EQ(dev.stats().tx_frames, kTotal);
  EXPECT_EQ(dev.stats().tx_errors, 0u);
  {
    std::lock_guard<StackMutex> g(stack->mu());
    EXPECT_EQ(stack->udp_mib.OutDatagrams, kTotal);
    EXPECT_EQ(stack->udp_mib.SndbufErrors, 0u);
  }
  for (UdpSock* sk : own) EXPECT_EQ(sk->wmem_alloc(), 0u);
  EXPECT_EQ(shared->wmem_alloc(), 0u);
  for (UdpSock* sk : own) sk->put();
  shared->put();
  stack.reset();
}

}  // namespace
}  // namespace xmit
