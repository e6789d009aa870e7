// preload/workers.cc — pre-fork listeners served by the workers (see workers.h).
#include "preload/workers.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>

#include "preload/engine.h"
#include "preload/epoll_table.h"
#include "preload/fd_table.h"
#include "preload/libc.h"
#include "preload/log.h"
#include "preload/own_fds.h"
#include "preload/runtime.h"
#include "preload/wait_slice.h"
#include "stack/stream/tcp_socket.h"
#include "verbs/xdp/xdp_prog.h"

#include <netinet/tcp.h>  // after the stack's headers: its macros (TCP_MSS_DEFAULT...) would rename their constants

namespace xmit {

std::atomic<bool> g_workers_adopt_pending{false};
EpollReaddFn g_epoll_readd_offloaded = nullptr;
std::atomic<int> g_workers_noted{0};

namespace {

struct NotedListener {
  int fd;
  int backlog;
  FlowKey port;  // its steering rule (the master's)
};
constexpr int kMaxListeners = 64;

std::mutex g_mu;  // the notes and the adoption; re-made in a forked child
NotedListener g_listeners[kMaxListeners];
int g_nlisteners = 0;
xdp::XdpProg* g_prog = nullptr;  // never freed: the workers hold its fds and use it
bool g_prog_tried = false;
bool g_worker = false;  // this process adopted (or tried to adopt) its inherited listeners
bool g_master = false;  // this process noted listeners and forked since
// A worker that found every share of the queues held (a reload's new workers while the old ones
// finish): its listeners stay the kernel's and adoption is tried again at most once a second
// (g_retry_at_ns, read without the lock) until a share is free. Meanwhile the epoll sets the
// program puts its listeners in are remembered: the adopted listener must be followed there.
bool g_shares_busy = false;  // the last open failed for want of a share (open_afxdp(), kept by engine_open())
bool g_waiting_share = false;
std::atomic<uint64_t> g_retry_at_ns{0};
struct EpollReg {
  int epfd, fd;
  epoll_event ev;
};
constexpr int kMaxEpollRegs = 64;
EpollReg g_epoll_regs[kMaxEpollRegs];
int g_nepoll_regs = 0;
// This thread holds g_mu for an adoption: the engine it opens makes and closes fds and calls
// epoll_ctl() (through the interposer, whose hooks lead back here) — those calls are xmit's own.
thread_local bool t_adopting = false;

// Forgets the remembered epoll registrations of `fd` in set `epfd` (-1 for either: any).
void drop_epoll_regs(int epfd, int fd) {
  int n = 0;
  for (int i = 0; i < g_nepoll_regs; ++i) {
    const EpollReg& r = g_epoll_regs[i];
    if ((fd >= 0 && r.fd != fd) || (epfd >= 0 && r.epfd != epfd)) g_epoll_regs[n++] = r;
  }
  g_nepoll_regs = n;
}

int sockopt_int(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  return libc().getsockopt(fd, level, name, &v, &len) == 0 ? v : -1;
}

bool is_tcp4_listener(int fd) {
  return sockopt_int(fd, SOL_SOCKET, SO_DOMAIN) == AF_INET && sockopt_int(fd, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_TCP &&
         sockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN) == 1;
}

uint16_t local_port(int fd) {
  sockaddr_in sin{};
  socklen_t len = sizeof sin;
  return libc().getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) == 0 ? ntohs(sin.sin_port) : 0;
}


// The options a program set on an inherited listener before the fork: those whose value differs
// from a new TCP socket's (the kernel keeps no "was set" mark to read). SO_SNDBUF and SO_RCVBUF
// read back doubled: half is what setsockopt() took. What adopt_listener() sets again.
void listener_options(int fd, SockOptRecord* out) {
  static constexpr struct { int level, name; socklen_t len; } kOpts[] = {
      {SOL_SOCKET, SO_KEEPALIVE, 4}, {SOL_SOCKET, SO_SNDBUF, 4}, {SOL_SOCKET, SO_RCVBUF, 4},
      {SOL_SOCKET, SO_RCVLOWAT, 4}, {SOL_SOCKET, SO_LINGER, sizeof(linger)}, {SOL_SOCKET, SO_OOBINLINE, 4},
      {SOL_SOCKET, SO_PRIORITY, 4}, {SOL_SOCKET, SO_MARK, 4}, {SOL_SOCKET, SO_RCVTIMEO_OLD, sizeof(timeval)},
      {SOL_SOCKET, SO_SNDTIMEO_OLD, sizeof(timeval)}, {SOL_SOCKET, SO_ZEROCOPY, 4},
      {IPPROTO_IP, IP_TOS, 4}, {IPPROTO_IP, IP_TTL, 4}, {IPPROTO_IP, IP_MTU_DISCOVER, 4},
      {IPPROTO_TCP, TCP_NODELAY, 4}, {IPPROTO_TCP, TCP_CORK, 4}, {IPPROTO_TCP, TCP_MAXSEG, 4},
      {IPPROTO_TCP, TCP_KEEPIDLE, 4}, {IPPROTO_TCP, TCP_KEEPINTVL, 4}, {IPPROTO_TCP, TCP_KEEPCNT, 4},
      {IPPROTO_TCP, TCP_SYNCNT, 4}, {IPPROTO_TCP, TCP_LINGER2, 4}, {IPPROTO_TCP, TCP_USER_TIMEOUT, 4},
      {IPPROTO_TCP, TCP_NOTSENT_LOWAT, 4}, {IPPROTO_TCP, TCP_WINDOW_CLAMP, 4}, {IPPROTO_TCP, TCP_DEFER_ACCEPT, 4},
      {IPPROTO_TCP, TCP_CONGESTION, 16}, {SOL_SOCKET, SO_BUSY_POLL, 4}, {SOL_SOCKET, SO_PREFER_BUSY_POLL, 4},
  };
  const int fresh = libc().socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fresh < 0) return;
  for (const auto& o : kOpts) {
    uint8_t a[16] = {}, b[16] = {};
    socklen_t la = o.len, lb = o.len;
    if (libc().getsockopt(fd, o.level, o.name, a, &la) != 0 || libc().getsockopt(fresh, o.level, o.name, b, &lb) != 0)
      continue;
    if (la == lb && std::memcmp(a, b, la) == 0) continue;
    int name = o.name;
    if (o.level == SOL_SOCKET && (o.name == SO_SNDBUF || o.name == SO_RCVBUF)) {
      int v;
      std::memcpy(&v, a, sizeof v);
      v /= 2;
      std::memcpy(a, &v, sizeof v);
      // Above net.core.wmem_max/rmem_max only SO_*BUFFORCE set it (the plain option would clamp it
      // on the kernel listener every worker shares).
      const long max = read_sysctl_field(o.name == SO_SNDBUF ? "/proc/sys/net/core/wmem_max" : "/proc/sys/net/core/rmem_max", 0, -1);
      if (max >= 0 && v > max) name = o.name == SO_SNDBUF ? SO_SNDBUFFORCE : SO_RCVBUFFORCE;
    }
    out->add(o.level, name, a, o.level == IPPROTO_TCP && o.name == TCP_CONGESTION ? strnlen(reinterpret_cast<char*>(a), 16) : la);
  }
  libc().close(fresh);
}
}  // namespace

void workers_note_listen(int fd, int backlog) noexcept {
  const Runtime* rt = runtime();
  if (rt == nullptr || !rt->active || rt->config.workers == 0 || !rt->config.tcp) return;
  if (g_worker || !is_tcp4_listener(fd)) return;
  if (g_master || g_workers_adopt_pending.load(std::memory_order_relaxed)) {
    logf(LogLevel::kInfo, "fd %d: a listener made after fork() stays the kernel's under XMIT_WORKERS (the workers "
         "already forked would not take it)", fd);
    return;
  }
  if (rt->backend != Backend::kAfXdp) {
    logf(LogLevel::kInfo, "fd %d: XMIT_WORKERS serves pre-fork listeners on AF_XDP only: the kernel serves this one", fd);
    return;
  }
  if (sockopt_int(fd, SOL_SOCKET, SO_REUSEPORT) == 1) {
    // Each worker would take every one of them, and connections could wait on one it never polls.
    logf(LogLevel::kInfo, "fd %d: an SO_REUSEPORT listener stays the kernel's under XMIT_WORKERS", fd);
    return;
  }
  sockaddr_in sin{};
  socklen_t len = sizeof sin;
  if (libc().getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) != 0) return;
  const be32 if_addr = iface_addr(rt->config.iface);
  const be32 local = sin.sin_addr.s_addr != 0 ? sin.sin_addr.s_addr : if_addr;
  if (local == 0 || local != if_addr) {
    logf(LogLevel::kInfo, "fd %d: listener on port %u is not on %s's address: the kernel serves it", fd,
         ntohs(sin.sin_port), rt->config.iface.c_str());
    return;
  }
  std::lock_guard<std::mutex> g(g_mu);
  for (int i = 0; i < g_nlisteners; ++i) {
    if (g_listeners[i].fd == fd) {  // listen() again: the new backlog
      g_listeners[i].backlog = backlog;
      return;
    }
  }
  if (!g_prog_tried) {
    g_prog_tried = true;
    std::unique_ptr<xdp::XdpProg> p;
    std::string why;
    if (int err = xdp::XdpProg::open(rt->ifindex, xdp::XdpMode::kAuto, &p, &why); err < 0) {
      logf(LogLevel::kError, "XMIT_WORKERS: cannot attach the steering XDP program to %s (%s): the kernel serves "
           "the listeners", rt->config.iface.c_str(), why.c_str());
    } else {
      g_prog = p.release();
      g_prog->for_each_fd([](int f) { (void)g_own_fds.add(f); });
      logf(LogLevel::kInfo, "XMIT_WORKERS=%u: steering XDP program attached to %s (%s mode); this process's "
           "listeners are served by the workers it forks", rt->config.workers, rt->config.iface.c_str(),
           g_prog->native() ? "native" : "generic");
    }
  }
  if (g_prog == nullptr) return;
  if (g_nlisteners == kMaxListeners) {
    logf(LogLevel::kWarn, "fd %d: more than %d listeners for the workers: the kernel serves this one", fd, kMaxListeners);
    return;
  }
  // The port is steered from now on: a SYN arriving before a worker serves its queue goes to the
  // kernel's listener, and the program keeps that connection's segments there (xmit_xdp.bpf.c).
  const FlowKey key{.protocol = IPPROTO_TCP, .local_addr = local, .local_port = sin.sin_port};
  if (int err = g_prog->steer(key); err != 0 && err != -EEXIST) {
    logf(LogLevel::kWarn, "fd %d: cannot steer port %u (%s): the kernel serves it", fd, ntohs(sin.sin_port),
         strerror(-err));
    return;
  }
  g_listeners[g_nlisteners++] = NotedListener{fd, backlog, key};
  g_workers_noted.store(g_nlisteners, std::memory_order_relaxed);
  logf(LogLevel::kInfo, "fd %d: listener on port %u kept for the workers", fd, ntohs(sin.sin_port));
}

xdp::XdpProg* workers_prog() noexcept { return g_worker ? g_prog : nullptr; }

void workers_atfork_child(bool parent_had_engine) noexcept {
  new (&g_mu) std::mutex();  // another thread of the parent may have held it
  if (g_prog != nullptr && g_nlisteners > 0 && !parent_had_engine && !g_worker)
    g_workers_adopt_pending.store(true, std::memory_order_release);
}

void workers_atfork_parent() noexcept {
  if (g_prog == nullptr || g_nlisteners == 0 || g_worker) return;
  g_master = true;
  g_workers_adopt_pending.store(false, std::memory_order_release);
}

namespace {
void workers_forget_locked(int fd, bool closing) {
  // An epoll set closed: its number may come back as another set.
  if (closing && g_waiting_share) drop_epoll_regs(fd, -1);
  int i = 0;
  while (i < g_nlisteners && g_listeners[i].fd != fd) ++i;
  if (i < g_nlisteners && g_waiting_share && closing) {  // closed while the kernel's: forgotten
    drop_epoll_regs(-1, fd);
    g_listeners[i] = g_listeners[--g_nlisteners];
    g_workers_noted.store(g_nlisteners, std::memory_order_relaxed);
    return;
  }
  if (i == g_nlisteners || g_worker) return;
  const bool master = !g_workers_adopt_pending.load(std::memory_order_relaxed);
  if (!closing && !master) return;  // a worker-to-be's epoll set: it adopts before adding (epoll_ctl)
  const FlowKey port = g_listeners[i].port;
  g_listeners[i] = g_listeners[--g_nlisteners];
  g_workers_noted.store(g_nlisteners, std::memory_order_relaxed);
  if (!master) return;  // the master still holds it, and its rule
  bool shared = false;  // another noted listener on the same port and address keeps the rule
  for (int j = 0; j < g_nlisteners; ++j) shared = shared || g_listeners[j].port == port;
  if (!shared) (void)g_prog->unsteer(port);
  if (!closing) {
    logf(LogLevel::kInfo, "fd %d: a listener in an epoll set (which the workers would inherit) stays the kernel's "
         "under XMIT_WORKERS", fd);
  }
}
}  // namespace

void workers_forget(int fd, bool closing) noexcept {
  if (t_adopting) return;
  std::lock_guard<std::mutex> g(g_mu);
  workers_forget_locked(fd, closing);
}

void workers_adopt() noexcept {
  if (t_adopting) return;
  const uint64_t retry_at = g_retry_at_ns.load(std::memory_order_relaxed);
  if (retry_at != 0 && mono_ns() < retry_at) return;  // waiting for a share: not yet
  std::lock_guard<std::mutex> g(g_mu);
  t_adopting = true;
  struct Adopting {
    ~Adopting() { t_adopting = false; }
  } adopting;
  if (!g_workers_adopt_pending.load(std::memory_order_acquire)) return;  // another thread did
  // Cleared once adoption is over: a thread arriving meanwhile waits on g_mu instead of reaching a
  // listener that is about to stop receiving from the kernel. Kept while waiting for a share.
  bool retry = false;
  struct Done {
    bool& retry;
    ~Done() {
      if (!retry) g_workers_adopt_pending.store(false, std::memory_order_release);
    }
  } done{retry};
  int live = 0;  // noted listeners still open here
  for (int i = 0; i < g_nlisteners; ++i) live += is_tcp4_listener(g_listeners[i].fd) ? 1 : 0;
  if (live == 0) return;  // a helper process that closed them (nginx's cache manager): no queue
  g_worker = true;
  const Runtime* rt = runtime();
  const char* why = nullptr;
  TcpStack* tcp = rt != nullptr ? engine_tcp(*rt, &why) : nullptr;  // opens a share of the queues (workers_prog())
  if (tcp == nullptr) {
    if (g_shares_busy) {  // live workers hold every share: a reload's new worker; the old ones go soon
      if (!g_waiting_share) {
        logf(LogLevel::kInfo, "pre-fork worker: %s; the kernel serves its inherited listeners until a share is free "
             "(tried again every second)", why != nullptr ? why : "");
      }
      retry = g_waiting_share = true;
      g_workers_noted.store(g_nlisteners, std::memory_order_relaxed);  // close() and epoll_ctl() report to us
      g_retry_at_ns.store(mono_ns() + 1'000'000'000, std::memory_order_relaxed);
      return;
    }
    logf(LogLevel::kWarn, "pre-fork worker: %s; the kernel serves its inherited listeners",
         why != nullptr ? why : "xmit is not initialised");
    g_waiting_share = false;
    g_nepoll_regs = 0;
    g_workers_noted.store(0, std::memory_order_relaxed);  // nothing for close() and epoll_ctl() to look for
    return;
  }
  g_retry_at_ns.store(0, std::memory_order_relaxed);
  int adopted = 0;
  for (int i = 0; i < g_nlisteners; ++i) {
    const int fd = g_listeners[i].fd;
    if (g_fds.peek(fd) != nullptr || !is_tcp4_listener(fd)) continue;  // closed (or reused) since
    const int fl = libc().fcntl(fd, F_GETFL);
    SockOptRecord opts;
    listener_options(fd, &opts);
    Socket* s = nullptr;
    int err = TcpSocket::adopt_listener(tcp, engine_shadow(), fd, g_listeners[i].backlog,
                                        fl >= 0 && (fl & O_NONBLOCK) != 0, opts, &s);
    Socket* old = nullptr;
    if (err == 0 && !g_fds.install(fd, s, &old)) {
      s->put();
      err = -EMFILE;
    }
    if (err < 0) {
      logf(LogLevel::kWarn, "pre-fork worker: fd %d (port %u) stays the kernel's: %s", fd, local_port(fd),
           strerror(-err));
      continue;
    }
    if (old != nullptr) old->put();
    ++adopted;
    // The epoll sets it went into while the kernel's: followed there as an offloaded member now.
    for (int r = 0; r < g_nepoll_regs; ++r) {
      if (g_epoll_regs[r].fd == fd && g_epoll_readd_offloaded != nullptr)
        (void)g_epoll_readd_offloaded(g_epoll_regs[r].epfd, fd, g_epoll_regs[r].ev);
    }
  }
  g_nepoll_regs = 0;
  g_workers_noted.store(0, std::memory_order_relaxed);
  logf(LogLevel::kInfo, "pre-fork worker: %d inherited listener%s served by xmit's stack%s", adopted,
       adopted == 1 ? "" : "s", g_waiting_share ? " (a share became free)" : "");
  g_waiting_share = false;
}

void workers_shares_busy(bool busy) noexcept { g_shares_busy = busy; }

void workers_epoll_changed(int epfd, int op, int fd, const epoll_event* ev) noexcept {
  if (t_adopting) return;
  std::lock_guard<std::mutex> g(g_mu);
  if (g_waiting_share) {  // a worker whose listeners are the kernel's until a share is free
    int i = 0;
    while (i < g_nlisteners && g_listeners[i].fd != fd) ++i;
    if (i == g_nlisteners) return;
    drop_epoll_regs(epfd, fd);
    if (op == EPOLL_CTL_DEL || ev == nullptr) return;
    if (g_nepoll_regs < kMaxEpollRegs) {
      g_epoll_regs[g_nepoll_regs++] = {epfd, fd, *ev};
    } else {
      logf(LogLevel::kWarn, "pre-fork worker: more than %d epoll registrations of its listeners: epoll set %d "
           "will not report fd %d once it is served by xmit", kMaxEpollRegs, epfd, fd);
    }
    return;
  }
  if (op == EPOLL_CTL_ADD) workers_forget_locked(fd, false);
}

}  // namespace xmit
