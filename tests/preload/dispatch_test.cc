// tests/preload/dispatch_test.cc — the interposed functions, linked into this test: passthrough
// fds reach the kernel untouched; offloaded fds reach their Socket; dup/close keep references right;
// -errno from the stack becomes errno.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "preload/fd_table.h"
#include "preload/own_fds.h"

namespace xmit {
namespace {

// A Socket that records what reached it.
class FakeSocket : public Socket {
 public:
  explicit FakeSocket(int* released) : released_(released) {}
  int bind(const sockaddr*, socklen_t) override { return calls.push_back("bind"), -EADDRINUSE; }
  int connect(const sockaddr*, socklen_t, bool nb) override {
    calls.push_back(nb ? "connect-nonblock" : "connect");
    return nb ? -EINPROGRESS : 0;
  }
  int listen(int) override { return calls.push_back("listen"), 0; }
  int accept(Socket**, sockaddr*, socklen_t*, int) override { return calls.push_back("accept"), -EAGAIN; }
  int getname(sockaddr*, socklen_t*, bool peer) override {
    calls.push_back(peer ? "getpeername" : "getsockname");
    return -ENOTCONN;
  }
  int shutdown(int) override { return calls.push_back("shutdown"), 0; }
  int setsockopt(int, int, const void*, socklen_t) override { return calls.push_back("setsockopt"), -ENOPROTOOPT; }
  int getsockopt(int, int, void*, socklen_t*) override { return calls.push_back("getsockopt"), 0; }
  ssize_t sendmsg(const msghdr* msg, int flags) override {
    calls.push_back("sendmsg");
    last_flags = flags;
    size_t n = 0;
    for (size_t i = 0; i < msg->msg_iovlen; ++i) {
      sent.append(static_cast<const char*>(msg->msg_iov[i].iov_base), msg->msg_iov[i].iov_len);
      n += msg->msg_iov[i].iov_len;
    }
    return fail_send ? -EAGAIN : static_cast<ssize_t>(n);
  }
  ssize_t recvmsg(msghdr* msg, int) override {
    calls.push_back("recvmsg");
    if (msg->msg_iovlen == 0 || msg->msg_iov[0].iov_len < 2) return -EINVAL;
    memcpy(msg->msg_iov[0].iov_base, "hi", 2);
    return 2;
  }
  int ioctl(unsigned long req, void* arg) override {
    calls.push_back("ioctl");
    if (req == FIONREAD) *static_cast<int*>(arg) = 42;
    return 0;
  }
  void set_nonblock(bool nb) override { nonblock = nb; }
  void fd_moved(int from, int to) override { moves.push_back({from, to}); }
  int poll_mask(int* wait_fd) override {
    calls.push_back("poll");
    *wait_fd = -1;
    return mask;
  }

  std::vector<std::string> calls;
  std::string sent;
  int last_flags = 0;
  bool fail_send = false;
  bool nonblock = false;
  int mask = POLLOUT | POLLWRNORM;  // writable, nothing to read
  std::vector<std::pair<int, int>> moves;

 protected:
  void release() override { ++*released_; delete this; }

 private:
  int* released_;
};

class Dispatch : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair_), 0);
    sock_ = new FakeSocket(&released_);
    Socket* old = nullptr;
    ASSERT_TRUE(g_fds.install(pair_[0], sock_, &old));
    ASSERT_EQ(old, nullptr);
  }
  void TearDown() override {
    close(pair_[0]);
    close(pair_[1]);
  }
  int pair_[2] = {-1, -1};
  FakeSocket* sock_ = nullptr;
  int released_ = 0;
};

TEST_F(Dispatch, PassthroughFdReachesKernelAndKeepsErrno) {
  ASSERT_EQ(send(pair_[1], "abc", 3, 0), 3);  // pair_[1] is not offloaded
  errno = 12345;
  EXPECT_EQ(write(pair_[1], "d", 1), 1);
  EXPECT_EQ(errno, 12345) << "a successful passthrough call must not touch errno";
  EXPECT_EQ(send(-1, "x", 1, 0), -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_EQ(recv(1 << 30, nullptr, 0, 0), -1) << "beyond the table: still the kernel's answer";
  EXPECT_EQ(errno, EBADF);
  EXPECT_TRUE(sock_->calls.empty());
}

TEST_F(Dispatch, OffloadedFdReachesSocket) {
  EXPECT_EQ(send(pair_[0], "abc", 3, MSG_DONTWAIT), 3);
  EXPECT_EQ(sock_->last_flags, MSG_DONTWAIT);
  EXPECT_EQ(write(pair_[0], "de", 2), 2);
  iovec iov[2] = {{const_cast<char*>("f"), 1}, {const_cast<char*>("gh"), 2}};
  EXPECT_EQ(writev(pair_[0], iov, 2), 3);
  EXPECT_EQ(sock_->sent, "abcdefgh");
  char buf[8];
  EXPECT_EQ(read(pair_[0], buf, sizeof buf), 2);
  EXPECT_EQ(recv(pair_[0], buf, sizeof buf, 0), 2);
  EXPECT_EQ(memcmp(buf, "hi", 2), 0);
  int n = 0;
  EXPECT_EQ(ioctl(pair_[0], FIONREAD, &n), 0);
  EXPECT_EQ(n, 42);
  char none[1];
  ssize_t peer_got = recv(pair_[1], none, 1, MSG_DONTWAIT);
  EXPECT_EQ(peer_got, -1) << "nothing may leak to the kernel socket";
}

TEST_F(Dispatch, NegativeErrnoBecomesErrno) {
  sockaddr_storage ss{};
  EXPECT_EQ(bind(pair_[0], reinterpret_cast<sockaddr*>(&ss), sizeof ss), -1);
  EXPECT_EQ(errno, EADDRINUSE);
  int one = 1;
  EXPECT_EQ(setsockopt(pair_[0], SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one), -1);
  EXPECT_EQ(errno, ENOPROTOOPT);
  sock_->fail_send = true;
  EXPECT_EQ(send(pair_[0], "x", 1, 0), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(accept4(pair_[0], nullptr, nullptr, 0x40000000), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(getpeername(pair_[0], reinterpret_cast<sockaddr*>(&ss), nullptr), -1);
  EXPECT_EQ(errno, ENOTCONN);
}

TEST_F(Dispatch, NonblockFollowsFcntlAndFionbio) {
  int fl = fcntl(pair_[0], F_GETFL);
  ASSERT_EQ(fcntl(pair_[0], F_SETFL, fl | O_NONBLOCK), 0);
  EXPECT_TRUE(sock_->nonblock);
  sockaddr_storage ss{};
  EXPECT_EQ(connect(pair_[0], reinterpret_cast<sockaddr*>(&ss), sizeof ss), -1);
  EXPECT_EQ(errno, EINPROGRESS);
  int off = 0;
  ASSERT_EQ(ioctl(pair_[0], FIONBIO, &off), 0);
  EXPECT_FALSE(sock_->nonblock);
}

TEST_F(Dispatch, DupSharesTheSocketAndCloseReleasesOnLastFd) {
  int d1 = dup(pair_[0]);
  int d2 = fcntl(pair_[0], F_DUPFD_CLOEXEC, 100);
  ASSERT_GE(d1, 0);
  ASSERT_GE(d2, 100);
  EXPECT_EQ(g_fds.peek(d1), sock_);
  EXPECT_EQ(g_fds.peek(d2), sock_);
  int d3 = dup(pair_[1]);  // a passthrough fd dup'ed over nothing
  EXPECT_EQ(g_fds.peek(d3), nullptr);
  // dup2 onto an offloaded fd drops that fd's reference.
  ASSERT_EQ(dup2(pair_[1], d1), d1);
  EXPECT_EQ(g_fds.peek(d1), nullptr);
  EXPECT_EQ(send(d2, "x", 1, 0), 1);
  EXPECT_EQ(sock_->sent, "x");
  close(d2);
  EXPECT_EQ(released_, 0);
  close(d1);
  close(d3);
  close(pair_[0]);
  EXPECT_EQ(released_, 1);
  EXPECT_EQ(g_fds.peek(pair_[0]), nullptr);
}

TEST_F(Dispatch, CloseRangeForgetsOffloadedFds) {
  int d = dup3(pair_[0], 200, O_CLOEXEC);
  ASSERT_EQ(d, 200);
  EXPECT_EQ(g_fds.peek(200), sock_);
  ASSERT_EQ(close_range(200, 210, 0), 0);
  EXPECT_EQ(g_fds.peek(200), nullptr);
  EXPECT_EQ(released_, 0);  // pair_[0] still holds it
  close(pair_[0]);
  EXPECT_EQ(released_, 1);
}

bool fd_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

// xmit's own fds (the AF_XDP socket, netlink, ...) are invisible to the program's close calls;
// the fds around them close as asked.
TEST(OwnFds, CloseCloseRangeAndClosefromLeaveThemOpen) {
  // High numbers, so closefrom() below cannot reach the test runner's own fds.
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  const int own[2] = {510, 520};
  const int other[4] = {505, 515, 525, 530};
  auto place = [&](const int (&fds)[4]) { for (int fd : fds) ASSERT_EQ(dup2(own[0], fd), fd); };
  ASSERT_EQ(dup2(p[0], own[0]), own[0]);
  ASSERT_EQ(dup2(p[1], own[1]), own[1]);
  close(p[0]);
  close(p[1]);
  place(other);
  ASSERT_TRUE(g_own_fds.add(own[0]));
  ASSERT_TRUE(g_own_fds.add(own[1]));

  errno = 0;
  EXPECT_EQ(close(own[0]), -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_TRUE(fd_open(own[0]));

  ASSERT_EQ(close_range(505, 530, 0), 0);
  EXPECT_TRUE(fd_open(own[0]));
  EXPECT_TRUE(fd_open(own[1]));
  for (int fd : other) EXPECT_FALSE(fd_open(fd)) << fd;
  place(other);
  ASSERT_EQ(close_range(510, 520, 0), 0) << "a range that starts and ends on own fds";
  EXPECT_TRUE(fd_open(own[0]));
  EXPECT_TRUE(fd_open(own[1]));
  EXPECT_FALSE(fd_open(515));

  // Bad arguments still get the kernel's EINVAL.
  EXPECT_EQ(close_range(530, 505, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(close_range(505, 530, 0x40), -1);
  EXPECT_EQ(errno, EINVAL);

  place(other);
  ASSERT_EQ(dup2(own[0], 600), 600);
  closefrom(505);
  EXPECT_TRUE(fd_open(own[0]));
  EXPECT_TRUE(fd_open(own[1]));
  for (int fd : other) EXPECT_FALSE(fd_open(fd)) << fd;
  EXPECT_FALSE(fd_open(600));

  g_own_fds.remove(own[0]);
  g_own_fds.remove(own[1]);
  EXPECT_FALSE(g_own_fds.contains(own[0]));
  EXPECT_EQ(close(own[0]), 0);
  EXPECT_EQ(close(own[1]), 0);
}

TEST(OwnFds, SortedAndFull) {
  OwnFds r;
  for (int fd : {40, 7, 19}) ASSERT_TRUE(r.add(fd));
  EXPECT_TRUE(r.add(7)) << "already there";
  int out[OwnFds::kMax];
  ASSERT_EQ(r.sorted(out), 3);
  EXPECT_EQ(out[0], 7);
  EXPECT_EQ(out[1], 19);
  EXPECT_EQ(out[2], 40);
  for (int fd = 100; fd < 100 + OwnFds::kMax - 3; ++fd) ASSERT_TRUE(r.add(fd));
  EXPECT_FALSE(r.add(1000)) << "full";
  EXPECT_FALSE(r.add(0)) << "fd 0 is never xmit's own";
  r.remove(19);
  EXPECT_FALSE(r.contains(19));
  EXPECT_TRUE(r.add(1000));
}

// A forked child empties the table without releasing: the parent's objects are not its to free.
TEST(FdTableFork, AbandonAllForgetsWithoutRelease) {
  FdTable t;
  int released = 0;
  auto* s = new FakeSocket(&released);
  Socket* old = nullptr;
  ASSERT_TRUE(t.install(5, s, &old));
  s->get();
  ASSERT_TRUE(t.install(9000, s, &old));
  EXPECT_EQ(t.abandon_all(), 2);
  EXPECT_EQ(t.peek(5), nullptr);
  EXPECT_EQ(t.peek(9000), nullptr);
  EXPECT_EQ(released, 0);
  s->put();
  s->put();
  EXPECT_EQ(released, 1);
}

// poll() on a set mixing an offloaded fd (readiness from the stack, merged with its kernel
// socket's) and a kernel fd.
TEST_F(Dispatch, PollMergesStackAndKernelReadiness) {
  int k[2];
  ASSERT_EQ(pipe(k), 0);
  pollfd p[3] = {{pair_[0], POLLIN | POLLOUT, 0}, {k[0], POLLIN, 0}, {-1, POLLIN, 0}};
  EXPECT_EQ(poll(p, 3, 0), 1) << "only the offloaded fd's POLLOUT";
  EXPECT_EQ(p[0].revents, POLLOUT);
  EXPECT_EQ(p[1].revents, 0);
  EXPECT_EQ(p[2].revents, 0);

  sock_->mask = POLLIN | POLLRDNORM;  // a datagram queued in the stack, no send space
  ASSERT_EQ(write(k[1], "x", 1), 1);
  EXPECT_EQ(poll(p, 3, 1000), 2);
  EXPECT_EQ(p[0].revents, POLLIN);
  EXPECT_EQ(p[1].revents, POLLIN);

  // The kernel socket's own readiness counts too (here: the peer wrote to the socketpair), but its
  // POLLOUT does not: send space is the stack's.
  sock_->mask = 0;
  char c;
  ASSERT_EQ(read(k[0], &c, 1), 1);
  ASSERT_EQ(::send(pair_[1], "y", 1, 0), 1);
  p[0].events = POLLIN | POLLOUT;
  EXPECT_EQ(poll(p, 1, 1000), 1);
  EXPECT_EQ(p[0].revents, POLLIN);

  // Nothing ready (no send space; the kernel socket's readable byte is not asked for): the
  // timeout runs out and poll returns 0.
  pollfd only_off[1] = {{pair_[0], POLLOUT, 0}};
  EXPECT_EQ(poll(only_off, 1, 20), 0);
  EXPECT_EQ(only_off[0].revents, 0);

  // An error held by the stack is reported whatever was asked.
  sock_->mask = POLLERR;
  only_off[0].events = 0;
  EXPECT_EQ(poll(only_off, 1, 0), 1);
  EXPECT_EQ(only_off[0].revents, POLLERR);
  close(k[0]);
  close(k[1]);
}

TEST_F(Dispatch, SelectThroughTheStack) {
  int k[2];
  ASSERT_EQ(pipe(k), 0);
  ASSERT_EQ(write(k[1], "x", 1), 1);
  sock_->mask = POLLIN | POLLRDNORM;  // readable, not writable
  fd_set r, w;
  FD_ZERO(&r);
  FD_ZERO(&w);
  FD_SET(pair_[0], &r);
  FD_SET(pair_[0], &w);
  FD_SET(k[0], &r);
  int nfds = std::max(pair_[0], k[0]) + 1;
  timeval tv{1, 0};
  EXPECT_EQ(select(nfds, &r, &w, nullptr, &tv), 2);
  EXPECT_TRUE(FD_ISSET(pair_[0], &r));
  EXPECT_FALSE(FD_ISSET(pair_[0], &w));
  EXPECT_TRUE(FD_ISSET(k[0], &r));
  EXPECT_LE(tv.tv_sec, 1) << "the time left is written back";

  // A closed fd in the set fails the whole call with EBADF, as the kernel's select does.
  int gone = dup(k[0]);
  close(gone);
  FD_ZERO(&r);
  FD_SET(pair_[0], &r);
  FD_SET(gone, &r);
  timeval zero{0, 0};
  EXPECT_EQ(select(std::max(pair_[0], gone) + 1, &r, nullptr, nullptr, &zero), -1);
  EXPECT_EQ(errno, EBADF);
  close(k[0]);
  close(k[1]);
}

// epoll: the kernel set decides membership and errnos; the stack's readiness of an offloaded
// member is reported under the program's data, level- or edge-triggered, once with EPOLLONESHOT.
TEST_F(Dispatch, EpollMixesStackAndKernelReadiness) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  int k[2];
  ASSERT_EQ(pipe(k), 0);
  epoll_event ev{EPOLLIN | EPOLLOUT, {}};
  ev.data.u64 = 111;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, pair_[0], &ev), 0);
  EXPECT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, pair_[0], &ev), -1);
  EXPECT_EQ(errno, EEXIST);
  epoll_event kev{EPOLLIN, {}};
  kev.data.u64 = 222;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, k[0], &kev), 0);

  epoll_event out[8];
  sock_->mask = 0;  // no send space, nothing queued; the kernel socket's EPOLLOUT must not show
  EXPECT_EQ(epoll_wait(ep, out, 8, 20), 0);

  sock_->mask = EPOLLIN | EPOLLRDNORM | EPOLLOUT;
  ASSERT_EQ(write(k[1], "x", 1), 1);
  ASSERT_EQ(epoll_wait(ep, out, 8, 1000), 2);
  EXPECT_EQ(out[0].data.u64, 111u);
  EXPECT_EQ(out[0].events, uint32_t{EPOLLIN | EPOLLOUT});
  EXPECT_EQ(out[1].data.u64, 222u);
  EXPECT_EQ(epoll_wait(ep, out, 1, 0), 1) << "level-triggered: again; maxevents respected";

  // Edge-triggered: reported once while the readiness stays, again after it drops and rises.
  ev.events = EPOLLIN | EPOLLET;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_MOD, pair_[0], &ev), 0);
  char c;
  ASSERT_EQ(read(k[0], &c, 1), 1);
  EXPECT_EQ(epoll_wait(ep, out, 8, 0), 1);
  EXPECT_EQ(out[0].events, uint32_t{EPOLLIN});
  EXPECT_EQ(epoll_wait(ep, out, 8, 0), 0);
  sock_->mask = 0;
  EXPECT_EQ(epoll_wait(ep, out, 8, 0), 0);
  sock_->mask = EPOLLIN;
  EXPECT_EQ(epoll_wait(ep, out, 8, 0), 1);

  // One-shot: once, then nothing until EPOLL_CTL_MOD re-arms it.
  ev.events = EPOLLIN | EPOLLONESHOT;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_MOD, pair_[0], &ev), 0);
  EXPECT_EQ(epoll_wait(ep, out, 8, 0), 1);
  EXPECT_EQ(epoll_wait(ep, out, 8, 0), 0);
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_MOD, pair_[0], &ev), 0);
  EXPECT_EQ(epoll_wait(ep, out, 8, 0), 1);

  // The kernel socket's own input (here the socketpair's peer writing) folds into the same event.
  ev.events = EPOLLIN;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_MOD, pair_[0], &ev), 0);
  sock_->mask = 0;
  ASSERT_EQ(::send(pair_[1], "y", 1, 0), 1);
  ASSERT_EQ(epoll_wait(ep, out, 8, 1000), 1);
  EXPECT_EQ(out[0].data.u64, 111u);
  sock_->mask = EPOLLIN;
  ASSERT_EQ(epoll_wait(ep, out, 8, 1000), 1) << "one event for the fd, not one per view";

  // DEL: gone from both views; a second DEL is the kernel's ENOENT.
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_DEL, pair_[0], nullptr), 0);
  EXPECT_EQ(epoll_wait(ep, out, 8, 0), 0);
  EXPECT_EQ(epoll_ctl(ep, EPOLL_CTL_DEL, pair_[0], nullptr), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(epoll_ctl(ep, EPOLL_CTL_MOD, pair_[0], &ev), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(epoll_ctl(k[0], EPOLL_CTL_ADD, pair_[0], &ev), -1) << "not an epoll fd";
  EXPECT_EQ(errno, EINVAL);

  // Closing a member drops it.
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, pair_[0], &ev), 0);
  EXPECT_EQ(epoll_wait(ep, out, 8, 0), 1);
  int keep = pair_[0];
  close(pair_[0]);
  pair_[0] = socket(AF_UNIX, SOCK_DGRAM, 0);  // for TearDown
  EXPECT_EQ(epoll_wait(ep, out, 8, 0), 0) << "fd " << keep << " closed";

  // Its number reused by a kernel file the program adds with its own data: the set reports that
  // registration as the program made it (the closed member's events and data are not put back
  // on it).
  int fd2 = socket(AF_UNIX, SOCK_DGRAM, 0);
  ASSERT_GE(fd2, 0);
  auto* s2 = new FakeSocket(&released_);
  Socket* old = nullptr;
  ASSERT_TRUE(g_fds.install(fd2, s2, &old));
  s2->mask = EPOLLIN;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fd2, &ev), 0);
  ASSERT_EQ(epoll_wait(ep, out, 8, 0), 1);
  EXPECT_EQ(out[0].data.u64, 111u);
  close(fd2);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_EQ(dup2(p[0], fd2), fd2);
  epoll_event rev{EPOLLIN, {}};
  rev.data.u64 = 333;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fd2, &rev), 0);
  ASSERT_EQ(write(p[1], "z", 1), 1);
  ASSERT_EQ(epoll_wait(ep, out, 8, 1000), 1);
  EXPECT_EQ(out[0].data.u64, 333u);
  EXPECT_EQ(out[0].events, uint32_t{EPOLLIN});
  ASSERT_EQ(epoll_wait(ep, out, 8, 0), 1) << "level-triggered, still the program's registration";
  EXPECT_EQ(out[0].data.u64, 333u);
  close(fd2);
  close(p[0]);
  close(p[1]);
  close(ep);
  close(k[0]);
  close(k[1]);
}

// dup, then close of the first fd: the socket is told which fd reaches its kernel socket now.
TEST_F(Dispatch, CloseOfOneDupMovesTheSocketToAnother) {
  int d = dup(pair_[0]);
  ASSERT_GE(d, 0);
  int first = pair_[0];
  ASSERT_EQ(close(first), 0);
  ASSERT_EQ(sock_->moves.size(), 1u);
  EXPECT_EQ(sock_->moves[0], std::make_pair(first, d));
  EXPECT_EQ(released_, 0);
  // dup2 over the last fd naming it: released, no move (nothing names it).
  int other = socket(AF_UNIX, SOCK_DGRAM, 0);
  ASSERT_EQ(dup2(other, d), d);
  EXPECT_EQ(released_, 1);
  close(other);
  close(d);
  pair_[0] = socket(AF_UNIX, SOCK_DGRAM, 0);  // for TearDown
}

TEST_F(Dispatch, SendmmsgStopsAtFirstErrorAndReportsCount) {
  char a[] = "aa", b[] = "bbb";
  iovec ia{a, 2}, ib{b, 3};
  mmsghdr v[2] = {};
  v[0].msg_hdr.msg_iov = &ia;
  v[0].msg_hdr.msg_iovlen = 1;
  v[1].msg_hdr.msg_iov = &ib;
  v[1].msg_hdr.msg_iovlen = 1;
  EXPECT_EQ(sendmmsg(pair_[0], v, 2, 0), 2);
  EXPECT_EQ(v[0].msg_len, 2u);
  EXPECT_EQ(v[1].msg_len, 3u);
  sock_->fail_send = true;
  EXPECT_EQ(sendmmsg(pair_[0], v, 2, 0), -1);
  EXPECT_EQ(errno, EAGAIN);
}

TEST(FdTable, InstallRemovePeekBounds) {
  FdTable t;
  int released = 0;
  auto* s = new FakeSocket(&released);
  Socket* old = reinterpret_cast<Socket*>(1);
  EXPECT_FALSE(t.install(-1, s, &old));
  EXPECT_FALSE(t.install(FdTable::kMaxFd, s, &old));
  EXPECT_EQ(t.peek(-5), nullptr);
  EXPECT_EQ(t.peek(FdTable::kMaxFd + 7), nullptr);
  ASSERT_TRUE(t.install(FdTable::kMaxFd - 1, s, &old));
  EXPECT_EQ(old, nullptr);
  EXPECT_EQ(t.peek(FdTable::kMaxFd - 1), s);
  EXPECT_EQ(t.peek(FdTable::kMaxFd - 2), nullptr);
  EXPECT_EQ(t.remove(FdTable::kMaxFd - 1), s);
  EXPECT_EQ(t.remove(FdTable::kMaxFd - 1), nullptr);
  s->put();
  EXPECT_EQ(released, 1);
}

}  // namespace
}  // namespace xmit
