// tests/udp/fake_shadow.h — the kernel shadow socket (ShadowOps) faked for UdpSock tests and the
// in-stack benchmark: binds record the address (port 0 -> kAutobindPort), names come back from it,
// the clock stands still unless a test moves it (or gives it one: `clock`), waits call a test's
// hook, SO_SNDBUF doubles as the kernel's does, a pending socket error (`so_error`) is consumed by
// getsockopt(SO_ERROR) as the kernel's sock_error() does, pass-through notes are recorded.
#pragma once

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "stack/udp/udp_sock.h"

namespace xmit::testing {

class FakeShadow : public ShadowOps {
 public:
  static constexpr uint16_t kAutobindPort = 40000;  // what the fake kernel autobinds to
  static constexpr int kTcpFastopenConnect = 30;     // <netinet/tcp.h>'s TCP_FASTOPEN_CONNECT

  // `if_addr`: the local address a connect() picks for an unbound socket.
  explicit FakeShadow(be32 if_addr) : if_addr_(if_addr) {}

  // Autobinds take kAutobindPort, then kAutobindPort + 1, ...
  int bind(int, const sockaddr* a, socklen_t) override {
    sockaddr_in sin;
    std::memcpy(&sin, a, sizeof sin);
    local = sin;
    bindport_lock = sin.sin_port != 0;
    bindaddr_lock = sin.sin_addr.s_addr != 0;
    port_held = true;
    if (local.sin_port == 0) local.sin_port = htons(static_cast<uint16_t>(kAutobindPort + autobinds++));
    return 0;
  }
  int connect(int, const sockaddr* a, socklen_t) override {
    if (a->sa_family == AF_UNSPEC) {  // kernel: __udp_disconnect()
      peer = sockaddr_in{.sin_family = AF_INET};
      local.sin_addr.s_addr = 0;
      if (!bindport_lock) local.sin_port = 0;
      return 0;
    }
    std::memcpy(&peer, a, sizeof peer);
    if (local.sin_port == 0) local.sin_port = htons(kAutobindPort);
    if (local.sin_addr.s_addr == 0) local.sin_addr.s_addr = if_addr_;
    return 0;
  }
  int getname(int, sockaddr* a, socklen_t* l, bool p) override {
    std::memcpy(a, p ? &peer : &local, sizeof local);
    *l = sizeof local;
    return 0;
  }
  // SO_SNDBUF as the kernel stores it: max(val * 2, SOCK_MIN_SNDBUF), clamped by wmem_max first;
  // SO_SNDTIMEO kept as given. Everything else is accepted and forgotten.
  // Options kept as given and read back (the send template's inputs): IP_TTL, IP_TOS,
  // IP_MTU_DISCOVER, SO_MARK, SO_PRIORITY, SO_NO_CHECK.
  static bool is_plain_int(int level, int name) {
    if (level == SOL_IP) return name == IP_TTL || name == IP_TOS || name == IP_MTU_DISCOVER;
    return level == SOL_SOCKET && (name == SO_MARK || name == SO_PRIORITY || name == SO_NO_CHECK);
  }
  std::map<std::pair<int, int>, int> plain_ints;
  int setsockopt(int, int level, int name, const void* v, socklen_t l) override {
    if (level == SOL_SOCKET && name == SO_SNDBUF && l >= sizeof(int)) {
      int val = 0;
      std::memcpy(&val, v, sizeof val);
      val = std::min(std::max(val, 0), kWmemMax);
      sndbuf = std::max(val * 2, 4608);
    }
    if (level == SOL_SOCKET && name == SO_RCVBUF && l >= sizeof(int)) {  // max(val * 2, SOCK_MIN_RCVBUF)
      int val = 0;
      std::memcpy(&val, v, sizeof val);
      rcvbuf = std::max(std::min(std::max(val, 0), kWmemMax) * 2, 2304);
    }
    if (level == SOL_SOCKET && name == SO_SNDTIMEO && l >= sizeof(timeval)) std::memcpy(&sndtimeo, v, sizeof sndtimeo);
    if (level == SOL_SOCKET && name == SO_REUSEPORT && l >= sizeof(int)) std::memcpy(&reuseport, v, sizeof reuseport);
    if (level == SOL_UDP && name == UDP_SEGMENT && l >= sizeof(int)) {  // udp_lib_setsockopt()
      int val = 0;
      std::memcpy(&val, v, sizeof val);
      if (val < 0 || val > 65535) return -EINVAL;
      gso_size = val;
    }
    if (l >= sizeof(int) && is_plain_int(level, name)) std::memcpy(&plain_ints[{level, name}], v, sizeof(int));
    if (level == SOL_SOCKET && name == SO_ZEROCOPY && l >= sizeof(int)) {  // kernel: sk_setsockopt()
      int val = 0;
      std::memcpy(&val, v, sizeof val);
      if (val < 0 || val > 1) return -EINVAL;
      zerocopy = val;
    }
    return 0;
  }
  int getsockopt(int, int level, int name, void* v, socklen_t* l) override {
    if (auto it = plain_ints.find({level, name}); it != plain_ints.end()) {
      // IP_TTL -1 reads back as the default TTL (the kernel's ip_select_ttl() of its route)
      int val = level == SOL_IP && name == IP_TTL && it->second == -1 ? 64 : it->second;
      std::memcpy(v, &val, sizeof val);
      *l = sizeof val;
      return 0;
    }
    if (level == IPPROTO_TCP && name == kTcpFastopenConnect) {  // set by connect_deferred()
      int val = deferred_connected ? 1 : (fastopen_back & kFastopenConnect);
      std::memcpy(v, &val, sizeof val);
      *l = sizeof val;
      return 0;
    }
    if (level == SOL_SOCKET && (name == SO_RCVBUF || name == SO_SNDBUF)) {
      std::memcpy(v, name == SO_RCVBUF ? &rcvbuf : &sndbuf, sizeof rcvbuf);
      *l = sizeof rcvbuf;
      return 0;
    }
    if (level == SOL_SOCKET && name == SO_ERROR) {  // kernel: sk_getsockopt(): -sock_error(sk)
      int e = std::exchange(so_error, 0);
      *l = std::min<socklen_t>(*l, sizeof e);
      std::memcpy(v, &e, *l);
      return 0;
    }
    if (level == SOL_UDP && name == UDP_SEGMENT) {
      std::memcpy(v, &gso_size, sizeof gso_size);
      *l = sizeof gso_size;
      return 0;
    }
    if (level == SOL_SOCKET && name == SO_ZEROCOPY) {
      std::memcpy(v, &zerocopy, sizeof zerocopy);
      *l = sizeof zerocopy;
      return 0;
    }
    if (level == SOL_SOCKET && name == SO_REUSEPORT) {
      int on = reuseport != 0;
      std::memcpy(v, &on, sizeof on);
      *l = sizeof on;
      return 0;
    }
    if (level == SOL_SOCKET && name == SO_SNDTIMEO) {
      std::memcpy(v, &sndtimeo, sizeof sndtimeo);
      *l = sizeof sndtimeo;
      return 0;
    }
    return -ENOPROTOOPT;
  }
  // TCP's connect_deferred(): the kernel's answers (port, timestamp offset), one per call in order
  // (a bound socket's port stays its own); none left: -EOPNOTSUPP, the stack chooses itself. A
  // connected fake holds the port (local) until disconnect(), which frees one not bound by number
  // (port_held false) and, as the kernel's, leaves getsockname() saying it; it records the Fast Open
  // options set back (fastopen_back) and answers TCP_FASTOPEN_CONNECT with them, 1 while connected.
  std::vector<std::pair<uint16_t, uint32_t>> probes;
  size_t probes_taken = 0;
  int deferred = 0;      // connect_deferred() calls that connected
  int disconnects = 0;
  bool deferred_connected = false;
  bool port_held = false;
  bool bindaddr_lock = false;  // SOCK_BINDADDR_LOCK: bind() named an address
  int fastopen_back = 0;
  int connect_deferred(int, be32 saddr, be32 daddr, uint16_t dport, bool, int, uint16_t* sport,
                       uint32_t* ts_off) override {
    if (probes_taken == probes.size()) return -EOPNOTSUPP;
    std::tie(*sport, *ts_off) = probes[probes_taken++];
    if (port_held) *sport = ntohs(local.sin_port);
    port_held = true;
    local.sin_addr.s_addr = saddr;
    local.sin_port = htons(*sport);
    peer.sin_addr.s_addr = daddr;
    peer.sin_port = htons(dport);
    ++deferred;
    deferred_connected = true;
    return 0;
  }
  int disconnect(int, int fastopen) override {
    ++disconnects;
    deferred_connected = false;
    if (!bindport_lock) port_held = false;
    if (!bindaddr_lock) local.sin_addr.s_addr = 0;  // kernel: tcp_disconnect()'s inet_reset_saddr()
    fastopen_back = fastopen;
    peer = sockaddr_in{.sin_family = AF_INET};
    return 0;
  }
  int shutdown(int, int) override { return 0; }
  // TCP's listener: the fake kernel socket listens and never has a connection of its own.
  int listen(int, int) override { return 0; }
  int accept(int, sockaddr*, socklen_t*, int) override { return -EAGAIN; }
  ssize_t recvmsg(int, msghdr*, int) override { return -EAGAIN; }
  // A blocking call's wait: on_wait decides (run the link, move the clock, report a signal).
  int wait(int, int dev_fd, int timeout_ms) override {
    ++waits;
    return on_wait ? on_wait(dev_fd, timeout_ms) : 0;
  }
  // TCP_REPAIR at fork(): the state handed over, its byte ranges copied; repair_result decides.
  int tcp_repair(int, const TcpRepairState& st) override {
    ++repairs;
    repaired = st;
    repaired_rcvq.assign(st.rcvq.begin(), st.rcvq.end());
    repaired_sentq.assign(st.sentq.begin(), st.sentq.end());
    repaired_unsent.assign(st.unsent.begin(), st.unsent.end());
    repaired.rcvq = repaired.sentq = repaired.unsent = {};
    return repair_result;
  }
  bool signal_restarts() override { return sa_restart; }
  uint64_t now_ns() override { return clock != nullptr ? clock() : clock_ns; }
  uint16_t random_u16() override { return 0x1234; }
  void note_pass_through(int, be32 daddr, const char* why) override {
    passed.push_back(daddr);
    last_why = why;
  }

  sockaddr_in local{.sin_family = AF_INET};
  bool bindport_lock = false;
  int autobinds = 0;
  sockaddr_in peer{.sin_family = AF_INET};
  int rcvbuf = 212992;
  int sndbuf = 212992;  // net.core.wmem_default
  static constexpr int kWmemMax = 212992;
  timeval sndtimeo{};
  int reuseport = 0;
  int zerocopy = 0;                 // SO_ZEROCOPY
  int gso_size = 0;                 // UDP_SEGMENT
  std::function<int(int dev_fd, int timeout_ms)> on_wait;
  int waits = 0;
  bool sa_restart = false;
  uint64_t clock_ns = 1'000'000'000;
  int so_error = 0;                 // the kernel socket's sk_err (positive errno)
  uint64_t (*clock)() = nullptr;    // when set, the clock (the benchmark's: monotonic)
  std::vector<be32> passed;
  int repairs = 0;
  int repair_result = 0;
  TcpRepairState repaired;
  std::vector<uint8_t> repaired_rcvq, repaired_sentq, repaired_unsent;
  std::string last_why;

 private:
  be32 if_addr_;
};

}  // namespace xmit::testing
