// preload/engine.cc — opening the stack instance (see engine.h) and the shadow socket operations.
#include "preload/engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include "preload/kernel_connect.h"
#include "preload/fd_table.h"
#include "preload/libc.h"
#include "preload/log.h"
#include "preload/own_fds.h"
#include "preload/tcp_repair.h"
#include "preload/wait_slice.h"
#include "preload/workers.h"
#include "stack/dev/pcap.h"
#include "stack/neigh/netlink_fib.h"
#include "stack/stream/tcp_socket.h"
#include "verbs/ibv/ibv_netdev.h"
#include "verbs/ibv/rx_inject.h"
#include "verbs/ibv/sw/sw_verbs.h"
#include "verbs/xdp/xdp_netdev.h"

namespace xmit {
namespace {

std::atomic<uint32_t> g_busy_poll_us{0};  // engine_busy_poll_us()

// The stack's clock: the kernel's jiffies as user space sees them (CLOCK_MONOTONIC_COARSE, one
// tick resolution: 4 ms at HZ=250). The kernel runs the same timers on jiffies (neighbour states,
// ip_idents_reserve(), SO_SNDTIMEO/SO_RCVTIMEO); what the tick changes here is the control cadence
// (kControlIntervalNs), which becomes "once per tick" while sends run. Read once per send: on this
// VM 8 ns against 31 ns for CLOCK_MONOTONIC, the largest single cost of an in-stack send.
uint64_t tick_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t real_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

int neg_errno(ssize_t r) { return r < 0 ? -errno : static_cast<int>(r); }

// A SipHash key from getrandom(); with no entropy yet, from the clock, as `secret` then is.
void random_key(siphash_key_t* k, uint64_t secret) {
  if (getrandom(k, sizeof *k, GRND_NONBLOCK) == sizeof *k) return;
  k->key[0] = mono_ns() ^ secret;
  k->key[1] = mono_ns() * 0x9e3779b97f4a7c15ull;
}

std::atomic<int> g_rx_waiters{0};
std::atomic<unsigned> g_random_gen{0};  // a forked child's random_u16() batches are drawn anew

class LibcShadow final : public ShadowOps {
 public:
  int bind(int fd, const sockaddr* a, socklen_t l) override { return neg_errno(libc().bind(fd, a, l)); }
  int connect(int fd, const sockaddr* a, socklen_t l) override { return neg_errno(libc().connect(fd, a, l)); }
  int getname(int fd, sockaddr* a, socklen_t* l, bool peer) override {
    return neg_errno(peer ? libc().getpeername(fd, a, l) : libc().getsockname(fd, a, l));
  }
  int setsockopt(int fd, int level, int name, const void* v, socklen_t l) override {
    return neg_errno(libc().setsockopt(fd, level, name, v, l));
  }
  int getsockopt(int fd, int level, int name, void* v, socklen_t* l) override {
    return neg_errno(libc().getsockopt(fd, level, name, v, l));
  }
  int shutdown(int fd, int how) override { return neg_errno(libc().shutdown(fd, how)); }
  int listen(int fd, int backlog) override { return neg_errno(libc().listen(fd, backlog)); }
  // accept4()'s SOCK_NONBLOCK is the new fd's; the listening fd may block, and its O_NONBLOCK is the
  // program's to see: a poll with no wait says whether a connection waits. (Another thread taking
  // it in between would leave this one blocked in accept4(), as a blocking listener does.)
  int accept(int fd, sockaddr* a, socklen_t* l, int flags) override {
    pollfd p{fd, POLLIN, 0};
    if (libc().poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN)) return -EAGAIN;
    return neg_errno(libc().accept4(fd, a, l, flags));
  }
  int connect_deferred(int fd, be32 saddr, be32 daddr, uint16_t dport, bool nonblock, int fastopen, uint16_t* sport,
                       uint32_t* ts_off) override {
    return kernel_connect_deferred(fd, saddr, daddr, dport, nonblock, fastopen, sport, ts_off);
  }
  int disconnect(int fd, int fastopen) override { return kernel_disconnect(fd, fastopen); }
  int tcp_repair(int fd, const TcpRepairState& st) override {
    const char* step = "";
    int err = tcp_repair_into(fd, st, &step);
    if (err != 0) {
      logf(LogLevel::kWarn, "fd %d: cannot move its connection into the kernel socket (%s: %s)", fd, step, strerror(-err));
    } else if (step != nullptr) {
      logf(LogLevel::kError, "fd %d: its connection moved into the kernel socket, but %s could not be queued: lost", fd, step);
    }
    return err;
  }
  ssize_t recvmsg(int fd, msghdr* m, int flags) override {
    ssize_t r = libc().recvmsg(fd, m, flags);
    return r < 0 ? -errno : r;
  }
  int wait(int fd, int dev_fd, int timeout_ms) override {
    pollfd p[2] = {{fd, POLLIN, 0}, {dev_fd, POLLIN, 0}};  // a negative fd is skipped by poll(2)
    engine_rx_waiter(1);
    int r = libc().poll(p, 2, timeout_ms);  // the kernel's poll: these fds are the stack's own view
    engine_rx_waiter(-1);
    if (r < 0) return -errno;
    return (p[0].revents & (POLLERR | POLLIN)) == POLLERR ? kShadowErrOnly : 0;
  }
  // The signal that interrupted poll() is not known: the kernel would restart the send only if
  // its handler has SA_RESTART, so restart only when every installed handler has it (glibc's
  // signal() sets it). Costs a sigaction() per signal, after an interruption only.
  bool signal_restarts() override {
    for (int sig = 1; sig < NSIG; ++sig) {
      struct sigaction sa;
      if (sigaction(sig, nullptr, &sa) != 0) continue;
      bool handler = (sa.sa_flags & SA_SIGINFO) ? sa.sa_sigaction != nullptr
                                                : sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN;
      if (handler && !(sa.sa_flags & SA_RESTART)) return false;
    }
    return true;
  }
  uint64_t now_ns() override { return tick_ns(); }
  // kernel: get_random_u16() draws from a per-CPU batch of random bytes, not one getrandom() a
  // call: here a per-thread batch of 32, drawn again in a forked child (g_random_gen).
  uint16_t random_u16() override {
    struct Batch {
      uint16_t v[32];
      unsigned left = 0;
      unsigned gen = 0;
    };
    static thread_local __attribute__((tls_model("initial-exec"))) Batch t_batch;
    Batch& b = t_batch;
    const unsigned gen = g_random_gen.load(std::memory_order_relaxed);
    if (b.left == 0 || b.gen != gen) {
      if (getrandom(b.v, sizeof b.v, GRND_NONBLOCK) != sizeof b.v) return static_cast<uint16_t>(mono_ns());
      b.left = std::size(b.v);
      b.gen = gen;
    }
    return b.v[--b.left];
  }
  // The owner is read now (the fd is this one's), the signal raised once the thread leaves the
  // stack: raised under the lock, its handler would run inside the stack, where the program's
  // socket calls go to the shadow and a handler that siglongjmp()s out (ftpd's ABOR) would leave
  // the lock held for good. The kernel's SIGURG is asynchronous too.
  void send_sigurg(int fd) override {
    const int saved = errno;
    f_owner_ex o{};
    if (libc().fcntl(fd, F_GETOWN_EX, &o) == 0 && o.pid > 0 && t_sigurg_n < kSigurgMax) {
      t_sigurg[t_sigurg_n++] = o;
      StackMutex::after_unlock(raise_pending_sigurg);
    }
    errno = saved;
  }
  static constexpr int kSigurgMax = 8;
  static inline thread_local __attribute__((tls_model("initial-exec"))) f_owner_ex t_sigurg[kSigurgMax];
  static inline thread_local __attribute__((tls_model("initial-exec"))) int t_sigurg_n = 0;
  static void raise_pending_sigurg() {
    const int saved = errno;
    for (int i = 0; i < t_sigurg_n; ++i) {
      const f_owner_ex& o = t_sigurg[i];
      switch (o.type) {
        case F_OWNER_TID: syscall(SYS_tkill, o.pid, SIGURG); break;  // any thread, as the kernel
        case F_OWNER_PGRP: kill(-o.pid, SIGURG); break;
        default: kill(o.pid, SIGURG); break;
      }
    }
    t_sigurg_n = 0;
    errno = saved;
  }
  void note_pass_through(int fd, be32 daddr, const char* why) override {
    const Runtime* rt = runtime();
    char a[INET_ADDRSTRLEN] = "0.0.0.0";
    inet_ntop(AF_INET, &daddr, a, sizeof a);
    logf(LogLevel::kDebug, "fd %d: no route to %s via %s: passes through (%s)", fd, a,
         rt ? rt->config.iface.c_str() : "?", why);
  }
};

LibcShadow g_shadow;

// The stack's control plane (ControlOps): ONE epoll set holding the rtnetlink notification socket
// (level-triggered EPOLLIN) and every watched shadow socket with events = 0, edge-triggered (the
// kernel always reports EPOLLERR and EPOLLHUP; edge-triggered, a shadow is reported once per new
// error, not on every look while its error queue is non-empty). The stack looks with timeout 0 at
// its control cadence (UdpStackOptions::control_interval_ns): one syscall per interval when nothing
// changed, none on the send path in between.
class EngineControl final : public ControlOps {
 public:
  EngineControl(int epfd, NetlinkFib* fib, PcapNetdev* rec) : epfd_(epfd), fib_(fib), rec_(rec) {}
  ~EngineControl() override { libc().close(epfd_); }

  void poll_changes(uint64_t now, NeighTable& neigh, absl::FunctionRef<void(int)> on_shadow_error) override {
    epoll_event ev[32];
    int n;
    do {
      n = libc().epoll_wait(epfd_, ev, 32, 0);  // the kernel's: this set is xmit's own
      for (int i = 0; i < n; ++i) {
        if (ev[i].data.u64 == kNetlinkTag) {
          fib_->poll_changes([&](const NeighEvent& e) { neigh.neigh_update(e, now); });
        } else {
          on_shadow_error(static_cast<int>(ev[i].data.u64));
        }
      }
    } while (n == 32);
  }
  void watch_shadow(int fd) override {
    epoll_event ev{};
    ev.events = EPOLLET;  // + EPOLLERR | EPOLLHUP, which epoll always adds
    ev.data.u64 = static_cast<uint64_t>(fd);
    if (libc().epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0 && errno != EEXIST) {
      logf(LogLevel::kWarn, "fd %d: cannot watch the kernel socket for errors (%s); ICMP errors are not reported",
           fd, strerror(errno));
    }
  }
  void unwatch_shadow(int fd) override { (void)libc().epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }
  void on_poll(uint64_t) override {
    if (rec_ != nullptr) rec_->set_now(real_ns());
  }

  static constexpr uint64_t kNetlinkTag = uint64_t{1} << 32;  // no fd looks like it
  int fd() const { return epfd_; }

 private:
  int epfd_;
  NetlinkFib* fib_;
  PcapNetdev* rec_;
};

// The TX doorbell flusher (XMIT_TX_BATCH > 1): the queue then rings the kernel once per batch of
// frames (the first frame after a quiet period rings at once: XdpNetdev::xmit()), and frames below
// a batch wait for the next send that fills it, a receive, a blocking send, a close, the exit, or
// this thread, which looks every kFlushIntervalNs while frames are being held and rings the
// doorbell for whatever waits. So a datagram leaves one interval (two if the lock was busy at the
// look, plus the thread's wake-up) after its send even when the program sends nothing more and
// never enters the stack again (measured: README, XMIT_TX_BATCH). When a look
// finds nothing waiting, the thread sleeps on a futex until the next send (the hold hook: one
// FUTEX_WAKE per burst, whose first frame rings the doorbell at once), so an idle program has no
// wake-ups. It takes the stack's lock only if free: a thread holding it is in the stack and rings
// the doorbell itself at its batch, receive or wait. Not started with XMIT_TX_BATCH=1 (every send
// rings the doorbell).
constexpr long kFlushIntervalNs = 200'000;
std::atomic<int> g_flusher_active{0};  // 0: the flusher sleeps on the futex; 1: it looks per interval

void wake_flusher(void*) {
  g_flusher_active.store(1, std::memory_order_release);
  syscall(SYS_futex, &g_flusher_active, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

struct Engine {
  std::unique_ptr<xdp::XdpNetdev> xdp;   // one of these two is the queue
  std::unique_ptr<ibv::IbvNetdev> ibv;
  PcapWriter pcap;
  std::unique_ptr<PcapNetdev> recorded;
  std::unique_ptr<NetlinkFib> fib;
  std::unique_ptr<UdpStack> udp;
  std::unique_ptr<TcpStack> tcp;
  std::unique_ptr<EngineControl> control;
  // verbs: how UDP fragments the queue got go to the kernel (ip_frag_to_kernel()): onto the
  // interface's receive path, or else a raw IPv4 socket to the local address
  std::unique_ptr<ibv::RxInject> rx_inject;
  int frag_fd = -1;
  int progress_efd = -1;  // wakes the progress thread for a TX poll deadline (progress_tx_poll())
  // Only an engine that failed to open is destroyed (open_engine()'s early returns).
  ~Engine() {
    if (frag_fd >= 0) libc().close(frag_fd);
    if (progress_efd >= 0) libc().close(progress_efd);
  }
};

// UdpStackOptions::ip_frag_to_kernel on verbs. A NIC's flow rule takes the first fragment of a
// datagram to a steered UDP port (it carries the ports) and leaves the later ones, which carry
// none, to the kernel. The first goes back to the kernel unchanged, onto the interface's receive
// path (ibv::RxInject: an AF_PACKET send turned round by a tcx egress program), so the kernel
// receives it as it would have from the NIC, only later — as a reordered fragment — and
// ip_defrag() files it with the others: the datagram reaches the shadow socket, which the
// offloaded socket reads too, with the receiving interface's metadata (IP_PKTINFO's ifindex,
// SO_BINDTODEVICE, rp_filter).
//
// Without the programs (no CAP_BPF/CAP_NET_ADMIN, Linux before 6.6) it goes through a raw socket
// (IPPROTO_RAW: the header is the caller's, its foreign source address allowed) to the local
// destination: output to the loopback device keeps the route, so the packet reaches
// ip_local_deliver() -> ip_defrag() too (the queue's key is saddr, daddr, id, protocol, not the
// device). The datagram arrives, but when the looped fragment is not the last of its datagram to
// reach the queue (the others delayed, or a busy stack), the reassembled skb is the loopback
// fragment's: IP_PKTINFO says ifindex 1 (lo) — a server that checks the interface (udp_server)
// fails. Also: a raw socket's IP_HDRINCL send puts a new id on a packet whose id is 0
// (raw_send_hdrinc()), so such a datagram is lost; and where a conntrack defragments on the way
// in, the looped fragment is defragmented apart from the others, at output.
int ip_frag_to_kernel(void* ctx, const uint8_t* frame, uint32_t len) {
  Engine* e = static_cast<Engine*>(ctx);
  if (e->rx_inject != nullptr) return e->rx_inject->inject(frame, len);
  const int fd = e->frag_fd;
  if (fd < 0) return -EBADF;
  constexpr uint32_t kEthHlen = 14;
  if (len < kEthHlen + 20) return -EINVAL;
  const uint8_t* ip = frame + kEthHlen;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  std::memcpy(&to.sin_addr, ip + 16, 4);
  ssize_t n = libc().sendto(fd, ip, len - kEthHlen, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&to), sizeof to);
  return n == static_cast<ssize_t>(len - kEthHlen) ? 0 : n < 0 ? -errno : -EIO;
}

// The progress thread: TCP's timers (delayed ACKs, retransmissions, TIME_WAIT...) and its receive
// path run while the program is not in the stack (computing, sleeping, blocked elsewhere), as the
// kernel's softirqs run beside any process. It sleeps until the earliest TCP timer (at most
// kProgressMaxSleepNs) or, when no thread waits on the device (engine_rx_waiter()), until frames
// arrive; with no TCP connection (and no frame in UDP's TX backlog) it sleeps on a futex until one is made
// (no idle wake-ups).
// While a thread is active in the stack (a sender: every socket call polls the device first) the
// progress thread stands aside: it does not wait for the lock that thread holds, and frames that
// arrive are left to it for kProgressDeferNs at a time as long as it goes on polling. Before,
// every ACK woke the progress thread, which took the lock from the sending thread (two context
// switches and a futex wake per ACK). The kernel's softirq likewise leaves a segment for a socket
// owned by the user to its backlog, which release_sock() processes in the sender's context.
// The defer doubles, up to kProgressDeferMaxNs, while the program keeps polling (a busy server is
// always in or near the stack: nginx under load woke this thread ~2000 times a second to find the
// work done), and falls back to kProgressDeferNs once this thread had to poll itself: a program
// that goes away after a busy spell has its frames taken up within 1 ms, then within 50 µs.
constexpr uint64_t kProgressMaxSleepNs = 100'000'000;
constexpr long kProgressDeferNs = 50'000;
constexpr long kProgressDeferMaxNs = 1'000'000;
std::atomic<int> g_progress_idle{0};  // 1: on the futex until a connection exists (wake_progress())
// While the progress thread sleeps in ppoll(): when that sleep ends (CLOCK_MONOTONIC ns), stored
// under the stack's lock with the look at the timers it is based on; 0 while it is awake.
std::atomic<uint64_t> g_progress_wake_ns{0};
std::atomic<int> g_progress_efd{-1};

// TcpStack's TX poll hook (mu() held): something now waits for a TX completion that the device
// signals to no one (AF_XDP), with a deadline of tens of microseconds (TcpStack::next_timer_ns()).
// A progress thread asleep past it — its sleep was computed before, up to the next TCP timer or
// kProgressMaxSleepNs — is woken through its eventfd, once (the exchange), to sleep again until the
// deadline; one awake reads the deadline at its next look. Not while nothing waits: an idle program
// has no wake-ups from this.
void progress_tx_poll(uint64_t deadline_ns) {
  uint64_t wake = g_progress_wake_ns.load(std::memory_order_acquire);
  if (wake <= deadline_ns || !g_progress_wake_ns.compare_exchange_strong(wake, 0, std::memory_order_acq_rel)) return;
  const uint64_t one = 1;
  (void)!libc().write(g_progress_efd.load(std::memory_order_relaxed), &one, sizeof one);
}

void* progress_main(void* arg) {
  Engine* e = static_cast<Engine*>(arg);
  UdpStack& u = *e->udp;
  timespec defer{0, kProgressDeferNs};
  auto back_off = [&defer] { defer.tv_nsec = std::min(defer.tv_nsec * 2, kProgressDeferMaxNs); };
  for (;;) {
    uint64_t next;
    uint64_t now;
    bool conns;
    {
      std::unique_lock<StackMutex> lk(u.mu(), std::try_to_lock);
      if (!lk.owns_lock()) {  // a thread in the stack: it polls the device and runs the timers
        clock_nanosleep(CLOCK_MONOTONIC, 0, &defer, nullptr);
        back_off();
        continue;
      }
      next = std::min(e->tcp->next_timer_ns(), u.next_timer_ns());
      // Frames in UDP's backlog keep the thread up as a connection does (UdpStack::set_tx_poll_hook()).
      conns = e->tcp->has_conns() || u.tx_backlog() != 0;
      now = mono_ns();
      // Before the unlock: a TX poll deadline set after it finds this and wakes the thread.
      if (conns) g_progress_wake_ns.store(next <= now ? 0 : std::min(next, now + kProgressMaxSleepNs),
                                          std::memory_order_release);
      // Idle from here, under the lock: the connection that ends it is made under the lock too,
      // and its hook (wake_progress()) then sees the 1. Stored after the unlock, it raced with a
      // socket() between the look and the store, and an accepted child (no socket() call) never
      // woke the thread: nginx's listener made while the thread looked left it asleep for good,
      // its connections' timers running only inside nginx's own socket calls.
      if (!conns) g_progress_idle.store(1, std::memory_order_release);
    }
    if (!conns) {
      syscall(SYS_futex, &g_progress_idle, FUTEX_WAIT_PRIVATE, 1, nullptr, nullptr, 0);
      continue;
    }
    uint64_t sleep_ns = next <= now ? 0 : std::min(next - now, kProgressMaxSleepNs);
    timespec ts{static_cast<time_t>(sleep_ns / 1'000'000'000u), static_cast<long>(sleep_ns % 1'000'000'000u)};
    auto no_sleepers = [&] {
      return g_rx_waiters.load(std::memory_order_acquire) == 0 && u.rx_sleepers.load(std::memory_order_acquire) == 0;
    };
    pollfd p[2] = {{no_sleepers() ? u.dev().wait_fd() : -1, POLLIN, 0}, {e->progress_efd, POLLIN, 0}};
    if (sleep_ns > 0) libc().ppoll(p, 2, &ts, nullptr);
    g_progress_wake_ns.store(0, std::memory_order_release);
    if (p[1].revents & POLLIN) {
      uint64_t v;
      (void)!libc().read(e->progress_efd, &v, sizeof v);
      continue;  // a TX poll deadline was set: sleep again until it
    }
    if (no_sleepers()) {
      // Frames (or a timer) are due and nobody sleeps on the device: a thread that polls the
      // device meanwhile takes them itself; look again then.
      const uint64_t seen = u.polls.load(std::memory_order_acquire);
      clock_nanosleep(CLOCK_MONOTONIC, 0, &defer, nullptr);
      if (u.polls.load(std::memory_order_acquire) != seen) {
        back_off();
        continue;
      }
    }
    defer.tv_nsec = kProgressDeferNs;
    std::lock_guard<StackMutex> g(u.mu());
    XmitMoreScope burst(u.dev());
    if (no_sleepers()) {
      u.poll(tick_ns());  // receive + every timer
    } else {
      u.tx_complete_now();  // completions (AF_XDP's wake no one) and what they release: no receive
      e->tcp->timers();
    }
  }
  return nullptr;
}

// Starts one of the engine's threads, detached, with every signal blocked (the program's handlers
// run on its own threads).
bool start_engine_thread(void* (*main)(void*), Engine* e, const char* name) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  int err = pthread_create(&t, &attr, main, e);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (err == 0) pthread_setname_np(t, name);
  return err == 0;
}

bool start_progress(Engine* e) { return start_engine_thread(progress_main, e, "xmit-progress"); }

// TcpStack's first-connection hook (mu() held): the progress thread may sleep for want of one.
void wake_progress() {
  if (g_progress_idle.exchange(0, std::memory_order_acq_rel) == 1) {
    syscall(SYS_futex, &g_progress_idle, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  }
}

// UdpStack's TX poll hook (mu() held): frames now wait in the backlog for a completion to make
// room at the device. The progress thread may sleep on its futex (no TCP connection: it looks at
// nothing) or in ppoll() past `deadline_ns` (UINT64_MAX on a device whose completions make its
// wait_fd readable): woken, it takes the backlog into account (progress_main()) and reaps by the
// deadline or at the completion. Before, the frames waited for the program's next call into the
// stack, or the next TCP timer (up to kProgressMaxSleepNs).
void progress_udp_backlog(uint64_t deadline_ns) {
  wake_progress();
  progress_tx_poll(deadline_ns);
}

void* flusher_main(void* arg) {
  Engine* e = static_cast<Engine*>(arg);
  const timespec interval{0, kFlushIntervalNs};
  for (;;) {
    if (g_flusher_active.load(std::memory_order_acquire) == 0) {
      // Sleeps while 0; a wake between the store of 0 below and this wait makes it return at once.
      syscall(SYS_futex, &g_flusher_active, FUTEX_WAIT_PRIVATE, 0, nullptr, nullptr, 0);
      continue;
    }
    clock_nanosleep(CLOCK_MONOTONIC, 0, &interval, nullptr);
    std::unique_lock<StackMutex> lk(e->udp->mu(), std::try_to_lock);
    if (!lk.owns_lock()) continue;
    e->udp->dev().flush_tx();
    if (e->xdp->tx_idle()) {  // nothing was held since the last look: sleep until the next send
      g_flusher_active.store(0, std::memory_order_release);
      e->xdp->arm_tx_hold_hook();
    }
  }
  return nullptr;
}

// Starts the flusher, its hold hook armed.
bool start_flusher(Engine* e) {
  e->xdp->set_tx_hold_hook(wake_flusher, nullptr);
  e->xdp->arm_tx_hold_hook();
  return start_engine_thread(flusher_main, e, "xmit-flush");
}

std::mutex g_open_mu;
Engine* g_engine = nullptr;  // never freed (see engine.h)
bool g_tried = false;
std::string g_why;
bool g_forked = false;  // this process is a fork()ed child of one that used the stack
uint64_t g_retry_ns = 0;  // a forked child retries opening from then on (the parent may let go)
int g_failures = 0;

// Every fd the engine holds, for the program not to close (own_fds.h) and a forked child to close.
void for_each_engine_fd(const Engine& e, absl::FunctionRef<void(int fd)> f) {
  if (e.xdp) e.xdp->for_each_fd(f);
  if (e.ibv) e.ibv->for_each_fd(f);
  f(e.fib->request_fd());
  f(e.fib->notify_fd());
  f(e.control->fd());
  if (e.pcap.is_open()) f(e.pcap.fd());
  if (e.frag_fd >= 0) f(e.frag_fd);
  if (e.progress_efd >= 0) f(e.progress_efd);
  if (e.rx_inject != nullptr) e.rx_inject->for_each_fd(f);
}

// A port list sysctl ("8080,9000-9100"), as inclusive ranges; empty when absent.
std::vector<std::pair<uint16_t, uint16_t>> read_port_ranges(const char* path) {
  std::vector<std::pair<uint16_t, uint16_t>> out;
  FILE* f = fopen(path, "re");
  if (f == nullptr) return out;
  unsigned lo = 0, hi = 0;
  while (fscanf(f, "%u", &lo) == 1) {
    hi = lo;
    int c = fgetc(f);
    if (c == '-') {
      if (fscanf(f, "%u", &hi) != 1) break;
      c = fgetc(f);
    }
    if (lo <= hi && hi <= 65535) out.emplace_back(static_cast<uint16_t>(lo), static_cast<uint16_t>(hi));
    if (c != ',') break;
  }
  fclose(f);
  return out;
}


int open_afxdp(const Runtime& rt, Engine* e, std::string* why) {
  const std::string& ifname = rt.config.iface;
  xdp::XdpOptions opt{.ifname = ifname, .queue_id = 0, .tx_kick_batch = rt.config.tx_batch};
  std::string step;
  if (xdp::XdpProg* shared = workers_prog()) {  // a pre-fork worker: the first share no other worker holds
    int err = -EBUSY;
    for (uint32_t k = 0; k < rt.config.workers && err == -EBUSY; ++k) {
      opt.shared_prog = shared;
      opt.slot = k;
      opt.slots = rt.config.workers;
      opt.bind_wait = false;  // a share a live worker holds: busy at once, the next one tried
      err = xdp::XdpNetdev::open(opt, &e->xdp, &step);
    }
    workers_shares_busy(err == -EBUSY);
    if (err < 0) {
      *why = "cannot open a share of " + ifname + "'s RX queues (" + step + ")" +
             (err == -EBUSY ? "; other workers hold all XMIT_WORKERS=" + std::to_string(rt.config.workers) + " shares"
                            : "");
    }
    return err;
  }
  if (int err = xdp::XdpNetdev::open(opt, &e->xdp, &step); err < 0) {
    *why = "cannot open an AF_XDP queue on " + ifname + " (" + step + "); " +
           (err == -EPERM || err == -EACCES ? "run as root or with CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF"
            : err == -EBUSY ? "another program already holds this interface's XDP hook"
                            : "check that " + ifname + " is an Ethernet interface that supports XDP");
    return err;
  }
  return 0;
}

// The raw-packet QP on the interface's RDMA device, or on the software device
// (XMIT_VERBS_DEVICE=software: verbs/ibv/sw over an AF_PACKET socket on the interface).
int open_verbs(const Runtime& rt, Engine* e, std::string* why) {
  const std::string& ifname = rt.config.iface;
  ibv::IbvOptions opt{.ifname = ifname, .mr_cache_entries = rt.config.verbs_mr_entries};
  std::string sw_name;
  if (rt.config.verbs_device == VerbsDevice::kSoftware) {
    if (int err = ibv::sw::sw_attach_interface(ifname, rt.config.verbs_sw_offloads, &sw_name); err < 0) {
      *why = "cannot make the software verbs device on " + ifname + ": " + strerror(-err);
      return err;
    }
    opt.ops = &ibv::ibv_sw_ops();
  }
  std::string step;
  if (int err = ibv::IbvNetdev::open(opt, &e->ibv, &step); err < 0) {
    const char* dev = opt.ops != nullptr ? "the software verbs device" : "an ibverbs raw-packet queue";
    *why = std::string("cannot open ") + dev + " on " + ifname + " (" + step + "); " +
           (err == -EPERM || err == -EACCES ? "CAP_NET_RAW is missing: run as root or give the program CAP_NET_RAW"
            : err == -ENODEV ? ifname + " has no RDMA device: use XMIT_BACKEND=afxdp or auto, or "
                                        "XMIT_VERBS_DEVICE=software"
                             : "check that " + ifname + "'s RDMA device supports raw packet QPs");
    return err;
  }
  if (!sw_name.empty() && ibv::sw::sw_stats(sw_name).divert_active == 0) {
    logf(LogLevel::kWarn, "software verbs device on %s: its tcx divert program is not attached (needs CAP_BPF, "
         "CAP_NET_ADMIN and Linux 6.6); the kernel also receives the frames xmit steers", ifname.c_str());
  }
  return 0;
}

Engine* open_engine(const Runtime& rt, std::string* why) {
  auto e = std::make_unique<Engine>();
  const std::string& ifname = rt.config.iface;
  Netdev* dev = nullptr;
  if (rt.backend == Backend::kVerbs) {
    if (open_verbs(rt, e.get(), why) == 0) {
      dev = e->ibv.get();
    } else if (rt.afxdp_fallback) {
      e->ibv.reset();
      logf(LogLevel::kNotice, "auto: %s; AF_XDP instead", why->c_str());
    } else {
      return nullptr;
    }
  }
  if (dev == nullptr) {
    if (open_afxdp(rt, e.get(), why) < 0) return nullptr;
    dev = e->xdp.get();
  }
  if (!rt.config.pcap_file.empty()) {
    if (int err = e->pcap.open(rt.config.pcap_file.c_str()); err < 0) {
      *why = "XMIT_PCAP=" + rt.config.pcap_file + ": " + strerror(-err) + "; give a writable path";
      return nullptr;
    }
    e->recorded = std::make_unique<PcapNetdev>(*dev, e->pcap);
    dev = e->recorded.get();
  }
  if (int err = NetlinkFib::create(&e->fib); err < 0) {
    *why = std::string("cannot open rtnetlink sockets: ") + strerror(-err);
    return nullptr;
  }
  UdpStackOptions so;
  so.rx_truesize = e->ibv ? e->ibv->buf_size() : xdp::XdpNetdev::kFrameSize;
  so.realtime_ns = real_ns;
  so.clock_ns = mono_ns;  // the progress thread's clock (the backlog's TX poll deadline)
  so.optmem_max = static_cast<uint32_t>(read_sysctl_field("/proc/sys/net/core/optmem_max", 0, 131072));
  // A new socket's SO_RCVBUF, SO_SNDBUF and SO_BUSY_POLL (kernel: sock_init_data()), known here
  // rather than read back from each new kernel socket.
  so.rmem_default = static_cast<uint32_t>(std::clamp<long>(read_sysctl_field("/proc/sys/net/core/rmem_default", 0, 212992), 1, INT32_MAX));
  so.wmem_default = static_cast<uint32_t>(std::clamp<long>(read_sysctl_field("/proc/sys/net/core/wmem_default", 0, 212992), 1, INT32_MAX));
  so.busy_read = static_cast<uint32_t>(rt.config.busy_poll >= 0
                                           ? rt.config.busy_poll
                                           : std::clamp<long>(read_sysctl_field("/proc/sys/net/core/busy_read", 0, 0), 0, INT32_MAX));
  if (e->ibv) {
    std::string inject_why = "XMIT_VERBS_RX_INJECT=raw";
    if (int err = rt.config.verbs_rx_inject_raw
                      ? -EPERM
                      : ibv::RxInject::open(static_cast<int>(if_nametoindex(ifname.c_str())), &e->rx_inject, &inject_why);
        err < 0) {
      e->frag_fd = libc().socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_RAW);
      if (e->frag_fd < 0) {
        logf(LogLevel::kWarn, "cannot hand fragments back to the kernel (%s; raw IPv4 socket: %s): the first fragment "
             "of a fragmented UDP datagram to an offloaded port is dropped, and the datagram lost",
             inject_why.c_str(), strerror(errno));
      } else {
        logf(LogLevel::kInfo, "first fragments of UDP datagrams to offloaded ports go back to the kernel through a "
             "raw socket over loopback (%s): IP_PKTINFO may name lo for them", inject_why.c_str());
      }
    }
    so.ip_frag_to_kernel = ip_frag_to_kernel;
    so.ip_frag_ctx = e.get();
  }
  so.sysctl.ip_default_ttl = static_cast<uint8_t>(read_sysctl_field("/proc/sys/net/ipv4/ip_default_ttl", 0, 64));
  if (getrandom(&so.ident_seed, sizeof so.ident_seed, GRND_NONBLOCK) != sizeof so.ident_seed) so.ident_seed = mono_ns();
  if (int err = UdpStack::create(dev, e->fib.get(), so, &e->udp); err < 0) {
    *why = std::string("cannot allocate packet buffers: ") + strerror(-err);
    return nullptr;
  }
  e->udp->set_if_addr(iface_addr(ifname));
  TcpStackOptions to;
  to.clock_ns = mono_ns;
  to.rmem_default = static_cast<uint32_t>(read_sysctl_field("/proc/sys/net/ipv4/tcp_rmem", 1, 131072));
  to.wmem_default = static_cast<uint32_t>(read_sysctl_field("/proc/sys/net/ipv4/tcp_wmem", 1, 16384));
  to.rmem_max = static_cast<uint32_t>(std::max(read_sysctl_field("/proc/sys/net/ipv4/tcp_rmem", 2, 6291456),
                                               read_sysctl_field("/proc/sys/net/core/rmem_max", 0, 212992)));
  to.notsent_lowat = static_cast<uint32_t>(read_sysctl_field("/proc/sys/net/ipv4/tcp_notsent_lowat", 0, UINT32_MAX));
  to.port_low = static_cast<uint16_t>(read_sysctl_field("/proc/sys/net/ipv4/ip_local_port_range", 0, 32768));
  to.port_high = static_cast<uint16_t>(read_sysctl_field("/proc/sys/net/ipv4/ip_local_port_range", 1, 60999));
  to.reserved_ports = read_port_ranges("/proc/sys/net/ipv4/ip_local_reserved_ports");
  to.optmem_max = so.optmem_max;
  to.busy_read = so.busy_read;
  g_busy_poll_us.store(static_cast<uint32_t>(rt.config.busy_poll >= 0
                                                 ? rt.config.busy_poll
                                                 : std::clamp<long>(read_sysctl_field("/proc/sys/net/core/busy_poll", 0, 0), 0, INT32_MAX)),
                       std::memory_order_relaxed);
  // The SYN of a kernel socket's connect() is deferred only with client Fast Open, and the
  // blackhole detection (off at 0, the default since Linux 5.14) may turn that off at any time.
  if (!rt.config.tcp_kernel_ports) {
    kernel_connect_disable(nullptr);
  } else if ((read_sysctl_field("/proc/sys/net/ipv4/tcp_fastopen", 0, 1) & 1) == 0) {
    kernel_connect_disable("net.ipv4.tcp_fastopen has no 1: no client Fast Open");
  } else if (read_sysctl_field("/proc/sys/net/ipv4/tcp_fastopen_blackhole_timeout_sec", 0, 0) != 0) {
    kernel_connect_disable("net.ipv4.tcp_fastopen_blackhole_timeout_sec is not 0");
  }
  to.autocorking = rt.config.tcp_autocork && read_sysctl_field("/proc/sys/net/ipv4/tcp_autocorking", 0, 1) != 0;
  to.pingpong_thresh = static_cast<uint8_t>(std::clamp<long>(read_sysctl_field("/proc/sys/net/ipv4/tcp_pingpong_thresh", 0, 1), 1, 255));
  to.limit_output_bytes = static_cast<uint32_t>(
      std::clamp<long>(read_sysctl_field("/proc/sys/net/ipv4/tcp_limit_output_bytes", 0, 4194304), 0, INT32_MAX));
  to.pacing_ss_ratio = static_cast<uint32_t>(
      std::clamp<long>(read_sysctl_field("/proc/sys/net/ipv4/tcp_pacing_ss_ratio", 0, 200), 0, 1000));
  to.pacing_ca_ratio = static_cast<uint32_t>(
      std::clamp<long>(read_sysctl_field("/proc/sys/net/ipv4/tcp_pacing_ca_ratio", 0, 120), 0, 1000));
  // The kernel's bounds (u8, tcp_min_tso_segs at least 1).
  to.min_tso_segs = static_cast<uint8_t>(
      std::clamp<long>(read_sysctl_field("/proc/sys/net/ipv4/tcp_min_tso_segs", 0, 2), 1, 255));
  to.tso_rtt_log = static_cast<uint8_t>(
      std::clamp<long>(read_sysctl_field("/proc/sys/net/ipv4/tcp_tso_rtt_log", 0, 9), 0, 255));
  // The kernel's bounds (0 to one day, in seconds).
  to.min_rtt_wlen = static_cast<uint32_t>(
      std::clamp<long>(read_sysctl_field("/proc/sys/net/ipv4/tcp_min_rtt_wlen", 0, 300), 0, 86400));
  to.max_tw_buckets = static_cast<uint32_t>(
      std::clamp<long>(read_sysctl_field("/proc/sys/net/ipv4/tcp_max_tw_buckets", 0, 262144), 0, INT32_MAX));
  // An orphan's FIN_WAIT2 wait, seconds (proc_dointvec_jiffies: any non-negative int).
  to.fin_timeout = static_cast<uint32_t>(
      std::clamp<long>(read_sysctl_field("/proc/sys/net/ipv4/tcp_fin_timeout", 0, 60), 0, INT32_MAX / 1000));
  if (getrandom(&to.secret, sizeof to.secret, GRND_NONBLOCK) != sizeof to.secret) to.secret = mono_ns();
  random_key(&to.net_secret, to.secret);
  // net.ipv4.tcp_syncookies (the kernel's default 1: cookies when a listener's request queue is
  // full); their keys drawn once per process, as the kernel's syncookie_secret once per boot.
  const long syncookies = read_sysctl_field("/proc/sys/net/ipv4/tcp_syncookies", 0, 1);
  to.syncookies = static_cast<uint8_t>(std::clamp<long>(syncookies, 0, 2));
  for (siphash_key_t& k : to.syncookie_secret.key) random_key(&k, to.secret);
  to.log_info = [](const char* line) { logf(LogLevel::kInfo, "%s", line); };
  if (int err = TcpStack::create(e->udp.get(), to, &e->tcp); err < 0) {
    *why = std::string("cannot allocate TCP's packet buffers: ") + strerror(-err);
    return nullptr;
  }
  e->tcp->set_first_conn_hook(wake_progress);
  e->udp->set_tx_poll_hook(progress_udp_backlog);
  e->progress_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (e->progress_efd >= 0) {
    g_progress_efd.store(e->progress_efd, std::memory_order_relaxed);
    e->tcp->set_tx_poll_hook(progress_tx_poll);
  }
  e->udp->set_tcp(e->tcp.get());
  if (e->ibv) {  // frames in the pools go out in place; elsewhere (and if this fails) bounce-copied
    auto each_region = [&](absl::FunctionRef<void(const uint8_t*, size_t)> f) {
      e->udp->for_each_pool_region(f);
      e->tcp->for_each_pool_region(f);
    };
    each_region([&](const uint8_t* base, size_t len) {
      if (int err = e->ibv->register_memory(base, len); err < 0)
        logf(LogLevel::kWarn, "cannot register the packet pool with %s (%s): frames are copied before sending",
             e->ibv->ibdev().c_str(), strerror(-err));
    });
  }
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  epoll_event nl{};
  nl.events = EPOLLIN;
  nl.data.u64 = EngineControl::kNetlinkTag;
  if (epfd < 0 || libc().epoll_ctl(epfd, EPOLL_CTL_ADD, e->fib->notify_fd(), &nl) != 0) {
    *why = std::string("cannot make an epoll set for the control plane: ") + strerror(errno);
    if (epfd >= 0) libc().close(epfd);
    return nullptr;
  }
  e->control = std::make_unique<EngineControl>(epfd, e->fib.get(), e->recorded.get());
  e->udp->set_control(e->control.get());
  if (e->xdp) {
    logf(LogLevel::kInfo, "UDP stack on %s queue %u (AF_XDP, %s XDP, %s)%s", ifname.c_str(), e->xdp->queue_id(),
         e->xdp->mode_name(), e->xdp->zerocopy() ? "zero-copy" : "copy mode",
         e->xdp->rx_queues() > 1 ? (", receiving on all " + std::to_string(e->xdp->rx_queues()) + " RX queues").c_str() : "");
    if (workers_prog() != nullptr) {
      std::string qs;
      for (uint32_t i = 0; i < e->xdp->rx_queues(); ++i) qs += (i ? ", " : "") + std::to_string(e->xdp->rx_queue_id(i));
      logf(LogLevel::kInfo, "pre-fork worker %u of %u: RX queue%s %s of %s's %u", e->xdp->queue_id() % rt.config.workers + 1,
           rt.config.workers, e->xdp->rx_queues() == 1 ? "" : "s", qs.c_str(), ifname.c_str(), e->xdp->link_rx_queues());
    }
    if (e->xdp->link_mtu() > e->xdp->features().mtu)
      logf(LogLevel::kInfo,
           "%s's MTU is %u, but an AF_XDP frame holds %u bytes: xmit's sockets use an MTU of %u (TCP MSS %u); "
           "longer frames from peers go to the kernel",
           ifname.c_str(), e->xdp->link_mtu(), xdp::XdpNetdev::kRxFrameRoom, e->xdp->features().mtu,
           e->xdp->features().mtu - 40);
  } else {
    logf(LogLevel::kInfo, "UDP stack on %s (ibverbs raw packet QP on %s port %u, %s, inline up to %u B)",
         ifname.c_str(), e->ibv->ibdev().c_str(), e->ibv->port(), e->ibv->ops_name(), e->ibv->max_inline());
    if (e->ibv->link_mtu() > e->ibv->features().mtu)
      logf(LogLevel::kInfo,
           "%s's MTU is %u, but a receive buffer holds %u bytes: xmit's sockets use an MTU of %u (TCP MSS %u)",
           ifname.c_str(), e->ibv->link_mtu(), e->ibv->buf_size(), e->ibv->features().mtu,
           e->ibv->features().mtu - 40);
  }
  return e.release();
}

}  // namespace

be32 iface_addr(const std::string& ifname) noexcept {
  int s = libc().socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return 0;
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname.c_str());
  be32 a = 0;
  if (libc().ioctl(s, SIOCGIFADDR, &ifr) == 0) a = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr)->sin_addr.s_addr;
  libc().close(s);
  return a;
}

static Engine* engine_open(const Runtime& rt, const char** why) noexcept;

UdpStack* engine_udp(const Runtime& rt, const char** why) noexcept {
  Engine* e = engine_open(rt, why);
  return e != nullptr ? e->udp.get() : nullptr;
}

TcpStack* engine_tcp(const Runtime& rt, const char** why) noexcept {
  Engine* e = engine_open(rt, why);
  if (e == nullptr) return nullptr;
  return e->tcp.get();
}

void engine_rx_waiter(int delta) noexcept { g_rx_waiters.fetch_add(delta, std::memory_order_acq_rel); }

uint32_t engine_busy_poll_us() noexcept { return g_busy_poll_us.load(std::memory_order_relaxed); }

static Engine* engine_open(const Runtime& rt, const char** why) noexcept {
  // Opening makes sockets of its own (netlink, AF_XDP, an ioctl socket): those pass through.
  static thread_local bool opening = false;
  if (opening) {
    *why = "a socket xmit makes for itself while opening its queue";
    return nullptr;
  }
  std::lock_guard<std::mutex> g(g_open_mu);
  opening = true;
  struct Reset { bool& b; ~Reset() { b = false; } } reset{opening};
  // A forked child, or a pre-fork worker waiting for a share of the queues, tries again once a second.
  const bool may_retry = g_forked || workers_prog() != nullptr;
  if (g_engine == nullptr && may_retry && g_tried && mono_ns() >= g_retry_ns) g_tried = false;
  if (!g_tried) {
    g_tried = true;
    try {
      g_engine = open_engine(rt, &g_why);
      if (g_engine != nullptr) {
        for_each_engine_fd(*g_engine, [](int fd) {
          if (!g_own_fds.add(fd)) logf(LogLevel::kWarn, "fd %d: xmit's own fd is not protected from close()", fd);
        });
      } else if (may_retry) {
        if (g_forked) g_why = "after fork(): " + g_why + " (the parent process still holds the queue)";
        g_retry_ns = mono_ns() + 1'000'000'000;
      }
      if (g_engine != nullptr && !start_progress(g_engine)) {
        logf(LogLevel::kWarn, "cannot start the progress thread: TCP timers run only while the program is in a "
             "socket call");
      }
      if (g_engine != nullptr && g_engine->xdp && rt.config.tx_batch > 1 && !start_flusher(g_engine)) {
        // Without the flusher a held frame could wait for ever: ring the doorbell every frame.
        logf(LogLevel::kWarn, "XMIT_TX_BATCH=%u: cannot start the flusher thread; ringing the doorbell per frame",
             rt.config.tx_batch);
        g_engine->xdp->set_tx_hold_hook(nullptr, nullptr);
        g_engine->xdp->set_tx_kick_batch(1);
      }
    } catch (...) {
      g_engine = nullptr;
      g_why = "out of memory opening the stack";
    }
    if (g_engine == nullptr && !may_retry) {
      logf(LogLevel::kError, "%s; every socket passes through to the kernel", g_why.c_str());
    } else if (g_engine == nullptr) {
      // A pre-fork worker says it itself (workers.cc: waiting for a share, or why not).
      logf(g_failures++ == 0 && workers_prog() == nullptr ? LogLevel::kError : LogLevel::kDebug,
           "%s; new sockets pass through to the kernel until it can open (tried again at most once a second)",
           g_why.c_str());
    }
  }
  if (g_engine == nullptr) {
    *why = g_why.c_str();
    return nullptr;
  }
  return g_engine;
}

ShadowOps* engine_shadow() noexcept { return &g_shadow; }

namespace {

// fork(): the child gets copies of the AF_XDP rings (or the verbs QP's queues, and the software
// device's objects) and the stack's memory, but the queue stays the parent's (two processes
// producing into one ring would corrupt it, and the XDP program or flow rules keep steering to
// the parent's queue). So the child lets go of all of it: every inherited offloaded
// socket becomes the plain kernel socket behind its fd (its shadow, which holds its bound and
// connected addresses and options), xmit's own fds are closed, and the child's next socket opens
// the stack afresh — which succeeds once the parent has let go of the interface (daemon(): the
// parent exits) and otherwise passes through with one error line. The parent is unaffected.
// Handlers run in the forking thread; the child touches nothing the parent's other threads could
// have held locked (the stack's mutex, its pools), only g_open_mu, which prepare holds over fork.
// TCP sockets are shared by parent and child after fork() as the kernel shares them: before the
// fork, the listeners' ports go to the kernel's listening sockets and each established connection
// moves into the kernel socket behind its fd (TcpSocket::connections_to_kernel()); both processes
// then use kernel sockets for them. (UDP sockets become the child's kernel sockets, as above.)
void atfork_prepare() {
  g_open_mu.lock();
  if (Engine* e = g_engine; e != nullptr && e->tcp != nullptr) {
    int moved = 0, failed = 0;
    {
      std::lock_guard<StackMutex> g(e->udp->mu());
      TcpSocket::connections_to_kernel(e->tcp.get(), &moved, &failed);
    }
    if (moved + failed > 0) {
      logf(failed ? LogLevel::kWarn : LogLevel::kInfo, "fork(): %d TCP connection%s moved into the kernel's sockets%s", moved,
           moved == 1 ? "" : "s", failed ? " (some could not be: the child cannot use those)" : "");
    }
  }
}
void atfork_parent() {
  workers_atfork_parent();
  g_open_mu.unlock();
}
void atfork_child() {
  g_random_gen.fetch_add(1, std::memory_order_relaxed);
  workers_atfork_child(g_engine != nullptr);
  int sockets = g_fds.abandon_all();
  if (Engine* e = g_engine) {
    auto close_own = [](int fd) {
      g_own_fds.remove(fd);
      libc().close(fd);
    };
    if (e->ibv) e->ibv->abandon_after_fork(close_own);  // first: the software device's lock is reset
    for_each_engine_fd(*e, close_own);
    if (e->xdp) e->xdp->unmap_after_fork();
    g_engine = nullptr;  // the parent's memory, leaked here: its destructors would act on the parent's queue
    g_tried = false;
    g_forked = true;
    g_failures = 0;
    g_why.clear();
    logf(LogLevel::kInfo, "fork(): this child passes its %d inherited offloaded socket%s to the kernel; new ones "
         "use xmit's stack once the parent lets go of the interface", sockets, sockets == 1 ? "" : "s");
  }
  g_open_mu.unlock();
}

__attribute__((constructor(102))) void engine_register_atfork() {
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

}  // namespace

// At exit: the pcap recorder's buffered records reach the file, and one info line gives the
// stack's counters (what the kernel would have counted in /proc/net/snmp and did not). Nothing is
// torn down (other threads may still be running; the kernel closes the AF_XDP socket and the XDP
// link).
constexpr uint64_t kTcpExitDrainNs = 5'000'000'000u;

__attribute__((destructor)) static void engine_exit() {
  Engine* e = g_engine;
  if (e == nullptr) return;
  // Other threads (the program's, the progress thread) may be in the stack at this moment: wait for
  // the lock a little (each holds it for microseconds); one stuck there for 200 ms: skip.
  std::unique_lock<StackMutex> lk(e->udp->mu(), std::try_to_lock);
  for (int i = 0; i < 200 && !lk.owns_lock(); ++i) {
    timespec pause{0, 1'000'000};
    nanosleep(&pause, nullptr);
    lk.try_lock();
  }
  if (!lk.owns_lock()) return;
  // Datagrams sent just before exit may wait for their neighbour's address, sit below the doorbell
  // batch, or on the device: the kernel would keep and send them after the process is gone, so the
  // exit waits for them, bounded by the kernel's own resolution time (3 probes, 1 s apart) — the
  // bound is reached only when the neighbour never answers, and then the kernel too drops them.
  // TCP likewise: the kernel closes the fds and its orphans go on delivering what was written and
  // the FIN; here the exit waits for them, bounded (kTcpExitDrainNs) where the kernel's orphans
  // retry for minutes.
  UdpStack& u = *e->udp;
  e->tcp->close_all_at_exit();
  const uint64_t end = mono_ns() + 3'000'000'000u;
  const uint64_t tcp_end = mono_ns() + kTcpExitDrainNs;
  for (;;) {
    u.request_control();
    u.poll(tick_ns());
    u.dev().flush_tx();
    const bool tcp_busy = e->tcp->exit_pending() && mono_ns() < tcp_end;
    const bool udp_done =
        (u.neigh().next_deadline() == 0 && u.tx_in_flight == 0 && u.tx_backlog() == 0) || mono_ns() >= end;
    if (udp_done && !tcp_busy) break;
    lk.unlock();
    timespec pause{0, 1'000'000};
    nanosleep(&pause, nullptr);
    lk.lock();
  }
  if (e->pcap.is_open()) e->pcap.flush();
  if (log_enabled(LogLevel::kInfo)) {
    logf(LogLevel::kInfo,
         "UDP counters: OutDatagrams %llu, SndbufErrors %llu, Ip OutTransmits %llu (FragCreates %llu), "
         "device queue full %llu (frames that waited in the backlog %llu); InDatagrams %llu, RcvbufErrors %llu, InCsumErrors %llu, InErrors %llu, "
         "NoPorts %llu, fragments to the kernel %llu",
         static_cast<unsigned long long>(u.udp_mib.OutDatagrams),
         static_cast<unsigned long long>(u.udp_mib.SndbufErrors),
         static_cast<unsigned long long>(u.mib.OutTransmits), static_cast<unsigned long long>(u.mib.FragCreates),
         static_cast<unsigned long long>(u.tx_drops), static_cast<unsigned long long>(u.tx_requeued),
         static_cast<unsigned long long>(u.udp_rx_mib.InDatagrams),
         static_cast<unsigned long long>(u.udp_rx_mib.RcvbufErrors),
         static_cast<unsigned long long>(u.udp_rx_mib.InCsumErrors),
         static_cast<unsigned long long>(u.udp_rx_mib.InErrors), static_cast<unsigned long long>(u.udp_rx_mib.NoPorts),
         static_cast<unsigned long long>(u.rx_frags_to_kernel));
    logf(LogLevel::kInfo, "busy polling: %llu blocked receives spun, TcpExtBusyPollRxPackets %llu (the frames they took)",
         static_cast<unsigned long long>(u.busy_polls), static_cast<unsigned long long>(u.busy_poll_rx_packets));
    if (e->xdp) {
      const xdp::XdpStats& x = e->xdp->stats();
      logf(LogLevel::kInfo,
           "AF_XDP queue: %llu frames sent (%llu TSO frames cut into them), %llu doorbells (%llu by flush_tx), "
           "%llu completions",
           static_cast<unsigned long long>(x.tx_frames), static_cast<unsigned long long>(x.tx_tso_frames),
           static_cast<unsigned long long>(x.tx_kicks), static_cast<unsigned long long>(x.tx_flushes),
           static_cast<unsigned long long>(x.tx_done));
      // Frames the kernel could not hand to the program: with the RX ring full (the program and the
      // progress thread not polling fast enough) a peer's segments, ACKs and SYNs are lost here.
      xdp_statistics ks;
      if (e->xdp->kernel_stats(&ks) == 0) {
        logf(LogLevel::kInfo,
             "AF_XDP socket (XDP_STATISTICS): rx_dropped %llu, rx_ring_full %llu, rx_fill_ring_empty_descs %llu, "
             "rx_invalid_descs %llu, tx_invalid_descs %llu, tx_ring_empty_descs %llu; %llu frames received",
             static_cast<unsigned long long>(ks.rx_dropped), static_cast<unsigned long long>(ks.rx_ring_full),
             static_cast<unsigned long long>(ks.rx_fill_ring_empty_descs),
             static_cast<unsigned long long>(ks.rx_invalid_descs), static_cast<unsigned long long>(ks.tx_invalid_descs),
             static_cast<unsigned long long>(ks.tx_ring_empty_descs), static_cast<unsigned long long>(x.rx_frames));
      }
      logf(LogLevel::kInfo,
           "AF_XDP completions behind at reap: %llu reaps, %llu episodes, mean %llu us, max %llu us "
           "(<10us %llu, <100us %llu, <1ms %llu, longer %llu)",
           static_cast<unsigned long long>(x.tx_reap_behind), static_cast<unsigned long long>(x.tx_behind_episodes),
           static_cast<unsigned long long>(x.tx_behind_episodes ? x.tx_behind_ns_total / x.tx_behind_episodes / 1000 : 0),
           static_cast<unsigned long long>(x.tx_behind_ns_max / 1000),
           static_cast<unsigned long long>(x.tx_behind_hist[0]), static_cast<unsigned long long>(x.tx_behind_hist[1]),
           static_cast<unsigned long long>(x.tx_behind_hist[2]), static_cast<unsigned long long>(x.tx_behind_hist[3]));
    } else {
      const ibv::IbvStats& v = e->ibv->stats();
      logf(LogLevel::kInfo,
           "ibverbs queue: %llu frames sent (%llu TSO; %llu inline, %llu in place, %llu copied; MSG_ZEROCOPY: "
           "%llu in place, %llu copied, %llu user registrations, %llu TSO frames copied into 64 KiB bounce "
           "buffers), %llu completed, "
           "%llu send errors, %llu queue full; %llu received, %llu receive errors",
           static_cast<unsigned long long>(v.tx_frames), static_cast<unsigned long long>(v.tx_tso),
           static_cast<unsigned long long>(v.tx_inline),
           static_cast<unsigned long long>(v.tx_zero_copy), static_cast<unsigned long long>(v.tx_copied),
           static_cast<unsigned long long>(v.tx_user_in_place), static_cast<unsigned long long>(v.tx_user_copied),
           static_cast<unsigned long long>(e->ibv->mr_cache().stats().registrations),
           static_cast<unsigned long long>(v.tx_tso_bounced),
           static_cast<unsigned long long>(v.tx_done), static_cast<unsigned long long>(v.tx_errors),
           static_cast<unsigned long long>(v.tx_full), static_cast<unsigned long long>(v.rx_frames),
           static_cast<unsigned long long>(v.rx_errors));
    }
    if (e->tcp) {
      const TcpMib& t = e->tcp->mib;
      const LinuxMib& x = e->tcp->net_mib;
      logf(LogLevel::kInfo,
           "TCP counters: ActiveOpens %llu, PassiveOpens %llu, InSegs %llu, InErrs %llu, OutRsts %llu; "
           "segments dropped without a receive buffer %llu, "
           "TcpExtTCPAutoCorking %llu, TcpExtSyncookiesSent %llu, TcpExtSyncookiesRecv %llu, "
           "TcpExtSyncookiesFailed %llu, TcpExtListenOverflows %llu, TcpExtListenDrops %llu, "
           "TcpExtTCPReqQFullDoCookies %llu, TcpExtTCPReqQFullDrop %llu, TcpExtTCPAbortOnMemory %llu, "
           "TcpExtTCPTimeWaitOverflow %llu, TcpExtTCPDeferAcceptDrop %llu",
           static_cast<unsigned long long>(t.ActiveOpens), static_cast<unsigned long long>(t.PassiveOpens),
           static_cast<unsigned long long>(t.InSegs), static_cast<unsigned long long>(t.InErrs),
           static_cast<unsigned long long>(t.OutRsts), static_cast<unsigned long long>(t.RcvDrops),
           static_cast<unsigned long long>(x.TCPAutoCorking),
           static_cast<unsigned long long>(x.SyncookiesSent), static_cast<unsigned long long>(x.SyncookiesRecv),
           static_cast<unsigned long long>(x.SyncookiesFailed), static_cast<unsigned long long>(x.ListenOverflows),
           static_cast<unsigned long long>(x.ListenDrops), static_cast<unsigned long long>(x.TCPReqQFullDoCookies),
           static_cast<unsigned long long>(x.TCPReqQFullDrop), static_cast<unsigned long long>(x.TCPAbortOnMemory),
           static_cast<unsigned long long>(x.TCPTimeWaitOverflow),
           static_cast<unsigned long long>(x.TCPDeferAcceptDrop));
    }
  }
}

long read_sysctl_field(const char* path, int n, long dflt) {
  FILE* f = fopen(path, "re");
  if (f == nullptr) return dflt;
  long v = dflt;
  for (int i = 0; i <= n; ++i) {
    if (fscanf(f, "%ld", &v) != 1) {
      v = dflt;
      break;
    }
  }
  fclose(f);
  return v;
}

}  // namespace xmit
