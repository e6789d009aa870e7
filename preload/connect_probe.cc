// preload/connect_probe.cc — see connect_probe.h.
#include "preload/connect_probe.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>

#include "preload/libc.h"
#include "preload/log.h"
#include "preload/wait_slice.h"

namespace xmit {
namespace {

std::atomic<bool> g_off{false};

// Once for the process: the probes stop, the stack chooses its ports itself.
void turn_off(const char* why, int err) {
  if (!g_off.exchange(true)) {
    logf(LogLevel::kNotice, "TCP connect(): the kernel's port and timestamp offset are not available (%s: %s); "
         "xmit chooses them itself", why, strerror(err));
  }
}

int probe(int fd, be32 saddr, be32 daddr, uint16_t dport, uint16_t* sport, uint32_t* ts_off) {
  const int one = 1;
  if (libc().setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof one) != 0 ||
      libc().setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_NO_COOKIE, &one, sizeof one) != 0) {
    turn_off("TCP_FASTOPEN_CONNECT", errno);
    return -EOPNOTSUPP;
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = daddr;
  to.sin_port = cpu_to_be16(dport);
  if (libc().connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
    // EINPROGRESS: the SYN left after all (Fast Open disabled by its blackhole detection). The
    // socket closes in SYN_SENT; the peer's SYN-ACK meets a reset.
    if (errno == EINPROGRESS) {
      turn_off("a probe's SYN was sent", errno);
      return -EOPNOTSUPP;
    }
    return -errno;
  }
  sockaddr_in me{};
  socklen_t len = sizeof me;
  if (libc().getsockname(fd, reinterpret_cast<sockaddr*>(&me), &len) != 0) return -errno;
  if (me.sin_addr.s_addr != saddr) return -EADDRNOTAVAIL;
  // TCP_TIMESTAMP is tcp_clock_ms() (CLOCK_MONOTONIC in ms) + tsoffset: read between two looks at
  // the clock that fall in one millisecond, the offset is exact.
  for (int i = 0; i < 4; ++i) {
    const uint64_t before = mono_ns() / 1'000'000;
    uint32_t ts = 0;
    socklen_t tl = sizeof ts;
    if (libc().getsockopt(fd, IPPROTO_TCP, TCP_TIMESTAMP, &ts, &tl) != 0) return -errno;
    const uint64_t after = mono_ns() / 1'000'000;
    *ts_off = ts - static_cast<uint32_t>(before);  // never behind the kernel's
    if (before == after) break;
  }
  *sport = be16_to_cpu(me.sin_port);
  return 0;
}

}  // namespace

void kernel_connect_probe_disable() { g_off.store(true); }

int kernel_connect_probe(be32 saddr, be32 daddr, uint16_t dport, uint16_t* sport, uint32_t* ts_off) {
  if (g_off.load(std::memory_order_relaxed)) return -EOPNOTSUPP;
  const int saved = errno;
  const int fd = libc().socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const int err = -errno;
    errno = saved;
    return err;
  }
  const int err = probe(fd, saddr, daddr, dport, sport, ts_off);
  libc().close(fd);
  errno = saved;
  return err;
}

}  // namespace xmit
