// scripts/bench/udp_stack_bench.cc — the in-stack cost of one datagram: UdpSock::sendmsg() (an
// unconnected sendto) through UdpStack (udp_sendmsg, ip_make_skb, udp_send_skb, neighbour output)
// onto a NullNetdev that completes every frame on the next poll. The FIB is faked (one route, one
// resolved neighbour), the shadow socket too (its clock is the engine's, CLOCK_MONOTONIC_COARSE, so
// the control plane is looked at once per tick, as in the engine: an epoll set that finds nothing).
// The kernel's counterpart, when run as root: sendto() on a kernel UDP socket to a permanent
// neighbour behind a veth whose peer is down, so veth_xmit() drops (frees) every frame: the kernel's
// whole send path onto a null device (this kernel may have no dummy driver), in a network namespace
// of this process's own (unshare; it goes away with the process). It includes the syscall, so it
// bounds what a bypass can save; it is not an in-stack-only number.
//   build/scripts/bench/udp_stack_bench [--benchmark_repetitions=N ...]
#include <netinet/in.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "benchmark/benchmark.h"
#include "stack/dev/null_netdev.h"
#include "stack/udp/udp_sock.h"
#include "tests/neigh/fake_fib.h"
#include "tests/stack/count_new.h"
#include "tests/udp/fake_shadow.h"

namespace xmit {
namespace {

using testing::FakeFib;
using testing::FakeShadow;

const be32 kA = make_ipv4_addr(198, 18, 0, 1);
const be32 kB = make_ipv4_addr(198, 18, 0, 2);
constexpr uint8_t kMacB[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};

uint64_t tick_ns() {  // preload/engine.cc's clock
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// The engine's control plane without its sockets: an epoll set looked at with timeout 0 that never
// has anything to report (the engine's adds the rtnetlink socket and the shadows).
class IdleControl final : public ControlOps {
 public:
  IdleControl() : epfd_(epoll_create1(EPOLL_CLOEXEC)) {}
  ~IdleControl() override { close(epfd_); }
  void poll_changes(uint64_t, NeighTable&, absl::FunctionRef<void(int)>) override {
    epoll_event ev[8];
    looks += epoll_wait(epfd_, ev, 8, 0) >= 0 ? 1 : 0;
  }
  void watch_shadow(int) override {}
  void unwatch_shadow(int) override {}
  uint64_t looks = 0;

 private:
  int epfd_;
};

// One socket on one stack on the null device. `offload`: the device finishes the IPv4 and UDP
// checksums, as XdpNetdev advertises (it then does them in software, outside this measurement);
// without it the stack computes the UDP checksum itself (kernel: a device without NETIF_F_HW_CSUM).
struct Bed {
  explicit Bed(bool offload)
      : dev(NullNetdevConfig{.features = NetdevFeatures{.ip_csum = offload, .l4_csum = offload,
                                                        .max_segs = 17, .mtu = 1500, .max_frame = 1514},
                             .ifindex = FakeFib::kIfindex}),
        shadow(kA) {
    fib.routes[kB] = {0, Rtable{.type = RTN_UNICAST, .oif = FakeFib::kIfindex, .prefsrc = kA}};
    NeighInfo n{.nud_state = NUD_REACHABLE, .has_ha = true};
    std::memcpy(n.ha.data(), kMacB, 6);
    fib.kernel[{FakeFib::kIfindex, kB}] = n;
    if (UdpStack::create(&dev, &fib, UdpStackOptions{}, &stack) != 0) return;
    stack->set_if_addr(kA);
    shadow.clock = tick_ns;
    stack->set_control(&control);
    sk = new UdpSock(stack.get(), &shadow, 3, /*nonblock=*/false);
  }
  ~Bed() {
    if (sk != nullptr) sk->put();
    stack.reset();
  }
  NullNetdev dev;
  FakeFib fib;
  FakeShadow shadow;
  IdleControl control;
  std::unique_ptr<UdpStack> stack;
  UdpSock* sk = nullptr;
};

// Args: payload bytes, checksum offload (0/1).
void BM_UdpSendmsg(benchmark::State& state) {
  const size_t len = static_cast<size_t>(state.range(0));
  Bed bed(state.range(1) != 0);
  if (bed.sk == nullptr) {
    state.SkipWithError("UdpStack::create");
    return;
  }
  std::vector<uint8_t> payload(len, 0x5a);
  sockaddr_in to{.sin_family = AF_INET, .sin_port = htons(7777), .sin_addr = {kB}};
  iovec iov{payload.data(), payload.size()};
  msghdr m{};
  m.msg_name = &to;
  m.msg_namelen = sizeof to;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  // The first datagram autobinds and steers, and fills the route and neighbour caches.
  if (bed.sk->sendmsg(&m, 0) != static_cast<ssize_t>(len)) {
    state.SkipWithError("first sendmsg");
    return;
  }
  const uint64_t frames0 = bed.dev.stats().tx_frames;
  const size_t news0 = testing_support::operator_new_calls();
  for (auto _ : state) {
    ssize_t r = bed.sk->sendmsg(&m, 0);
    if (r != static_cast<ssize_t>(len)) {
      state.SkipWithError("sendmsg failed");
      break;
    }
  }
  const double n = static_cast<double>(state.iterations());
  // Every datagram must have become one frame on the device (no silent queue-full drop).
  state.counters["frames_per_dgram"] = static_cast<double>(bed.dev.stats().tx_frames - frames0) / n;
  state.counters["news_per_dgram"] = static_cast<double>(testing_support::operator_new_calls() - news0) / n;
  state.counters["tx_drops"] = static_cast<double>(bed.stack->tx_drops);
  state.counters["control_looks_per_dgram"] = static_cast<double>(bed.control.looks) / n;
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_UdpSendmsg)
    ->ArgNames({"bytes", "csum_offload"})
    ->Args({64, 1})
    ->Args({1472, 1})
    ->Args({64, 0})
    ->Args({1472, 0});

// The kernel bed: this thread's own network namespace with veth d0 (198.18.0.1/24; its peer d1 stays
// down) and a permanent neighbour 198.18.0.2. Built once; "" or why not.
const char* kernel_bed() {
  static const char* why = [] () -> const char* {
    if (geteuid() != 0) return "not root: no namespace for the kernel comparison";
    if (unshare(CLONE_NEWNET) != 0) return "unshare(CLONE_NEWNET) failed";
    const char* cmd =
        "ip link add d0 type veth peer name d1 && ip link set lo up && ip link set d0 up && "
        "ip addr add 198.18.0.1/24 dev d0 && "
        "ip neigh add 198.18.0.2 lladdr 02:00:00:00:00:02 dev d0 nud permanent";
    if (std::system(cmd) != 0) return "ip link add d0 type veth (and the rest) failed";
    return "";
  }();
  return why;
}

// Args: payload bytes. sendto() of a kernel UDP socket onto d0, which drops every frame.
void BM_KernelSendto_nulldev(benchmark::State& state) {
  const size_t len = static_cast<size_t>(state.range(0));
  if (const char* why = kernel_bed(); *why != '\0') {
    state.SkipWithError(why);
    return;
  }
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  std::vector<uint8_t> payload(len, 0x5a);
  sockaddr_in to{.sin_family = AF_INET, .sin_port = htons(7777), .sin_addr = {kB}};
  for (auto _ : state) {
    ssize_t r = sendto(s, payload.data(), len, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
    if (r != static_cast<ssize_t>(len)) {
      state.SkipWithError("sendto failed");
      break;
    }
  }
  close(s);
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_KernelSendto_nulldev)->ArgName("bytes")->Arg(64)->Arg(1472);

}  // namespace
}  // namespace xmit

BENCHMARK_MAIN();
