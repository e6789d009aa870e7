// stack/tcp/tcp_conn.h — opening and closing connections: the TCP state machine around the
// established core. Kernel counterparts: tcp_v4_connect()/tcp_connect() (net/ipv4/tcp_ipv4.c,
// tcp_output.c), tcp_v4_do_rcv(), tcp_rcv_state_process(), tcp_rcv_synsent_state_process(),
// tcp_reset(), tcp_fin() (tcp_input.c), tcp_conn_request()/tcp_check_req() (tcp_input.c,
// tcp_minisocks.c), tcp_close()/tcp_shutdown()/tcp_set_state()/tcp_done()/tcp_poll() (tcp.c),
// inet_csk_listen_start()/inet_csk_accept() (inet_connection_sock.c), tcp_v4_send_reset().
// Simplified relative to Linux (each also said at its place): tcp_time_wait() leaves the socket in
// TIME_WAIT (or an orphan in FIN_WAIT2, TcpOps::time_wait()) for its owner, which replaces it with a
// tcp_timewait_sock (tcp_timewait_sock.h) and calls tcp_done() (TcpStack), or keeps it hashed until
// done() (the tests' harness); request socks live in their listener
// (the owner hands every segment without an established socket to the listener, which looks its
// requests up by 4-tuple); SYN cookies as the kernel's (tcp_syncookies.h); no Fast Open, no MD5/AO, no ECN negotiation.
#pragma once

#include <cstdint>

#include "stack/skb/pool.h"
#include "stack/tcp/tcp_output.h"
#include "stack/tcp/tcp_sock.h"
#include "stack/tcp/tcp_timewait_sock.h"

namespace xmit {

inline constexpr int TCP_SYN_RETRIES = 6;         // kernel: sysctl_tcp_syn_retries (TCP_SYN_RETRIES)
inline constexpr int TCP_SYNACK_RETRIES = 5;      // kernel: sysctl_tcp_synack_retries
inline constexpr int TCP_RETRIES2 = 15;           // kernel: sysctl_tcp_retries2
inline constexpr int TCP_ORPHAN_RETRIES = 8;      // kernel: tcp_orphan_retries() when the sysctl is 0
inline constexpr uint64_t TCP_TIMEWAIT_LEN_US = 60'000'000;  // kernel: TCP_TIMEWAIT_LEN (60 s)
inline constexpr int SOMAXCONN_DEFAULT = 4096;    // kernel: net.core.somaxconn

// kernel: secs_to_retrans(), net/ipv4/tcp.c — TCP_DEFER_ACCEPT's seconds as SYN-ACK retransmissions
// (initial timeout 1 s, doubling up to 120 s): the fewest whose periods add up to `seconds`.
inline uint8_t secs_to_retrans(int seconds, int timeout = 1, int rto_max = 120) {
  uint8_t res = 0;
  if (seconds > 0) {
    int period = timeout;
    res = 1;
    while (seconds > period && res < 255) {
      res++;
      timeout <<= 1;
      if (timeout > rto_max) timeout = rto_max;
      period += timeout;
    }
  }
  return res;
}

// Every segment the state machine sends (tcp_transmit_skb()'s copies, SYN-ACKs of requests,
// resets without a socket) carries its IP addresses in TCP_SKB_CB(skb)->saddr/daddr: an owner's
// xmit may serve many sockets (a listener answers many peers). done() may free an orphan at once:
// no function here touches the socket after calling it.
// What the state machine needs from whoever owns the sockets (the stack in the product, the harness in tests).
class TcpOps {
 public:
  virtual ~TcpOps() = default;
  // A new socket for a connection a listener accepts, pools/options copied from the listener by the state
  // machine afterwards; nullptr when none can be had (the request is dropped). kernel: sk_clone_lock()
  virtual tcp_sock* clone(const tcp_sock* listener) = 0;
  // The child's 4-tuple now receives its own segments. kernel: inet_ehash_nolisten()
  virtual void hash(tcp_sock* child) = 0;
  // tcp_done(): the socket reached TCP_CLOSE (reset, timeout, TIME_WAIT over, close finished). The owner
  // unhashes it, and frees it once the user has closed it too (sock_dead).
  virtual void done(tcp_sock* tp) = 0;
  // tcp_time_wait(sk, TCP_FIN_WAIT2, tmo) of an orphan: the owner may replace it with a
  // tcp_timewait_sock in substate FIN_WAIT2 (deadline tp->tw_timer.expires) and call tcp_done()
  // (kernel: inet_twsk_hashdance() + tcp_done(); tp may be freed). By default the full socket
  // stays in FIN_WAIT2 until tw_timer (or the peer's FIN: TIME_WAIT).
  virtual void time_wait(tcp_sock* tp) { (void)tp; }
  // kernel: secure_tcp_seq_and_ts_off() — one keyed hash of the 4-tuple: its low half plus the clock
  // is the ISN, its high half the timestamp offset (Linux 6.18; before, secure_tcp_ts_off() hashed
  // the two addresses only). Ports in host order; tests return fixed values.
  virtual uint32_t secure_seq(be32 saddr, be32 daddr, uint16_t sport, uint16_t dport) = 0;
  virtual uint32_t secure_ts_off(be32 saddr, be32 daddr, uint16_t sport, uint16_t dport) = 0;
  // kernel: net_info_ratelimited() — a line for the owner's log (tcp_syn_flood_action()'s "Possible
  // SYN flooding"); by default dropped.
  virtual void log_info(const char* line) { (void)line; }
};

// kernel: tcp_set_state() (no statistics, no BPF hooks) — a TCP_CLOSE here does not call done():
// tcp_done() does.
void tcp_set_state(tcp_sock* tp, uint8_t state);
// kernel: tcp_done() — TCP_CLOSE, timers stopped, SHUTDOWN_MASK, then ops->done() (when ops is set).
void tcp_done(tcp_sock* tp, TcpOps* ops);

// kernel: tcp_v4_connect()'s sequence part: write_seq (unless already set) and tsoffset from
// ops->secure_seq() / secure_ts_off() of the 4-tuple. The caller may then put another tsoffset in
// (TcpSocket::connect(): the kernel's own for the 4-tuple) before tcp_connect().
void tcp_v4_connect_seq(tcp_sock* tp, TcpOps* ops);

// kernel: tcp_connect() (with tcp_connect_init()): caller has set saddr/daddr/sport/dport, pools,
// rcvbuf, user_mss, nonagle, and the ISN and tsoffset (tcp_v4_connect_seq()); SYN with Linux's options in
// Linux's order (tcp_syn_options/tcp_options_write: MSS, SACK_PERM+TS or NOP NOP TS..., NOP WS);
// state SYN_SENT; SYN RTO armed (1 s, backoff, tcp_syn_retries = 6 -> ETIMEDOUT via sk_err + done).
// 0 or -errno (-ENOBUFS).
int tcp_connect(tcp_sock* tp, uint32_t dst_mtu, TcpXmitFn xmit);

// Every segment for a socket in any state, LISTEN included: kernel tcp_v4_do_rcv() ->
// tcp_rcv_established() / tcp_rcv_state_process() (SYN_SENT: tcp_rcv_synsent_state_process; LISTEN:
// tcp_conn_request / request socks / tcp_check_req -> child ESTABLISHED, hashed via ops, on the accept
// queue; FIN_WAIT1/2, CLOSING, LAST_ACK, TIME_WAIT, CLOSE_WAIT transitions; RST -> ECONNRESET (or
// ECONNREFUSED in SYN_SENT, EPIPE after close-wait as the kernel's tcp_reset()) + done; challenge ACKs as
// far as reasonable). Takes `skb` (as tcp_rcv_established takes it): data at the TCP header, cb filled by
// tcp_v4_check_segment() (addresses included). A segment for a socket in TCP_CLOSE is answered with a
// reset (tcp_v4_send_reset) as the kernel does for a segment no socket wants.
void tcp_v4_do_rcv(tcp_sock* tp, sk_buff* skb, uint32_t dst_mtu, TcpXmitFn xmit, TcpOps* ops);

// A segment for a full socket its owner keeps in TIME_WAIT (kernel: tcp_timewait_state_process(),
// through a tcp_timewait_sock copied from it). Returns
// TCP_TW_SYN for a SYN that may open a new connection on the 4-tuple (its sequence number is after
// rcv_nxt or its timestamp newer): `skb` stays the caller's, TCP_SKB_CB(skb)->tcp_tw_isn holds the
// ISN to answer with (snd_nxt + 65537), and the caller hands it to the listener after ending the
// TIME_WAIT with tcp_done() (tcp_v4_rcv()), or, with no listener, calls tcp_v4_timewait_ack() and frees
// it. Otherwise 0: `skb` consumed (an ACK sent, the timer re-armed, or a reset ended it).
int tcp_timewait_state_process(tcp_sock* tp, sk_buff* skb, TcpXmitFn xmit, TcpOps* ops);
// The ACK a TIME_WAIT sends (tcp_timewait_state_process() sends its out-of-window ACKs itself,
// rate-limited; a TCP_TW_SYN no listener takes is acknowledged with this, not rate-limited, as
// tcp_v4_rcv()'s fall-through to TCP_TW_ACK). kernel: tcp_v4_timewait_ack()
void tcp_v4_timewait_ack(tcp_sock* tp, TcpXmitFn xmit);

// listen(): kernel inet_csk_listen_start() + sk_max_ack_backlog; again on a listener only updates the backlog.
// 0, or -EINVAL when the socket is neither CLOSE nor LISTEN (inet_listen()).
int inet_csk_listen_start(tcp_sock* tp, int backlog);

// accept(): the first established child off the accept queue, or nullptr when empty. kernel: inet_csk_accept() (non-blocking part)
tcp_sock* inet_csk_accept(tcp_sock* listener);

// close(): kernel __tcp_close(): unread data -> RST (tcp_send_active_reset), SO_LINGER 0 -> RST, else
// tcp_close_state() + FIN; marks sock_dead; a listener resets its queued children (inet_csk_listen_stop:
// children are handed to ops->done after reset). Calls ops->done when it ends in CLOSE at once (also
// for a socket already in CLOSE: the second done() comes with sock_dead set, for the owner to free
// it). In TIME_WAIT close() only orphans the socket: done() comes when TIME_WAIT ends.
void tcp_close(tcp_sock* tp, uint32_t dst_mtu, TcpXmitFn xmit, TcpOps* ops);

// shutdown(2): kernel tcp_shutdown() (SEND_SHUTDOWN -> FIN per tcp_close_state) and inet_shutdown()'s
// errnos (ENOTCONN...). `how` is SHUT_RD/SHUT_WR/SHUT_RDWR. 0 or -errno.
int tcp_shutdown(tcp_sock* tp, int how, uint32_t dst_mtu, TcpXmitFn xmit, TcpOps* ops);

// Readiness: kernel tcp_poll() — POLLIN/POLLRDNORM, POLLOUT (sk_stream_is_writeable: keep a simple
// stand-in if there is no send-buffer accounting yet, say so), POLLPRI (an urgent byte to read;
// POLLIN then wants a byte past it unless SO_OOBINLINE), POLLHUP, POLLRDHUP, POLLERR; a listener
// POLLIN when the accept queue is non-empty. Stand-in for POLLOUT: with sndbuf 0 always writeable,
// else sndbuf - (write_seq - snd_una) >= (write_seq - snd_una) / 2 (sk_stream_wspace() >=
// sk_stream_min_wspace() with unacked bytes for sk_wmem_queued).
int tcp_poll(const tcp_sock* tp);

// setsockopt(SO_KEEPALIVE): kernel tcp_set_keepalive() — arms the keepalive timer (keepalive_time
// from now) on a socket that is neither CLOSE nor LISTEN, or stops it. A connection made afterwards
// (tcp_finish_connect(), a listener's child) arms it when established. TCP_KEEPIDLE/INTVL/CNT are
// the tcp_sock fields; a changed TCP_KEEPIDLE applies from the next expiry (the kernel re-arms it
// in tcp_sock_set_keepidle_locked()).
void tcp_set_keepalive(tcp_sock* tp, bool on);

// kernel: sock_error() — the pending error, cleared (SO_ERROR, or a failed read/write/connect);
// 0 when none. Returns a positive errno.
int tcp_sock_error(tcp_sock* tp);

// A segment no socket wants: kernel tcp_v4_send_reset() (never in answer to a RST). `skb` cb filled by
// tcp_v4_check_segment; a new skb from `pool`.
void tcp_v4_send_reset(const sk_buff* skb, const tcp_skb_cb& tcb, SkbPool* pool, TcpXmitFn xmit);

}  // namespace xmit
