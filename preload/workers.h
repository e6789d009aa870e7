// preload/workers.h — pre-fork servers (nginx's master and workers; XMIT_WORKERS=N). The master
// makes the listening sockets and forks N workers that accept on them; a connection must be served
// by the process that accepts it, and an AF_XDP socket only receives the frames of its own RX
// queue. So: the master serves nothing itself — its sockets are the kernel's — but at its first
// listen() on the interface it attaches the steering XDP program and notes the listener. Each
// process it forks inherits the program's fds and the notes; at its first accept(), poll, select
// or epoll_ctl() a worker takes a share of the interface's RX queues (queues q with q % N == k,
// for the first k in 0..N-1 no other worker holds; XdpOptions::shared_prog), opens its own stack
// on them and makes each inherited listener an offloaded one over the same kernel socket
// (TcpSocket::adopt_listener()). The NIC's RSS spreads connections over the queues, so over the
// workers, as SO_REUSEPORT would. A worker's own new sockets are the kernel's: the replies of a
// connection it opens could arrive on another worker's queue.
// XLIO's counterpart is XLIO_NGINX_WORKERS_NUM. AF_XDP only (verbs: the kernel serves pre-fork
// listeners, as without XMIT_WORKERS).
#pragma once

#include <sys/epoll.h>

#include <atomic>

namespace xmit::xdp {
class XdpProg;
}

namespace xmit {

// listen(fd, backlog) succeeded on a passthrough socket of this process: with XMIT_WORKERS, an
// IPv4 TCP listener is noted for the workers (and the program attached, once).
void workers_note_listen(int fd, int backlog) noexcept;

// The program a worker's device shares, or nullptr when this process is no pre-fork worker.
xdp::XdpProg* workers_prog() noexcept;

// fork(), in the child: it becomes a worker-to-be if its parent held listeners for workers and
// no stack of its own. In the parent: it is a master from now on (a process that forks before
// adopting, e.g. nginx daemonising, is one): listeners it makes later stay the kernel's (the
// workers it already forked would never take them).
void workers_atfork_child(bool parent_had_engine) noexcept;
void workers_atfork_parent() noexcept;

// Called by the interposer before accept, poll, select and epoll_ctl/epoll_wait: a worker-to-be
// adopts its inherited listeners at the first of them (other threads arriving meanwhile wait for it:
// the flag is cleared once adoption is over). Nothing happens in a worker-to-be whose noted
// listeners are all closed (nginx's cache manager and loader close theirs): it takes no queue.
// A worker that finds every share held (a reload's new workers while the old ones finish their
// requests) keeps the flag and tries again at these calls, at most once a second, until a share
// is free: its listeners are the kernel's meanwhile, as the old workers' queues send their SYNs there.
extern std::atomic<bool> g_workers_adopt_pending;
void workers_adopt() noexcept;
inline void workers_adopt_if_pending() noexcept {
  if (g_workers_adopt_pending.load(std::memory_order_acquire)) [[unlikely]] workers_adopt();
}

// An fd is being closed (close, dup2 onto it, close_range), or a passthrough fd goes into an epoll
// set. In the master, a noted listener that is closed or put in an epoll set (which the workers
// would inherit: xmit cannot serve it there) is forgotten and its port no longer steered; in a
// worker-to-be a closed one is forgotten.
extern std::atomic<int> g_workers_noted;
void workers_forget(int fd, bool closing) noexcept;
inline void workers_fd_closing(int fd) noexcept {
  if (g_workers_noted.load(std::memory_order_relaxed) != 0) [[unlikely]] workers_forget(fd, true);
}
// epoll_ctl() on a passthrough fd: in the master, an ADD of a noted listener forgets it (above); in
// a worker waiting for a share of the queues, the listener's epoll registrations are remembered
// so the listener adopted later is followed in those sets (epoll_readd_offloaded()).
void workers_epoll_changed(int epfd, int op, int fd, const epoll_event* ev) noexcept;
inline void workers_epoll_ctl(int epfd, int op, int fd, const epoll_event* ev) noexcept {
  if (g_workers_noted.load(std::memory_order_relaxed) != 0) [[unlikely]] workers_epoll_changed(epfd, op, fd, ev);
}

// open_afxdp() in a worker: whether it found every share of the queues held by live workers (the
// last attempt's answer, which engine_open() keeps until it tries again).
void workers_shares_busy(bool busy) noexcept;

}  // namespace xmit
