// tests/tcp/tcp_sendmsg_test.cc — segment boundaries from sequences of sends under Nagle, NODELAY,
// MSG_MORE, TCP_CORK and MSG_EOR, and tcp_write_xmit()'s window and cwnd limits. MSS 1448
// (MTU 1500, timestamps), size_goal 65160, cwnd 10, a 1 MiB window unless a test says otherwise.
// Each expectation says which kernel rule produces it.
#include <sys/socket.h>

#include <algorithm>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tcp/tcp_bed.h"

namespace xmit::testing_tcp {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Nagle (Minshall): a small segment goes when nothing is in flight; the next small one waits
// until the first is acked (tcp_nagle_check(): nonagle == 0, packets_out, snd_sml unacked).
TEST(TcpSendmsg, NagleHoldsSecondSmallSegment) {
  TcpBed bed;
  EXPECT_EQ(bed.send(100), 100);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 100, kAckPsh, 1, 0}));
  EXPECT_EQ(bed.send(100), 100);
  EXPECT_THAT(bed.take(), IsEmpty());
  EXPECT_EQ(bed.send(100), 100);  // appended to the held skb (room up to size_goal)
  EXPECT_THAT(bed.take(), IsEmpty());
  bed.ack_all();
  bed.push();
  EXPECT_THAT(bed.take(), ElementsAre(Seg{100, 200, kAckPsh, 1, 0}));
  EXPECT_EQ(bed.tp.snd_nxt, kIsn + 300);
}

// TCP_NODELAY: nonagle == TCP_NAGLE_OFF, so tcp_nagle_check() never holds a partial segment.
TEST(TcpSendmsg, NodelaySendsEach) {
  TcpBed bed;
  bed.nodelay(true);
  bed.send(100);
  bed.send(100);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 100, kAckPsh, 1, 0}, Seg{100, 100, kAckPsh, 1, 0}));
}

// MSG_MORE: tcp_push() neither marks PSH nor sends past TCP_NAGLE_CORK; the next send without it
// appends, marks PSH and sends both as one segment.
// MSG_OOB: the segment carries URG and the urgent pointer (the byte after the urgent data); urgent
// mode lets it past Nagle while the first segment is unacknowledged; the ACK ends urgent mode.
TEST(TcpSendmsg, MsgOobIsUrgentUntilAcked) {
  TcpBed bed;
  EXPECT_EQ(bed.send(100), 100);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 100, kAckPsh, 1, 0}));
  EXPECT_EQ(bed.send(10, MSG_OOB), 10);
  EXPECT_EQ(bed.urg_ptrs, std::vector<uint16_t>{10});
  EXPECT_THAT(bed.take(), ElementsAre(Seg{100, 10, kAckPsh | TCPHDR_URG, 1, 0}));
  EXPECT_EQ(bed.tp.snd_up, kIsn + 110);
  bed.ack_all();
  EXPECT_EQ(bed.send(10), 10);
  EXPECT_EQ(bed.segs.size(), 1u);
  EXPECT_EQ(bed.urg_ptrs, std::vector<uint16_t>{0});
  EXPECT_THAT(bed.take(), ElementsAre(Seg{110, 10, kAckPsh, 1, 0}));
}

TEST(TcpSendmsg, MsgMoreCoalesces) {
  TcpBed bed;
  bed.nodelay(true);  // even with NODELAY: MSG_MORE corks this push
  bed.send(100, MSG_MORE);
  EXPECT_THAT(bed.take(), IsEmpty());
  bed.send(100);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 200, kAckPsh, 1, 0}));
}

// TCP_CORK: partial segments wait; full-MSS ones go. 3000 bytes corked are one skb (size_goal
// 65160); tcp_mss_split_point() cuts it at the last MSS boundary because Nagle (CORK) would hold
// the 104-byte tail: one 2896-byte GSO segment (2 x 1448) — tso_fragment() leaves PSH to the
// second part ("PSH and FIN should only be set in the second packet"), but __tcp_transmit_skb()
// forces PSH on every GSO packet ("to expedite GRO flush at receiver"), as tcp_diff's cork_5000
// shows the kernel doing; then on uncork the 104 bytes with PSH.
TEST(TcpSendmsg, CorkSendsFullSegmentsOnly) {
  TcpBed bed;
  bed.cork(true);
  bed.send(100);
  bed.send(100);
  EXPECT_THAT(bed.take(), IsEmpty());
  bed.cork(false);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 200, kAckPsh, 1, 0}));
  bed.ack_all();

  bed.cork(true);
  bed.send(3000);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{200, 2896, kAckPsh, 2, 1448}));
  bed.cork(false);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{3096, 104, kAckPsh, 1, 0}));
}

// MSG_EOR: the skb is closed to appends (tcp_skb_can_collapse_to()). Corked, the first skb is then
// no longer the queue's tail, and tcp_write_xmit() passes TCP_NAGLE_PUSH for skbs that "sit in the
// middle of the write_queue": it goes at the second send. The second skb waits for the uncork, and
// then still for Nagle: the first small segment (snd_sml = 1100) is not yet acked.
TEST(TcpSendmsg, EorSeparatesRecords) {
  TcpBed bed;
  bed.cork(true);
  bed.send(100, MSG_EOR);
  EXPECT_THAT(bed.take(), IsEmpty());
  bed.send(100);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 100, kAckPsh, 1, 0}));
  bed.cork(false);
  EXPECT_THAT(bed.take(), IsEmpty());
  bed.tp.snd_una = bed.tp.snd_up = kIsn + 100;  // the first segment acked
  bed.tp.packets_out = 0;
  bed.push();
  EXPECT_THAT(bed.take(), ElementsAre(Seg{100, 100, kAckPsh, 1, 0}));
  EXPECT_EQ(bed.tp.write_queue.qlen, 0u);
  EXPECT_EQ(bed.tp.rtx_queue.qlen, 2u);  // (not pruned: tcp_ack() does not exist yet)
}

// A 100000-byte send with cwnd 10. The first skb fills to size_goal (65160) and, being the send
// head, goes by tcp_push_one(): tcp_cwnd_test() allows min(cwnd/2, cwnd - in_flight) = 5 segments,
// so tcp_mss_split_point() cuts 5 x 1448 = 7240. Refilled to 65160, the head goes again: 5 more.
// Then in_flight == cwnd: nothing more; the rest (85520 bytes) stays queued, PSH on the tail.
// Each GSO packet sent carries PSH (__tcp_transmit_skb() forces it), the queued skbs do not.
TEST(TcpSendmsg, BulkSendCwndLimited) {
  TcpBed bed;
  EXPECT_EQ(bed.send(100000), 100000);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 7240, kAckPsh, 5, 1448}, Seg{7240, 7240, kAckPsh, 5, 1448}));
  EXPECT_EQ(bed.tp.packets_out, 10u);
  EXPECT_EQ(bed.tp.snd_nxt, kIsn + 14480);
  EXPECT_EQ(bed.tp.write_seq, kIsn + 100000);
  // Queue: 65160 (the refilled head) + 20360.
  ASSERT_EQ(bed.tp.write_queue.qlen, 2u);
  EXPECT_EQ(bed.tp.write_queue.head->len, 65160u);
  EXPECT_EQ(bed.tp.write_queue.tail->len, 20360u);
  EXPECT_EQ(TCP_SKB_CB(bed.tp.write_queue.tail)->tcp_flags, kAckPsh);
  ASSERT_NE(bed.tp.rtx_queue.head, nullptr);  // the forced PSH went on the copy sent, not the queued skb
  EXPECT_EQ(TCP_SKB_CB(bed.tp.rtx_queue.head)->tcp_flags, kAck);
  // An ACK of everything: the next push sends 5 more MSS (half the cwnd at once).
  bed.ack_all();
  bed.push();
  EXPECT_THAT(bed.take(), ElementsAre(Seg{14480, 7240, kAckPsh, 5, 1448}, Seg{21720, 7240, kAckPsh, 5, 1448}));
}

// The peer's window: 3000 bytes. size_goal is bounded to half of it (1500 -> one MSS), so each
// 1448-byte skb goes by tcp_push_one() until tcp_snd_wnd_test() fails: 1000 + 3000 = 4000 is the
// window's end, and the third segment would end at 5344. The second carries PSH: forced_push()
// (2896 bytes written since the last push > max_window / 2 = 1500) marks it and pushes.
TEST(TcpSendmsg, ReceiveWindowLimited) {
  TcpBed bed;
  bed.tp.snd_wnd = bed.tp.max_window = 3000;
  EXPECT_EQ(bed.send(5000), 5000);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 1448, kAck, 1, 0}, Seg{1448, 1448, kAckPsh, 1, 0}));
  EXPECT_EQ(bed.tp.write_queue.qlen, 2u);  // 1448 and 656 wait for the window
}

// tcp_tso_should_defer(), simplified: with 8 segments in flight of a cwnd of 10, a 3000-byte skb
// could only go as 2 x 1448 (limit 2896 < 1/3 of min(snd_wnd, cwnd * mss) = 4826). The kernel
// then defers unless the next ACK (oldest unacked send + srtt) is further off than
// min(srtt/2, 1 ms). srtt 1 ms (srtt_us = 8000): at 100 us the ACK is 900 us away (> 500), so
// 2896 bytes go now; at 600 us it is 400 us away, and cong_win 2896 <= 3000: cwnd-limited, defer.
TEST(TcpSendmsg, TsoDeferralWaitsForAnAckThatIsDue) {
  for (uint64_t now : {100u, 600u}) {
    TcpBed bed;
    bed.nodelay(true);
    bed.tp.srtt_us = 8000;
    bed.tp.tcp_mstamp = 0;
    bed.send(8 * 1448);  // 5 then 3 segments (cwnd_quota is half the cwnd at most)
    EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 7240, kAckPsh, 5, 1448}, Seg{7240, 4344, kAckPsh, 3, 1448}));
    EXPECT_EQ(bed.tp.packets_out, 8u);
    bed.tp.tcp_mstamp = now;
    bed.send(3000);
    if (now == 100) {
      EXPECT_THAT(bed.take(), ElementsAre(Seg{11584, 2896, kAckPsh, 2, 1448}));
    } else {
      EXPECT_THAT(bed.take(), IsEmpty());
    }
  }
}

// "Avoid bursty behavior by allowing defer only if the last write was recent (1 ms)": the same
// cwnd-limited 3000-byte skb with the ACK already due (srtt 1 ms, nothing came) is deferred while the
// last segment left at most 1 ms ago and goes as 2 x 1448 once it is longer — as the kernel, under
// load, cuts a window- or cwnd-limited send where an unloaded run waits.
TEST(TcpSendmsg, TsoDeferralOnlyRightAfterAWrite) {
  for (uint64_t now : {1000u, 1001u}) {
    TcpBed bed;
    bed.nodelay(true);
    bed.tp.srtt_us = 8000;
    bed.tp.tcp_mstamp = 0;
    bed.send(8 * 1448);
    EXPECT_EQ(bed.take().size(), 2u);
    EXPECT_EQ(bed.tp.tcp_wstamp_us, 0u);
    bed.tp.tcp_mstamp = now;
    bed.send(3000);
    if (now == 1001) {
      EXPECT_THAT(bed.take(), ElementsAre(Seg{11584, 2896, kAckPsh, 2, 1448}));
      EXPECT_EQ(bed.tp.tcp_wstamp_us, 1001u);
    } else {
      EXPECT_THAT(bed.take(), IsEmpty());
    }
  }
}

// Out of payload buffers before anything is copied: -EAGAIN (the non-blocking wait for memory).
// MSG_ZEROCOPY (the `uarg` of a send): every skb the bytes go into holds the send's object until it
// is freed — acked here — and an skb holds one object only: a send with another object does not
// append to that tail (skb_zerocopy_iter_stream()'s -EEXIST) but marks it PSH and starts a new
// skb. A copy without an object appends to a zerocopy skb.
TEST(TcpSendmsg, ZerocopySendsDoNotShareAnSkb) {
  TcpBed bed;
  int done_a = 0, done_b = 0;
  auto count = [](ubuf_info* u, bool) { ++*static_cast<int*>(u->ctx); };
  ubuf_info a, b;
  ubuf_info_init(&a, count, &done_a);
  ubuf_info_init(&b, count, &done_b);
  bed.cork(true);
  EXPECT_EQ(bed.send(100, 0, &a), 100);
  EXPECT_EQ(bed.send(100), 100);         // appends to a's skb
  EXPECT_EQ(bed.send(100, 0, &b), 100);  // a new skb
  EXPECT_EQ(bed.send(100, 0, &b), 100);  // appends to b's
  net_zcopy_put(&a);                     // the sends' own references (the socket layer's put)
  net_zcopy_put(&b);
  EXPECT_EQ(done_a + done_b, 0);
  bed.cork(false);
  // a's skb is not the tail: it goes; b's waits for Nagle (the first small segment is unacked).
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 200, kAckPsh, 1, 0}));
  EXPECT_EQ(done_a, 0);  // sent is not enough
  bed.ack_all();
  EXPECT_EQ(done_a, 1);
  EXPECT_EQ(done_b, 0);
  bed.push();
  EXPECT_THAT(bed.take(), ElementsAre(Seg{200, 200, kAckPsh, 1, 0}));
  EXPECT_EQ(done_b, 0);
  bed.ack_all();
  EXPECT_EQ(done_b, 1);
}

TEST(TcpSendmsg, NoBuffersIsEagain) {
  TcpBed bed(/*nr_pages=*/1);
  uint8_t* hog = bed.pages->alloc();
  EXPECT_EQ(bed.send(100), -EAGAIN);
  bed.pages->put(hog);
}

// The pull source of splice()/sendfile() (tcp_sendmsg_locked_pull()): a stream of the pattern
// byte i = i * 7 + 3, `have` bytes long, then `fail` (0: its end). Counts the bytes asked for.
struct PatternSource {
  size_t have = 0;
  int fail = 0;
  size_t pos = 0;
  size_t asked = 0;
  int calls = 0;
  static ssize_t pull(void* ctx, void* to, size_t len) {
    auto* p = static_cast<PatternSource*>(ctx);
    ++p->calls;
    p->asked += len;
    if (p->pos == p->have && p->fail != 0) return p->fail;
    size_t n = std::min(len, p->have - p->pos);
    for (size_t i = 0; i < n; ++i) static_cast<uint8_t*>(to)[i] = static_cast<uint8_t>((p->pos + i) * 7 + 3);
    p->pos += n;
    return static_cast<ssize_t>(n);
  }
};

int send_pull(TcpBed& bed, PatternSource* ps, PullSource* src, size_t n, int flags = 0) {
  *src = PullSource{.pull = PatternSource::pull, .ctx = ps};
  return tcp_sendmsg_locked_pull(&bed.tp, src, n, flags, bed.mtu, [&bed](sk_buff* s) { return bed.xmit(s); });
}

// The payload bytes of the sent (unacknowledged) and unsent skbs, in order.
std::vector<uint8_t> queued_bytes(const tcp_sock& tp) {
  std::vector<uint8_t> v;
  for (const SkbQueue* q : {&tp.rtx_queue, &tp.write_queue}) {
    for (const sk_buff* skb = q->head; skb != nullptr; skb = skb->next) {
      for (int i = 0; i < skb_shinfo(skb)->nr_frags; ++i) {
        const skb_frag& f = skb_shinfo(skb)->frags[i];
        v.insert(v.end(), f.data, f.data + f.len);
      }
    }
  }
  return v;
}

// A source shorter than the send: its bytes are queued, in order, and the send ends there; the
// source was asked for no byte beyond the room the copy held (one page piece at a time).
TEST(TcpSendmsgPull, ShortSourceEndsTheSend) {
  TcpBed bed;
  bed.cork(true);
  PatternSource ps{.have = 5000};
  PullSource src;
  EXPECT_EQ(send_pull(bed, &ps, &src, 10000), 5000);
  EXPECT_TRUE(src.ended);
  EXPECT_EQ(src.err, 0);
  EXPECT_EQ(bed.tp.write_seq, kIsn + 5000);
  std::vector<uint8_t> q = queued_bytes(bed.tp);
  ASSERT_EQ(q.size(), 5000u);
  for (size_t i = 0; i < q.size(); ++i) ASSERT_EQ(q[i], static_cast<uint8_t>(i * 7 + 3)) << i;
  EXPECT_EQ(ps.calls, 1);
}

// A source with nothing: nothing queued, and the skb the copy had started is gone again
// (tcp_remove_empty_skb()): no empty skb in the write queue, its page reference dropped.
TEST(TcpSendmsgPull, EmptySourceLeavesNoSkb) {
  TcpBed bed(/*nr_pages=*/1);
  PatternSource ps{.have = 0};
  PullSource src;
  EXPECT_EQ(send_pull(bed, &ps, &src, 1000), 0);
  EXPECT_EQ(bed.tp.write_queue.head, nullptr);
  EXPECT_EQ(bed.tp.write_queue.qlen, 0u);
  EXPECT_EQ(bed.tp.write_seq, kIsn);
  EXPECT_THAT(bed.take(), IsEmpty());
  // The only page is the socket's, with no fragment holding it: a send still finds room.
  EXPECT_EQ(bed.send(100), 100);
}

// A source failing after a full page: that page's bytes went, the error is kept for the caller.
TEST(TcpSendmsgPull, SourceErrorAfterSomeBytes) {
  TcpBed bed;
  bed.cork(true);
  PatternSource ps{.have = 32768, .fail = -EIO};
  PullSource src;
  EXPECT_EQ(send_pull(bed, &ps, &src, 60000), 32768);
  EXPECT_EQ(src.err, -EIO);
  EXPECT_EQ(bed.tp.write_seq, kIsn + 32768);
  EXPECT_EQ(queued_bytes(bed.tp).size(), 32768u);
}

// No payload buffer: -EAGAIN, and the source was never asked (a pipe keeps its bytes).
TEST(TcpSendmsgPull, NoBuffersPullsNothing) {
  TcpBed bed(/*nr_pages=*/1);
  uint8_t* hog = bed.pages->alloc();
  PatternSource ps{.have = 1000};
  PullSource src;
  EXPECT_EQ(send_pull(bed, &ps, &src, 1000), -EAGAIN);
  EXPECT_EQ(ps.calls, 0);
  EXPECT_FALSE(src.ended);
  EXPECT_EQ(bed.tp.write_queue.head, nullptr);
  bed.pages->put(hog);
}

// A whole source: the send is a plain one (pushed with the caller's flags: NODELAY sends it).
TEST(TcpSendmsgPull, WholeSourceIsPushed) {
  TcpBed bed;
  bed.nodelay(true);
  PatternSource ps{.have = 1000};
  PullSource src;
  EXPECT_EQ(send_pull(bed, &ps, &src, 1000), 1000);
  EXPECT_FALSE(src.ended);
  EXPECT_THAT(bed.take(), ElementsAre(Seg{0, 1000, kAckPsh, 1, 0}));
}

}  // namespace
}  // namespace xmit::testing_tcp
