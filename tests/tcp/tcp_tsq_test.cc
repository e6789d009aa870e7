// tests/tcp/tcp_tsq_test.cc — the protocol's half of autocorking: what a segment at the device costs
// its socket (sk_wmem_alloc, the kernel's truesize), tcp_should_autocork()'s conditions in
// tcp_push(), and the completion that queues the socket for tcp_tsq_write(). The bed's device holds
// each segment until complete(). MSS 1448, size_goal 65160 (TSO), cwnd 10, TCP_NODELAY.
#include <sys/socket.h>

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tcp/tcp_bed.h"

namespace xmit::testing_tcp {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

struct HeldBed : TcpBed {
  HeldBed() {
    hold = true;
    attach_tsq();
    nodelay(true);
  }
};

// Each segment at the device is charged its skb's truesize (1280 + payload, tcp_tsq.h) until its
// completion; the charge of a clone is the original's at the time it was sent.
TEST(TcpTsq, SegmentsAtTheDeviceAreChargedTheirTruesize) {
  HeldBed bed;
  bed.send(100);
  EXPECT_EQ(tcp_wmem_alloc_get(&bed.tp), 1380u);
  bed.send(2000);  // the rtx queue is busy and 1381 > 1280 + 2000 is false: it goes
  EXPECT_EQ(tcp_wmem_alloc_get(&bed.tp), 1380u + 3280u);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 100, kAckPsh, 1, 0}, Seg{100, 2000, kAckPsh, 2, 1448}));
  bed.complete();
  EXPECT_EQ(tcp_wmem_alloc_get(&bed.tp), 0u);
}

// tcp_push(): a tail below size_goal, a busy retransmit queue and more truesize at the device than
// the tail's: held (TSQF_THROTTLED). Writes join it; the completion queues the socket once
// (TSQF_QUEUED) and the TSQ handler sends the tail, with no ACK in between.
TEST(TcpTsq, CompletionSendsWhatAutocorkHeld) {
  HeldBed bed;
  LinuxMib mib;
  bed.tp.net_mib = &mib;
  bed.send(1000);
  bed.send(10);
  bed.send(10);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 1000, kAckPsh, 1, 0}));
  EXPECT_EQ(bed.tp.sk_tsq_flags, TSQF_THROTTLED);
  EXPECT_EQ(mib.TCPAutoCorking, 1u);
  for (sk_buff* skb : std::exchange(bed.held, {})) kfree_skb(skb);  // the completion alone
  EXPECT_EQ(bed.tp.sk_tsq_flags, TSQF_QUEUED);
  EXPECT_EQ(bed.tsq.head, &bed.tp);
  EXPECT_THAT(bed.take(), IsEmpty());
  bed.complete();  // the owner's TSQ handler
  EXPECT_EQ(bed.tp.sk_tsq_flags, 0);
  EXPECT_EQ(bed.tsq.head, nullptr);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{1000, 20, kAckPsh, 1, 0}));
}

// tcp_skb_can_collapse_to(): an MSG_EOR tail gets no more data, so waiting for it is futile.
TEST(TcpTsq, EorTailIsNotHeld) {
  HeldBed bed;
  bed.send(1000);
  bed.send(10, MSG_EOR);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 1000, kAckPsh, 1, 0}, Seg{1000, 10, kAckPsh, 1, 0}));
  EXPECT_EQ(bed.tp.sk_tsq_flags, 0);
}

// net.ipv4.tcp_autocorking = 0, and a socket no owner runs the TSQ handler for: nothing is held.
TEST(TcpTsq, OffOrWithoutAnOwnerNothingIsHeld) {
  for (int variant = 0; variant < 2; ++variant) {
    HeldBed bed;
    if (variant == 0) bed.tp.sysctl_tcp_autocorking = false;
    if (variant == 1) bed.tp.tsq = nullptr;
    bed.send(1000);
    bed.send(10);
    EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 1000, kAckPsh, 1, 0}, Seg{1000, 10, kAckPsh, 1, 0})) << variant;
  }
}

// A pure ACK at the device is charged 2 bytes (skb_set_tcp_pure_ack()), not an skb's 1280.
TEST(TcpTsq, PureAckIsChargedTwoBytes) {
  HeldBed bed;
  tcp_send_ack(&bed.tp, [&bed](sk_buff* s) { return bed.xmit(s); });
  EXPECT_EQ(tcp_wmem_alloc_get(&bed.tp), 2u);
  bed.complete();
  EXPECT_EQ(tcp_wmem_alloc_get(&bed.tp), 0u);
}

// sk_free(): a socket freed with segments at the device is destroyed by the last completion.
TEST(TcpTsq, FreedSocketIsDestroyedAtItsLastCompletion) {
  HeldBed bed;
  int destroyed = 0;
  bed.tsq.owner = &destroyed;
  bed.tsq.sk_destruct = [](tsq_tasklet* t, tcp_sock*) { ++*static_cast<int*>(t->owner); };
  bed.send(1000);
  bed.send(10);  // held: the socket is throttled
  EXPECT_FALSE(tcp_sk_free(&bed.tp));
  EXPECT_EQ(bed.tp.sk_tsq_flags, 0);
  bed.complete();
  EXPECT_EQ(destroyed, 1);
  EXPECT_EQ(bed.tsq.head, nullptr);  // not queued: it is gone
}

}  // namespace
}  // namespace xmit::testing_tcp
