// preload/tcp_repair.cc — moves an established connection from the stack into the kernel socket
// behind its fd through the kernel's TCP_REPAIR interface (CAP_NET_ADMIN), in the order CRIU's
// libsoccr restores a socket: queue sequence numbers, bind + connect (no SYN in repair mode),
// options, timestamp, the receive and sent queues' bytes, the windows, repair off (the kernel then
// sends a window probe), then the bytes not yet sent as ordinary sends.
// kernel: do_tcp_setsockopt()'s TCP_REPAIR* cases, tcp_repair_set_window(), tcp_repair_options_est(),
// tcp_send_rcvq() (net/ipv4/tcp.c); tcp_connect()'s repair path (net/ipv4/tcp_output.c).
#include "preload/tcp_repair.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>

#include "preload/kernel_connect.h"
#include "preload/libc.h"

namespace xmit {
namespace {

int opt(int fd, int name, const void* v, socklen_t len) {
  return libc().setsockopt(fd, IPPROTO_TCP, name, v, len) == 0 ? 0 : -errno;
}
int opt_int(int fd, int name, int v) { return opt(fd, name, &v, sizeof v); }

// Sends all of `data` (no waiting: a repair-mode send that would block fails the move). kernel
// repair queues take at most a few pages per skb (tcp_send_rcvq()), so in 16 KB pieces.
int send_all(int fd, absl::Span<const uint8_t> data) {
  while (!data.empty()) {
    size_t n = std::min<size_t>(data.size(), 16384);
    ssize_t r = libc().send(fd, data.data(), n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r < 0) return -errno;
    data.remove_prefix(static_cast<size_t>(r));
  }
  return 0;
}

// The steps up to TCP_REPAIR off; on failure the caller rolls back.
int repair_steps(int fd, const TcpRepairState& st, const char** step) {
  // Queue sequence numbers before connect(): it starts snd_una/snd_nxt at write_seq and
  // copied_seq/rcv_wup at rcv_nxt (tcp_connect_init()).
  *step = "TCP_QUEUE_SEQ";
  if (int err = opt_int(fd, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE); err != 0) return err;
  if (int err = opt(fd, TCP_QUEUE_SEQ, &st.copied_seq, sizeof st.copied_seq); err != 0) return err;
  if (int err = opt_int(fd, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE); err != 0) return err;
  if (int err = opt(fd, TCP_QUEUE_SEQ, &st.snd_una, sizeof st.snd_una); err != 0) return err;
  // The local address: an accepted connection's shadow is unbound (repair mode binds beside the
  // listener: SK_FORCE_REUSE); a connected one's shadow holds its port already, unless its
  // deferred connect's disconnect freed it (getsockname() still says it).
  *step = "bind";
  sockaddr_in sin{};
  socklen_t len = sizeof sin;
  if (libc().getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) != 0) return -errno;
  if (sin.sin_port == 0 || (st.shadow_deferred && !st.shadow_bound)) {
    sin = sockaddr_in{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = st.saddr;
    sin.sin_port = htons(st.sport);
    if (libc().bind(fd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin) != 0) return -errno;
  } else if (ntohs(sin.sin_port) != st.sport) {
    return -EADDRINUSE;
  }
  *step = "connect";
  sockaddr_in peer{};
  peer.sin_family = AF_INET;
  peer.sin_addr.s_addr = st.daddr;
  peer.sin_port = htons(st.dport);
  if (libc().connect(fd, reinterpret_cast<const sockaddr*>(&peer), sizeof peer) != 0) return -errno;
  *step = "TCP_REPAIR_OPTIONS";
  tcp_repair_opt opts[4];
  int n = 0;
  opts[n++] = {TCPOPT_MAXSEG, st.mss_clamp};
  if (st.wscale_ok) opts[n++] = {TCPOPT_WINDOW, uint32_t{st.snd_wscale} | uint32_t{st.rcv_wscale} << 16};
  if (st.sack_ok) opts[n++] = {TCPOPT_SACK_PERMITTED, 0};
  if (st.tstamp_ok) opts[n++] = {TCPOPT_TIMESTAMP, 0};
  if (int err = opt(fd, TCP_REPAIR_OPTIONS, opts, static_cast<socklen_t>(n * sizeof opts[0])); err != 0) return err;
  if (st.tstamp_ok) {
    *step = "TCP_TIMESTAMP";
    if (int err = opt(fd, TCP_TIMESTAMP, &st.tsval, sizeof st.tsval); err != 0) return err;
  }
  // The send buffer must hold the queued bytes (tcp_sendmsg_locked() checks sk_stream_memory_free()
  // in repair mode too; the kernel charges about twice the payload). Forced larger only when too
  // small, which locks it as SO_SNDBUF would (no more autotuning): a rare case, a backlog at fork.
  *step = "SO_SNDBUFFORCE";
  const size_t queued = st.sentq.size() + st.unsent.size();
  int sndbuf = 0;
  socklen_t sl = sizeof sndbuf;
  if (libc().getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl) != 0) return -errno;
  if (queued > 0 && static_cast<size_t>(sndbuf) < 3 * queued) {
    int want = static_cast<int>(std::min<size_t>(3 * queued, 1u << 30)) / 2;  // the kernel doubles it
    if (libc().setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) != 0) return -errno;
  }
  *step = "receive queue";
  if (int err = opt_int(fd, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE); err != 0) return err;
  if (int err = send_all(fd, st.rcvq); err != 0) return err;
  *step = "send queue";
  if (int err = opt_int(fd, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE); err != 0) return err;
  if (int err = send_all(fd, st.sentq); err != 0) return err;
  if (int err = opt_int(fd, TCP_REPAIR_QUEUE, TCP_NO_QUEUE); err != 0) return err;
  // After the receive queue: tcp_repair_set_window() checks rcv_wup against rcv_nxt.
  *step = "TCP_REPAIR_WINDOW";
  tcp_repair_window w{.snd_wl1 = st.snd_wl1, .snd_wnd = st.snd_wnd, .max_window = st.max_window,
                      .rcv_wnd = st.rcv_wnd, .rcv_wup = st.rcv_wup};
  return opt(fd, TCP_REPAIR_WINDOW, &w, sizeof w);
}

}  // namespace

int tcp_repair_into(int fd, const TcpRepairState& st, const char** step) {
  // TCP_REPAIR takes a closed or established socket, not a SYN_SENT one: a deferred connect goes
  // back to closed without a packet (kernel_disconnect(); should a later step fail, the port is
  // the kernel's again), and without the Fast Open flag (the program's too), with which the repair
  // connect() would defer rather than establish (tcp_fastopen_defer_connect()).
  if (st.shadow_deferred) {
    *step = "disconnect";
    if (int err = kernel_disconnect(fd, 0); err != 0) return err;
  } else if (st.fastopen_connect) {
    *step = "TCP_FASTOPEN_CONNECT";
    if (int err = opt_int(fd, TCP_FASTOPEN_CONNECT, 0); err != 0 && err != -EOPNOTSUPP) return err;
  }
  *step = "TCP_REPAIR";
  if (int err = opt_int(fd, TCP_REPAIR, 1); err != 0) return err;
  if (int err = repair_steps(fd, st, step); err != 0) {
    // Back to a closed socket, silently: in repair mode tcp_disconnect() sends nothing (it sets
    // sk_err ECONNABORTED, read and cleared here), and the stack keeps the connection.
    sockaddr unspec{};
    unspec.sa_family = AF_UNSPEC;
    (void)libc().connect(fd, &unspec, sizeof unspec);
    int soerr = 0;
    socklen_t l = sizeof soerr;
    (void)libc().getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
    (void)opt_int(fd, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP);
    return err;
  }
  // From here on the connection is the kernel's, whatever happens to the unsent bytes.
  *step = "TCP_REPAIR off";
  (void)opt_int(fd, TCP_REPAIR, TCP_REPAIR_OFF);  // the kernel sends a window probe
  // The bytes never sent: ordinary sends now (the send buffer holds them).
  absl::Span<const uint8_t> rest = st.unsent;
  while (!rest.empty()) {
    ssize_t r = libc().send(fd, rest.data(), rest.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r <= 0) break;
    rest.remove_prefix(static_cast<size_t>(r));
  }
  *step = rest.empty() ? nullptr : "unsent data";
  return 0;
}

}  // namespace xmit
