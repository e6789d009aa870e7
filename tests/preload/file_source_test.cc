// tests/preload/file_source_test.cc — sendfile()'s source (preload/file_source.h) behind a TCP
// socket of the stream bed, over a file whose reads fail from some offset on (a bad sector, a FUSE
// server answering EIO): the send ends short with the bytes before the error, and the next one,
// from there, returns the error — the kernel's splice_direct_to_actor(), which returns what it
// sent before a failing read and the read's error when nothing went. Before, a read that failed
// after part of the read-ahead left that part staged, the next pull found the failed page
// uncached (-EAGAIN) and the read-ahead read the same bytes again, for ever (issue 7).
#include "preload/file_source.h"

#include <errno.h>

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

}  // namespace
}  // namespace xmit
