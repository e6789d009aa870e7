// tests/stream/tcp_splice_test.cc — splice()/sendfile()'s two socket calls and the stack's lock:
// Socket::sendmsg_pull() with a source that would block (its wait runs with the lock released,
// so another thread's socket calls go on meanwhile, and the socket is checked again after it),
// and Socket::splice_read() (the peek, the pipe write and the consume in one hold of the lock, so
// another thread's recv() cannot take the same bytes). Also built under ThreadSanitizer (suite
// 'threads').
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "stack/ipv4/iov_iter.h"
#include "tests/stream/tcp_socket_bed.h"

namespace xmit {
namespace {

using namespace testing_bed;  // NOLINT: the bed's fixture and helpers

std::vector<uint8_t> pattern(size_t n, int mul) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * mul + 1);
  return v;
}

// A source that serves its first `ready_pulls` pulls and is then -EAGAIN (a file's pages outside
// the page cache) until its wait() ran, which calls `on_wait` (with the stack's lock released, in
// the sending thread) and then serves the rest (or fails with `wait_err`).
struct SlowSource {
  const std::vector<uint8_t>* data;
  int ready_pulls = 0;
  size_t pos = 0;
  int waits = 0;
  int wait_err = 0;
  size_t pos_at_wait = 0;
  std::function<void()> on_wait;
  static ssize_t pull(void* ctx, void* to, size_t len) {
    auto* s = static_cast<SlowSource*>(ctx);
    if (s->ready_pulls == 0) return -EAGAIN;
    if (s->ready_pulls > 0) --s->ready_pulls;
    size_t n = std::min(len, s->data->size() - s->pos);
    std::memcpy(to, s->data->data() + s->pos, n);
    s->pos += n;
    return static_cast<ssize_t>(n);
  }
  static int wait(void* ctx) {
    auto* s = static_cast<SlowSource*>(ctx);
    ++s->waits;
    s->pos_at_wait = s->pos;
    if (s->on_wait) s->on_wait();
    if (s->wait_err != 0) return s->wait_err;
    s->ready_pulls = -1;  // every pull from now on
    return 0;
  }
};

// Two connections from a to b: (c1, s1) and (c2, s2).
class TcpSpliceTest : public TcpSocketTest {
 protected:
  void two_pairs() {
    connect_pair(&c1, &s1);
    c2 = connect_from_a();
    pump(2'000'000 + 4 * latency_ns);
    ASSERT_EQ(listener->accept(&s2, nullptr, nullptr, SOCK_NONBLOCK), 0);
    ASSERT_NE(s2, nullptr);
  }
  void TearDown() override {
    for (Socket* s : {static_cast<Socket*>(c1), s1, static_cast<Socket*>(c2), s2, static_cast<Socket*>(listener)}) {
      if (s != nullptr) s->put();
    }
  }
  TcpSocket* c1 = nullptr;
  TcpSocket* c2 = nullptr;
  Socket* s1 = nullptr;
  Socket* s2 = nullptr;
};

// sendfile() from a file whose pages must come from slow storage: the sending thread waits for
// them with the stack's lock released, so another thread's send and recv on another connection of
// the same stack complete while the source is still held (before, the read ran under the lock and
// that thread would wait for the disk too). The sender then sends every byte, in order.
TEST_F(TcpSpliceTest, SourceWaitsWithoutTheStackLock) {
  two_pairs();
  const std::vector<uint8_t> data = pattern(8000, 7);  // within the send buffer: no wait for space
  SlowSource slow{.data = &data};
  std::mutex mu;
  std::condition_variable cv;
  bool in_wait = false, release = false;
  slow.on_wait = [&] {
    std::unique_lock<std::mutex> g(mu);
    in_wait = true;
    cv.notify_all();
    cv.wait(g, [&] { return release; });
  };
  PullSource src{.pull = SlowSource::pull, .wait = SlowSource::wait, .ctx = &slow};
  c1->set_nonblock(false);
  ssize_t sent = 0;
  std::thread sender([&] { sent = c1->sendmsg_pull(&src, data.size(), 0); });
  {
    std::unique_lock<std::mutex> g(mu);
    cv.wait(g, [&] { return in_wait; });
  }
  // The source is held. Nothing else holds a's lock now (the bed has no progress thread), so a
  // try_lock() that fails means the sender kept it: the calls below would wait for the source.
  const bool lock_free = a.tcp->mu().try_lock();
  EXPECT_TRUE(lock_free) << "the stack's lock is held while the source waits";
  if (lock_free) {
    a.tcp->mu().unlock();
    // This thread's calls on (c2, s2) go through the same stack.
    EXPECT_EQ(send(c2, "ping", 4), 4);
    std::vector<uint8_t> got2 = read_all(s2, 4);
    EXPECT_EQ(std::string(got2.begin(), got2.end()), "ping");
  }
  EXPECT_EQ(slow.waits, 1);  // still in it
  {
    std::lock_guard<std::mutex> g(mu);
    release = true;
  }
  cv.notify_all();
  sender.join();
  EXPECT_EQ(sent, static_cast<ssize_t>(data.size()));
  EXPECT_EQ(slow.pos, data.size());
  EXPECT_TRUE(read_all(s1, data.size()) == data);
}

// The socket is checked again after the source's wait, as the kernel's next sock_sendmsg() checks
// it: shut down for sending meanwhile, the send ends with what went before the wait (one pull's
// bytes), or EPIPE when nothing had; a source that failed in its wait ends it with its error or
// that count; one that did not ends it with every byte.
struct WaitCase {
  int ready_pulls;
  bool shut;
  int wait_err;
  ssize_t want;  // 0: the bytes pulled before the wait
};

class TcpSpliceWaitTest : public TcpSpliceTest, public ::testing::WithParamInterface<WaitCase> {};

TEST_P(TcpSpliceWaitTest, SocketCheckedAgainAfterTheSourceWaited) {
  const WaitCase& k = GetParam();
  two_pairs();
  const std::vector<uint8_t> data = pattern(40000, 3);  // more than one pull (a 32 KiB page)
  SlowSource slow{.data = &data, .ready_pulls = k.ready_pulls, .wait_err = k.wait_err};
  // Called with the lock released, in this thread: a shutdown() here would deadlock under it.
  if (k.shut) slow.on_wait = [&] { EXPECT_EQ(c1->shutdown(SHUT_WR), 0); };
  PullSource src{.pull = SlowSource::pull, .wait = SlowSource::wait, .ctx = &slow};
  const ssize_t r = c1->sendmsg_pull(&src, data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  EXPECT_EQ(slow.waits, 1);
  if (k.want == 0) {
    EXPECT_GT(slow.pos_at_wait, 0u);
    EXPECT_EQ(r, static_cast<ssize_t>(slow.pos_at_wait));
  } else {
    EXPECT_EQ(r, k.want);
  }
  const size_t n = r > 0 ? static_cast<size_t>(r) : 0;
  bool eof = false;
  std::vector<uint8_t> got = read_all(s1, k.shut ? data.size() : n, &eof);
  EXPECT_TRUE(got == std::vector<uint8_t>(data.begin(), data.begin() + static_cast<ptrdiff_t>(n)));
  EXPECT_EQ(eof, k.shut);
}

INSTANTIATE_TEST_SUITE_P(Cases, TcpSpliceWaitTest,
                         ::testing::Values(WaitCase{1, true, 0, 0}, WaitCase{0, true, 0, -EPIPE},
                                         WaitCase{0, false, -EIO, -EIO}, WaitCase{1, false, -EIO, 0},
                                         WaitCase{0, false, 0, 40000}, WaitCase{1, false, 0, 40000}));

// A sink that takes at most `room` bytes a push (-EAGAIN at 0) and keeps them.
struct VecSink {
  std::vector<uint8_t> got;
  size_t room = SIZE_MAX;
  std::function<void()> on_push;
  static ssize_t push(void* ctx, const void* from, size_t len) {
    auto* v = static_cast<VecSink*>(ctx);
    if (v->on_push) v->on_push();
    if (v->room == 0) return -EAGAIN;
    size_t n = std::min(len, v->room);
    const auto* p = static_cast<const uint8_t*>(from);
    v->got.insert(v->got.end(), p, p + n);
    return static_cast<ssize_t>(n);
  }
};

// splice_read() consumes exactly what the sink took: a full sink is -EAGAIN with nothing consumed,
// a sink that takes 100 bytes leaves the rest for recv(), slot after slot up to `len` otherwise.
TEST_F(TcpSpliceTest, SpliceReadConsumesWhatTheSinkTook) {
  two_pairs();
  const std::vector<uint8_t> data = pattern(10000, 5);
  ASSERT_EQ(send(c1, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  pump(2'000'000);
  VecSink full{.room = 0};
  PushSink sink{.push = VecSink::push, .ctx = &full};
  EXPECT_EQ(s1->splice_read(&sink, 5000, MSG_DONTWAIT), -EAGAIN);
  VecSink part{.room = 100};
  sink.ctx = &part;
  EXPECT_EQ(s1->splice_read(&sink, 5000, MSG_DONTWAIT), 100);
  VecSink all;
  sink.ctx = &all;
  EXPECT_EQ(s1->splice_read(&sink, 9000, MSG_DONTWAIT), 9000);  // 4096 + 4096 + 808
  std::vector<uint8_t> rest = read_all(s1, 900);
  std::vector<uint8_t> joined = part.got;
  joined.insert(joined.end(), all.got.begin(), all.got.end());
  joined.insert(joined.end(), rest.begin(), rest.end());
  EXPECT_TRUE(joined == data);
  EXPECT_EQ(s1->splice_read(&sink, 10, MSG_DONTWAIT), -EAGAIN);  // empty now
}

// Another thread's recv() while splice_read() pushes into the pipe: it cannot run between the push
// and the consume (the kernel's tcp_splice_read() holds lock_sock() across both). The sink, on its
// first push, lets the reader go and waits until the reader either found the stack's lock held
// (then its recv() waits for it) or took bytes. Each byte reaches exactly one of them, in order:
// the sink the first slot, the reader the rest. (With the peek and the consume as two calls, the
// reader found the lock free, took all 8000 bytes, and the sink's 4096 were duplicated.)
TEST_F(TcpSpliceTest, SpliceReadAndRecvNeverTakeTheSameBytes) {
  two_pairs();
  const std::vector<uint8_t> data = pattern(8000, 11);
  ASSERT_EQ(send(c1, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  pump(2'000'000);
  std::mutex mu;
  std::condition_variable cv;
  bool go = false, reported = false, lock_was_held = false;
  std::vector<uint8_t> reader_got;
  std::thread reader([&] {
    {
      std::unique_lock<std::mutex> g(mu);
      cv.wait(g, [&] { return go; });
    }
    StackMutex& sm = b.tcp->mu();
    const bool free = sm.try_lock();
    if (free) sm.unlock();
    uint8_t buf[16384];
    iovec iov{buf, sizeof buf};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    auto recv_all = [&] {
      for (ssize_t r; (r = s1->recvmsg(&m, MSG_DONTWAIT)) > 0;) reader_got.insert(reader_got.end(), buf, buf + r);
    };
    if (free) recv_all();  // the bytes are taken before the report
    {
      std::lock_guard<std::mutex> g(mu);
      reported = true;
      lock_was_held = !free;
    }
    cv.notify_all();
    if (!free) recv_all();  // waits for the lock
  });
  VecSink vs;
  bool first = true;
  vs.on_push = [&] {
    if (!first) return;
    first = false;
    std::unique_lock<std::mutex> g(mu);
    go = true;
    cv.notify_all();
    cv.wait(g, [&] { return reported; });
  };
  PushSink sink{.push = VecSink::push, .ctx = &vs};
  EXPECT_EQ(s1->splice_read(&sink, 4096, MSG_DONTWAIT), 4096);
  reader.join();
  EXPECT_TRUE(lock_was_held);
  EXPECT_TRUE(vs.got == std::vector<uint8_t>(data.begin(), data.begin() + 4096));
  EXPECT_TRUE(reader_got == std::vector<uint8_t>(data.begin() + 4096, data.end()));
}

}  // namespace
}  // namespace xmit
