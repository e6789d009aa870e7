// tests/stream/tcp_zerocopy_test.cc — MSG_ZEROCOPY on TCP sockets (stack/stream over stack/tcp,
// stack/sock/msg_zerocopy) on two stack instances over the in-memory link, injected clock: the
// opt-in, ids per send call, completion only once the peer ACKed the bytes, the kernel's coalescing,
// POLLERR, the optmem limit (ENOBUFS), a failed send giving its id back, reset and close.
#include <sys/mman.h>

#include "tests/stream/tcp_socket_bed.h"

#include <linux/errqueue.h>  // after <time.h> (struct timespec)

#include <netinet/tcp.h>  // after the stack's headers (its macros rename their constants)

namespace xmit {
namespace {

using namespace testing_bed;  // NOLINT: the bed's fixture and helpers

// One error-queue record: the range and whether it says COPIED; lo > hi when none was read.
struct Rec {
  ssize_t r = 0;
  uint32_t lo = 1, hi = 0;
  bool copied = false;
  uint8_t origin = 0;
  int msg_flags = 0;
};

class TcpZerocopyTest : public TcpSocketTest {
 protected:
  Rec errqueue(Socket* s) {
    uint8_t ctl[128];
    msghdr m{};
    m.msg_control = ctl;
    m.msg_controllen = sizeof ctl;
    Rec rec;
    rec.r = s->recvmsg(&m, MSG_ERRQUEUE);
    if (rec.r < 0) return rec;
    rec.msg_flags = m.msg_flags;
    cmsghdr* cm = CMSG_FIRSTHDR(&m);
    EXPECT_NE(cm, nullptr);
    if (cm == nullptr) return rec;
    EXPECT_EQ(cm->cmsg_level, SOL_IP);
    EXPECT_EQ(cm->cmsg_type, IP_RECVERR);
    sock_extended_err ee;
    std::memcpy(&ee, CMSG_DATA(cm), sizeof ee);
    rec.origin = ee.ee_origin;
    rec.lo = ee.ee_info;
    rec.hi = ee.ee_data;
    rec.copied = ee.ee_code == SO_EE_CODE_ZEROCOPY_COPIED;
    return rec;
  }
  int setint(Socket* s, int level, int name, int v) { return s->setsockopt(level, name, &v, sizeof v); }
  int getint(Socket* s, int level, int name) {
    int v = -1;
    socklen_t l = sizeof v;
    EXPECT_EQ(s->getsockopt(level, name, &v, &l), 0);
    return v;
  }
  bool pollerr(Socket* s) {
    int wfd;
    return (s->poll_mask(&wfd) & POLLERR) != 0;
  }
  void expect_range(Socket* s, uint32_t lo, uint32_t hi) {
    Rec r = errqueue(s);
    ASSERT_EQ(r.r, 0);
    EXPECT_EQ(r.origin, SO_EE_ORIGIN_ZEROCOPY);
    EXPECT_EQ(r.lo, lo);
    EXPECT_EQ(r.hi, hi);
    EXPECT_TRUE(r.copied);  // the stack copies into its own buffers (AF_XDP's UMEM)
    EXPECT_TRUE(r.msg_flags & MSG_ERRQUEUE);
  }
  std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 31 + seed);
    return v;
  }
};

TEST_F(TcpZerocopyTest, WithoutOptInTheFlagIsAPlainSendAndNothingIsNotified) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  EXPECT_EQ(getint(c, SOL_SOCKET, SO_ZEROCOPY), 0);
  std::vector<uint8_t> d = pattern(3000, 1);
  EXPECT_EQ(send(c, d.data(), d.size(), MSG_ZEROCOPY), 3000);
  EXPECT_EQ(read_all(s, d.size()), d);
  pump();
  EXPECT_FALSE(pollerr(c));
  EXPECT_EQ(errqueue(c).r, -EAGAIN);
  // sk_setsockopt(): 0 and 1 only.
  EXPECT_EQ(setint(c, SOL_SOCKET, SO_ZEROCOPY, 2), -EINVAL);
  EXPECT_EQ(getint(c, SOL_SOCKET, SO_ZEROCOPY), 0);
  EXPECT_EQ(setint(c, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
  EXPECT_EQ(getint(c, SOL_SOCKET, SO_ZEROCOPY), 1);
  // A send without the flag on an opted-in socket takes no id either; an empty one neither.
  EXPECT_EQ(send(c, d.data(), 10, 0), 10);
  EXPECT_EQ(send(c, d.data(), 0, MSG_ZEROCOPY), 0);
  EXPECT_EQ(send(c, d.data(), 20, MSG_ZEROCOPY), 20);
  EXPECT_EQ(read_all(s, 30).size(), 30u);
  pump();
  expect_range(c, 0, 0);  // the first id is 0: nothing before took one
  c->put();
  s->put();
  listener->put();
}

// The stack copies at send time: the program may overwrite or unmap the buffer as soon as the send
// returns (the kernel's contract asks it to wait for the completion; this is stronger), and the
// peer still gets what was there at the call (under ASan: nothing reads the unmapped pages).
TEST_F(TcpZerocopyTest, BufferUnmappedRightAfterTheSendIsNeverReadAgain) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  ASSERT_EQ(setint(c, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
  const size_t len = 3 * 4096;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  std::vector<uint8_t> d = pattern(len, 7);
  std::memcpy(p, d.data(), len);
  ASSERT_EQ(send(c, p, len, MSG_ZEROCOPY), static_cast<ssize_t>(len));
  std::memset(p, 0xee, len);
  ASSERT_EQ(munmap(p, len), 0);
  EXPECT_EQ(read_all(s, len), d);
  pump();
  expect_range(c, 0, 0);
  c->put();
  s->put();
  listener->put();
}

// kernel: sk_clone_lock() copies sk_flags: a listener's SO_ZEROCOPY holds for what it accepts (b's
// fake shadow is shared by its sockets, so the notification, not getsockopt, shows the child's flag).
TEST_F(TcpZerocopyTest, AnAcceptedChildInheritsTheListenersOptIn) {
  listener = b.socket();
  sockaddr_in l = addr(0, 7000);
  ASSERT_EQ(listener->bind(reinterpret_cast<sockaddr*>(&l), sizeof l), 0);
  ASSERT_EQ(setint(listener, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
  ASSERT_EQ(listener->listen(4), 0);
  b.shadow->zerocopy = 0;  // the child's own kernel socket would not have it
  TcpSocket* c = a.socket();
  sockaddr_in to = addr(kB, 7000);
  ASSERT_EQ(c->connect(reinterpret_cast<sockaddr*>(&to), sizeof to, true), -EINPROGRESS);
  pump();
  Socket* s = nullptr;
  ASSERT_EQ(listener->accept(&s, nullptr, nullptr, SOCK_NONBLOCK), 0);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(getint(s, SOL_SOCKET, SO_ZEROCOPY), 1);
  ASSERT_EQ(send(s, "abc", 3, MSG_ZEROCOPY), 3);
  EXPECT_EQ(read_all(c, 3).size(), 3u);
  pump();
  expect_range(s, 0, 0);
  c->put();
  s->put();
  listener->put();
}

class TcpZerocopySlowLink : public TcpZerocopyTest {
 protected:
  TcpZerocopySlowLink() { latency_ns = 5'000'000; }  // 5 ms each way
};

TEST_F(TcpZerocopySlowLink, CompletionWaitsForTheAckNotForTheDevice) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  pump(20'000'000);
  ASSERT_EQ(setint(c, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
  ASSERT_EQ(setint(c, SOL_TCP, TCP_NODELAY, 1), 0);
  std::vector<uint8_t> d = pattern(1000, 2);
  const uint64_t wire0 = link->a().tx_stats().wire_frames;
  ASSERT_EQ(send(c, d.data(), d.size(), MSG_ZEROCOPY), 1000);
  // 1 ms later the segment is on the wire and the device has completed its frame; the ACK is
  // 9 ms away: nothing completes yet.
  pump(1'000'000);
  EXPECT_EQ(link->a().tx_stats().wire_frames, wire0 + 1);
  EXPECT_FALSE(pollerr(c));
  EXPECT_EQ(errqueue(c).r, -EAGAIN);
  pump(20'000'000);
  EXPECT_TRUE(pollerr(c));  // kernel: tcp_poll(): the error queue is not empty
  expect_range(c, 0, 0);
  EXPECT_FALSE(pollerr(c));
  EXPECT_EQ(errqueue(c).r, -EAGAIN);
  EXPECT_EQ(read_all(s, d.size()), d);
  c->put();
  s->put();
  listener->put();
}

TEST_F(TcpZerocopyTest, IdsPerCallAndRangesCoalescedUntilRead) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  ASSERT_EQ(setint(c, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
  std::vector<uint8_t> all;
  for (int i = 0; i < 3; ++i) {
    std::vector<uint8_t> d = pattern(5000 + 1000 * i, static_cast<uint8_t>(i));
    ASSERT_EQ(send(c, d.data(), d.size(), MSG_ZEROCOPY), static_cast<ssize_t>(d.size()));
    all.insert(all.end(), d.begin(), d.end());
    pump();
  }
  // Three completions, unread: one record 0..2 (skb_zerocopy_notify_extend()).
  expect_range(c, 0, 2);
  EXPECT_EQ(errqueue(c).r, -EAGAIN);
  // A plain send between two zerocopy ones takes no id; the next record starts at 3.
  std::vector<uint8_t> p = pattern(700, 9);
  ASSERT_EQ(send(c, p.data(), p.size(), 0), 700);
  ASSERT_EQ(send(c, p.data(), p.size(), MSG_ZEROCOPY), 700);
  all.insert(all.end(), p.begin(), p.end());
  all.insert(all.end(), p.begin(), p.end());
  pump();
  expect_range(c, 3, 3);
  EXPECT_EQ(read_all(s, all.size()), all);  // byte-exact, the copies and the zerocopy sends
  c->put();
  s->put();
  listener->put();
}

TEST_F(TcpZerocopyTest, AFailedSendGivesItsIdBack) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  ASSERT_EQ(setint(c, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
  ASSERT_EQ(c->shutdown(SHUT_WR), 0);
  EXPECT_EQ(send(c, "x", 1, MSG_ZEROCOPY | MSG_NOSIGNAL), -EPIPE);  // kernel: net_zcopy_put_abort()
  pump();
  EXPECT_EQ(errqueue(c).r, -EAGAIN);  // the aborted object queued nothing
  // An unconnected socket: the same.
  TcpSocket* u = a.socket();
  ASSERT_EQ(setint(u, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
  EXPECT_EQ(send(u, "x", 1, MSG_ZEROCOPY | MSG_NOSIGNAL), -EPIPE);
  EXPECT_EQ(errqueue(u).r, -EAGAIN);
  u->put();
  // The other direction still sends: its first id is 0.
  ASSERT_EQ(setint(s, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
  ASSERT_EQ(send(s, "abc", 3, MSG_ZEROCOPY), 3);
  pump();
  expect_range(s, 0, 0);
  c->put();
  s->put();
  listener->put();
}

class TcpZerocopySmallOptmem : public TcpZerocopyTest {
 protected:
  // Room for two objects: 0 + 576 and 832 + 576 fit in 2000, 1664 + 576 does not.
  TcpZerocopySmallOptmem() { a.optmem_max = 2000; }
};

TEST_F(TcpZerocopySmallOptmem, OptmemLimitGivesEnobufsUntilNotificationsAreRead) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  ASSERT_EQ(setint(c, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
  ASSERT_EQ(setint(c, SOL_TCP, TCP_CORK, 1), 0);  // everything stays in the write queue
  // A plain MSG_EOR send between zerocopy ones: each zerocopy send finds a tail without an object
  // and takes a new one (msg_zerocopy_alloc()); two fit.
  EXPECT_EQ(send(c, "p", 1, MSG_EOR), 1);
  EXPECT_EQ(send(c, "z", 1, MSG_ZEROCOPY | MSG_EOR), 1);  // id 0, object A
  EXPECT_EQ(send(c, "p", 1, MSG_EOR), 1);
  EXPECT_EQ(send(c, "z", 1, MSG_ZEROCOPY | MSG_EOR), 1);  // id 1, object B
  // The tail holds B, the latest object: the next zerocopy send extends it (no new charge) even
  // though a new object would not fit.
  EXPECT_EQ(send(c, "y", 1, MSG_ZEROCOPY | MSG_EOR), 1);  // id 2, object B
  EXPECT_EQ(send(c, "p", 1, MSG_EOR), 1);
  EXPECT_EQ(send(c, "x", 1, MSG_ZEROCOPY), -ENOBUFS);  // 1664 + 576 > 2000; no id taken
  ASSERT_EQ(setint(c, SOL_TCP, TCP_CORK, 0), 0);
  pump();
  // A completed as notification 0..0 (its charge stays until read), B extended it to 0..2 and
  // was freed: 832 + 576 fits again.
  EXPECT_EQ(send(c, "w", 1, MSG_ZEROCOPY), 1);  // id 3
  pump();
  expect_range(c, 0, 3);
  EXPECT_EQ(read_all(s, 7), std::vector<uint8_t>({'p', 'z', 'p', 'z', 'y', 'p', 'w'}));
  c->put();
  s->put();
  listener->put();
}

TEST_F(TcpZerocopyTest, ResetCompletesWhatWasQueuedAndCloseNeverNotifies) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  ASSERT_EQ(setint(c, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
  ASSERT_EQ(setint(c, SOL_TCP, TCP_CORK, 1), 0);
  ASSERT_EQ(send(c, "held", 4, MSG_ZEROCOPY), 4);  // corked: never sent
  // The peer resets (SO_LINGER 0): the connection is done, its queues purged, the object freed.
  linger l{.l_onoff = 1, .l_linger = 0};
  ASSERT_EQ(s->setsockopt(SOL_SOCKET, SO_LINGER, &l, sizeof l), 0);
  s->put();
  pump();
  EXPECT_EQ(so_error(c), ECONNRESET);
  EXPECT_TRUE(pollerr(c));
  expect_range(c, 0, 0);
  c->put();
  listener->put();
}

TEST_F(TcpZerocopyTest, CloseWithSendsInFlightLeavesThemToTheOrphan) {
  // Closed with a send in flight: the orphan completes it later and notifies no one (nothing to
  // read it from); the state lives until then (ASan: no use after free, no leak).
  TcpSocket* c2 = nullptr;
  Socket* s2 = nullptr;
  connect_pair(&c2, &s2);
  ASSERT_EQ(setint(c2, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
  std::vector<uint8_t> d = pattern(20000, 4);
  ASSERT_EQ(send(c2, d.data(), d.size(), MSG_ZEROCOPY), 20000);
  c2->put();
  EXPECT_EQ(read_all(s2, d.size()), d);
  pump();
  s2->put();
  listener->put();
  pump();
}

// On a device that reads user memory (NetdevFeatures::sg_user, the verbs backend) the bytes are
// not copied: the skbs reference the caller's buffer (kUser fragments) until the peer ACKs them,
// and the notification has no COPIED code (ee_code 0), as the kernel's over a NIC with SG. The
// device reads the memory when it sends: data the congestion window holds back is read after the
// send returned, so a change the program makes before the completion shows at the peer (the
// kernel's contract: the buffer is the stack's until then), and one after it cannot.
class TcpZerocopyInPlaceTest : public TcpZerocopyTest {
 protected:
  TcpZerocopyInPlaceTest() { dev_sg_user = true; }
};

TEST_F(TcpZerocopyInPlaceTest, BytesAreReadInPlaceUntilTheAckAndTheNotificationIsNotCopied) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  ASSERT_EQ(setint(c, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
  const size_t len = 64 * 1024;  // beyond the initial window (10 segments): the rest waits for ACKs
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  auto* buf = static_cast<uint8_t*>(p);
  std::vector<uint8_t> d = pattern(len, 9);
  std::memcpy(buf, d.data(), len);
  const uint64_t frames0 = link->a().tx_stats().tx_frames;
  ASSERT_EQ(send(c, buf, len, MSG_ZEROCOPY), static_cast<ssize_t>(len));
  EXPECT_GT(link->a().tx_stats().tx_frames, frames0);
  // Sent in part, nothing ACKed: no notification yet.
  EXPECT_EQ(errqueue(c).r, -EAGAIN);
  EXPECT_FALSE(pollerr(c));
  // The tail is still the stack's: it is read from the caller's memory when it goes.
  std::memset(buf + len - 1000, 0xab, 1000);
  std::memcpy(d.data() + len - 1000, buf + len - 1000, 1000);
  EXPECT_EQ(read_all(s, len), d);
  pump();
  Rec r = errqueue(c);
  ASSERT_EQ(r.r, 0);
  EXPECT_EQ(r.origin, SO_EE_ORIGIN_ZEROCOPY);
  EXPECT_EQ(r.lo, 0u);
  EXPECT_EQ(r.hi, 0u);
  EXPECT_FALSE(r.copied);  // ee_code 0: the device read the bytes in place
  // Completed: the memory is the program's again. Changed and unmapped, nothing reads it (ASan).
  std::memset(buf, 0x11, len);
  ASSERT_EQ(munmap(p, len), 0);
  std::vector<uint8_t> more = pattern(3000, 3);
  ASSERT_EQ(send(c, more.data(), more.size(), MSG_ZEROCOPY), 3000);
  EXPECT_EQ(read_all(s, more.size()), more);
  pump();
  r = errqueue(c);
  EXPECT_EQ(r.lo, 1u);
  EXPECT_FALSE(r.copied);
  c->put();
  s->put();
  listener->put();
}

// close() right after a zerocopy send, then the buffer unmapped: legal on Linux (the pages were
// pinned at the send). The orphan still has bytes the window held back: they were copied into
// the stack's buffers at close(), so the peer gets them whole and nothing reads the unmapped
// pages (a read would fault; ASan in CI).
TEST_F(TcpZerocopyInPlaceTest, CloseRightAfterTheSendThenUnmapStillDeliversEverything) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  ASSERT_EQ(setint(c, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
  const size_t len = 64 * 1024;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  const std::vector<uint8_t> d = pattern(len, 5);
  std::memcpy(p, d.data(), len);
  ASSERT_EQ(send(c, p, len, MSG_ZEROCOPY), static_cast<ssize_t>(len));
  c->put();  // close(): an orphan with most of the bytes still to send
  ASSERT_EQ(munmap(p, len), 0);
  EXPECT_EQ(read_all(s, len), d);
  s->put();
  listener->put();
}

// A zerocopy send, close() with TCP's page pool empty, then the buffer unmapped. `fail_heap`: the
// heap copy skb_copy_ubufs() falls back to fails too. Returns what the peer read and its last result.
struct CloseOutcome {
  std::vector<uint8_t> got;
  ssize_t last = 0;
};
class TcpZerocopyCloseTest : public TcpZerocopyInPlaceTest {
 protected:
  CloseOutcome close_with_pool_empty(const std::vector<uint8_t>& d, bool fail_heap) {
    void* p = mmap(nullptr, d.size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      ADD_FAILURE() << "mmap: " << strerror(errno);
      return {};
    }
    TcpSocket* c = nullptr;
    Socket* s = nullptr;
    connect_pair(&c, &s);
    EXPECT_EQ(setint(c, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
    std::memcpy(p, d.data(), d.size());
    EXPECT_EQ(send(c, p, d.size(), MSG_ZEROCOPY), static_cast<ssize_t>(d.size()));
    std::vector<uint8_t*> taken;  // every page of a's pool: nothing to copy into
    {
      std::lock_guard<StackMutex> g(a.tcp->mu());
      while (uint8_t* b = a.tcp->page_pool().alloc()) taken.push_back(b);
    }
    if (fail_heap) skb_copy_ubufs_set_alloc([](size_t) -> void* { return nullptr; });
    c->put();  // close()
    skb_copy_ubufs_set_alloc(nullptr);
    EXPECT_EQ(munmap(p, d.size()), 0);
    CloseOutcome o;
    uint8_t buf[65536];
    for (int i = 0; i < 100; ++i) {
      o.last = s->recvmsg(msg(buf, sizeof buf), 0);
      if (o.last > 0) {
        o.got.insert(o.got.end(), buf, buf + o.last);
      } else if (o.last == -EAGAIN) {
        pump(200'000);
      } else {
        break;
      }
    }
    {
      std::lock_guard<StackMutex> g(a.tcp->mu());
      for (uint8_t* b : taken) a.tcp->page_pool().put(b);
    }
    s->put();
    listener->put();
    pump();
    return o;
  }
};

// The same close with TCP's page pool empty: the queued bytes go into heap memory instead (the
// kernel's skb_copy_ubufs() takes pages from the page allocator, which has no pool to run dry), so
// the peer still gets every byte and then the FIN, and nothing reads the unmapped pages.
TEST_F(TcpZerocopyCloseTest, CloseWithThePagePoolEmptyStillDeliversEverything) {
  const std::vector<uint8_t> d = pattern(64 * 1024, 6);  // beyond the initial window: most still queued
  CloseOutcome o = close_with_pool_empty(d, /*fail_heap=*/false);
  EXPECT_EQ(o.last, 0);  // the FIN: end of stream
  EXPECT_EQ(o.got, d);
  EXPECT_EQ(a.tcp->net_mib.TCPAbortOnMemory, 0u);
}

// With no memory at all for the copy, the orphan must still not read the program's memory after
// close() returned: the connection is aborted as the kernel's tcp_abort(): a reset, the queues
// purged, counted as TcpExtTCPAbortOnMemory; the peer gets a prefix of the data, then ECONNRESET.
// (Before: the orphan went on sending from the unmapped pages and the test died.)
TEST_F(TcpZerocopyCloseTest, CloseWithNoMemoryForTheCopyAbortsTheConnection) {
  const std::vector<uint8_t> d = pattern(64 * 1024, 7);
  CloseOutcome o = close_with_pool_empty(d, /*fail_heap=*/true);
  EXPECT_EQ(a.tcp->net_mib.TCPAbortOnMemory, 1u);
  EXPECT_EQ(o.last, -ECONNRESET);
  EXPECT_LT(o.got.size(), d.size());
  EXPECT_TRUE(std::equal(o.got.begin(), o.got.end(), d.begin()));
}

// The same sends on a device that cannot read user memory (AF_XDP) copy: the change made after
// the send returned never reaches the peer, and the notification says COPIED.
TEST_F(TcpZerocopyTest, WithoutAUserMemoryDeviceTheBytesAreCopiedAtTheSend) {
  TcpSocket* c = nullptr;
  Socket* s = nullptr;
  connect_pair(&c, &s);
  ASSERT_EQ(setint(c, SOL_SOCKET, SO_ZEROCOPY, 1), 0);
  const size_t len = 64 * 1024;
  std::vector<uint8_t> buf = pattern(len, 9);
  const std::vector<uint8_t> d = buf;
  ASSERT_EQ(send(c, buf.data(), len, MSG_ZEROCOPY), static_cast<ssize_t>(len));
  std::memset(buf.data() + len - 1000, 0xab, 1000);
  EXPECT_EQ(read_all(s, len), d);
  pump();
  expect_range(c, 0, 0);
  c->put();
  s->put();
  listener->put();
}

}  // namespace
}  // namespace xmit
