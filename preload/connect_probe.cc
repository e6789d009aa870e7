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
  // TCP_TIMESTAMP is tcp_clock_ms() (CLOCK_MONOTONIC in ms) + tsoffset with its lowest bit cleared
  // (set says usec timestamps). Read at clock ms m: v = (m + off) & ~1, so off is v - m or one more;
  // the larger is taken, never behind the kernel's and at most 1 ms ahead (a bracket of the read
  // within one ms; a second read if the clock ticked between the looks).
  for (int i = 0; i < 4; ++i) {
    const uint64_t before = mono_ns() / 1'000'000;
    uint32_t ts = 0;
    socklen_t tl = sizeof ts;
    if (libc().getsockopt(fd, IPPROTO_TCP, TCP_TIMESTAMP, &ts, &tl) != 0) return -errno;
    const uint64_t after = mono_ns() / 1'000'000;
    *ts_off = ts - static_cast<uint32_t>(before) + 1;
    if (before == after) break;
  }
  *sport = be16_to_cpu(me.sin_port);
  return 0;
}

// The offset last used for a 4-tuple, so this process's connections on it stay in order: two
// reads of the same offset may differ by the bit TCP_TIMESTAMP hides (a second connection on the
// 4-tuple within a millisecond of the first's end would otherwise carry a timestamp 1 older, and
// the peer's TIME_WAIT drops it as PAWS). Direct-mapped; a slot taken by another 4-tuple forgets.
struct TsOffSlot {
  be32 saddr = 0, daddr = 0;
  uint16_t sport = 0, dport = 0;
  uint32_t off = 0;
};
constexpr size_t kTsOffSlots = 256;
TsOffSlot g_ts_off[kTsOffSlots];
std::atomic_flag g_ts_off_busy = ATOMIC_FLAG_INIT;

uint32_t ts_off_in_order(be32 saddr, be32 daddr, uint16_t sport, uint16_t dport, uint32_t off) {
  if (g_ts_off_busy.test_and_set(std::memory_order_acquire)) return off;  // another thread's: skip
  const uint32_t h = (saddr ^ daddr ^ (uint32_t{sport} << 16 | dport)) * 0x9e3779b1u;
  TsOffSlot& s = g_ts_off[(h >> 24) % kTsOffSlots];
  if (s.saddr == saddr && s.daddr == daddr && s.sport == sport && s.dport == dport &&
      static_cast<int32_t>(s.off - off) > 0) {
    off = s.off;
  }
  s = TsOffSlot{saddr, daddr, sport, dport, off};
  g_ts_off_busy.clear(std::memory_order_release);
  return off;
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
  if (err == 0) *ts_off = ts_off_in_order(saddr, daddr, *sport, dport, *ts_off);
  return err;
}

}  // namespace xmit
