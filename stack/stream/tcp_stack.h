// stack/stream/tcp_stack.h — TCP on the process's stack instance: each connection's state around
// the protocol's (route, IP fields, steering), the demux of received segments to connections and
// listeners, the segments' way out through IP, and the timers. Kernel counterparts: struct sock /
// inet_sock around struct tcp_sock, inet_hashtables.c (ehash, lhash), tcp_v4_rcv() and
// tcp_v4_send_reset()'s socket-less path (net/ipv4/tcp_ipv4.c), ip_queue_xmit(), the timer wheel.
//
// Threading: everything here runs under the instance's mutex (UdpStack::mu()), as UDP does.
// Time: tcp_mstamp is a fine monotonic clock in µs (TcpStackOptions::clock_ns), read once per
// received segment, socket call and timer round — RTT samples need better than the coarse tick
// the UDP path runs on.
// Simplified relative to Linux: one interface; listeners and connections in std containers
// (allocation when a connection opens, not per segment); every live connection's timers are looked
// at on each poll (a list walk, not a wheel: fine for hundreds of connections, not for a C10K
// server). A connection entering TIME_WAIT — a churning peer leaves 60 s worth of them, tens of
// thousands — leaves a tcp_timewait_sock (tcp/tcp_timewait_sock.h, 80 bytes) in the demux and the
// full socket goes to CLOSE (freed, or its fd's until close()), as the kernel's tcp_time_wait(),
// and so does an orphan in FIN_WAIT2 (substate FIN_WAIT2, at most TCP_TIMEWAIT_LEN); timewait socks
// wait in a list by deadline whose head alone is looked at: TIME_WAIT's deadlines, now +
// TCP_TIMEWAIT_LEN, go at the tail (kernel: inet_timewait_sock, its tw_timer).
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "stack/ipv4/inet_sock.h"
#include "stack/neigh/dst_cache.h"
#include "stack/tcp/tcp_conn.h"
#include "stack/tcp/tcp_syncookies.h"
#include "stack/tcp/tcp_timewait_sock.h"
#include "stack/tcp/tcp_tsq.h"
#include "stack/udp/udp_stack.h"

namespace xmit {

class TcpSocket;

// One TCP socket's state in the stack. `tp` is first: the protocol's callbacks hand out tcp_sock
// pointers, tcp_conn() gets back here. kernel: the struct sock a struct tcp_sock is embedded in.
struct TcpConn {
  tcp_sock tp;
  InetSock inet;            // the IP output fields (TOS, TTL, DF, id counter, mark, priority)
  DstCache dst;             // kernel: sk_dst_cache
  Ipv4Route route;          // the output path's view of dst.rt (valid with it)
  TcpSocket* user = nullptr;  // the socket an fd names; nullptr on the accept queue or once closed
  bool ehashed = false;
  bool lhashed = false;
  bool steered = false;
  bool reuseport = false;   // SO_REUSEPORT (kernel: sk->sk_reuseport)
  FlowKey steer_key{};
  uint64_t rx_drops = 0;    // segments that found no receive buffer
};
inline TcpConn* tcp_conn(tcp_sock* tp) { return reinterpret_cast<TcpConn*>(tp); }

struct TcpStackOptions {
  uint32_t tx_skbs = 16384;        // segments queued or in flight, every connection together
  uint32_t tx_pages = 1024;        // payload buffers (tcp_sendmsg's page frags)
  uint32_t tx_page_size = 32768;
  uint32_t rx_skbs = 8192;         // received segments held in receive and out-of-order queues (with
                                   // heads over 2048 bytes, an MTU over 1970: this many 2048-byte heads' worth)
  uint32_t rmem_default = 131072;  // net.ipv4.tcp_rmem[1]
  uint32_t wmem_default = 16384;   // net.ipv4.tcp_wmem[1]
  uint32_t rmem_max = 6291456;     // max(net.ipv4.tcp_rmem[2], net.core.rmem_max): the window scale
  uint32_t notsent_lowat = UINT32_MAX;  // net.ipv4.tcp_notsent_lowat
  uint32_t optmem_max = 131072;    // net.core.optmem_max: MSG_ZEROCOPY's per-socket limit (ENOBUFS)
  uint32_t busy_read = 0;          // net.core.busy_read (XMIT_BUSY_POLL): a new socket's SO_BUSY_POLL
  bool autocorking = true;         // net.ipv4.tcp_autocorking (and XMIT_TCP_AUTOCORK): tcp_should_autocork()
  uint8_t pingpong_thresh = 1;     // net.ipv4.tcp_pingpong_thresh: replies before ACKs wait for one
  // net.ipv4.tcp_limit_output_bytes, tcp_pacing_ss_ratio, tcp_pacing_ca_ratio: TCP Small Queues'
  // cap and the pacing rate it reads (tcp_small_queue_check(), tcp_update_pacing_rate())
  uint32_t limit_output_bytes = 4194304;
  uint32_t pacing_ss_ratio = 200;
  uint32_t pacing_ca_ratio = 120;
  // net.ipv4.tcp_min_tso_segs, tcp_tso_rtt_log: TSO autosizing (tcp_tso_segs())
  uint8_t min_tso_segs = 2;
  uint8_t tso_rtt_log = 9;
  // net.ipv4.tcp_max_tw_buckets: at most this many timewait socks (inet_twsk_alloc()); the
  // kernel's default is half its established hash's size, 262144 on a machine with 4 GiB or more
  uint32_t max_tw_buckets = 262144;
  // net.ipv4.tcp_fin_timeout: how long an orphan waits in FIN_WAIT2, seconds (tcp_fin_time())
  uint32_t fin_timeout = 60;
  // net.ipv4.tcp_min_rtt_wlen: the min RTT filter's window in seconds (tcp_update_rtt_min())
  uint32_t min_rtt_wlen = 300;
  // net.ipv4.tcp_syncookies: 0 never, 1 when a listener's request queue is full, 2 always
  uint8_t syncookies = 1;
  tcp_syncookie_secret syncookie_secret;  // the cookies' SipHash keys (random per process in the product)
  // Where the stack's info lines go (kernel: net_info_ratelimited()): the "Possible SYN flooding"
  // line; null: nowhere. Called with mu() held.
  void (*log_info)(const char* line) = nullptr;
  uint64_t (*clock_ns)() = nullptr;  // fine monotonic clock (required)
  uint64_t secret = 0;             // key of the port-offset and IP-id mixes
  siphash_key_t net_secret;        // the ISN and timestamp-offset SipHash key (kernel: net_secret)
  // net.ipv4.ip_local_port_range and ip_local_reserved_ports: where connect() picks its port.
  uint16_t port_low = 32768, port_high = 60999;
  std::vector<std::pair<uint16_t, uint16_t>> reserved_ports;  // inclusive ranges
};

// The TCP MIB counters this stack keeps (/proc/net/snmp "Tcp:"). kernel: TCP_MIB_*
struct TcpMib {
  uint64_t ActiveOpens = 0, PassiveOpens = 0, InSegs = 0, InErrs = 0, OutRsts = 0, RcvDrops = 0;
};

class TcpStack final : public NetProtocol, public TcpOps {
 public:
  // `base` is the instance; the caller registers the result with base->set_tcp(). 0 or -ENOMEM.
  // Tear-down order: the instance first (it gives completed frames back to TCP's pools), then this.
  static int create(UdpStack* base, const TcpStackOptions& opt, std::unique_ptr<TcpStack>* out);
  ~TcpStack() override;

  UdpStack& base() { return *base_; }
  StackMutex& mu() { return base_->mu(); }
  const TcpStackOptions& options() const { return opt_; }
  BufPool& page_pool() { return *pages_; }  // TCP's payload pages (tests empty it)
  // The payload pool's region (for device registration, as UdpStack::for_each_pool_region()).
  void for_each_pool_region(absl::FunctionRef<void(const uint8_t* base, size_t len)> f) const;

  // Everything below: with mu() held.
  uint64_t now_us() const { return opt_.clock_ns() / 1000; }
  // kernel: sk_alloc() + tcp_init_sock(): a CLOSE socket with the stack's pools and defaults.
  // nullptr when out of memory.
  TcpConn* conn_alloc();
  // Frees a connection the stack no longer refers to (unhashed, unsteered, off the timer list).
  // Segments of it the device still holds keep its memory until their completion (kernel:
  // sk_free(), sk_wmem_alloc): then it is deleted (tcp_tsq.h's sk_destruct).
  void conn_free(TcpConn* c);
  // The route from c's bound address (or the preferred source) to `daddr`: dst, route and
  // inet.inet_saddr set. 0, -errno from the lookup, or 1 when the route does not leave through
  // this interface as unicast (the socket then belongs to the kernel).
  int route_connect(TcpConn* c, be32 daddr);
  // The route's MTU for the MSS (tcp_sync_mss()), revalidating the cached route.
  uint32_t dst_mtu(TcpConn* c);
  // A segment of `c` onto IP (kernel: ip_queue_xmit()). Takes the skb. 0 or -errno.
  int xmit(TcpConn* c, sk_buff* skb);
  // Registration in the demux and the device's steering (a connection's 4-tuple, unless steer_flow
  // is false; a listener's local port). kernel: inet_ehash_nolisten(),
  // inet_csk_listen_start()'s hash, inet_unhash(). 0 or the device's -errno.
  int ehash(TcpConn* c, bool steer_flow = true);
  // Does a connection of this stack (timewait socks included) own the 4-tuple? kernel:
  // __inet_check_established() without tcp_tw_reuse (whose default only reuses loopback's).
  bool established(be32 saddr, uint16_t sport, be32 daddr, uint16_t dport) const {
    return ehash_.count(ekey(daddr, dport, saddr, sport)) != 0;
  }
  // kernel: inet_is_local_reserved_port()
  bool reserved_port(uint16_t port) const;
  // kernel: __inet_hash_connect()'s start: inet_sk_port_offset() (a keyed hash of saddr, daddr and
  // dport) picks a slot of table_perturb, whose value plus the hash's high half is where the scan
  // for a port starts; after a port was taken at scan position i the slot advances by
  // max(i, random below 8 * step) + step, so connections to one destination take ports in turn
  // and a port comes back only after the range went round (not while the peer may still hold
  // its last connection in TIME_WAIT).
  uint32_t& table_perturb(be32 saddr, be32 daddr, uint16_t dport, uint32_t* hash_high);
  int lhash(TcpConn* c);
  void unhash(TcpConn* c);
  // fork(): the listening sockets were inherited by the child, which hands them to the kernel (its
  // copy of the stack is abandoned); the parent stops steering their ports, so new connections go
  // to the kernel's listening socket, which both processes accept from (TcpSocket::accept() falls
  // back to it): a pre-fork server's workers get every connection, through the kernel.
  // Connections already accepted stay with this stack, each steered by its own 4-tuple.
  void listeners_to_kernel();
  // fork(): `c`'s connection now lives in the kernel socket behind its fd (TcpSocket::
  // connections_to_kernel()): c leaves the demux and the steering and is freed. Its segments the
  // device queued before the steering changed are dropped for a while (the kernel's socket gets
  // the peer's retransmissions) instead of being answered with a reset as a stray's would be.
  void moved_to_kernel(TcpConn* c);
  // Every connection alive (a copy: callers may free connections while walking it).
  std::vector<TcpConn*> conns() const { return conns_; }
  // Runs c's timers if due (after a socket call moved them).
  void run_timers(TcpConn* c);
  // The earliest pending timer of any connection, on clock_ns's clock; UINT64_MAX when none. While
  // autocorked data (tsq_tasklet::throttled) waits for a TX completion on a device whose
  // completions wake no one (Netdev::tx_completion_wakes()), also the TX poll: a deadline
  // kTxPollMinNs after the wait began, doubling up to kTxPollMaxNs while the completion does not
  // come (see tx_completed()), by which a waiter or the progress thread reaps completions
  // (UdpStack::tx_complete_now()) — the kernel's TX interrupt, which coalesces completions for
  // tens of microseconds. Frames in the instance's backlog: its own TX poll, which the UdpStack
  // keeps (UdpStack::next_timer_ns(), on the same clock in the engine) and which this includes —
  // one series of deadlines for the shared backlog, not one per transport. Nothing waiting: no
  // such deadline (no wake-ups while idle).
  uint64_t next_timer_ns() const;
  static constexpr uint64_t kTxPollMinNs = 20'000;
  static constexpr uint64_t kTxPollMaxNs = 1'000'000;
  // The TX poll deadline now (0: none). See next_timer_ns().
  uint64_t tx_poll_ns() const { return tx_poll_at_; }
  // `f(deadline)` runs (with mu() held) when a TX poll deadline is set where there was none: a
  // thread sleeping past it (the progress thread) is woken to keep it.
  void set_tx_poll_hook(void (*f)(uint64_t deadline_ns)) { tx_poll_hook_ = f; }
  // Whether a send could get a segment and a payload buffer now. The pools are the stand-in for
  // the kernel's TCP memory accounting: when they run dry a send returns EAGAIN (or waits) as
  // under tcp_memory_pressure, and poll must not say POLLOUT meanwhile, or an edge-triggered
  // writer would wait for an edge that never comes.
  bool tx_memory_free() const { return pages_->nr_free() > 0 && heads_->nr_free() > 0; }
  bool has_conns() const { return !conns_.empty() || tw_head_ != nullptr; }
  // The timewait socks (kernel: tcp_death_row's tw_refcount), and the one of a 4-tuple (nullptr:
  // none), for tests.
  size_t tw_count() const { return tw_count_; }
  const tcp_timewait_sock* twsk_lookup(be32 saddr, uint16_t sport, be32 daddr, uint16_t dport) const {
    auto it = ehash_.find(ekey(daddr, dport, saddr, sport));
    return it != ehash_.end() ? it->second.tw : nullptr;
  }
  // Connections conn_free() released whose segments the device still holds.
  size_t dying() const { return dying_.size(); }
  // `f` runs (with mu() held) whenever conn_alloc() makes a connection while has_conns() was false:
  // a thread that sleeps for want of connections (the progress thread) is woken there, after the
  // connection exists, not before (an accepted child never passes through socket()).
  void set_first_conn_hook(void (*f)()) { first_conn_hook_ = f; }
  // Process exit (the kernel closes every fd and keeps the orphans running): each connection an fd
  // still names is closed as close() would, listeners included.
  void close_all_at_exit();
  bool exiting() const { return exiting_; }
  // Connections still delivering: data or a FIN not yet acknowledged (not CLOSE, LISTEN or
  // TIME_WAIT), or an orphan's FIN_WAIT2 waiting for the peer's FIN.
  bool exit_pending() const;

  TcpMib mib;
  LinuxMib net_mib;  // TcpExt

  // NetProtocol
  bool handler(const RxFrame& f, be32 saddr, be32 daddr, absl::Span<const uint8_t> l4) override;
  void timers() override;
  // The sockets TX completions released (TSQ's list): each sends what it held. kernel:
  // tcp_tasklet_func() -> tcp_tsq_handler()
  void tx_completed() override;
  // TcpOps
  tcp_sock* clone(const tcp_sock* listener) override;
  void hash(tcp_sock* child) override;
  void done(tcp_sock* tp) override;
  void time_wait(tcp_sock* tp) override;  // an orphan's FIN_WAIT2: inet_twsk_hashdance()
  uint32_t secure_seq(be32 saddr, be32 daddr, uint16_t sport, uint16_t dport) override;
  uint32_t secure_ts_off(be32 saddr, be32 daddr, uint16_t sport, uint16_t dport) override;
  void log_info(const char* line) override;

 private:
  TcpStack() = default;
  uint64_t secure_hash(be32 saddr, be32 daddr, uint16_t sport, uint16_t dport) const;
  struct EKey {
    uint64_t addrs;  // remote << 32 | local (network order values)
    uint32_t ports;  // remote << 16 | local (host order)
    bool operator==(const EKey&) const = default;
  };
  struct EKeyHash {
    size_t operator()(const EKey& k) const { return std::hash<uint64_t>()(k.addrs * 31 + k.ports); }
  };
  static EKey ekey(be32 raddr, uint16_t rport, be32 laddr, uint16_t lport) {
    return EKey{uint64_t{raddr} << 32 | laddr, uint32_t{rport} << 16 | lport};
  }
  TcpConn* lookup_listener(be32 saddr, uint16_t sport, be32 daddr, uint16_t dport) const;
  // A segment to/from addresses no connection owns (a reset, or what a listener sends before its
  // child exists): routed per segment. kernel: ip_send_unicast_reply() / ip_build_and_send_pkt()
  int xmit_to(be32 saddr, be32 daddr, sk_buff* skb);
  int steer(TcpConn* c, const FlowKey& key);
  static FlowKey flow_key(const TcpConn* c);  // c's 4-tuple as the device steers it
  static FlowKey flow_key(const tcp_timewait_sock* tw);
  void steer_children(const TcpConn* listener);  // its accepted connections by their own rules
  // kernel: tcp_time_wait() after its copy: inet_twsk_hashdance() (the timewait sock takes c's
  // ehash entry and steering rule, in the list at its deadline), then tcp_done() of the full socket.
  void inet_twsk_hashdance(TcpConn* c);
  // kernel: inet_twsk_deschedule_put(): out of the demux, the steering and the FIFO; freed.
  void inet_twsk_deschedule_put(tcp_timewait_sock* tw);
  void tw_unlink(tcp_timewait_sock* tw);
  void tw_link_tail(tcp_timewait_sock* tw);
  // At its deadline's place, searched from the tail: TIME_WAIT's (now + TCP_TIMEWAIT_LEN) go last,
  // an orphan's FIN_WAIT2 (at most that) just before the ones due later.
  void tw_link_by_deadline(tcp_timewait_sock* tw);
  // A segment for a timewait sock (kernel: tcp_v4_rcv()'s do_time_wait). Returns the listener a
  // TCP_TW_SYN goes to (the timewait sock freed; `skb` then still the caller's), else nullptr
  // (`skb` consumed).
  TcpConn* tw_rcv(tcp_timewait_sock* tw, sk_buff* skb, be32 saddr, uint16_t sport, be32 daddr, uint16_t dport);
  TcpConn* rcv_conn_ = nullptr;  // the socket handler() gave a segment to: nulled if conn_free() frees it

  UdpStack* base_ = nullptr;
  TcpStackOptions opt_;
  std::unique_ptr<BufPool> heads_, pages_, rx_heads_;
  uint32_t rx_head_size_ = 2048;  // rx_heads_' buffers: one received segment each
  std::unique_ptr<SkbPool> skbs_, rx_skbs_;
  bool exiting_ = false;  // close_all_at_exit() ran
  void (*first_conn_hook_)() = nullptr;
  InetSock ctl_inet_;  // kernel: the per-netns ctl socket replies and resets are sent from
  std::vector<TcpConn*> conns_;  // every full socket alive
  // The timewait socks, oldest deadline first (tw_prev/tw_next).
  tcp_timewait_sock* tw_head_ = nullptr;
  tcp_timewait_sock* tw_tail_ = nullptr;
  size_t tw_count_ = 0;
  uint64_t tw_overflow_logged_us_ = 0;  // the last "time wait bucket table overflow" line
  static constexpr uint32_t kTablePerturbSize = 256;  // kernel: 1 << CONFIG_INET_TABLE_PERTURB_ORDER (65536)
  uint32_t table_perturb_[kTablePerturbSize] = {};
  struct ESock {  // an ehash entry: a full socket or a timewait sock (kernel: sk_fullsock())
    TcpConn* sk = nullptr;
    tcp_timewait_sock* tw = nullptr;
  };
  std::unordered_map<EKey, ESock, EKeyHash> ehash_;
  std::unordered_map<uint16_t, std::vector<TcpConn*>> lhash_;  // local port -> listeners
  struct Moved {
    EKey key;
    uint64_t until_us;
  };
  std::vector<Moved> moved_;  // moved_to_kernel()'s flows, dropped silently until until_us
  tsq_tasklet tsq_;               // sockets a TX completion released (tcp_wfree())
  bool tx_wakes_ = false;         // base's device: Netdev::tx_completion_wakes()
  uint64_t tx_poll_at_ = 0;       // the TX poll deadline (next_timer_ns()), 0: none
  uint64_t tx_poll_gap_ = kTxPollMinNs;
  void (*tx_poll_hook_)(uint64_t) = nullptr;
  // TCP's own wait for a completion: autocorked data. The instance's backlog (TCP's software-GSO
  // segments and UDP's alike) has its deadline from its owner, UdpStack::next_timer_ns().
  bool tx_waiting() const { return !tx_wakes_ && tsq_.throttled != 0; }
  void update_tx_poll();
  std::vector<TcpConn*> dying_;   // freed by conn_free(), their segments still at the device
  static void sk_destruct(tsq_tasklet* tsq, tcp_sock* tp);
};

}  // namespace xmit
