// tests/preload/nowait_pipe_test.cc — NowaitPipe: splice()'s pipe reads and writes under the stack's
// lock never block, whatever the fd's O_NONBLOCK (left as it was): an empty pipe or FIFO reads
// -EAGAIN, a full one writes -EAGAIN, on pipe(2)'s pipes (RWF_NOWAIT) and on FIFOs opened O_RDWR,
// O_RDONLY or O_WRONLY (a second non-blocking open); bytes pass unchanged. Before, splice() from an
// O_RDWR FIFO read() it under the lock: a FIFO another reader had emptied blocked every thread.
#include "preload/nowait_pipe.h"

#include <signal.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace xmit {
namespace {

class NowaitPipeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/xmit-nowait-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fifo_ = dir_ + "/fifo";
    ASSERT_EQ(mkfifo(fifo_.c_str(), 0600), 0);
  }
  void TearDown() override {
    for (int fd : fds_) close(fd);
    unlink(fifo_.c_str());
    rmdir(dir_.c_str());
  }
  int keep(int fd) {
    EXPECT_GE(fd, 0);
    fds_.push_back(fd);
    return fd;
  }
  static bool blocking(int fd) { return (fcntl(fd, F_GETFL) & O_NONBLOCK) == 0; }
  // Fills the pipe through `w` (blocking fd) to the last byte: -EAGAIN then.
  static size_t fill(NowaitPipe& w) {
    std::vector<char> page(4096, 'f');
    size_t n = 0;
    for (ssize_t r; (r = w.io(page.data(), page.size())) > 0;) n += static_cast<size_t>(r);
    EXPECT_EQ(w.io(page.data(), 1), -EAGAIN);
    return n;
  }
  std::string dir_, fifo_;
  std::vector<int> fds_;
};

TEST_F(NowaitPipeTest, AnonymousPipe) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  keep(p[0]), keep(p[1]);
  NowaitPipe r(p[0], false), w(p[1], true);
  char buf[16];
  EXPECT_EQ(r.io(buf, sizeof buf), -EAGAIN);
  EXPECT_EQ(w.io(const_cast<char*>("hello"), 5), 5);
  EXPECT_EQ(r.io(buf, sizeof buf), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
  EXPECT_EQ(fill(w), 65536u);
  EXPECT_TRUE(blocking(p[0]) && blocking(p[1]));
}

// The defect's case: splice() from a FIFO opened O_RDWR that is empty by the time it reads.
TEST_F(NowaitPipeTest, FifoOpenedReadWrite) {
  int f = keep(open(fifo_.c_str(), O_RDWR));
  NowaitPipe r(f, false), w(f, true);
  char buf[16];
  EXPECT_EQ(r.io(buf, sizeof buf), -EAGAIN);
  EXPECT_EQ(w.io(const_cast<char*>("abc"), 3), 3);
  EXPECT_EQ(r.io(buf, 2), 2);
  EXPECT_EQ(r.io(buf + 2, sizeof buf), 1);
  EXPECT_EQ(std::string(buf, 3), "abc");
  EXPECT_EQ(r.io(buf, sizeof buf), -EAGAIN);
  EXPECT_EQ(fill(w), 65536u);
  EXPECT_TRUE(blocking(f));
}

TEST_F(NowaitPipeTest, FifoReadOnlyAndWriteOnly) {
  int rfd = keep(open(fifo_.c_str(), O_RDONLY | O_NONBLOCK));
  int wfd = keep(open(fifo_.c_str(), O_WRONLY));
  ASSERT_EQ(fcntl(rfd, F_SETFL, 0), 0);  // both blocking now
  NowaitPipe r(rfd, false), w(wfd, true);
  char buf[16];
  EXPECT_EQ(r.io(buf, sizeof buf), -EAGAIN);
  EXPECT_EQ(fill(w), 65536u);
  EXPECT_EQ(r.io(buf, sizeof buf), static_cast<ssize_t>(sizeof buf));
  EXPECT_TRUE(blocking(rfd) && blocking(wfd));
}

// Writing to a pipe whose readers are gone is EPIPE with SIGPIPE to the writing thread (kernel:
// pipe_write()'s send_sig(SIGPIPE, current, 0)), held pending while the thread blocks it, as
// splice.cc's socket -> pipe does around the write under the stack's lock. A FIFO's write side
// is written through a second open, which finds no reader (ENXIO) when the last one left after the
// caller's wait for space: before, that gave EPIPE without the signal (issue 7).
class NowaitPipeSigpipeTest : public NowaitPipeTest {
 protected:
  void SetUp() override {
    NowaitPipeTest::SetUp();
    sigset_t pipe_sig;
    sigemptyset(&pipe_sig);
    sigaddset(&pipe_sig, SIGPIPE);
    ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &pipe_sig, &old_mask_), 0);
    ASSERT_FALSE(take_sigpipe()) << "a SIGPIPE was pending before the test";
  }
  void TearDown() override {
    (void)take_sigpipe();
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    NowaitPipeTest::TearDown();
  }
  // Whether a SIGPIPE was pending (for this thread or the process); takes it.
  static bool take_sigpipe() {
    sigset_t pipe_sig;
    sigemptyset(&pipe_sig);
    sigaddset(&pipe_sig, SIGPIPE);
    const timespec now{0, 0};
    return sigtimedwait(&pipe_sig, nullptr, &now) == SIGPIPE;
  }
  sigset_t old_mask_;
};

TEST_F(NowaitPipeSigpipeTest, AnonymousPipeWithoutReaders) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  keep(p[1]);
  close(p[0]);
  NowaitPipe w(p[1], true);
  EXPECT_EQ(w.io(const_cast<char*>("x"), 1), -EPIPE);
  EXPECT_TRUE(take_sigpipe());
}

TEST_F(NowaitPipeSigpipeTest, FifoWhoseReaderLeft) {
  int rfd = open(fifo_.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(rfd, 0);
  int wfd = keep(open(fifo_.c_str(), O_WRONLY));
  close(rfd);  // after the caller saw room: the last reader goes
  NowaitPipe w(wfd, true);
  EXPECT_EQ(w.io(const_cast<char*>("x"), 1), -EPIPE);
  EXPECT_TRUE(take_sigpipe()) << "EPIPE without SIGPIPE";
  EXPECT_TRUE(blocking(wfd));
}

// The second open made while a reader was there: the kernel's own EPIPE and SIGPIPE on it.
TEST_F(NowaitPipeSigpipeTest, FifoWhoseReaderLeftAfterTheSecondOpen) {
  int rfd = open(fifo_.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(rfd, 0);
  int wfd = keep(open(fifo_.c_str(), O_WRONLY));
  NowaitPipe w(wfd, true);
  EXPECT_EQ(w.io(const_cast<char*>("x"), 1), 1);
  close(rfd);
  EXPECT_EQ(w.io(const_cast<char*>("x"), 1), -EPIPE);
  EXPECT_TRUE(take_sigpipe());
}

}  // namespace
}  // namespace xmit
