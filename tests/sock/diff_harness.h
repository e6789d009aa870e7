// tests/sock/diff_harness.h — runs one send case through the kernel (a non-blocking UDP socket
// sending to 127.0.0.1) and through stack/sock's checks, and reports both errnos.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace xmit::test {

// Control bytes built cmsg by cmsg (CMSG_SPACE padding between messages).
class Ctl {
 public:
  // A message with cmsg_len = CMSG_LEN(n).
  Ctl& add(int level, int type, const void* data, size_t n);
  // A message whose cmsg_len field says `cmsg_len`, followed by n data bytes (then padding).
  Ctl& add_len(size_t cmsg_len, int level, int type, const void* data, size_t n);
  template <typename T>
  Ctl& val(int level, int type, T v) {
    return add(level, type, &v, sizeof(v));
  }
  Ctl& junk(size_t n, uint8_t byte);
  const std::vector<uint8_t>& bytes() const { return b_; }

 private:
  std::vector<uint8_t> b_;
};

// Everything one case's msghdr (or sendto arguments) points at. Not movable: msg points inside.
struct Msg {
  Msg() = default;
  Msg(const Msg&) = delete;
  Msg& operator=(const Msg&) = delete;

  sockaddr_storage name{};
  std::vector<iovec> iov;
  alignas(16) uint8_t ctl[1024] = {};
  msghdr msg{};
  // sendto(2)
  const void* buf = nullptr;
  size_t len = 0;
  const sockaddr* addr = nullptr;
  int addrlen = 0;

  // Puts control bytes into ctl (at `offset`, to test unaligned control buffers).
  void set_ctl(const Ctl& c, size_t offset = 0);
};

enum class Api { kSendmsg, kSendto };
enum Setup : unsigned {
  kNone = 0,
  kTxtime = 1,     // setsockopt(SO_TXTIME, CLOCK_MONOTONIC)
  kTsOptId = 2,    // setsockopt(SO_TIMESTAMPING, OPT_ID | TX_SOFTWARE | SOFTWARE)
  kConnected = 4,  // connect() to the receiver
};

struct Case {
  const char* name;
  Api api;
  unsigned setup;
  unsigned flags;
  // Fills m; the default (see default_msg) has already been applied.
  std::function<void(Msg& m, const sockaddr_in& dst)> build;
  int expect;         // errno (0: success) with CAP_NET_RAW/CAP_NET_ADMIN
  int expect_nocap;   // without them; -1: same as expect
};

// 10 payload bytes to `dst` in one iovec (sendmsg), or buf/len/addr (sendto).
void default_msg(Msg& m, const sockaddr_in& dst);

struct Caps {
  bool net_raw = false;
  bool net_admin = false;
};
Caps current_caps();
// Drops CAP_NET_RAW and CAP_NET_ADMIN from this process's effective/permitted/inheritable sets.
bool drop_net_caps();

struct Outcome {
  int kernel;
  int xmit;
};

class DiffHarness {
 public:
  DiffHarness();  // binds the receiver on 127.0.0.1:<ephemeral>
  ~DiffHarness();
  Outcome run(const Case& c, const Caps& caps);
  const sockaddr_in& dst() const { return dst_; }
  int optmem_max() const { return optmem_max_; }

 private:
  int kernel_errno(const Case& c);
  int xmit_errno(const Case& c, const Caps& caps);
  void drain();
  int rx_ = -1;
  sockaddr_in dst_{};
  int optmem_max_ = 0;
};

// The table (sendmsg_diff_cases.cc).
const std::vector<Case>& cases();
// "name: kernel X, xmit Y, expected Z" for a mismatch, "" when all agree.
std::string check(const Case& c, const Outcome& o, bool have_caps);

}  // namespace xmit::test
