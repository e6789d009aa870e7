// tests/udp/udp_sndbuf_test.cc — the send buffer (SO_SNDBUF, SO_SNDTIMEO, SIOCOUTQ) over the
// SimLink, whose frames complete only when the test runs the wire: how many datagrams fit, EAGAIN
// and ENOBUFS where the kernel gives them, blocking sends woken by completions, the timeout,
// signals, and the shared pool running dry. The expected numbers were measured on a kernel UDP
// socket (Linux 6.18, x86_64) sending into a veth whose qdisc held every frame (tbf at 8 bit/s).
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <time.h>

#include <tuple>

#include <linux/errqueue.h>

#include "tests/udp/udp_bed.h"

namespace xmit {
namespace udp_testing {
namespace {

class UdpSndbufTest : public UdpSockTest {
 protected:
  void SetUp() override {
    cfg.tx_depth = 256;  // the device queue never limits here: the send buffer does
    UdpSockTest::SetUp();
  }
  int set_int(int name, int v) { return sk->setsockopt(SOL_SOCKET, name, &v, sizeof v); }
  int outq() {
    int v = -1;
    EXPECT_EQ(sk->ioctl(SIOCOUTQ, &v), 0);
    return v;
  }
  std::vector<uint8_t> payload(size_t n) { return std::vector<uint8_t>(n, 0x5a); }
  // Non-blocking sends of `size` bytes until the first error; how many went.
  int fill(size_t size, ssize_t* err) {
    int n = 0;
    for (; n < 1000; ++n) {
      ssize_t r = sendto(payload(size), kB, 9);
      if (r < 0) {
        *err = r;
        return n;
      }
    }
    *err = 0;
    return n;
  }
  void complete_all() { link->run(++now); }
};

struct FitCase {
  const char* name;
  int sndbuf_arg;   // setsockopt(SO_SNDBUF); 0: the default (212992)
  size_t size;      // payload bytes per datagram
  int fit;          // datagrams sent before EAGAIN
  int outq;         // SIOCOUTQ then
};

class UdpSndbufFitTest : public UdpSndbufTest, public ::testing::WithParamInterface<FitCase> {};

// kernel: sock_alloc_send_pskb() lets a datagram start while sk_wmem_alloc_get() < sk_sndbuf, so
// the last one overshoots; each skb charges SKB_TRUESIZE of its allocation (832 up to a 576-byte
// head, then 1280, 2304, ...), and a fragmented datagram one per fragment.
TEST_P(UdpSndbufFitTest, NonBlockingSendsUntilEagain) {
  const FitCase& c = GetParam();
  make(/*nonblock=*/true);
  if (c.sndbuf_arg != 0) {
    ASSERT_EQ(set_int(SO_SNDBUF, c.sndbuf_arg), 0);
  }
  ssize_t err = 0;
  EXPECT_EQ(fill(c.size, &err), c.fit);
  EXPECT_EQ(err, -EAGAIN);
  EXPECT_EQ(outq(), c.outq);
  EXPECT_EQ(stack->udp_mib.SndbufErrors, 0u);  // EAGAIN is not counted (kernel: only ENOBUFS)
  complete_all();
  EXPECT_EQ(outq(), 0);  // sock_wfree() at completion gives everything back
  EXPECT_EQ(sendto(payload(c.size), kB, 9), static_cast<ssize_t>(c.size));
}

INSTANTIATE_TEST_SUITE_P(
    KernelNumbers, UdpSndbufFitTest,
    ::testing::Values(FitCase{"min_10B", 1, 10, 6, 4992}, FitCase{"min_100B", 1, 100, 6, 4992},
                      FitCase{"min_500B", 1, 500, 4, 5120}, FitCase{"min_1000B", 1, 1000, 2, 4608},
                      FitCase{"min_1472B", 1, 1472, 2, 4608},
                      FitCase{"min_1473B_two_fragments", 1, 1473, 2, 6272},
                      FitCase{"min_3000B_three_fragments", 1, 3000, 1, 5440},
                      FitCase{"default_1000B", 0, 1000, 93, 214272}),
    [](const ::testing::TestParamInfo<FitCase>& i) { return std::string(i.param.name); });

TEST_F(UdpSndbufTest, SndbufIsTheKernelsDoubledValue) {
  make();
  EXPECT_EQ(sk->sndbuf(), 212992u);  // net.core.wmem_default, read from the shadow
  ASSERT_EQ(set_int(SO_SNDBUF, 1), 0);
  EXPECT_EQ(sk->sndbuf(), 4608u);  // SOCK_MIN_SNDBUF
  ASSERT_EQ(set_int(SO_SNDBUF, 10000), 0);
  EXPECT_EQ(sk->sndbuf(), 20000u);
}

// kernel: later fragments are allocated only while sk_wmem_alloc + delta <= 2 * sk_sndbuf, else
// -ENOBUFS (counted as SndbufErrors); the datagram is dropped whole and nothing stays charged.
TEST_F(UdpSndbufTest, LaterFragmentsOverTwiceTheBufferGiveEnobufs) {
  make();
  ASSERT_EQ(set_int(SO_SNDBUF, 1), 0);
  EXPECT_EQ(sendto(payload(8000), kB, 9), -ENOBUFS);
  EXPECT_EQ(stack->udp_mib.SndbufErrors, 1u);
  EXPECT_EQ(outq(), 0);
  // 5000 bytes: four fragments (2304 * 3 + 1280) fit under twice the buffer; then the buffer is full.
  EXPECT_EQ(sendto(payload(5000), kB, 9), 5000);
  EXPECT_EQ(outq(), 8192);
  EXPECT_EQ(sendto(payload(10000), kB, 9), -EAGAIN);
  EXPECT_EQ(at_b().size(), 4u);
}

TEST_F(UdpSndbufTest, BlockingSendWaitsForCompletions) {
  make(/*nonblock=*/false);
  ASSERT_EQ(set_int(SO_SNDBUF, 1), 0);
  ASSERT_EQ(sendto(payload(1000), kB, 9), 1000);
  ASSERT_EQ(sendto(payload(1000), kB, 9), 1000);
  int dev_fd_seen = 0;
  shadow.on_wait = [&](int dev_fd, int timeout_ms) {
    dev_fd_seen = dev_fd;
    EXPECT_GT(timeout_ms, 0);  // bounded: never an infinite poll
    EXPECT_LE(timeout_ms, 1);
    complete_all();  // the device completes both frames while the sender sleeps
    return 0;
  };
  EXPECT_EQ(sendto(payload(1000), kB, 9), 1000);
  EXPECT_EQ(shadow.waits, 1);
  EXPECT_EQ(dev_fd_seen, link->a().wait_fd());
  EXPECT_EQ(outq(), 2304);
  EXPECT_EQ(at_b().size(), 3u);
}

// A blocked writer goes on when under half the buffer is charged (sock_writeable(), the condition
// of the kernel's write-space wake-up), not as soon as a new send could start. The wire completes
// everything at once, so the buffer is grown under the sleeping writer instead (setsockopt's own
// sk_write_space() call wakes it only when writable, too).
TEST_F(UdpSndbufTest, BlockedWriterWaitsForHalfTheBuffer) {
  make(/*nonblock=*/false);
  ASSERT_EQ(set_int(SO_SNDBUF, 1), 0);
  ASSERT_EQ(sendto(payload(1000), kB, 9), 1000);
  ASSERT_EQ(sendto(payload(1000), kB, 9), 1000);  // 4608 charged
  int waits = 0;
  shadow.on_wait = [&](int, int) {
    ++waits;
    if (waits == 1) {
      EXPECT_EQ(set_int(SO_SNDBUF, 2500), 0);  // 5000: 4608 < 5000, but not under 2500
    } else if (waits == 2) {
      EXPECT_EQ(set_int(SO_SNDBUF, 5000), 0);  // 10000: under half
    }
    return 0;
  };
  EXPECT_EQ(sendto(payload(1000), kB, 9), 1000);
  EXPECT_EQ(waits, 2);
  EXPECT_EQ(outq(), 3 * 2304);
}

TEST_F(UdpSndbufTest, SndtimeoGivesEagainAfterTheTimeout) {
  make(/*nonblock=*/false);
  ASSERT_EQ(set_int(SO_SNDBUF, 1), 0);
  timeval tv{.tv_sec = 0, .tv_usec = 200'000};
  ASSERT_EQ(sk->setsockopt(SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
  ASSERT_EQ(sendto(payload(1000), kB, 9), 1000);
  ASSERT_EQ(sendto(payload(1000), kB, 9), 1000);
  const uint64_t start = shadow.clock_ns;
  shadow.on_wait = [&](int, int timeout_ms) {
    shadow.clock_ns += static_cast<uint64_t>(timeout_ms) * 1'000'000;  // nothing completes
    return 0;
  };
  EXPECT_EQ(sendto(payload(1000), kB, 9), -EAGAIN);
  EXPECT_EQ(shadow.clock_ns - start, 200'000'000u);
  EXPECT_EQ(shadow.waits, 200);  // 1 ms slices: sleeping, not spinning
  EXPECT_EQ(stack->udp_mib.SndbufErrors, 0u);
}

TEST_F(UdpSndbufTest, DontwaitOnABlockingSocketDoesNotWait) {
  make(/*nonblock=*/false);
  ASSERT_EQ(set_int(SO_SNDBUF, 1), 0);
  ASSERT_EQ(sendto(payload(1000), kB, 9), 1000);
  ASSERT_EQ(sendto(payload(1000), kB, 9), 1000);
  EXPECT_EQ(sendto(payload(1000), kB, 9, MSG_DONTWAIT), -EAGAIN);
  EXPECT_EQ(shadow.waits, 0);
}

// kernel: sock_intr_errno(timeo): -ERESTARTSYS without a timeout (restarted under SA_RESTART),
// -EINTR with SO_SNDTIMEO set or a handler without SA_RESTART.
TEST_F(UdpSndbufTest, SignalsInterruptOrRestart) {
  make(/*nonblock=*/false);
  ASSERT_EQ(set_int(SO_SNDBUF, 1), 0);
  ASSERT_EQ(sendto(payload(1000), kB, 9), 1000);
  ASSERT_EQ(sendto(payload(1000), kB, 9), 1000);
  shadow.on_wait = [](int, int) { return -EINTR; };
  EXPECT_EQ(sendto(payload(1000), kB, 9), -EINTR);

  shadow.sa_restart = true;
  int waits = 0;
  shadow.on_wait = [&](int, int) {
    if (++waits == 1) return -EINTR;
    complete_all();
    return 0;
  };
  EXPECT_EQ(sendto(payload(1000), kB, 9), 1000);  // restarted, then woken by the completions
  EXPECT_EQ(waits, 2);

  ASSERT_EQ(sendto(payload(1000), kB, 9), 1000);  // full again
  timeval tv{.tv_sec = 5, .tv_usec = 0};
  ASSERT_EQ(sk->setsockopt(SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
  shadow.on_wait = [](int, int) { return -EINTR; };
  EXPECT_EQ(sendto(payload(1000), kB, 9), -EINTR);
}

// The shared pool is not the send buffer: with 4 skbs for the whole stack the fifth datagram finds
// no memory although SO_SNDBUF has room. Non-blocking: EAGAIN; blocking: waits for completions.
TEST_F(UdpSndbufTest, PoolExhaustionIsNotSndbuf) {
  stack.reset();
  ASSERT_EQ(UdpStack::create(&link->a(), &fib, UdpStackOptions{.nr_skbs = 4}, &stack), 0);
  stack->set_if_addr(kA);
  make(/*nonblock=*/true);
  ssize_t err = 0;
  EXPECT_EQ(fill(10, &err), 4);
  EXPECT_EQ(err, -EAGAIN);
  EXPECT_EQ(outq(), 4 * 832);  // far below 212992
  EXPECT_EQ(stack->tx_pool_empty, 1u);
  EXPECT_EQ(stack->udp_mib.SndbufErrors, 0u);

  sk->set_nonblock(false);
  shadow.on_wait = [&](int, int) {
    complete_all();
    return 0;
  };
  EXPECT_EQ(sendto(payload(10), kB, 9), 10);
  EXPECT_EQ(shadow.waits, 1);
  EXPECT_EQ(stack->tx_pool_empty, 2u);
}

// MSG_ZEROCOPY's option memory. kernel: each datagram's ubuf_info lives in a sock_omalloc()'d skb
// charged (832) to sk_omem_alloc until its notification is read (or coalesced into the queued
// one); past net.core.optmem_max (131072 here) __ip_append_data() fails with ENOBUFS. Measured in
// tests/e2e/sndbuf_kernel.sh behind a stalled qdisc: 157 datagrams, then ENOBUFS.
class UdpZerocopyOptmemTest : public UdpSndbufTest {
 protected:
  void zerocopy_on() {
    int one = 1;
    ASSERT_EQ(sk->setsockopt(SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one), 0);
  }
  // Non-blocking MSG_ZEROCOPY sends of 10 bytes until the first error; how many went.
  int fill_zc(ssize_t* err) {
    for (int n = 0; n < 1000; ++n) {
      if (ssize_t r = sendto(payload(10), kB, 9, MSG_ZEROCOPY); r < 0) {
        *err = r;
        return n;
      }
    }
    *err = 0;
    return 1000;
  }
  // The next error-queue record's range, or {-1, -1} (with the errno in .first) when none.
  std::pair<int64_t, int64_t> errqueue() {
    alignas(8) uint8_t control[256];
    msghdr m{};
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    ssize_t r = sk->recvmsg(&m, MSG_ERRQUEUE);
    if (r < 0) return {r, -1};
    auto* ee = reinterpret_cast<const sock_extended_err*>(CMSG_DATA(CMSG_FIRSTHDR(&m)));
    return {ee->ee_info, ee->ee_data};
  }
};

TEST_F(UdpZerocopyOptmemTest, ObjectsUntilTheOptionMemoryIsFull) {
  make();
  zerocopy_on();
  ssize_t err = 0;
  EXPECT_EQ(fill_zc(&err), 157);
  EXPECT_EQ(err, -ENOBUFS);
  EXPECT_EQ(sendto(payload(10), kB, 9), 10);  // a plain send needs no object
  complete_all();
  // The 157 completions coalesce into one queued notification, which keeps one object's charge
  // until it is read: 156 more fit (their completions extend it again).
  EXPECT_EQ(fill_zc(&err), 156);
  EXPECT_EQ(err, -ENOBUFS);
  complete_all();
  EXPECT_EQ(errqueue(), std::make_pair(int64_t{0}, int64_t{312}));
  EXPECT_EQ(errqueue().first, -EAGAIN);
  EXPECT_EQ(fill_zc(&err), 157);
}

// kernel: msg_zerocopy_realloc(): a corked datagram's later zerocopy sends extend the object its
// tail skb holds (one id each, no new charge); but skb_can_coalesce() refuses an skb that carries
// an object, so each 1-byte append takes a fragment of its own and the 19th finds all 17 in use
// (EMSGSIZE, and udp_sendmsg() drops the corked datagram). Measured in sndbuf_kernel.sh: 18 sends,
// EMSGSIZE, then 155 objects beside the dropped datagram's unread notification and one more send.
TEST_F(UdpZerocopyOptmemTest, CorkedSendsExtendTheirDatagramsObject) {
  make();
  zerocopy_on();
  for (int i = 0; i < 18; ++i) ASSERT_EQ(sendto(payload(1), kB, 9, MSG_ZEROCOPY | MSG_MORE), 1) << i;
  EXPECT_EQ(sendto(payload(1), kB, 9, MSG_ZEROCOPY | MSG_MORE), -EMSGSIZE);
  EXPECT_EQ(sendto(payload(1), kB, 9, MSG_ZEROCOPY), 1);  // a datagram of its own
  ssize_t err = 0;
  EXPECT_EQ(fill_zc(&err), 155);
  EXPECT_EQ(err, -ENOBUFS);
  complete_all();
  EXPECT_EQ(errqueue(), std::make_pair(int64_t{0}, int64_t{18 + 155}));
}

// kernel: with SG and a checksum the device finishes, a MSG_ZEROCOPY datagram is paged and pins
// the caller's page: its head (832) and the page (4096) are charged. Measured in sndbuf_kernel.sh
// from a page-aligned buffer: 44 datagrams, then EAGAIN with SIOCOUTQ 216832.
class UdpZerocopyCsumTest : public UdpZerocopyOptmemTest {
 protected:
  void SetUp() override {
    dev_l4_csum = true;
    UdpZerocopyOptmemTest::SetUp();
  }
};

TEST_F(UdpZerocopyCsumTest, APinnedPageIsChargedToTheSendBuffer) {
  make();
  zerocopy_on();
  alignas(4096) static uint8_t page[4096];
  int n = 0;
  ssize_t r = 0;
  for (; n < 1000; ++n) {
    sockaddr_in to{.sin_family = AF_INET, .sin_port = htons(9), .sin_addr = {kB}};
    r = sk->sendto(page, 10, MSG_ZEROCOPY, reinterpret_cast<sockaddr*>(&to), sizeof to);
    if (r < 0) break;
  }
  EXPECT_EQ(n, 44);
  EXPECT_EQ(r, -EAGAIN);
  EXPECT_EQ(outq(), 216832);
}

// On a device that reads user memory (NetdevFeatures::sg_user: the verbs backend) a MSG_ZEROCOPY
// datagram whose checksum the device finishes is paged with the caller's bytes as its payload
// (kUser segments pointing into the buffer, not a copy), and its notification comes only when the
// device completed the frame, without COPIED (ee_code 0) — as the kernel's over a NIC with SG.
class UdpZerocopyInPlaceTest : public UdpZerocopyOptmemTest {
 protected:
  void SetUp() override {
    dev_l4_csum = true;
    dev_sg_user = true;
    UdpZerocopyOptmemTest::SetUp();
  }
  // The next record: {ee_info, ee_data, COPIED?}, or {-errno, -1, false}.
  std::tuple<int64_t, int64_t, bool> record() {
    alignas(8) uint8_t control[256];
    msghdr m{};
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    ssize_t r = sk->recvmsg(&m, MSG_ERRQUEUE);
    if (r < 0) return {r, -1, false};
    auto* ee = reinterpret_cast<const sock_extended_err*>(CMSG_DATA(CMSG_FIRSTHDR(&m)));
    return {ee->ee_info, ee->ee_data, ee->ee_code == SO_EE_CODE_ZEROCOPY_COPIED};
  }
};

TEST_F(UdpZerocopyInPlaceTest, ThePayloadIsTheCallersMemoryAndCompletesWithoutCopiedAtTheDevicesCompletion) {
  make();
  zerocopy_on();
  std::vector<uint8_t> buf(3000, 0x5a);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<uint8_t>(i * 7);
  sockaddr_in to{.sin_family = AF_INET, .sin_port = htons(9), .sin_addr = {kB}};
  // Two iovecs: one fragment per contiguous run.
  iovec iov[2] = {{buf.data(), 1000}, {buf.data() + 2000, 400}};
  msghdr m{};
  m.msg_name = &to;
  m.msg_namelen = sizeof to;
  m.msg_iov = iov;
  m.msg_iovlen = 2;
  ASSERT_EQ(sk->sendmsg(&m, MSG_ZEROCOPY), 1400);
  ASSERT_EQ(tap->frames_.size(), 1u);
  const auto& segs = tap->frames_[0];
  ASSERT_EQ(segs.size(), 3u);  // the headers (stack memory), then the caller's two runs
  EXPECT_FALSE(segs[0].user);
  EXPECT_EQ(segs[0].len, 14u + 20u + 8u);
  EXPECT_TRUE(segs[1].user);
  EXPECT_EQ(segs[1].data, buf.data());
  EXPECT_EQ(segs[1].len, 1000u);
  EXPECT_TRUE(segs[2].user);
  EXPECT_EQ(segs[2].data, buf.data() + 2000);
  EXPECT_EQ(segs[2].len, 400u);
  // On the device, not completed: nothing to read yet.
  {
    std::lock_guard<StackMutex> g(stack->mu());
    stack->poll(now);
  }
  EXPECT_EQ(std::get<0>(record()), -EAGAIN);
  auto frames = at_b();  // runs the wire: the device completes the frame
  ASSERT_EQ(frames.size(), 1u);
  std::vector<uint8_t> want(1400);
  std::memcpy(want.data(), buf.data(), 1000);
  std::memcpy(want.data() + 1000, buf.data() + 2000, 400);
  EXPECT_EQ(std::vector<uint8_t>(frames[0].begin() + 42, frames[0].end()), want);
  {
    std::lock_guard<StackMutex> g(stack->mu());
    stack->poll(now);
  }
  EXPECT_EQ(record(), std::make_tuple(int64_t{0}, int64_t{0}, false));  // ee_code 0: not COPIED
}

TEST_F(UdpZerocopyInPlaceTest, ADeviceThatHadToCopyMakesTheNotificationSayCopied) {
  make();
  zerocopy_on();
  tap->copy_user = true;
  std::vector<uint8_t> buf(500, 0x11);
  ASSERT_EQ(sendto(buf, kB, 9, MSG_ZEROCOPY), 500);
  ASSERT_EQ(at_b().size(), 1u);
  {
    std::lock_guard<StackMutex> g(stack->mu());
    stack->poll(now);
  }
  EXPECT_EQ(record(), std::make_tuple(int64_t{0}, int64_t{0}, true));
}

// The kernel's cases where a zerocopy datagram is copied after all: more may follow (MSG_MORE:
// the checksum cannot be the device's), or the datagram needs IP fragmentation. Both COPIED, the
// payload in the stack's buffers.
TEST_F(UdpZerocopyInPlaceTest, CorkedOrFragmentedDatagramsAreCopiedAndSaySo) {
  make();
  zerocopy_on();
  std::vector<uint8_t> a(100, 1), big(3000, 2);
  ASSERT_EQ(sendto(a, kB, 9, MSG_ZEROCOPY | MSG_MORE), 100);
  ASSERT_EQ(sendto(a, kB, 9, MSG_ZEROCOPY), 100);
  ASSERT_EQ(sendto(big, kB, 9, MSG_ZEROCOPY), 3000);
  for (const auto& f : tap->frames_)
    for (const auto& s : f) EXPECT_FALSE(s.user);
  EXPECT_EQ(at_b().size(), 1u + 3u);
  {
    std::lock_guard<StackMutex> g(stack->mu());
    stack->poll(now);
  }
  auto r = record();
  EXPECT_EQ(std::get<0>(r), 0);
  EXPECT_EQ(std::get<1>(r), 2);
  EXPECT_TRUE(std::get<2>(r));
}

// kernel: sk_free() leaves the socket to its last skb: a close with frames on the device frees the
// socket at their completion (ASan would see a use after free or a leak otherwise).
TEST_F(UdpSndbufTest, CloseWithFramesInFlight) {
  make();
  ASSERT_EQ(sendto(payload(1000), kB, 9), 1000);
  ASSERT_EQ(sendto(payload(3000), kB, 9), 3000);
  sk->put();
  sk = nullptr;
  complete_all();
  std::lock_guard<StackMutex> g(stack->mu());
  stack->poll(now);
  EXPECT_EQ(stack->tx_in_flight, 0u);
}

TEST_F(UdpSndbufTest, Siocoutqnsd) {
  make();
  int v = 0;
  EXPECT_EQ(sk->ioctl(SIOCOUTQNSD, &v), -ENOTTY);  // kernel: udp_ioctl() does not know it
}

}  // namespace
}  // namespace udp_testing
}  // namespace xmit
