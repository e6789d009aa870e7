// tests/stream/tcp_sockopt_clone_test.cc — what a socket starts with and what an accepted child
// inherits (stack/sock/sockopt_clone.h, TcpSocket::accept()/adopt_fd()): a new socket's
// SO_BUSY_POLL is net.core.busy_read as the stack knows it, not read back from its kernel socket;
// a listener's recorded options are a snapshot its children share; a child's kernel socket gets
// them in the listener's order, without the stack's lock held, and the stack's side mirrors them.
#include <utility>
#include <vector>

#include "stack/udp/udp_sock.h"
#include "tests/stream/tcp_socket_bed.h"

namespace xmit {
namespace testing_bed {
namespace {

// The shadow's option calls: fd, level, name, the int value set (getsockopt: -1), and whether the
// calling thread held a stack's lock at the time.
struct OptCall {
  int fd, level, name, val;
  bool locked;
};

class RecordingShadow : public FakeShadow {
 public:
  using FakeShadow::FakeShadow;
  std::vector<OptCall> calls;
  int setsockopt(int fd, int level, int name, const void* v, socklen_t l) override {
    int val = 0;
    std::memcpy(&val, v, std::min<size_t>(l, sizeof val));
    calls.push_back({fd, level, name, val, StackMutex::held_by_this_thread()});
    return FakeShadow::setsockopt(fd, level, name, v, l);
  }
  int getsockopt(int fd, int level, int name, void* v, socklen_t* l) override {
    calls.push_back({fd, level, name, -1, StackMutex::held_by_this_thread()});
    if (level == SOL_SOCKET && (name == SO_BUSY_POLL || name == SO_PREFER_BUSY_POLL)) {
      const int zero = 0;  // a kernel socket made under net.core.busy_read 0
      std::memcpy(v, &zero, sizeof zero);
      *l = sizeof zero;
      return 0;
    }
    return FakeShadow::getsockopt(fd, level, name, v, l);
  }
};

TEST(SockOptRef, ACopySharesTheRecordAndASetMakesTheNextSnapshot) {
  const int lowat = 7, nodelay = 1;
  SockOptRef listener;
  EXPECT_TRUE(listener.empty());
  listener.noted(SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
  SockOptRef child = listener;  // accept(): a reference, not a copy
  EXPECT_EQ(child.get(), listener.get());
  listener.noted(IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
  EXPECT_NE(child.get(), listener.get());
  ASSERT_EQ(child.get()->end() - child.get()->begin(), 1);  // the child's snapshot is unchanged
  EXPECT_EQ(child.get()->begin()->name, SO_RCVLOWAT);
  ASSERT_EQ(listener.get()->end() - listener.get()->begin(), 2);
  EXPECT_EQ(listener.get()->begin()[1].name, TCP_NODELAY);
  listener.reset();
  EXPECT_EQ(child.get()->begin()->name, SO_RCVLOWAT);  // still held by the child
}

class TcpSockOptCloneTest : public TcpSocketTest {
 protected:
  TcpSockOptCloneTest() { a.busy_read = b.busy_read = 25; }
  void SetUp() override {
    TcpSocketTest::SetUp();
    for (End* e : {&a, &b}) {
      auto* r = new RecordingShadow(e == &a ? kA : kB);
      r->clock = test_clock;
      e->shadow.reset(r);
    }
  }
  RecordingShadow* shadow(End& e) { return static_cast<RecordingShadow*>(e.shadow.get()); }
};

// kernel: sock_init_data(): sk_ll_usec = net.core.busy_read. The stack knows it: socket() asks the
// kernel socket nothing for it.
TEST_F(TcpSockOptCloneTest, NewSocketsStartWithBusyReadWithoutAskingTheKernel) {
  TcpSocket* t = a.socket();
  auto* u = new UdpSock(a.udp.get(), a.shadow.get(), 4, /*nonblock=*/true);
  EXPECT_EQ(t->busy_poll_usec(), 25u);
  EXPECT_EQ(u->busy_poll_usec(), 25u);
  for (const OptCall& c : shadow(a)->calls) EXPECT_FALSE(c.level == SOL_SOCKET && c.name == SO_BUSY_POLL);
  int v = 0;
  socklen_t l = sizeof v;
  ASSERT_EQ(t->getsockopt(SOL_SOCKET, SO_BUSY_POLL, &v, &l), 0);
  EXPECT_EQ(v, 25);
  t->put();
  u->put();
}

TEST_F(TcpSockOptCloneTest, ChildFdGetsTheListenersSnapshotOutsideTheLock) {
  listen_on_b();
  const int lowat = 7, sndbuf = 10000, tos = 0x10, nodelay = 1, bp = 40;
  ASSERT_EQ(listener->setsockopt(SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat), 0);
  ASSERT_EQ(listener->setsockopt(SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
  ASSERT_EQ(listener->setsockopt(SOL_IP, IP_TOS, &tos, sizeof tos), 0);
  ASSERT_EQ(listener->setsockopt(IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay), 0);
  ASSERT_EQ(listener->setsockopt(SOL_SOCKET, SO_BUSY_POLL, &bp, sizeof bp), 0);
  TcpSocket* client = connect_from_a();
  pump(2'000'000 + 4 * latency_ns);
  Socket* child = nullptr;
  ASSERT_EQ(listener->accept(&child, nullptr, nullptr, SOCK_NONBLOCK), 0);
  ASSERT_NE(child, nullptr);
  // Set on the listener after the kernel would have cloned the child: not the child's.
  const int lowat2 = 9;
  ASSERT_EQ(listener->setsockopt(SOL_SOCKET, SO_RCVLOWAT, &lowat2, sizeof lowat2), 0);
  shadow(b)->calls.clear();
  child->adopt_fd(5);
  std::vector<std::pair<int, int>> set;  // (name, value) set on fd 5, in order
  for (const OptCall& c : shadow(b)->calls) {
    EXPECT_EQ(c.fd, 5);
    EXPECT_FALSE(c.locked) << "level " << c.level << " name " << c.name;
    if (c.val != -1) set.emplace_back(c.name, c.val);
  }
  EXPECT_EQ(set, (std::vector<std::pair<int, int>>{{SO_RCVLOWAT, 7}, {SO_SNDBUF, 10000}, {IP_TOS, 0x10},
                                                   {TCP_NODELAY, 1}, {SO_BUSY_POLL, 40}}));
  // The stack's side: SO_SNDBUF as the kernel socket reports it (doubled), SO_BUSY_POLL inherited.
  int v = 0;
  socklen_t l = sizeof v;
  ASSERT_EQ(child->getsockopt(SOL_SOCKET, SO_SNDBUF, &v, &l), 0);
  EXPECT_EQ(v, 20000);
  ASSERT_EQ(child->getsockopt(SOL_SOCKET, SO_BUSY_POLL, &v, &l), 0);
  EXPECT_EQ(v, 40);
  child->put();
  client->put();
  listener->put();
}

}  // namespace
}  // namespace testing_bed
}  // namespace xmit
