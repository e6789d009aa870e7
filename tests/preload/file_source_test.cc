// tests/preload/file_source_test.cc — sendfile()'s source (preload/file_source.h) behind a TCP
// socket of the stream bed, over a file whose reads fail from some offset on (a bad sector, a FUSE
// server answering EIO): the send ends short with the bytes before the error, and the next one,
// from there, returns the error — the kernel's splice_direct_to_actor(), which returns what it
// sent before a failing read and the read's error when nothing went. Before, a read that failed
// after part of the read-ahead left that part staged, the next pull found the failed page
// uncached (-EAGAIN) and the read-ahead read the same bytes again, for ever (issue 7).
#include "preload/file_source.h"

#include <errno.h>

#include <utility>
#include <vector>

#include "stack/ipv4/iov_iter.h"
#include "tests/stream/tcp_socket_bed.h"

namespace xmit {
namespace {

using namespace testing_bed;  // NOLINT: the bed's fixture and helpers

// How RWF_NOWAIT reads see the bytes before the bad offset: in the page cache, not in it (every
// one -EAGAIN), or not supported by the file system (-EOPNOTSUPP, FUSE). The failed page is never
// cached: a RWF_NOWAIT read starting there is -EAGAIN, as filemap_read() gives for a folio that
// is not uptodate.
enum class Cache { kCached, kCold, kNoNowait };

// The file: `data`, unreadable from `bad` on. A blocking read returns what lies before `bad`
// (a short count) and -EIO when it starts there. After kGiveUp blocking reads every read is
// -ELOOP, so a source that reads the same bytes again and again ends (and the test fails on its
// count) instead of spinning.
struct FakeFile {
  static constexpr int kGiveUp = 200;
  std::vector<uint8_t> data;
  size_t bad = 0;
  Cache cache = Cache::kCold;
  int blocking_reads = 0;
};
FakeFile* g_file = nullptr;

ssize_t fake_read(int, void* buf, size_t len, off64_t off, int rwf) {
  FakeFile& f = *g_file;
  const size_t o = static_cast<size_t>(off);
  if (rwf & RWF_NOWAIT) {
    if (f.cache == Cache::kNoNowait) return -EOPNOTSUPP;
    if (f.cache == Cache::kCold || o >= f.bad) return o >= f.data.size() ? 0 : -EAGAIN;
  } else if (++f.blocking_reads > FakeFile::kGiveUp) {
    return -ELOOP;
  }
  if (o >= f.data.size()) return 0;
  if (o >= f.bad) return -EIO;
  const size_t n = std::min({len, f.data.size() - o, f.bad - o});
  std::memcpy(buf, f.data.data() + o, n);
  return static_cast<ssize_t>(n);
}

struct ErrCase {
  const char* name;
  Cache cache;
  size_t bad;  // the first byte that cannot be read; the file has 40000
};

void PrintTo(const ErrCase& c, std::ostream* os) { *os << c.name; }

class FileSourceTest : public TcpSocketTest, public ::testing::WithParamInterface<ErrCase> {
 protected:
  void SetUp() override {
    TcpSocketTest::SetUp();
    file.data.resize(40000);  // more than one pull (a 32 KiB page)
    for (size_t i = 0; i < file.data.size(); ++i) file.data[i] = static_cast<uint8_t>(i * 7 + 3);
    file.bad = GetParam().bad;
    file.cache = GetParam().cache;
    g_file = &file;
    connect_pair(&c, &s);
  }
  void TearDown() override {
    for (Socket* k : {static_cast<Socket*>(c), s, static_cast<Socket*>(listener)}) {
      if (k != nullptr) k->put();
    }
    g_file = nullptr;
  }
  // One sendfile() of `count` from `pos` through the socket (as preload/splice.cc's
  // sendfile_to_socket() makes it): the count or -errno, and where the source ended.
  ssize_t sendfile(off64_t pos, size_t count, off64_t* end) {
    FileSource f{.fd = -1, .pos = pos, .read = fake_read};
    PullSource src{.pull = file_pull, .wait = file_wait, .ctx = &f};
    ssize_t r = c->sendmsg_pull(&src, count, MSG_DONTWAIT);
    *end = f.pos;
    return r;
  }
  FakeFile file;
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
};

TEST_P(FileSourceTest, ReadErrorEndsTheSendThenIsTheNextResult) {
  const size_t size = file.data.size();
  const size_t bad = std::min(file.bad, size);
  off64_t end = 0;
  const ssize_t r = sendfile(0, size, &end);
  EXPECT_EQ(r, bad > 0 ? static_cast<ssize_t>(bad) : -EIO);
  EXPECT_EQ(end, static_cast<off64_t>(bad));  // the position moves by what was sent
  EXPECT_LT(file.blocking_reads, 10) << "the read-ahead read the same bytes again and again";
  const std::vector<uint8_t> got = read_all(s, bad);
  EXPECT_TRUE(got == std::vector<uint8_t>(file.data.begin(), file.data.begin() + static_cast<ptrdiff_t>(bad)));
  if (bad == size) return;
  // The next call starts at the failing byte: its error, nothing sent.
  file.blocking_reads = 0;
  EXPECT_EQ(sendfile(static_cast<off64_t>(bad), size - bad, &end), -EIO);
  EXPECT_EQ(end, static_cast<off64_t>(bad));
  EXPECT_LT(file.blocking_reads, 10);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, FileSourceTest,
    ::testing::Values(ErrCase{"ColdAtTheFirstByte", Cache::kCold, 0},
                      ErrCase{"ColdWithinTheFirstPull", Cache::kCold, 1000},
                      ErrCase{"ColdPastAPage", Cache::kCold, 5000},
                      ErrCase{"ColdInTheSecondPull", Cache::kCold, 36000},
                      ErrCase{"ColdNoError", Cache::kCold, 1 << 20},
                      ErrCase{"CachedWithinTheFirstPull", Cache::kCached, 1000},
                      ErrCase{"CachedInTheSecondPull", Cache::kCached, 36000},
                      ErrCase{"CachedNoError", Cache::kCached, 1 << 20},
                      ErrCase{"NoNowaitAtTheFirstByte", Cache::kNoNowait, 0},
                      ErrCase{"NoNowaitWithinTheFirstPull", Cache::kNoNowait, 1000},
                      ErrCase{"NoNowaitInTheSecondPull", Cache::kNoNowait, 36000}),
    [](const ::testing::TestParamInfo<ErrCase>& i) { return std::string(i.param.name); });

// An O_DIRECT file on a disk whose logical blocks are 512 bytes: a read whose offset, length or
// memory is not aligned to them is -EINVAL, as ext4's direct I/O gives; a RWF_NOWAIT read never
// comes (the source reads the kernel's rounds, each a blocking read). Records every read.
struct DirectFile {
  std::vector<uint8_t> data;
  std::vector<std::pair<off64_t, size_t>> reads;
};
DirectFile* g_direct = nullptr;

ssize_t direct_read(int, void* buf, size_t len, off64_t off, int rwf) {
  DirectFile& f = *g_direct;
  EXPECT_EQ(rwf & RWF_NOWAIT, 0) << "an O_DIRECT file read in place, not in the kernel's rounds";
  f.reads.emplace_back(off, len);
  if ((off | static_cast<off64_t>(len) | static_cast<off64_t>(reinterpret_cast<uintptr_t>(buf))) % 512 != 0) {
    return -EINVAL;
  }
  const size_t o = static_cast<size_t>(off);
  if (o >= f.data.size()) return 0;
  const size_t n = std::min(len, f.data.size() - o);
  std::memcpy(buf, f.data.data() + o, n);
  return static_cast<ssize_t>(n);
}

class DirectFileTest : public TcpSocketTest {
 protected:
  void SetUp() override {
    TcpSocketTest::SetUp();
    file.data.resize(300000);
    for (size_t i = 0; i < file.data.size(); ++i) file.data[i] = static_cast<uint8_t>(i * 13 + 1);
    g_direct = &file;
    connect_pair(&c, &s);
    const int sndbuf = 1 << 20;
    ASSERT_EQ(c->setsockopt(SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
  }
  void TearDown() override {
    for (Socket* k : {static_cast<Socket*>(c), s, static_cast<Socket*>(listener)}) {
      if (k != nullptr) k->put();
    }
    g_direct = nullptr;
  }
  // sendfile_to_socket()'s source for an O_DIRECT in_fd; the bytes sent must arrive.
  ssize_t sendfile(off64_t pos, size_t count) {
    file.reads.clear();
    FileSource f{.fd = -1, .pos = pos, .read = direct_read, .nowait = false, .direct = true,
                 .end = pos + static_cast<off64_t>(count)};
    PullSource src{.pull = file_pull, .wait = file_wait, .ctx = &f};
    ssize_t r = c->sendmsg_pull(&src, count, MSG_DONTWAIT);
    const size_t n = r > 0 ? static_cast<size_t>(r) : 0;
    EXPECT_EQ(f.pos, pos + static_cast<off64_t>(n));
    const std::vector<uint8_t> got = read_all(s, n);
    const auto from = file.data.begin() + pos;
    EXPECT_TRUE(got == std::vector<uint8_t>(from, from + static_cast<ptrdiff_t>(n)));
    return r;
  }
  using Reads = std::vector<std::pair<off64_t, size_t>>;
  DirectFile file;
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
};

// The kernel's results on ext4 (tests/e2e/tcp_splice.py, the O_DIRECT lines): rounds of 64 KiB
// from the offset, the round the file system refuses ending the call after the ones before it.
TEST_F(DirectFileTest, ReadInTheKernelsRoundsEachAlignedOrEinval) {
  EXPECT_EQ(sendfile(0, 100000), 65536);  // the second round, 34464 bytes, is not aligned
  EXPECT_EQ(file.reads, (Reads{{0, 65536}, {65536, 34464}}));
  EXPECT_EQ(sendfile(0, 1000), -EINVAL);
  EXPECT_EQ(sendfile(100, 5000), -EINVAL);
  EXPECT_EQ(sendfile(4096, 8192), 8192);
  EXPECT_EQ(file.reads, (Reads{{4096, 8192}}));
  EXPECT_EQ(sendfile(0, 200000), 196608);
  EXPECT_EQ(file.reads, (Reads{{0, 65536}, {65536, 65536}, {131072, 65536}, {196608, 3392}}));
  // At the file's end the last round is short: the count is what the file holds.
  EXPECT_EQ(sendfile(262144, 65536), 300000 - 262144);
}

}  // namespace
}  // namespace xmit
