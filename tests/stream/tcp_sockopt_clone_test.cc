// tests/stream/tcp_sockopt_clone_test.cc — what a socket starts with and what an accepted child
// inherits: a new socket's SO_BUSY_POLL is net.core.busy_read as the stack knows it, not read back
// from its kernel socket.
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

}  // namespace
}  // namespace testing_bed
}  // namespace xmit
