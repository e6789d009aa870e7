// preload/kernel_connect.cc — see kernel_connect.h.
#include "preload/kernel_connect.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>

#include "preload/libc.h"
#include "preload/log.h"
#include "preload/wait_slice.h"
#include "stack/udp/udp_sock.h"

namespace xmit {
namespace {

std::atomic<bool> g_off{false};
std::atomic<const char*> g_off_why{nullptr};
std::atomic<bool> g_off_said{false};

// Once for the process: the stack chooses its ports and offsets itself.
int turned_off() {
  if (!g_off_said.exchange(true)) {
    const char* why = g_off_why.load();
    if (why == nullptr) why = "off";
    logf(LogLevel::kNotice, "TCP connect(): the kernel's port and timestamp offset are not taken (%s); "
         "xmit chooses them itself", why);
  }
  return -EOPNOTSUPP;
}

void turn_off(const char* why) {
  g_off_why.store(why);
  g_off.store(true);
}

// TCP_TIMESTAMP is tcp_clock_ms() (CLOCK_MONOTONIC in ms) + tsoffset with its lowest bit cleared
// (set says usec timestamps). Read at clock ms m: v = (m + off) & ~1, so off is v - m or one more;
// the larger is taken, never behind the kernel's and at most 1 ms ahead (a bracket of the read
// within one ms; a second read if the clock ticked between the looks).
int read_ts_off(int fd, uint32_t* ts_off) {
  for (int i = 0; i < 4; ++i) {
    const uint64_t before = mono_ns() / 1'000'000;
    uint32_t ts = 0;
    socklen_t tl = sizeof ts;
    if (libc().getsockopt(fd, IPPROTO_TCP, TCP_TIMESTAMP, &ts, &tl) != 0) return -errno;
    const uint64_t after = mono_ns() / 1'000'000;
    *ts_off = ts - static_cast<uint32_t>(before) + 1;
    if (before == after) break;
  }
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

int opt_int(int fd, int name, int v) {
  return libc().setsockopt(fd, IPPROTO_TCP, name, &v, sizeof v) == 0 ? 0 : -errno;
}

// connect() with O_NONBLOCK for the call: 0, or -errno.
int connect_nonblock(int fd, const sockaddr_in& to, bool nonblock) {
  int fl = 0;
  if (!nonblock) {
    fl = libc().fcntl(fd, F_GETFL);
    if (fl < 0 || libc().fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return -errno;
  }
  int err = libc().connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0 ? 0 : -errno;
  if (!nonblock) (void)libc().fcntl(fd, F_SETFL, fl);
  return err;
}

// The program's Fast Open options back on a closed socket (errors ignored: without client Fast
// Open the kernel refuses both, and then neither was set).
void fastopen_restore(int fd, int fastopen) {
  (void)opt_int(fd, TCP_FASTOPEN_CONNECT, (fastopen & ShadowOps::kFastopenConnect) ? 1 : 0);
  (void)opt_int(fd, TCP_FASTOPEN_NO_COOKIE, (fastopen & ShadowOps::kFastopenNoCookie) ? 1 : 0);
}

int connect_deferred(int fd, be32 saddr, be32 daddr, uint16_t dport, bool nonblock, int fastopen, uint16_t* sport,
                     uint32_t* ts_off) {
  if (int err = opt_int(fd, TCP_FASTOPEN_CONNECT, 1); err != 0) {
    // EOPNOTSUPP: client Fast Open turned off since the start (a closed socket never refuses it
    // otherwise).
    if (err != -EOPNOTSUPP) return err;
    turn_off("TCP_FASTOPEN_CONNECT refused: client Fast Open is off");
    return turned_off();
  }
  if (int err = opt_int(fd, TCP_FASTOPEN_NO_COOKIE, 1); err != 0) {
    fastopen_restore(fd, fastopen);
    return err;
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = daddr;
  to.sin_port = cpu_to_be16(dport);
  if (int err = connect_nonblock(fd, to, nonblock); err != 0) {
    if (err != -EINPROGRESS) {
      fastopen_restore(fd, fastopen);
      return err;
    }
    // The SYN left after all (client Fast Open turned off since the start): taken back without
    // another packet; the peer's SYN-ACK meets a reset.
    (void)kernel_disconnect(fd, fastopen);
    turn_off("the kernel sent a SYN: client Fast Open is off");
    return turned_off();
  }
  sockaddr_in me{};
  socklen_t len = sizeof me;
  int err = libc().getsockname(fd, reinterpret_cast<sockaddr*>(&me), &len) == 0 ? 0 : -errno;
  if (err == 0 && me.sin_addr.s_addr != saddr) err = 1;
  if (err == 0) err = read_ts_off(fd, ts_off);
  if (err != 0) {
    (void)kernel_disconnect(fd, fastopen);
    return err;
  }
  *sport = be16_to_cpu(me.sin_port);
  return 0;
}

}  // namespace

void kernel_connect_disable(const char* why) {
  if (why == nullptr) g_off_said.store(true);  // the program's own choice: nothing to say
  turn_off(why);
}

int kernel_connect_deferred(int fd, be32 saddr, be32 daddr, uint16_t dport, bool nonblock, int fastopen,
                            uint16_t* sport, uint32_t* ts_off) {
  if (g_off.load(std::memory_order_relaxed)) return turned_off();
  const int saved = errno;
  const int err = connect_deferred(fd, saddr, daddr, dport, nonblock, fastopen, sport, ts_off);
  errno = saved;
  if (err == 0) *ts_off = ts_off_in_order(saddr, daddr, *sport, dport, *ts_off);
  return err;
}

int kernel_disconnect(int fd, int fastopen) {
  const int saved = errno;
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  int err = libc().connect(fd, &unspec, sizeof unspec) == 0 ? 0 : -errno;
  int soerr = 0;
  socklen_t l = sizeof soerr;
  (void)libc().getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
  if (err == 0) fastopen_restore(fd, fastopen);
  errno = saved;
  return err;
}

}  // namespace xmit
