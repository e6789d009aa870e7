// tests/ibv/ibv_ops_test.cc — the verbs function table: the sysfs lookup from an interface to its
// RDMA device and port (on a sysfs tree the test builds), and the real libibverbs entries on a
// machine that may have no RDMA device.
#include "verbs/ibv/ibv_ops.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "gtest/gtest.h"

namespace xmit::ibv {
namespace {

class FakeSysfs : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ibv_sysfs_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { ASSERT_EQ(system(("rm -rf " + root_).c_str()), 0); }
  void mkdirs(const std::string& rel) { ASSERT_EQ(system(("mkdir -p " + root_ + "/" + rel).c_str()), 0); }
  void write(const std::string& rel, const std::string& text) {
    FILE* f = fopen((root_ + "/" + rel).c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs(text.c_str(), f);
    fclose(f);
  }
  std::string root_;
};

TEST_F(FakeSysfs, PortFromGidAttrs) {
  // A dual-port device: the interface is the netdev of port 2.
  mkdirs("class/net/eth7/device/infiniband/mlx5_3");
  write("class/net/eth7/ifindex", "7\n");
  mkdirs("class/infiniband/mlx5_3/ports/1/gid_attrs/ndevs");
  mkdirs("class/infiniband/mlx5_3/ports/2/gid_attrs/ndevs");
  write("class/infiniband/mlx5_3/ports/1/gid_attrs/ndevs/0", "eth6\n");
  write("class/infiniband/mlx5_3/ports/2/gid_attrs/ndevs/0", "eth7\n");
  std::string dev, why;
  uint8_t port = 0;
  ASSERT_EQ(sysfs_netdev_to_ibdev(root_, "eth7", &dev, &port, &why), 0) << why;
  EXPECT_EQ(dev, "mlx5_3");
  EXPECT_EQ(port, 2);
}

TEST_F(FakeSysfs, PortFromDevPortWithoutGidAttrs) {
  mkdirs("class/net/eth1/device/infiniband/mlx4_0");
  write("class/net/eth1/dev_port", "1\n");
  std::string dev, why;
  uint8_t port = 0;
  ASSERT_EQ(sysfs_netdev_to_ibdev(root_, "eth1", &dev, &port, &why), 0) << why;
  EXPECT_EQ(dev, "mlx4_0");
  EXPECT_EQ(port, 2);  // dev_port is 0-based, verbs ports 1-based
}

TEST_F(FakeSysfs, SoftRoceDeviceFoundThroughItsPorts) {
  // rxe0 on eth2: no device/infiniband under the interface, only the port's netdev list.
  mkdirs("class/net/eth2/device");
  write("class/net/eth2/ifindex", "3\n");
  mkdirs("class/infiniband/rxe0/ports/1/gid_attrs/ndevs");
  write("class/infiniband/rxe0/ports/1/gid_attrs/ndevs/0", "eth2\n");
  std::string dev, why;
  uint8_t port = 0;
  ASSERT_EQ(sysfs_netdev_to_ibdev(root_, "eth2", &dev, &port, &why), 0) << why;
  EXPECT_EQ(dev, "rxe0");
  EXPECT_EQ(port, 1);
}

TEST_F(FakeSysfs, InterfaceWithoutRdmaDevice) {
  mkdirs("class/net/veth0/device");
  write("class/net/veth0/ifindex", "4\n");
  mkdirs("class/infiniband/rxe0/ports/1/gid_attrs/ndevs");
  write("class/infiniband/rxe0/ports/1/gid_attrs/ndevs/0", "eth2\n");  // another interface's
  std::string dev, why;
  uint8_t port = 0;
  EXPECT_EQ(sysfs_netdev_to_ibdev(root_, "veth0", &dev, &port, &why), -ENODEV);
  EXPECT_NE(why.find("veth0 has no RDMA device"), std::string::npos) << why;
}

TEST_F(FakeSysfs, NoSuchInterface) {
  std::string dev, why;
  uint8_t port = 0;
  EXPECT_EQ(sysfs_netdev_to_ibdev(root_, "nope0", &dev, &port, &why), -ENODEV);
  EXPECT_NE(why.find("no network interface nope0"), std::string::npos) << why;
}

// Every entry of both tables is filled: code above the table never checks for a missing one.
TEST(Ops, BothTablesAreComplete) {
  for (const IbvOps* ops : {&ibv_real_ops(), &ibv_sw_ops()}) {
    SCOPED_TRACE(ops->name);
    static_assert(sizeof(IbvOps) % sizeof(void*) == 0);
    const auto* slots = reinterpret_cast<void* const*>(ops);
    for (size_t i = 0; i < sizeof(IbvOps) / sizeof(void*); ++i) EXPECT_NE(slots[i], nullptr) << "entry " << i;
  }
  EXPECT_STREQ(ibv_sw_ops().name, "software");
}

// Loopback never has an RDMA device; on this machine (no RDMA NIC) the device list is empty or
// unavailable, and the real table says so without crashing.
TEST(RealOps, LoopbackHasNoRdmaDevice) {
  const IbvOps& ops = ibv_real_ops();
  EXPECT_STREQ(ops.name, "libibverbs");
  std::string dev, why;
  uint8_t port = 0;
  EXPECT_EQ(ops.netdev_to_ibdev("lo", &dev, &port, &why), -ENODEV);
  EXPECT_NE(why.find("lo has no RDMA device"), std::string::npos) << why;
  int n = -1;
  ibv_device** list = ops.get_device_list(&n);
  if (list != nullptr) {
    EXPECT_GE(n, 0);
    for (int i = 0; i < n; ++i) EXPECT_NE(ops.get_device_name(list[i]), nullptr);
    ops.free_device_list(list);
  }
}

}  // namespace
}  // namespace xmit::ibv
