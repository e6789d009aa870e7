// tests/udp/fake_shadow.h — the kernel shadow socket (ShadowOps) faked for UdpSock tests and the
// in-stack benchmark: binds record the address (port 0 -> kAutobindPort), names come back from it,
// the clock stands still unless the test moves it (`now`) or gives it one (`clock`), a pending socket error (`so_error`) is
// consumed by getsockopt(SO_ERROR) as the kernel's sock_error() does, pass-through notes are recorded.
#pragma once

#include <netinet/in.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "stack/udp/udp_sock.h"

namespace xmit::testing {

class FakeShadow final : public ShadowOps {
 public:
  static constexpr uint16_t kAutobindPort = 40000;  // what the fake kernel autobinds to

  // `if_addr`: the local address a connect() picks for an unbound socket.
  explicit FakeShadow(be32 if_addr) : if_addr_(if_addr) {}

  // Autobinds take kAutobindPort, then kAutobindPort + 1, ...
  int bind(int, const sockaddr* a, socklen_t) override {
    sockaddr_in sin;
    std::memcpy(&sin, a, sizeof sin);
    local = sin;
    bindport_lock = sin.sin_port != 0;
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
  int setsockopt(int, int, int, const void*, socklen_t) override { return 0; }
  int getsockopt(int, int level, int name, void* v, socklen_t* l) override {
    if (level == SOL_SOCKET && name == SO_RCVBUF) {
      std::memcpy(v, &rcvbuf, sizeof rcvbuf);
      *l = sizeof rcvbuf;
      return 0;
    }
    if (level == SOL_SOCKET && name == SO_ERROR) {  // kernel: sk_getsockopt(): -sock_error(sk)
      int e = std::exchange(so_error, 0);
      *l = std::min<socklen_t>(*l, sizeof e);
      std::memcpy(v, &e, *l);
      return 0;
    }
    return -ENOPROTOOPT;
  }
  int shutdown(int, int) override { return 0; }
  ssize_t recvmsg(int, msghdr*, int) override { return -EAGAIN; }
  int wait(int, int, int) override { return 0; }
  uint64_t now_ns() override { return clock != nullptr ? clock() : now; }
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
  int so_error = 0;                 // the kernel socket's sk_err (positive errno)
  uint64_t now = 1'000'000'000;
  uint64_t (*clock)() = nullptr;    // when set, the clock (the benchmark's: monotonic)
  std::vector<be32> passed;
  std::string last_why;

 private:
  be32 if_addr_;
};

}  // namespace xmit::testing
