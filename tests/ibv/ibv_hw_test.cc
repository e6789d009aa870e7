// tests/ibv/ibv_hw_test.cc — IbvNetdev on the real libibverbs, for every network interface that has
// an RDMA device (root; suite 'e2e'): opens it, checks what it reports, sends one frame (IEEE
// 802 local experimental ethertype 0x88b5, to the broadcast address) and reaps its completion.
// Reported as skipped, naming why, on machines without such a device.
#include <dirent.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "verbs/ibv/ibv_netdev.h"

namespace xmit::ibv {

std::vector<std::string> rdma_interfaces() {
  std::vector<std::string> out;
  DIR* d = opendir("/sys/class/net");
  while (dirent* e = d != nullptr ? readdir(d) : nullptr) {
    if (e->d_name[0] == '.') continue;
    std::string dev, why;
    uint8_t port = 0;
    if (ibv_real_ops().netdev_to_ibdev(e->d_name, &dev, &port, &why) == 0) out.push_back(e->d_name);
  }
  if (d != nullptr) closedir(d);
  return out;
}

namespace {

TEST(IbvHardware, OpenSendAndReapOnEveryRdmaInterface) {
  const auto ifaces = rdma_interfaces();
  if (ifaces.empty()) GTEST_SKIP() << "no network interface with an RDMA device on this machine";
  for (const std::string& ifname : ifaces) {
    SCOPED_TRACE(ifname);
    std::unique_ptr<IbvNetdev> dev;
    std::string why;
    int err = IbvNetdev::open({.ifname = ifname}, &dev, &why);
    if (err != 0) {
      // An RDMA device without raw Ethernet queues (InfiniBand, rxe) is not a failure of ours.
      ADD_FAILURE() << "IbvNetdev::open(" << ifname << "): " << why;
      continue;
    }
    EXPECT_STREQ(dev->ops_name(), "libibverbs");
    EXPECT_GE(dev->features().max_segs, 1);
    EXPECT_GE(dev->wait_fd(), -1);
    std::vector<uint8_t> f(60, 0);
    for (int i = 0; i < 6; ++i) f[size_t(i)] = 0xff;
    memcpy(f.data() + 6, dev->mac(), 6);
    f[12] = 0x88;
    f[13] = 0xb5;
    FrameSeg seg{f.data(), uint32_t(f.size())};
    TxFrame fr{.segs = {&seg, 1}, .cookie = 42};
    ASSERT_EQ(dev->xmit({&fr, 1}), 1);
    int reaped = 0;
    for (int i = 0; i < 1000000 && reaped == 0; ++i) reaped = dev->poll_tx([](uint64_t c) { EXPECT_EQ(c, 42u); });
    EXPECT_EQ(reaped, 1);
    EXPECT_EQ(dev->stats().tx_errors, 0u) << dev->last_error();
  }
}

}  // namespace
}  // namespace xmit::ibv

// Exit status 77 when there is nothing to test: meson reports the test as SKIP, not OK.
int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (xmit::ibv::rdma_interfaces().empty()) {
    printf("SKIP: no network interface with an RDMA device on this machine\n");
    return 77;
  }
  return RUN_ALL_TESTS();
}
