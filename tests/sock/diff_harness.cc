// tests/sock/diff_harness.cc — one case through the kernel's sendmsg()/sendto() and through
// stack/sock (sys_sendmsg_prepare / sys_sendto_prepare, then udp_sendmsg_args).
#include "tests/sock/diff_harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/net_tstamp.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "stack/sock/cmsg.h"
#include "stack/sock/msghdr.h"
#include "stack/sock/udp_sendmsg_checks.h"

namespace xmit::test {
namespace {

uint8_t g_payload[64] = "0123456789";

int read_optmem_max() {
  FILE* f = std::fopen("/proc/sys/net/core/optmem_max", "r");
  int v = 0;
  if (f != nullptr) {
    if (std::fscanf(f, "%d", &v) != 1) v = 0;
    std::fclose(f);
  }
  return v;
}

constexpr uint32_t kTsOptIdFlags =
    SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;

}  // namespace

Ctl& Ctl::add(int level, int type, const void* data, size_t n) {
  return add_len(CMSG_LEN(n), level, type, data, n);
}

Ctl& Ctl::add_len(size_t cmsg_len, int level, int type, const void* data, size_t n) {
  size_t off = b_.size();
  b_.resize(off + CMSG_SPACE(n), 0);
  cmsghdr h{};
  h.cmsg_len = cmsg_len;
  h.cmsg_level = level;
  h.cmsg_type = type;
  std::memcpy(b_.data() + off, &h, sizeof(h));
  if (n) std::memcpy(b_.data() + off + CMSG_LEN(0), data, n);
  return *this;
}

Ctl& Ctl::junk(size_t n, uint8_t byte) {
  b_.insert(b_.end(), n, byte);
  return *this;
}

void Msg::set_ctl(const Ctl& c, size_t offset) {
  if (!c.bytes().empty()) std::memcpy(ctl + offset, c.bytes().data(), c.bytes().size());
  msg.msg_control = ctl + offset;
  msg.msg_controllen = c.bytes().size();
}

void default_msg(Msg& m, const sockaddr_in& dst) {
  std::memcpy(&m.name, &dst, sizeof(dst));
  m.iov.assign(1, iovec{g_payload, 10});
  m.msg.msg_name = &m.name;
  m.msg.msg_namelen = sizeof(sockaddr_in);
  m.msg.msg_iov = m.iov.data();
  m.msg.msg_iovlen = 1;
  m.buf = g_payload;
  m.len = 10;
  m.addr = reinterpret_cast<const sockaddr*>(&m.name);
  m.addrlen = sizeof(sockaddr_in);
}

Caps current_caps() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  Caps c;
  if (syscall(SYS_capget, &hdr, data) != 0) return c;
  c.net_raw = data[0].effective & (1u << CAP_NET_RAW);
  c.net_admin = data[0].effective & (1u << CAP_NET_ADMIN);
  return c;
}

bool drop_net_caps() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  uint32_t drop = (1u << CAP_NET_RAW) | (1u << CAP_NET_ADMIN);
  data[0].effective &= ~drop;
  data[0].permitted &= ~drop;
  data[0].inheritable &= ~drop;
  if (syscall(SYS_capset, &hdr, data) != 0) return false;
  Caps c = current_caps();
  return !c.net_raw && !c.net_admin;
}

DiffHarness::DiffHarness() {
  rx_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  dst_.sin_family = AF_INET;
  dst_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  dst_.sin_port = 0;
  if (rx_ < 0 || bind(rx_, reinterpret_cast<sockaddr*>(&dst_), sizeof(dst_)) != 0) std::abort();
  socklen_t l = sizeof(dst_);
  getsockname(rx_, reinterpret_cast<sockaddr*>(&dst_), &l);
  optmem_max_ = read_optmem_max();
}

DiffHarness::~DiffHarness() {
  if (rx_ >= 0) close(rx_);
}

void DiffHarness::drain() {
  char b[2048];
  while (recv(rx_, b, sizeof(b), MSG_DONTWAIT) >= 0) {
  }
}

int DiffHarness::kernel_errno(const Case& c) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1000;
  int setup_err = 0;
  if (c.setup & kTxtime) {
    sock_txtime t{};
    t.clockid = CLOCK_MONOTONIC;
    if (setsockopt(fd, SOL_SOCKET, SO_TXTIME, &t, sizeof(t)) != 0) setup_err = 1;
  }
  if (c.setup & kTsOptId) {
    int v = kTsOptIdFlags;
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &v, sizeof(v)) != 0) setup_err = 1;
  }
  if (c.setup & kConnected) {
    if (connect(fd, reinterpret_cast<const sockaddr*>(&dst_), sizeof(dst_)) != 0) setup_err = 1;
  }
  if (setup_err) {
    close(fd);
    return -1001;
  }
  Msg m;
  default_msg(m, dst_);
  c.build(m, dst_);
  ssize_t r;
  if (c.api == Api::kSendmsg)
    r = sendmsg(fd, &m.msg, static_cast<int>(c.flags));
  else
    r = sendto(fd, m.buf, m.len, static_cast<int>(c.flags), m.addr, static_cast<socklen_t>(m.addrlen));
  int e = r < 0 ? errno : 0;
  close(fd);
  drain();
  return e;
}

int DiffHarness::xmit_errno(const Case& c, const Caps& caps) {
  Msg m;
  default_msg(m, dst_);
  c.build(m, dst_);
  SendArgsCtx actx;
  actx.optmem_max = optmem_max_;
  Kmsg k;
  // The interposer adds MSG_DONTWAIT for an O_NONBLOCK file, as the kernel does.
  unsigned flags = c.flags;
  int err = c.api == Api::kSendmsg
                ? sys_sendmsg_prepare(&m.msg, flags, &k, actx)
                : sys_sendto_prepare(m.buf, m.len, flags, m.addr, m.addrlen, &k, actx);
  if (err) return -err;
  k.msg_flags |= MSG_DONTWAIT;
  UdpSendCtx u;
  u.established = (c.setup & kConnected) != 0;
  u.inet_daddr = dst_.sin_addr.s_addr;
  u.inet_dport = dst_.sin_port;
  u.cmsg.cap_net_raw = caps.net_raw;
  u.cmsg.cap_net_admin = caps.net_admin;
  u.cmsg.sock_txtime = (c.setup & kTxtime) != 0;
  u.cmsg.sk_tsflags = (c.setup & kTsOptId) ? kTsOptIdFlags : 0;
  Ipcm ipc;
  uint32_t daddr = 0;
  uint16_t dport = 0;
  err = udp_sendmsg_args(k, u, &ipc, &daddr, &dport);
  return err < 0 ? -err : 0;
}

Outcome DiffHarness::run(const Case& c, const Caps& caps) {
  return Outcome{kernel_errno(c), xmit_errno(c, caps)};
}

std::string check(const Case& c, const Outcome& o, bool have_caps) {
  int want = (!have_caps && c.expect_nocap != -1) ? c.expect_nocap : c.expect;
  if (o.kernel == want && o.xmit == want) return "";
  char line[256];
  std::snprintf(line, sizeof(line), "%s (%s): kernel %d (%s), xmit %d (%s), table %d (%s)", c.name,
                have_caps ? "caps" : "no caps", o.kernel, std::strerror(o.kernel), o.xmit,
                std::strerror(o.xmit), want, std::strerror(want));
  return line;
}

}  // namespace xmit::test
