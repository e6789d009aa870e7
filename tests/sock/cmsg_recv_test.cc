// tests/sock/cmsg_recv_test.cc — receive-side control messages, differential: a kernel UDP socket
// on the loopback of a network namespace this test makes for itself receives a datagram with the
// same options set (IP_PKTINFO, IP_RECVTTL, IP_RECVTOS, IP_RECVORIGDSTADDR, SO_TIMESTAMP*,
// SO_RXQ_OVFL) into control buffers of every size from 0 up; put_cmsg()/sock_recv_cmsgs()/
// ip_cmsg_recv() given the same packet facts must write the same bytes, the same msg_controllen
// and the same MSG_CTRUNC.
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "stack/sock/cmsg_recv.h"

namespace xmit {
namespace {

bool g_have_ns = false;

struct Opts {
  const char* name;
  std::vector<std::pair<int, int>> ip;    // SOL_IP option = 1
  int tstamp = 0;                          // SOL_SOCKET SO_TIMESTAMP* type, 0 none
  bool rxq_ovfl = false;
  RcvTstamp mode = RcvTstamp::kNone;
};

class Pair {
 public:
  Pair() {
    rx_ = socket(AF_INET, SOCK_DGRAM, 0);
    tx_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{.sin_family = AF_INET, .sin_port = 0, .sin_addr = {htonl(INADDR_LOOPBACK)}};
    bind(rx_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t l = sizeof addr_;
    getsockname(rx_, reinterpret_cast<sockaddr*>(&addr_), &l);
    int tos = 0x28;
    setsockopt(tx_, SOL_IP, IP_TOS, &tos, sizeof tos);
  }
  ~Pair() {
    close(rx_);
    close(tx_);
  }
  int rx() const { return rx_; }
  const sockaddr_in& addr() const { return addr_; }
  void send() {
    char b = 'x';
    ASSERT_EQ(sendto(tx_, &b, 1, 0, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_), 1);
  }

 private:
  int rx_ = -1, tx_ = -1;
  sockaddr_in addr_{};
};

// The kernel's timestamp, taken from a full-size receive, so both sides report the same time.
uint64_t tstamp_of(const uint8_t* control, size_t len) {
  for (size_t off = 0; off + sizeof(cmsghdr) <= len;) {
    cmsghdr h;
    std::memcpy(&h, control + off, sizeof h);
    if (h.cmsg_level == SOL_SOCKET && h.cmsg_len >= sizeof h + 16) {
      int64_t v[2];
      std::memcpy(v, control + off + sizeof h, sizeof v);
      bool usec = h.cmsg_type == 29 || h.cmsg_type == 63;
      return static_cast<uint64_t>(v[0]) * 1'000'000'000u + static_cast<uint64_t>(v[1]) * (usec ? 1000 : 1);
    }
    if (h.cmsg_len < sizeof h) break;
    off += (h.cmsg_len + 7) & ~size_t{7};
  }
  return 0;
}

void PrintTo(const Opts& o, std::ostream* os) { *os << o.name; }

class CmsgRecvDiff : public ::testing::TestWithParam<Opts> {};

TEST_P(CmsgRecvDiff, EveryControlBufferSize) {
  if (!g_have_ns) GTEST_SKIP() << "needs CAP_SYS_ADMIN for a network namespace of its own";
  const Opts& o = GetParam();
  Pair p;
  int one = 1;
  for (auto [name, v] : o.ip) ASSERT_EQ(setsockopt(p.rx(), SOL_IP, name, &v, sizeof v), 0);
  if (o.tstamp != 0) ASSERT_EQ(setsockopt(p.rx(), SOL_SOCKET, o.tstamp, &one, sizeof one), 0);
  if (o.rxq_ovfl) ASSERT_EQ(setsockopt(p.rx(), SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one), 0);
  uint32_t flags = 0;
  for (auto [name, v] : o.ip) flags |= ip_cmsg_flag(name);

  for (size_t clen = 0; clen <= 160; ++clen) {
    SCOPED_TRACE("controllen " + std::to_string(clen));
    p.send();
    uint8_t kbuf[200], xbuf[200];
    std::memset(kbuf, 0xaa, sizeof kbuf);
    std::memset(xbuf, 0xaa, sizeof xbuf);
    char data[8];
    iovec iov{data, sizeof data};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = clen ? kbuf : nullptr;
    m.msg_controllen = clen;
    ASSERT_EQ(recvmsg(p.rx(), &m, 0), 1);

    // The same facts, given to our side; the timestamp is the kernel's own (read from a receive
    // with room for everything when this one truncated it away).
    uint64_t ts = tstamp_of(kbuf, m.msg_controllen);
    if (o.mode != RcvTstamp::kNone && ts == 0) {
      p.send();
      uint8_t big[200];
      msghdr m2{};
      m2.msg_iov = &iov;
      m2.msg_iovlen = 1;
      m2.msg_control = big;
      m2.msg_controllen = sizeof big;
      ASSERT_EQ(recvmsg(p.rx(), &m2, 0), 1);
      ts = tstamp_of(big, m2.msg_controllen);
      // That receive's timestamp differs from the first one's: compare only its shape below.
    }
    IpRecvInfo info{.daddr = p.addr().sin_addr.s_addr, .dport = p.addr().sin_port, .ttl = 64, .tos = 0x28,
                    .ifindex = static_cast<int>(if_nametoindex("lo")), .tstamp_ns = ts, .dropcount = 0};
    CmsgOut out{.control = clen ? xbuf : nullptr, .controllen = clen};
    sock_recv_cmsgs(&out, o.mode, o.rxq_ovfl, info);
    if (flags != 0) ip_cmsg_recv(&out, flags, info);

    // A timestamp cut short: its value came from another receive, so only its bytes are taken
    // from the kernel's buffer (header, lengths and everything after are still compared).
    if (o.mode != RcvTstamp::kNone && tstamp_of(kbuf, m.msg_controllen) == 0 && m.msg_controllen > 16) {
      std::memcpy(xbuf + 16, kbuf + 16, std::min<size_t>(m.msg_controllen, 32) - 16);
    }
    EXPECT_EQ(out.used, m.msg_controllen);
    EXPECT_EQ(out.msg_flags & MSG_CTRUNC, m.msg_flags & MSG_CTRUNC);
    EXPECT_EQ(std::memcmp(xbuf, kbuf, m.msg_controllen), 0);
  }
}

std::vector<Opts> cases() {
  return {
      {"pktinfo", {{IP_PKTINFO, 1}}},
      {"ttl", {{IP_RECVTTL, 1}}},
      {"tos", {{IP_RECVTOS, 1}}},
      {"origdstaddr", {{IP_RECVORIGDSTADDR, 1}}},
      {"recvopts_none_present", {{IP_RECVOPTS, 1}}},
      {"all_ip", {{IP_RECVORIGDSTADDR, 1}, {IP_RECVTOS, 1}, {IP_RECVTTL, 1}, {IP_PKTINFO, 1}}},
      {"timestamp_old", {}, 29, false, RcvTstamp::kOldUsec},
      {"timestampns_old", {}, 35, false, RcvTstamp::kOldNsec},
      {"timestamp_new", {}, 63, false, RcvTstamp::kNewUsec},
      {"timestampns_new_and_ip", {{IP_PKTINFO, 1}, {IP_RECVTTL, 1}}, 64, false, RcvTstamp::kNewNsec},
      {"rxq_ovfl_no_drops", {{IP_RECVTOS, 1}}, 0, true},
  };
}

INSTANTIATE_TEST_SUITE_P(Table, CmsgRecvDiff, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Opts>& i) { return std::string(i.param.name); });

// put_cmsg() alone: the kernel's truncation arithmetic on a 20-byte payload.
TEST(PutCmsg, Truncation) {
  uint8_t buf[64];
  uint8_t data[20];
  std::memset(data, 7, sizeof data);
  CmsgOut none{.control = nullptr, .controllen = 64};
  put_cmsg(&none, SOL_IP, IP_TTL, data, sizeof data);
  EXPECT_EQ(none.used, 0u);
  EXPECT_EQ(none.msg_flags, MSG_CTRUNC);
  CmsgOut part{.control = buf, .controllen = 24};
  put_cmsg(&part, SOL_IP, IP_TTL, data, sizeof data);
  cmsghdr h;
  std::memcpy(&h, buf, sizeof h);
  EXPECT_EQ(h.cmsg_len, 24u);
  EXPECT_EQ(part.used, 24u);
  EXPECT_EQ(part.msg_flags, MSG_CTRUNC);
  CmsgOut whole{.control = buf, .controllen = 64};
  put_cmsg(&whole, SOL_IP, IP_TTL, data, sizeof data);
  std::memcpy(&h, buf, sizeof h);
  EXPECT_EQ(h.cmsg_len, 36u);
  EXPECT_EQ(whole.used, 40u);  // CMSG_SPACE(20)
  EXPECT_EQ(whole.msg_flags, 0);
}

}  // namespace
}  // namespace xmit

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // A namespace of our own (single-threaded here), with its loopback up.
  if (unshare(CLONE_NEWNET) == 0) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, "lo");
    ifr.ifr_flags = IFF_UP;
    xmit::g_have_ns = s >= 0 && ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
    close(s);
  }
  return RUN_ALL_TESTS();
}
