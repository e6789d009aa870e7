// tests/dev/pcap_test.cc — the pcap writer's bytes, its error handling, the recording decorator,
// and tcpdump reading what we wrote.
#include "stack/dev/pcap.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "stack/dev/sim_link.h"
#include "tests/dev/test_frames.h"

namespace xmit {
namespace {

using Bytes = std::vector<uint8_t>;

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "xmit_pcap_" + std::to_string(getpid()) + "_" + name;
}

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

uint32_t u32(const Bytes& b, size_t off) {
  uint32_t v;
  std::memcpy(&v, b.data() + off, 4);
  return v;
}
uint16_t u16(const Bytes& b, size_t off) {
  uint16_t v;
  std::memcpy(&v, b.data() + off, 2);
  return v;
}

TEST(PcapWriter, FileHeaderAndRecordsByteExact) {
  for (PcapTsUnit unit : {PcapTsUnit::kNano, PcapTsUnit::kMicro}) {
    const std::string path = temp_path("exact");
    PcapWriter w;
    ASSERT_EQ(w.open(path.c_str(), {.ts_unit = unit, .snaplen = 65535, .buffer_size = 100}), 0);
    EXPECT_EQ(w.open(path.c_str()), -EBUSY);
    const Bytes a = {1, 2, 3, 4, 5}, b = {6, 7, 8};
    const FrameSeg segs[] = {{a.data(), 5}, {b.data(), 0}, {b.data(), 3}};
    ASSERT_EQ(w.write(3'000'000'123'000'456'789ull, segs), 0);  // 3e9 s: past 2038, fits u32
    const Bytes big(300, 0xab);                            // crosses the 100-byte buffer
    ASSERT_EQ(w.write(1'500'000'000, big.data(), 300), 0);
    EXPECT_EQ(w.packets(), 2u);
    ASSERT_EQ(w.close(), 0);

    const Bytes f = read_file(path);
    ASSERT_EQ(f.size(), 24u + 16 + 8 + 16 + 300);
    EXPECT_EQ(u32(f, 0), unit == PcapTsUnit::kNano ? 0xa1b23c4du : 0xa1b2c3d4u);
    EXPECT_EQ(u16(f, 4), 2);
    EXPECT_EQ(u16(f, 6), 4);
    EXPECT_EQ(u32(f, 8), 0u);
    EXPECT_EQ(u32(f, 12), 0u);
    EXPECT_EQ(u32(f, 16), 65535u);
    EXPECT_EQ(u32(f, 20), 1u);  // LINKTYPE_ETHERNET
    EXPECT_EQ(u32(f, 24), 3'000'000'123u);
    EXPECT_EQ(u32(f, 28), unit == PcapTsUnit::kNano ? 456'789u : 456u);
    EXPECT_EQ(u32(f, 32), 8u);
    EXPECT_EQ(u32(f, 36), 8u);
    EXPECT_EQ(Bytes(f.begin() + 40, f.begin() + 48), (Bytes{1, 2, 3, 4, 5, 6, 7, 8}));
    EXPECT_EQ(u32(f, 48), 1u);
    EXPECT_EQ(u32(f, 52), unit == PcapTsUnit::kNano ? 500'000'000u : 500'000u);
    EXPECT_EQ(u32(f, 56), 300u);
    EXPECT_EQ(Bytes(f.begin() + 64, f.end()), big);
    unlink(path.c_str());
  }
}

TEST(PcapWriter, SnaplenCutsCapturedBytesKeepsOriginalLength) {
  const std::string path = temp_path("snap");
  PcapWriter w;
  ASSERT_EQ(w.open(path.c_str(), {.snaplen = 4}), 0);
  const Bytes a = {1, 2, 3}, b = {4, 5, 6};
  const FrameSeg segs[] = {{a.data(), 3}, {b.data(), 3}};
  ASSERT_EQ(w.write(0, segs), 0);
  ASSERT_EQ(w.close(), 0);
  const Bytes f = read_file(path);
  ASSERT_EQ(f.size(), 24u + 16 + 4);
  EXPECT_EQ(u32(f, 16), 4u);
  EXPECT_EQ(u32(f, 32), 4u);  // caplen
  EXPECT_EQ(u32(f, 36), 6u);  // len
  EXPECT_EQ(Bytes(f.begin() + 40, f.end()), (Bytes{1, 2, 3, 4}));
  unlink(path.c_str());
}

TEST(PcapWriter, ErrorsAreReturnedAndSticky) {
  PcapWriter w;
  const uint8_t x[4] = {};
  EXPECT_EQ(w.write(0, x, 4), -EBADF);  // not open
  EXPECT_EQ(w.flush(), -EBADF);
  EXPECT_EQ(w.open("/nonexistent-dir/x.pcap"), -ENOENT);
  EXPECT_FALSE(w.is_open());
  EXPECT_EQ(w.attach(-1), -EBADF);

  // /dev/full: every write fails with ENOSPC, first seen at the flush.
  int fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  if (fd < 0) GTEST_SKIP() << "no /dev/full";
  ASSERT_EQ(w.attach(fd, {.buffer_size = 64}), 0);
  int err = 0;
  for (int i = 0; i < 10 && err == 0; ++i) err = w.write(0, x, 4);  // overflows the buffer
  EXPECT_EQ(err, -ENOSPC);
  EXPECT_EQ(w.write(0, x, 4), -ENOSPC);
  EXPECT_EQ(w.flush(), -ENOSPC);
  EXPECT_EQ(w.error(), -ENOSPC);
  EXPECT_EQ(w.close(), -ENOSPC);
  EXPECT_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);  // an attached fd stays open
  ::close(fd);
}

// Sends `n` frames a->b over a SimLink recorded on a's side; returns the path of the pcap.
std::string record_link(int n, std::vector<Bytes>* sent) {
  const std::string path = temp_path("link");
  PcapWriter w;
  EXPECT_EQ(w.open(path.c_str(), {.ts_unit = PcapTsUnit::kMicro}), 0);
  SimLink link({.steering = false});
  PcapNetdev a(link.a(), w), b(link.b(), w);
  for (int i = 0; i < n; ++i) {
    sent->push_back(testing::make_frame({.protocol = static_cast<uint8_t>(i % 2 ? 6 : 17),
                                         .payload_len = 10u + i,
                                         .ip_id = static_cast<uint16_t>(i)}));
    const Bytes& f = sent->back();
    const FrameSeg segs[] = {{f.data(), 20}, {f.data() + 20, static_cast<uint32_t>(f.size() - 20)}};
    const TxFrame tx{.segs = segs};
    a.set_now(1'000'000'000ull * (i + 1));
    EXPECT_EQ(a.xmit({&tx, 1}), 1);
  }
  link.run(0);
  b.set_now(1'000'000'000ull * (n + 1));
  EXPECT_EQ(b.poll_rx(64, [](const RxFrame&) { return false; }), n);
  EXPECT_EQ(a.write_errors() + b.write_errors(), 0u);
  EXPECT_EQ(w.packets(), 2u * n);
  EXPECT_EQ(w.close(), 0);
  return path;
}

TEST(PcapNetdev, RecordsTxAndRxFrames) {
  std::vector<Bytes> sent;
  const std::string path = record_link(3, &sent);
  const Bytes f = read_file(path);
  size_t off = 24;
  for (int rec = 0; rec < 6; ++rec) {
    ASSERT_LE(off + 16, f.size());
    const Bytes& want = sent[rec % 3];
    EXPECT_EQ(u32(f, off), rec < 3 ? rec + 1u : 4u) << rec;  // seconds
    EXPECT_EQ(u32(f, off + 8), want.size());
    EXPECT_EQ(u32(f, off + 12), want.size());
    EXPECT_EQ(Bytes(f.begin() + off + 16, f.begin() + off + 16 + want.size()), want) << rec;
    off += 16 + want.size();
  }
  EXPECT_EQ(off, f.size());
  unlink(path.c_str());
}

TEST(PcapNetdev, TcpdumpReadsIt) {
  if (access("/usr/bin/tcpdump", X_OK) != 0 && access("/usr/sbin/tcpdump", X_OK) != 0) {
    GTEST_SKIP() << "tcpdump not installed";
  }
  std::vector<Bytes> sent;
  const std::string path = record_link(5, &sent);
  const std::string cmd = "tcpdump -r '" + path + "' -nn 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char line[512];
  int lines = 0;
  while (fgets(line, sizeof(line), p) != nullptr) {
    out += line;
    ++lines;
  }
  EXPECT_EQ(pclose(p), 0) << out;
  EXPECT_EQ(lines, 10) << out;
  EXPECT_NE(out.find("10.0.0.1.1000 > 10.0.0.2.2000: UDP, length 10"), std::string::npos) << out;
  EXPECT_NE(out.find("10.0.0.1.1000 > 10.0.0.2.2000: Flags [P.]"), std::string::npos) << out;
  unlink(path.c_str());
}

}  // namespace
}  // namespace xmit
