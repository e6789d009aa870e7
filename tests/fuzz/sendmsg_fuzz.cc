// tests/fuzz/sendmsg_fuzz.cc — libFuzzer, differential: each input becomes one sendmsg() on a UDP
// socket (flags, name length and family, a train of control messages with fuzzed levels, types,
// lengths and data, a control buffer cut short or misaligned) made on a kernel socket and passed
// through stack/sock (__sys_sendmsg import, ip_cmsg_send/udp_cmsg_send, udp_sendmsg's checks).
// Any errno the two disagree on aborts with the input saved. Run in a network namespace of its own
// (tests/fuzz/run.sh): the kernel side sends to 127.0.0.1 there.
//
// Data that only routing judges (IP_PKTINFO's addresses, the UDP_SEGMENT size against the MTU)
// is kept to values routing accepts, since stack/sock stops before the route lookup. For the same
// reason run.sh runs it without CAP_NET_RAW: source routes (IP_RETOPTS LSRR/SSRR) then fail in the
// option parser (EPERM, Linux 6.18) instead of sending the route lookup to a fuzzed first hop.
// (tests/sock's table covers the options with the capability.)
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tests/sock/diff_harness.h"

namespace {

using xmit::test::Api;
using xmit::test::Case;
using xmit::test::Ctl;
using xmit::test::DiffHarness;
using xmit::test::Msg;

class In {
 public:
  In(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  uint8_t u8() { return i_ < n_ ? d_[i_++] : 0; }
  uint32_t u32() { return u8() | u8() << 8 | u8() << 16 | static_cast<uint32_t>(u8()) << 24; }
  bool more() const { return i_ < n_; }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t i_ = 0;
};

// The levels and types worth reaching (and, from the fuzzer, anything else).
int pick_level(In& in) {
  static const int kLevels[] = {SOL_SOCKET, SOL_IP, SOL_UDP, SOL_IPV6, 0x7fff};
  uint8_t b = in.u8();
  return b < 240 ? kLevels[b % 5] : static_cast<int>(in.u32());
}
int pick_type(In& in, int level) {
  static const int kSock[] = {SCM_RIGHTS, SCM_CREDENTIALS, SO_MARK, SO_TIMESTAMPING, SCM_TXTIME, 81, SO_PRIORITY, 79};
  static const int kIp[] = {IP_RETOPTS, IP_PKTINFO, IP_TTL, IP_TOS, IP_OPTIONS, 52 /* IP_PROTOCOL */};
  uint8_t b = in.u8();
  if (b >= 240) return static_cast<int>(in.u32());
  if (level == SOL_SOCKET) return kSock[b % 8];
  if (level == SOL_IP) return kIp[b % 6];
  if (level == SOL_UDP) return b % 2 ? UDP_SEGMENT : UDP_CORK;
  return b;
}

Case decode(const uint8_t* data, size_t size) {
  In in(data, size);
  Case c{.name = "fuzz", .api = Api::kSendmsg, .setup = 0, .flags = 0, .build = nullptr, .expect = 0, .expect_nocap = -1};
  c.setup = in.u8() & 7;
  // MSG_* bits below MSG_CMSG_CLOEXEC, never MSG_MORE (a corked kernel socket would hold the
  // datagram back and change what the next case sees) and never MSG_ERRQUEUE's receive meaning.
  c.flags = in.u32() & 0x7fffu & ~static_cast<unsigned>(MSG_MORE);
  if (in.u8() < 16) c.flags |= 0x80000000u;  // MSG_CMSG_COMPAT (kernel-internal: EINVAL from user space)
  uint8_t name_mode = in.u8();
  uint8_t namelen = in.u8();
  uint8_t offset = in.u8() & 7;
  uint8_t cut = in.u8();
  Ctl ctl;
  for (int k = 0; k < 6 && in.more(); ++k) {
    int level = pick_level(in);
    int type = pick_type(in, level);
    uint8_t n = in.u8() % 48;
    uint8_t buf[48] = {};
    for (uint8_t i = 0; i < n; ++i) buf[i] = in.u8();
    // Any source, any oif — whatever cmsg_len claims, since a skewed length reads padding too.
    if (level == SOL_IP && type == IP_PKTINFO) std::memset(buf, 0, sizeof buf);
    if (level == SOL_UDP && type == UDP_SEGMENT && n >= 2) buf[1] &= 0x03;        // gso_size < 1024
    int8_t skew = static_cast<int8_t>(in.u8());
    if (skew > -100 && skew < 100) {
      ctl.add(level, type, buf, n);  // cmsg_len = CMSG_LEN(n)
    } else {
      ctl.add_len(static_cast<size_t>(static_cast<int>(CMSG_LEN(n)) + skew / 16), level, type, buf, n);
    }
  }
  c.build = [ctl, name_mode, namelen, offset, cut](Msg& m, const sockaddr_in&) {
    m.set_ctl(ctl, offset);
    if (cut < 64 && m.msg.msg_controllen > cut) m.msg.msg_controllen -= cut;  // a truncated buffer
    if (name_mode < 32) {
      m.msg.msg_name = nullptr;
      m.msg.msg_namelen = namelen;
    } else if (name_mode < 64) {
      m.msg.msg_namelen = namelen;  // too short, too long, or odd
    } else if (name_mode < 80) {
      reinterpret_cast<sockaddr_in*>(&m.name)->sin_family = namelen;
    }
  };
  return c;
}

DiffHarness* harness() {
  static DiffHarness* h = new DiffHarness;
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Case c = decode(data, size);
  xmit::test::Caps caps = xmit::test::current_caps();
  xmit::test::Outcome o = harness()->run(c, caps);
  if (o.kernel != o.xmit) {
    std::fprintf(stderr, "sendmsg_fuzz: kernel errno %d (%s), xmit %d (%s), flags %#x setup %u\n", o.kernel,
                 std::strerror(o.kernel), o.xmit, std::strerror(o.xmit), c.flags, c.setup);
    std::abort();
  }
  return 0;
}
