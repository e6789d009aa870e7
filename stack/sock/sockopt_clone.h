// stack/sock/sockopt_clone.h — what an accepted child inherits of its listener's socket options.
// The kernel's child is a copy of the listener (sk_clone_lock(), inet_csk_clone_lock()): every
// option set on the listener holds for the child. A child of the stack gets a fresh kernel socket
// for its fd, so the listener keeps the setsockopt() calls that succeeded on it and the child's
// socket gets them again (TcpSocket::adopt_fd()), in the order they were last set (options that
// write the same field — SO_SNDBUF and SO_SNDBUFFORCE, IP_TOS and SO_PRIORITY — end as on the
// listener). A listener's record is an immutable snapshot its children share (SockOptRef): an
// accept() takes a reference, not a copy; a setsockopt() on the listener makes the next snapshot.
// Left out: what the clone does not carry (the accept queue's TCP_DEFER_ACCEPT,
// TCP_QUICKACK's one-shot, TCP_REPAIR*, SO_INCOMING_CPU and SO_RESERVE_MEM, which
// sk_clone_lock() resets, the struct socket's SO_PASSCRED/SO_PASSSEC/SO_PASSPIDFD, IP_OPTIONS,
// which the child takes from the SYN) and, a known gap, what the clone does carry but cannot be
// replayed from a fixed-size value: socket filters and device binding (pointers, names).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <new>
#include <utility>

namespace xmit {

class SockOptRecord {
 public:
  struct Opt {
    int level = 0, name = 0;
    uint8_t len = 0;
    uint8_t val[16] = {};
  };
  static constexpr int kMax = 24;

  static bool cloneable(int level, int name, socklen_t len) {
    if (len > sizeof(Opt::val)) return false;
    if (level == SOL_SOCKET) {
      switch (name) {
        case SO_ATTACH_FILTER: case SO_DETACH_FILTER: case SO_ATTACH_BPF: case SO_ATTACH_REUSEPORT_CBPF:
        case SO_ATTACH_REUSEPORT_EBPF: case SO_BINDTODEVICE: case SO_BINDTOIFINDEX: case SO_LOCK_FILTER:
        case SO_PASSCRED: case SO_PASSSEC: case SO_INCOMING_CPU:
        case 73:  // SO_RESERVE_MEM
        case 76:  // SO_PASSPIDFD
          return false;
        default: return true;
      }
    }
    if (level == IPPROTO_TCP) {
      // TCP_DEFER_ACCEPT 9, TCP_QUICKACK 12, TCP_REPAIR 19, TCP_REPAIR_QUEUE 20, TCP_QUEUE_SEQ 21,
      // TCP_REPAIR_OPTIONS 22, TCP_FASTOPEN 23 (a listener's), TCP_REPAIR_WINDOW 29, TCP_ULP 31
      switch (name) {
        case 9: case 12: case 19: case 20: case 21: case 22: case 23: case 29: case 31: return false;
        default: return true;
      }
    }
    return level == IPPROTO_IP && name != IP_OPTIONS;
  }
  // A setsockopt() that succeeded, if the clone carries it: kept as add() keeps it.
  void note(int level, int name, const void* val, socklen_t len) {
    if (val != nullptr && cloneable(level, name, len)) add(level, name, val, len);
  }
  // Any option of at most 16 bytes (a listener's own, TCP_DEFER_ACCEPT, included), last: an option
  // set again moves to the end.
  void add(int level, int name, const void* val, socklen_t len) {
    if (len > sizeof(Opt::val)) return;
    int i = 0;
    while (i < n_ && !(opts_[i].level == level && opts_[i].name == name)) ++i;
    if (i < n_) {
      for (; i + 1 < n_; ++i) opts_[i] = opts_[i + 1];
      --n_;
    }
    if (n_ == kMax) return;
    Opt* o = &opts_[n_++];
    o->level = level;
    o->name = name;
    o->len = static_cast<uint8_t>(len);
    std::memcpy(o->val, val, len);
  }
  const Opt* begin() const { return opts_.data(); }
  const Opt* end() const { return opts_.data() + n_; }
  bool empty() const { return n_ == 0; }

 private:
  std::array<Opt, kMax> opts_;
  int n_ = 0;
};

// A shared, immutable SockOptRecord: the listener holds the newest, each child accepted since it
// was made holds it until its fd is given the options (TcpSocket::adopt_fd()). Copying a
// reference allocates nothing; the last holder frees the record, from any thread.
class SockOptRef {
 public:
  SockOptRef() = default;
  SockOptRef(const SockOptRef& o) noexcept : s_(o.s_) {
    if (s_ != nullptr) s_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  SockOptRef(SockOptRef&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  SockOptRef& operator=(SockOptRef o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~SockOptRef() {
    if (s_ != nullptr && s_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete s_;
  }

  // The record with one more setsockopt() noted (note()), as a new snapshot: holders of the old
  // one keep it. Out of memory: unchanged (the children miss that option).
  void noted(int level, int name, const void* val, socklen_t len) {
    auto* n = new (std::nothrow) Shared;
    if (n == nullptr) return;
    if (s_ != nullptr) n->rec = s_->rec;
    n->rec.note(level, name, val, len);
    *this = SockOptRef(n);
  }
  void reset() { *this = SockOptRef(); }
  const SockOptRecord* get() const { return s_ != nullptr ? &s_->rec : nullptr; }
  bool empty() const { return s_ == nullptr || s_->rec.empty(); }

 private:
  struct Shared {
    std::atomic<int> refs{1};
    SockOptRecord rec;
  };
  explicit SockOptRef(Shared* s) noexcept : s_(s) {}
  Shared* s_ = nullptr;
};

}  // namespace xmit
