// tests/stream/tcp_doorbell_test.cc — the frames one look at the stack sends (a socket's
// poll_mask(), recvmsg(), accept(): TcpSocket::poll_stack()) reach the device under xmit_more and
// leave with one doorbell (flush_tx()) at its end, as a NAPI poll's bulk does, instead of one
// doorbell each; nothing is left held once the look returns; a scan over many sockets looks once.
#include "tests/dev/forwarding_netdev.h"
#include "tests/stream/tcp_socket_bed.h"

namespace xmit {
namespace testing_bed {
namespace {

// A device in front of b's end of the link that counts frames handed over with and without
// xmit_more, and the doorbells rung for held frames.
class DoorbellTap final : public ForwardingNetdev {
 public:
  using ForwardingNetdev::ForwardingNetdev;
  int xmit(absl::Span<const TxFrame> frames) override {
    int n = in_->xmit(frames);
    if (n > 0) {
      if (more_) {
        held += n;
        pending += n;
      } else {
        rung += n;  // a doorbell each
      }
    }
    return n;
  }
  void flush_tx() override {
    if (pending > 0) ++doorbells;
    pending = 0;
    in_->flush_tx();
  }
  void set_xmit_more(bool on) override {
    more_ = on;
    in_->set_xmit_more(on);
  }
  bool xmit_more() const override { return more_; }

  int rung = 0;       // frames handed over without xmit_more: one doorbell each
  int held = 0;       // frames handed over under xmit_more
  int pending = 0;    // held frames no flush_tx() has rung for yet
  int doorbells = 0;  // flush_tx() calls that rang for held frames

 private:
  bool more_ = false;
};

class TcpDoorbellTest : public TcpSocketTest {
 protected:
  void SetUp() override {
    cfg.ifindex_a = cfg.ifindex_b = FakeFib::kIfindex;
    cfg.features = NetdevFeatures{.max_segs = 16, .mtu = 1500, .max_frame = 1514};
    cfg.steering = false;
    cfg.latency_ns = latency_ns;
    link = std::make_unique<SimLink>(cfg);
    tap = std::make_unique<DoorbellTap>(&link->b());
    a.init(&link->a(), kA, kB, cfg.mac_b);
    b.init(tap.get(), kB, kA, cfg.mac_a);
  }
  void TearDown() override {
    b.tcp.reset();  // b's instance before the tap it sends through (a member of this class)
    b.udp.reset();
  }
  // Moves the clock and the wire, polling a's stack only: b's frames wait on its device.
  void pump_a(uint64_t ns) {
    for (uint64_t t = 0; t < ns; t += 50'000) {
      g_now += 50'000;
      link->run(g_now);
      std::lock_guard<StackMutex> g(a.udp->mu());
      a.udp->poll(g_now);
    }
  }
  std::unique_ptr<DoorbellTap> tap;
};

TEST_F(TcpDoorbellTest, SynAcksOfOneLookLeaveWithOneDoorbell) {
  listen_on_b();
  constexpr int kClients = 5;
  TcpSocket* c[kClients];
  for (TcpSocket*& s : c) s = connect_from_a();
  pump_a(4 * latency_ns);  // the SYNs wait on b's device
  ASSERT_EQ(tap->rung + tap->held, 0);

  int wfd = -1;
  (void)listener->poll_mask(&wfd);  // b's look: 5 SYNs in, 5 SYN-ACKs out
  EXPECT_EQ(tap->held, kClients);
  EXPECT_EQ(tap->rung, 0) << "no doorbell per SYN-ACK";
  EXPECT_EQ(tap->doorbells, 1);
  EXPECT_EQ(tap->pending, 0) << "nothing held once the look returned";

  // Every handshake completes and each child can be accepted.
  pump(2'000'000);
  for (TcpSocket* s : c) {
    EXPECT_TRUE(s->poll_mask(&wfd) & POLLOUT);
    EXPECT_EQ(so_error(s), 0);
  }
  for (int i = 0; i < kClients; ++i) {
    Socket* child = nullptr;
    ASSERT_EQ(listener->accept(&child, nullptr, nullptr, SOCK_NONBLOCK), 0);
    child->put();
  }
  for (TcpSocket* s : c) s->put();
  listener->put();
  pump(2'000'000);
}

TEST_F(TcpDoorbellTest, AcksOfOneLookLeaveWithOneDoorbellAndTheDataArrives) {
  TcpSocket* client = nullptr;
  Socket* child = nullptr;
  connect_pair(&client, &child);  // client on a, child on b
  // Quick ACK mode: b answers each of a's segments at once. Four writes in flight (Nagle off).
  int one = 1;
  ASSERT_EQ(client->setsockopt(IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
  ASSERT_EQ(child->setsockopt(IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one), 0);
  const int rung0 = tap->rung, held0 = tap->held, bells0 = tap->doorbells;
  char buf[100];
  std::memset(buf, 'x', sizeof buf);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(send(client, buf, sizeof buf), 100);
  pump_a(4 * latency_ns);
  int wfd = -1;
  EXPECT_TRUE(child->poll_mask(&wfd) & POLLIN);
  EXPECT_EQ(tap->rung, rung0) << "no doorbell per ACK";
  EXPECT_GE(tap->held - held0, 1);
  EXPECT_EQ(tap->doorbells - bells0, 1);
  EXPECT_EQ(tap->pending, 0);
  EXPECT_EQ(read_all(child, 400).size(), 400u);
  client->put();
  child->put();
  listener->put();
  pump(2'000'000);
}

// One look per scan (Socket::poll_mask_scan(), as poll() and epoll_wait() call it): the first
// member's look moves what arrived into every socket's queue, the others only read their mask.
TEST_F(TcpDoorbellTest, OneLookPerScanAndTheLaterMembersSeeWhatItMoved) {
  TcpSocket* client = nullptr;
  Socket* child = nullptr;
  connect_pair(&client, &child);  // client on a, child on b
  char buf[100];
  std::memset(buf, 'x', sizeof buf);
  ASSERT_EQ(send(client, buf, sizeof buf), 100);
  pump_a(4 * latency_ns);  // the data waits on b's device
  const uint64_t looks0 = b.udp->polls.load();
  Socket::PollScan scan;
  int wfd = -1;
  EXPECT_FALSE(listener->poll_mask_scan(&wfd, &scan) & POLLIN);  // the look: the data to child's queue
  EXPECT_TRUE(child->poll_mask_scan(&wfd, &scan) & POLLIN);
  EXPECT_TRUE(child->poll_mask_scan(&wfd, &scan) & POLLOUT);
  EXPECT_EQ(b.udp->polls.load() - looks0, 1u) << "one look for the scan, not one per member";
  Socket::PollScan next;  // a new scan looks again
  EXPECT_TRUE(child->poll_mask_scan(&wfd, &next) & POLLIN);
  EXPECT_EQ(b.udp->polls.load() - looks0, 2u);
  EXPECT_EQ(read_all(child, 100).size(), 100u);
  client->put();
  child->put();
  listener->put();
}

}  // namespace
}  // namespace testing_bed
}  // namespace xmit
