// stack/udp/udp_stack.h — one process's UDP/IPv4 stack instance over one Netdev: packet pools, the
// neighbour table, the ident generator, the counters, TX completion reaping and the receive demux.
// Kernel counterparts: the per-netns state the UDP path reaches (udp_table, net->mib, arp_tbl) and
// the device's NAPI poll feeding __udp4_lib_rcv() (net/ipv4/udp.c).
#pragma once

// Threading: ONE mutex (mu()) serialises everything here and in every UdpSock of the instance:
// sends, receives, demux, TX completions, neighbour updates. Simple and correct for a first slice;
// per-socket locks and a per-thread queue come later. The lock is never held across a blocking
// wait (UdpSock releases it around poll()).
// Time is passed in (poll(now)); the owner supplies `now` from its clock.
//
// Control-plane cadence: poll() runs on every send and receive, so it must cost no syscall when
// nothing is due. The kernel's control plane (route/address/link/neighbour notifications over
// rtnetlink, and the errors the kernel posts on the shadow sockets: ICMP) is read through
// ControlOps at most once per UdpStackOptions::control_interval_ns (default kControlIntervalNs,
// 1 ms), or at the next poll after request_control(). What this means: a route or neighbour change
// is seen by the stack within 1 ms of the kernel's notification (then the FIB generation moves and
// every socket's dst cache revalidates on its next send); an ICMP error on a connected socket is
// seen within 1 ms of its arrival at the shadow (the kernel sees it at once). The interval is
// measured on the clock the owner passes in: the engine's ticks (CLOCK_MONOTONIC_COARSE, 4 ms at
// HZ=250), so there it is one look per tick, within 4 ms. Neighbour backstop
// timers run on every poll; they cost a compare when none is due (NeighTable::neigh_timer_handler).

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"

#include "stack/base/stack_mutex.h"
#include "stack/dev/netdev.h"
#include "stack/ipv4/inet_sock.h"
#include "stack/ipv4/ip_ident.h"
#include "stack/ipv4/ip_output.h"
#include "stack/neigh/fib.h"
#include "stack/neigh/neighbour.h"
#include "stack/skb/pool.h"

namespace xmit {

class UdpSock;

// The receive-side UDP counters (/proc/net/snmp "Udp:"). kernel: UDP_MIB_*
struct UdpRxMib {
  uint64_t InDatagrams = 0;
  uint64_t NoPorts = 0;       // steered to the queue, but no socket here (closed meanwhile)
  uint64_t InErrors = 0;      // malformed, bad checksum, or receive buffer full
  uint64_t RcvbufErrors = 0;  // the socket's queue was past SO_RCVBUF
  uint64_t InCsumErrors = 0;
};

// The control plane the stack reads at its cadence (see above): one non-blocking look at
// everything that may have changed. Implemented over epoll + rtnetlink in preload/engine.cc.
// Called with the stack's mutex held.
class ControlOps {
 public:
  virtual ~ControlOps() = default;
  // Reads without blocking what changed since the last call: neighbour events go to `neigh`
  // (NeighTable::neigh_update()), and each shadow socket the kernel flagged with an error
  // (EPOLLERR: sk_err set, e.g. by an ICMP port unreachable) is reported by fd.
  virtual void poll_changes(uint64_t now, NeighTable& neigh, absl::FunctionRef<void(int fd)> on_shadow_error) = 0;
  // Adds / removes a shadow socket to / from the set watched for errors.
  virtual void watch_shadow(int fd) = 0;
  virtual void unwatch_shadow(int fd) = 0;
  // Every poll (keep it cheap, no syscall): e.g. the pcap recorder's clock.
  virtual void on_poll(uint64_t now) { (void)now; }
};

// Another transport served on the same instance (TCP, stack/stream/tcp_stack.h): the frames of its
// protocol and a look at its timers on every poll(). kernel: struct net_protocol (inet_protos[]),
// and the timer softirq.
class NetProtocol {
 public:
  virtual ~NetProtocol() = default;
  // A frame whose IPv4 header passed ip_rcv_core()'s checks, carrying this protocol, not a fragment.
  // `l4` is the IP payload (tot_len bounded). Returns true when it keeps the buffer (then recycles
  // it through the device), false when the caller may recycle it at once.
  virtual bool handler(const RxFrame& f, be32 saddr, be32 daddr, absl::Span<const uint8_t> l4) = 0;
  // Runs what is due; called by every poll() with the mutex held.
  virtual void timers() = 0;
  // poll() reaped TX completions: run what they released (TCP's TSQ handler). kernel: the TSQ
  // tasklet that tcp_wfree() schedules, since a destructor may not transmit.
  virtual void tx_completed() {}
};

// How often poll() reads the control plane. See "Control-plane cadence" above.
inline constexpr uint64_t kControlIntervalNs = 1'000'000;

struct UdpStackOptions {
  uint32_t nr_skbs = 1024;       // TX sk_buffs (held until the device reports completion)
  uint32_t buf_size = 2048;      // head and fragment buffers
  uint64_t ident_seed = 1;       // HashIpIdents key (random in production)
  uint32_t rx_truesize = 4096;   // what one received datagram charges against SO_RCVBUF
  uint32_t optmem_max = 131072;  // net.core.optmem_max: MSG_ZEROCOPY's per-socket limit (ENOBUFS)
  uint32_t busy_read = 0;        // net.core.busy_read (XMIT_BUSY_POLL): a new socket's SO_BUSY_POLL
  uint32_t rmem_default = 212992;  // net.core.rmem_default: a new socket's SO_RCVBUF
  uint32_t wmem_default = 212992;  // net.core.wmem_default: a new socket's SO_SNDBUF
  Ipv4Sysctl sysctl;
  uint64_t (*realtime_ns)() = nullptr;  // receive timestamps (SO_TIMESTAMP*); none when null
  uint64_t control_interval_ns = kControlIntervalNs;  // ControlOps::poll_changes() at most this often
  // Where an IPv4 fragment of UDP that reached the queue goes: the kernel, whole (the frame as
  // received, Ethernet header included, cut at the IP packet's tot_len), to be reassembled there
  // with the datagram's other fragments and handed to the shadow socket, which the socket reads
  // too. 0 or -errno. A NIC's flow rule for a port takes a datagram's first fragment (it carries the
  // ports) and leaves the later ones, which have no UDP header, to the kernel: neither side could
  // reassemble alone. Null: such fragments are dropped (InErrors). (The AF_XDP program passes every
  // fragment to the kernel itself.)
  int (*ip_frag_to_kernel)(void* ctx, const uint8_t* frame, uint32_t len) = nullptr;
  void* ip_frag_ctx = nullptr;
  // The clock of the TX poll deadline (next_timer_ns()): the progress thread's (CLOCK_MONOTONIC in
  // the engine). Null: the `now` of the last poll()/out_ctx().
  uint64_t (*clock_ns)() = nullptr;
  // The per-socket send template (stack/ipv4/udp_tmpl.h); off: every datagram takes the full path
  // (the tests compare the two).
  bool udp_send_template = true;
};

class UdpStack final : private NeighOps, private NeighOutput {
 public:
  // `dev` and `fib` outlive the stack. 0 or -errno (-ENOMEM).
  static int create(Netdev* dev, Fib* fib, const UdpStackOptions& opt, std::unique_ptr<UdpStack>* out);
  ~UdpStack() override;
  UdpStack(const UdpStack&) = delete;
  UdpStack& operator=(const UdpStack&) = delete;

  StackMutex& mu() { return mu_; }
  // The time the last poll() ran at (its `now`), for callers between polls.
  uint64_t now_hint() const { return now_; }
  // The fine clock (UdpStackOptions::clock_ns), else now_hint(): the TX poll deadline, busy polls.
  uint64_t clock_now() const { return opt_.clock_ns != nullptr ? opt_.clock_ns() : now_; }

  // Everything below: with mu() held.
  // Reaps TX completions, reads the control plane when due (see above), runs the neighbour timers
  // due, and demuxes up to `budget` received frames into the sockets' queues.
  // kernel: net_rx_action() + the TX clean-up. Returns the frames received.
  int poll(uint64_t now, int budget = 64);
  // The completions the device already has, and what they release (TCP's TSQ handler): after a
  // send burst's doorbell, as the kernel's TX completion interrupt would come for a device that
  // completes at once (AF_XDP in copy mode does so inside the doorbell's sendto()). No receive,
  // no timers.
  void tx_complete_now();
  // `ctl` outlives the stack; nullptr: none (route and neighbour state then changes only through
  // the Fib's own lookups). Sockets registered before are not watched.
  void set_control(ControlOps* ctl) { control_ = ctl; control_due_ = 0; }
  // The next poll() reads the control plane, whatever the cadence (the caller knows it must refresh).
  void request_control() { control_due_ = 0; }
  // The shadow socket `fd` of `sk` is watched for kernel errors (UdpSock::shadow_error()) / no more.
  void watch_shadow(UdpSock* sk, int fd);
  void unwatch_shadow(UdpSock* sk, int fd);

  // TCP's frames go to `p` (nullptr: none; they are then counted as not for us). Set once, at start.
  void set_tcp(NetProtocol* p) { tcp_ = p; }

  IpOutCtx out_ctx(uint64_t now);
  Netdev& dev() { return *dev_; }
  // The device's constants, read once at create() (no virtual call per datagram).
  const NetdevFeatures& dev_features() const { return *dev_features_; }
  Fib& fib() { return *fib_; }
  int ifindex() const { return ifindex_; }
  NeighTable& neigh() { return *neigh_; }
  // The local address steering uses for sockets bound to INADDR_ANY (the interface's address).
  be32 if_addr() const { return if_addr_; }
  void set_if_addr(be32 a) { if_addr_ = a; }
  uint32_t rx_truesize() const { return opt_.rx_truesize; }
  uint32_t optmem_max() const { return opt_.optmem_max; }
  uint32_t busy_read() const { return opt_.busy_read; }
  uint32_t rmem_default() const { return opt_.rmem_default; }
  uint32_t wmem_default() const { return opt_.wmem_default; }
  bool udp_send_template() const { return opt_.udp_send_template; }
  // The packet pools' regions (headers, then payload fragments), for a device that sends in place
  // from registered memory (IbvNetdev::register_memory(); AF_XDP copies into its UMEM instead).
  void for_each_pool_region(absl::FunctionRef<void(const uint8_t* base, size_t len)> f) const {
    f(heads_->base(), heads_->size());
    f(frags_->base(), frags_->size());
  }

  // Demux registration (kernel: udp_lib_get_port() / udp_lib_unhash()); several sockets may share a
  // port (SO_REUSEADDR/SO_REUSEPORT). Kept in bind order, the order of a reuseport group.
  void hash(UdpSock* sk, be16 port);
  void unhash(UdpSock* sk, be16 port);
  // kernel: __udp4_lib_lookup(): the socket for a datagram, or nullptr. The best compute_score()
  // among sockets bound to daddr, else among those bound to INADDR_ANY; an unconnected
  // SO_REUSEPORT socket that scores best hands the datagram to its group's member for this flow
  // (reuseport_select_sock() by hash; the kernel's hash has a random key, so which member a flow
  // gets differs from the kernel's, not that a flow always gets the same one).
  UdpSock* udp4_lib_lookup(be32 saddr, be16 sport, be32 daddr, be16 dport);
  // Steering shared by the sockets of one port: the device is told on the first steer() of a key
  // and the last unsteer(). 0 or the device's -errno.
  int steer(const FlowKey& key);
  void unsteer(const FlowKey& key);
  int steer_to_kernel(const FlowKey& key) { return dev_->steer_to_kernel(key); }  // Netdev::steer_to_kernel()

  // Threads about to sleep on the device's wait fd after a look at their sockets: counted under
  // mu() before the mutex is let go, so a progress thread that takes frames off the device only
  // while this is 0 (under mu()) can never take the frame such a sleeper waits for after its look.
  std::atomic<int> rx_sleepers{0};
  // poll() calls so far (written under mu()): the progress thread reads whether a thread in the
  // stack has been taking frames off the device itself (preload/engine.cc).
  std::atomic<uint64_t> polls{0};

  IpMib mib;
  uint64_t udp_tmpl_sends = 0;  // datagrams the per-socket send template sent (stack/ipv4/udp_tmpl.h)
  UdpMib udp_mib;
  UdpRxMib udp_rx_mib;
  uint64_t rx_frags_to_kernel = 0;  // UDP fragments the queue got, handed to the kernel (ip_frag_to_kernel)
  uint64_t tx_in_flight = 0;   // skbs posted, not yet completed
  uint64_t tx_drops = 0;       // device queue full (the kernel's qdisc drop: NET_XMIT_DROP)
  uint64_t tx_requeued = 0;    // frames that waited in the backlog (see queue_xmit())
  // Frames in the backlog now: they go at the next reap (poll(), tx_complete_now()) or xmit.
  uint32_t tx_backlog() const { return backlog_len_; }
  // The backlog's limit: a packet that finds this many frames waiting is dropped (enqueue_backlog()).
  static constexpr uint32_t kTxBacklogMax = 1000;  // kernel: DEFAULT_TX_QUEUE_LEN, pfifo_fast's limit
  // The backlog's TX poll deadline (on UdpStackOptions::clock_ns's clock), UINT64_MAX when none.
  // Frames wait in the backlog for a completion to make room at the device; on a device whose
  // completions wake no one (Netdev::tx_completion_wakes() false: AF_XDP) nothing would look for
  // that completion before the program's next call into the stack (or a TCP timer), so while the
  // backlog is not empty there is a deadline, kTxPollMinNs after it filled, doubling up to
  // kTxPollMaxNs while the completions do not make room, by which the owner reaps (poll() or
  // tx_complete_now()). kernel: the TX completion interrupt -> netif_tx_wake_queue() ->
  // net_tx_action() -> qdisc_run(). An empty backlog: no deadline (no wake-ups while idle).
  uint64_t next_timer_ns() const { return tx_poll_at_ != 0 ? tx_poll_at_ : UINT64_MAX; }
  static constexpr uint64_t kTxPollMinNs = 20'000;
  static constexpr uint64_t kTxPollMaxNs = 1'000'000;
  // `f(deadline)` runs (with mu() held) when the backlog becomes non-empty: a thread that sleeps
  // for want of work (the engine's progress thread: on its futex with no TCP connection, or in
  // ppoll() past `deadline`) is woken to reap. `deadline` is next_timer_ns(): UINT64_MAX on a
  // device whose completions wake its wait_fd() (then the woken thread waits on that fd).
  void set_tx_poll_hook(void (*f)(uint64_t deadline_ns)) { tx_poll_hook_ = f; }
  uint64_t busy_polls = 0;            // blocked receives that busy-polled before they slept
  uint64_t busy_poll_rx_packets = 0;  // frames a busy-polling receive took (kernel: TcpExtBusyPollRxPackets)
  uint64_t tx_pool_empty = 0;  // sends that found the TX pool empty (kNoTxMem): waited or EAGAIN

  // kernel: __udp4_lib_rcv(): one received Ethernet frame. Returns true when a socket keeps the
  // buffer (it then recycles it), false when the caller may recycle it at once.
  bool udp4_rcv_frame(const RxFrame& f);

 private:
  UdpStack() = default;
  // NeighOps
  const uint8_t* dev_addr(int ifindex) override;
  int queue_xmit(int ifindex, sk_buff* skb) override;
  // NeighOutput (the ipv4 layer's view) onto NeighTable (the neigh layer's).
  int neigh_output(sk_buff* skb, const IpTxInfo& info) override;
  Neighbour* neigh_lookup(const IpTxInfo& info) override;
  int neigh_output_held(Neighbour* n, sk_buff* skb, bool hh_written) override;
  uint32_t dev_xmit_list(sk_buff** list, bool whole, int* err);
  int xmit_one(sk_buff* skb);
  void pop_drop(sk_buff** list);
  int enqueue_backlog(sk_buff* list);
  void qdisc_run();
  void reap_tx();
  void update_tx_poll();

  StackMutex mu_;
  Netdev* dev_ = nullptr;
  const NetdevFeatures* dev_features_ = nullptr;  // dev_'s constants (see dev_features())
  int ifindex_ = 0;
  const uint8_t* dev_mac_ = nullptr;
  Fib* fib_ = nullptr;
  UdpStackOptions opt_;
  be32 if_addr_ = 0;
  uint64_t now_ = 0;
  std::unique_ptr<BufPool> heads_;
  std::unique_ptr<BufPool> frags_;
  std::unique_ptr<SkbPool> skbs_;
  std::unique_ptr<NeighTable> neigh_;
  std::unique_ptr<HashIpIdents> idents_;
  UdpSock* udp4_lib_lookup2(be32 saddr, be16 sport, be32 daddr, be16 dport, be32 bound);
  std::unordered_map<be16, std::vector<UdpSock*>> table_;  // port -> sockets, in bind order
  std::vector<std::pair<FlowKey, uint32_t>> steered_;      // key -> sockets holding it
  NetProtocol* tcp_ = nullptr;
  ControlOps* control_ = nullptr;
  uint64_t control_due_ = 0;                  // poll() reads the control plane at or after this
  std::unordered_map<int, UdpSock*> shadows_;  // shadow fd -> socket, for ControlOps errors
  // queue_xmit()'s segment list, filled per frame (a member, so no call zeroes 18 entries).
  FrameSeg tx_sg_[MAX_SKB_FRAGS + 1];
  // dev_xmit_list()'s burst: up to kGsoBurst frames (software-GSO segments, the backlog) handed to
  // the device in one xmit() call (one doorbell), their frames and segment lists (fixed, no
  // allocation per send).
  static constexpr int kGsoBurst = 64;
  // The backlog (see queue_xmit()): frames linked through skb->next, oldest first; the skbs
  // themselves are the storage (no allocation). kernel: the qdisc between dev_queue_xmit() and the
  // driver, with the requeued skb (dev_requeue_skb()) at its head.
  sk_buff* backlog_head_ = nullptr;
  sk_buff* backlog_tail_ = nullptr;
  uint32_t backlog_len_ = 0;
  bool tx_wakes_ = false;          // dev_->tx_completion_wakes(), read once at create()
  uint64_t tx_poll_at_ = 0;        // the backlog's TX poll deadline (next_timer_ns()), 0: none
  uint64_t tx_poll_gap_ = kTxPollMinNs;
  void (*tx_poll_hook_)(uint64_t) = nullptr;
  TxFrame gso_frames_[kGsoBurst];
  FrameSeg gso_sg_[kGsoBurst][MAX_SKB_FRAGS + 1];
};

}  // namespace xmit
